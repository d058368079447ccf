"""flat_field (quadrant fflat), pathloss (1x1 / 1x3 apertures by shutter state) and photom (area
per shutter) on NIRSpec MOS slitlets, against analytic answers: every reference is linear in the
quantities the official code interpolates, so the interpolations are exact.
(Against the official steps: tests/official/test_nrs_mos_spec2_official.py.)"""

import logging

import numpy as np
import pytest

from mosrefs import NCOL, NROW, mos_model, mos_slitlet, write_mos_area, write_mos_pathloss, write_mos_photom, \
    write_quad_fflat
from officialrefs import write_nrs_flat
from webbspec.errors import InputError
from webbspec.steps import flat_field, pathloss, photom

PLANES = np.array([0.9, 2.1])               # um: the quadrant flat's planes
TAB = np.linspace(1.0, 2.0, 11)             # um: fast-variation table


def cube(q, plane):
    col, row = np.mgrid[1:NCOL + 1, 1:NROW + 1]
    return 1 + 0.01 * q + 1e-4 * row + 2e-4 * col + 0.05 * plane


def shutter_flat(q, row, col, lam):
    """The analytic MOS fore-optics flat of shutter (row, col) of quadrant q at ``lam``."""
    a, b = cube(q, 0)[col - 1, row - 1], cube(q, 1)[col - 1, row - 1]
    return (1 + 0.1 * q) * (a + (b - a) * (lam - PLANES[0]) / (PLANES[1] - PLANES[0]))


@pytest.fixture
def quad_fflat(tmp_path):
    quads = {q: (PLANES, np.stack([cube(q, 0), cube(q, 1)]), 0.01 * np.stack([cube(q, 0), cube(q, 1)]),
                 (TAB, np.full(TAB.size, 1 + 0.1 * q), np.full(TAB.size, 0.002))) for q in (1, 2, 3, 4)}
    return write_quad_fflat(tmp_path / "fflat_quad.fits", quads)


def test_quadrant_fflat_per_shutter(quad_fflat, tmp_path):
    slits = [mos_slitlet(1, quadrant=3, xcen=100, ycen=50), mos_slitlet(2, quadrant=1, xcen=7, ycen=160),
             mos_slitlet(3, quadrant=4, xcen=365, ycen=1, srctype="POINT", keywords=False)]   # SHUTTRID only
    out = flat_field.run(mos_model(*slits), {"fflat": quad_fflat})
    assert out.primary["S_FLAT"] == "COMPLETE" and out.primary["R_FFLAT"] == "fflat_quad.fits"
    for s, (q, row, col) in zip(out.slits, ((3, 100, 50), (1, 7, 160), (4, 365, 1))):
        lam = s["WAVELENGTH"].astype(float)
        f = shutter_flat(q, row, col, lam)
        np.testing.assert_allclose(s["SCI"], 10.0 / f, rtol=2e-6)
        img_err = 0.01 * f / (1 + 0.1 * q)                   # the shutter's ERR spectrum at lam
        ferr = np.sqrt(0.002 ** 2 + (img_err * f) ** 2)
        np.testing.assert_allclose(s["VAR_FLAT"], (10.0 / f * ferr / f) ** 2, rtol=2e-5)
        np.testing.assert_allclose(s["VAR_POISSON"], 4.0 / f ** 2, rtol=2e-6)
    fs_flat = write_nrs_flat(tmp_path / "fs_fflat.fits", "fflat", {"ANY": (TAB, np.ones(TAB.size), 0 * TAB)},
                             sci=np.ones((1, 1)))
    with pytest.raises(InputError, match="fs_fflat.fits: not a quadrant fflat; MOS slitlets need"):
        flat_field.run(mos_model(*slits), {"fflat": fs_flat})
    with pytest.raises(InputError, match="quadrant 4 has no shutter at row 366"):
        flat_field.run(mos_model(mos_slitlet(4, quadrant=4, xcen=366, ycen=1)), {"fflat": quad_fflat})


