"""residual_fringe: divide out the fringes a MIRI MRS `_cal` keeps after the fringe flat (the official
ResidualFringeStep; calwebb_spec2 runs it after photom, skipped by default).

References: ``fringefreq`` (official FringeFreqModel FITS: RFC_FREQ_SHORT / MEDIUM / LONG, a row per
slice 100 c + k with the fringes' periods in wavenumber ``ffreq`` [cm-1], search half-widths
``dffreq``, ``min_snr``; MAX_AMP: the largest amplitude per wavelength) and ``regions`` (the slice
map, the 80% throughput plane, as officially). Without either, or on another exposure type:
S_RESFRI = SKIPPED. The input must have had the fringe flat (S_FRINGE COMPLETE; official too).

Our own fit, per slice and detector column (a column of a slice is one spectrum along the
wavelength): the column's good pixels (finite, not DO_NOT_USE, outside ``ignore_region_min/max``)
in wavenumber sigma = 1e4 / lambda are fitted by weighted linear least squares (1/ERR) as

    data = C(sigma) + C0(sigma) * sum_j P_j(sigma) [a_j sin(2 pi sigma / p) + b_j cos(2 pi sigma / p)]

C a cubic B-spline with knots every :data:`KNOT_PERIODS` fringe periods (too coarse to follow the
fringe, fine enough for a continuum), C0 the previous pass's C, P_j Legendre polynomials of degree
:data:`AMP_DEGREE` (the fringe's amplitude may drift along the column). The period p is the reference's, refined on a grid
within +-dffreq (the one with the least chi^2 of the fringe terms); spectral lines are clipped
(residuals > :data:`CLIP` robust sigma, grown by :data:`GROW` pixels) over :data:`PASSES` passes.
Each reference fringe (ffreq > 1e-3) is fitted in turn on the previous one's result. The column is
divided by 1 + fringe / C0 on its pixels within the fitted wavenumber range (lines included): SCI
and ERR by it, VAR_* by its square (as the fringe flat; the official step changes SCI only).

A column is left unchanged when it has fewer than :data:`MIN_PIXELS` good pixels or spans fewer
than 5 fringe periods, when its median SCI/ERR is below the reference's min_snr, when the fringe
terms do not lower chi^2 by :data:`MIN_DCHI2` per coefficient, or when the fitted fringe exceeds twice MAX_AMP
(the official factor: such a "fringe" is spectral structure). DQ is not changed; NaN and
DO_NOT_USE pixels are not fitted nor divided, and leave NaN in SCI, ERR and VAR_* (the official
step sets SCI NaN there; our other steps make NaN and DO_NOT_USE agree in every array).
``skip`` (the official step switch): True marks the step SKIPPED and changes nothing; calwebb_spec2
skips it, and the workflow leaves a skipped step out of the chain (config ``skip: true``).
"""

import numpy as np
from numpy.polynomial import legendre
from scipy.interpolate import BSpline

from .. import dq as dqbits
from ..errors import InputError
from ..instruments.miri import is_mrs
from . import _correction as corr
from ._call import accepts_files

REFTYPES = ("fringefreq", "regions")
NEEDS = ("assign_wcs",)

_TABLES = {"SHORT": "RFC_FREQ_SHORT", "MEDIUM": "RFC_FREQ_MEDIUM", "LONG": "RFC_FREQ_LONG"}
MIN_PIXELS = 50          # good pixels a column needs (official: more than 50)
MIN_PERIODS = 5          # fringe periods a column must span (official: 5)
KNOT_PERIODS = 2.0       # continuum knot spacing in fringe periods
AMP_DEGREE = 1           # Legendre degree of the fringe amplitude along the column (2: noisier, no better)
PASSES = 3               # fit / clip passes
CLIP, GROW = 4.0, 2      # clip residuals beyond CLIP robust sigma, grown by GROW pixels
MIN_DCHI2 = 25.0         # chi^2 the fringe terms must remove, per coefficient (the fit then knows the
                         # fringe to ~1/5 of itself: an uncorrected column beats a noisy fit)
