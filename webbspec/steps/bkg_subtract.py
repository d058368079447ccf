"""bkg_subtract: subtract the sigma-clipped mean of background exposures (image from image).

Official algorithm (BackgroundStep, non-WFSS/SOSS):
1. NIRSpec: SKIPPED if a background's GWA_XTIL/GWA_YTIL differs from the science (atol 1e-8).
2. Each background is placed on the science pixel grid by the subarray keywords SUBSTRT1/2,
   SUBSIZE1/2 (PRIMARY, else the SCI header); pixels without overlap are NaN (so they do not
   enter the mean). Without the keywords the shapes must agree (InputError naming the
   background file otherwise). A 3-D (rateints) background is first sigma-clipped along its
   integrations and averaged (data and ERR**2 separately), its DQ OR-ed over integrations.
3. The N backgrounds are stacked and sigma-clipped along the stack (astropy ``sigma_clip``:
   median centre, std scale, ``sigma``, ``maxiters``); bkg = mean of the unclipped values,
   ERR_bkg = sqrt(sum of unclipped ERR**2) / N_unclipped, DQ_bkg = OR of all backgrounds.
4. SCI -= bkg (broadcast over science integrations); DQ |= DQ_bkg. ERR and VAR_* unchanged.
   Deliberate difference (``propagate_error=True``, our default): the background's noise is
   real noise in the result: ERR = sqrt(ERR**2 + ERR_bkg**2), VAR_RNOISE gets the backgrounds'
   mean VAR_RNOISE / N and VAR_POISSON the rest of ERR_bkg**2. (Not all of it in VAR_RNOISE:
   the ivm weights of resample and outlier detection would then drop every pixel where another
   nod had its source, and the outlier median would lose those exposures.)
   Without it a nod-subtracted exposure's ERR is sqrt(1 + 1/N) too small (measured: sqrt(1.5)
   for 3 nods) and FLUX_ERROR fails the reduced chi^2 test. ``False`` is the official behaviour.
Note on the clip: with one outlier among N equal values its deviation is N/sqrt(N-1) standard
deviations (2.5 for N=5), so sigma=3 clips a single outlier only from N >= 10 frames on.

``backgrounds`` holds the background models (the association's `background` members);
``bkg_list`` (paths) is read only when no models are given. ``imprints`` (the association's
`imprint` members, models or paths): as calwebb_spec2 does in the modes that run imprint_subtract
(MOS, NIRSpec IFU), each background first has its own imprint subtracted (imprint_subtract's
choice, made for that background: its BKGDTARG, OBSERVTN, PATT_NUM), so that the science's
imprint, removed by imprint_subtract, is not removed again through the backgrounds (nods share
one imprint: science - mean(background) then holds no imprint at all). With ``propagate_error``
an imprint shared by the science and backgrounds counts in the variance with its net weight
squared (none for nods sharing one; :func:`_imprint_surplus`), not once per exposure.
Slit-layout inputs (after extract_2d) are matched slit by slit on SLTNAME. WFSS/SOSS
reference-background scaling is not implemented: those exposures without background members are
SKIPPED (the wfss_* parameters are accepted for compatibility). :func:`combined_background`
returns the official `_combinedbackground` product.
"""

import warnings

import numpy as np
from astropy.stats import sigma_clip
from astropy.utils.exceptions import AstropyUserWarning

from ..io import datamodels
from ..io.datamodels import Model, Slit
from ..errors import InputError
from ..modes import known_mode
from . import _correction as corr
from . import imprint_subtract
from ._call import accepts_files

REFTYPES = ()


