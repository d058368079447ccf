"""Stage 2 plumbing for the IFU modes: a cube through run_step / call_step / datamodels / the
chain's product writer, check_needs for cubes, the IFU `_cal`, and the IFU branches of srctype,
bkg_subtract and the radial aperture correction (analytic answers)."""

import os
import sys

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))
import ifu_builders as B  # noqa: E402

from webbspec.errors import InputError  # noqa: E402
from webbspec.io import cubes, datamodels  # noqa: E402
from webbspec.modes import MODES, check_implemented  # noqa: E402
from webbspec.pipeline import stage2chain  # noqa: E402
from webbspec.pipeline.steprun import call_step, run_step  # noqa: E402
from webbspec.steps import bkg_subtract, srctype  # noqa: E402
from webbspec.steps._ifu_apcorr import ifu_apcorr_factor  # noqa: E402


@pytest.fixture(scope="module")
def cubepar(tmp_path_factory):
    return B.write_cubepar(str(tmp_path_factory.mktemp("cp") / "cubepar.fits"))


@pytest.fixture(scope="module")
def exposure_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("exp") / "jw09999001001_03102_00001_mirifushort_photom.fits")
    model = B.ifu_exposure(B.Exposure(designs=("1",)))
    model.primary["DATAMODL"] = "IFUImageModel"
    datamodels.write(model, path)
    return path


def test_cube_through_run_step_and_back(exposure_file, cubepar, tmp_path):
    """cube_build (Stage 2: output_type multi) writes one `_s3d`; reading it gives a Cube, which
    extract_1d takes through run_step as any product."""
    s3d = str(tmp_path / "x_cube_build.fits")
    run_step("cube_build", exposure_file, s3d, refs={"cubepar": cubepar}, params={"output_type": "multi"})
    cube = datamodels.read(s3d)
    assert isinstance(cube, cubes.Cube) and cube.sci.ndim == 3
    assert cube.primary["S_IFUCUB"] == "COMPLETE" and cube.primary["R_CUBPAR"] == os.path.basename(cubepar)
    assert cube.primary["WSVERS"]                                     # provenance stamped on a cube too
    x1d = str(tmp_path / "x_extract_1d.fits")
    run_step("extract_1d", s3d, x1d, refs={"extract1d": "N/A", "apcorr": "N/A"},
             params={"ifu_set_srctype": "EXTENDED"})
    spec = datamodels.read(x1d)
    assert spec.kind == "EXTRACT1D" and spec.spectra[0].table["WAVELENGTH"].size == cube.shape[0]
    # the written cube is the official layout (the chain publishes the step's file as `_s3d` unchanged)
    pub = str(tmp_path / "x_s3d.fits")
    stage2chain.write_product(s3d, pub)
    assert os.path.samefile(pub, s3d) or cubes.read(pub).sci.shape == cube.shape


def test_several_cubes_are_not_one_step_output(exposure_file, cubepar):
    """Stage 2 runs cube_build with output_type multi (one `_s3d`); band, on a two-channel
    exposure, would make two: one line saying so, naming the file."""
    model = B.ifu_exposure(B.Exposure(designs=("1", "2")))
    with pytest.raises(InputError) as err:
        call_step("cube_build", model, {"cubepar": cubepar}, {"output_type": "band"}, where="x_photom.fits")
    assert "x_photom.fits" in str(err.value) and "2 cubes" in str(err.value) and "multi" in str(err.value)
    (one,) = [call_step("cube_build", model, {"cubepar": cubepar}, {"output_type": "multi"})]
    assert isinstance(one, cubes.Cube) and one.primary["CHANNEL"] == "12"