LAM = np.linspace(0.9, 2.1, 13)             # um (the pathloss WCS is in metres)


def ps_true(lam, x, y, offset):
    return offset - 0.2 * (lam - 0.9) - 0.3 * x + 0.1 * y


def un_true(lam, offset):
    return offset - 0.05 * (lam - 0.9)


def aperture(shutters, offset):
    ys = np.linspace(-0.5, 0.5, 11) if shutters == 1 else np.linspace(-1.5, 1.5, 31)
    xs = np.linspace(-0.5, 0.5, 11)
    cube_ = ps_true(LAM[:, None, None], xs[None, None, :], ys[None, :, None], offset)
    return (shutters, cube_, (-0.5, 0.1, ys[0], 0.1, LAM[0] * 1e-6, 0.1e-6), un_true(LAM, offset + 0.1),
            (LAM[0] * 1e-6, 0.1e-6))


# (SHUTSTA, SRCTYPE, the aperture's PS offset (1x1: 0.8, 1x3: 0.9), source y shift in its grid)
@pytest.mark.parametrize("state, srctype, offset, dy", [
    ("1x1", "POINT", 0.9, 0.0), ("x", "POINT", 0.8, 0.0), ("0x1", "POINT", 0.9, -1.0), ("1x0", "POINT", 0.9, 1.0),
    ("x1", "POINT", 0.9, -1.0), ("1x1", "EXTENDED", 0.9, 0.0), ("x", "EXTENDED", 0.8, 0.0),
    ("x1", "EXTENDED", 0.9, -1.0)])
def test_pathloss_aperture_by_shutters(tmp_path, state, srctype, offset, dy):
    ref = write_mos_pathloss(tmp_path / "pl.fits", {"MOS1x1": aperture(1, 0.8), "MOS1x3": aperture(3, 0.9)})
    slit = mos_slitlet(1, state=state, srctype=srctype, xpos=0.13, ypos=-0.21)
    out = pathloss.run(mos_model(slit), {"pathloss": ref}).slits[0]
    lam = out["WAVELENGTH"].astype(float)
    ps = ps_true(lam, 0.13, -0.21 + dy, offset)
    np.testing.assert_allclose(out["PATHLOSS_PS"], ps, rtol=3e-6)
    # the uniform throughput: the aperture's (offset + 0.1); two shutters: the 1x1 / 1x3 mean
    un = un_true(lam, (offset if len(state) != 2 else 0.85) + 0.1)
    np.testing.assert_allclose(out["PATHLOSS_UN"], un, rtol=3e-6)
    c = ps if srctype == "POINT" else un
    np.testing.assert_allclose(out["SCI"], 10.0 / c, rtol=3e-6)
    assert out.header["PTHLOSS"] == ("POINT" if srctype == "POINT" else "UNIFORM")


def test_pathloss_source_outside_the_grid(tmp_path):
    ref = write_mos_pathloss(tmp_path / "pl.fits", {"MOS1x1": aperture(1, 0.8), "MOS1x3": aperture(3, 0.9)})
    out = pathloss.run(mos_model(mos_slitlet(1, state="x", srctype="POINT", xpos=0.1, ypos=0.6)), {"pathloss": ref})
    assert out.primary["S_PTHLOS"] == "SKIPPED" and np.all(out.slits[0]["SCI"] == 10.0)


A2_TO_SR = (np.pi / 648000.0) ** 2


def rel(lam):
    return 1.0 + 0.2 * (lam - 1.5)


