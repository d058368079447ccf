"""outlier_detection, 'spec' method: flag cosmic rays etc. by comparing each exposure with the
median of all exposures of the source, resampled on a common rectified grid.

Algorithm (the official 'spec' mode): drizzle each exposure alone onto the common grid (SCI and
ERR, same weights); mask output pixels of low weight; nanmedian of SCI and ERR across exposures;
blot both back to each exposure (bilinear); D = |S - blot - backg|; deriv = max |difference| to
the 4 neighbours in the blotted median; m1 = D > scale1*deriv + snr1*err (dilated 3x3),
m2 = D > scale2*deriv + snr2*err; outliers = m1dil & m2 get DQ |= DO_NOT_USE|OUTLIER and NaN in
SCI, ERR and VAR_*. With resample_data=False the comparison is made pixel by pixel on the input
grid (exposures must share a shape): |S - median| > snr1 * median_err.

Deliberate improvement over the official step: the low-weight mask compares each output pixel's
weight with ``maskpt`` x the mean non-zero weight of ITS OWN wavelength column (of that exposure),
not with one mean over the whole image. With ivm weights (1/VAR_RNOISE) that fall steeply to the
red end, the global mean blanks the median over most of the red end, so the official step misses
the outliers there; per-column means keep the test's purpose (drop the partially covered slit
edges) at every wavelength.
"""

import warnings

import numpy as np
from scipy import ndimage

from .. import dq as dqbits
from .. import drizzle as dz
from ..errors import InputError

REFTYPES = ()

_FLAG = dqbits.DO_NOT_USE | dqbits.OUTLIER


def _pair(text, name):
    try:
        vals = [float(v) for v in str(text).replace(",", " ").split()]
    except ValueError:
        vals = []
    if len(vals) != 2:
        raise InputError(name, f"expected two numbers, got {text!r}")
    return vals


def _good_mask(slit, good_bits):
    """Pixels whose DQ is allowed by ``good_bits`` ('~DO_NOT_USE' = anything but DO_NOT_USE)."""
    if "DQ" not in slit:
        return np.ones(slit.shape, bool)
    dqa = np.asarray(slit["DQ"], np.uint32)
    gb = str(good_bits or "").strip().upper()
    if gb.startswith("~"):
        bad = 0
        for name in gb[1:].replace("+", ",").split(","):
            name = name.strip()
            if name:
                bad |= dqbits.FLAGS[name] if name in dqbits.FLAGS else int(name)
        return (dqa & np.uint32(bad)) == 0
    if gb in ("", "NONE"):
        return dqa == 0
    allowed = 0
    for name in gb.replace("+", ",").split(","):
        name = name.strip()
        allowed |= dqbits.FLAGS[name] if name in dqbits.FLAGS else int(name)
    return (dqa & ~np.uint32(allowed)) == 0


def run(model, refs=None, *, weight_type="ivm", pixfrac=1.0, kernel="square", fillval="NAN",
        maskpt=0.7, snr="5.0 4.0", scale="1.2 0.7", backg=0.0, kernel_size="7 7",
        threshold_percent=99.8, rolling_window_width=25, ifu_second_check=False,
        resample_data=True, good_bits="~DO_NOT_USE", pixmap_stepsize=1.0, pixmap_order=1):
    """Flag outliers in the exposures of one source (``layout="multi"``); returns a new Model."""
    snr1, snr2 = _pair(snr, "outlier_detection.snr")
    scl1, scl2 = _pair(scale, "outlier_detection.scale")
    out = model.copy()
    if len(model.slits) < 2:
        out.primary["S_OUTLIR"] = "SKIPPED"
        return out
    slits = out.slits
    goods = [_good_mask(s, good_bits) & np.isfinite(s["SCI"]) for s in slits]
    if resample_data:
        blot_sci, blot_err = _median_blots(slits, goods, weight_type, pixfrac, kernel, maskpt)
    else:
        blot_sci, blot_err = _median_direct(slits, goods)
    for s, g, bs, be in zip(slits, goods, blot_sci, blot_err):
        mask = flag_outliers(np.asarray(s["SCI"], float), bs, be, snr1, snr2, scl1, scl2, backg,
                             resample_data) & g
        s["DQ"] = (np.asarray(s["DQ"], np.uint32) if "DQ" in s else np.zeros(s.shape, np.uint32)) \
            | np.where(mask, np.uint32(_FLAG), np.uint32(0))
        for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
            if name in s:
                a = np.array(s[name], copy=True)
                a[mask] = np.nan
                s[name] = a
    out.primary["S_OUTLIR"] = "COMPLETE"
    return out


