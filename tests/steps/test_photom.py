"""photom against analytic answers: conv = PHOTMJ * RELRESPONSE(lambda) [/ PIXAR_SR unless POINT]."""

import numpy as np
import pytest
from astropy.io import fits

from webbspec import dq as dqbits
from webbspec.io.datamodels import Model, Slit
from webbspec.errors import InputError
from webbspec.steps import photom

PIXAR_A2 = 0.01
PIXAR_SR = PIXAR_A2 * (np.pi / 648000) ** 2


def write_photom(path, rows, *, pixar=True):
    """rows: {slit: (PHOTMJ, wave [um], RELRESPONSE)} -> PHOTOM BinTable; PIXAR_* in PRIMARY."""
    n = max(len(r[1]) for r in rows.values())
    wave, rel = np.zeros((len(rows), n)), np.zeros((len(rows), n))
    for i, (_, w, r) in enumerate(rows.values()):
        wave[i, :len(w)], rel[i, :len(r)] = w, r
    cols = [fits.Column("SLIT_NAME", "20A", array=np.array(list(rows))),
            fits.Column("PHOTMJ", "D", array=np.array([r[0] for r in rows.values()])),
            fits.Column("NELEM", "J", array=np.array([len(r[1]) for r in rows.values()])),
            fits.Column("WAVELENGTH", f"{n}D", array=wave), fits.Column("RELRESPONSE", f"{n}D", array=rel)]
    prim = fits.PrimaryHDU()
    prim.header["REFTYPE"] = "PHOTOM"
    if pixar:
        prim.header["PIXAR_SR"], prim.header["PIXAR_A2"] = PIXAR_SR, PIXAR_A2
    fits.HDUList([prim, fits.BinTableHDU.from_columns(cols, name="PHOTOM")]).writeto(path)
    return str(path)


def make_slit(name, srctype, shape=(4, 25), lam=(1.0, 2.0), nints=None):
    full = shape if nints is None else (nints,) + shape
    hdr = fits.Header({"SLTNAME": name, "SRCTYPE": srctype, "BUNIT": "DN/s"})
    return Slit(hdr, {"SCI": np.full(full, 5.0, np.float32), "ERR": np.full(full, 2.0, np.float32),
                      "DQ": np.zeros(full, np.uint32), "VAR_POISSON": np.full(full, 3.0, np.float32),
                      "VAR_RNOISE": np.full(full, 0.5, np.float32), "VAR_FLAT": np.full(full, 0.5, np.float32),
                      "WAVELENGTH": np.broadcast_to(np.linspace(*lam, shape[1]), shape).astype(np.float32).copy()})


