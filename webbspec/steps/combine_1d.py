"""combine_1d: exposure-time weighted combination of 1-D spectra (`_x1d` list -> `_c1d`).

The official algorithm (jwst-spec-steps.md, "combine_1d - exact algorithm"):

1. Spectra grouped by SPORDER; a spectrum without finite FLUX or with a wavelength array that is
   not strictly monotonic is skipped. Every element of a spectrum weighs the EFFEXPTM of its
   file (exptime_key 'exposure_time'/'effexptm'), EFFINTTM ('integration_time'/'effinttm') or 1.
2. Output wavelengths (:func:`output_wavelengths`): the sorted union of the input wavelengths is
   cut into clumps of n (= number of spectra covering each wavelength); a clump's mean is accepted
   when its scatter is 0 or < 0.8 x the mean scatter of its neighbouring windows; gaps are filled
   with block means.
3. Each input element goes to output index round(interp(lambda)); DO_NOT_USE or NaN FLUX elements
   are skipped, other DQ bits OR-ed; within one spectrum a later element overwrites an earlier.
4. Optional sigma clipping against the per-bin median with one global MAD.
5. FLUX = sum w f / sum w, ERROR = sqrt(sum (w e)^2) / sum w (same for SURF_BRIGHT/SB_ERROR),
   WEIGHT = sum w, N_INPUT = count; empty bins dropped.

:func:`combine_spectra` is the reusable core (master_background uses it).
"""

import warnings

import numpy as np
from astropy.io import fits
from numpy.lib.stride_tricks import sliding_window_view

from .. import dq as dqbits
from ..io.datamodels import SpecModel, Spectrum, new_spec_table
from ..errors import InputError
from ._call import accepts_files

REFTYPES = ()
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): 1-D spectra
NEEDS = ("extract_1d",)

_META = ("SLTNAME", "SOURCEID", "SRCNAME", "SRCTYPE", "DISPAXIS", "SRCRA", "SRCDEC", "SRCALIAS")


def exposure_weight(primary, exptime_key="exposure_time"):
    """The weight of every element of a file's spectra for ``exptime_key`` (official names)."""
    key = str(exptime_key or "").lower()
    if key.startswith("integration") or key == "effinttm":
        val = primary.get("EFFINTTM")
    elif key.startswith("exposure") or key == "effexptm":
        val = primary.get("EFFEXPTM")
    else:      # 'unit_weight' and anything not understood: unit weight (official)
        return 1.0
    return float(val) if val is not None else 1.0


def _monotonic(w):
    if w.size < 2:
        return True
    d = np.diff(w)
    return bool(np.all(d > 0) or np.all(d < 0))


def _coverage(wl, spectra_wl):
    """Number of spectra whose [lambda_0 - d/2, lambda_last + d/2) contains each wl (sorted)."""
    n = np.zeros(wl.size, np.int64)
    for w in spectra_wl:
        if w.size < 2 or w[1] == w[0]:
            continue
        if w[1] > w[0]:
            lo, hi = w[0] - 0.5 * (w[1] - w[0]), w[-1] + 0.5 * (w[-1] - w[-2])
        else:
            lo, hi = w[-1] - 0.5 * (w[-2] - w[-1]), w[0] + 0.5 * (w[0] - w[1])
        n += (wl >= lo) & (wl < hi)
    if np.any(n <= 0):
        raise InputError("combine_1d", "problem with the input wavelengths (uncovered element)")
    return n


