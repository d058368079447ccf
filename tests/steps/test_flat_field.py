"""flat_field against analytic answers on small synthetic slits and reference files."""

import numpy as np
import pytest
from astropy.io import fits

from webbspec import dq as dqbits
from webbspec.io.datamodels import Model, Slit
from webbspec.errors import InputError
from webbspec.pipeline.steprun import run_step
from webbspec.steps import flat_field

DET = (64, 80)                       # small "detector" (ny, nx)
BAD = dqbits.DO_NOT_USE | dqbits.NO_FLAT_FIELD


def write_flat(path, pix, fast, *, err=None, dq=None, fast_err=None, nelem_pad=0):
    """A flat reference: SCI pixel flat, optional ERR/DQ, FAST_VARIATION rows {slit: (wave, data)}."""
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(np.asarray(pix, np.float32), name="SCI")]
    if err is not None:
        hdus.append(fits.ImageHDU(np.asarray(err, np.float32), name="ERR"))
    if dq is not None:
        hdus.append(fits.ImageHDU(np.asarray(dq, np.uint32), name="DQ"))
    hdus[0].header["REFTYPE"] = "FLAT"
    n = max(len(w) for w, _ in fast.values()) + nelem_pad
    names = list(fast)
    wave = np.zeros((len(names), n))
    data = np.zeros((len(names), n))
    for k, name in enumerate(names):
        w, d = fast[name]
        wave[k, :len(w)], data[k, :len(d)] = w, d
    cols = [fits.Column("SLIT_NAME", "20A", array=np.array(names)),
            fits.Column("WAVELENGTH", f"{n}D", array=wave), fits.Column("DATA", f"{n}D", array=data)]
    if fast_err is not None:
        e = np.zeros((len(names), n))
        for k, name in enumerate(names):
            e[k, :len(fast_err[name])] = fast_err[name]
        cols.append(fits.Column("ERROR", f"{n}D", array=e))
    hdus.append(fits.BinTableHDU.from_columns(cols, name="FAST_VARIATION"))
    fits.HDUList(hdus).writeto(path)
    return str(path)


def make_slit(name, start, shape=(6, 20), sci=10.0, vp=4.0, vr=1.0, lam=(1.0, 2.0), nints=None,
              srctype="POINT"):
    ny, nx = shape
    wave = np.broadcast_to(np.linspace(*lam, nx), shape).astype(np.float32)
    full = shape if nints is None else (nints,) + shape
    hdr = fits.Header({"SLTNAME": name, "SLTSTRT1": start[0], "SLTSTRT2": start[1],
                       "SLTSIZE1": nx, "SLTSIZE2": ny, "SRCTYPE": srctype})
    return Slit(hdr, {"SCI": np.full(full, sci, np.float32), "ERR": np.full(full, np.sqrt(vp + vr), np.float32),
                      "DQ": np.zeros(full, np.uint32), "VAR_POISSON": np.full(full, vp, np.float32),
                      "VAR_RNOISE": np.full(full, vr, np.float32), "WAVELENGTH": wave.copy()})


def make_model(*slits):
    primary = fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT"})
    return Model(primary, list(slits), "multi")


def fast_linear(lo=0.8, hi=2.2):
    w = np.linspace(lo, hi, 15)
    return w, 0.5 + 0.5 * w          # linear: interpolation is exact


def pixel_flat():
    y, x = np.mgrid[0:DET[0], 0:DET[1]]
    return 1.0 + 0.01 * x + 0.005 * y


