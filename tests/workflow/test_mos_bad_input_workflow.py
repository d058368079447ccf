"""Bad NIRSpec MOS input in a whole Stage 2 run (`webbspec run DIR --keep-going`, one job per
exposure) on a small simulated program (``webbspec simulate nrs_mos``, NRS1, Stage 2 only):

* NOFILE: an exposure whose MSA metadata file (MSAMETFL) is missing, and BADID: one whose MSAMETID
  is not in its MSA file: each is named once when the run is planned, its one job fails with the
  same line (naming the MSA file and the exposure), and it leaves no product;
* EMPTY: an exposure with one slitlet's pixels all NaN: a warning naming the file and the slitlet,
  and its products hold every other slitlet;
* LOST: a source SOURCE_INFO lacks (one of slitlet 1, in the MSA file every exposure shares): a
  warning naming the MSA file, the slitlet and the source; the slitlet is calibrated as the
  official virtual source ``<program>_VRT<slitlet>``;
* GOOD: an exposure whose association has an imprint and a background member (BADID's `_rate`:
  its own MSA trouble does not matter as a background): calibrated, and its background-subtracted
  image is science - background exactly (the imprint, subtracted from both, cancels).
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

pytestmark = pytest.mark.slow

WEBBSPEC = os.path.join(os.path.dirname(sys.executable), "webbspec")
ROOT = "jw01234002001_03101_0000{}_nrs1"
GOOD, EMPTY, BADID, NOFILE = (ROOT.format(k) for k in (1, 2, 3, 4))
IMPRINT = "jw01234002001_02101_00001_nrs1"
BLANK = "4"          # the slitlet blanked in EMPTY (a point source)
MSA_FILE = "jw01234002001_01_msa.fits"
LOST = ("1", 100001)  # (slitlet, source) whose source is taken out of SOURCE_INFO


def _rate(prog, name):
    return os.path.join(prog, f"{name}_rate.fits")


def _blank_slitlet(prog, name, slitlet):
    """NaN in every pixel of one slitlet's trace (its cutout pixels with a wavelength)."""
    from webbspec.io.refs import bestrefs
    from webbspec.steps import assign_wcs, extract_2d, reftypes

    path = _rate(prog, name)
    header = fits.getheader(path)
    refs = bestrefs(header, tuple(reftypes("extract_2d")), os.path.join(prog, "refs"), None)
    cut = next(s for s in extract_2d.run(assign_wcs.run(path, refs), refs).slits if s.name == slitlet)
    y0, x0 = cut.header["SLTSTRT2"] - 1, cut.header["SLTSTRT1"] - 1
    with fits.open(path, mode="update") as h:
        box = (slice(y0, y0 + cut.shape[0]), slice(x0, x0 + cut.shape[1]))
        h["SCI"].data[box][np.isfinite(cut["WAVELENGTH"])] = np.nan


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from webbspec.simulate import simulate

    prog = str(tmp_path_factory.mktemp("mosbad") / "mos")
    simulate("nrs_mos", prog, seed=5, scale="small")
    # NRS1 only, Stage 2 only
    for p in glob.glob(os.path.join(prog, "*nrs2_rate.fits")) + glob.glob(os.path.join(prog, "*_spec3_*_asn.json")):
        os.remove(p)
    asns = {}
    for p in glob.glob(os.path.join(prog, "*_spec2_*_asn.json")):
        with open(p) as f:
            tree = json.load(f)
        asns[tree["products"][0]["name"]] = (p, tree)
    for name, (p, tree) in asns.items():
        if name not in (GOOD, EMPTY):
            os.remove(p)
    p, tree = asns[GOOD]                            # GOOD: science, imprint and a background member
    tree["products"][0]["members"].append({"expname": f"{BADID}_rate.fits", "exptype": "background"})
    with open(p, "w") as f:
        json.dump(tree, f)
    with fits.open(_rate(prog, BADID), mode="update") as h:
        h[0].header["MSAMETID"] = 7
    shutil.copy(_rate(prog, GOOD), _rate(prog, NOFILE))
    with fits.open(_rate(prog, NOFILE), mode="update") as h:
        h[0].header["MSAMETFL"] = "jw01234002001_09_msa.fits"
    _blank_slitlet(prog, EMPTY, BLANK)
    with fits.open(os.path.join(prog, MSA_FILE), mode="update") as h:
        h["SOURCE_INFO"].data = h["SOURCE_INFO"].data[h["SOURCE_INFO"].data["source_id"] != LOST[1]]
    over = os.path.join(prog, "over.yaml")
    with open(over, "w") as f:
        f.write("workflow: {spec2_jobs: exposure, save_intermediates: [bkg_subtract]}\n")
    r = subprocess.run([WEBBSPEC, "run", prog, "--cores", "2", "--keep-going", "--nolock", "--configfile", over],
                       capture_output=True, text=True)
    return prog, r


def _log(prog, name):
    logs = glob.glob(os.path.join(prog, "webbspec", "logs", "spec2_chain_*", f"{name}.log"))
    assert len(logs) == 1, logs
    with open(logs[0]) as f:
        return f.read()


def _products(prog, name):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(prog, "webbspec", "spec2", f"{name}_*.fits")))