def test_photom_area_per_shutter(tmp_path, caplog):
    ph = write_mos_photom(tmp_path / "photom.fits", [("F290LP", "G395M", 2e-12, TAB, rel(TAB)),
                                                     ("F290LP", "G235M", 9e-12, TAB, rel(TAB))],
                          PIXAR_SR=2.5e-13, PIXAR_A2=0.0106)
    area = write_mos_area(tmp_path / "area.fits", {(3, 100, 50): 0.0101, (4, 7, 8): 0.0104, (1, 1, 1): 0.02})
    slits = [mos_slitlet(1, quadrant=3, xcen=100, ycen=50), mos_slitlet(2, quadrant=4, xcen=7, ycen=8,
                                                                       srctype="POINT", keywords=False),
             mos_slitlet(3, quadrant=2, xcen=9, ycen=9)]
    with caplog.at_level(logging.WARNING):
        out = photom.run(mos_model(*slits), {"photom": ph, "area": area})
    assert "no pixel area for slitlet 3 (quadrant 2, shutter row 9, column 9)" in caplog.text
    ext, point, missing = out.slits
    lam = ext["WAVELENGTH"].astype(float)
    sr = 0.0101 * A2_TO_SR
    np.testing.assert_allclose(ext["SCI"], 10.0 * 2e-12 / sr * rel(lam), rtol=3e-6)
    assert (ext.header["BUNIT"], ext.header["PIXAR_A2"]) == ("MJy/sr", pytest.approx(0.0101))
    assert ext.header["PIXAR_SR"] == pytest.approx(sr)
    np.testing.assert_allclose(point["SCI"], 10.0 * 2e-12 * rel(lam), rtol=3e-6)
    assert (point.header["BUNIT"], point.header["PIXAR_A2"]) == ("MJy", pytest.approx(0.0104))
    np.testing.assert_allclose(missing["SCI"], 10.0 * 2e-12 / 2.5e-13 * rel(lam), rtol=3e-6)   # nominal area
    back = photom.run(out, {"photom": ph, "area": area}, inverse=True)
    np.testing.assert_allclose(back.slits[0]["SCI"], 10.0, rtol=3e-6)


def test_wavecorr_uses_the_mos_aperture(tmp_path):
    """Every MSA slitlet takes the "MOS" aperture: a zero-point offset of 2 x SRCXPOS pixels here
    (the fixed-slit aperture of the same file says 5 x), applied to POINT slitlets only."""
    from astropy.modeling.models import Tabular2D
    from stdatamodels.jwst import datamodels as dm

    from webbspec.steps import wavecorr

    lam = np.linspace(0.5e-6, 3e-6, 6)
    xpos = np.linspace(-0.5, 0.5, 5)
    aps = [{"aperture_name": name, "width": 1e-4, "variance": np.zeros((6, 5), np.float32),
            "zero_point_offset": Tabular2D(points=(lam, xpos), lookup_table=k * np.broadcast_to(xpos, (6, 5)),
                                           bounds_error=False, fill_value=None)}
           for name, k in (("MOS", 2.0), ("S200A1", 5.0))]
    ref = dm.WaveCorrModel(apertures=aps)
    ref.meta.reftype, ref.meta.instrument.name, ref.meta.author = "WAVECORR", "NIRSPEC", "test"
    ref.meta.description, ref.meta.pedigree, ref.meta.useafter = "test", "DUMMY", "2000-01-01T00:00:00"
    path = str(tmp_path / "wavecorr.asdf")
    ref.save(path)
    point = mos_slitlet(1, srctype="POINT", xpos=0.25)
    ext = mos_slitlet(2, srctype="EXTENDED", xpos=0.25)
    out = wavecorr.run(mos_model(point, ext), {"wavecorr": path})
    assert out.primary["S_WAVCOR"] == "COMPLETE" and out.slits[0].header["WAVECOR"] is True
    w0 = point["WAVELENGTH"].astype(float)
    d = w0[0, 1] - w0[0, 0]
    np.testing.assert_allclose(out.slits[0]["WAVELENGTH"], w0 + 0.5 * d, rtol=1e-6)
    np.testing.assert_array_equal(out.slits[1]["WAVELENGTH"], ext["WAVELENGTH"])
