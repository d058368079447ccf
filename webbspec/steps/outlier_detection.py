"""outlier_detection, 'spec' method: flag cosmic rays etc. by comparing each exposure with the
median of all exposures of the source, resampled on a common rectified grid.

Algorithm (the official 'spec' mode): drizzle each exposure alone onto the common grid (SCI and
ERR, same weights); mask output pixels of low weight; nanmedian of SCI and ERR across exposures;
blot both back to each exposure (bilinear); D = |S - blot - backg|; deriv = max |difference| to
the 4 neighbours in the blotted median (here: in the median on its fine grid, blotted; see
the notes by _OVERSAMPLE); m1 = D > scale1*deriv + snr1*err (dilated 3x3),
m2 = D > scale2*deriv + snr2*err; outliers = m1dil & m2 get DQ |= DO_NOT_USE|OUTLIER and NaN in
SCI, ERR and VAR_*. With resample_data=False the comparison is made pixel by pixel on the input
grid (exposures must share a shape): |S - median| > snr1 * median_err.

Deliberate improvement over the official step: the low-weight mask compares each output pixel's
weight with ``maskpt`` x the mean non-zero weight of ITS OWN wavelength column (of that exposure),
not with one mean over the whole image. With ivm weights (1/VAR_RNOISE) that fall steeply to the
red end, the global mean blanks the median over most of the red end, so the official step misses
the outliers there; per-column means keep the test's purpose (drop the partially covered slit
edges) at every wavelength.

Nod-subtracted exposures (S_BKDSUB = COMPLETE, several exposures of the source on one
detector): each carries negative copies of the source where the other nods put it, at sky
positions that differ per exposure, so the plain median test flags them (and the clean pixels
of an exposure without a copy there) by the hundred (measured: 2.7% of the pixels of a nodded
point-source slit; the official step, jwst 3.0 with its defaults on the official calwebb_spec2
`_cal` of simulated FS seed 0, flags 2.1-2.5% of the point-source slit's clean pixels per nod, on
the rows of the negative traces, of the nod's own trace core and of the slit ends). Here the
subtraction is undone before the test: a first median (leaving out pixels significantly below
zero, SCI < -snr1 * ERR, and floored at zero: see _restore_nods) is blotted to every exposure, and
each exposure gets back the mean of what the other nods of its detector saw at the same detector
pixels (SLTSTRT1/2), i.e. the source part of its background. The test then runs on these restored
images: negative copies are gone, while a cosmic ray of one nod, imprinted negatively on the
others through their background, is flagged where it is and where it is imprinted. On a restored
pixel the model is "median at its sky position minus the mean of the median at the other nods'
sky positions of that detector pixel", so (a) both terms get the derivative allowance (the second
one is as much a blotted median as the first: an undersampled trace is sampled differently by
each nod: on the simulated FS program the restored negative traces differ from the median by 2%
of the restored signal for the median pixel, 14% at the 90th percentile, most on the flanks),
and (b) the noise is at least the pixel's own ERR (which holds its background's noise: on a
negative trace, the shot noise of the other nod's source, up to 1.7x the median's error there
where the median comes from exposures that see plain sky, e.g. the far end of an outer nod).
"""

import warnings

import numpy as np

from .. import dq as dqbits
from ..algorithms import drizzle as dz
from ..algorithms.nanmedian import nanmedian
from ..errors import InputError
from ..io.datamodels import Slit
from ._call import accepts_files

REFTYPES = ()
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): one source's slits with coordinates
NEEDS = ("assign_wcs", "extract_2d")

