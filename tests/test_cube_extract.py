"""extract_1d from cubes: exact aperture geometry, clipping statistics, centring, and a point
source's spectrum from a drizzled cube of the synthetic IFU against the truth."""

import numpy as np
import pytest
from astropy.io import fits

import ifu_builders as B
from webbspec.algorithms import cube_build as kernels
from webbspec.algorithms.cube_extract import autocentroid, circle_fractions, extract_cube, sigma_clipped_stats
from webbspec.errors import InputError
from webbspec.io import cubes, datamodels
from webbspec.steps import cube_build, extract_1d


def _ref(path, radius, inner=0.0, outer=0.0, subtract=False):
    """An Extract1dIFUModel as the official ones (arrays inline)."""
    from stdatamodels.jwst import datamodels as dm

    wl = np.array([4.0, 10.0, 30.0], np.float32)
    e = dm.Extract1dIFUModel()
    e.meta.instrument.name, e.meta.exposure.type, e.meta.reftype = "MIRI", "MIR_MRS", "EXTRACT1D"
    e.meta.subtract_background, e.meta.method, e.meta.subpixels = subtract, "exact", 10
    one = np.ones_like(wl)
    e.data = {"wavelength": wl, "radius": radius * one, "inner_bkg": inner * one, "outer_bkg": outer * one,
              "axis_ratio": one, "axis_pa": 0 * one}
    e.save(str(path), all_array_storage="inline")
    return str(path)


def test_circle_fractions_are_exact():
    frac = circle_fractions(40, 40, 19.3, 20.7, [3.7, 7.25, 0.4])
    assert frac.sum(axis=(1, 2)) == pytest.approx(np.pi * np.array([3.7, 7.25, 0.4]) ** 2, rel=1e-12)
    assert frac[1, 20, 19] == 1.0 and frac[0, 0, 0] == 0.0
    # one pixel cut by the circle, against a fine sampling of it
    sub = (np.arange(2000) + 0.5) / 2000 - 0.5
    xx, yy = np.meshgrid(22 + sub, 22 + sub)
    inside = np.mean(np.hypot(xx - 19.3, yy - 20.7) <= 3.7)
    assert frac[0, 22, 22] == pytest.approx(inside, abs=2e-4)


def test_sigma_clipped_stats_match_astropy():
    from astropy.stats import sigma_clipped_stats as astropy_stats

    rng = np.random.default_rng(5)
    v = rng.normal(10, 2, (6, 500))
    v[:, :7] = 80.0
    v[2, 100:150] = np.nan
    mean, std = sigma_clipped_stats(v, 3.0)
    for i in range(6):
        m, _, s = astropy_stats(v[i], sigma=3.0, maxiters=5)
        assert mean[i] == pytest.approx(m, rel=1e-12) and std[i] == pytest.approx(s, rel=1e-12)


def test_autocentroid_finds_a_gaussian():
    yy, xx = np.mgrid[:31, :29]
    img = np.exp(-0.5 * ((xx - 16.37) ** 2 + (yy - 12.81) ** 2) / 1.3 ** 2) + 0.01
    x, y = autocentroid(np.repeat(img[None], 5, 0), np.full(5, 10.0))
    assert abs(x - 16.37) < 0.02 and abs(y - 12.81) < 0.02


@pytest.fixture(scope="module")
def point_cube(tmp_path_factory):
    cp = B.write_cubepar(tmp_path_factory.mktemp("cp") / "cubepar.fits")
    return cube_build.run(B.dithered(4, designs=("2",), point_only=True), {"cubepar": cp})[0]


