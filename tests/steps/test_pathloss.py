"""pathloss (official PathlossModel) against analytic answers: planes linear in the source
position and in wavelength, so the official bilinear / linear interpolation is exact."""

import numpy as np
import pytest
from astropy.io import fits

from officialrefs import primary, write_pathloss
from webbspec import dq as dqbits
from webbspec.errors import InputError
from webbspec.io.datamodels import Model, Slit
from webbspec.steps import pathloss

LAM = np.linspace(0.9, 2.1, 13)                   # um; the file's WCS is in metres
XG, YG = np.linspace(-0.5, 0.5, 11), np.linspace(-0.5, 0.5, 5)


def ps_true(lam, x, y):
    return 0.9 - 0.2 * (lam - 0.9) - 0.3 * x + 0.1 * y


def un_true(lam):
    return 0.95 - 0.05 * (lam - 0.9)


def aperture(scale=1.0):
    cube = ps_true(LAM[:, None, None], XG[None, None, :], YG[None, :, None]) * scale
    w3 = (-0.5, 0.1, -0.5, 0.25, LAM[0] * 1e-6, 0.1e-6)
    return cube, w3, un_true(LAM) * scale, (LAM[0] * 1e-6, 0.1e-6)


def make_slit(name, srctype, shape=(5, 30), lam=(1.0, 2.0), nints=None, pos=(0.13, -0.21)):
    ny, nx = shape
    full = shape if nints is None else (nints,) + shape
    hdr = fits.Header({"SLTNAME": name, "SRCTYPE": srctype, "SRCXPOS": pos[0], "SRCYPOS": pos[1]})
    return Slit(hdr, {"SCI": np.full(full, 8.0, np.float32), "ERR": np.full(full, 2.0, np.float32),
                      "DQ": np.zeros(full, np.uint32), "VAR_POISSON": np.full(full, 3.0, np.float32),
                      "VAR_RNOISE": np.full(full, 0.5, np.float32), "VAR_FLAT": np.full(full, 0.5, np.float32),
                      "WAVELENGTH": np.broadcast_to(np.linspace(*lam, nx), shape).astype(np.float32).copy()})


def model_of(*slits):
    return Model(fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT"}), list(slits), "multi")


@pytest.fixture
def ref(tmp_path):
    return write_pathloss(tmp_path / "pathloss.fits", {"S200A1": aperture(), "S200A2": aperture(0.9)})


def test_point_and_extended_exact(ref):
    model = model_of(make_slit("S200A1", "POINT"), make_slit("S200A2", "EXTENDED", pos=(0.0, 0.0)))
    before = model.copy()
    out = pathloss.run(model, {"pathloss": ref})
    for slit, kind, scale in zip(out.slits, ("POINT", "UNIFORM"), (1.0, 0.9)):
        lam = slit["WAVELENGTH"].astype(float)
        ps = ps_true(lam, slit.header["SRCXPOS"], slit.header["SRCYPOS"]) * scale
        un = un_true(lam) * scale
        c = ps if kind == "POINT" else un
        np.testing.assert_allclose(slit["SCI"], 8.0 / c, rtol=3e-6)
        np.testing.assert_allclose(slit["ERR"], 2.0 / c, rtol=3e-6)
        for name, v in (("VAR_POISSON", 3.0), ("VAR_RNOISE", 0.5), ("VAR_FLAT", 0.5)):
            np.testing.assert_allclose(slit[name], v / c**2, rtol=5e-6)
        np.testing.assert_allclose(slit["PATHLOSS_PS"], ps, rtol=3e-6)
        np.testing.assert_allclose(slit["PATHLOSS_UN"], un, rtol=3e-6)
        assert slit.header["PTHLOSS"] == kind
    assert out.primary["S_PTHLOS"] == "COMPLETE" and out.primary["R_PTHLOS"] == "pathloss.fits"
    np.testing.assert_array_equal(model.slits[0]["SCI"], before.slits[0]["SCI"])
    assert "PATHLOSS_PS" not in model.slits[0] and "S_PTHLOS" not in model.primary


def test_source_outside_the_grid_is_not_corrected(ref):
    """Official: a position at or beyond the last grid node (index >= n - 1) skips the slit."""
    out = pathloss.run(model_of(make_slit("S200A1", "POINT", pos=(0.5, 0.0))), {"pathloss": ref})
    s = out.slits[0]
    assert np.all(s["SCI"] == 8.0) and "PATHLOSS_PS" not in s and out.primary["S_PTHLOS"] == "SKIPPED"


def test_source_type_override(ref):
    out = pathloss.run(model_of(make_slit("S200A1", "POINT")), {"pathloss": ref}, source_type="EXTENDED")
    s = out.slits[0]
    np.testing.assert_allclose(s["SCI"], 8.0 / s["PATHLOSS_UN"], rtol=2e-6)
    assert s.header["PTHLOSS"] == "UNIFORM"


def test_out_of_range_flagged_everywhere(ref):
    slit = make_slit("S200A1", "POINT", lam=(0.5, 2.5))
    slit["WAVELENGTH"][2, 15] = np.nan
    out = pathloss.run(model_of(slit), {"pathloss": ref}).slits[0]
    lam = slit["WAVELENGTH"].astype(float)
    bad = ~((lam >= LAM[0] - 1e-7) & (lam <= LAM[-1] + 1e-7))
    assert bad.sum() > 10 and bad[2, 15]
    assert np.all(out["DQ"][bad] == dqbits.DO_NOT_USE) and not out["DQ"][~bad].any()
    for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
        assert np.isnan(out[name][bad]).all() and np.isfinite(out[name][~bad]).all()


def test_inverse_undoes_and_rateints(ref):
    model = model_of(make_slit("S200A1", "POINT", nints=2), make_slit("S200A2", "EXTENDED", nints=2))
    back = pathloss.run(pathloss.run(model, {"pathloss": ref}), {"pathloss": ref}, inverse=True)
    for a, b in zip(back.slits, model.slits):
        assert a["SCI"].shape == (2, 5, 30)
        for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
            np.testing.assert_allclose(a[name], b[name], rtol=5e-7)


def test_missing_and_wrong_references(tmp_path, ref):
    model = model_of(make_slit("S200A1", "POINT"))
    assert pathloss.run(model, {"pathloss": "N/A"}).primary["S_PTHLOS"] == "SKIPPED"
    with pytest.raises(InputError, match="gone_pathloss.fits"):
        pathloss.run(model, {"pathloss": str(tmp_path / "gone_pathloss.fits")})
    with pytest.raises(InputError, match="pathloss.fits.*S1600A1"):
        pathloss.run(model_of(make_slit("S1600A1", "POINT")), {"pathloss": ref})
    photom_file = tmp_path / "photom_not_pathloss.fits"
    fits.HDUList([primary("photom", "NrsFsPhotomModel")]).writeto(photom_file)
    with pytest.raises(InputError, match="photom_not_pathloss.fits: REFTYPE is 'PHOTOM'"):
        pathloss.run(model, {"pathloss": str(photom_file)})
    no_ps = tmp_path / "no_ps.fits"
    fits.HDUList([primary("pathloss", "PathlossModel")]).writeto(no_ps)
    with pytest.raises(InputError, match="no_ps.fits: pathloss reference has no PS"):
        pathloss.run(model, {"pathloss": str(no_ps)})
