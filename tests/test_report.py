"""The report page (``webbspec report DIR``, webbspec/report/) and ``snakemake --report`` with it.

The page of a whole simulated FS program is opened in headless Chromium, which must decode every
embedded figure; programs missing pieces (Stage 2 only, Stage 3 only, a broken product, nothing
run) still get a page that names what is missing.
"""

import os
import re
import shutil
import subprocess
import zipfile

import pytest

from fs_program import simulated_fs_program, webbspec_exe
from webbspec.report import render, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run installs it)")

PLOTS = ("spectrum", "s2d", "exposures", "outliers")     # the figures of one source
NSOURCES = 5                                             # the simulated FS program's slits

# Counts, once the page has loaded, the images and those decoded with a size; Chromium's
# --dump-dom then shows the counts as attributes of <body>.
CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0; });
  document.body.setAttribute("data-images", String(imgs.length));
  document.body.setAttribute("data-images-ok", String(ok.length));
});
</script>"""


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    return simulated_fs_program(tmp_path_factory)


def _rendered(text, tmp_path):
    """(images, images decoded with a nonzero size) of the page ``text`` in headless Chromium."""
    page = tmp_path / "check.html"
    page.write_text(text.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    out = subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox",
                          f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=20000",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=300)
    m = re.search(r'<body[^>]*\bdata-images="(\d+)"[^>]*\bdata-images-ok="(\d+)"', out.stdout)
    assert m, f"no image counts in Chromium's DOM: {out.stderr[-2000:]}"
    return int(m[1]), int(m[2])


def _plots(text):
    return re.findall(r'<img class="plot" data-plot="(\w+)"', text)


def _sections(text):
    return re.findall(r'<section class="source" id="([^"]+)"', text)


def _missing(text):
    return re.findall(r'class="missing">([^<]*)<', text)


def _partial(program, tmp_path, keep):
    """A program directory linking only the files ``keep(relative path)`` accepts."""
    root = tmp_path / "partial"
    for dirpath, _, files in os.walk(program):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), program)
            if keep(rel):
                os.makedirs(root / os.path.dirname(rel), exist_ok=True)
                os.symlink(os.path.join(dirpath, f), root / rel)
    return root


# ------------------------------------------------------------------ whole program


@pytest.mark.slow
@needs_chromium
def test_the_page_shows_every_source_and_chromium_renders_every_plot(program, tmp_path):
    out = tmp_path / "report.html"
    run = subprocess.run([webbspec_exe(), "report", str(program), "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out)
    text = out.read_text(encoding="utf-8")

    assert _sections(text) == [f"jw01234-o001_t001_nirspec_f290lp-g395m_s{sid:09d}" for sid in (1, 12, 13, 14, 15)]
    assert _plots(text) == list(PLOTS) * NSOURCES
    assert _missing(text) == []
    # self-contained: every image inline, nothing fetched from elsewhere
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', text)) == len(PLOTS) * NSOURCES
    assert not re.findall(r'(?:src|href)="(?!data:|#)', text)
    # the truth is compared for the point source
    assert re.search(r"Median FLUX / truth over the central 80%: (0\.99|1\.00)\d\d", text)
    # every product is in the table with its context
    products = [f for f in os.listdir(program / "webbspec" / "spec2") if f.endswith(".fits")]
    products += [f for f in os.listdir(program / "webbspec" / "spec3") if f.endswith(".fits")]
    for name in products:
        assert f"<code>{name}</code></td>" in text, name
    assert text.count("<td>webbspec_0001.pmap</td>") == len(products)

    assert _rendered(text, tmp_path) == (len(PLOTS) * NSOURCES,) * 2
    # the check sees a broken image
    broken = text.replace("</h1>", '</h1><img src="data:image/png;base64,AAAA">', 1)
    assert _rendered(broken, tmp_path) == (len(PLOTS) * NSOURCES + 1, len(PLOTS) * NSOURCES)


# ------------------------------------------------------------------ missing pieces


@pytest.mark.slow
def test_a_program_with_only_stage2_products(program, tmp_path):
    root = _partial(program, tmp_path, lambda rel: rel.startswith(os.path.join("webbspec", "spec2", "jw"))
                    and rel.count(os.sep) == 2)
    text = render(root)
    assert _sections(text) == [f"s{sid:09d}" for sid in (1, 12, 13, 14, 15)]
    assert _plots(text) == ["exposures"] * NSOURCES
    missing = _missing(text)
    for what in ("No Level 3 1-D spectrum (_x1d or _c1d) for this source.",
                 "No Level 3 2-D spectrum (_s2d) for this source.", "No _crf (outlier detection output) for this source."):
        assert missing.count(what) == NSOURCES, what


@pytest.mark.slow
def test_a_program_of_delivered_cal_files_has_no_stage2_spectra(program, tmp_path):
    root = _partial(program, tmp_path, lambda rel: rel.startswith(os.path.join("webbspec", "spec3", "jw"))
                    or rel.startswith("truth"))
    text = render(root)
    assert len(_sections(text)) == NSOURCES
    assert _plots(text) == ["spectrum", "s2d", "outliers"] * NSOURCES
    assert _missing(text) == ["No Stage 2 _x1d holds this source (Stage 3 ran on delivered _cal files,"
                              " or Stage 2 did not extract it)."] * NSOURCES


@pytest.mark.slow
def test_a_broken_product_is_named_in_the_page(program, tmp_path):
    root = _partial(program, tmp_path, lambda rel: rel.startswith(os.path.join("webbspec", "spec3", "jw")))
    x1d = next((root / "webbspec" / "spec3").glob("*_s000000001_x1d.fits"))
    data = open(x1d, "rb").read()
    x1d.unlink()
    x1d.write_bytes(data[:8640])            # the primary header only: truncated
    text = render(root)
    assert len(_sections(text)) == NSOURCES
    assert any(m.startswith("could not show this:") for m in _missing(text))
    plots = _plots(text)
    assert plots.count("spectrum") == NSOURCES - 1
    assert plots.count("s2d") == plots.count("outliers") == NSOURCES


def test_a_program_that_has_not_run_gets_a_page_saying_so(tmp_path):
    out = write_report(tmp_path)
    assert out == str(tmp_path / "webbspec" / "report.html")
    text = open(out, encoding="utf-8").read()
    assert _missing(text) == ["no webbspec/ products: the workflow has not run on this directory", "No products."]
    run = subprocess.run([webbspec_exe(), "report", str(tmp_path / "nothere")], capture_output=True, text=True)
    assert run.returncode == 2 and "program directory does not exist" in run.stderr


# ------------------------------------------------------------------ snakemake --report


def _snakemake(program, *args):
    """Snakemake on the program, as ``webbspec run`` starts it (its own output unfiltered)."""
    from webbspec.cli import run_command

    return subprocess.run(run_command(program, 1, list(args)), cwd=program, capture_output=True, text=True)


@pytest.mark.slow
def test_snakemake_report_holds_the_page_and_the_default_target_does_not_need_it(program):
    page = program / "webbspec" / "report.html"
    # the rule by name, then Snakemake's report of it (relative paths: inside the program directory)
    run = _snakemake(program, "webbspec_report", "--report", "snakemake_report.zip", "--report-after-run")
    assert run.returncode == 0, run.stderr[-3000:]
    assert page.is_file()
    with zipfile.ZipFile(program / "snakemake_report.zip") as z:
        names = z.namelist()
        ours = [n for n in names if n.endswith("/report.html") and "/data/raw/" in n]
        assert len(ours) == 1, names
        assert z.read(ours[0]) == page.read_bytes()
        outer = z.read("snakemake_report/report.html").decode()
    assert "The webbspec report page of this program" in outer          # our caption
    assert "on the program directory" in outer                           # our workflow description

    # `all` does not need the page: without it, a dry run of `all` does not plan the rule and
    # --report still succeeds
    page.unlink()
    dry = _snakemake(program, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    said = dry.stdout + dry.stderr
    assert "Building DAG of jobs" in said and "webbspec_report" not in said
    rep = _snakemake(program, "--report", "snakemake_report.html")
    assert rep.returncode == 0, rep.stderr[-3000:]
    assert (program / "snakemake_report.html").stat().st_size > 0
    assert not page.exists()