@accepts_files
def run(model, refs, *, backgrounds=(), bkg_list=None, imprints=(), sigma=3.0, maxiters=None,
        wfss_mmag_extract=None, wfss_mask=None, wfss_maxiter=5, wfss_rms_stop=0,
        wfss_outlier_percent=1, propagate_error=True):
    """Background-subtract ``model`` (a copy); S_BKDSUB = SKIPPED without backgrounds.

    The arrays the step changes are new; the others (WAVELENGTH, ...) are shared with ``model``.
    """
    bkgs, shared = _without_imprint(model, _background_models(backgrounds, bkg_list), imprints)
    if not bkgs or _tilts_differ(model, bkgs):
        out = model.copy()
        corr.mark(out, "BKDSUB", "SKIPPED")
        return out
    out = model.copy(arrays=False)
    for index, slit in enumerate(model.slits):
        groups = _backgrounds_on_grid(bkgs, slit, index, model)
        new = out.slits[index].arrays
        names = ["SCI", "DQ"] + (["ERR", "VAR_RNOISE", "VAR_POISSON"] if propagate_error and "ERR" in slit else [])
        names = [n for n in names if n in slit]
        for name in names:
            new[name] = np.empty(slit[name].shape, slit[name].dtype.newbyteorder("="))
        terms = [(_on_science_grid(imp, imp.slits[0], slit, model), members, of_science)
                 for imp, members, of_science in shared] if "ERR" in names else []
        # Row blocks keep the float64 temporaries small (the full-frame ones cost more in fresh
        # memory than in arithmetic); every operation is per pixel, so the result is the same.
        for rows in _row_blocks(slit.shape):
            blk = (..., rows, slice(None))
            bkg, berr, bdq, brn = _combine([[a[blk] for a in g] for g in groups], sigma, maxiters)
            new["SCI"][blk] = np.asarray(slit["SCI"][blk], dtype=np.float64) - bkg
            if "ERR" in names:
                bvar = np.nan_to_num(berr, nan=0.0) ** 2
                rn = np.minimum(brn, bvar)
                if terms:               # shared imprints: take off what independent sums over-count
                    extra, extra_rn = _imprint_surplus([g[0][blk] for g in groups],
                                                       [((e[blk], vr[blk]), m, sci) for (_, e, _, vr), m, sci in terms])
                    bvar, rn = bvar - extra, rn - extra_rn
                new["ERR"][blk] = np.sqrt(np.maximum(np.asarray(slit["ERR"][blk], np.float64) ** 2 + bvar, 0.0))
                for name, add in (("VAR_RNOISE", rn), ("VAR_POISSON", bvar - rn)):
                    if name in names:
                        new[name][blk] = np.maximum(slit[name][blk] + add, 0.0)
            if "DQ" in names:
                new["DQ"][blk] = slit["DQ"][blk] | bdq
    corr.mark(out, "BKDSUB", "COMPLETE")
    return out


def combined_background(model, backgrounds=(), *, bkg_list=None, imprints=(), sigma=3.0, maxiters=None):
    """The combined background on the science grid (SCI, ERR, DQ per slit) as a Model."""
    bkgs, _ = _without_imprint(model, _background_models(backgrounds, bkg_list), imprints)
    if not bkgs:
        raise InputError(model.path or "bkg_subtract", "no background exposures")
    slits = []
    for index, slit in enumerate(model.slits):
        groups = _backgrounds_on_grid(bkgs, slit, index, model)
        shape = slit.shape[-2:]
        arrays = {"SCI": np.empty(shape, np.float32), "ERR": np.empty(shape, np.float32),
                  "DQ": np.empty(shape, np.uint32)}
        for rows in _row_blocks(shape):
            bkg, err, bdq, _ = _combine([[a[..., rows, :] for a in g] for g in groups], sigma, maxiters)
            arrays["SCI"][rows], arrays["ERR"][rows], arrays["DQ"][rows] = bkg, err, bdq
        slits.append(Slit(slit.header.copy(), arrays))
    return Model(model.primary.copy(), slits, model.layout)