def _median_blots(slits, goods, weight_type, pixfrac, kernel, maskpt, per_column=True):
    """Blotted median SCI and median ERR for each exposure (steps 1-4 of the module docstring).

    ``per_column=False`` is the official global-mean weight mask (kept for comparison tests).
    """
    masked = []
    for s, g in zip(slits, goods):
        m = s.copy()
        m["DQ"] = np.where(g, 0, dqbits.DO_NOT_USE).astype(np.uint32)
        masked.append(m)
    grid = dz.build_grid(masked)
    ref = (float(slits[0].header["WSREFRA"]), float(slits[0].header["WSREFDE"]))
    maps = [dz.pixel_map(s, grid, ref) for s in masked]
    weights = [dz.input_weights(s, weight_type) for s in masked]
    values = {"SCI": [s["SCI"] for s in masked],
              "ERR": [np.nan_to_num(np.asarray(s["ERR"], float)) if "ERR" in s
                      else np.zeros(s.shape) for s in masked]}
    wsum, sums = dz.drizzle(grid, maps, weights, values, pixfrac=pixfrac, kernel=kernel)
    with np.errstate(all="ignore"):
        sci = sums["SCI"] / wsum
        err = sums["ERR"] / wsum
        # per-exposure, per-column mean of the non-zero weights (see module docstring)
        nz = wsum > 0
        if per_column:
            colmean = np.where(nz, wsum, 0).sum(axis=1) / nz.sum(axis=1)      # (nexp, nx)
            low = wsum < maskpt * colmean[:, None, :]
        else:
            low = wsum < maskpt * np.array([_clipped_mean(w[w > 0]) for w in wsum])[:, None, None]
    sci[low | ~nz] = np.nan
    err[low | ~nz] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(sci, axis=0)
        med_err = np.nanmedian(err, axis=0)
    blots_s = [dz.blot(med, x, y) for x, y in maps]
    blots_e = [dz.blot(med_err, x, y) for x, y in maps]
    return blots_s, blots_e


def _clipped_mean(values, nsigma=3.0, iters=5):
    """Mean after iterative nsigma clipping (the official global weight statistic)."""
    v = values
    for _ in range(iters):
        m, sd = v.mean(), v.std()
        keep = np.abs(v - m) <= nsigma * sd
        if keep.all():
            break
        v = v[keep]
    return v.mean() if v.size else 0.0


def _median_direct(slits, goods):
    shapes = {s.shape for s in slits}
    if len(shapes) != 1:
        raise InputError("outlier_detection", "resample_data=False needs exposures of one shape")
    sci = np.stack([np.where(g, s["SCI"], np.nan) for s, g in zip(slits, goods)]).astype(float)
    err = np.stack([np.where(g, s["ERR"], np.nan) for s, g in zip(slits, goods)]).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med, med_err = np.nanmedian(sci, axis=0), np.nanmedian(err, axis=0)
    return [med] * len(slits), [med_err] * len(slits)


def flag_outliers(sci, blot_sci, blot_err, snr1, snr2, scl1, scl2, backg=0.0, resampled=True):
    """Boolean outlier mask of one exposure from its blotted median and median error."""
    err = np.nan_to_num(blot_err, nan=0.0)
    with np.errstate(invalid="ignore"):
        diff = np.abs(sci - blot_sci - backg)
        if not resampled:
            return diff > snr1 * err
        deriv = _max_neighbour_diff(blot_sci)
        m1 = diff > scl1 * deriv + snr1 * err
        m2 = diff > scl2 * deriv + snr2 * err
    m1 = ndimage.binary_dilation(m1, structure=np.ones((3, 3), bool))
    return m1 & m2


def _max_neighbour_diff(img):
    """max |img - neighbour| over the 4 neighbours (NaN neighbours and edges ignored)."""
    out = np.zeros_like(img)
    d = np.abs(np.diff(img, axis=0))
    d = np.nan_to_num(d, nan=0.0)
    out[1:] = np.maximum(out[1:], d)
    out[:-1] = np.maximum(out[:-1], d)
    d = np.nan_to_num(np.abs(np.diff(img, axis=1)), nan=0.0)
    out[:, 1:] = np.maximum(out[:, 1:], d)
    out[:, :-1] = np.maximum(out[:, :-1], d)
    return out
