"""`_s3d` files: our cubes open as the official IFUCubeModel (strict) and in specutils, carry a
gwcs that agrees with the FITS keywords, and we read the official layout back."""

import warnings

import numpy as np
import pytest
from astropy.io import fits

from webbspec.errors import InputError
from webbspec.io import cubes


def _cube(linear, pa=30.0, nz=12, ny=7, nx=9):
    wave = 5.0 + np.arange(nz) * 0.001 if linear else np.geomspace(5.0, 6.0, nz)
    c, s = np.cos(np.radians(pa)), np.sin(np.radians(pa))
    wcs = cubes.CubeWCS(83.8, -5.39, 5.0, 4.0, 0.13 / 3600, 0.13 / 3600, np.array([[-c, s], [s, c]]), wave, linear)
    primary = fits.Header([("INSTRUME", "MIRI"), ("EXP_TYPE", "MIR_MRS"), ("CHANNEL", "1"), ("BAND", "SHORT"),
                           ("DETECTOR", "MIRIFUSHORT")])
    head = fits.Header([("BUNIT", "MJy/sr"), ("PIXAR_SR", 0.13 ** 2 * cubes.SR_PER_ARCSEC2), ("SRCTYPE", "POINT")])
    rng = np.random.default_rng(3)
    shape = (nz, ny, nx)
    return cubes.Cube(primary, rng.random(shape, dtype=np.float32), np.full(shape, 0.1, np.float32),
                      np.zeros(shape, np.uint32), np.ones(shape, np.float32), wave, wcs, head)


@pytest.mark.parametrize("linear", [True, False])
def test_written_cube_is_an_official_ifucube(tmp_path, linear):
    from stdatamodels.jwst import datamodels as dm

    cube = _cube(linear)
    path = cubes.write(cube, tmp_path / "x_s3d.fits")
    with dm.open(path, strict_validation=True) as m:
        assert type(m).__name__ == "IFUCubeModel"
        assert m.data.shape == cube.sci.shape
        assert m.wavetable["wavelength"].shape == (1, cube.sci.shape[0], 1)
        # the gwcs in the ASDF extension and our WCS agree on every voxel tested
        x, y, z = np.array([0.0, 3.0, 8.0]), np.array([0.0, 5.0, 6.0]), np.array([0.0, 7.0, 11.0])
        ra, dec, lam = m.meta.wcs(x, y, z)
        ra2, dec2 = cube.wcs.pixel_to_sky(x, y)
        assert np.allclose(ra, ra2, atol=1e-10) and np.allclose(dec, dec2, atol=1e-10)
        assert np.allclose(lam, cube.wavelength[z.astype(int)], rtol=1e-9)
    # the FITS keywords alone (astropy.wcs) give the same sky positions
    with fits.open(path) as hdul:
        from astropy.wcs import WCS

        w = WCS(hdul["SCI"].header, hdul)
        ra3, dec3, lam3 = w.pixel_to_world_values(x, y, z)
        assert np.allclose(ra3, ra2, atol=1e-10) and np.allclose(dec3, dec2, atol=1e-10)
        from astropy import units as u

        to_um = u.Unit(w.world_axis_units[2]).to("um")
        assert np.allclose(lam3 * to_um, cube.wavelength[z.astype(int)], rtol=1e-6)
        assert hdul["ERR"].header["ERRTYPE"] == "ERR"


def test_specutils_reads_our_cube(tmp_path):
    from specutils import SpectrumList

    cube = _cube(True)
    path = cubes.write(cube, tmp_path / "x_s3d.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = SpectrumList.read(str(path), format="JWST s3d")[0]
    assert spec.flux.shape == cube.sci.shape
    assert np.allclose(spec.spectral_axis.to_value("um"), cube.wavelength, rtol=1e-7)
    assert str(spec.flux.unit) == "MJy / sr"


@pytest.mark.parametrize("linear", [True, False])
def test_round_trip(tmp_path, linear):
    cube = _cube(linear)
    back = cubes.read(cubes.write(cube, tmp_path / "x_s3d.fits"))
    assert back.wcs.linear is linear
    assert np.allclose(back.wavelength, cube.wavelength, rtol=1e-7)
    assert np.array_equal(back.sci, cube.sci) and np.array_equal(back.dq, cube.dq)
    x, y = np.array([1.0, 4.0]), np.array([2.0, 6.0])
    assert np.allclose(back.wcs.pixel_to_sky(x, y), cube.wcs.pixel_to_sky(x, y), atol=1e-11)
    assert back.pixar_sr == pytest.approx(cube.pixar_sr)
    assert cubes.is_cube_file(tmp_path / "x_s3d.fits")


def test_reads_the_official_layout(tmp_path):
    """An IFUCubeModel written by stdatamodels, keywords as jwst 3.0's cube_build sets them."""
    from stdatamodels.jwst import datamodels as dm

    nz, ny, nx = 6, 5, 4
    wave = (4.9004 + 0.0008 * np.arange(nz)).astype(np.float32)
    table = np.array([(wave[None].T,)], dtype=[("wavelength", "<f4", (nz, 1))])
    m = dm.IFUCubeModel(data=np.ones((nz, ny, nx), np.float32), dq=np.zeros((nz, ny, nx), np.uint32),
                        err=np.ones((nz, ny, nx), np.float32), weightmap=np.ones((nz, ny, nx), np.float32),
                        wavetable=table)
    m.meta.instrument.name, m.meta.exposure.type = "MIRI", "MIR_MRS"
    w = m.meta.wcsinfo
    w.crval1, w.crval2, w.crpix1, w.crpix2 = 83.8221, -5.3911, 3.0, 2.0
    w.cdelt1 = w.cdelt2 = 0.13 / 3600
    w.crval3, w.cdelt3, w.crpix3, w.ctype3, w.cunit3 = float(wave[0]), 0.0008, 1.0, "WAVE", "um"
    w.ctype1, w.ctype2, w.pc1_1, w.pc1_2, w.pc2_1, w.pc2_2 = "RA---TAN", "DEC--TAN", -1.0, 0.0, 0.0, 1.0
    m.meta.photometry.pixelarea_steradians = 0.13 ** 2 * 2.3504e-11
    m.meta.bunit_data = "MJy/sr"
    m.save(str(tmp_path / "official_s3d.fits"))
    cube = cubes.read(tmp_path / "official_s3d.fits")
    assert cube.shape == (nz, ny, nx)
    assert np.allclose(cube.wavelength, wave, atol=1e-6)
    ra, dec = cube.wcs.pixel_to_sky(2.0, 1.0)            # the reference pixel (1-based 3, 2)
    assert ra == pytest.approx(83.8221, abs=1e-10) and dec == pytest.approx(-5.3911, abs=1e-10)
    ra1, _ = cube.wcs.pixel_to_sky(3.0, 1.0)              # x + 1 is to the west (PC1_1 = -1)
    assert ra1 < ra
    assert cube.pixar_sr == pytest.approx(0.13 ** 2 * 2.3504e-11)


def test_not_a_cube_is_one_line(tmp_path):
    path = tmp_path / "flat.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((3, 3), np.float32), name="SCI")]).writeto(path)
    with pytest.raises(InputError) as err:
        cubes.read(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