def _row_blocks(shape, pixels=1 << 16):
    """Slices of about ``pixels`` pixels along the row axis (-2) of ``shape``."""
    ny, nx = shape[-2:]
    step = max(1, pixels // max(nx, 1))
    return [slice(y, min(y + step, ny)) for y in range(0, max(ny, 1), step)]


# ---------------------------------------------------------------- inputs


def _background_models(backgrounds, bkg_list):
    bkgs = list(backgrounds or ())
    if not bkgs and bkg_list:
        paths = [bkg_list] if isinstance(bkg_list, str) else list(bkg_list)
        bkgs = [datamodels.read(p) for p in paths]
    for b in bkgs:
        if not isinstance(b, Model):
            raise InputError(getattr(b, "path", None) or "backgrounds", "background is not an image product")
    return bkgs


def _without_imprint(model, bkgs, imprints):
    """(the backgrounds with their imprint subtracted, the imprints shared between exposures): see
    the module docstring; only in the modes whose chain subtracts imprints (the official rule),
    and only with imprint members. The second item lists (imprint, which backgrounds took it,
    whether the science took it too) for the variance bookkeeping (:func:`_imprint_surplus`)."""
    imprints = [imprints] if isinstance(imprints, (str, Model)) else list(imprints or ())
    mode = known_mode(model.primary.get("EXP_TYPE"))
    if not bkgs or not imprints or mode is None or "imprint_subtract" not in mode.spec2:
        return bkgs, []
    imprints = [datamodels.read(i) if isinstance(i, str) else i for i in imprints]
    chosen = [imprint_subtract.choose(b, imprints) for b in bkgs]
    done = str(model.primary.get("S_IMPRNT", "")).strip().upper() == "COMPLETE"
    science = imprint_subtract.choose(model, imprints) if done else None
    used = {id(i): i for i in chosen + [science] if i is not None}
    shared = [(i, tuple(c is i for c in chosen), i is science) for i in used.values()]
    return [imprint_subtract.run(b, None, imprints=imprints) for b in bkgs], shared


def _imprint_surplus(datas, terms):
    """(ERR**2, VAR_RNOISE) by which science + mean of backgrounds over-counts the variance of
    imprints the exposures share. imprint_subtract adds its imprint's variance to each exposure
    (its documented departure), and the step adds the N backgrounds' variances / N**2, as if
    independent. An imprint that n of them and (``of_science``) the science took enters the
    result with the weight n/N - 1 (else n/N): its variance counts (n/N - 1)**2 (or (n/N)**2)
    times, not 1 + n/N**2 (or n/N**2) times; for nods sharing one imprint it cancels. ``datas``:
    the backgrounds' data on the grid (N counts the finite ones per pixel; sigma clipping, which
    removes nothing below 10 backgrounds at sigma=3, is not followed); ``terms``: ((ERR, VAR_RNOISE)
    of the imprint on the grid, which backgrounds took it, of_science)."""
    finite = [np.isfinite(d) if d.ndim == 2 else np.isfinite(d).any(axis=0) for d in datas]
    total = np.sum(finite, axis=0, dtype=np.float64)
    err2 = rn = 0.0
    for (err, vr), members, of_science in terms:
        n = np.sum([f for f, m in zip(finite, members) if m], axis=0, dtype=np.float64) if any(members) else 0.0
        with np.errstate(invalid="ignore", divide="ignore"):
            excess = np.where(total > 0, (n - n * n) / total ** 2 + (2 * n / total if of_science else 0.0), 0.0)
        e2 = np.nan_to_num(np.asarray(err, np.float64), nan=0.0) ** 2
        err2 = err2 + excess * e2
        rn = rn + excess * np.minimum(np.nan_to_num(np.asarray(vr, np.float64), nan=0.0), e2)
    return err2, rn


def _tilts_differ(model, bkgs):
    if str(model.primary.get("INSTRUME", "")).strip().upper() != "NIRSPEC":
        return False
    for key in ("GWA_XTIL", "GWA_YTIL"):
        sci = model.primary.get(key)
        for b in bkgs:
            val = b.primary.get(key)
            if sci is not None and val is not None and not np.isclose(float(sci), float(val), rtol=0, atol=1e-8):
                return True
    return False


def _geometry(model, slit):
    """(xstart, ystart, xsize, ysize) 1-based subarray keywords, or None when incomplete."""
    keys = ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2")
    vals = [model.primary.get(k, slit.header.get(k)) for k in keys]
    return None if any(v is None for v in vals) else tuple(int(v) for v in vals)


def _matching_group(bkg, slit, index, model):
    if model.layout == "single" or bkg.layout == "single":
        return bkg.slits[0]
    for s in bkg.slits:
        if slit.name and s.name == slit.name:
            return s
    if index < len(bkg.slits) and not slit.name:
        return bkg.slits[index]
    raise InputError(bkg.path or "background", f"background has no slit {slit.name!r}")


def _backgrounds_on_grid(bkgs, slit, index, model):
    """(data, err, dq, var_rnoise) of each background's group matching ``slit``, on its grid."""
    return [_on_science_grid(b, _matching_group(b, slit, index, model), slit, model) for b in bkgs]


def _on_science_grid(bkg, group, slit, model):
    """(data, err, dq, var_rnoise) of one background group on the science (ny, nx) grid (NaN off
    overlap; var_rnoise 0 where the group has none). A group on the science grid already comes
    back as it is (no copy, its own dtype)."""
    data = group["SCI"]
    err, dq, vr = (group[k] if k in group else np.zeros(data.shape, dt)
                   for k, dt in (("ERR", np.float32), ("DQ", np.uint32), ("VAR_RNOISE", np.float32)))
    ny, nx = slit.shape[-2:]
    gs, gb = _geometry(model, slit), _geometry(bkg, group)
    if gs is None or gb is None or model.layout == "multi":
        if data.shape[-2:] != (ny, nx):
            raise InputError(bkg.path or "background",
                             f"background shape {data.shape[-2:]} differs from science {(ny, nx)} "
                             "and there are no SUBSTRT/SUBSIZE keywords to match them")
        return data, err, dq, vr
    if gs[:2] == gb[:2] and data.shape[-2:] == (ny, nx):
        return data, err, dq, vr
    lead = data.shape[:-2]
    out_d = np.full(lead + (ny, nx), np.nan)
    out_e = np.full(lead + (ny, nx), np.nan)
    out_q = np.zeros(lead + (ny, nx), np.uint32)
    out_v = np.full(lead + (ny, nx), np.nan)
    # overlap in 0-based detector pixels
    x0, x1 = max(gs[0], gb[0]) - 1, min(gs[0] + nx, gb[0] + data.shape[-1]) - 1
    y0, y1 = max(gs[1], gb[1]) - 1, min(gs[1] + ny, gb[1] + data.shape[-2]) - 1
    if x1 > x0 and y1 > y0:
        dst = (..., slice(y0 - gs[1] + 1, y1 - gs[1] + 1), slice(x0 - gs[0] + 1, x1 - gs[0] + 1))
        src = (..., slice(y0 - gb[1] + 1, y1 - gb[1] + 1), slice(x0 - gb[0] + 1, x1 - gb[0] + 1))
        out_d[dst], out_e[dst], out_q[dst], out_v[dst] = data[src], err[src], dq[src], vr[src]
    return out_d, out_e, out_q, out_v


# ---------------------------------------------------------------- combining


def _clip(stack, sigma, maxiters):
    """Boolean mask of the values kept by astropy sigma_clip along axis 0 (NaN never kept).

    Shortcut, exact: among n values no value can lie more than n / sqrt(n - 1) population
    standard deviations from the median (1 for n = 2), so below that bound nothing is ever
    clipped and the full-frame clip (4.6 CPU s of a 2048 x 2048 exposure with two nods) is skipped.
    """
    n = stack.shape[0]
    if sigma is not None and (1.0 if n <= 2 else n / np.sqrt(n - 1)) < float(sigma):
        return np.isfinite(stack)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=AstropyUserWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        clipped = sigma_clip(stack, sigma=sigma, maxiters=maxiters, axis=0, masked=True)
    return ~np.ma.getmaskarray(clipped) & np.isfinite(stack)


def _masked_mean(values, keep):
    n = keep.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(keep, values, 0.0).sum(axis=0) / n, np.nan), n


