"""photom (NrsFsPhotomModel + NirspecSlitAreaModel) against analytic answers:
conv = photmj * relresponse(lambda) [/ (pixarea * A2_TO_SR) unless POINT]."""

import numpy as np
import pytest
from astropy.io import fits

from officialrefs import primary, write_area, write_photom
from webbspec import dq as dqbits
from webbspec.errors import InputError
from webbspec.io.datamodels import Model, Slit
from webbspec.steps import photom

A2_TO_SR = (np.pi / 648000) ** 2
AREA = {"S200A1": 0.0101, "S200A2": 0.0097}
W = np.linspace(0.9, 2.1, 9)
RR = 1.0 + 0.5 * (W - 0.9)          # linear: interpolation exact
PHOTMJ = 2.5e-3


def make_slit(name, srctype, shape=(4, 25), lam=(1.0, 2.0), nints=None):
    full = shape if nints is None else (nints,) + shape
    hdr = fits.Header({"SLTNAME": name, "SRCTYPE": srctype, "BUNIT": "DN/s"})
    return Slit(hdr, {"SCI": np.full(full, 5.0, np.float32), "ERR": np.full(full, 2.0, np.float32),
                      "DQ": np.zeros(full, np.uint32), "VAR_POISSON": np.full(full, 3.0, np.float32),
                      "VAR_RNOISE": np.full(full, 0.5, np.float32), "VAR_FLAT": np.full(full, 0.5, np.float32),
                      "WAVELENGTH": np.broadcast_to(np.linspace(*lam, shape[1]), shape).astype(np.float32).copy()})


def model_of(*slits, grating="G395M"):
    prim = fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "FILTER": "F290LP", "GRATING": grating})
    return Model(prim, list(slits), "multi")


@pytest.fixture
def refs(tmp_path):
    rows = [("F290LP", "G395M", "S200A1", PHOTMJ, W, RR), ("F290LP", "G395M", "S200A2", 2 * PHOTMJ, W * 1e-6, RR),
            ("F290LP", "G235M", "S200A1", 99.0, W, RR)]        # another grating: never matched
    return {"photom": write_photom(tmp_path / "photom.fits", rows), "area": write_area(tmp_path / "area.fits", AREA)}


def test_point_and_extended_exact(refs):
    model = model_of(make_slit("S200A1", "POINT"), make_slit("S200A2", "EXTENDED"))
    before = model.copy()
    out = photom.run(model, refs)
    p, e = out.slits
    rel = 1.0 + 0.5 * (p["WAVELENGTH"].astype(float) - 0.9)
    sr_p, sr_e = AREA["S200A1"] * A2_TO_SR, AREA["S200A2"] * A2_TO_SR
    conv_p, conv_e = PHOTMJ * rel, 2 * PHOTMJ * rel / sr_e      # S200A2's wavelengths are in metres
    for s, conv in ((p, conv_p), (e, conv_e)):
        np.testing.assert_allclose(s["SCI"], 5.0 * conv, rtol=2e-6)
        np.testing.assert_allclose(s["ERR"], 2.0 * conv, rtol=2e-6)
        for name, v in (("VAR_POISSON", 3.0), ("VAR_RNOISE", 0.5), ("VAR_FLAT", 0.5)):
            np.testing.assert_allclose(s[name], v * conv**2, rtol=4e-6)
    assert p.header["PIXAR_SR"] == pytest.approx(sr_p, rel=1e-6) and p.header["PIXAR_A2"] == pytest.approx(0.0101)
    assert e.header["PIXAR_SR"] == pytest.approx(sr_e, rel=1e-6)
    assert p.header["BUNIT"] == "MJy" and e.header["BUNIT"] == "MJy/sr"
    assert p.header["PHOTMJSR"] == pytest.approx(PHOTMJ, rel=1e-6)
    assert e.header["PHOTMJSR"] == pytest.approx(2 * PHOTMJ / sr_e, rel=1e-6)
    np.testing.assert_allclose(p["PHOTOM_PS"], conv_p, rtol=2e-6)
    np.testing.assert_allclose(p["PHOTOM_UN"], conv_p / sr_p, rtol=2e-6)
    assert "PHOTOM_PS" not in e
    assert out.primary["S_PHOTOM"] == "COMPLETE"
    assert (out.primary["R_PHOTOM"], out.primary["R_AREA"]) == ("photom.fits", "area.fits")
    np.testing.assert_array_equal(model.slits[0]["SCI"], before.slits[0]["SCI"])
    assert model.slits[0].header["BUNIT"] == "DN/s"


