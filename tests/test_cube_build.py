"""cube_build against the analytic truth of tests/ifu_builders.py: flux conservation, the point
source's position, the wavelength grid and line centres, grouping, bad input."""

import logging

import numpy as np
import pytest

import ifu_builders as B
from webbspec.algorithms import cube_build as kernels
from webbspec.errors import InputError
from webbspec.io.skycoords import xieta_to_radec
from webbspec.steps import cube_build


@pytest.fixture(scope="module")
def cubepar(tmp_path_factory):
    return B.write_cubepar(tmp_path_factory.mktemp("cubepar") / "cubepar.fits")


@pytest.fixture(scope="module")
def exposures():
    return B.dithered(4, designs=("1", "2"))


@pytest.fixture(scope="module")
def drizzled(exposures, cubepar):
    return {c.name: c for c in cube_build.run(exposures, {"cubepar": cubepar})}


def _plane_flux(cube):
    """Sum over each plane [MJy] and the truth averaged over the plane's bin."""
    z = cube.wavelength
    half = kernels.plane_bins(z) / 2
    return np.nansum(cube.sci, axis=(1, 2)) * cube.pixar_sr, B.Scene().total_bin_mean(z - half, z + half)


def test_drizzle_conserves_flux_per_plane(drizzled):
    assert set(drizzled) == {"ch1-short", "ch2-short"}
    for cube in drizzled.values():
        got, truth = _plane_flux(cube)
        ratio = got / truth
        # exact footprint overlaps: the plane sums follow the truth to a few 1e-3 (the scene's wings
        # beyond the dithered field and the band-edge planes are the rest)
        assert np.all(np.abs(ratio - 1) < 0.005), (cube.name, ratio.min(), ratio.max())
        assert abs(got.sum() / truth.sum() - 1) < 1e-3


@pytest.mark.parametrize("weighting, tol", [("emsm", 0.02), ("msm", 0.02)])
def test_pointcloud_weightings_conserve_flux(exposures, cubepar, weighting, tol):
    cube = cube_build.run(exposures, {"cubepar": cubepar}, weighting=weighting, channel="1")[0]
    got, truth = _plane_flux(cube)
    assert abs(np.median(got / truth) - 1) < tol
    assert cube.primary["WTYPE"] == weighting and cube.primary["ROIS"] > 0


def test_wavelength_grid_and_line_centres(drizzled):
    lines = {"ch1-short": (5.1003, 5.02, 0.0008), "ch2-short": (7.7504, 7.63, 0.0013)}
    for name, (l0, wmin, step) in lines.items():
        cube = drizzled[name]
        k = np.arange(cube.shape[0])
        assert np.allclose(cube.wavelength, wmin + (k + 0.5) * step, atol=1e-9)
        assert cube.wcs.linear and cube.wcs.cdelt3 == pytest.approx(step)
        flux = np.nansum(cube.sci, axis=(1, 2))
        near = np.abs(cube.wavelength - l0) < 0.008          # +- 4 line sigmas
        side = ~near & (np.abs(cube.wavelength - l0) < 0.02)
        cont = np.polyval(np.polyfit(cube.wavelength[side], flux[side], 1), cube.wavelength)
        w, f = cube.wavelength[near], (flux - cont)[near]
        centre = np.sum(w * f) / np.sum(f)
        assert abs(centre - l0) < 0.1 * step, (name, centre, l0)


def test_point_source_centroid(cubepar):
    exps = B.dithered(4, designs=("1",), point_only=True)
    cube = cube_build.run(exps, {"cubepar": cubepar})[0]
    image = np.nansum(cube.sci, axis=0)
    ra, dec = xieta_to_radec(*B.Scene().ps_xy, B.SCENE_RA, B.SCENE_DEC)
    x0, y0 = cube.wcs.sky_to_pixel(ra, dec)
    yy, xx = np.mgrid[:image.shape[0], :image.shape[1]]
    near = np.hypot(xx - x0, yy - y0) < 6            # 6 spaxels = 3.9 sigma of the PSF
    cx = np.sum(xx * image * near) / np.sum(image * near)
    cy = np.sum(yy * image * near) / np.sum(image * near)
    assert abs(cx - x0) < 0.1 and abs(cy - y0) < 0.1, (cx - x0, cy - y0)


