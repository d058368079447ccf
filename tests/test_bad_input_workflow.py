"""Bad input in a whole workflow run (`webbspec run DIR --cores 2 --keep-going`): each bad input
fails its own job with a one-line error naming the file in that job's log, leaves no partial
product, and the unaffected exposures / sources still get their products.

Two runs, each holding several independent bad inputs next to good ones:

* Stage 2 on a simulated NIRSpec FS program (``webbspec simulate nrs_fs``; spec2 associations
  removed so the exposures do not share background members): a truncated `_rate`, a `_rate`
  without SCI, an unknown EXP_TYPE, an exposure whose selected reference file is missing from
  the context, a malformed / an empty association and a spec3 association naming a missing
  member; one good exposure.
* Stage 3 on MAST-like `_cal` files built from the real CEERS nods (tests/data/ceers): three
  nods holding sources 933-935 (good), an exposure without its ASDF extension (source 936), one
  with a slit without SOURCEID, and an `_x1d` listed as a science member.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))

pytestmark = pytest.mark.slow

WEBBSPEC = os.path.join(os.path.dirname(sys.executable), "webbspec")
FLAT = __import__("webbspec.steps", fromlist=["reftypes"]).reftypes("flat_field")[0]   # its first reftype


def _run(prog, *extra):
    return subprocess.run([WEBBSPEC, "run", str(prog), "--cores", "2", "--keep-going", "--nolock", *extra],
                          capture_output=True, text=True)


def _logs(prog):
    """{log path relative to DIR/webbspec/logs: text}."""
    root = os.path.join(prog, "webbspec", "logs")
    out = {}
    for p in glob.glob(os.path.join(root, "**", "*.log"), recursive=True):
        with open(p) as f:
            out[os.path.relpath(p, root)] = f.read()
    return out


def _error_lines(text):
    return [ln for ln in text.splitlines() if ln.startswith("webbspec: ")]


def _assert_logged(prog, log, *words):
    """The job log ``log`` holds a one-line ``webbspec:`` error containing every word."""
    logs = _logs(prog)
    assert log in logs, sorted(logs)
    lines = [ln for ln in _error_lines(logs[log]) if all(w in ln for w in words)]
    assert lines, logs[log][-2000:]
    return lines[0]


def _no_tmp_files(prog):
    return [p for p in glob.glob(os.path.join(prog, "webbspec", "**", ".*.tmp"), recursive=True)]


# ------------------------------------------------------------------ Stage 2 (simulated FS)

GOOD, TRUNC, NOSCI, BADEXP, BADREF, BADFMT = (f"jw01234001001_03101_0000{i}_nrs1" for i in (1, 2, 3, 4, 5, 6))


@pytest.fixture(scope="module")
def stage2(tmp_path_factory):
    from webbspec.simulate import simulate

    prog = str(tmp_path_factory.mktemp("bad2") / "fs")
    simulate("nrs_fs", prog, seed=3, scale="small")
    for p in glob.glob(os.path.join(prog, "*_spec2_*_asn.json")):
        os.remove(p)        # no shared background members: every exposure stands alone
    rate = lambda name: os.path.join(prog, f"{name}_rate.fits")  # noqa: E731
    for name in (BADEXP, BADREF, BADFMT):
        shutil.copy(rate(GOOD), rate(name))
    # a _rate cut in half
    with open(rate(TRUNC), "rb") as f:
        data = f.read()
    with open(rate(TRUNC), "wb") as f:
        f.write(data[: len(data) // 2])
    # a _rate without SCI
    with fits.open(rate(NOSCI)) as h:
        fits.HDUList([x for x in h if x.name != "SCI"]).writeto(rate(NOSCI), overwrite=True)
    # unknown EXP_TYPE
    with fits.open(rate(BADEXP), mode="update") as h:
        h[0].header["EXP_TYPE"] = "NRS_NOSUCH"
    # a context (pmap) whose flat for one exposure is missing from the store: a selection that
    # matches as the program's flat row does plus WSTEST = BADREF (more specific: CRDS picks it)
    with fits.open(rate(BADREF), mode="update") as h:
        h[0].header["WSTEST"] = "BADREF"
    from webbspec.io import crdsmap
    from webbspec.io import refs as wsrefs

    refs = os.path.join(prog, "refs")
    rname = dict(crdsmap.load_pmap(wsrefs.context_path(refs)).get_imap("NIRSPEC").selector)[FLAT]
    rows, _ = crdsmap.rmap_rows(os.path.join(refs, "mappings", "jwst", rname))
    match = {k: v for k, v in rows[0].items() if k not in ("USEAFTER", "file")}
    wsrefs.derive_context(refs, None, 2, add=[{"reftype": FLAT, "instrument": "NIRSPEC", "file": "gone_flat.fits",
                                               "match": dict(match, WSTEST="BADREF"),
                                               "useafter": rows[0]["USEAFTER"]}])
    # ... and one whose flat for another exposure exists but is a photom reference (wrong format)
    with fits.open(rate(BADFMT), mode="update") as h:
        h[0].header["WSTEST"] = "BADFMT"
    refdir = os.path.join(refs, "references", "jwst", "nirspec")
    photom = wsrefs.bestrefs(fits.getheader(rate(GOOD)), ("photom",), refs)["photom"]
    shutil.copy(photom, os.path.join(refdir, "not_a_flat.fits"))
    wsrefs.derive_context(refs, None, 3, add=[{"reftype": FLAT, "instrument": "NIRSPEC", "file": "not_a_flat.fits",
                                               "match": dict(match, WSTEST="BADFMT"),
                                               "useafter": rows[0]["USEAFTER"]}])
    # bad associations
    with open(os.path.join(prog, "jw01234-o001_malformed_spec3_asn.json"), "w") as f:
        f.write('{"asn_type": "spec3", "products": [')
    with open(os.path.join(prog, "jw01234-o001_empty_spec3_asn.json"), "w") as f:
        f.write("")
    with open(os.path.join(prog, "jw01234-o001_spec3_00001_asn.json")) as f:
        tree = json.load(f)
    tree["products"][0]["name"] = "jw01234-o001_t002_nirspec_f290lp-g395m"
    tree["products"][0]["members"].append({"expname": "jw09999001001_03101_00001_nrs1_cal.fits",
                                           "exptype": "science"})
    with open(os.path.join(prog, "jw01234-o001_missing_spec3_asn.json"), "w") as f:
        json.dump(tree, f)
    os.remove(os.path.join(prog, "jw01234-o001_spec3_00001_asn.json"))   # Stage 2 only
    r = _run(prog)
    return prog, r


def test_stage2_run_fails_but_good_exposure_is_made(stage2):
    prog, r = stage2
    assert r.returncode != 0
    spec2 = os.path.join(prog, "webbspec", "spec2")
    for kind in ("cal", "s2d", "x1d"):
        assert os.path.exists(os.path.join(spec2, f"{GOOD}_{kind}.fits")), r.stderr[-3000:]
    assert not _no_tmp_files(prog)


@pytest.mark.parametrize("name, log, words", [
    (TRUNC, f"assign_wcs/{TRUNC}.log", (f"{TRUNC}_rate.fits: not a readable FITS file",)),
    (NOSCI, f"assign_wcs/{NOSCI}.log", (f"{NOSCI}_rate.fits: no SCI extension",)),
    (BADEXP, f"assign_wcs/{BADEXP}.log", (f"{BADEXP}_rate.fits: unknown EXP_TYPE 'NRS_NOSUCH'",)),
    (BADREF, f"flat_field/{BADREF}.log",
     (f"webbspec_nirspec_{FLAT}_0003.rmap: {FLAT} selection names missing file gone_flat.fits",)),
    (BADFMT, f"flat_field/{BADFMT}.log", ("not_a_flat.fits: REFTYPE is 'PHOTOM', not a", f"{FLAT} reference file")),
    ("jw01234-o001_malformed_spec3_asn", "assign_wcs/jw01234-o001_malformed_spec3_asn.log",
     ("jw01234-o001_malformed_spec3_asn.json: malformed association JSON",)),
    ("jw01234-o001_empty_spec3_asn", "assign_wcs/jw01234-o001_empty_spec3_asn.log",
     ("jw01234-o001_empty_spec3_asn.json: malformed association JSON",)),
    ("jw01234-o001_missing_spec3_asn", "assign_wcs/jw01234-o001_missing_spec3_asn.log",
     ("jw01234-o001_missing_spec3_asn.json: member jw09999001001_03101_00001_nrs1_cal.fits does not exist",)),
])
def test_stage2_bad_input(stage2, name, log, words):
    prog, r = stage2
    line = _assert_logged(prog, log, *words)
    assert "\n" not in line
    assert line in r.stderr                       # also what the user sees
    spec2 = os.path.join(prog, "webbspec", "spec2")
    assert not glob.glob(os.path.join(spec2, f"{name}_*.fits"))          # no product
    step = log.split("/")[0]
    assert not os.path.exists(os.path.join(spec2, name, f"{name}_{step}.fits"))   # no partial output
    if name in (BADREF, BADFMT):   # the steps before flat_field ran with the references that exist
        assert os.path.exists(os.path.join(spec2, name, f"{name}_wavecorr.fits"))


# ------------------------------------------------------------------ Stage 3 (real CEERS _cal)

MOS = "jw01345-o062_{source_id}_nirspec_clear-prism"
KEY = "jw01345-o062_source_id_nirspec_clear-prism"


def _nod_name(i):
    return f"jw01345062001_03101_0000{i}_nrs2"


@pytest.fixture(scope="module")
def stage3(tmp_path_factory):
    from test_realdata import CEERS, multislit_cal

    from webbspec.io import associations

    prog = tmp_path_factory.mktemp("bad3") / "mos"
    prog.mkdir()
    members = []
    for i, src in enumerate(CEERS, start=1):        # 3 good nods, sources 933-935
        members.append(os.path.basename(multislit_cal(prog / f"{_nod_name(i)}_cal.fits", 3, 933, src)))
    # source 936 only in an exposure without its ASDF extension
    noasdf = prog / f"{_nod_name(4)}_cal.fits"
    multislit_cal(noasdf, 1, 936, CEERS[0])
    with fits.open(noasdf) as h:
        hdus = fits.HDUList([x.copy() for x in h if x.name != "ASDF"])
    hdus.writeto(noasdf, overwrite=True)
    # a slit without SOURCEID (source 937)
    noid = prog / f"{_nod_name(5)}_cal.fits"
    multislit_cal(noid, 1, 937, CEERS[1])
    with fits.open(noid, mode="update") as h:
        del h["SCI", 1].header["SOURCEID"]
        h["SCI", 1].header["SRCNAME"] = ""
    # an _x1d listed as a science member
    x1d = prog / f"{_nod_name(6)}_x1d.fits"
    fits.HDUList([fits.PrimaryHDU(header=fits.getheader(CEERS[0])), fits.BinTableHDU.from_columns(
        [fits.Column(name="WAVELENGTH", format="D", array=np.ones(3))], name="EXTRACT1D")]).writeto(x1d)
    files = members + [noasdf.name, noid.name, x1d.name]
    asn = associations.asn_from_list(files, MOS, program="01345")
    associations.write(asn, prog / "jw01345-o062_spec3_00001_asn.json")
    r = _run(prog)
    return str(prog), r


def test_stage3_good_sources_are_made(stage3):
    prog, r = stage3
    assert r.returncode != 0
    out = os.path.join(prog, "webbspec", "spec3")
    for sid in (933, 934, 935):
        for kind in ("cal", "crf", "s2d", "x1d"):
            name = MOS.replace("{source_id}", f"s{sid:09d}")
            assert os.path.exists(os.path.join(out, f"{name}_{kind}.fits")), (kind, sid, r.stderr[-3000:])
    assert not _no_tmp_files(prog)


@pytest.mark.parametrize("words, absent", [
    ((f"{_nod_name(4)}_cal.fits: no ASDF extension",), "s000000936"),
    ((f"{_nod_name(5)}_cal.fits[slit 138]: slit has no SOURCEID",), "s000000937"),
    ((f"{_nod_name(6)}_x1d.fits: a spectrum table",), None),
])
def test_stage3_bad_input(stage3, words, absent):
    prog, r = stage3
    logs = _logs(prog)
    hits = [ln for log, text in logs.items() if log.startswith("spec3_batch/")
            for ln in _error_lines(text) if all(w in ln for w in words)]
    assert len(hits) == 1, {k: v[-500:] for k, v in logs.items() if k.startswith("spec3_batch")}
    assert hits[0] in r.stderr
    if absent:
        assert not glob.glob(os.path.join(prog, "webbspec", "spec3", f"*{absent}*.fits"))
