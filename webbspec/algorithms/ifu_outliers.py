"""IFU outlier detection kernels: ours (cosmic rays and hot pixels in one exposure) and the official one.

Ours, per exposure (:func:`flag_exposure`). Every detector column of a slice along the dispersion
(MRS: a column; NIRSpec IFU: a row) is the spectrum of one sky position. Its neighbour on either
side in the same slice sees the same sources a fraction of a PSF away, so over a short stretch of
wavelength the pixel's spectrum is an affine function of its neighbour's: d(lam) = a + b t(lam),
exactly so for one source with any spectrum plus one with a flat spectrum (b = ratio of the two
profiles); fringes, lines and continuum slopes are shared. For each pixel (a, b) are fitted by
least squares on the ``window`` pixels along the dispersion centred on it, leaving out the pixel
and its two neighbours along the dispersion (a ray often hits two adjacent pixels); the prediction
is a + b t at the pixel. Both neighbours give a prediction: their inverse-variance mean, or the
lower one where they disagree (a ray in one of them). Noise: the pixel's ERR, b x the template's
ERR, the fit's uncertainty at the pixel, and the fit's scatter beyond the noise (a model that does
not fit raises its own threshold). Flags: residual > snr1 x noise (dilated 3x3) and > snr2 x noise,
positive residuals only (rays and hot pixels add charge). A second pass repeats the fits without
the first pass's flags (a ray straddling two columns spoils the other column's template); it refits
only the pixels whose window (their column and the next, +-half the window along the dispersion)
holds a flag: the others' fits are unchanged bit for bit, the refitted ones equal a whole refit to
round-off (the flags of the simulated NIRSpec program are the same bit for bit).

Then the other exposures confirm (:func:`confirm`; it needs of each exposure only the sky position
and residual of its pixels above the veto and of its flags, so :func:`flag_stream` holds one
exposure at a time: the Stage 3 prepare job): a real feature the model cannot follow (an
emission line of a source without continuum, where b is unconstrained next to the line peak) is
seen by every exposure at the same sky position and wavelength, a ray or a hot pixel is not. A flag
is dropped when at least half of the other exposures show, within a slice width of it in (xi, eta,
wavelength), a residual > 3 sigma and > 0.3 of its own. On an emission-line source without
continuum (tests/test_ifu_outliers.py) this cuts the clean pixels flagged from 7.9e-4 (line peaks)
to 1.0e-5, rays > 10 sigma still found at 98.7%.

Why not a median of the other exposures resampled to each pixel (the slit method): on an IFU the
scene is undersampled across slices, and every dither samples a point source at another sub-slice
phase, so the resampled median misses the core of the source, and the derivative allowance that
covers it blinds the test over the whole core. The neighbour-spectrum model never resamples in
space: the profile ratio b absorbs the sub-pixel phase whatever the PSF; the other exposures only
vote on the few flags.

The official method (:func:`official_mask`): per exposure the smaller absolute difference of each
pixel to its two neighbours across the dispersion; minimum over the exposures of one detector;
normalised by its nan-median filter (``kernel_size``, zero-padded, floored at a third of the
image's nanmedian); flags above the ``threshold_percent`` percentile of the image less a 4-pixel
border; one mask for every exposure of the detector (``ifu_second_check`` adds the pixels where the
minimum is NaN).
"""

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = ["dispersion_axis", "flag_exposure", "confirm", "official_mask", "is_ifu", "flag_exposures", "flag_stream",
           "IFU_METHODS"]

_GAP = 1        # pixels on either side of the centre left out of its fit
_PASSES = 2     # fits redone without the pixels flagged so far, at most this many times
_VETO = 3.0     # a flag stands unless the other exposures see > _VETO sigma at its place (confirm)
_SHARE = 0.3    # ... and at least this fraction of its excess