def test_point_source_spectrum_from_the_cube(point_cube, tmp_path):
    """Stage 3 end to end on the synthetic IFU: the x1d of the drizzled cube (aperture 1.2" =
    6 PSF sigma, no background) is the true spectrum to 1% (the enclosed fraction is 1 - 1.5e-8)."""
    ref = _ref(tmp_path / "x1d_ifu.asdf", 1.2)
    x1d = extract_1d.run(point_cube, {"extract1d": ref, "apcorr": "N/A"}, ifu_autocen=True)
    tab = x1d.spectra[0].table
    z = point_cube.wavelength
    half = kernels.plane_bins(z) / 2
    truth = B.Scene().ps_bin_mean(z - half, z + half) * 1e6          # Jy
    good = tab["DQ"] == 0
    assert good.mean() > 0.95
    ratio = tab["FLUX"][good] / truth[good]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.003) and np.all(np.abs(ratio - 1) < 0.01)
    # the written x1d is the official MultiSpecModel
    from stdatamodels.jwst import datamodels as dm

    path = datamodels.write(x1d, tmp_path / "c_x1d.fits")
    with dm.open(path, strict_validation=True) as m:
        assert type(m).__name__ == "MultiSpecModel" and len(m.spec[0].spec_table) == len(tab)


def test_extended_is_the_whole_field(point_cube, tmp_path):
    cube = cubes.Cube(point_cube.primary, point_cube.sci, point_cube.err, point_cube.dq, point_cube.wmap,
                      point_cube.wavelength, point_cube.wcs, point_cube.header.copy())
    cube.header["SRCTYPE"] = "EXTENDED"
    path = cubes.write(cube, tmp_path / "e_s3d.fits")
    tab = extract_1d.run(str(path), {"extract1d": "N/A", "apcorr": "N/A"}).spectra[0].table
    covered = cube.wmap > 0
    expect = np.nansum(np.where(covered, cube.sci, 0.0), axis=(1, 2)) * cube.pixar_sr * 1e6
    assert np.allclose(tab["FLUX"], expect, rtol=1e-6)
    assert np.array_equal(tab["NPIXELS"], covered.sum(axis=(1, 2)))
    assert np.allclose(tab["SURF_BRIGHT"], expect / (cube.pixar_sr * 1e6) / tab["NPIXELS"], rtol=1e-6)


def test_background_annulus_removes_a_flat_background(point_cube, tmp_path):
    """A constant added to the cube is removed by the annulus (inner 1.5", outer 2") exactly."""
    cube = cubes.Cube(point_cube.primary, point_cube.sci + np.float32(5.0), point_cube.err, point_cube.dq,
                      point_cube.wmap, point_cube.wavelength, point_cube.wcs, point_cube.header)
    ref = _ref(tmp_path / "x1d_bkg.asdf", 1.2, 1.5, 2.0, subtract=True)
    centre = autocentroid(point_cube.sci, point_cube.wavelength)
    plain = extract_cube(point_cube, _ref(tmp_path / "x1d_plain.asdf", 1.2), center_xy=centre)
    with_bkg = extract_cube(cube, ref, center_xy=centre)
    a, b = plain.spectra[0].table, with_bkg.spectra[0].table
    good = (a["DQ"] == 0) & (b["DQ"] == 0) & (b["NPIXELS"] > 0)
    assert np.median(b["BACKGROUND"][good]) == pytest.approx(5.0, rel=0.02)
    # what remains is the source's own light in the annulus (1.5" = 7.5 sigma: nothing)
    assert np.allclose(b["FLUX"][good], a["FLUX"][good], rtol=2e-3)


def test_point_source_without_reference_is_one_line(point_cube):
    with pytest.raises(InputError) as err:
        extract_cube(point_cube, "N/A")
    assert "\n" not in str(err.value) and "extract1d" in str(err.value)


def test_bad_extract1d_reference_names_the_file(point_cube, tmp_path):
    bad = tmp_path / "bad.asdf"
    bad.write_text("not asdf\n")
    with pytest.raises(InputError) as err:
        extract_cube(point_cube, str(bad))
    assert str(err.value).startswith(str(bad))


def test_primary_header_records_the_step(point_cube, tmp_path):
    ref = _ref(tmp_path / "x1d_ifu.asdf", 1.0)
    x1d = extract_cube(point_cube, ref)
    assert x1d.primary["S_EXTR1D"] == "COMPLETE" and x1d.primary["DATAMODL"] == "MultiSpecModel"
    h = x1d.spectra[0].header
    assert h["SRCTYPE"] == "POINT" and isinstance(h, fits.Header) and "EXTR_X" in h