def test_source_type_override(refs):
    out = photom.run(model_of(make_slit("S200A1", "POINT")), refs, source_type="EXTENDED")
    s = out.slits[0]
    assert s.header["BUNIT"] == "MJy/sr"
    assert s["SCI"][0, 0] == pytest.approx(5.0 * PHOTMJ * 1.05 / (AREA["S200A1"] * A2_TO_SR), rel=2e-6)


def test_out_of_range_flagged(refs):
    slit = make_slit("S200A1", "EXTENDED", lam=(0.5, 2.5))
    out = photom.run(model_of(slit), refs).slits[0]
    lam = slit["WAVELENGTH"]
    bad = (lam < 0.9) | (lam > 2.1)
    assert bad.any() and (~bad).any()
    assert np.all(out["DQ"][bad] == dqbits.DO_NOT_USE) and not out["DQ"][~bad].any()
    for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
        assert np.isnan(out[name][bad]).all() and np.isfinite(out[name][~bad]).all()


def test_inverse_undoes_rateints(refs):
    model = model_of(make_slit("S200A1", "POINT", nints=3), make_slit("S200A2", "EXTENDED", nints=3))
    back = photom.run(photom.run(model, refs), refs, inverse=True)
    for a, b in zip(back.slits, model.slits):
        assert a["SCI"].shape == (3, 4, 25) and a.header["BUNIT"] == "DN/s"
        for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
            np.testing.assert_allclose(a[name], b[name], rtol=5e-7)


def test_rows_areas_and_wrong_files(tmp_path, refs):
    model = model_of(make_slit("S200A1", "EXTENDED"))
    assert photom.run(model, {"photom": "N/A", "area": refs["area"]}).primary["S_PHOTOM"] == "SKIPPED"
    with pytest.raises(InputError, match="absent_photom.fits"):
        photom.run(model, {"photom": str(tmp_path / "absent_photom.fits")})
    with pytest.raises(InputError, match="photom.fits: PHOTOM table has 0 rows for filter=F290LP, grating=G140M"):
        photom.run(model_of(make_slit("S200A1", "POINT"), grating="G140M"), refs)
    with pytest.raises(InputError, match="area.fits: no pixel area for slit 'S400A1'"):
        photom.run(model_of(make_slit("S400A1", "POINT")),
                   {"photom": write_photom(tmp_path / "p4.fits", [("F290LP", "G395M", "S400A1", 1.0, W, RR)]),
                    "area": refs["area"]})
    # without an area reference: POINT needs none; EXTENDED takes the slit's PIXAR_SR, else fails
    no_area = {"photom": refs["photom"], "area": "N/A"}
    assert photom.run(model_of(make_slit("S200A1", "POINT")), no_area).slits[0].header["BUNIT"] == "MJy"
    with pytest.raises(InputError, match="photom.fits: no pixel area"):
        photom.run(model, no_area)
    model.slits[0].header["PIXAR_SR"] = 3e-13
    assert photom.run(model, no_area).slits[0]["SCI"][0, 0] == pytest.approx(5.0 * PHOTMJ * 1.05 / 3e-13, rel=2e-6)
    with pytest.raises(InputError, match="area.fits: REFTYPE is 'AREA', not a photom"):
        photom.run(model, {"photom": refs["area"], "area": refs["area"]})
    fake = tmp_path / "fake_area.fits"
    fits.HDUList([primary("area", "NirspecMosAreaModel")]).writeto(fake)
    with pytest.raises(InputError, match="fake_area.fits: DATAMODL is 'NirspecMosAreaModel'"):
        photom.run(model, {"photom": refs["photom"], "area": str(fake)})
