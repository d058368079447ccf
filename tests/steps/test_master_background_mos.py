"""master_background_mos against an analytic scene: every slitlet sees the same sky B(lambda) [MJy/sr]
through the bar shadow and the photometric conversion (count rate = B x shadow / conversion);
the source slitlet also holds a point source. The master background made from the two background
slitlets is B, and subtracting it, un-calibrated into each slitlet, leaves zero in the background
slitlets and the source alone in the other, to the precision of the float32 arrays and of the
resampling of a linear spectrum. (Against the official step: tests/official/test_nrs_mos_spec2_official.py.)
"""

import numpy as np
import pytest

from builders import make_slit
from mosrefs import mos_model, write_barshadow, write_mos_area, write_mos_photom
from webbspec import dq as dqbits
from webbspec.steps import master_background_mos as mbkg

A2_TO_SR = (np.pi / 648000.0) ** 2
AREA = 0.0102                                  # arcsec^2 per pixel, every shutter
PHOTMJ = 2e-12
TAB = np.linspace(2.5, 5.5, 31)
Y = -1.0 + 0.002 * np.arange(1001)
YSCALE = 1.15


def sky(lam):
    return 1.0 + 0.5 * lam                     # MJy/sr


def rel(lam):
    return 1.0 + 0.2 * (lam - 4.0)


def tri(y):
    return 1.0 - 0.8 * np.abs(y - np.round(y))


def conversion(lam):
    return PHOTMJ / (AREA * A2_TO_SR) * rel(lam)


@pytest.fixture
def refs(tmp_path):
    lam = np.linspace(2.6, 5.6, 101)
    return {"photom": write_mos_photom(tmp_path / "photom.fits", [("F290LP", "G395M", PHOTMJ, TAB, rel(TAB))]),
            "area": write_mos_area(tmp_path / "area.fits", {(3, 10 * k, 20): AREA for k in range(1, 5)}),
            "barshadow": write_barshadow(tmp_path / "barshadow.fits", np.ones((1001, 101)),
                                         np.repeat(tri(Y)[:, None], 101, axis=1), lam[0] * 1e-6,
                                         (lam[1] - lam[0]) * 1e-6)}


def slitlet(k, *, background, lam0=3.0, pos=(0.0, 0.0), source=0.0):
    s = make_slit(ny=12, nx=200, lam0=lam0, d1=0.01, pa=20.0, ref=(53.16 + 0.001 * k, -27.79),
                  amp=lambda lam: source * np.ones_like(lam), bunit="DN/s", srctype="EXTENDED" if background else "POINT",
                  name=str(k), source_id=k if background else 1000 + k)
    ys = np.broadcast_to(np.linspace(-0.45, 0.45, 12)[:, None] * YSCALE, s.shape).astype(np.float32)
    lam = s["WAVELENGTH"].astype(float)
    shadow = tri(ys / YSCALE)
    s["SLIT_Y"] = ys.copy()
    s["SCI"] = (s["SCI"] + sky(lam) * shadow / conversion(lam)).astype(np.float32)
    s.header.update({"SRCNAME": f"1234_BKG{k}" if background else f"1234_{1000 + k}", "SHUTSTA": "1x1",
                     "MSAQUAD": 3, "XCEN": 10 * k, "YCEN": 20, "SLTYSCL": YSCALE, "STLARITY": 0.0 if background else 1.0})
    s.truth_source = s["SCI"] - sky(lam) * shadow / conversion(lam)
    return s


def test_background_removed_source_kept(refs):
    bkgs = [slitlet(1, background=True), slitlet(2, background=True, lam0=3.02)]
    src = slitlet(3, background=False, lam0=2.95, source=50.0 / conversion(4.0))
    model = mos_model(*bkgs, src, EFFEXPTM=1000.0)
    (wave, sb), _ = mbkg.master_background(model, refs)
    inside = (wave > 3.05) & (wave < 4.95)
    np.testing.assert_allclose(sb[inside], sky(wave[inside]), rtol=1e-4)
    out = mbkg.run(model, refs)
    assert out.primary["S_MSBSUB"] == "COMPLETE" and "S_MSBSUB" not in model.primary
    assert out.primary["R_PHOTOM"] == "photom.fits" and out.primary["R_BARSHA"] == "barshadow.fits"
    for s in out.slits[:2]:
        lam = s["WAVELENGTH"].astype(float)
        level = sky(lam) / conversion(lam)
        used = (s["DQ"] & dqbits.DO_NOT_USE) == 0
        assert used.sum() > 0.9 * s["SCI"].size
        assert np.abs(s["SCI"][used] / level[used]).max() < 2e-3          # < 0.2% of the sky left
        assert np.all(s["ERR"] == model.slit(s.name)["ERR"])               # ERR untouched (official)
    s, orig = out.slits[2], src
    used = (s["DQ"] & dqbits.DO_NOT_USE) == 0
    lam = s["WAVELENGTH"].astype(float)
    resid = (s["SCI"] - orig.truth_source) / (sky(lam) / conversion(lam))
    assert np.abs(resid[used]).max() < 2e-3
    # below the master background's first wavelength: flagged, and NaN (as official: the un-calibration
    # of the background makes its flagged pixels NaN)
    low = lam < wave[0]
    assert low.any() and (s["DQ"][low] & dqbits.DO_NOT_USE).all() and np.isnan(s["SCI"][low]).all()


def test_skips_fails_and_inverse(refs):
    bkgs = [slitlet(1, background=True), slitlet(2, background=True)]
    src = slitlet(3, background=False)
    model = mos_model(*bkgs, src, EFFEXPTM=1000.0)
    done = model.copy()
    done.primary["S_BKDSUB"] = "COMPLETE"
    assert mbkg.run(done, refs).primary["S_MSBSUB"] == "SKIPPED"
    assert mbkg.run(mos_model(src), refs).primary["S_MSBSUB"] == "FAILED"           # no background slitlet
    assert mbkg.run(mos_model(*bkgs), refs).primary["S_MSBSUB"] == "FAILED"         # no source slitlet
    sub = mbkg.run(model, refs).slits[2]["SCI"].astype(float)
    added = mbkg.run(model, refs, inverse=True).slits[2]           # the background added instead
    used = (added["DQ"] & dqbits.DO_NOT_USE) == 0
    np.testing.assert_allclose(added["SCI"][used], (2 * src["SCI"] - sub)[used], rtol=1e-5)
