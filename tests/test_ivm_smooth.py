"""The ``ivm-smooth`` drizzle weight (webbspec/algorithms/ivm_smooth.py) against numpy and an analytic scene."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, str(Path(__file__).resolve().parent))
from builders import make_nods  # noqa: E402

from webbspec.algorithms import drizzle as dz  # noqa: E402
from webbspec.algorithms.ivm_smooth import smooth_along_dispersion  # noqa: E402
from webbspec.steps import resample_spec  # noqa: E402


def _flat_pattern_weights(seed=2, shape=(12, 400)):
    """A weight map: smooth structure along the rows and columns (a bar-shadow row with 3x the
    variance, a slow trend with wavelength) times a random 2% pixel pattern."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    smooth = np.ones(shape) * (1.0 + 0.3 * np.arange(nx) / nx)[None, :]
    smooth[4] /= 3.0                                    # the bar shadow's row: 3x VAR_RNOISE
    return smooth, smooth * (1.0 + 0.02 * rng.normal(size=shape))


def test_running_median_is_numpys_nanmedian_of_the_window():
    """Each positive weight becomes np.nanmedian of the positive weights among the 9 pixels
    centred on it in its row (fewer at the row ends); 0 stays 0 and is left out of the medians."""
    rng = np.random.default_rng(1)
    w = rng.random((7, 60)) + 0.5
    w[rng.random(w.shape) < 0.3] = 0.0
    a = np.pad(np.where(w > 0, w, np.nan), ((0, 0), (4, 4)), constant_values=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.where(w > 0, np.nanmedian(sliding_window_view(a, 9, axis=-1), axis=-1), 0.0)
    got = smooth_along_dispersion(w)
    assert np.array_equal(got, want)
    assert np.all(got[w == 0] == 0) and np.all(got[w > 0] > 0)


def test_row_structure_stays_and_the_pixel_pattern_goes():
    smooth, w = _flat_pattern_weights()
    s = smooth_along_dispersion(w)
    inner = slice(4, -4)                                # full windows
    # the bar shadow's row keeps its third of the weight: the median of 9 values with a 2%
    # scatter is within ~1% of the truth (1.25 sigma / 3); a few % bounds it
    assert np.median(s[4, inner] / smooth[0, inner]) == pytest.approx(1 / 3, rel=0.03)
    assert np.max(np.abs(s[:, inner] / smooth[:, inner] - 1)) < 0.04
    # the pixel-to-pixel part: 2% before, ~0.6% after (median of 9 with the window's correlation)
    before = np.std(w[:, inner] / smooth[:, inner])
    after = np.std(s[:, inner] / smooth[:, inner])
    assert after < 0.5 * before, (before, after)


def test_zeros_stay_zero_and_an_outlying_weight_does_not_spread():
    _, w = _flat_pattern_weights()
    w[3, 100:103] = 0.0                                 # flagged pixels
    w[5, 200] = 1e6                                     # a pixel with a tiny VAR_RNOISE
    w[6, :] = 0.0                                       # a row without a used pixel
    s = smooth_along_dispersion(w)
    assert np.all(s[3, 100:103] == 0) and np.all(s[6] == 0)
    assert s[5, 200] < 1.5 and np.all(np.isfinite(s))


def test_dispaxis_2_smooths_along_y():
    _, w = _flat_pattern_weights()
    assert np.array_equal(smooth_along_dispersion(w.T, dispaxis=2), smooth_along_dispersion(w).T)
    assert not np.array_equal(smooth_along_dispersion(w.T, dispaxis=1), smooth_along_dispersion(w).T)


def test_input_weights_reads_the_slit_dispaxis():
    m = make_nods(nods=(0.0,))
    s = m.slits[0]
    rng = np.random.default_rng(4)
    s["VAR_RNOISE"] = (s["VAR_RNOISE"] * (1 + 0.02 * rng.normal(size=s.shape))).astype(np.float32)
    ivm = dz.input_weights(s, "ivm")
    assert np.array_equal(dz.input_weights(s, "ivm-smooth"), smooth_along_dispersion(ivm, 1))
    s.header["DISPAXIS"] = 2
    assert np.array_equal(dz.input_weights(s, "IVM-smooth"), smooth_along_dispersion(ivm, 2))


def _column_flux_error(weight_type):
    """rms over wavelength of (column sum of the Stage 3 s2d / the input column sum - 1) for a
    noise-free undersampled point source (FWHM 1.5 pixels, BUNIT MJy: each input column sums to
    the source's flux, 2) in 3 nods whose VAR_RNOISE holds a 2% pixel flat (as flat_field leaves
    it: VAR_RNOISE / flat^2). A flux-conserving drizzle gives the input sum back."""
    m = make_nods(nods=(-0.43, 0.0, 0.37), tilt=0.3, curve=0.05, pa=30.0, src=0.03, fwhm=0.15,
                  amp=lambda lam: 2.0 + 0 * lam)
    rng = np.random.default_rng(5)
    for s in m.slits:
        flat = 1 + 0.02 * rng.normal(size=s.shape)
        s["VAR_RNOISE"] = (s["VAR_RNOISE"] / flat ** 2).astype(np.float32)
    out = resample_spec.run(m, weight_type=weight_type)
    col = np.nansum(out.slits[0]["SCI"].astype(float), axis=0)[20:-20]
    return float(np.std(col / 2.0 - 1.0)), out.primary


def test_smoothed_weights_conserve_the_drizzled_flux():
    """With the official per-pixel ivm weight the 2% flat becomes a pixel-to-pixel flux pattern
    (2.8e-3 rms here); ivm-smooth leaves 1.3e-3 (equal weights: 8e-6). What is left is the
    row-to-row part of the smoothed weights: the median of 9 independent values keeps
    sqrt(pi / 18) = 0.42 of the flat's rms (flat seeds 0-9: ratio 0.37-0.53, this one 0.46)."""
    (ivm, hdr_ivm), (smooth, hdr) = (_column_flux_error(t) for t in ("ivm", "ivm-smooth"))
    print(f"column flux rms: ivm {ivm:.2e}, ivm-smooth {smooth:.2e}")
    assert ivm > 2e-3
    assert smooth < 0.6 * ivm
    # the official RESWHT allows ivm|exptime only: ours names the smoothing in WSRESWHT
    assert (hdr["RESWHT"], hdr["WSRESWHT"], hdr_ivm["RESWHT"]) == ("ivm", "ivm-smooth", "ivm")


def test_ivm_smooth_is_ivm_where_the_weights_are_smooth():
    """VAR_RNOISE rising linearly 2x along the rows: 1/VAR_RNOISE is monotonic, so a full window's
    median is its centre (exact); at the row ends the window is cut short and its median lies up
    to 2 pixels inwards (0.3% per pixel here)."""
    m = make_nods(nods=(-0.4, 0.0, 0.4), tilt=0.2, fwhm=0.3, red_ivm=2.0)
    s = m.slits[0]
    smooth, ivm = dz.input_weights(s, "ivm-smooth"), dz.input_weights(s, "ivm")
    assert np.allclose(smooth[:, 4:-4], ivm[:, 4:-4], rtol=1e-12, atol=0)
    assert np.allclose(smooth, ivm, rtol=0.01, atol=0)