def output_wavelengths(spectra_wl):
    """The official output wavelength grid for a list of input wavelength arrays."""
    spectra_wl = [np.asarray(w, float) for w in spectra_wl]
    wl = np.sort(np.concatenate([w for w in spectra_wl if w.size > 1]))
    n_in = _coverage(wl, spectra_wl)
    nwl = wl.size
    sigma = np.full(nwl, 9999.0)
    mean = np.full(nwl, -99.0)
    temp = np.full(nwl, -99.0)
    one = n_in == 1
    sigma[one], mean[one], temp[one] = 0.0, wl[one], wl[one]
    k = np.arange(nwl)
    # windows wl[k0:k1], k1 = k + n//2 + 1, k0 = k1 - n: one vectorised pass per distinct n
    for n in np.unique(n_in[~one]):
        sel = k[(n_in == n)]
        k1 = sel + n // 2 + 1
        k0 = k1 - n
        sel_ok = (k0 >= 0) & (k1 <= nwl)
        sel, k0 = sel[sel_ok], k0[sel_ok]
        if sel.size == 0 or nwl < n:
            continue
        win = sliding_window_view(wl, n)[k0]
        sigma[sel] = win.std(axis=1)
        mean[sel] = win.mean(axis=1)
        zero = sigma[sel] == 0.0
        temp[sel[zero]] = mean[sel[zero]]
    # clumps: scatter well below that of the neighbouring windows
    cutoff = 0.8
    if nwl > 1:
        neigh = np.empty(nwl)
        neigh[1:-1] = 0.5 * (sigma[:-2] + sigma[2:])
        neigh[0], neigh[-1] = sigma[1], sigma[-2]
        acc = (sigma > 0) & (sigma < cutoff * neigh)
        temp[acc] = mean[acc]
    # gap filling (sequential by nature: the step depends on the local coverage)
    i = 0
    while i < nwl:
        n = n_in[i]
        if i + n // 2 < nwl:
            n = n_in[i + n // 2]
            if i + n < nwl:
                low, high = max(i - 1, 0), min(i + n + 1, nwl - 1)
                if temp[low:high].max() <= 0.0:
                    temp[i] = wl[i:i + n].mean()
        i += n
    return np.sort(temp[temp > 0.0])


def combine_spectra(items, sigma_clip=None):
    """Combine ``items`` = [(table, weight)] of one order; returns a COMBINE1D table."""
    wave_out = output_wavelengths([np.asarray(t["WAVELENGTH"], float) for t, _ in items])
    nout, nspec = wave_out.size, len(items)
    cols = ("FLUX", "FLUX_ERROR", "SURF_BRIGHT", "SB_ERROR")
    acc = {c: np.zeros((nspec, nout)) for c in cols}
    weight = np.zeros((nspec, nout))
    count = np.zeros((nspec, nout))
    dq = np.zeros(nout, np.uint32)
    idx_out = np.arange(nout, dtype=float)
    for s, (t, w) in enumerate(items):
        lam = np.asarray(t["WAVELENGTH"], float)
        with np.errstate(invalid="ignore"):
            inside = (lam >= wave_out[0]) & (lam <= wave_out[-1])
        pix = np.where(inside, np.interp(lam, wave_out, idx_out), np.nan)
        flux = np.asarray(t["FLUX"], float)
        dqi = np.asarray(t["DQ"], np.uint32)
        use = ((dqi & dqbits.DO_NOT_USE) == 0) & np.isfinite(flux) & np.isfinite(pix)
        kk = np.round(pix[use]).astype(np.int64)     # round half to even, as Python's round()
        ok = (kk >= 0) & (kk < nout)
        src = np.flatnonzero(use)[ok]
        kk = kk[ok]
        np.bitwise_or.at(dq, kk, dqi[src])
        # later elements overwrite earlier ones at the same k: keep the last occurrence
        last = np.unique(kk[::-1], return_index=True)[1]
        kl, sl = kk[::-1][last], src[::-1][last]
        for c in cols:
            acc[c][s, kl] = np.asarray(t[c], float)[sl]
        weight[s, kl] = w
        count[s, kl] = 1.0
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if sigma_clip is not None:
            f2 = acc["FLUX"] * weight
            f2[(count < 1) | (f2 == 0.0)] = np.nan
            med = np.nanmedian(f2, axis=0)
            mad = np.nanmedian(np.abs(f2 - med))
            clipped = np.abs(acc["FLUX"] * weight - med) > float(sigma_clip) * mad
            for c in cols:
                acc[c][clipped] = np.nan
            count[clipped] = 0
            weight[clipped] = 0
        wsum = np.nansum(weight, axis=0)
        wnz = np.where(wsum > 0, wsum, 1.0)
        out = {
            "FLUX": np.nansum(acc["FLUX"] * weight, axis=0) / wnz,
            "ERROR": np.sqrt(np.nansum((acc["FLUX_ERROR"] * weight) ** 2, axis=0)) / wnz,
            "SURF_BRIGHT": np.nansum(acc["SURF_BRIGHT"] * weight, axis=0) / wnz,
            "SB_ERROR": np.sqrt(np.nansum((acc["SB_ERROR"] * weight) ** 2, axis=0)) / wnz,
        }
        n_input = np.nansum(count, axis=0)
    good = n_input > 0
    tab = new_spec_table(int(good.sum()), "COMBINE1D")
    tab["WAVELENGTH"] = wave_out[good]
    for c, v in out.items():
        tab[c] = v[good]
    tab["DQ"] = dq[good]
    tab["WEIGHT"] = wsum[good]
    tab["N_INPUT"] = n_input[good]
    return tab


@accepts_files
def run(model_list, refs=None, *, exptime_key="exposure_time", sigma_clip=None):
    """Combine the spectra of ``model_list`` (SpecModels or one SpecModel) into a COMBINE1D model."""
    models = [model_list] if isinstance(model_list, SpecModel) else list(model_list)
    if not models:
        raise InputError("combine_1d", "no input spectra")
    by_order, first = {}, {}
    for m in models:
        if not isinstance(m, SpecModel):
            raise InputError(getattr(m, "path", None) or "combine_1d", "input is not a 1-D spectrum product")
        w = exposure_weight(m.primary, exptime_key)
        for sp in m.spectra:
            t = sp.table
            if not np.any(np.isfinite(t["FLUX"])) or not _monotonic(np.asarray(t["WAVELENGTH"], float)):
                continue
            order = int(sp.header.get("SPORDER", 1))
            by_order.setdefault(order, []).append((t, w))
            first.setdefault(order, sp.header)
    primary = models[0].primary.copy()
    if not by_order:
        raise InputError(models[0].path or "combine_1d", "no input spectrum has valid flux values")
    spectra = []
    for order, items in by_order.items():
        hdr = fits.Header()
        for key in _META:
            if key in first[order]:
                hdr[key] = first[order][key]
        hdr["SPORDER"] = order
        spectra.append(Spectrum(hdr, combine_spectra(items, sigma_clip)))
    primary["S_COMB1D"] = "COMPLETE"
    primary["DATAMODL"] = "MultiCombinedSpecModel"
    return SpecModel(primary, spectra, "COMBINE1D", None, models[0].path)