def test_step_command_writes_each_cube_of_a_band_build(cubepar, tmp_path):
    """`webbspec step cube_build --output_type band` on a two-channel exposure (run_step): one
    `_s3d` per band, named as the official strun names them (<root>_<band>_s3d.fits)."""
    path = str(tmp_path / "jw09999001001_03102_00001_mirifushort_cal.fits")
    datamodels.write(B.ifu_exposure(B.Exposure(designs=("1", "2"))), path)
    out = str(tmp_path / "jw09999001001_03102_00001_mirifushort_cube_build.fits")
    written = run_step("cube_build", path, out, refs={"cubepar": cubepar}, params={"output_type": "band"})
    assert [os.path.basename(p) for p in written] == [f"jw09999001001_03102_00001_mirifushort_ch{c}-short_s3d.fits"
                                                      for c in "12"]
    for c, p in zip("12", written):
        cube = cubes.read(p)
        assert cube.primary["CHANNEL"] == c and np.isfinite(cube.sci).sum() > 0 and cube.primary["R_CUBPAR"]
    assert not os.path.exists(out)


def test_extract_1d_needs_a_cube_in_ifu_modes(exposure_file):
    """check_needs for cubes: extract_1d on an IFU image (cube_build not run) names the step."""
    model = datamodels.read(exposure_file)
    with pytest.raises(InputError, match="extract_1d needs cube_build"):
        call_step("extract_1d", model, {}, {}, where=exposure_file)
    model.primary.remove("S_WCS")                       # and cube_build on an image assign_wcs never saw
    with pytest.raises(InputError, match="cube_build needs assign_wcs"):
        call_step("cube_build", model, {"cubepar": "N/A"}, {}, where=exposure_file)


def test_cube_write_read_and_as_written(cubepar, tmp_path):
    cube = call_step("cube_build", B.ifu_exposure(B.Exposure(designs=("1",))), {"cubepar": cubepar}, {})
    cube.sci = cube.sci.astype(np.float64)
    datamodels.as_written(cube)
    assert cube.sci.dtype == np.float32
    path = datamodels.write(cube, str(tmp_path / "c_s3d.fits"))
    back = datamodels.read(path)
    np.testing.assert_array_equal(back.sci, cube.sci)
    np.testing.assert_allclose(back.wavelength, cube.wavelength, rtol=1e-6)


def test_ifu_cal_keeps_the_coordinates_and_opens_as_ifuimage(exposure_file, tmp_path):
    """The `_cal` of an IFU exposure: IFUImageModel (strict), with SLICE (integer) and the slice
    edges cube_build reads in Stage 3."""
    from stdatamodels.jwst import datamodels as dm

    cal = str(tmp_path / "x_cal.fits")
    stage2chain.write_product(datamodels.read(exposure_file), cal)
    with dm.open(cal, strict_validation=True) as m:
        assert type(m).__name__ == "IFUImageModel"
    back, orig = datamodels.read(cal), datamodels.read(exposure_file)
    assert {"XI1", "ETA2", "DWAVE", "SLICE"} <= set(back.slits[0].arrays)
    assert back.slits[0]["SLICE"].dtype.kind == "i"
    np.testing.assert_array_equal(back.slits[0]["SLICE"], orig.slits[0]["SLICE"])


def test_ifu_modes_plan_their_stage2_chains():
    for name in ("nrs_ifu", "mir_mrs"):
        mode = MODES[name]
        check_implemented(mode, mode.spec2, "x_rate.fits", stage=2)       # no error
    from webbspec.pipeline.params import skipped_steps

    chain = MODES["mir_mrs"].spec2                                       # after photom, as officially,
    assert chain.index("residual_fringe") == chain.index("photom") + 1
    assert "residual_fringe" in skipped_steps(None, "spec2", "mir_mrs")  # and skipped by default


@pytest.mark.parametrize("exp_type, keys, want", [
    ("NRS_IFU", {}, "EXTENDED"),                                       # the IFU default
    ("NRS_IFU", {"SRCTYAPT": "POINT"}, "POINT"),                       # the APT's word
    ("NRS_IFU", {"SRCTYAPT": "POINT", "BKGDTARG": True}, "EXTENDED"),   # a background target
    ("MIR_MRS", {"DITHOPFR": "2-POINT-SOURCE"}, "POINT"),                # the MRS dither keyword
    ("MIR_MRS", {"PATTTYPE": "4-POINT-SOURCE"}, "EXTENDED"),           # (not the MRS keyword)
])
def test_srctype_ifu(exp_type, keys, want):
    model = B.ifu_exposure(B.Exposure(designs=("1",)))
    model.primary["EXP_TYPE"] = exp_type
    model.primary.remove("SRCTYPE", ignore_missing=True)
    for k, v in keys.items():
        model.primary[k] = v
    out = srctype.run(model, {})
    assert out.primary["SRCTYPE"] == want and out.slits[0].header["SRCTYPE"] == want
    assert out.primary["S_SRCTYP"] == "COMPLETE"


