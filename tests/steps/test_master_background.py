"""master_background (Stage 3): a known 1-D background is removed from every slit."""

import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from builders import ARCSEC2_SR, make_nods  # noqa: E402

from webbspec.io.datamodels import SpecModel, Spectrum, new_spec_table  # noqa: E402
from webbspec.steps import master_background  # noqa: E402


def bkg_sb(lam):
    return 0.3 + 0.1 * lam             # MJy/sr


def background_x1d(exptime=500.0, own=False, shift=0.0):
    tab = new_spec_table(400)
    tab["WAVELENGTH"] = 2.8 + (np.arange(400) + shift) * 0.007
    col = "BACKGROUND" if own else "SURF_BRIGHT"
    tab[col] = bkg_sb(tab["WAVELENGTH"])
    tab["FLUX"] = 1.0
    hdr = fits.Header({"SPORDER": 1})
    return SpecModel(fits.Header({"EFFEXPTM": exptime, "BKGDTARG": not own}), [Spectrum(hdr, tab)])


@pytest.mark.parametrize("bunit", ["MJy/sr", "MJy"])
def test_background_removed(bunit):
    level = ARCSEC2_SR * 0.01 if bunit == "MJy" else 1.0      # source ~ background per pixel
    m = make_nods(nods=(-0.5, 0.5), tilt=0.3, bunit=bunit, srctype="POINT" if bunit == "MJy" else "EXTENDED",
                  amp=lambda lam: level * (1 + 0 * lam))
    pixar = m.slits[0].header["PIXAR_SR"]
    scale = pixar if bunit == "MJy" else 1.0
    for s in m.slits:
        s["SCI"] = (s["SCI"] + bkg_sb(s["WAVELENGTH"]) * scale).astype(np.float32)
    out = master_background.run(m, backgrounds=[background_x1d(), background_x1d(300.0, shift=0.4)])
    assert out.primary["S_MSBSUB"] == "COMPLETE"
    for s_in, s_out in zip(m.slits, out.slits):
        b = bkg_sb(s_in["WAVELENGTH"]) * scale
        # combine_1d puts each element in its nearest output bin: residual < 1e-4 of the level
        assert np.max(np.abs(s_out["SCI"] - s_in.truth) / b) < 1e-4
        assert np.min(np.abs(s_in["SCI"] - s_in.truth) / b) > 0.99         # input untouched


def test_own_nod_backgrounds_use_the_background_column():
    m = make_nods(nods=(-0.5, 0.5), bunit="MJy/sr", srctype="EXTENDED")
    for s in m.slits:
        s["SCI"] = (s["SCI"] + bkg_sb(s["WAVELENGTH"])).astype(np.float32)
    out = master_background.run(m, backgrounds=[background_x1d(own=True)], median_kernel=3)
    assert np.allclose(out.slits[0]["SCI"], m.slits[0].truth, atol=1e-5)


def test_user_background_and_skip_rules():
    m = make_nods(nods=(0.0,), bunit="MJy/sr", srctype="EXTENDED")
    m.slits[0]["SCI"] = (m.slits[0]["SCI"] + bkg_sb(m.slits[0]["WAVELENGTH"])).astype(np.float32)
    user = background_x1d()
    user.path = "/some/where/user_bkg_x1d.fits"
    out = master_background.run(m, user_background=user)
    assert np.allclose(out.slits[0]["SCI"], m.slits[0].truth, atol=1e-5)
    assert out.primary["MASTERBG"] == "user_bkg_x1d.fits"
    m.primary["S_BKDSUB"] = "COMPLETE"
    skipped = master_background.run(m, user_background=user)
    assert skipped.primary["S_MSBSUB"] == "SKIPPED"
    assert np.array_equal(skipped.slits[0]["SCI"], m.slits[0]["SCI"])
    forced = master_background.run(m, user_background=user, force_subtract=True)
    assert forced.primary["S_MSBSUB"] == "COMPLETE"
    assert master_background.run(make_nods()).primary["S_MSBSUB"] == "SKIPPED"


def test_pixels_outside_the_background_range_get_zero():
    m = make_nods(nods=(0.0,), bunit="MJy/sr", srctype="EXTENDED")
    short = background_x1d()
    short.spectra[0].table = short.spectra[0].table[:100]      # covers 2.8 .. 3.5 um only
    out = master_background.run(m, backgrounds=[short])
    lam = m.slits[0]["WAVELENGTH"]
    red = lam > 3.6
    assert np.array_equal(out.slits[0]["SCI"][red], m.slits[0]["SCI"][red])