def model_of(*slits):
    return Model(fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT"}), list(slits), "multi")


W = np.linspace(0.9, 2.1, 9)
RR = 1.0 + 0.5 * (W - 0.9)          # linear: interpolation exact
PHOTMJ = 2.5e-3


@pytest.fixture
def ref(tmp_path):
    return write_photom(tmp_path / "photom.fits", {"S200A1": (PHOTMJ, W, RR), "S200A2": (2 * PHOTMJ, W, RR)})


def test_point_and_extended_exact(ref):
    model = model_of(make_slit("S200A1", "POINT"), make_slit("S200A2", "EXTENDED"))
    before = model.copy()
    out = photom.run(model, {"photom": ref})
    p, e = out.slits
    rel = 1.0 + 0.5 * (p["WAVELENGTH"].astype(float) - 0.9)
    conv_p, conv_e = PHOTMJ * rel, 2 * PHOTMJ * rel / PIXAR_SR
    for s, conv in ((p, conv_p), (e, conv_e)):
        np.testing.assert_allclose(s["SCI"], 5.0 * conv, rtol=2e-6)
        np.testing.assert_allclose(s["ERR"], 2.0 * conv, rtol=2e-6)
        for name, v in (("VAR_POISSON", 3.0), ("VAR_RNOISE", 0.5), ("VAR_FLAT", 0.5)):
            np.testing.assert_allclose(s[name], v * conv**2, rtol=2e-6)
        assert s.header["PIXAR_SR"] == pytest.approx(PIXAR_SR) and s.header["PIXAR_A2"] == PIXAR_A2
    assert p.header["BUNIT"] == "MJy" and e.header["BUNIT"] == "MJy/sr"
    assert p.header["PHOTMJSR"] == pytest.approx(PHOTMJ)
    assert e.header["PHOTMJSR"] == pytest.approx(2 * PHOTMJ / PIXAR_SR)
    np.testing.assert_allclose(p["PHOTOM_PS"], conv_p, rtol=2e-6)
    np.testing.assert_allclose(p["PHOTOM_UN"], conv_p / PIXAR_SR, rtol=2e-6)
    assert "PHOTOM_PS" not in e
    assert out.primary["S_PHOTOM"] == "COMPLETE" and out.primary["R_PHOTOM"] == "photom.fits"
    np.testing.assert_array_equal(model.slits[0]["SCI"], before.slits[0]["SCI"])
    assert model.slits[0].header["BUNIT"] == "DN/s"


def test_source_type_override(ref):
    out = photom.run(model_of(make_slit("S200A1", "POINT")), {"photom": ref}, source_type="EXTENDED")
    s = out.slits[0]
    assert s.header["BUNIT"] == "MJy/sr"
    assert s["SCI"][0, 0] == pytest.approx(5.0 * PHOTMJ * 1.05 / PIXAR_SR, rel=2e-6)   # lambda 1.0: RR 1.05


def test_out_of_range_flagged(ref):
    slit = make_slit("S200A1", "EXTENDED", lam=(0.5, 2.5))
    out = photom.run(model_of(slit), {"photom": ref}).slits[0]
    lam = slit["WAVELENGTH"]
    bad = (lam < 0.9) | (lam > 2.1)
    assert bad.any() and (~bad).any()
    assert np.all(out["DQ"][bad] == dqbits.DO_NOT_USE) and not out["DQ"][~bad].any()
    for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
        assert np.isnan(out[name][bad]).all() and np.isfinite(out[name][~bad]).all()


def test_inverse_undoes_rateints(ref):
    model = model_of(make_slit("S200A1", "POINT", nints=3), make_slit("S200A2", "EXTENDED", nints=3))
    fwd = photom.run(model, {"photom": ref})
    back = photom.run(fwd, {"photom": ref}, inverse=True)
    for a, b in zip(back.slits, model.slits):
        assert a["SCI"].shape == (3, 4, 25) and a.header["BUNIT"] == "DN/s"
        for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
            np.testing.assert_allclose(a[name], b[name], rtol=5e-7)


def test_missing_reference_and_pixar(tmp_path, ref):
    model = model_of(make_slit("S200A1", "EXTENDED"))
    assert photom.run(model, {"photom": "N/A"}).primary["S_PHOTOM"] == "SKIPPED"
    with pytest.raises(InputError, match="absent_photom.fits"):
        photom.run(model, {"photom": str(tmp_path / "absent_photom.fits")})
    nopix = write_photom(tmp_path / "nopix.fits", {"S200A1": (PHOTMJ, W, RR)}, pixar=False)
    with pytest.raises(InputError, match="nopix.fits.*PIXAR_SR"):
        photom.run(model, {"photom": nopix})
    # POINT needs no pixel area; the slit's own PIXAR_SR serves an extended source
    assert photom.run(model_of(make_slit("S200A1", "POINT")), {"photom": nopix}).slits[0].header["BUNIT"] == "MJy"
    model.slits[0].header["PIXAR_SR"] = PIXAR_SR
    s = photom.run(model, {"photom": nopix}).slits[0]
    assert s["SCI"][0, 0] == pytest.approx(5.0 * PHOTMJ * 1.05 / PIXAR_SR, rel=2e-6)   # lambda 1.0: RR 1.05
