"""assign_wcs: the per-pixel coordinates equal the simulator's truth geometry (its own inversion
of the forward optical model) and its sky positions."""

import numpy as np
import pytest

from webbspec.errors import InputError
from webbspec.instruments.nirspec.optics import v2v3_to_sky
from webbspec.io import datamodels, refs
from webbspec.io.skycoords import xieta_to_radec
from webbspec.simulate import nirspec_fs as fs
from webbspec.simulate import simulate
from webbspec.steps import assign_wcs


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("wcs")
    info = simulate("nrs_fs", str(root), seed=2)
    model = datamodels.read(info["rates"][0])
    r = refs.bestrefs(model.primary, assign_wcs.REFTYPES, str(root / "refs"))
    return model, r, assign_wcs.run(model, r)


def test_wavelength_and_slit_pixels_match_the_truth(sim):
    model, _, out = sim
    img = out.slits[0]
    assert out.primary["S_WCS"] == "COMPLETE" and model.primary.get("S_WCS") is None   # input untouched
    assert "WAVELENGTH" not in model.slits[0]
    assert out.primary["R_FPA"].endswith(".asdf") and out.primary["R_DISPER"].endswith(".asdf")
    det = fs.layout("small")[0]
    covered = np.zeros(img.shape, bool)
    for g in det.slits:
        y0, y1, x0, x1 = g.box
        lam = img["WAVELENGTH"][y0:y1 + 1, x0:x1 + 1]
        on = g.inside
        covered[y0:y1 + 1, x0:x1 + 1] |= on
        disp = np.gradient(g.lam, axis=1)
        err = np.abs(lam[on] - g.lam[on]) / disp[on]
        assert err.max() < 2e-3, g.name                 # float32 rounding only
    assert np.array_equal(np.isfinite(img["WAVELENGTH"]), covered)
    assert np.array_equal(np.isfinite(img["XI"]), covered)


def test_slit_pixels_lie_on_the_slit_on_the_sky(sim):
    """XI/ETA of each slit's pixels: on the slit's centre line, along it as the truth y_slit says."""
    model, _, out = sim
    img = out.slits[0]
    h, sci = out.primary, model.slits[0].header
    det = fs.layout("small")[0]
    for g in det.slits:
        y0, y1, x0, x1 = g.box
        on = g.inside
        ra, dec = xieta_to_radec(img["XI"][y0:y1 + 1, x0:x1 + 1][on].astype(float),
                                 img["ETA"][y0:y1 + 1, x0:x1 + 1][on].astype(float),
                                 img.header["WSREFRA"], img.header["WSREFDE"])
        v2, v3 = det.optics.slit_to_v2v3(g.name, 0.0, g.ya[on] / g.length, g.lam[on] * 1e-6)
        ra_t, dec_t = v2v3_to_sky(v2, v3, sci["RA_REF"], sci["DEC_REF"], sci["ROLL_REF"], sci["V2_REF"],
                                  sci["V3_REF"], sci["VA_SCALE"])
        sep = np.hypot((ra - ra_t) * np.cos(np.radians(dec)), dec - dec_t) * 3.6e6
        assert sep.max() < 0.05, (g.name, sep.max())    # mas (float32 XI/ETA)
    assert h["TARG_RA"] and img.header["WSREFRA"] == sci["RA_REF"]


def test_slit_table_and_errors(sim):
    model, r, out = sim
    tab = out.tables["SLITS"]
    assert [str(n).strip() for n in tab["SLIT_NAME"]] == [s.name for s in fs.SLITS]
    for row in tab:
        box = out.slits[0]["WAVELENGTH"][row["YSTART"]:row["YSTOP"] + 1, row["XSTART"]:row["XSTOP"] + 1]
        assert np.isfinite(box[0]).any() and np.isfinite(box[-1]).any()
        assert np.isfinite(box[:, 0]).any() and np.isfinite(box[:, -1]).any()
    primary = tab[0]
    assert abs(primary["SRCYPOS"] - model.primary["YOFFSET"] / primary["LENGTH"]) < 0.01
    assert np.all(tab["SRCXPOS"][1:] == 0) and abs(primary["WIDTH"] - 0.2) < 0.002
    with pytest.raises(InputError, match="camera"):
        assign_wcs.run(model, dict(r, camera="N/A"))
    with pytest.raises(InputError, match="does not exist"):
        assign_wcs.run(model, dict(r, fpa="/nonexistent/fpa.asdf"))
    with pytest.raises(InputError, match="not a fore reference"):
        assign_wcs.run(model, dict(r, fore=r["ote"]))
    narrow = assign_wcs.run(model, r, slit_y_low=-0.5, slit_y_high=0.5)
    assert np.isfinite(narrow.slits[0]["WAVELENGTH"]).sum() < np.isfinite(out.slits[0]["WAVELENGTH"]).sum()