def test_multi_cube_has_a_wavelength_table(exposures, cubepar):
    cube = cube_build.run(exposures, {"cubepar": cubepar}, output_type="multi")[0]
    assert cube.name == "ch1-2-short" and not cube.wcs.linear
    assert cube.primary["CHANNEL"] == "12"
    assert cube.wcs.spaxel_arcsec == pytest.approx(0.13, rel=1e-6)     # the smaller spaxel
    got, truth = _plane_flux(cube)
    good = np.isfinite(got) & (got != 0)
    assert np.median(got[good] / truth[good]) == pytest.approx(1.0, abs=0.01)


def test_memory_blocks_do_not_change_the_cube(exposures, cubepar):
    """Processing the planes in small blocks and small pixel chunks gives the same cube."""
    exps = exposures[:1]
    big = cube_build.run(exps, {"cubepar": cubepar}, channel="2")[0]
    orig = kernels.build.__kwdefaults__.copy()
    try:
        kernels.build.__kwdefaults__.update(max_voxels=1000, chunk=3000)
        small = cube_build.run(exps, {"cubepar": cubepar}, channel="2")[0]
    finally:
        kernels.build.__kwdefaults__.update(orig)
    assert np.allclose(big.sci, small.sci, equal_nan=True, rtol=1e-6, atol=0)
    assert np.array_equal(big.wmap, small.wmap)


def test_exposure_files_give_the_same_cube(exposures, cubepar, tmp_path):
    """Paths are read one at a time inside cube_build (memory): the same cube as from the models."""
    from webbspec.io import datamodels

    exps = exposures[:2]
    paths = [datamodels.write(m, tmp_path / f"e{i}_cal.fits") for i, m in enumerate(exps)]
    mem = cube_build.run(exps, {"cubepar": cubepar}, channel="1")[0]
    disk = cube_build.run(paths, {"cubepar": cubepar}, channel="1")[0]
    assert np.array_equal(mem.sci, disk.sci, equal_nan=True)
    assert np.array_equal(mem.wmap, disk.wmap)


def test_cube_file_round_trip(drizzled, tmp_path):
    from webbspec.io import cubes

    cube = drizzled["ch2-short"]
    back = cubes.read(cubes.write(cube, tmp_path / "c_s3d.fits"))
    assert np.array_equal(back.sci, cube.sci, equal_nan=True)
    assert back.primary["S_IFUCUB"] == "COMPLETE" and back.header["SRCTYPE"] == "POINT"


def _warnings(caplog):
    """The warning lines the steps logged (what a job's log and stderr show)."""
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_cubepar_missing_a_band_warns_and_makes_the_others(exposures, tmp_path, caplog):
    only1 = B.write_cubepar(tmp_path / "cp1.fits", {("1", "SHORT"): B.CUBEPARS[("1", "SHORT")]})
    cubes = cube_build.run(exposures[:1], {"cubepar": only1})
    assert [c.name for c in cubes] == ["ch1-short"]
    err = _warnings(caplog)
    assert len(err) == 1 and str(only1) in err[0] and "2/SHORT" in err[0]


def test_band_without_data_is_one_line(exposures, cubepar):
    with pytest.raises(InputError) as err:
        cube_build.run(exposures[:1], {"cubepar": cubepar}, channel="3")
    msg = str(err.value)
    assert "\n" not in msg and "channel=3" in msg