_FLAG = dqbits.DO_NOT_USE | dqbits.OUTLIER
# The median is built on a grid 4x finer along the slit than the data: a rectified trace that
# crosses pixel rows obliquely is otherwise blurred twice (drizzle, then bilinear blot), and the
# blotted median of a sharp point source fell to 0.70 of the data at its core (0.97 at 2x),
# enough for the test to flag the core of every nod.
_OVERSAMPLE = 4.0
# The derivative term (scale x max |neighbour difference|) allows for the blot's interpolation
# error; the median lives on the fine grid, so it is measured there (then blotted), not on the
# blotted image at the data's pixel spacing. On the wings of a bright point source this cuts the
# threshold several-fold: rays of 11-27 sigma two pixels from the core were missed before.
# Recall on the earlier analytic simulator (five FS programs, seeds 0-4; 212 rays > 10 sigma seen
# by every nod): grid 2x 92.7-98.2% per program, grid 4x 97.1-100% (this setting).
# The restored nod background (mean of the first median blotted at the other nods' sky positions)
# gets the same derivative allowance as the median (see the module docstring). It had 0.15 of it,
# tuned on that analytic simulator (restored traces within 2% of the median); on the optical-model
# simulator the restored negative traces of the point source missed the median by ~4-6 sigma on
# their flanks and the test flagged 410-458 clean pixels of each outer nod, most along one
# negative trace (seeds 0-4: 889-920 clean pixels per program, 4.2-4.4e-3 of the point source's
# slit). With the full allowance and the floor of _restore_nods 31-58; with the pixel's own ERR
# as well 5-8 (<= 3e-5 of that slit); rays > 10 sigma flagged 270/277 (269 before).
# maskpt is meant to drop output pixels an exposure covers only partly (slit ends). Applied to
# the ivm weight it also drops fully covered pixels whose read-noise variance is high: in the real
# CEERS MOS slits VAR_RNOISE varies 5x from row to row, so the median was undefined (NaN) at
# injected 100-sigma hot pixels and half of them went unflagged. The test is therefore made on
# the drizzled coverage (unit weights); the median itself still uses the ivm weights.
# Where only two exposures see a sky position their median is their mean, which carries half of
# a ray and hides it (with the derivative the ray itself adds). Cosmic rays and hot pixels are
# positive, so there the lower of the two values stands for the median: a ray in either is then
# flagged, while noise alone puts the higher value only ~1.1 sigma above it on average.
# Where ONE exposure alone sees the sky (the slit ends of a nod pattern: 5 of the 30 hot pixels
# of the MOS test program) the median is that exposure itself and nothing can be flagged; there
# the median is replaced by the exposure's running median along the slit over _SINGLE_WINDOW
# pixels, which keeps whatever is extended along the slit (sky, sky lines, the wings of a
# source) and removes a one-pixel spike. The official step flags nothing there.
_SINGLE_WINDOW = 3
# On the fine grid the neighbour difference at the top of an undersampled trace is tiny, yet the
# median of nods seen at different sub-pixel phases is broader than any one of them: on the
# simulated MOS program (PSF sigma ~0.6 pixel) the data's core row stood 10-22% above the blotted
# median and 130-295 pixels of one core row were flagged per exposure of a point source (Stage 3
# chi^2 12-64). At a local extremum along the slit the derivative is therefore at least its height
# over the median half a data pixel away on both sides (_OVERSAMPLE / 2 fine rows): those flags
# fell to 0-4 per exposure (the injected rays). The plain difference over half a pixel, everywhere,
# did as well there but cost the wings of the nodded FS sources recall (rays > 10 sigma 93% < 95%).
_DERIV_STEP = int(_OVERSAMPLE)


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


@accepts_files
def run(model, refs=None, *, weight_type="ivm", pixfrac=1.0, kernel="square", fillval="NAN",
        maskpt=0.7, snr="5.0 4.0", scale="1.2 0.7", backg=0.0, kernel_size="7 7",
        threshold_percent=99.8, rolling_window_width=25, ifu_second_check=False,
        resample_data=True, good_bits="~DO_NOT_USE", pixmap_stepsize=1.0, pixmap_order=1,
        ifu_method="webbspec"):
    """Flag outliers in the exposures of one source (``layout="multi"``); returns a new Model.

    IFU exposures (members with a SLICE map; a multi Model or a list of Models) go to
    :mod:`webbspec.algorithms.ifu_outliers`: ``ifu_method`` "webbspec" (default, cosmic rays and
    hot pixels of each exposure) or "official" (kernel_size, threshold_percent, ifu_second_check)."""
    if _is_ifu(model):
        return _run_ifu(model, snr, kernel_size, threshold_percent, ifu_second_check, good_bits, ifu_method)
    snr1, snr2 = _pair(snr, "outlier_detection.snr")
    scl1, scl2 = _pair(scale, "outlier_detection.scale")
    out = model.copy(arrays=False)   # arrays shared: the flagged ones are replaced below, none changed in place
    if len(model.slits) < 2:
        out.primary["S_OUTLIR"] = "SKIPPED"
        return out
    slits = out.slits
    goods = [_good_mask(s, good_bits) & np.isfinite(s["SCI"]) for s in slits]
    nodded = [_detector_origin(model, s) if _nod_subtracted(model, s) else None for s in slits]
    work, backs = slits, [None] * len(slits)
    if resample_data and sum(o is not None for o in nodded) > 1:
        work, backs = _restore_nods(model, slits, goods, nodded, snr1, weight_type, pixfrac, kernel,
                                    maskpt)
    if resample_data:
        blot_sci, blot_err, blot_der = _median_blots(work, goods, weight_type, pixfrac, kernel, maskpt)
    else:
        blot_sci, blot_err = _median_direct(work, goods)
        blot_der = [None] * len(work)
    # a restored (nod-subtracted) pixel's noise is at least its own ERR (module docstring)
    blot_err = [be if b is None or "ERR" not in s else np.fmax(be, np.asarray(s["ERR"], float))
                for s, be, b in zip(work, blot_err, backs)]
    masks = [flag_outliers(np.asarray(s["SCI"], float), bs, be, snr1, snr2, scl1, scl2, backg,
                           resample_data, model_deriv=b, deriv=bd) & g
             for s, g, bs, be, b, bd in zip(work, goods, blot_sci, blot_err, backs, blot_der)]
    masks = [m if b is not None else m & ~_dark(s, bs, snr2) for m, s, bs, b in zip(masks, work, blot_sci, backs)]
    for s, mask in zip(slits, masks):
        s["DQ"] = (np.asarray(s["DQ"], np.uint32) if "DQ" in s else np.zeros(s.shape, np.uint32)) \
            | np.where(mask, np.uint32(_FLAG), np.uint32(0))
        for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
            if name in s:
                a = np.array(s[name], copy=True)
                a[mask] = np.nan
                s[name] = a
    out.primary["S_OUTLIR"] = "COMPLETE"
    return out


