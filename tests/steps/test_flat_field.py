"""flat_field (NIRSpec fflat * sflat * dflat, official formats) against analytic answers."""

import numpy as np
import pytest
from astropy.io import fits

from officialrefs import primary, write_nrs_flat
from webbspec import dq as dqbits
from webbspec.errors import InputError
from webbspec.io.datamodels import Model, Slit
from webbspec.pipeline.steprun import run_step
from webbspec.steps import flat_field

FRAME = (64, 80)                     # a small "full frame" (ny, nx)
BADFLAT = dqbits.DO_NOT_USE | dqbits.NO_FLAT_FIELD | dqbits.FLAGS["UNRELIABLE_FLAT"]
W = np.linspace(0.8, 2.2, 15)        # table wavelengths [um]
R = {"f": 0.01, "simg": 0.02, "sfast": 0.005, "dimg": 0.01, "dfast": 0.004}   # relative errors


def s_image():
    y, x = np.mgrid[0:FRAME[0], 0:FRAME[1]]
    return 1.0 + 0.002 * x + 0.001 * y


def d_image():
    y, x = np.mgrid[0:FRAME[0], 0:FRAME[1]]
    return 1.0 + 0.003 * x - 0.001 * y


F_FAST = {"S200A1": lambda w: 0.9 + 0.1 * w, "S400A1": lambda w: 1.1 - 0.05 * w}
S_FAST = {"S200A1": lambda w: 1.0 + 0.2 * (w - 1.5), "S400A1": lambda w: 1.0 - 0.1 * (w - 1.5)}


def d_fast(w):
    return 1.05 - 0.1 * (w - 1.5)


def rows(funcs, rel):
    return {name: (W, f(W), rel * f(W)) for name, f in funcs.items()}


def write_three(tmp_path):
    return {
        "fflat": write_nrs_flat(tmp_path / "f.fits", "fflat", rows(F_FAST, R["f"]), sci=np.ones((1, 1))),
        "sflat": write_nrs_flat(tmp_path / "s.fits", "sflat", rows(S_FAST, R["sfast"]), sci=s_image(),
                                dq=np.zeros(FRAME), err=R["simg"] * s_image()),
        "dflat": write_nrs_flat(tmp_path / "d.fits", "dflat", {"ANY": (W, d_fast(W), R["dfast"] * d_fast(W))},
                                sci=d_image()[None], dq=np.zeros(FRAME), err=R["dimg"] * d_image(), plane_wl=[1.5]),
    }


def make_slit(name, start, shape=(6, 20), sci=10.0, vp=4.0, vr=1.0, lam=(1.0, 2.0), nints=None, srctype="POINT"):
    ny, nx = shape
    wave = np.broadcast_to(np.linspace(*lam, nx), shape).astype(np.float32)
    full = shape if nints is None else (nints,) + shape
    hdr = fits.Header({"SLTNAME": name, "SLTSTRT1": start[0], "SLTSTRT2": start[1],
                       "SLTSIZE1": nx, "SLTSIZE2": ny, "SRCTYPE": srctype})
    return Slit(hdr, {"SCI": np.full(full, sci, np.float32), "ERR": np.full(full, np.sqrt(vp + vr), np.float32),
                      "DQ": np.zeros(full, np.uint32), "VAR_POISSON": np.full(full, vp, np.float32),
                      "VAR_RNOISE": np.full(full, vr, np.float32), "WAVELENGTH": wave.copy()})


def make_model(*slits, substrt=(1, 5)):
    primary_hdr = fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "SUBSTRT1": substrt[0],
                               "SUBSTRT2": substrt[1]})
    return Model(primary_hdr, list(slits), "multi")


def test_three_flats_product_and_errors(tmp_path):
    refs = write_three(tmp_path)
    model = make_model(make_slit("S200A1", (11, 5)), make_slit("S400A1", (31, 40), srctype="EXTENDED"))
    before = model.copy()
    out = flat_field.run(model, refs)
    rel = np.sqrt(sum(r * r for r in R.values()))
    for slit in out.slits:
        x0 = slit.header["SLTSTRT1"] - 1
        y0 = slit.header["SLTSTRT2"] - 1 + 4              # + SUBSTRT2 - 1
        lam = slit["WAVELENGTH"].astype(float)
        ys, xs = slice(y0, y0 + 6), slice(x0, x0 + 20)
        f = (F_FAST[slit.name](lam) * s_image()[ys, xs] * S_FAST[slit.name](lam)
             * d_image()[ys, xs] * d_fast(lam))
        sci = 10.0 / f
        np.testing.assert_allclose(slit["SCI"], sci, rtol=2e-6)
        np.testing.assert_allclose(slit["VAR_POISSON"], 4.0 / f**2, rtol=3e-6)
        np.testing.assert_allclose(slit["VAR_RNOISE"], 1.0 / f**2, rtol=3e-6)
        np.testing.assert_allclose(slit["VAR_FLAT"], (sci * rel) ** 2, rtol=2e-5)
        np.testing.assert_allclose(slit["ERR"], np.sqrt(5.0 / f**2 + (sci * rel) ** 2), rtol=3e-6)
        assert not slit["DQ"].any()
    assert "FLATFIELD_PS" in out.slits[0] and "FLATFIELD_PS" not in out.slits[1]
    assert out.primary["S_FLAT"] == "COMPLETE"
    assert (out.primary["R_FFLAT"], out.primary["R_SFLAT"], out.primary["R_DFLAT"]) == ("f.fits", "s.fits", "d.fits")
    for a, b in zip(model.slits, before.slits):        # input untouched
        for k in a.arrays:
            np.testing.assert_array_equal(a[k], b[k])