def test_no_cubepar_is_one_line(exposures):
    with pytest.raises(InputError) as err:
        cube_build.run(exposures[:1], {"cubepar": "N/A"})
    assert "cubepar" in str(err.value) and "\n" not in str(err.value)


def test_nirspec_ifu_cube(exposures, tmp_path):
    """The NIRSpec path: (grating, filter) bands from a NirspecIFUCubeParsModel, slices 1..n."""
    exps = [B.as_nirspec(e) for e in exposures[:2]]
    cp = B.write_nirspec_cubepar(tmp_path / "nrs_cubepar.fits",
                                 {("G395M", "F290LP"): (0.1, 0.0009, 5.02, 5.20, 0.15, 0.001, 0.1, 2.0, 0.01)})
    cube = cube_build.run(exps, {"cubepar": cp}, channel="all")[0]
    assert cube.name == "g395m-f290lp" and cube.primary["GRATING"] == "G395M"
    assert cube.wcs.spaxel_arcsec == pytest.approx(0.1) and cube.header["DISPAXIS"] == 1
    # (the relabelled channel-2 slices lie at 7.6-7.9 um, outside this band's planes)
    got, truth = _plane_flux(cube)
    assert np.median(got / truth) == pytest.approx(1.0, abs=0.01)


def test_slice_without_valid_pixels_warns(exposures, cubepar, caplog):
    bad = exposures[0].copy()
    slit = bad.slits[0]
    dead = slit["SLICE"] == 105
    slit["DQ"] = np.where(dead, 1, slit["DQ"]).astype(np.uint32)      # DO_NOT_USE
    cube = cube_build.run([bad], {"cubepar": cubepar}, channel="1")[0]
    err = _warnings(caplog)
    assert len(err) == 1 and "1/SHORT" in err[0] and "slice 105" in err[0]
    assert np.isfinite(cube.sci).any()


def test_output_type_channel_combines_the_bands(tmp_path):
    """SHORT and MEDIUM exposures of channel 1 (the same synthetic data under two band names): one
    ch1-shortmedium cube, with the fluxes of both (their average, as they are equal)."""
    pars = {("1", "SHORT"): B.CUBEPARS[("1", "SHORT")], ("1", "MEDIUM"): B.CUBEPARS[("1", "SHORT")]}
    cp = B.write_cubepar(tmp_path / "cp_sm.fits", pars)
    exps = [B.ifu_exposure(B.Exposure(dither=B.DITHERS[i]), band=band, patt_num=i + 1)
            for i, band in enumerate(("SHORT", "MEDIUM"))]
    band_cubes = cube_build.run(exps, {"cubepar": cp})
    assert [c.name for c in band_cubes] == ["ch1-short", "ch1-medium"]
    (cube,) = cube_build.run(exps, {"cubepar": cp}, output_type="channel")
    assert cube.name == "ch1-shortmedium" and cube.primary["BAND"] == "MULTIPLE" and cube.wcs.linear
    got, truth = _plane_flux(cube)
    assert np.median(got / truth) == pytest.approx(1.0, abs=0.01)


def test_rotated_cube_keeps_flux_and_positions(cubepar):
    """cube_pa = 30 deg: the flux is conserved and the point source sits where the cube's WCS
    says its sky position is (PC matrix, grid and kernels agree)."""
    exps = B.dithered(4, designs=("2",), point_only=True)
    cube = cube_build.run(exps, {"cubepar": cubepar}, cube_pa=30.0)[0]
    assert cube.wcs.pc[0, 1] == pytest.approx(0.5)
    z = cube.wavelength
    half = kernels.plane_bins(z) / 2
    got = np.nansum(cube.sci, axis=(1, 2)) * cube.pixar_sr
    assert np.median(got / B.Scene().ps_bin_mean(z - half, z + half)) == pytest.approx(1.0, abs=0.005)
    image = np.nansum(cube.sci, axis=0)
    x0, y0 = cube.wcs.sky_to_pixel(*xieta_to_radec(*B.Scene().ps_xy, B.SCENE_RA, B.SCENE_DEC))
    yy, xx = np.mgrid[:image.shape[0], :image.shape[1]]
    near = np.hypot(xx - x0, yy - y0) < 5
    cx = np.sum(xx * image * near) / np.sum(image * near)
    cy = np.sum(yy * image * near) / np.sum(image * near)
    assert abs(cx - x0) < 0.1 and abs(cy - y0) < 0.1, (cx - x0, cy - y0)