def _dark(slit, blot_sci, snr):
    """Pixels below the median yet consistent with no light (|SCI| < snr x their own ERR): where
    an exposure's slit edge or bar hides light the other exposures see at that sky position (a
    MOS nod puts the source in another shutter). Not outliers: flagging them let the combination
    fill them from the other nods (the brightest simulated point source's FLUX +0.17%). Cosmic rays
    and hot pixels are positive; a subtracted ray (imprint) is significantly negative."""
    if "ERR" not in slit:
        return np.zeros(slit.shape, bool)
    sci = np.asarray(slit["SCI"], float)
    with np.errstate(invalid="ignore"):
        return (sci < blot_sci) & (np.abs(sci) < snr * np.asarray(slit["ERR"], float))


def _is_ifu(model):
    """IFU exposures: a list of Models, or members with a SLICE map (ifu_outliers.is_ifu, which
    is imported only for them: with scipy.spatial and scipy.ndimage it costs a slit-mode Stage 3
    job 0.25 s of its start)."""
    if isinstance(model, (list, tuple)) or any("SLICE" in s for s in getattr(model, "slits", [])):
        from ..algorithms import ifu_outliers

        return ifu_outliers.is_ifu(model)
    return False


def _run_ifu(model, snr, kernel_size, threshold_percent, ifu_second_check, good_bits, ifu_method):
    from ..algorithms import ifu_outliers

    n = len(model) if isinstance(model, (list, tuple)) else len(model.slits)
    if n < 2:
        out = [m.copy() for m in model] if isinstance(model, (list, tuple)) else model.copy()
        for m in (out if isinstance(out, list) else [out]):
            m.primary["S_OUTLIR"] = "SKIPPED"
        return out
    ksize = [int(round(v)) for v in _pair(kernel_size, "outlier_detection.kernel_size")]
    out, _ = ifu_outliers.flag_exposures(model, lambda s: _good_mask(s, good_bits), ifu_method,
                                         _pair(snr, "outlier_detection.snr"), ksize, float(threshold_percent),
                                         bool(ifu_second_check))
    return out


def _nod_subtracted(model, slit):
    return str(slit.header.get("S_BKDSUB", model.primary.get("S_BKDSUB", ""))).upper() == "COMPLETE"


def _detector_origin(model, slit):
    """(detector, x0, y0) of the slit cutout (0-based), or None without SLTSTRT1/2."""
    h = slit.header
    if "SLTSTRT1" not in h or "SLTSTRT2" not in h:
        return None
    det = h.get("DETECTOR", model.primary.get("DETECTOR"))
    return str(det), int(h["SLTSTRT1"]) - 1, int(h["SLTSTRT2"]) - 1


