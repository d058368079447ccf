"""The workflow machinery with stand-in science (tests/workflow/fakes): job plan, a real run,
re-run triggers (parameters, references, sources), bad input with --keep-going."""

import os
import re
import subprocess
import sys

import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))
import fakeprog  # noqa: E402

from webbspec.pipeline.params import workflow_root  # noqa: E402
from webbspec.pipeline.program import product_key  # noqa: E402

FAKES = os.path.join(os.path.dirname(__file__), "fakes")
KEY = product_key(fakeprog.SPEC3_NAME)


def snakemake(prog, *args, nsources=5, fakes=True):
    env = dict(os.environ, FAKE_NSOURCES=str(nsources))
    if fakes:
        # (no empty entry: that would put the program directory, which holds webbspec/, on the path)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (FAKES, env.get("PYTHONPATH")) if p)
    cmd = [os.path.join(os.path.dirname(sys.executable), "snakemake"), "-s",
           os.path.join(workflow_root(), "Snakefile"), "--cores", "2", "--config", f"program={prog}",
           *map(str, args)]
    return subprocess.run(cmd, cwd=prog, capture_output=True, text=True, env=env)


def planned(result):
    """{rule: count} from the job table of a (dry) run."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = result.stdout.split("Job stats:")[-1] if "Job stats:" in result.stdout else result.stdout
    counts = {}
    for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M):
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


@pytest.fixture
def prog(tmp_path):
    root = tmp_path / "prog"
    fakeprog.make_program(root, nexp=3)
    return root


def test_dry_run_plan(prog):
    jobs = planned(snakemake(prog, "-n"))
    chain = ["assign_wcs", "bkg_subtract", "extract_2d", "srctype", "wavecorr", "flat_field", "pathloss",
             "photom", "resample_spec", "extract_1d"]
    assert {s: jobs.get(s) for s in chain} == {s: 3 for s in chain}
    assert jobs["spec2_product"] == 9           # cal, s2d, x1d per exposure
    assert jobs["spec2_publish"] == 9           # ... each linked to its public name
    assert jobs["exp_to_source"] == 3 and jobs["spec3_sources"] == 1 and jobs["spec3_batch"] == 8


@pytest.mark.slow
def test_run_and_reruns(prog):
    r = snakemake(prog, "--nolock")
    assert r.returncode == 0, r.stderr[-3000:]
    n1 = fakeprog.exposure_name(1)
    cal = fits.getheader(prog / "webbspec" / "spec2" / f"{n1}_cal.fits")
    assert cal["S_PHOTOM"] == "COMPLETE" and cal["N_BKG_SU"] == 2 and cal["WSVERS"]
    assert "S_RESAMP" not in cal
    manifests = sorted((prog / "webbspec" / "spec3" / KEY / "batches").glob("*.tsv"))
    assert len(manifests) == 8
    rows = [ln.split("\t") for m in manifests for ln in m.read_text().splitlines()[1:]]
    assert sorted(r[0] for r in rows) == [f"s{i:09d}" for i in range(5)]
    x1d = prog / "webbspec" / "spec3" / fakeprog.SPEC3_NAME.replace("{source_id}", "s000000003")
    assert len(open(str(x1d) + "_x1d.fits").read().splitlines()) == 3   # one slice per exposure
    assert (prog / "webbspec" / "logs" / "photom" / f"{n1}.log").exists()

    assert planned(snakemake(prog, "-n")) == {}                          # up to date

    over = prog / "o.yaml"                                               # a parameter change
    over.write_text("spec2: {photom: {inverse: true}}\n")
    jobs = planned(snakemake(prog, "-n", "--configfile", over))
    assert jobs["photom"] == 3 and jobs["resample_spec"] == 3 and jobs["extract_1d"] == 3
    assert "flat_field" not in jobs and "assign_wcs" not in jobs
    assert jobs["exp_to_source"] == 3 and jobs["spec3_batch"] == 8

    (prog / "refs").mkdir()                                              # a new reference file
    (prog / "refs" / "flat.fits").write_text("flat")
    jobs = planned(snakemake(prog, "-n"))
    assert jobs["flat_field"] == 3 and "wavecorr" not in jobs and jobs["pathloss"] == 3
    (prog / "refs" / "flat.fits").unlink()
    (prog / "refs").rmdir()

    victim = manifests[3]                                                # one batch only
    victim.unlink()
    assert planned(snakemake(prog, "-n")) == {"spec3_batch": 1, "all": 1}


@pytest.mark.slow
def test_bad_input_keep_going(prog):
    bad = fakeprog.exposure_name(2)
    with fits.open(prog / f"{bad}_rate.fits", mode="update") as h:
        h[0].header["FAILME"] = "pathloss"
    (prog / "s2.yaml").write_text("workflow: {stage3: false}\n")
    r = snakemake(prog, "--keep-going", "--nolock", "--configfile", prog / "s2.yaml")
    assert r.returncode != 0
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("webbspec: ") and "fake failure" in ln]
    assert len(errors) == 1 and bad in errors[0] and "fake failure in pathloss" in errors[0], r.stderr
    summary = [ln for ln in r.stderr.splitlines() if "[log: webbspec/logs/pathloss/" in ln]
    assert len(summary) == 1 and "fake failure in pathloss" in summary[0], r.stderr   # the run summary
    spec2 = prog / "webbspec" / "spec2"
    assert not (spec2 / bad / f"{bad}_pathloss.fits").exists()
    assert not list((spec2 / bad).glob(".*tmp"))
    for good in (fakeprog.exposure_name(1), fakeprog.exposure_name(3)):
        assert (spec2 / f"{good}_x1d.fits").exists()
    log = (prog / "webbspec" / "logs" / "pathloss" / f"{bad}.log").read_text()
    assert "fake failure in pathloss" in log


def test_dry_run_simulated_nrs_fs(tmp_path):
    """The real modules on a simulated program: every Stage 2 job and the Stage 3 batches planned."""
    simulate = pytest.importorskip("webbspec.simulate")
    pytest.importorskip("webbspec.io.refs")
    prog = tmp_path / "fs"
    simulate.simulate("nrs_fs", str(prog), seed=1, scale="small")
    from webbspec.pipeline import program
    from webbspec.modes import MODES

    p = program.discover(prog)
    jobs = planned(snakemake(prog, "-n", fakes=False))
    nexp = len(p.stage2)
    assert nexp > 0
    for step in MODES["nrs_fs"].spec2:
        expected = sum(step in program.spec2_chain(e) for e in p.stage2.values())
        assert jobs.get(step, 0) == expected, step
    assert jobs["spec3_batch"] == 8 * len(p.products)
    assert jobs["exp_to_source"] == sum(len(prod.science) for prod in p.products.values())