SCAN = 13                # trial periods within +-dffreq


@accepts_files
def run(model, refs, *, skip=False, ignore_region_min=None, ignore_region_max=None):
    """Residual-fringe-corrected copy of a full-frame MRS `_cal` (``skip``: marked SKIPPED only)."""
    where = model.path or "residual_fringe"
    out = model.copy(arrays=False)
    ignore = _ignore_regions(where, ignore_region_min, ignore_region_max)
    fpath, rpath = corr.ref_path(refs, "fringefreq"), corr.ref_path(refs, "regions")
    if skip or fpath is None or rpath is None or not is_mrs(out.exp_type):
        corr.mark(out, "RESFRI", "SKIPPED")
        return out
    if str(out.primary.get("S_FRINGE", "")).strip().upper() != "COMPLETE":
        raise InputError(where, f"residual_fringe needs the fringe flat applied first (S_FRINGE "
                                f"{out.primary.get('S_FRINGE') or 'missing'}): run `webbspec step fringe` on it")
    band = str(out.primary.get("BAND", "")).strip().upper()
    if band not in _TABLES:
        raise InputError(where, f"residual_fringe needs BAND SHORT|MEDIUM|LONG (got {band!r})")
    table, max_amp = _frequencies(fpath, band)
    for slit in out.slits:
        if np.ndim(slit["SCI"]) != 2:       # the official step takes an IFUImageModel only
            raise InputError(where, f"residual_fringe takes one image, not {np.shape(slit['SCI'])} (per-integration data)")
        slices = _slice_map(rpath, slit["SCI"].shape)
        if "WAVELENGTH" not in slit:
            raise InputError(where, "residual_fringe needs the WAVELENGTH array of assign_wcs")
        factor = correction(np.asarray(slit["SCI"], np.float64), np.asarray(slit["ERR"], np.float64),
                            slit["DQ"] if "DQ" in slit else None, np.asarray(slit["WAVELENGTH"], np.float64),
                            slices, table, max_amp, ignore)
        corr.apply_correction(slit, factor)
        corr.match_nans_and_flags(slit)       # a DO_NOT_USE pixel is NaN after it (official: in SCI)
    corr.record_ref(out, "fringefreq", fpath)
    corr.record_ref(out, "regions", rpath)
    corr.mark(out, "RESFRI", "COMPLETE")
    return out


def _ignore_regions(where, lo, hi):
    lo, hi = list(lo or []), list(hi or [])
    if len(lo) != len(hi):
        raise InputError(where, f"ignore_region_min has {len(lo)} values and ignore_region_max {len(hi)}: "
                                "give one maximum per minimum")
    return [(float(a), float(b)) for a, b in zip(lo, hi)]


def _frequencies(path, band):
    """({slice: [(period, dperiod, min_snr), ...]}, (wavelengths, max amplitudes)) of ``band``."""
    hdul = corr.open_reference(path, "fringefreq", models=("FringeFreqModel",),
                               hdus=(_TABLES[band], "MAX_AMP"))
    t = hdul[_TABLES[band]].data
    names = [n.lower() for n in t.columns.names]
    need = ("slice", "ffreq", "dffreq", "min_snr")
    if any(n not in names for n in need):
        raise InputError(str(path), f"{_TABLES[band]}: expected columns {', '.join(need)}")

    def col(name):
        return np.asarray(t.field(names.index(name)), np.float64).reshape(len(t), -1)

    sl, ff, dff, snr = col("slice")[:, 0], col("ffreq"), col("dffreq"), col("min_snr")
    table = {}
    for i, s in enumerate(sl):
        table[int(round(s))] = [(ff[i, j], dff[i, min(j, dff.shape[1] - 1)], snr[i, min(j, snr.shape[1] - 1)])
                                for j in range(ff.shape[1]) if ff[i, j] > 1e-3]
    a = hdul["MAX_AMP"].data
    anames = [n.lower() for n in a.columns.names]
    if "wavelength" not in anames or "amplitude" not in anames:
        raise InputError(str(path), "MAX_AMP: expected columns wavelength, amplitude")
    wl = np.asarray(a.field(anames.index("wavelength")), np.float64)
    order = np.argsort(wl)
    return table, (wl[order], np.asarray(a.field(anames.index("amplitude")), np.float64)[order])


