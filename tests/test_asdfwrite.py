"""webbspec.io.asdfwrite formats ASDF files itself: asdf reads them back without a warning, and the
`_s2d` gwcs evaluates exactly as the same gwcs built with gwcs and astropy.modeling."""

import io
import warnings

import numpy as np
import pytest

asdf = pytest.importorskip("asdf")
gwcs_wcs = pytest.importorskip("gwcs.wcs")

from webbspec.io import asdfwrite  # noqa: E402


def reference_wcs(nx, ny, crpix, xi_step, eta_step, ra0, dec0, wave):
    """The rectified-slit gwcs of officialio's module docstring, built with gwcs."""
    from astropy import coordinates as coord
    from astropy import units as u
    from astropy.modeling import models as m
    from gwcs import coordinate_frames as cf

    lam = m.Tabular1D(points=np.arange(nx, dtype=float), lookup_table=wave, method="linear",
                      bounds_error=False, fill_value=np.nan)
    sky = m.Pix2Sky_TAN() | m.RotateNative2Celestial(ra0, dec0, 180.0)
    transform = (m.Mapping((1, 1, 0)) | ((m.Shift(-crpix) | m.Scale(xi_step)) & (m.Shift(-crpix) | m.Scale(eta_step))
                                          & lam) | (sky & m.Identity(1)))
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    world = cf.CompositeFrame([cf.CelestialFrame(name="sky", axes_order=(0, 1), reference_frame=coord.ICRS(),
                                                 unit=(u.deg, u.deg)),
                               cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.um,),
                                                axes_names=("wavelength",))], name="world")
    w = gwcs_wcs.WCS([(detector, transform), (world, None)])
    w.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    return w


def read(raw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no unknown tag, no checksum mismatch
        return asdf.open(io.BytesIO(raw), lazy_load=False)


GRID = dict(nx=57, ny=21, crpix=9.3, xi_step=1.2e-5, eta_step=-2.0e-5, ra0=53.16, dec0=-27.79,
            wave=np.linspace(0.6, 5.3, 57) ** 1.1)


@pytest.mark.parametrize("single", [True, False])
def test_s2d_gwcs_equals_gwcs_built_one(single):
    grids = [GRID] if single else [GRID, dict(GRID, nx=40, wave=GRID["wave"][:40], ra0=10.0, dec0=20.0)]
    af = read(asdfwrite.s2d_tree(grids, single=single))
    trees = [af.tree["meta"]] if single else [s["meta"] for s in af.tree["slits"]]
    assert len(trees) == len(grids)
    for tree, g in zip(trees, grids):
        ours, ref = tree["wcs"], reference_wcs(**g)
        y, x = np.mgrid[-2:g["ny"] + 2, -2:g["nx"] + 2].astype(float)   # includes pixels off the box
        for a, b in zip(ours(x, y), ref(x, y)):
            assert np.array_equal(a, b, equal_nan=True)
        assert np.isfinite(ours(3.0, 4.0)).all() and np.isnan(ours(-1.0, 4.0)).all()
        assert ours.output_frame.name == "world" and ours.input_frame.name == "detector"


def test_empty_tree_and_blocks_round_trip():
    assert read(asdfwrite.asdf_file()).tree["asdf_library"]["name"] == "webbspec"
    arr = np.arange(7, dtype="<f8") / 3
    body = "x: !core/ndarray-1.1.0\n  source: 0\n  datatype: float64\n  byteorder: little\n  shape: [7]"
    assert np.array_equal(read(asdfwrite.asdf_file(body, [arr])).tree["x"], arr)


@pytest.mark.parametrize("x", [1e-05, -2.5e-300, 180.0, 0.1, 1.7976931348623157e308, 5e-324, -0.0])
def test_yaml_float_round_trips(x):
    import yaml

    assert yaml.safe_load(asdfwrite.yaml_float(x)) == x
    assert np.isnan(yaml.safe_load(asdfwrite.yaml_float(float("nan"))))
