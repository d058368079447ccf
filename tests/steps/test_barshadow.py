"""barshadow against analytic answers.

The reference shadows are piecewise linear with knots on whole rows, so the official bilinear
interpolation is exact: DATA1X3 (open shutter between open ones) is a triangle wave of period one
shutter pitch (1 at the shutter centres, 0.6 at the bars between them) times a linear wavelength
term, which the assembly of a slitlet of open shutters repeats: at slit-frame y (open-shutter
heights) the shadow is tri(y / SLTYSCL). DATA1X1 (a lone open shutter) is flat at 0.95 within 0.3
pitch of its centre and falls linearly to 0.2 at one pitch; a one-shutter slitlet sees exactly that
(the official assembly puts DATA1X1 rows 501.. from the seam row 500 on, shifting the upper half one
reference row, 0.002 pitch, further out: our one departure there). (Against the official step:
tests/official/test_nrs_mos_spec2_official.py.)
"""

import numpy as np
import pytest

from mosrefs import mos_model, mos_slitlet, write_barshadow
from webbspec.errors import InputError
from webbspec.steps import barshadow

Y = -1.0 + 0.002 * np.arange(1001)            # pitch units, the reference rows
W0, DW = 0.8e-6, 0.015e-6                      # m: 101 columns, 0.8 .. 2.3 um


def tri(y):
    return 1.0 - 0.8 * np.abs(y - np.round(y))


def one(y):
    return np.where(np.abs(y) <= 0.3, 0.95, 0.95 - 0.75 * (np.abs(y) - 0.3) / 0.7)


def colour(lam_um):
    return 1.0 + 0.1 * (lam_um - 1.5)


@pytest.fixture
def ref(tmp_path):
    lam = (W0 + DW * np.arange(101)) * 1e6
    return write_barshadow(tmp_path / "barshadow.fits", one(Y)[:, None] * colour(lam)[None, :],
                           tri(Y)[:, None] * colour(lam)[None, :], W0, DW)


def test_open_slitlet_and_lone_shutter(ref):
    yscale = 1.15
    # rows across the middle shutter of "1x1" (within +-0.45 pitch: the bars at +-0.5 inside the
    # slitlet) and across a lone shutter "x"
    many = mos_slitlet(1, state="1x1", slit_y=np.linspace(-0.5, 0.5, 12) * yscale)
    lone = mos_slitlet(2, state="x", slit_y=np.linspace(-0.6, 0.6, 12) * yscale)
    point = mos_slitlet(3, state="1x1", srctype="POINT")
    out = barshadow.run(mos_model(many, lone, point), {"barshadow": ref})
    assert out.primary["S_BARSHA"] == "COMPLETE" and out.primary["R_BARSHA"] == "barshadow.fits"
    for slit, shape_of in zip(out.slits[:2], (tri, one)):
        lam = slit["WAVELENGTH"].astype(float)
        ys = slit["SLIT_Y"].astype(float) / yscale
        expected = shape_of(ys) * colour(lam)
        np.testing.assert_allclose(slit["BARSHADOW"], expected, rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(slit["SCI"], 10.0 / expected, rtol=3e-6)
        np.testing.assert_allclose(slit["VAR_RNOISE"], 1.0 / expected ** 2, rtol=5e-6)
        assert slit.header["BARSHDW"] is True
    p = out.slits[2]
    assert p.header["BARSHDW"] is False and np.all(p["BARSHADOW"] == 1) and np.all(p["SCI"] == 10.0)
    back = barshadow.run(out, {"barshadow": ref}, inverse=True)
    np.testing.assert_allclose(back.slits[0]["SCI"], 10.0, rtol=3e-6)
    forced = barshadow.run(mos_model(point), {"barshadow": ref}, source_type="EXTENDED")
    assert forced.slits[0].header["BARSHDW"] is True


def test_off_grid_rows_take_the_edge_and_nan_stays_nan(ref):
    # the top shutter of "1x1x" ... a long slitlet: the rows beyond its last shutter lie outside
    # the assembled array and take its edge row; NaN wavelengths give NaN
    s = mos_slitlet(1, state="x1", slit_y=np.linspace(-3.0, 3.0, 12) * 1.15)
    s["WAVELENGTH"][:, :3] = np.nan
    out = barshadow.run(mos_model(s), {"barshadow": ref}).slits[0]
    assert np.isnan(out["BARSHADOW"][:, :3]).all() and (out["DQ"][:, :3] & 1).all()
    assert np.isfinite(out["BARSHADOW"][:, 3:]).all()
    lam = out["WAVELENGTH"][0, 3:].astype(float)
    np.testing.assert_allclose(out["BARSHADOW"][0, 3:], one(-1.0) * colour(lam), rtol=2e-6)   # below: row 0


def test_skips_and_errors(ref):
    model = mos_model(mos_slitlet(1))
    assert barshadow.run(model, {"barshadow": "N/A"}).primary["S_BARSHA"] == "SKIPPED"
    del model.slits[0].arrays["SLIT_Y"]
    with pytest.raises(InputError, match="slitlet 1 has no SLIT_Y array"):
        barshadow.run(model, {"barshadow": ref})


def test_assembly_matches_the_official_code():
    """The half-shutter assembly for every kind of neighbour against jwst's own (when installed):
    equal up to the last shutter's centre row; above it ours is the official one a row higher (the
    official last half starts one reference row late: barshadow's docstring)."""
    bs = pytest.importorskip("jwst.barshadow.bar_shadow")
    rng = np.random.default_rng(1)
    d1, d3 = rng.uniform(0.2, 1.0, (2, 1001, 101))
    ref = {"1x1": d1, "1x3": d3, "crval1": 1.0, "cdelt1": 0.01, "cdelt2": 0.002}

    class Model:
        data1x1, data1x3 = d1, d3

    elements = bs.create_shutter_elements(Model)
    for state in ("x", "1x1", "x1", "1x", "0x1", "1x0", "10x01", "11x11", "x00", "1x0011"):
        ours, theirs = barshadow.shadow_array(ref, state), bs.create_shadow(elements, state)
        centre = 500 * len(state)                        # the last shutter's centre row
        assert ours.shape[0] == theirs.shape[0] + 1, state
        np.testing.assert_array_equal(ours[:centre], theirs[:centre], state)
        np.testing.assert_array_equal(ours[centre + 2:], theirs[centre + 1:], state)
        np.testing.assert_array_equal(ours[centre + 1], d1[501], state)