def _slice_map(path, shape):
    from ..instruments.miri.mrs import REGIONS_PLANE, reference_tree

    regions = np.asarray(reference_tree("regions", path)["regions"])
    if regions.ndim != 3 or regions.shape[1:] != tuple(shape) or regions.shape[0] <= REGIONS_PLANE:
        raise InputError(str(path), f"regions {regions.shape} do not match the image {tuple(shape)}")
    return regions[REGIONS_PLANE]


def correction(sci, err, dq, wavelength, slices, table, max_amp, ignore=()):
    """The divisor (1 where nothing is fitted) of a full-frame image: per slice of ``table``
    ({slice: [(period, dperiod, min_snr)]}) and column, the fitted fringe."""
    factor = np.ones(sci.shape)
    good = np.isfinite(sci) & np.isfinite(err) & (err > 0) & np.isfinite(wavelength) & (wavelength > 0)
    if dq is not None:
        good &= (np.asarray(dq) & dqbits.DO_NOT_USE) == 0
    fit_ok = good.copy()
    for lo, hi in ignore:
        fit_ok &= ~((wavelength > lo) & (wavelength < hi))
    for s, fringes in table.items():
        in_slice = slices == s
        if not fringes or not in_slice.any():
            continue
        for x in np.flatnonzero(in_slice.any(axis=0)):
            rows = np.flatnonzero(in_slice[:, x] & good[:, x])
            if rows.size < MIN_PIXELS:
                continue
            f = fit_column(1e4 / wavelength[rows, x], sci[rows, x], err[rows, x], fringes, max_amp,
                           wavelength[rows, x], fit_ok[rows, x])
            if f is not None:
                factor[rows, x] = f
    return factor


def _design_continuum(sigma, period):
    lo, hi = sigma.min(), sigma.max()
    n = max(int((hi - lo) / (KNOT_PERIODS * period)), 1)
    inner = np.linspace(lo, hi, n + 1)[1:-1]
    t = np.concatenate([[lo] * 4, inner, [hi] * 4])
    return BSpline.design_matrix(np.clip(sigma, lo, hi), t, 3).toarray()


def _design_fringe(sigma, period, envelope):
    u = 2.0 * (sigma - sigma.min()) / max(np.ptp(sigma), 1e-12) - 1.0
    amp = legendre.legvander(u, AMP_DEGREE)                       # (n, degree + 1)
    ph = 2.0 * np.pi * sigma / period
    return np.hstack([amp * np.sin(ph)[:, None], amp * np.cos(ph)[:, None]]) * envelope[:, None]


def _solve(a, y, w):
    """Weighted linear least squares by the normal equations (a few ms for 1000 x 60; lstsq's SVD
    is ~10x slower), the data normalized to ~1 by the caller."""
    aw = a * w[:, None]
    lhs = aw.T @ aw
    lhs[np.diag_indices_from(lhs)] += 1e-10 * np.trace(lhs) / lhs.shape[0]    # empty knot spans
    return np.linalg.solve(lhs, aw.T @ (y * w))