def _combine(groups, sigma, maxiters):
    """(bkg, ERR_bkg, DQ_bkg, VAR_RNOISE_bkg) on the slit's 2-D grid from the backgrounds'
    (data, err, dq, var_rnoise) on that grid; VAR_RNOISE_bkg is the read-noise part of
    ERR_bkg**2, summed over the same kept values."""
    datas, var2s, rnoises, dq = [], [], [], 0
    for d, e, q, vr in groups:
        d, e, vr = (np.asarray(a, dtype=np.float64) for a in (d, e, vr))
        q = np.asarray(q, dtype=np.uint32)
        if d.ndim == 3:                 # rateints background: average its integrations first
            keep = _clip(d, sigma, maxiters)
            d, _ = _masked_mean(d, keep)
            e2, _ = _masked_mean(e * e, _clip(e * e, sigma, maxiters))
            q = np.bitwise_or.reduce(q, axis=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                vr = np.nanmean(vr, axis=0) / vr.shape[0]
        else:
            e2 = e * e
        datas.append(d)
        var2s.append(e2)
        rnoises.append(np.nan_to_num(vr, nan=0.0))
        dq = dq | q
    stack = np.stack(datas)
    keep = _clip(stack, sigma, maxiters)
    bkg, n = _masked_mean(stack, keep)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.where(n > 0, np.sqrt(np.where(keep, np.stack(var2s), 0.0).sum(axis=0)) / n, np.nan)
        rn = np.where(n > 0, np.where(keep, np.stack(rnoises), 0.0).sum(axis=0) / n ** 2, 0.0)
    return bkg, err, dq, rn