def test_missing_components_are_one_and_dflat_planes_interpolate(tmp_path):
    y, x = np.mgrid[0:FRAME[0], 0:FRAME[1]]
    p0, p1 = 1.0 + 0.001 * x, 1.1 + 0.001 * x
    dq = np.zeros(FRAME, np.uint32)
    dq[20, 25] = dqbits.FLAGS["UNRELIABLE_FLAT"]        # carried through, not bad
    one = {"ANY": (W, np.ones_like(W), np.zeros_like(W))}
    path = write_nrs_flat(tmp_path / "d2.fits", "dflat", one, sci=np.stack([p0, p1]), dq=dq, plane_wl=[1.2, 1.8])
    out = flat_field.run(make_model(make_slit("S200A1", (21, 17))), {"fflat": "N/A", "sflat": "N/A", "dflat": path})
    s = out.slits[0]
    lam = s["WAVELENGTH"].astype(float)
    ys, xs = slice(20, 26), slice(20, 40)
    f = p0[ys, xs] + (lam - 1.2) / 0.6 * (p1 - p0)[ys, xs]
    inside = (lam >= 1.2) & (lam <= 1.8)
    np.testing.assert_allclose(s["SCI"][inside], (10.0 / f)[inside], rtol=2e-6)
    assert np.all(s["DQ"][~inside] & BADFLAT == BADFLAT) and np.isnan(s["SCI"][~inside]).all()
    assert s["DQ"][0, 5] == dqbits.FLAGS["UNRELIABLE_FLAT"] and np.isfinite(s["SCI"][0, 5])
    assert "R_FFLAT" not in out.primary and out.primary["R_DFLAT"] == "d2.fits"


def test_fast_variation_averaged_over_the_pixel_width(tmp_path):
    w = np.linspace(0.8, 2.2, 141)
    path = write_nrs_flat(tmp_path / "f.fits", "fflat", {"S200A1": (w, w**2, np.zeros_like(w))})
    s = flat_field.run(make_model(make_slit("S200A1", (3, 3))), {"fflat": path}).slits[0]
    lam = s["WAVELENGTH"].astype(float)
    dw = np.diff(lam, axis=1)[0, 0]
    # 3-point Gauss-Legendre over [lam - dw/2, lam + dw/2] of lam^2 (piecewise-linear table: 2e-5)
    np.testing.assert_allclose(s["SCI"], 10.0 / (lam**2 + dw**2 / 12), rtol=3e-5)
    assert np.abs(s["SCI"] * lam**2 / 10.0 - 1).max() > 5e-5       # the average is not lam^2


def test_bad_flat_pixels_and_ranges(tmp_path):
    simg = s_image()
    simg[9, 18] = 0.0                    # slit pixel (row 1, col 8): SUBSTRT2=5, SLTSTRT=(11, 5)
    simg[10, 19] = np.nan                # (row 2, col 9)
    sdq = np.zeros(FRAME, np.uint32)
    sdq[11, 20] = dqbits.NO_FLAT_FIELD   # (row 3, col 10): DO_NOT_USE added
    w = np.linspace(1.2, 1.8, 7)
    refs = {"fflat": write_nrs_flat(tmp_path / "f.fits", "fflat", {"ANY": (w, np.ones_like(w), 0 * w)}),
            "sflat": write_nrs_flat(tmp_path / "s.fits", "sflat", {"S200A1": (W, np.ones_like(W), 0 * W)},
                                    sci=simg, dq=sdq)}
    slit = make_slit("S200A1", (11, 5))
    slit["WAVELENGTH"][4, 10] = np.nan   # no wavelength: fast parts 1, not flagged (official)
    s = flat_field.run(make_model(slit), refs).slits[0]
    lam = make_slit("S200A1", (11, 5))["WAVELENGTH"].astype(float)
    reach = np.sqrt(0.6) / 2 * np.diff(lam, axis=1)[0, 0]     # outermost Gauss-Legendre point
    bad = (lam - reach < 1.2) | (lam + reach > 1.8)
    bad[4, 10] = False
    bad[1, 8] = bad[2, 9] = bad[3, 10] = True
    assert np.all(s["DQ"][bad] & BADFLAT == BADFLAT)
    assert not s["DQ"][~bad].any()
    for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
        assert np.isnan(s[name][bad]).all() and np.isfinite(s[name][~bad]).all()
    assert s["SCI"][4, 10] == pytest.approx(10.0 / simg[12, 20], rel=1e-6)