@pytest.mark.parametrize("angles", ["any", "near_axes"])
def test_block_overlaps_match_the_exact_polygon_area(angles):
    """The float32 block kernel against the float64 reference (quad_square_overlap) on random
    rectangles of MRS/NIRSpec footprint sizes, including edges within 1e-7..1e-3 rad of the axes
    (where a slope formula in float32 would blow up): every spaxel's area within 2e-6 spaxel^2
    (float32 round-off of corner values <= ~3), and the areas sum to the rectangle's (within the
    16 spaxels' round-off)."""
    rng = np.random.default_rng(5)
    n = 4000
    if angles == "any":
        th = rng.uniform(0, np.pi, n)
    else:
        th = rng.choice([0.0, np.pi / 2, np.pi]) + rng.choice([-1, 1], n) * 10 ** rng.uniform(-7, -3, n)
        th[:10] = 0.0
    length, width = rng.uniform(0.3, 1.8, n), rng.uniform(0.3, 1.8, n)
    cx, cy = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    ux, uy = np.cos(th) * length / 2, np.sin(th) * length / 2
    vx, vy = -np.sin(th) * width / 2, np.cos(th) * width / 2
    qx = np.stack([cx - ux - vx, cx + ux - vx, cx + ux + vx, cx - ux + vx])
    qy = np.stack([cy - uy - vy, cy + uy - vy, cy + uy + vy, cy - uy + vy])
    rx, ry = qx - np.floor(qx.min(0) + 0.5), qy - np.floor(qy.min(0) + 0.5)
    na, nb = int(np.floor(rx.max() + 0.5)) + 1, int(np.floor(ry.max() + 0.5)) + 1
    got = kernels._block_overlaps(rx.astype(np.float32), ry.astype(np.float32), na, nb)
    for b in range(nb):
        for a in range(na):
            ref = kernels.quad_square_overlap((rx - a).T, (ry - b).T)
            assert np.max(np.abs(got[b, a] - ref)) < 2e-6, (a, b)
    assert np.allclose(got.sum(axis=(0, 1)), length * width, rtol=0, atol=16 * 2e-6)


def test_nirspec_drizzle_footprint_is_the_official_one():
    """NIRSpec drizzle footprints as the official cube_build draws them: across the slice the sky
    distance of slices 1 and 3 (two slice widths when the slices are in numerical order, as here),
    along it y -/+ 0.49 (0.98 of our pixel edges at -/+ 0.5); MRS keeps the slice width."""
    exp = B.as_nirspec(B.dithered(1, designs=("1",))[0])
    slit = exp.slits[0]
    width = float(slit.header["SLICEWID"])
    got = cube_build._nirspec_footprint_width(slit, np.asarray(slit["SLICE"]) > 0)
    assert got == pytest.approx(2 * width, rel=1e-3)
    raw = cube_build._pixels(exp, "G395M/F290LP", np.asarray(slit["SLICE"]) > 0, 0.0, 99.0, "drizzle", False)
    assert raw["SLICEWID"] == got and raw["ALONG"] == pytest.approx(0.98)
    mrs = B.dithered(1, designs=("1",))[0]
    raw = cube_build._pixels(mrs, "1/SHORT", np.asarray(mrs.slits[0]["SLICE"]) > 0, 0.0, 99.0, "drizzle", True)
    assert raw["SLICEWID"] == pytest.approx(width) and "ALONG" not in raw
