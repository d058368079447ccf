"""wavecorr: the point source's wavelengths after correction equal the simulator's truth."""

import numpy as np
import pytest

from webbspec.errors import InputError
from webbspec.io import datamodels, refs
from webbspec.simulate import nirspec_fs as fs
from webbspec.simulate import simulate
from webbspec.steps import assign_wcs, extract_2d, srctype, wavecorr


@pytest.fixture(scope="module")
def slits(tmp_path_factory):
    root = tmp_path_factory.mktemp("wcor")
    info = simulate("nrs_fs", str(root), seed=5)
    model = datamodels.read(info["rates"][1])
    r = refs.bestrefs(model.primary, assign_wcs.REFTYPES + ("wavecorr",), str(root / "refs"))
    return srctype.run(extract_2d.run(assign_wcs.run(model, r), r)), r


def test_fixes_the_injected_shift(slits):
    model, r = slits
    out = wavecorr.run(model, r)
    assert out.primary["S_WAVCOR"] == "COMPLETE"
    det = fs.layout("small")[0]
    g = det.slits[0]
    s_in, s_out = model.slit("S200A1"), out.slit("S200A1")
    h = s_in.header
    truth = fs.point_source_wavelength(det, g, model.primary["XOFFSET"], model.primary["YOFFSET"])
    # the cutout's pixels in the truth box
    y0, x0 = h["SLTSTRT2"] - 1 - g.box[0], h["SLTSTRT1"] - 1 - g.box[2]
    truth = truth[y0:y0 + s_in.shape[0], x0:x0 + s_in.shape[1]]
    disp = np.gradient(g.lam, axis=1)[y0:y0 + s_in.shape[0], x0:x0 + s_in.shape[1]]
    ok = np.isfinite(s_in["WAVELENGTH"])
    before = np.abs(s_in["WAVELENGTH"][ok] - truth[ok]) / disp[ok]
    after = np.abs(s_out["WAVELENGTH"][ok] - truth[ok]) / disp[ok]
    print(f"S200A1 point source: median |dlam| before {np.median(before):.3f}, after max {after.max():.4f} pixel")
    assert np.median(before) > 0.04                      # SRCXPOS -0.05 of a 0.2" slit
    assert after.max() < 0.01
    assert s_out.header["WAVECOR"] is True
    for name in ("S200A2", "S400A1", "S1600A1", "S200B1"):           # extended slits untouched
        np.testing.assert_array_equal(out.slit(name)["WAVELENGTH"], model.slit(name)["WAVELENGTH"])
    np.testing.assert_array_equal(s_out["SCI"], s_in["SCI"])


def test_skips_and_errors(slits, tmp_path):
    model, r = slits
    assert wavecorr.run(model, {"wavecorr": "N/A"}).primary["S_WAVCOR"] == "SKIPPED"
    ext = srctype.run(model, source_type="EXTENDED")
    assert wavecorr.run(ext, r).primary["S_WAVCOR"] == "SKIPPED"
    with pytest.raises(InputError, match="does not exist"):
        wavecorr.run(model, {"wavecorr": str(tmp_path / "none.asdf")})
    with pytest.raises(InputError, match="not a wavecorr reference"):
        wavecorr.run(model, {"wavecorr": r["fpa"]})


def test_dispersion_edges():
    lam = np.array([[np.nan, 1.0, 1.5, 2.5, np.nan]])
    np.testing.assert_allclose(wavecorr.dispersion(lam)[0, 1:4], [0.5, 0.75, 1.0])