def test_constant_slit_exact(tmp_path):
    pix, perr = pixel_flat(), 0.02 * pixel_flat()
    path = write_flat(tmp_path / "flat.fits", pix, {"S200A1": fast_linear(), "S400A1": fast_linear()},
                      err=perr)
    model = make_model(make_slit("S200A1", (11, 5)), make_slit("S400A1", (31, 40), srctype="EXTENDED"))
    before = model.copy()
    out = flat_field.run(model, {"flat": path})
    for slit, (x0, y0) in zip(out.slits, ((10, 4), (30, 39))):
        lam = slit["WAVELENGTH"].astype(float)
        f = pix[y0:y0 + 6, x0:x0 + 20] * (0.5 + 0.5 * lam)
        sci = 10.0 / f
        np.testing.assert_allclose(slit["SCI"], sci, rtol=2e-6)
        np.testing.assert_allclose(slit["VAR_POISSON"], 4.0 / f**2, rtol=2e-6)
        np.testing.assert_allclose(slit["VAR_RNOISE"], 1.0 / f**2, rtol=2e-6)
        vf = (sci * 0.02) ** 2                      # ferr/f = 0.02 (relative pixel-flat error)
        np.testing.assert_allclose(slit["VAR_FLAT"], vf, rtol=5e-6)
        np.testing.assert_allclose(slit["ERR"], np.sqrt(5.0 / f**2 + vf), rtol=2e-6)
        assert not slit["DQ"].any()
    assert "FLATFIELD_PS" in out.slits[0] and "FLATFIELD_PS" not in out.slits[1]
    assert out.primary["S_FLAT"] == "COMPLETE" and out.primary["R_FLAT"] == "flat.fits"
    for a, b in zip(model.slits, before.slits):        # input untouched
        for k in a.arrays:
            np.testing.assert_array_equal(a[k], b[k])
    assert "S_FLAT" not in model.primary


def test_fast_variation_error_adds_in_quadrature(tmp_path):
    w, d = fast_linear()
    path = write_flat(tmp_path / "flat.fits", np.full(DET, 2.0), {"S200A1": (w, d)},
                      err=np.full(DET, 0.1), fast_err={"S200A1": 0.03 * d})
    out = flat_field.run(make_model(make_slit("S200A1", (1, 1))), {"flat": path})
    s = out.slits[0]
    rel2 = 0.05**2 + 0.03**2
    np.testing.assert_allclose(s["VAR_FLAT"], s["SCI"].astype(float) ** 2 * rel2, rtol=1e-5)


def test_bad_flat_pixels_flagged(tmp_path):
    pix = pixel_flat()
    pix[5, 12] = 0.0                   # slit pixel (row 1, col 2)
    pix[6, 13] = np.nan                # slit pixel (row 2, col 3)
    fdq = np.zeros(DET, np.uint32)
    fdq[7, 14] = dqbits.NO_FLAT_FIELD  # slit pixel (row 3, col 4): DO_NOT_USE added
    path = write_flat(tmp_path / "flat.fits", pix, {"S200A1": fast_linear(1.2, 1.8)}, dq=fdq)
    slit = make_slit("S200A1", (11, 5))
    slit["WAVELENGTH"][0, 10] = np.nan
    out = flat_field.run(make_model(slit), {"flat": path}).slits[0]
    lam = make_slit("S200A1", (11, 5))["WAVELENGTH"]
    outside = (lam < 1.2) | (lam > 1.8)
    bad = outside.copy()
    bad[1, 2] = bad[2, 3] = bad[3, 4] = bad[0, 10] = True
    assert np.all(out["DQ"][bad] & BAD == BAD)
    assert not out["DQ"][~bad].any()
    for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
        assert np.isnan(out[name][bad]).all() and np.isfinite(out[name][~bad]).all()


def test_inverse_undoes(tmp_path):
    path = write_flat(tmp_path / "flat.fits", pixel_flat(), {"S200A1": fast_linear()}, err=0.01 * pixel_flat())
    model = make_model(make_slit("S200A1", (20, 30), sci=7.5))
    model.slits[0]["SCI"] *= np.linspace(0.5, 2, 20).astype(np.float32)
    back = flat_field.run(flat_field.run(model, {"flat": path}), {"flat": path}, inverse=True).slits[0]
    for name in ("SCI", "VAR_POISSON", "VAR_RNOISE"):
        np.testing.assert_allclose(back[name], model.slits[0][name], rtol=3e-7 * 4)
    assert not back["VAR_FLAT"].any()
    np.testing.assert_allclose(back["ERR"], np.sqrt(5.0), rtol=1e-6)