def _shifted(img, src, dst, shape):
    """``img`` (a cutout at detector origin ``src``) on the cutout grid at ``dst`` (NaN outside)."""
    out = np.full(shape, np.nan)
    dy, dx = src[2] - dst[2], src[1] - dst[1]
    y0, y1 = max(0, dy), min(shape[0], dy + img.shape[0])
    x0, x1 = max(0, dx), min(shape[1], dx + img.shape[1])
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = img[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
    return out


def _restore_nods(model, slits, goods, nodded, snr1, weight_type, pixfrac, kernel, maskpt):
    """Copies of ``slits`` with the source part of their nod background added back (docstring),
    and the derivative term of what was added (None where nothing was).

    The first median is floored at zero: what a background holds of the other nods, once their
    sky cancels, is sources, never below zero. Below zero the median is noise, the wings of a
    negative copy that the SCI < -snr1 * ERR cut leaves in, or the imprint (-ray/2) of a ray of
    another nod where only two exposures overlap and the lower stands for the median; restored, such
    an imprint lands on the ray itself, and with its derivative allowance it hid rays of 10-15
    sigma (1-2 per simulated FS program)."""
    with np.errstate(invalid="ignore"):
        negative = [np.asarray(s["SCI"], float) < -snr1 * np.nan_to_num(np.asarray(s["ERR"], float))
                    if "ERR" in s else np.zeros(s.shape, bool) for s in slits]
    first, _, first_der = _median_blots(slits, [g & ~n for g, n in zip(goods, negative)],
                                        weight_type, pixfrac, kernel, maskpt, floor=0.0)
    out, back_derivs = [], []
    for k, s in enumerate(slits):
        others = [j for j in range(len(slits)) if j != k and nodded[k] is not None
                  and nodded[j] is not None and nodded[j][0] == nodded[k][0]]
        r = s.copy(arrays=False)     # SCI replaced below
        if others:
            # no clean data at a sky position: there are only negative copies there, no source
            back = _mean_shifted([first[j] for j in others], [nodded[j] for j in others], nodded[k], s.shape)
            r["SCI"] = np.asarray(s["SCI"], float) + back
            der = _mean_shifted([first_der[j] for j in others], [nodded[j] for j in others],
                                nodded[k], s.shape)
        out.append(r)
        back_derivs.append(der if others else None)
    return out, back_derivs


def _mean_shifted(images, origins, dst, shape):
    """Mean of cutout ``images`` (NaN as 0) moved onto the cutout grid at detector origin ``dst``."""
    seen = [_shifted(np.nan_to_num(img, nan=0.0), o, dst, shape) for img, o in zip(images, origins)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nan_to_num(np.nanmean(np.stack(seen), axis=0), nan=0.0)


def _median_blots(slits, goods, weight_type, pixfrac, kernel, maskpt, per_column=True, floor=None):
    """Blotted median SCI and median ERR for each exposure (steps 1-4 of the module docstring).

    ``per_column=False`` is the official global-mean weight mask (kept for comparison tests);
    ``floor``: a lower bound of the median (on its fine grid, before the derivative and the blot).
    """
    masked = []
    for s, g in zip(slits, goods):
        m = Slit(s.header, dict(s.arrays))     # read only below (header too): only DQ is replaced
        m["DQ"] = np.where(g, 0, dqbits.DO_NOT_USE).astype(np.uint32)
        masked.append(m)
    grid = dz.build_grid(masked, pixel_scale_ratio=_OVERSAMPLE)
    ref = (float(slits[0].header["WSREFRA"]), float(slits[0].header["WSREFDE"]))
    maps = [dz.pixel_map(s, grid, ref) for s in masked]
    weights = [dz.input_weights(s, weight_type) for s in masked]
    values = {"SCI": [s["SCI"] for s in masked],
              "ERR": [np.nan_to_num(np.asarray(s["ERR"], float)) if "ERR" in s
                      else np.zeros(s.shape) for s in masked]}
    if per_column:
        # the low-weight test on geometric coverage alone (see the notes by _OVERSAMPLE): the
        # drizzle of unit weights where the weights are > 0, from the same footprints
        wsum, sums, cover = dz.drizzle(grid, maps, weights, values, pixfrac=pixfrac, kernel=kernel, coverage=True)
    else:
        wsum, sums = dz.drizzle(grid, maps, weights, values, pixfrac=pixfrac, kernel=kernel)
        cover = wsum
    with np.errstate(all="ignore"):
        sci = sums["SCI"] / wsum
        err = sums["ERR"] / wsum
        # per-exposure, per-column mean of the non-zero weights (see module docstring)
        nz = wsum > 0
        if per_column:
            cnz = cover > 0
            colmean = np.where(cnz, cover, 0).sum(axis=1) / cnz.sum(axis=1)    # (nexp, nx)
            low = cover < maskpt * colmean[:, None, :]
        else:
            low = wsum < maskpt * np.array([_clipped_mean(w[w > 0]) for w in wsum])[:, None, None]
    unused = low | ~nz
    np.copyto(sci, np.nan, where=unused)
    np.copyto(err, np.nan, where=unused)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = nanmedian(sci, axis=0)
        med_err = nanmedian(err, axis=0)
        # where only two exposures overlap, the lower one (see the notes by _OVERSAMPLE)
        count = np.isfinite(sci).sum(axis=0)
        med = np.where(count == 2, np.nanmin(sci, axis=0), med)
        # where one exposure alone sees the sky, its own running median along the slit
        med = _along_slit_median(med, int(_SINGLE_WINDOW * _OVERSAMPLE), count == 1)
    if floor is not None:
        med = np.maximum(med, floor)
    # the derivative term on the median's own fine grid, along the slit over half a data pixel
    fine = _max_neighbour_diff(med, along=_DERIV_STEP)
    blots = [dz.blot_many([med, med_err, fine], x, y) for x, y in maps]
    return [b[0] for b in blots], [b[1] for b in blots], [b[2] for b in blots]


def _along_slit_median(img, window, where):
    """``img`` with its pixels at ``where`` replaced by the running nanmedian over ``window`` rows
    (fine grid, rows along the slit); the median is computed at those pixels only."""
    out = img.copy()
    rows, cols = np.nonzero(where)
    if rows.size:
        half = window // 2
        padded = np.pad(img, ((half, window - 1 - half), (0, 0)), constant_values=np.nan)
        view = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)   # no copy
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[rows, cols] = nanmedian(view[rows, cols], axis=-1)
    return out


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


def flag_outliers(sci, blot_sci, blot_err, snr1, snr2, scl1, scl2, backg=0.0, resampled=True,
                  model_deriv=None, deriv=None):
    """Boolean outlier mask of one exposure from its blotted median and median error.

    ``deriv``: the derivative term of the median (default: from ``blot_sci``); ``model_deriv``:
    that of an image added to ``sci`` (the restored nod background), which is as imprecise as
    the blotted median, so it joins the median's."""
    err = np.nan_to_num(blot_err, nan=0.0)
    with np.errstate(invalid="ignore"):
        diff = np.abs(sci - blot_sci - backg)
        if not resampled:
            return diff > snr1 * err
        deriv = _max_neighbour_diff(blot_sci) if deriv is None else np.nan_to_num(deriv, nan=0.0)
        if model_deriv is not None:
            deriv = deriv + model_deriv
        m1 = diff > scl1 * deriv + snr1 * err
        m2 = diff > scl2 * deriv + snr2 * err
    return _dilate_3x3(m1) & m2


def _dilate_3x3(mask):
    """Binary dilation by a 3x3 square (outside the image counts as False): scipy.ndimage's
    binary_dilation with that structure, as OR of the shifted masks (separable: rows, then columns)."""
    rows = mask.copy()
    rows[1:] |= mask[:-1]
    rows[:-1] |= mask[1:]
    out = rows.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def _running_max_rows(img, size):
    """Maximum over the ``size`` rows from ``size // 2`` before each row, the window cut at the
    edges: scipy's maximum_filter1d along axis 0 with its default 'reflect' border and origin (the
    reflected rows lie inside the cut window, so they never change the maximum)."""
    before, after = size // 2, size - 1 - size // 2
    out = img.copy()
    for k in range(1, max(before, after) + 1):
        if k <= before:
            np.maximum(out[k:], img[:-k], out=out[k:])
        if k <= after:
            np.maximum(out[:-k], img[k:], out=out[:-k])
    return out


def _max_neighbour_diff(img, along=1):
    """max |img - neighbour| over the 4 neighbours (NaN neighbours and edges ignored); with
    ``along`` > 1 at least the height of a local extremum along axis 0 (the slit) over the rows
    ``along`` away on both sides (the lower of its two drops), within ``along`` rows of it."""
    out = np.zeros_like(img)
    if along > 1:
        up = np.full(img.shape, np.nan)
        down = np.full(img.shape, np.nan)
        up[:-along] = img[:-along] - img[along:]
        down[along:] = img[along:] - img[:-along]
        with np.errstate(invalid="ignore"):
            extremum = np.where(up * down > 0, np.minimum(np.abs(up), np.abs(down)), 0.0)
        # held over +-``along``/2 rows: a data pixel's centre need not fall on the fine grid's peak
        out = _running_max_rows(np.nan_to_num(extremum, nan=0.0), along + 1)
    d = np.abs(np.diff(img, axis=0))
    d = np.nan_to_num(d, nan=0.0)
    out[1:] = np.maximum(out[1:], d)
    out[:-1] = np.maximum(out[:-1], d)
    d = np.nan_to_num(np.abs(np.diff(img, axis=1)), nan=0.0)
    out[:, 1:] = np.maximum(out[:, 1:], d)
    out[:, :-1] = np.maximum(out[:, :-1], d)
    return out
