"""Our NIRSpec MOS Stage 2 steps side by side with the official ones, step by step, on the shared MOS
recipe's exposure (20 slitlets of 3 shutters on NRS1, background and virtual ones among them, two
failed-open shutters, the recipe's reference files in the official formats).

The official steps run once per session in their own process (nrs_mos_spec2_official.py, ~100 s)
and save every intermediate. Each of our steps runs on the official previous step's output read
with our reader (the per-pixel XI/ETA and SLIT_Y, which official files keep in their gwcs, come from
that gwcs, dumped by the same script), and its output is compared with the official step's, per
slitlet: SCI, ERR and variance median ratios and their worst deviation, differing DQ pixels, the
step's keywords and correction arrays. assign_wcs + msa_flagging + extract_2d run on the `_rate`
itself. Run: ``pytest -m official tests/official/test_nrs_mos_spec2_official.py -s`` (prints the
figures). ``WEBBSPEC_MOS_OFFICIAL_DIR=DIR`` keeps the recipe and the official outputs in DIR and
reuses them when they are there (the official run is the slow part: ~100 s).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from webbspec import dq as dqbits
from webbspec.io import datamodels
from webbspec.io.skycoords import radec_to_xieta
from webbspec.steps import (assign_wcs, barshadow, extract_2d, flat_field, imprint_subtract, master_background_mos,
                            msa_flagging, pathloss, photom, srctype, wavecorr)

from nrs_mos_recipe import RATE_NAME, run

pytestmark = pytest.mark.official
pytest.importorskip("jwst")

HERE = os.path.dirname(os.path.abspath(__file__))
FIGURES = {}
FAILED_OPEN = dqbits.FLAGS["MSA_FAILED_OPEN"]


@pytest.fixture(scope="session")
def recipe(tmp_path_factory):
    keep = os.environ.get("WEBBSPEC_MOS_OFFICIAL_DIR")
    d = Path(keep) if keep else tmp_path_factory.mktemp("nrs_mos_spec2")
    off = d / "official"
    if not (off / "times.json").exists():
        d.mkdir(parents=True, exist_ok=True)
        run("build_refs_mos.py", cwd=d)
        run("make_msa.py", 20, cwd=d)
        run("make_rate_mos.py", cwd=d)
        off.mkdir(exist_ok=True)
        env = dict(os.environ, CRDS_PATH=str(d / "crds_empty"))
        res = subprocess.run([sys.executable, os.path.join(HERE, "nrs_mos_spec2_official.py"), str(d), str(off)],
                             capture_output=True, text=True, env=env)
        assert res.returncode == 0, res.stderr[-3000:]
    refs = json.loads((d / "refs_mos" / "refs.json").read_text())
    FIGURES["official step times [s]"] = json.loads((off / "times.json").read_text())
    yield d, refs, off
    print("\nNIRSpec MOS Stage 2, ours on the official previous step's output / the official step:")
    for k, v in FIGURES.items():
        print(f"  {k}: {v}")


def official(off, name):
    """An official intermediate read with our reader, with the gwcs-only arrays attached."""
    model = datamodels.read(str(off / f"{name}.fits"))
    if model.layout == "multi":
        coords = np.load(off / "coords.npz")
        for s in model.slits:
            ra, dec = coords[f"{s.name}_ra"], coords[f"{s.name}_dec"]
            ref = (float(np.nanmedian(ra)), float(np.nanmedian(dec)))
            xi, eta = radec_to_xieta(ra, dec, *ref)
            s["XI"], s["ETA"] = xi.astype(np.float32), eta.astype(np.float32)
            s["SLIT_Y"] = coords[f"{s.name}_slit_y"].astype(np.float32)
            s.header["WSREFRA"], s.header["WSREFDE"] = ref
    return model


def timed(label, fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    FIGURES.setdefault("our step times [s]", {})[label] = round(time.perf_counter() - t0, 2)
    return out


def compare(label, ours, theirs, arrays=("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"), tol=1e-4):
    """Per slitlet: median ratio and worst |ratio - 1| of ``arrays`` where both are finite and
    non-zero, DO_NOT_USE / any DQ bit differing; asserts the medians within ``tol`` and at most
    0.1% of the pixels differing in DO_NOT_USE. Records the summary in FIGURES."""
    assert [s.name for s in ours.slits] == [s.name for s in theirs.slits]
    worst = {k: 0.0 for k in arrays}
    medians = {k: [] for k in arrays}
    dnu = dq_any = npix = 0
    for o, t in zip(ours.slits, theirs.slits):
        for k in arrays:
            if k not in o or k not in t:
                continue
            a, b = np.asarray(o[k], float), np.asarray(t[k], float)
            ok = np.isfinite(a) & np.isfinite(b) & (b != 0)
            r = a[ok] / b[ok]
            medians[k].append(float(np.median(r)))
            worst[k] = max(worst[k], float(np.max(np.abs(r - 1))))
            assert abs(np.median(r) - 1) < tol, (label, o.name, k)
        bad_o = (np.asarray(o["DQ"]) & dqbits.DO_NOT_USE) != 0
        bad_t = (np.asarray(t["DQ"]) & dqbits.DO_NOT_USE) != 0
        differ = int(np.count_nonzero(bad_o != bad_t))
        assert differ <= 0.001 * bad_o.size, (label, o.name, differ)
        dnu += differ
        dq_any += int(np.count_nonzero(np.asarray(o["DQ"]) != np.asarray(t["DQ"])))
        npix += bad_o.size
    FIGURES[label] = ", ".join(
        f"{k} median {min(medians[k]):.6f}-{max(medians[k]):.6f} (worst pixel |r-1| {worst[k]:.1e})"
        for k in arrays if medians[k]) + f"; DO_NOT_USE differing {dnu}, any DQ bit differing {dq_any} of {npix}"


def test_assign_wcs_msa_flagging_extract_2d(recipe):
    """From the `_rate`: the same slitlets, keywords, cutouts and wavelengths as the official."""
    d, refs, off = recipe
    rate = datamodels.read(str(d / RATE_NAME))
    wcs = timed("assign_wcs", assign_wcs.run, rate, refs)
    flagged = timed("msa_flagging", msa_flagging.run, wcs, refs)
    theirs_ff = datamodels.read(str(off / "msa_flagging.fits")).slits[0]
    mine = (np.asarray(flagged.slits[0]["DQ"]) & FAILED_OPEN) != 0
    their = (np.asarray(theirs_ff["DQ"]) & FAILED_OPEN) != 0
    assert mine.sum() > 1000 and np.array_equal(mine, their)
    assert np.array_equal(flagged.slits[0]["DQ"], theirs_ff["DQ"])
    FIGURES["msa_flagging"] = f"{int(mine.sum())} pixels MSA_FAILED_OPEN, {int((mine != their).sum())} differ"
    ours = timed("extract_2d", extract_2d.run, flagged, refs)
    theirs = datamodels.read(str(off / "extract_2d.fits"))
    assert [s.name for s in ours.slits] == [s.name for s in theirs.slits]
    keys = ("SLTNAME", "SLITID", "SHUTTRID", "SOURCEID", "SRCNAME", "SRCALIAS", "SHUTSTA", "MSAQUAD",
            "SLTSTRT1", "SLTSTRT2", "SLTSIZE1", "SLTSIZE2")
    floats = ("STLARITY", "SRCXPOS", "SRCYPOS", "SRCRA", "SRCDEC", "SLTXSCL", "SLTYSCL")
    extra = worst = 0
    for o, t in zip(ours.slits, theirs.slits):
        assert {k: o.header[k] for k in keys} == {k: t.header[k] for k in keys}, o.name
        # (the MSA file's float32 source positions: the official subtracts 0.5 in float32)
        assert np.allclose([o.header[k] for k in floats], [t.header[k] for k in floats], rtol=1e-9, atol=1e-7)
        for k in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"):
            assert np.array_equal(o[k], t[k], equal_nan=True), (o.name, k)
        lam, lam_t = np.asarray(o["WAVELENGTH"]), np.asarray(t["WAVELENGTH"])
        ok = np.isfinite(lam)
        assert np.isfinite(lam_t[ok]).all()
        worst = max(worst, float(np.max(np.abs(lam[ok] - lam_t[ok]))))
        extra += int((np.isfinite(lam_t) & ~ok).sum())
    kinds = [s.header["SRCNAME"] for s in ours.slits]
    FIGURES["extract_2d"] = (f"{len(ours.slits)} slitlets ({sum('BKG' in k for k in kinds)} background, "
                             f"{sum(s.header['SOURCEID'] < 0 for s in ours.slits)} virtual), same names, keywords, "
                             f"SCI/ERR/DQ/VAR_*; WAVELENGTH max |d| {worst:.1e} um; {extra} official-only "
                             "wavelengths (outside the wavelength range, NaN in ours)")
    assert worst < 1e-6


def test_imprint_subtract(recipe):
    d, refs, off = recipe
    member = datamodels.read(str(off / "imprint_member.fits"))
    ours = timed("imprint_subtract", imprint_subtract.run, official(off, "msa_flagging"), {}, imprints=[member])
    theirs = datamodels.read(str(off / "imprint.fits"))
    assert ours.primary["S_IMPRNT"] == theirs.primary["S_IMPRNT"] == "COMPLETE"
    for k in ("SCI", "DQ"):
        assert np.array_equal(ours.slits[0][k], theirs.slits[0][k], equal_nan=True), k
    # our one departure: the imprint's noise is added (the official ERR stays the science's)
    expected = np.hypot(theirs.slits[0]["ERR"].astype(float), member.slits[0]["ERR"].astype(float))
    np.testing.assert_allclose(ours.slits[0]["ERR"], expected, rtol=1e-6)
    FIGURES["imprint_subtract"] = "SCI, DQ identical; ERR = official ERR (+) imprint ERR"


def test_srctype(recipe):
    _, _, off = recipe
    ours = timed("srctype", srctype.run, official(off, "extract_2d"), {})
    theirs = datamodels.read(str(off / "srctype.fits"))
    types = [s.header["SRCTYPE"] for s in ours.slits]
    assert types == [s.header["SRCTYPE"] for s in theirs.slits]
    FIGURES["srctype"] = f"same SRCTYPE per slitlet ({types.count('POINT')} POINT, {types.count('EXTENDED')} EXTENDED)"


def test_master_background_mos(recipe):
    _, refs, off = recipe
    inp = official(off, "srctype")
    (wave, sb), _ = master_background_mos.master_background(inp, refs)
    master = datamodels.read(str(off / "masterbg1d.fits")).spectra[0].table
    common = (master["WAVELENGTH"] >= wave[0]) & (master["WAVELENGTH"] <= wave[-1])
    ratio = np.interp(master["WAVELENGTH"][common], wave, sb) / master["SURF_BRIGHT"][common]
    ours = timed("master_background_mos", master_background_mos.run, inp, refs)
    theirs = datamodels.read(str(off / "master_background_mos.fits"))
    assert ours.primary["S_MSBSUB"] == theirs.primary["S_MSBSUB"] == "COMPLETE"
    bkg, worst = [], 0.0
    for o, t, i in zip(ours.slits, theirs.slits, inp.slits):
        mine = np.asarray(i["SCI"], float) - np.asarray(o["SCI"], float)
        their = np.asarray(i["SCI"], float) - np.asarray(t["SCI"], float)
        ok = np.isfinite(mine) & np.isfinite(their) & (their != 0)
        bkg.append(float(np.median(mine[ok] / their[ok])))
        # the science after subtraction: differences in units of the slitlet's background level
        worst = max(worst, float(np.max(np.abs(mine[ok] - their[ok])) / np.median(np.abs(their[ok]))))
    FIGURES["master background 1-D (ours / official)"] = (
        f"median {np.median(ratio):.5f}, 5-95% {np.percentile(ratio, 5):.5f}-{np.percentile(ratio, 95):.5f} "
        f"over {common.sum()} of {len(master)} official wavelengths (ours {len(wave)}: "
        f"{wave[0]:.4f}-{wave[-1]:.4f} um, official {master['WAVELENGTH'][0]:.4f}-{master['WAVELENGTH'][-1]:.4f})")
    FIGURES["subtracted 2-D background per slitlet (ours / official)"] = (
        f"median {min(bkg):.5f}-{max(bkg):.5f}; worst pixel |ours - official| {worst:.1e} of the slitlet's "
        "median background")
    assert abs(np.median(ratio) - 1) < 0.01 and all(abs(b - 1) < 0.01 for b in bkg)
    compare("master_background_mos (ERR untouched)", ours, theirs, arrays=("ERR",))


def test_wavecorr(recipe):
    _, refs, off = recipe
    ours = timed("wavecorr", wavecorr.run, official(off, "master_background_mos"), refs)
    theirs = datamodels.read(str(off / "wavecorr.fits"))
    worst, corrected = 0.0, 0
    for o, t in zip(ours.slits, theirs.slits):
        lam, lam_t = np.asarray(o["WAVELENGTH"], float), np.asarray(t["WAVELENGTH"], float)
        ok = np.isfinite(lam) & np.isfinite(lam_t)
        worst = max(worst, float(np.max(np.abs(lam - lam_t)[ok] / np.abs(wavecorr.dispersion(lam_t))[ok])))
        assert bool(o.header.get("WAVECOR", False)) == bool(t.header.get("WAVECOR", False)), o.name
        corrected += bool(o.header.get("WAVECOR", False))
    FIGURES["wavecorr"] = f"{corrected} POINT slitlets corrected; wavelengths max |d| {worst:.1e} pixel"
    assert worst < 1e-3


@pytest.mark.parametrize("step, before, arrays", [
    (flat_field, "wavecorr", ()), (pathloss, "flat_field", ("PATHLOSS_PS", "PATHLOSS_UN")),
    (barshadow, "pathloss", ("BARSHADOW",)), (photom, "barshadow", ())])
def test_calibration_steps(recipe, step, before, arrays):
    _, refs, off = recipe
    name = step.__name__.rsplit(".", 1)[-1]
    ours = timed(name, step.run, official(off, before), refs)
    theirs = datamodels.read(str(off / f"{name}.fits"))
    compare(name, ours, theirs, arrays=("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT") + arrays)
    if step is photom:
        for o, t in zip(ours.slits, theirs.slits):
            assert o.header["BUNIT"] == t.header["BUNIT"], o.name
            assert o.header["PIXAR_SR"] == pytest.approx(t.header["PIXAR_SR"], rel=1e-6), o.name
    if step is barshadow:
        assert [bool(o.header["BARSHDW"]) for o in ours.slits] == [bool(t.header["BARSHDW"]) for t in theirs.slits]
