"""assign_wcs: the per-pixel coordinates invert the simulator's instrument model."""

import numpy as np
import pytest

from webbspec.io import datamodels, refs
from webbspec.errors import InputError
from webbspec.simulate import nirspec_fs as fs
from webbspec.simulate import simulate
from webbspec.io.skycoords import radec_to_xieta
from webbspec.steps import assign_wcs


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("wcs")
    info = simulate("nrs_fs", str(root), seed=2)
    model = datamodels.read(info["rates"][0])
    r = refs.bestrefs(model.primary, assign_wcs.REFTYPES, str(root / "refs"))
    return model, r, assign_wcs.run(model, r)


def test_wavelength_and_slit_position_match_the_model(sim):
    model, _, out = sim
    img = out.slits[0]
    assert out.primary["S_WCS"] == "COMPLETE" and model.primary.get("S_WCS") is None   # input untouched
    assert "WAVELENGTH" not in model.slits[0]
    det = fs.layout("small")[0]
    y, x = np.mgrid[0:det.ny, 0:det.nx].astype(float)
    pa = np.radians(model.primary["PA_APER"])
    covered = np.zeros(img.shape, bool)
    for g in det.slits:
        ya, lam = g.coords(x, y)
        on = (np.abs(ya) <= 0.55 * g.length) & (lam >= fs.LMIN) & (lam <= fs.LMAX)
        covered |= on
        disp = np.gradient(lam, axis=1)
        dlam_px = np.abs(img["WAVELENGTH"][on] - lam[on]) / disp[on]
        assert dlam_px.max() < 0.005, g.name             # float32 rounding only
        along = img["XI"][on] * np.sin(pa) + img["ETA"][on] * np.cos(pa) - g.ya
        across = img["XI"][on] * np.cos(pa) - img["ETA"][on] * np.sin(pa)
        assert np.abs(along - ya[on]).max() / g.pscale < 0.005
        assert np.abs(across - g.xa).max() < 1e-5
    assert np.array_equal(np.isfinite(img["WAVELENGTH"]), covered)
    assert np.array_equal(np.isfinite(img["XI"]), covered)


def test_point_source_trace_lands_at_its_sky_position(sim):
    """The light-weighted row of the point source (noise-free model) maps to TARG_RA/DEC."""
    model, _, out = sim
    p, img = model.primary, out.slits[0]
    det = fs.layout("small")[0]
    g = det.slits[0]
    expo = {"XOFFSET": p["XOFFSET"], "YOFFSET": p["YOFFSET"], "PRIMARY": "S200A1"}
    with_src, _ = fs.render(det, expo, np.ones((det.ny, det.nx)))
    no_src, _ = fs.render(det, dict(expo, PRIMARY="none"), np.ones((det.ny, det.nx)))
    src = with_src - no_src
    xi_t, eta_t = radec_to_xieta(p["TARG_RA"], p["TARG_DEC"], img.header["WSREFRA"], img.header["WSREFDE"])
    pa = np.radians(p["PA_APER"])
    along_t = xi_t * np.sin(pa) + eta_t * np.cos(pa)
    across_t = xi_t * np.cos(pa) - eta_t * np.sin(pa)
    along = img["XI"] * np.sin(pa) + img["ETA"] * np.cos(pa)
    cols = np.arange(40, 360, 40)
    w = src[:, cols]
    centroid = np.nansum(w * np.nan_to_num(along[:, cols]), axis=0) / np.nansum(w, axis=0)
    # the pixel-integrated wing is symmetric: the centroid sits on the source (<< 0.1 pixel)
    assert np.abs(centroid - along_t).max() < 0.01 * g.pscale
    assert abs(along_t - p["YOFFSET"]) < 1e-4 and abs(across_t - p["XOFFSET"]) < 1e-4   # arcsec


def test_slit_table_and_errors(sim):
    model, r, out = sim
    tab = out.tables["SLITS"]
    assert [str(n).strip() for n in tab["SLIT_NAME"]] == [s.name for s in fs.SLITS]
    for row in tab:
        box = out.slits[0]["WAVELENGTH"][row["YSTART"]:row["YSTOP"] + 1, row["XSTART"]:row["XSTOP"] + 1]
        assert np.isfinite(box[0]).any() and np.isfinite(box[-1]).any()
        assert np.isfinite(box[:, 0]).any() and np.isfinite(box[:, -1]).any()
    with pytest.raises(InputError, match="specwcs"):
        assign_wcs.run(model, {"specwcs": "N/A"})
    with pytest.raises(InputError, match="does not exist"):
        assign_wcs.run(model, {"specwcs": "/nonexistent/specwcs.fits"})
    narrow = assign_wcs.run(model, r, slit_y_low=-0.5, slit_y_high=0.5)
    assert np.isfinite(narrow.slits[0]["WAVELENGTH"]).sum() < np.isfinite(out.slits[0]["WAVELENGTH"]).sum()
