"""The fast paths of the MOS Stage 3 per-source work (issue 18) give numpy's / the plain call's
numbers bit for bit: algorithms.nanmedian against np.nanmedian, and drizzle's ``coverage``
against a second drizzle of unit weights (what outlier_detection computed before)."""

import types
import warnings

import numpy as np
import pytest

from webbspec.algorithms import drizzle as dz
from webbspec.algorithms.nanmedian import nanmedian


@pytest.mark.parametrize("shape,axis", [((6, 40, 300), 0), ((2, 30, 30), 0), ((3, 9, 11), 1),
                                        ((500, 12), -1), ((1, 20), 0), ((25, 64), 0)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nanmedian_is_numpys_bit_for_bit(shape, axis, dtype):
    rng = np.random.default_rng(7)
    a = (rng.normal(size=shape) * rng.choice([1.0, 1e6, 1e-6], size=shape)).astype(dtype)
    a[rng.random(shape) < 0.3] = np.nan          # NaN lanes of every count, all-NaN ones too
    a[rng.random(shape) < 0.01] = np.inf
    a[rng.random(shape) < 0.01] = -np.inf
    a[..., :2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmedian(a, axis=axis)
    got = nanmedian(a, axis=axis)
    assert got.dtype == want.dtype
    assert np.array_equal(got, want, equal_nan=True)


@pytest.mark.parametrize("kernel", ["square", "point"])
def test_drizzle_coverage_is_a_second_drizzle_of_unit_weights(kernel):
    rng = np.random.default_rng(3)
    ny, nx = 12, 40
    grid = types.SimpleNamespace(shape=(30, 50))
    j, i = np.mgrid[0:ny, 0:nx].astype(float)
    maps, weights = [], []
    for k in range(3):     # tilted, slightly stretched pixel maps, some pixels off the grid or NaN
        x = 1.02 * i + 0.05 * j + 0.37 * k + 3.0
        y = 1.9 * j + 0.03 * i - 0.6 * k + 2.0
        x[0, :3] = np.nan
        maps.append((x, y))
        w = rng.uniform(0.5, 2.0, (ny, nx))
        w[rng.random((ny, nx)) < 0.1] = 0.0
        weights.append(w)
    values = {"SCI": [rng.normal(size=(ny, nx)) for _ in range(3)]}
    wsum, sums, cover = dz.drizzle(grid, maps, weights, values, kernel=kernel, coverage=True)
    wsum0, sums0 = dz.drizzle(grid, maps, weights, values, kernel=kernel)
    ones = [np.where(w > 0, 1.0, 0.0) for w in weights]
    cover0, _ = dz.drizzle(grid, maps, ones, {}, kernel=kernel)
    assert np.array_equal(wsum, wsum0) and np.array_equal(sums["SCI"], sums0["SCI"])
    assert np.array_equal(cover, cover0) and cover.sum() > 0


@pytest.mark.parametrize("m", range(2, 17))
def test_sorting_network_sorts_every_zero_one_lane(m):
    # the 0-1 principle: a comparator network sorts every input iff it sorts every 0/1 input
    from webbspec.algorithms.nanmedian import _sorted_lanes

    codes = np.arange(2 ** m)
    lanes = ((codes[None, :] >> np.arange(m)[:, None]) & 1).astype(float)    # (m, 2^m), all inputs
    got = _sorted_lanes(lanes.copy())
    assert np.array_equal(got, np.sort(lanes, axis=0))


@pytest.mark.parametrize("m", [2, 3, 5, 6, 7, 11, 16, 17])
def test_nanmedian_network_lengths_match_numpy(m):
    rng = np.random.default_rng(m)
    a = rng.normal(size=(m, 30, 20)) * rng.choice([1.0, 1e8], size=(m, 30, 20))
    a[rng.random(a.shape) < 0.4] = np.nan
    a[rng.random(a.shape) < 0.02] = np.inf
    a[rng.random(a.shape) < 0.02] = -np.inf
    a[:, 0] = np.nan                                  # all-NaN lanes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmedian(a, axis=0)
    assert np.array_equal(nanmedian(a, axis=0), want, equal_nan=True)