def test_rateints_broadcast_and_single_layout_subarray(tmp_path):
    pix = pixel_flat()
    path = write_flat(tmp_path / "flat.fits", pix, {"ANY": fast_linear()})
    slit = make_slit("", (1, 1), shape=(10, 20), nints=3)
    del slit.header["SLTSTRT1"], slit.header["SLTSTRT2"]
    primary = fits.Header({"INSTRUME": "NIRSPEC", "SUBSTRT1": 41, "SUBSTRT2": 21, "SUBSIZE1": 20, "SUBSIZE2": 10})
    out = flat_field.run(Model(primary, [slit], "single"), {"flat": path}).slits[0]
    f = pix[20:30, 40:60] * (0.5 + 0.5 * slit["WAVELENGTH"].astype(float))
    assert out["SCI"].shape == (3, 10, 20)
    np.testing.assert_allclose(out["SCI"], np.broadcast_to(10.0 / f, (3, 10, 20)), rtol=2e-6)
    np.testing.assert_allclose(out["VAR_RNOISE"][2], 1.0 / f**2, rtol=2e-6)


def test_full_frame_without_wavelength_uses_pixel_flat(tmp_path):
    pix = pixel_flat()
    path = write_flat(tmp_path / "flat.fits", pix, {"S200A1": fast_linear()})
    slit = Slit(fits.Header(), {"SCI": np.ones(DET, np.float32), "ERR": np.ones(DET, np.float32),
                                "DQ": np.zeros(DET, np.uint32), "VAR_POISSON": np.ones(DET, np.float32),
                                "VAR_RNOISE": np.zeros(DET, np.float32)})
    out = flat_field.run(Model(fits.Header(), [slit], "single"), {"flat": path}).slits[0]
    np.testing.assert_allclose(out["SCI"], 1.0 / pix, rtol=2e-6)


def test_user_supplied_interpolated_flat_matches(tmp_path):
    path = write_flat(tmp_path / "flat.fits", pixel_flat(), {"S200A1": fast_linear()})
    model = make_model(make_slit("S200A1", (3, 7)))
    interp = flat_field.interpolated_flat(model, {"flat": path})
    a = flat_field.run(model, {"flat": "N/A"}, user_supplied_flat=interp).slits[0]
    b = flat_field.run(model, {"flat": path}).slits[0]
    np.testing.assert_allclose(a["SCI"], b["SCI"], rtol=1e-6)


def test_missing_reference_and_slit(tmp_path):
    model = make_model(make_slit("S200A1", (1, 1)))
    assert flat_field.run(model, {"flat": "N/A"}).primary["S_FLAT"] == "SKIPPED"
    missing = tmp_path / "nope_flat.fits"
    with pytest.raises(InputError, match="nope_flat.fits"):
        flat_field.run(model, {"flat": str(missing)})
    path = write_flat(tmp_path / "flat.fits", pixel_flat(), {"S1600A1": fast_linear()})
    with pytest.raises(InputError, match="flat.fits.*S200A1"):
        flat_field.run(model, {"flat": path})


def test_single_shape_mismatch_and_file_round_trip(tmp_path):
    from webbspec.io import datamodels
    from webbspec import steps

    path = write_flat(tmp_path / "flat.fits", pixel_flat(), {"S200A1": fast_linear()})
    slit = Slit(fits.Header(), {"SCI": np.ones((10, 10), np.float32)})
    with pytest.raises(InputError, match="flat.fits.*SUBSTRT"):
        flat_field.run(Model(fits.Header(), [slit], "single"), {"flat": path})
    src = datamodels.write(make_model(make_slit("S200A1", (11, 5))), str(tmp_path / "in.fits"))
    out = run_step("flat_field", src, str(tmp_path / "out.fits"), refs={"flat": path})
    back = datamodels.read(out)
    assert back.primary["S_FLAT"] == "COMPLETE" and "FLATFIELD_PS" in back.slits[0]
    direct = flat_field.run(datamodels.read(src), {"flat": path}).slits[0]
    np.testing.assert_allclose(back.slits[0]["SCI"], direct["SCI"])
