"""pathloss against analytic answers: a constant slit divided by PS (POINT) or UN (EXTENDED)."""

import numpy as np
import pytest
from astropy.io import fits

from webbspec import dq as dqbits
from webbspec.io.datamodels import Model, Slit
from webbspec.errors import InputError
from webbspec.steps import pathloss


def write_pathloss(path, rows):
    """rows: {slit: (wave [um], PS, UN)} -> PATHLOSS BinTable (fixed-width, zero-padded arrays)."""
    n = max(len(r[0]) for r in rows.values())
    arr = {k: np.zeros((len(rows), n)) for k in ("WAVELENGTH", "PS", "UN")}
    for i, (w, ps, un) in enumerate(rows.values()):
        arr["WAVELENGTH"][i, :len(w)], arr["PS"][i, :len(w)], arr["UN"][i, :len(w)] = w, ps, un
    cols = [fits.Column("SLIT_NAME", "20A", array=np.array(list(rows)))]
    cols += [fits.Column(k, f"{n}D", array=v) for k, v in arr.items()]
    prim = fits.PrimaryHDU()
    prim.header["REFTYPE"] = "PATHLOSS"
    fits.HDUList([prim, fits.BinTableHDU.from_columns(cols, name="PATHLOSS")]).writeto(path)
    return str(path)


def make_slit(name, srctype, shape=(5, 30), lam=(1.0, 2.0), nints=None):
    ny, nx = shape
    full = shape if nints is None else (nints,) + shape
    hdr = fits.Header({"SLTNAME": name, "SRCTYPE": srctype, "SRCXPOS": 0.0, "SRCYPOS": 0.0})
    return Slit(hdr, {"SCI": np.full(full, 8.0, np.float32), "ERR": np.full(full, 2.0, np.float32),
                      "DQ": np.zeros(full, np.uint32), "VAR_POISSON": np.full(full, 3.0, np.float32),
                      "VAR_RNOISE": np.full(full, 0.5, np.float32), "VAR_FLAT": np.full(full, 0.5, np.float32),
                      "WAVELENGTH": np.broadcast_to(np.linspace(*lam, nx), shape).astype(np.float32).copy()})


def model_of(*slits, exp_type="NRS_FIXEDSLIT", layout="multi"):
    return Model(fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": exp_type}), list(slits), layout)


W = np.linspace(0.9, 2.1, 13)
PS = 0.9 - 0.2 * (W - 0.9)          # linear in lambda: interpolation exact
UN = 0.95 - 0.05 * (W - 0.9)


@pytest.fixture
def ref(tmp_path):
    return write_pathloss(tmp_path / "pathloss.fits", {"S200A1": (W, PS, UN), "S200A2": (W, PS, UN)})


def test_point_and_extended_exact(ref):
    model = model_of(make_slit("S200A1", "POINT"), make_slit("S200A2", "EXTENDED"))
    before = model.copy()
    out = pathloss.run(model, {"pathloss": ref})
    for slit, kind in zip(out.slits, ("POINT", "UNIFORM")):
        lam = slit["WAVELENGTH"].astype(float)
        ps, un = 0.9 - 0.2 * (lam - 0.9), 0.95 - 0.05 * (lam - 0.9)
        c = ps if kind == "POINT" else un
        np.testing.assert_allclose(slit["SCI"], 8.0 / c, rtol=2e-6)
        np.testing.assert_allclose(slit["ERR"], 2.0 / c, rtol=2e-6)
        np.testing.assert_allclose(slit["VAR_POISSON"], 3.0 / c**2, rtol=2e-6)
        np.testing.assert_allclose(slit["VAR_RNOISE"], 0.5 / c**2, rtol=2e-6)
        np.testing.assert_allclose(slit["VAR_FLAT"], 0.5 / c**2, rtol=2e-6)
        np.testing.assert_allclose(slit["PATHLOSS_PS"], ps, rtol=2e-6)
        np.testing.assert_allclose(slit["PATHLOSS_UN"], un, rtol=2e-6)
        assert slit.header["PTHLOSS"] == kind
    assert out.primary["S_PTHLOS"] == "COMPLETE" and out.primary["R_PTHLOS"] == "pathloss.fits"
    np.testing.assert_array_equal(model.slits[0]["SCI"], before.slits[0]["SCI"])
    assert "PATHLOSS_PS" not in model.slits[0] and "S_PTHLOS" not in model.primary


def test_source_type_override(ref):
    out = pathloss.run(model_of(make_slit("S200A1", "POINT")), {"pathloss": ref}, source_type="EXTENDED")
    s = out.slits[0]
    np.testing.assert_allclose(s["SCI"], 8.0 / s["PATHLOSS_UN"], rtol=2e-6)
    assert s.header["PTHLOSS"] == "UNIFORM"


def test_out_of_range_flagged_everywhere(ref):
    slit = make_slit("S200A1", "POINT", lam=(0.5, 2.5))
    slit["WAVELENGTH"][2, 15] = np.nan
    out = pathloss.run(model_of(slit), {"pathloss": ref}).slits[0]
    lam = slit["WAVELENGTH"]
    bad = ~((lam >= 0.9) & (lam <= 2.1))
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


def test_miri_lrs_multiplies_point_only(tmp_path):
    ref = write_pathloss(tmp_path / "lrs_pathloss.fits", {"ANY": (W, PS, UN)})
    point = model_of(make_slit("", "POINT"), exp_type="MIR_LRS-FIXEDSLIT", layout="single")
    out = pathloss.run(point, {"pathloss": ref}).slits[0]
    np.testing.assert_allclose(out["SCI"], 8.0 * out["PATHLOSS_PS"], rtol=2e-6)
    ext = model_of(make_slit("", "EXTENDED"), exp_type="MIR_LRS-FIXEDSLIT", layout="single")
    res = pathloss.run(ext, {"pathloss": ref})
    assert res.primary["S_PTHLOS"] == "SKIPPED" and np.all(res.slits[0]["SCI"] == 8.0)


def test_missing_reference(tmp_path, ref):
    model = model_of(make_slit("S200A1", "POINT"))
    assert pathloss.run(model, {"pathloss": "N/A"}).primary["S_PTHLOS"] == "SKIPPED"
    with pytest.raises(InputError, match="gone_pathloss.fits"):
        pathloss.run(model, {"pathloss": str(tmp_path / "gone_pathloss.fits")})
    with pytest.raises(InputError, match="pathloss.fits.*S1600A1"):
        pathloss.run(model_of(make_slit("S1600A1", "POINT")), {"pathloss": ref})