def dispersion_axis(wavelength):
    """0 when the wavelength changes along rows (MRS), 1 along columns (NIRSpec IFU)."""
    lam = np.asarray(wavelength, float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        d0 = np.nanmedian(np.abs(np.diff(lam, axis=0)))
        d1 = np.nanmedian(np.abs(np.diff(lam, axis=1)))
    return 0 if not d1 > d0 else 1


def _window_sums(c, half):
    """Sums of each plane of ``c`` (k, ny + 2 half + 1, nx: the planes at rows half + 1 .. half + ny,
    zeros around, from :func:`_padded`; overwritten) over the rows y - half .. y + half (cut at the
    edges), the centre and +-_GAP left out: one cumulative sum."""
    ny = c.shape[1] - 2 * half - 1
    np.cumsum(c, axis=1, out=c)
    gap = c[:, half + 1 + _GAP:half + 1 + _GAP + ny] - c[:, half - _GAP:half - _GAP + ny]
    out = c[:, 2 * half + 1:2 * half + 1 + ny] - c[:, :ny]
    out -= gap
    return out


def _padded(k, shape, half):
    """(zero buffer for :func:`_window_sums`, its planes' view) for ``k`` planes of ``shape``."""
    c = np.zeros((k, shape[0] + 2 * half + 1, shape[1]))
    return c, c[:, half + 1:half + 1 + shape[0]]


def _level(a, ok):
    """A per-column level (the mean of ``a`` where ``ok``, 0 for an empty column): sums are made
    about it, for precision."""
    n = ok.sum(axis=0, keepdims=True)
    tot = np.where(ok, a, 0.0).sum(axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, tot / n, 0.0)


def _pair_sums(d, t, half):
    """Window sums of the pairs (``d``, ``t``) where both are finite, each about its column level:
    (n, (sum d, sum d^2, level d), (sum t, sum t^2, level t), sum d t). Symmetric: the sums of
    (t, d) are the same with the two middle items swapped."""
    ok = np.isfinite(d) & np.isfinite(t)
    rd, rt = _level(d, ok), _level(t, ok)
    c, planes = _padded(6, d.shape, half)      # the planes written in place, no stacked copy
    planes[0] = ok
    dv, tv = planes[1], planes[2]
    np.copyto(dv, np.where(ok, d - rd, 0.0))
    np.copyto(tv, np.where(ok, t - rt, 0.0))
    np.multiply(dv, dv, out=planes[3])
    np.multiply(tv, dv, out=planes[4])
    np.multiply(tv, tv, out=planes[5])
    n, sd, st, sdd, sdt, stt = _window_sums(c, half)
    return n, (sd, sdd, rd), (st, stt, rt), sdt


def _fit(d, t, err, terr, n, dsums, tsums, std):
    """(prediction, its variance) of every pixel of ``d`` from the template ``t`` (its neighbour's
    spectrum), given the window sums of :func:`_pair_sums`: d = a + b t fitted on the window. The
    variance holds the template's noise, the fit's uncertainty at the pixel (leverage) and the part
    of the fit's scatter the noise does not explain."""
    (sd, sdd, rd), (st, stt, rt) = dsums, tsums
    with np.errstate(invalid="ignore", divide="ignore"):
        tm, dm = st / n, sd / n
        vt = np.maximum(stt / n - tm * tm, 0.0)
        cov = std / n - tm * dm
        vd = np.maximum(sdd / n - dm * dm, 0.0)
        flat = vt <= 1e-12 * (vd + tm * tm + 1e-300)
        b = np.where(flat, 0.0, cov / np.where(flat, 1.0, vt))
        s2 = np.maximum(vd - b * cov, 0.0) * n / np.maximum(n - 2, 1)     # residual variance of the fit
        tc = (t - rt) - tm
        pred = rd + dm + b * np.where(np.isfinite(t), tc, 0.0)
        lever = 1.0 / n + np.where(flat, 0.0, tc * tc / (n * np.where(flat, 1.0, vt)))
        var = np.maximum((b * np.nan_to_num(terr)) ** 2, s2 - err ** 2) + s2 * lever
    bad = (n < 4) | ~np.isfinite(pred) | ~np.isfinite(var)
    return np.where(bad, np.nan, pred), np.where(bad, np.nan, var)


def _predict(d, t, err, terr, half):
    """:func:`_fit` of ``d`` from the template ``t``."""
    return _fit(d, t, err, terr, *_pair_sums(d, t, half))


def _both_sides(d, err, half):
    """[(prediction, variance) from the left neighbour column, ... from the right one] of every
    pixel (NaN where the neighbour does not exist). The window sums of the pair of columns
    (x, x + 1) serve both fits, x from x + 1 and x + 1 from x: computed once."""
    left, right = [(np.full(d.shape, np.nan), np.full(d.shape, np.nan)) for _ in range(2)]
    if d.shape[1] > 1:
        a, b, ea, eb = d[:, :-1], d[:, 1:], err[:, :-1], err[:, 1:]
        n, sa, sb, sab = _pair_sums(a, b, half)
        for (p, v), cols in ((_fit(a, b, ea, eb, n, sa, sb, sab), slice(None, -1)),
                             (_fit(b, a, eb, ea, n, sb, sa, sab), slice(1, None))):
            side = right if cols.start is None else left
            side[0][:, cols], side[1][:, cols] = p, v
    return [left, right]


def _near(hot):
    """``hot`` dilated by the 3 x 3 square, built from its few set pixels (a full-frame binary
    dilation costs more than the rest of a pass)."""
    ys, xs = np.nonzero(hot)
    out = np.zeros(hot.shape, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            y, x = ys + dy, xs + dx
            ok = (y >= 0) & (y < hot.shape[0]) & (x >= 0) & (x < hot.shape[1])
            out[y[ok], x[ok]] = True
    return out


def _combine(p1, v1, p2, v2):
    """One prediction from two: the inverse-variance mean, or the lower one where they disagree (a
    ray in one template), or the one that exists."""
    with np.errstate(invalid="ignore", divide="ignore"):
        w1, w2 = 1.0 / np.maximum(v1, 1e-300), 1.0 / np.maximum(v2, 1e-300)
        agree = (p1 - p2) ** 2 <= 9.0 * (v1 + v2)
        lower = p1 <= p2
        pred = np.where(agree, (w1 * p1 + w2 * p2) / (w1 + w2), np.where(lower, p1, p2))
        var = np.where(agree, 1.0 / (w1 + w2), np.where(lower, v1, v2))
    for p, v, other in ((p1, v1, p2), (p2, v2, p1)):
        alone = np.isfinite(p) & ~np.isfinite(other)
        pred, var = np.where(alone, p, pred), np.where(alone, v, var)
    return pred, var


def _slice_boxes(slc):
    """(label, bounding box) of every slice of the SLICE map ``slc`` (0 off slices)."""
    return [(label, box) for label, box in enumerate(ndimage.find_objects(slc), start=1) if box is not None]


def _residual_sigma(d, err, slc, half, boxes, z=None, r=None, redo=None, out=None):
    """(residual / noise, residual) of every pixel (dispersion along axis 0); NaN where no model exists.
    Each slice is fitted in its own bounding box, its pixels alone (windows never mix slices): those
    with ``slc`` equal to its label (0 elsewhere and at pixels not to use); ``d``, ``err`` (NaN as 0)
    as given, any layout and float dtype (views of the exposure's arrays: no full-frame copies).

    With ``redo`` (pixels masked since ``z``, ``r`` were computed; updated in place) only the pixels
    whose fit sees one of them are recomputed: a pixel's fit uses its own column and its two
    neighbours over its window along the dispersion, so the rest is unchanged bit for bit; the
    recomputed ones equal a refit of the whole slice to round-off (their sums start elsewhere).
    ``boxes``: :func:`_slice_boxes` of the unmasked map (a masked pixel only adds NaN to a box);
    ``out``: two float64 arrays of ``d``'s shape to fill instead of new ones (first pass)."""
    if z is None:
        if out is None:
            z, r = np.full(d.shape, np.nan), np.full(d.shape, np.nan)
        else:
            z, r = out
            z.fill(np.nan)
            r.fill(np.nan)
    for label, box in boxes:
        if redo is None:
            _refit(d, err, slc, half, label, box, (slice(None), slice(None)), box, z, r, False)
            continue
        cols = np.flatnonzero(redo[box].any(axis=0))
        # each run of changed columns refitted apart (rays are few and scattered: refitting from
        # the first to the last of them redid most of the box); runs closer than 5 columns joined,
        # so that no two refits write the same column
        for run in np.split(cols, np.flatnonzero(np.diff(cols) > 4) + 1) if cols.size else ():
            # fits of columns c0..c1 (the changed ones +-1) need their neighbours: computed on +-2,
            # at least two columns wide (a one-column nanmean sums in another order)
            nx = box[1].stop - box[1].start
            c0, c1 = max(run[0] - 1, 0), min(run[-1] + 2, nx)
            s0, s1 = max(c0 - 1, 0), min(c1 + 1, nx)
            if s1 - s0 < 2:
                s0, s1 = max(min(s0, nx - 2), 0), min(max(s1, 2), nx)
            x0, y0, ny = box[1].start, box[0].start, box[0].stop - box[0].start
            # and along the dispersion only the rows whose window holds a change (+-half), computed
            # on +-2 half (their windows); groups of changed rows further apart refitted apart
            rows = np.flatnonzero(redo[box][:, run[0]:run[-1] + 1].any(axis=1))
            for rr in np.split(rows, np.flatnonzero(np.diff(rows) > 2 * half + 1) + 1):
                k0, k1 = max(rr[0] - half, 0), min(rr[-1] + half + 1, ny)
                t0, t1 = max(k0 - half, 0), min(k1 + half, ny)
                sub = (slice(y0 + t0, y0 + t1), slice(x0 + s0, x0 + s1))
                keep = (slice(k0 - t0, k1 - t0), slice(c0 - s0, c1 - s0))
                out = (slice(y0 + k0, y0 + k1), slice(x0 + c0, x0 + c1))
                _refit(d, err, slc, half, label, sub, keep, out, z, r, True)
    return z, r


def _refit(d, err, slc, half, label, sub, keep, out, z, r, redo):
    """:func:`_residual_sigma` of slice ``label`` on the columns ``sub``, written to ``out`` (the
    ``keep`` part of ``sub``)."""
    # the box holds every pixel of the slice, so both neighbours of each of them; float64
    # C-ordered copies of the box alone (the per-column sums' order follows the layout)
    mine = slc[sub] == label
    db = np.where(mine, np.array(d[sub], dtype=float, order="C"), np.nan)
    eb = np.nan_to_num(np.array(err[sub], dtype=float, order="C"), nan=0.0, copy=False)
    preds = _both_sides(db, eb, half)
    pred, var = _combine(*preds[0], *preds[1])
    none = ~np.isfinite(pred) & np.isfinite(db)
    if none.any():     # no neighbour column in the slice: the window mean
        p0, v0 = _predict(db, np.zeros_like(db), eb, np.zeros_like(db), half)
        pred, var = np.where(none, p0, pred), np.where(none, v0, var)
    with np.errstate(invalid="ignore", divide="ignore"):
        rb = db - pred
        zb = rb / np.sqrt(eb ** 2 + var)
    mine = mine[keep]
    z[out] = np.where(mine, zb[keep], np.nan if redo else z[out])
    r[out] = np.where(mine, rb[keep], np.nan if redo else r[out])


def flag_exposure(sci, err, slices, good, disp_axis=0, snr=(5.0, 4.0), window=15, passes=_PASSES,
                  return_sigma=False):
    """Outlier mask of one IFU exposure (module docstring). ``slices``: the SLICE map (0 off slices),
    ``good``: usable pixels; ``window``: pixels along the dispersion of each fit (odd). With
    ``return_sigma`` also the first pass's residual / noise and residual of every pixel."""
    mask, z, resid = _flag(sci, err, slices, good, disp_axis, snr, window, passes, keep_first=return_sigma)
    if not return_sigma:
        return mask
    return mask, z, resid


def _flag(sci, err, slices, good, disp_axis, snr, window, passes, keep_first=True, evidence=False, work=None):
    """:func:`flag_exposure`; with ``evidence`` (mask, :func:`_evidence` of the first pass) instead.
    ``work``: a dict kept across calls, whose full-frame float64 buffers are reused (without
    ``keep_first``: nothing returned refers to them): fresh memory costs a page fault per page.

    Made on the band of lines across the dispersion that hold usable pixels (a NIRSpec IFU
    exposure's slices cover half the detector's rows): every fit lies inside it, nothing outside
    is flagged."""
    good = np.asarray(good, bool)
    lines = np.flatnonzero(good.any(axis=disp_axis))
    s0, s1 = (int(lines[0]), int(lines[-1]) + 1) if lines.size else (0, 0)
    shape = good.shape
    if not lines.size or s1 - s0 == shape[1 - disp_axis]:
        return _flag_band(sci, err, slices, good, disp_axis, snr, window, passes, keep_first, evidence, work)
    crop = (slice(s0, s1), slice(None)) if disp_axis == 1 else (slice(None), slice(s0, s1))
    out = _flag_band(np.asarray(sci)[crop], np.asarray(err)[crop], np.asarray(slices)[crop], good[crop], disp_axis,
                     snr, window, passes, keep_first, evidence, work)
    mask = np.zeros(shape, bool)
    mask[crop] = out[0]
    if evidence:       # pixel coordinates back in the whole frame (np.nonzero order is kept)
        ys, xs, r_high, r_flags = out[1]
        if disp_axis == 1:
            ys = ys + s0
        else:
            xs = xs + s0
        return mask, (ys, xs, r_high, r_flags)
    if out[1] is None:
        return mask, None, None
    whole = []
    for a in out[1:]:
        w = np.full(shape, np.nan)
        w[crop] = a
        whole.append(w)
    return mask, whole[0], whole[1]


def _flag_band(sci, err, slices, good, disp_axis, snr, window, passes, keep_first, evidence, work):
    """:func:`_flag` on the given arrays."""
    snr1, snr2 = snr
    half = max(int(window) // 2, _GAP + 2)
    tr = (lambda a: np.asarray(a)) if disp_axis == 0 else (lambda a: np.asarray(a).T)
    back = (lambda a: a) if disp_axis == 0 else (lambda a: a.T)
    # each a C-ordered copy made in one pass (the layout sets the order of the per-column sums)
    good = np.ascontiguousarray(tr(np.asarray(good, bool)))
    # SCI and ERR stay as given (transposed views): each slice's box is converted on its own
    d0, e = tr(sci), tr(err)
    slc = np.array(tr(slices), dtype=np.int32, order="C")
    slc[~good] = 0
    boxes = _slice_boxes(slc)
    mask, new = np.zeros(slc.shape, bool), None
    bufs = None
    if work is not None and not keep_first:
        if work.get("shape") != slc.shape:
            work.clear()
            work.update(shape=slc.shape, bufs=[np.empty(slc.shape) for _ in range(3)])
        bufs = work["bufs"]
    z, resid = _residual_sigma(d0, e, slc, half, boxes, out=None if bufs is None else bufs[:2])
    first = (z.copy(), resid.copy()) if keep_first else None
    high = None
    if evidence:
        with np.errstate(invalid="ignore"):
            ys, xs = np.nonzero(back(z) > _VETO)
        if bufs is None:
            r1 = resid.copy()
        else:
            r1 = bufs[2]
            np.copyto(r1, resid)
        high = (ys, xs, back(resid)[ys, xs])
    for k in range(max(int(passes), 1)):
        if k:     # a later pass: the fits redone without the flags so far (only where they change)
            slc[new] = 0
            z, resid = _residual_sigma(d0, e, slc, half, boxes, z, resid, redo=new)
        with np.errstate(invalid="ignore"):
            new = _near(z > snr1) & (z > snr2) & ~mask
        if not new.any():
            break
        mask |= new
    mask &= good
    mask = back(mask)
    if evidence:
        return mask, (*high, back(r1)[np.nonzero(mask)])
    if first is None:
        return mask, None, None
    return mask, back(first[0]), back(first[1])


def confirm(masks, sigmas, resids, frames, groups=None, veto=_VETO, share=_SHARE):
    """``masks`` with the flags that the other exposures explain removed.

    A real feature that the neighbour model cannot follow (an emission line of a source without
    continuum: the profile ratio is then unconstrained next to the line peak) appears in every
    exposure at the same sky position and wavelength; a ray or a hot pixel does not. A flag of
    exposure k is dropped when at least half of the other exposures have, within reach of it, a
    pixel whose residual exceeds ``veto`` x its noise (``sigmas``: residual / noise, first pass)
    and ``share`` x the flagged pixel's residual (``resids``): a ray on a bright source, where the
    model of every exposure is a few sigma off, still stands. ``frames``: per exposure a
    :class:`_Frame` (pixel -> (xi, eta, scaled wavelength) in one frame for all, and the reach);
    ``groups``: per exposure a key, only exposures of the same key vote (one detector and band)."""
    evidence = []
    for m, s, r in zip(masks, sigmas, resids):
        with np.errstate(invalid="ignore"):
            ys, xs = np.nonzero(s > veto)
        evidence.append((ys, xs, r[ys, xs], r[np.nonzero(m)]))
    return _confirm(masks, [_points(m, ev, f) for m, ev, f in zip(masks, evidence, frames)], groups, share)


def _points(mask, evidence, frame):
    """The vote's inputs of one exposure: (sky points and residuals of its pixels above the veto, sky
    points and residuals of its flags in ``np.nonzero(mask)`` order, its reach); ``evidence`` from
    :func:`_flag`."""
    ys, xs, r_high, r_flags = evidence
    fy, fx = np.nonzero(mask)
    return frame.points(ys, xs), r_high, frame.points(fy, fx), r_flags, frame.reach


def _confirm(masks, points, groups=None, share=_SHARE):
    """:func:`confirm` from each exposure's :func:`_points` (sparse: the residual images are not needed)."""
    n = len(masks)
    out = [m.copy() for m in masks]
    high = [(cKDTree(p[0]), p[1]) if len(p[1]) else None for p in points]
    groups = [0] * n if groups is None else list(groups)
    for k in range(n):
        ys, xs = np.nonzero(masks[k])
        peers = [j for j in range(n) if j != k and groups[j] == groups[k]]
        if not ys.size or not peers:
            continue
        pts = points[k][2]
        floor = share * points[k][3]
        votes = np.zeros(ys.size)
        for j in peers:
            if high[j] is None:
                continue
            tree, rj = high[j]
            near = tree.query_ball_point(pts, points[j][4])
            votes += [bool(idx) and np.max(rj[idx]) >= f for idx, f in zip(near, floor)]
        drop = votes >= len(peers) / 2.0
        out[k][ys[drop], xs[drop]] = False
    return out


# ---------------------------------------------------------------- the official method


def _nan_median_filter(img, size):
    """The official nan-median filter: zero padding, nanmedian over each (ky, kx) window."""
    ky, kx = size
    padded = np.pad(img, ((ky // 2, ky // 2), (kx // 2, kx // 2)))
    out = np.empty(img.shape)
    step = max(1, 2_000_000 // max(img.shape[1] * ky * kx, 1))      # rows per block: bounded memory
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for y0 in range(0, img.shape[0], step):
            y1 = min(img.shape[0], y0 + step)
            win = sliding_window_view(padded[y0:y1 + ky - 1], (ky, kx))
            out[y0:y1] = np.nanmedian(win, axis=(-2, -1))
    return out


def _neighbour_min_diff(sci, axis):
    """min(|pixel - previous|, |pixel - next|) across the dispersion, the array edge taken as 0."""
    prev = np.diff(sci, axis=axis, prepend=0.0)
    nxt = np.flip(np.diff(np.flip(sci, axis=axis), axis=axis, prepend=0.0), axis=axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.fmin(np.abs(prev), np.abs(nxt))


def official_mask(scis, diff_axis, kernel_size=(7, 7), threshold_percent=99.8, second_check=False):
    """(mask, normalised minimum difference) of the official IFU method for the exposures ``scis``
    of one detector (DO_NOT_USE pixels already NaN). ``diff_axis``: across the dispersion (MIRI 1,
    NIRSpec 0); ``kernel_size``: (rows, columns) of the median filter, even sizes made odd."""
    ksize = tuple(int(k) + (1 - int(k) % 2) for k in kernel_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        minarr = np.nanmin(np.stack([_neighbour_min_diff(np.asarray(s, float), diff_axis) for s in scis]), axis=0)
        norm = _nan_median_filter(minarr, ksize)
        floor = np.nanmedian(minarr) / 3.0
        norm[norm < floor] = floor
        normed = minarr / norm
        ny, nx = normed.shape
        cut = np.nanpercentile(normed[4:ny - 4, 4:nx - 4], threshold_percent)
        mask = normed > cut
    if second_check:
        mask |= np.isnan(minarr)
    return mask, normed


# ---------------------------------------------------------------- exposures (the step's IFU branch)

IFU_METHODS = ("webbspec", "official")
_VARIANCES = ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")


def is_ifu(model):
    """True for IFU exposures: a list of them, or a multi-exposure Model whose members carry SLICE."""
    members = model if isinstance(model, (list, tuple)) else getattr(model, "slits", [])
    slits = [s for m in members for s in (m.slits if hasattr(m, "slits") else [m])]
    return bool(slits) and all("SLICE" in s for s in slits)


def flag_exposures(model, good, method="webbspec", snr=(5.0, 4.0), kernel_size=(7, 7), threshold_percent=99.8,
                   second_check=False):
    """Copies of the IFU exposures of ``model`` (a multi Model or a list of Models) with their outliers
    flagged (DQ |= DO_NOT_USE | OUTLIER, SCI / ERR / VAR_* NaN), and the list of masks.

    ``good(slit)``: the usable-pixel mask of a member (the step's good_bits)."""

    method = str(method).strip().lower()
    if method not in IFU_METHODS:
        from ..errors import InputError

        raise InputError("outlier_detection", f"ifu_method {method!r} is not one of {', '.join(IFU_METHODS)}")
    # arrays shared with the input: the flagged ones (DQ, SCI, ERR, VAR_*) are replaced, never changed
    outs = [m.copy(arrays=False) for m in model] if isinstance(model, (list, tuple)) else model.copy(arrays=False)
    if isinstance(outs, list):
        members = [(m, s) for m in outs for s in m.slits]
    else:
        members = [(outs, s) for s in outs.slits]
    slits = [s for _, s in members]
    goods = [good(s) & np.isfinite(s["SCI"]) for s in slits]
    if method == "official":
        masks = _official_masks(members, goods, kernel_size, threshold_percent, second_check)
    else:
        # per exposure only its mask and the sparse evidence the vote needs (not its residual images)
        work = {}
        found = [_flag_slit(m, s, g, snr, work) for (m, s), g in zip(members, goods)]
        masks = [f[0] for f in found]
        frames = _frames(slits)
        if frames is not None:
            masks = _confirm(masks, [_points(*f, fr) for f, fr in zip(found, frames)],
                             [_detector_key(m, s, len(members)) for m, s in members])
    for s, mask in zip(slits, masks):
        _apply(s, mask)
    for m in (outs if isinstance(outs, list) else [outs]):
        m.primary["S_OUTLIR"] = "COMPLETE"
    return outs, masks


def _flag_slit(model, slit, good, snr, work=None):
    """(mask, evidence) of one member: :func:`_flag` on its arrays (``work``: see there)."""
    return _flag(slit["SCI"], slit["ERR"] if "ERR" in slit else np.ones(slit.shape), slit["SLICE"], good,
                 _disp_axis(model, slit), snr, 15, _PASSES, keep_first=False, evidence=True, work=work)


def _apply(slit, mask):
    """DQ |= DO_NOT_USE | OUTLIER and SCI / ERR / VAR_* NaN at ``mask`` (new arrays: the input's may be shared)."""
    from .. import dq as dqbits

    flag = np.uint32(dqbits.DO_NOT_USE | dqbits.OUTLIER)
    # the few flagged pixels by flat index: each array costs one copy, no full-frame mask pass
    idx = np.flatnonzero(mask)
    dq = np.array(slit["DQ"], np.uint32, order="C") if "DQ" in slit else np.zeros(slit.shape, np.uint32)
    dq.reshape(-1)[idx] |= flag
    slit["DQ"] = dq
    for name in _VARIANCES:
        if name in slit:
            a = np.array(slit[name], dtype=np.result_type(slit[name], np.float32), order="C")
            a.reshape(-1)[idx] = np.nan
            slit[name] = a


def flag_stream(read, count, good, snr=(5.0, 4.0)):
    """:func:`flag_exposures` (method "webbspec") with one exposure in memory at a time: ``read(i)``
    gives exposure i (a Model, read afresh at each call), ``count`` exposures. Returns None when an
    exposure is not IFU (nothing yielded: the caller takes the in-memory path), else a generator of
    the flagged Models in order. Every exposure is read twice: first for its mask and the sparse
    evidence of the vote (:func:`_points`), then to flag it; the masks are those of
    :func:`flag_exposures`."""
    masks, points, keys, ok, ref, work = [], [], [], True, None, {}
    for i in range(count):
        m = read(i)
        if not is_ifu([m]):
            return None
        for s in m.slits:
            mask, ev = _flag_slit(m, s, good(s) & np.isfinite(s["SCI"]), snr, work)
            masks.append(mask)
            keys.append(_detector_key(m, s, 2))      # > 1 member: the rule of a multi Model of several
            has = all(k in s for k in _COORDS) and "WSREFRA" in s.header
            if ref is None:
                ref = (float(s.header["WSREFRA"]), float(s.header["WSREFDE"])) if has else ()
            frame = _Frame(s, ref) if has and ok else None
            ok = ok and frame is not None and frame.ok
            points.append(_points(mask, ev, frame) if ok else None)
        del m
    if ok:
        masks = _confirm(masks, points, keys)

    def flagged():
        k = 0
        for i in range(count):
            m = read(i).copy(arrays=False)
            for s in m.slits:
                _apply(s, masks[k])
                k += 1
            m.primary["S_OUTLIR"] = "COMPLETE"
            yield m
    return flagged()


_COORDS = ("XI", "ETA", "XI1", "ETA1", "XI2", "ETA2", "WAVELENGTH", "DWAVE")


class _Frame:
    """Pixel -> (xi, eta) about a common reference [arcsec] and the wavelength in units of DWAVE
    times the pixel length along the slice (one pixel is about one unit on every axis); ``reach``:
    a slice width or a pixel, whichever is larger."""

    def __init__(self, slit, ref):
        self.slit, self.ref = slit, ref
        self.own = (float(slit.header["WSREFRA"]), float(slit.header["WSREFDE"]))
        sub = (slice(None, None, 7), slice(None, None, 7))      # the medians from a sample of the pixels
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            pix = float(np.nanmedian(np.hypot(np.asarray(slit["XI2"][sub], float) - np.asarray(slit["XI1"][sub], float),
                                              np.asarray(slit["ETA2"][sub], float) - np.asarray(slit["ETA1"][sub], float))))
            dwave = float(np.nanmedian(np.abs(np.asarray(slit["DWAVE"][sub], float))))
        self.ok = pix > 0 and dwave > 0
        self.scale = pix / dwave if self.ok else 0.0
        self.reach = max(float(slit.header.get("SLICEWID", pix)), pix) if self.ok else 0.0

    def points(self, ys, xs):
        from ..io.skycoords import radec_to_xieta, xieta_to_radec

        xi, eta = np.asarray(self.slit["XI"][ys, xs], float), np.asarray(self.slit["ETA"][ys, xs], float)
        if self.own != self.ref:
            xi, eta = radec_to_xieta(*xieta_to_radec(xi, eta, *self.own), *self.ref)
        pts = np.stack([xi, eta, np.asarray(self.slit["WAVELENGTH"][ys, xs], float) * self.scale], axis=1)
        return np.nan_to_num(pts, nan=1e30)     # a pixel without coordinates is near nothing


def _frames(slits):
    """A :class:`_Frame` per exposure, all about the first one's reference; None when an exposure
    lacks its coordinates."""
    if not all(all(k in s for k in _COORDS) and "WSREFRA" in s.header for s in slits):
        return None
    ref = (float(slits[0].header["WSREFRA"]), float(slits[0].header["WSREFDE"]))
    frames = [_Frame(s, ref) for s in slits]
    return frames if all(f.ok for f in frames) else None


def _instrument(model, slit):
    return str(slit.header.get("INSTRUME", model.primary.get("INSTRUME", ""))).strip().upper()


def _disp_axis(model, slit):
    if "WAVELENGTH" in slit:     # from every 4th row and column: the two axes differ by orders of magnitude
        return dispersion_axis(np.asarray(slit["WAVELENGTH"])[::4, ::4])
    return 1 if _instrument(model, slit) == "NIRSPEC" else 0


def _detector_key(model, slit, nmembers):
    """The detector of an exposure (its SCI header's DETECTOR, else its own PRIMARY's), with its shape;
    members of one multi Model share a PRIMARY, so without their own DETECTOR they are told apart by
    their wavelength range (MRS channels 1-2 / 3-4, NRS1 / NRS2)."""
    det = slit.header.get("DETECTOR")
    if det is None and not (len(getattr(model, "slits", ())) > 1 and nmembers > 1):
        det = model.primary.get("DETECTOR")
    if det is None and "WAVELENGTH" in slit:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lam = np.asarray(slit["WAVELENGTH"][::7, ::7], float)
            det = f"{np.nanmin(lam):.1f}-{np.nanmax(lam):.1f}um"
    return str(det or "").strip().upper(), slit.shape


def _official_masks(members, goods, kernel_size, threshold_percent, second_check):
    """One mask per detector (and shape), the same for each of its exposures, as officially."""
    groups = {}
    for i, (m, s) in enumerate(members):
        groups.setdefault(_detector_key(m, s, len(members)), []).append(i)
    masks = [None] * len(members)
    for idx in groups.values():
        diff_axis = 1 - _disp_axis(*members[idx[0]])
        scis = [np.where(goods[i], np.asarray(members[i][1]["SCI"], float), np.nan) for i in idx]
        if len(idx) < 2:
            mask = np.zeros(scis[0].shape, bool)
        else:
            mask, _ = official_mask(scis, diff_axis, kernel_size, threshold_percent, second_check)
        for i in idx:
            masks[i] = mask.copy()
    return masks
