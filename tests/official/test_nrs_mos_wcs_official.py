"""Our NIRSpec MOS slitlet geometry (instruments/nirspec/mos.py) against the official AssignWcsStep +
Extract2dStep on the same simulated `_rate`, MSA metadata file and optical-model references (the
shared MOS recipe: 20 slitlets of 3 shutters, background and virtual ones among them): the same
slitlets, names and source ids, the same cutouts, wavelengths within 1e-3 pixel, sky within
0.001 mas; on NRS1 and on the same exposure read as NRS2 (flipped frame, slitlets cut by the
detector edge)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from webbspec.instruments.nirspec import mos
from webbspec.io.skycoords import xieta_to_radec
from webbspec.steps.wavecorr import dispersion

from nrs_mos_recipe import MSA_NAME, OPTICAL, RATE_NAME, run

pytestmark = pytest.mark.official
pytest.importorskip("jwst")

HERE = os.path.dirname(os.path.abspath(__file__))
MAS = 1.0 / 3.6e6
FIGURES = {}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("nrs_mos_wcs")
    run("build_refs_mos.py", cwd=d)             # ./refs_mos/ (official formats)
    run("make_msa.py", 20, cwd=d)                # ./jw09999001001_01_msa.fits
    run("make_rate_mos.py", cwd=d)               # ./<rate>: rendered through the official WCS
    refs = {k: v for k, v in json.loads((d / "refs_mos" / "refs.json").read_text()).items() if k in OPTICAL}
    (d / "wcs_refs.json").write_text(json.dumps(refs))
    yield d, refs
    print("\nNIRSpec MOS geometry, ours against the official assign_wcs + extract_2d:")
    for k, v in FIGURES.items():
        print(f"  {k}: {v}")


def _nrs2_copy(d):
    """The same exposure read as NRS2 (flipped detector frame; slitlets cut by its x = 0 edge)."""
    from stdatamodels.jwst import datamodels as dm

    sub = d / "nrs2"
    sub.mkdir()
    shutil.copy(d / MSA_NAME, sub / MSA_NAME)
    rate = sub / RATE_NAME.replace("nrs1", "nrs2")
    with dm.ImageModel(str(d / RATE_NAME)) as m:
        m.meta.instrument.detector = "NRS2"
        m.meta.filename = rate.name
        m.save(str(rate))
    return rate


@pytest.fixture(scope="module", params=["NRS1", "NRS2"])
def runs(inputs, request):
    d, refs = inputs
    rate = d / RATE_NAME if request.param == "NRS1" else _nrs2_copy(d)
    off = rate.parent / "official"
    off.mkdir()
    res = subprocess.run([sys.executable, os.path.join(HERE, "nrs_mos_wcs_official.py"), str(rate),
                          str(d / "wcs_refs.json"), str(off)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    FIGURES[f"{request.param} official"] = res.stdout.strip().splitlines()[-1]
    header = {**dict(fits.getheader(rate)), **dict(fits.getheader(rate, 1))}
    ours = mos.exposure_slitlets(header, (2048, 2048), refs, str(rate))
    return request.param, ours, json.loads((off / "slits.json").read_text()), np.load(off / "wcs.npz")


def test_same_slitlets_names_and_source_ids(runs):
    det, ours, theirs, _ = runs
    assert [b.name for b in ours] == [str(t["name"]) for t in theirs]
    kinds = {"background": 0, "virtual": 0}
    for b, t in zip(ours, theirs):
        s = b.slitlet
        assert (s.slitlet_id, s.source_id, s.source_name, s.source_alias, s.quadrant, s.xcen, s.ycen, s.shutter_id,
                s.shutter_state) == (t["slitlet_id"], t["source_id"], t["source_name"], t["source_alias"],
                                     t["quadrant"], t["xcen"], t["ycen"], t["shutter_id"], t["shutter_state"])
        assert np.allclose([s.stellarity, s.source_xpos, s.source_ypos, s.source_ra, s.source_dec, b.ymin, b.ymax,
                            b.slit_xscale, b.slit_yscale],
                           [t[k] for k in ("stellarity", "source_xpos", "source_ypos", "source_ra", "source_dec",
                                           "slit_ymin", "slit_ymax", "slit_xscale", "slit_yscale")],
                           rtol=1e-7, atol=1e-7), b.name
        kinds["background"] += s.background
        kinds["virtual"] += s.source_id < 0
    if det == "NRS1":
        assert kinds["background"] >= 2 and kinds["virtual"] >= 2    # the recipe's design has both
    FIGURES[f"{det} slitlets"] = (f"{len(ours)} ({kinds['background']} background, {kinds['virtual']} virtual), "
                                  "same names and ids")


def test_same_cutouts(runs):
    det, ours, theirs, _ = runs
    for b, t in zip(ours, theirs):
        assert (b.xstart + 1, b.ystart + 1, b.shape[1], b.shape[0]) == \
            (t["xstart"], t["ystart"], t["xsize"], t["ysize"]), b.name
    FIGURES[f"{det} cutouts"] = f"all {len(ours)} identical (XSTART, YSTART, XSIZE, YSIZE)"


def test_wavelengths_and_sky_per_pixel(runs):
    det, ours, _, off = runs
    worst_pix = worst_rel = worst_mas = 0.0
    npix = extra = 0
    for b in ours:
        lam = b.arrays["WAVELENGTH"].astype(float)
        ok = np.isfinite(lam)
        lam_o, ra_o, dec_o = (off[f"{b.name}_{k}"] for k in ("lam", "ra", "dec"))
        assert ok.any(), b.name
        assert np.isfinite(lam_o[ok]).all(), b.name
        # the official values outside ours lie outside the wavelength range (which we leave NaN)
        wmin, wmax = np.nanmin(lam), np.nanmax(lam)
        only = np.isfinite(lam_o) & ~ok
        assert ((lam_o[only] < wmin) | (lam_o[only] > wmax)).all(), b.name
        # our WAVELENGTH is float32: compare the official value rounded the same way
        dpix = np.abs(lam - lam_o.astype(np.float32))[ok] / np.abs(dispersion(lam_o))[ok]
        drel = np.abs(lam - lam_o)[ok] / lam_o[ok]
        ra, dec = xieta_to_radec(b.arrays["XI"][ok].astype(float), b.arrays["ETA"][ok].astype(float),
                                 b.ra_ref, b.dec_ref)
        dsky = np.hypot((ra - ra_o[ok]) * np.cos(np.radians(dec)), dec - dec_o[ok]) / MAS
        worst_pix, worst_rel = max(worst_pix, dpix.max()), max(worst_rel, drel.max())
        worst_mas = max(worst_mas, dsky.max())
        npix, extra = npix + int(ok.sum()), extra + int(only.sum())
    FIGURES[f"{det} wavelength"] = (f"max |d| {worst_pix:.2e} pixel (official rounded to float32), "
                             f"{worst_rel:.1e} relative (float64 official) over {npix} pixels")
    FIGURES[f"{det} sky"] = f"max {worst_mas:.2e} mas"
    FIGURES[f"{det} official-only pixels"] = f"{extra}, all outside the wavelength range"
    assert worst_pix < 1e-3
    assert worst_mas < 1e-3