def test_inverse_undoes(tmp_path):
    refs = write_three(tmp_path)
    model = make_model(make_slit("S200A1", (20, 30), sci=7.5))
    model.slits[0]["SCI"] *= np.linspace(0.5, 2, 20).astype(np.float32)
    back = flat_field.run(flat_field.run(model, refs), refs, inverse=True).slits[0]
    for name in ("SCI", "VAR_POISSON", "VAR_RNOISE"):
        np.testing.assert_allclose(back[name], model.slits[0][name], rtol=1.5e-6)
    assert not back["VAR_FLAT"].any()
    np.testing.assert_allclose(back["ERR"], np.sqrt(5.0), rtol=1e-6)


def test_rateints_single_layout_subarray(tmp_path):
    refs = write_three(tmp_path)
    slit = make_slit("", (1, 1), shape=(10, 20), nints=3)
    del slit.header["SLTSTRT1"], slit.header["SLTSTRT2"]
    prim = fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "FXD_SLIT": "S400A1",
                        "SUBSTRT1": 41, "SUBSTRT2": 21, "SUBSIZE1": 20, "SUBSIZE2": 10})
    out = flat_field.run(Model(prim, [slit], "single"), refs).slits[0]
    lam = slit["WAVELENGTH"].astype(float)
    ys, xs = slice(20, 30), slice(40, 60)
    f = F_FAST["S400A1"](lam) * s_image()[ys, xs] * S_FAST["S400A1"](lam) * d_image()[ys, xs] * d_fast(lam)
    assert out["SCI"].shape == (3, 10, 20)
    np.testing.assert_allclose(out["SCI"], np.broadcast_to(10.0 / f, (3, 10, 20)), rtol=2e-6)


def test_user_supplied_interpolated_flat_matches(tmp_path):
    refs = write_three(tmp_path)
    model = make_model(make_slit("S200A1", (3, 7)))
    interp = flat_field.interpolated_flat(model, refs)
    a = flat_field.run(model, {k: "N/A" for k in refs}, user_supplied_flat=interp).slits[0]
    b = flat_field.run(model, refs).slits[0]
    np.testing.assert_allclose(a["SCI"], b["SCI"], rtol=1e-6)


def test_missing_reference_and_slit(tmp_path):
    model = make_model(make_slit("S200A1", (1, 1)))
    assert flat_field.run(model, {"fflat": "N/A", "sflat": "N/A", "dflat": "N/A"}).primary["S_FLAT"] == "SKIPPED"
    with pytest.raises(InputError, match="nope_sflat.fits"):
        flat_field.run(model, {"sflat": str(tmp_path / "nope_sflat.fits")})
    path = write_nrs_flat(tmp_path / "f1600.fits", "fflat", rows({"S1600A1": F_FAST["S200A1"]}, 0.0))
    with pytest.raises(InputError, match="f1600.fits.*S200A1"):
        flat_field.run(model, {"fflat": path})


def test_wrong_reference_models_are_input_errors(tmp_path):
    refs = write_three(tmp_path)
    model = make_model(make_slit("S200A1", (1, 1)))
    with pytest.raises(InputError, match="s.fits: REFTYPE is 'SFLAT', not a dflat"):
        flat_field.run(model, {"dflat": refs["sflat"]})
    other = tmp_path / "pathloss_as_fflat.fits"
    fits.HDUList([primary("fflat", "PathlossModel")]).writeto(other)
    with pytest.raises(InputError, match="pathloss_as_fflat.fits: DATAMODL is 'PathlossModel'"):
        flat_field.run(model, {"fflat": str(other)})
    flat2d = write_nrs_flat(tmp_path / "d2d.fits", "dflat", {"ANY": (W, np.ones_like(W), 0 * W)}, sci=d_image())
    with pytest.raises(InputError, match="d2d.fits: dflat SCI must be 3-D"):
        flat_field.run(model, {"dflat": flat2d})
    quad = write_nrs_flat(tmp_path / "quad.fits", "fflat", rows(F_FAST, 0.0), datamodl="NirspecQuadFlatModel")
    with pytest.raises(InputError, match="quad.fits: a quadrant"):
        flat_field.run(model, {"fflat": quad})
    nofast = tmp_path / "nofast.fits"
    fits.HDUList([primary("sflat", "NirspecFlatModel"), fits.ImageHDU(np.ones(FRAME, np.float32), name="SCI")]
                 ).writeto(nofast)
    with pytest.raises(InputError, match="nofast.fits: sflat reference has no FAST_VARIATION"):
        flat_field.run(model, {"sflat": str(nofast)})


def test_file_round_trip(tmp_path):
    from webbspec.io import datamodels

    refs = write_three(tmp_path)
    src = datamodels.write(make_model(make_slit("S200A1", (11, 5))), str(tmp_path / "in.fits"))
    out = run_step("flat_field", src, str(tmp_path / "out.fits"), refs=refs)
    back = datamodels.read(out)
    assert back.primary["S_FLAT"] == "COMPLETE" and "FLATFIELD_PS" in back.slits[0]
    direct = flat_field.run(datamodels.read(src), refs).slits[0]
    np.testing.assert_allclose(back.slits[0]["SCI"], direct["SCI"])