def test_bkg_subtract_ifu_is_the_mean_of_the_backgrounds():
    """Two dedicated backgrounds of a full-frame IFU image: SCI - mean(backgrounds) exactly (two
    frames: nothing to clip), DQ OR-ed; the coordinates untouched."""
    rng = np.random.default_rng(3)
    sci = B.ifu_exposure(B.Exposure(designs=("1",)))
    shape = sci.slits[0].shape
    bkgs = []
    for k in range(2):
        b = sci.copy()
        b.slits[0]["SCI"] = (5.0 + k + rng.normal(0, 0.1, shape)).astype(np.float32)
        b.slits[0]["DQ"] = np.where(np.arange(shape[1]) == 7 + k, 4, 0).astype(np.uint32) * np.ones(shape, np.uint32)
        b.primary["BKGDTARG"] = True
        bkgs.append(b)
    out = bkg_subtract.run(sci, {}, backgrounds=bkgs, propagate_error=False)
    want = sci.slits[0]["SCI"] - 0.5 * (bkgs[0].slits[0]["SCI"] + bkgs[1].slits[0]["SCI"])
    np.testing.assert_allclose(out.slits[0]["SCI"], want, rtol=1e-6, atol=1e-6)
    assert (out.slits[0]["DQ"][:, 7] & 4).all() and (out.slits[0]["DQ"][:, 8] & 4).all()
    assert out.primary["S_BKDSUB"] == "COMPLETE"
    np.testing.assert_array_equal(out.slits[0]["XI"], sci.slits[0]["XI"])


def test_ifu_apcorr_is_the_table_at_the_extraction_radius():
    """The correction is the table linearly interpolated in wavelength, then in radius at the
    extraction radius (radii per wavelength, unsorted rows allowed): a table bilinear in (lambda,
    r) is reproduced exactly; beyond its radii the end value, outside its wavelengths 1."""
    wave = np.array([5.0, 3.0, 4.0])                               # unsorted, as read_ifu_apcorr sorts them
    order = np.argsort(wave)
    radius = (np.linspace(0.2, 1.0, 9)[:, None] * (0.5 + 0.1 * wave[None, :]))   # radius grid grows with lambda
    corr = 1.0 + 0.1 * wave[None, :] + 0.5 * radius
    table = (wave[order], radius[:, order], corr[:, order])
    lam = np.array([3.25, 4.0, 4.9, 3.5, 5.5])
    r = np.array([0.31, 0.45, 0.6, 5.0, 0.5])
    got = ifu_apcorr_factor(table, lam, r)
    np.testing.assert_allclose(got[:3], 1.0 + 0.1 * lam[:3] + 0.5 * r[:3], rtol=1e-12)
    r_max = 1.0 * (0.5 + 0.1 * 3.5)                                # the largest tabulated radius at 3.5 um
    assert got[3] == pytest.approx(1.0 + 0.1 * 3.5 + 0.5 * r_max, rel=1e-12)
    assert got[4] == 1.0


def test_slice_array_written_as_float_reads_as_integer(tmp_path):
    """Files from before SLICE was written as integers still index the per-slice tables."""
    path = str(tmp_path / "old.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((2, 2), np.float32), name="SCI"),
                  fits.ImageHDU(np.array([[101, 102], [0, 103]], np.float32), name="SLICE")]).writeto(path)
    sl = datamodels.read(path).slits[0]["SLICE"]
    assert sl.dtype == np.int32 and sl[1, 1] == 103