@pytest.mark.parametrize("name, msa_name, problem", [
    (NOFILE, "jw01234002001_09_msa.fits", "MSA metadata file (MSAMETFL) does not exist"),
    (BADID, MSA_FILE, "MSAMETID 7 is not in SHUTTER_INFO (configurations: 1)"),
])
def test_bad_msa_metadata_is_named_when_planned_and_fails_only_its_job(run, name, msa_name, problem):
    prog, r = run
    assert r.returncode != 0
    error = f"{os.path.join(prog, msa_name)}: {problem} (MSAMETFL of {name}_rate.fits)"
    planned = [ln for ln in r.stderr.splitlines() if ln.startswith("webbspec: error: ") and name in ln]
    assert planned == [f"webbspec: error: {error} (its jobs will fail; everything else is built)"], r.stderr[-3000:]
    assert f"webbspec: {error}" in _log(prog, name).splitlines()       # the job's own line: the same
    assert f"webbspec: {error} (log: " in r.stderr                       # ... shown with its log
    assert _products(prog, name) == []


def test_the_other_exposures_are_calibrated(run):
    prog, r = run
    for name in (GOOD, EMPTY):
        assert _products(prog, name) == [f"{name}_{k}.fits" for k in ("cal", "s2d", "x1d")], r.stderr[-3000:]
    assert not glob.glob(os.path.join(prog, "webbspec", "**", ".*.tmp"), recursive=True)


def test_empty_slitlet_is_a_warning_and_the_other_slitlets_are_calibrated(run):
    prog, r = run
    text = _log(prog, EMPTY)
    lines = [ln for ln in text.splitlines() if f"slitlet {BLANK} " in ln and "no valid pixel" in ln]
    assert len(lines) == 1 and f"{EMPTY}_rate.fits" in lines[0] and "WARNING" in lines[0], text[-2000:]
    spec2 = os.path.join(prog, "webbspec", "spec2")
    with fits.open(os.path.join(spec2, f"{GOOD}_cal.fits")) as g, fits.open(os.path.join(spec2, f"{EMPTY}_cal.fits")) as e:
        good = {h.header["SLTNAME"] for h in g if h.name == "SCI"}
        empty = {h.header["SLTNAME"] for h in e if h.name == "SCI"}
    assert BLANK in good and empty == good - {BLANK}
    with fits.open(os.path.join(spec2, f"{EMPTY}_x1d.fits")) as x:
        spectra = {h.header["SLTNAME"]: h.data for h in x if h.name == "EXTRACT1D"}
    assert set(spectra) == empty
    for name, table in spectra.items():        # every other slitlet has a spectrum
        assert np.isfinite(table["FLUX"]).sum() > 0.5 * len(table), name


def test_background_member_gets_the_imprint_subtracted(run):
    """GOOD's bkg_subtract output: (science - imprint) - (background - imprint) = science - background
    (propagated to float32 precision), not science - background - imprint; and its ERR holds the
    science's and the background's noise, the shared imprint's none."""
    prog, _ = run
    bsub = os.path.join(prog, "webbspec", "spec2", GOOD, f"{GOOD}_bkg_subtract.fits")
    sci, bkg, imp = (fits.getdata(_rate(prog, n), "SCI").astype(np.float64) for n in (GOOD, BADID, IMPRINT))
    err2 = sum(fits.getdata(_rate(prog, n), "ERR").astype(np.float64) ** 2 for n in (GOOD, BADID))
    with fits.open(bsub) as h:
        got = h["SCI"].data.astype(np.float64)
        assert h[0].header["S_BKDSUB"] == "COMPLETE" and h[0].header["S_IMPRNT"] == "COMPLETE"
        err = h["ERR"].data.astype(np.float64)
    fin = np.isfinite(err) & np.isfinite(err2)
    np.testing.assert_allclose(err[fin] ** 2, err2[fin], rtol=1e-5, atol=1e-6 * err2[fin].max())
    ok = np.isfinite(got) & np.isfinite(sci - bkg)
    assert ok.mean() > 0.9
    scale = np.abs(sci[ok]).max()
    np.testing.assert_allclose(got[ok], (sci - bkg)[ok], rtol=0, atol=4e-7 * scale)
    assert np.abs(imp[ok]).max() > 1e3 * 4e-7 * scale           # the imprint is not negligible


def test_source_missing_from_source_info_is_a_warning_and_a_virtual_source(run):
    prog, _ = run
    slitlet, source = LOST
    spec2 = os.path.join(prog, "webbspec", "spec2")
    for name in (GOOD, EMPTY):
        lines = [ln for ln in _log(prog, name).splitlines() if "not in SOURCE_INFO" in ln and "WARNING" in ln]
        assert len(lines) == 1, lines                          # the simulator's virtual source (id < 0): no warning
        assert f"{os.path.join(prog, MSA_FILE)}: slitlet {slitlet}: source {source} is not in SOURCE_INFO" in lines[0]
        with fits.open(os.path.join(spec2, f"{name}_cal.fits")) as cal:
            h = next(x.header for x in cal if x.name == "SCI" and x.header["SLTNAME"] == slitlet)
        assert (h["SOURCEID"], h["SRCNAME"], h["SRCTYPE"]) == (source, f"1234_VRT{slitlet}", "EXTENDED")
        with fits.open(os.path.join(spec2, f"{name}_x1d.fits")) as x1d:
            flux = next(x.data["SURF_BRIGHT"] for x in x1d if x.name == "EXTRACT1D" and x.header["SLTNAME"] == slitlet)
        assert np.isfinite(flux).sum() > 0.5 * len(flux)