def _clip(resid, w, keep):
    """Pixels kept for the next pass: normalized residuals within CLIP robust sigma, grown."""
    z = resid * w
    scale = 1.4826 * np.median(np.abs(z[keep] - np.median(z[keep]))) if keep.any() else 1.0
    bad = np.abs(z) > CLIP * max(scale, 1e-12)
    if GROW:
        k = np.ones(2 * GROW + 1)
        bad = np.convolve(bad.astype(float), k, mode="same") > 0
    return ~bad


def fit_column(sigma, data, err, fringes, max_amp, wavelength, fit_ok=None):
    """The divisor (1 + fringe / continuum) of one column's pixels (``sigma``: wavenumber [cm-1]),
    or None when the column cannot be fitted (see the module docstring)."""
    order = np.argsort(sigma)
    sig, y, e = sigma[order], data[order], err[order]
    ok = np.ones(sig.size, bool) if fit_ok is None else np.asarray(fit_ok)[order]
    scale = np.median(np.abs(y[ok])) if ok.any() else 0.0
    if ok.sum() < MIN_PIXELS or not scale > 0:
        return None
    y, e = y / scale, e / scale
    w = 1.0 / e
    total = np.ones(sig.size)
    done = False
    for period, dperiod, min_snr in fringes:
        if np.ptp(sig[ok]) < MIN_PERIODS * period or np.median(y[ok] / e[ok]) < min_snr:
            continue
        f = _fit_one(sig, y / total, w * total, ok, period, dperiod)
        if f is None:
            continue
        limit = 2.0 * np.interp(wavelength[order], *max_amp)
        if np.any(np.abs(f - 1.0) > limit):
            continue
        total *= f
        done = True
    if not done:
        return None
    out = np.ones(sig.size)
    out[order] = total
    return out


def _fit_one(sig, y, w, ok, period, dperiod):
    """One fringe component: the divisor on the pixels between the first and last fitted one (1
    elsewhere), or None without a significant fringe."""
    keep = ok.copy()
    cont = _design_continuum(sig, period)
    c0 = cont @ _solve(cont[keep], y[keep], w[keep])       # the continuum alone, as the first envelope
    p = period
    for k in range(PASSES):
        if k == 1 and dperiod > 0:
            p = _best_period(sig, y, w, keep, c0, period, dperiod)
        a = np.hstack([cont, _design_fringe(sig, p, c0)])
        if keep.sum() <= a.shape[1] + MIN_PIXELS // 2:
            return None
        coef = _solve(a[keep], y[keep], w[keep])
        model = a @ coef
        c0 = cont @ coef[:cont.shape[1]]
        keep = ok & _clip(y - model, w, keep & ok)
    a_fr = _design_fringe(sig, p, np.ones(sig.size))
    rel = a_fr @ coef[cont.shape[1]:]
    # significance: chi^2 of the continuum alone against continuum + fringe on the kept pixels
    c_only = _solve(cont[keep], y[keep], w[keep])
    chi_c = np.sum(((y - cont @ c_only) * w)[keep] ** 2)
    chi_f = np.sum(((y - model) * w)[keep] ** 2)
    if chi_c - chi_f < MIN_DCHI2 * 2 * (AMP_DEGREE + 1) or not np.all(np.isfinite(rel)):
        return None
    span = (sig >= sig[keep].min()) & (sig <= sig[keep].max())
    return np.where(span, 1.0 + rel, 1.0)


def _best_period(sig, y, w, keep, c0, period, dperiod):
    """The period within +-dperiod whose fringe terms fit the relative residual y / c0 - 1 best."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(c0 != 0, y / c0 - 1.0, 0.0)
        wr = w * np.abs(c0)
    best, best_chi = period, np.inf
    for p in np.linspace(period - dperiod, period + dperiod, SCAN):
        if p <= 0:
            continue
        a = _design_fringe(sig, p, np.ones(sig.size))[keep]
        coef = _solve(a, r[keep], wr[keep])
        chi = np.sum(((r[keep] - a @ coef) * wr[keep]) ** 2)
        if chi < best_chi:
            best, best_chi = p, chi
    return best
