"""wavecorr: the point source's wavelengths after correction equal the simulator's truth."""

import numpy as np
import pytest

from webbspec.io import datamodels, refs
from webbspec.errors import InputError
from webbspec.simulate import nirspec_fs as fs
from webbspec.simulate import simulate
from webbspec.steps import assign_wcs, extract_2d, srctype, wavecorr


@pytest.fixture(scope="module")
def slits(tmp_path_factory):
    root = tmp_path_factory.mktemp("wcor")
    info = simulate("nrs_fs", str(root), seed=5)
    model = datamodels.read(info["rates"][1])
    r = refs.bestrefs(model.primary, ("specwcs", "wavecorr"), str(root / "refs"))
    return srctype.run(extract_2d.run(assign_wcs.run(model, r), r)), r


def _pixels(slit):
    h = slit.header
    y, x = np.mgrid[0:slit.shape[0], 0:slit.shape[1]].astype(float)
    return x + h["SLTSTRT1"] - 1, y + h["SLTSTRT2"] - 1


def test_fixes_the_injected_shift(slits):
    model, r = slits
    out = wavecorr.run(model, r)
    assert out.primary["S_WAVCOR"] == "COMPLETE"
    g = fs.layout("small")[0].slits[0]
    s_in, s_out = model.slit("S200A1"), out.slit("S200A1")
    x, y = _pixels(s_in)
    truth = fs.point_source_wavelength(g, x, y, model.primary["XOFFSET"])
    ok = np.isfinite(s_in["WAVELENGTH"])
    disp = np.gradient(g.coords(x, y)[1], axis=1)[ok]
    before = np.abs(s_in["WAVELENGTH"][ok] - truth[ok]) / disp
    after = np.abs(s_out["WAVELENGTH"][ok] - truth[ok]) / disp
    assert np.median(before) > 0.09                       # 0.05 slit widths = 0.1 pixel
    assert after.max() < 0.02
    assert s_out.header["WAVECOR"] is True
    for name in ("S200A2", "S400A1", "S1600A1"):           # extended slits untouched
        np.testing.assert_array_equal(out.slit(name)["WAVELENGTH"], model.slit(name)["WAVELENGTH"])
    np.testing.assert_array_equal(s_out["SCI"], s_in["SCI"])


def test_skips_and_errors(slits, tmp_path):
    model, r = slits
    assert wavecorr.run(model, {"wavecorr": "N/A"}).primary["S_WAVCOR"] == "SKIPPED"
    ext = srctype.run(model, source_type="EXTENDED")
    assert wavecorr.run(ext, r).primary["S_WAVCOR"] == "SKIPPED"
    with pytest.raises(InputError, match="does not exist"):
        wavecorr.run(model, {"wavecorr": str(tmp_path / "none.fits")})


def test_dispersion_edges():
    lam = np.array([[np.nan, 1.0, 1.5, 2.5, np.nan]])
    np.testing.assert_allclose(wavecorr.dispersion(lam)[0, 1:4], [0.5, 0.75, 1.0])
