"""extract_1d: box extraction of rectified slit spectra (`_s2d` -> `_x1d`).

Per rectified slit (DISPAXIS=1, rows = along-slit position):

* Aperture centre: for POINT sources with use_source_posn (param; else the extract1d aperture's;
  else True for POINT), the source's SRCRA/SRCDEC projected on the slit axis through the S2D*
  keywords; otherwise the centre of the aperture's ystart..ystop, or of the whole height; plus
  ``position_offset`` rows. Width: ``extract_width`` (param), else the aperture's extract_width,
  else ystop - ystart + 1; with no extract1d reference (N/A) and no width: the whole
  cross-dispersion height, no background (as the official). Limits are inclusive pixel centres
  c +- (width-1)/2 with fractional edge pixels; xstart..xstop limit the columns.
* Background (bkg_coeff regions, each a [lower, upper] pair of pixel-edge polynomials in x or
  lambda, shifted with the aperture): optional boxcar smoothing along the dispersion, then per
  column 'poly' (least squares of order bkg_order in a [-1, 1] scaled row), 'mean' (= poly 0) or
  'median' (variance x pi/2, the median's efficiency); the background variance is propagated
  into the extracted sums.
* Sums per column: F = sum p (S - B), NPIXELS = sum p, V* = sum p^2 V* (+ background term).
  MJy/sr data: FLUX [Jy] = F * PIXAR_SR * 1e6, SURF_BRIGHT = F / NPIXELS. MJy data (NIRSpec
  POINT): FLUX = F * 1e6, SB columns 0, BACKGROUND / PIXAR_SR. Errors = sqrt(sum of variances);
  DQ = DO_NOT_USE where FLUX is NaN; WAVELENGTH = p-weighted mean lambda; columns without a
  wavelength are dropped.
* Aperture correction (POINT, box, apply_apcorr, apcorr reference; ``_extract_refs``): the
  official NrsFsApcorrModel row of the filter / grating / slit at pixel phase 0.5, bilinear in
  (lambda, size = NPIXELS), 1 outside its wavelengths: FLUX, FLUX_ERROR, SURF_BRIGHT, SB_ERROR x
  c, variances x c^2.

A ``layout="multi"`` input (Stage 2 `_s2d` of several slits) gives one EXTRACT1D per slit.
"""

import os
import warnings

import numpy as np
from astropy.io import fits

from .. import dq as dqbits
from ..io.datamodels import Slit, SpecModel, Spectrum, new_spec_table
from ..algorithms.drizzle import source_row
from ..algorithms.nanmedian import nanmedian
from ..io.skycoords import radec_to_xieta
from ..errors import InputError
from ..modes import known_mode
from ._call import accepts_files
from ._extract_refs import aperture_for, apcorr_factor, apcorr_for, read_apcorr, read_extract1d

REFTYPES = ("extract1d", "apcorr")
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): slits with wavelengths to extract, or an IFU cube
NEEDS = ("assign_wcs", "extract_2d", "cube_build")

_HEADER_KEYS = ("SLTNAME", "SLITID", "SOURCEID", "SRCNAME", "SRCALIAS", "SRCTYPE", "SRCXPOS", "SRCYPOS",
                "SRCRA", "SRCDEC", "SLIT_RA", "SLIT_DEC", "SHUTSTA", "SPORDER", "DISPAXIS", "STLARITY")
_VARS = ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")


def _usable(path):
    return path is not None and str(path).strip().upper() not in ("", "N/A", "NONE")


def _ifu_apcorr(x1d, cube, ref_x1d, ref_ap, ifu_rscale):
    """Aperture-correct the POINT spectra of a cube's ``x1d`` in place (``_ifu_apcorr``): the
    circle's radius at each wavelength is the extract1d reference's, as the extraction used it."""
    from ..algorithms.cube_extract import read_extract1d_ifu
    from ._ifu_apcorr import ifu_apcorr_factor, read_ifu_apcorr

    table = read_ifu_apcorr(ref_ap)
    ref = read_extract1d_ifu(ref_x1d)
    miri = str(cube.primary.get("INSTRUME", "")).strip().upper() == "MIRI"
    for spec in x1d.spectra:
        if str(spec.header.get("SRCTYPE", "")).strip().upper() != "POINT":
            continue
        t = spec.table
        wave = np.asarray(t["WAVELENGTH"], float)
        wref, rref = ref["wavelength"], ref["radius"]
        radius = np.interp(wave, wref, rref)
        if wref.size >= 2:          # linear beyond the reference's ends, as the extraction does
            lo, hi = wave < wref[0], wave > wref[-1]
            radius[lo] = rref[0] + (wave[lo] - wref[0]) * (rref[1] - rref[0]) / (wref[1] - wref[0])
            radius[hi] = rref[-1] + (wave[hi] - wref[-1]) * (rref[-1] - rref[-2]) / (wref[-1] - wref[-2])
        if ifu_rscale is not None and miri:
            radius = radius * float(ifu_rscale) / 2.0
        c = ifu_apcorr_factor(table, wave, radius)
        for col in ("FLUX", "FLUX_ERROR", "SURF_BRIGHT", "SB_ERROR"):
            t[col] = t[col] * c
        for col in ("FLUX_VAR_POISSON", "FLUX_VAR_RNOISE", "FLUX_VAR_FLAT", "SB_VAR_POISSON", "SB_VAR_RNOISE",
                    "SB_VAR_FLAT"):
            t[col] = t[col] * c ** 2
    x1d.primary["R_APCORR"] = os.path.basename(str(ref_ap))


@accepts_files
def run(model, refs, *, subtract_background=None, apply_apcorr=True, extraction_type="box",
        use_source_posn=None, position_offset=0.0, model_nod_pair=True, optimize_psf_location=True,
        smoothing_length=None, bkg_fit=None, bkg_order=None, center_xy=None, ifu_autocen=False,
        bkg_sigma_clip=3.0, ifu_rfcorr=True, ifu_set_srctype=None, ifu_rscale=None,
        ifu_covar_scale=1.0, extract_width=None):
    """Box-extract every rectified slit of ``model``; returns an EXTRACT1D :class:`SpecModel`."""
    refs = refs or {}
    from ..io.cubes import as_cube
    cube = as_cube(model)
    if cube is not None:                    # an IFU cube (`_s3d`): webbspec.algorithms.cube_extract
        from ..algorithms.cube_extract import extract_cube
        out = extract_cube(cube, refs.get("extract1d"), subtract_background=subtract_background,
                           center_xy=center_xy, ifu_autocen=ifu_autocen, bkg_sigma_clip=bkg_sigma_clip,
                           ifu_set_srctype=ifu_set_srctype, ifu_rscale=ifu_rscale,
                           ifu_covar_scale=ifu_covar_scale)
        if apply_apcorr and _usable(refs.get("apcorr")):
            _ifu_apcorr(out, cube, refs["extract1d"], refs["apcorr"], ifu_rscale)
        return out
    if model.mode.stage3_kind == "cubes":   # a 3-D cube is not a stack of integrations
        raise InputError(model.path or "extract_1d",
                         f"mode {model.mode.name}: extraction from IFU cubes is not implemented")
    if str(extraction_type or "box").lower() != "box":
        raise InputError("extract_1d", f"extraction_type {extraction_type!r} is not supported (box only)")
    ref_x1d, ref_ap = refs.get("extract1d", "N/A"), refs.get("apcorr", "N/A")
    apertures = read_extract1d(ref_x1d) if _usable(ref_x1d) else None
    apcorr = read_apcorr(ref_ap) if (_usable(ref_ap) and apply_apcorr) else None
    primary = model.primary.copy()
    exp_type = str(primary.get("EXP_TYPE", "")).strip().upper()
    spectra = []
    for slit, int_num in _planes(model):
        ap = aperture_for(apertures, slit.name, int(slit.header.get("SPORDER", 1))) \
            if apertures is not None else None
        table = apcorr_for(apcorr, primary, slit.name) if apcorr is not None else None
        spec, corr_used = extract_slit(
            slit, ap, exp_type=exp_type, subtract_background=subtract_background,
            use_source_posn=use_source_posn, position_offset=float(position_offset or 0.0),
            smoothing_length=smoothing_length, bkg_fit=bkg_fit, bkg_order=bkg_order,
            extract_width=extract_width, apcorr=table, no_reference=apertures is None)
        if int_num is not None:
            spec.header["INT_NUM"] = (int_num, "integration number (1-based)")
        spectra.append(spec)
    primary["S_EXTR1D"] = "COMPLETE"
    if _usable(ref_x1d):
        primary["R_EXTR1D"] = os.path.basename(str(ref_x1d))
    if apcorr is not None:
        primary["R_APCORR"] = os.path.basename(str(ref_ap))
    primary["DATAMODL"] = "MultiSpecModel"
    return SpecModel(primary, spectra, "EXTRACT1D", None, model.path)


def _planes(model):
    """(2-D slit, integration number or None) for every slit; a 3-D (``_calints``) slit gives one
    plane per integration, so ``_x1dints`` holds one spectrum per slit and integration."""
    for slit in model.slits:
        ndim = np.ndim(slit["SCI"]) if "SCI" in slit else 0
        if ndim == 2:
            yield slit, None
        elif ndim == 3:
            nint = np.shape(slit["SCI"])[0]
            for i in range(nint):
                arrays = {k: (v[i] if np.ndim(v) == 3 and np.shape(v)[0] == nint else v)
                          for k, v in slit.arrays.items()}
                yield Slit(slit.header.copy(), arrays), i + 1
        else:
            raise InputError(model.path or slit.name or "extract_1d", "need a 2-D or 3-D SCI")


def _unrectified_trace(slit):
    """Fractional row of the source in every column of an unrectified slit (its per-pixel XI/ETA
    against SRCRA/SRCDEC), filled by a straight-line fit where a column has no answer; None if
    no column has one."""
    h = slit.header
    sx, sy = radec_to_xieta(float(h["SRCRA"]), float(h["SRCDEC"]), float(h["WSREFRA"]),
                            float(h["WSREFDE"]))
    xi, eta = np.asarray(slit["XI"], float), np.asarray(slit["ETA"], float)
    ny, nx = xi.shape
    dxi, deta = np.gradient(xi, axis=0), np.gradient(eta, axis=0)    # along-slit step per row
    with np.errstate(invalid="ignore", divide="ignore"):
        step2 = dxi ** 2 + deta ** 2
        s = ((xi - sx) * dxi + (eta - sy) * deta) / np.sqrt(step2)   # signed offset [arcsec]
        rows_off = s / np.sqrt(step2)                                # ... in rows
    rows = np.arange(ny, dtype=float)[:, None] - rows_off            # each pixel's estimate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        near = np.where(np.abs(rows_off) < 1.5, rows, np.nan)
        trace = nanmedian(near, axis=0)
    good = np.isfinite(trace)
    if not good.any():
        return None
    cols = np.arange(nx, dtype=float)
    if good.sum() >= 2:
        fit = np.polyval(np.polyfit(cols[good], trace[good], 2 if good.sum() > 10 else 1), cols)
        trace = np.where(good, trace, fit)
    else:
        trace = np.full(nx, trace[good][0])
    return trace


def _frac_profile(rows, lower, upper):
    """Fraction of each pixel [r-0.5, r+0.5] inside [lower-0.5, upper+0.5] (inclusive limits)."""
    lo, hi = np.asarray(lower, float) - 0.5, np.asarray(upper, float) + 0.5
    return np.clip(np.minimum(hi, rows + 0.5) - np.maximum(lo, rows - 0.5), 0.0, 1.0)


def _poly(coeffs, var):
    """Ascending-order polynomial (official coefficient order) evaluated at ``var``."""
    c = np.atleast_1d(np.asarray(coeffs, float))
    return np.polynomial.polynomial.polyval(var, c)


def extract_slit(slit, ap, *, exp_type="", subtract_background=None, use_source_posn=None,
                 position_offset=0.0, smoothing_length=None, bkg_fit=None, bkg_order=None,
                 extract_width=None, apcorr=None, no_reference=False):
    """One rectified slit -> (:class:`Spectrum`, whether an aperture correction was applied)."""
    ap = ap or {}
    hdr = slit.header
    sci = np.asarray(slit["SCI"], float)
    ny, nx = sci.shape
    lam2d = np.asarray(slit["WAVELENGTH"], float) if "WAVELENGTH" in slit else None
    if lam2d is None:
        raise InputError(slit.name or "extract_1d", "no WAVELENGTH array")
    rows = np.arange(ny, dtype=float)[:, None]
    cols = np.arange(nx, dtype=float)
    srctype = str(hdr.get("SRCTYPE", "")).strip().upper()

    # ---- aperture
    ystart = ap.get("ystart")
    ystop = ap.get("ystop")
    width = extract_width if extract_width is not None else ap.get("extract_width")
    y0 = float(ystart) if ystart is not None else 0.0
    y1 = float(ystop) if ystop is not None else float(ny - 1)
    if width is None:
        width = y1 - y0 + 1.0
    nominal = 0.5 * (y0 + y1)
    centre = nominal
    usp = use_source_posn if use_source_posn is not None else ap.get("use_source_posn")
    if usp is None:
        usp = srctype == "POINT" and (not exp_type or getattr(known_mode(exp_type), "point_extraction", False))
    if no_reference and extract_width is None:
        usp = False     # whole height, like the official with no reference
    if usp and srctype == "POINT" and all(k in hdr for k in ("SRCRA", "SRCDEC", "S2DRA0", "S2DPA")):
        row = source_row(hdr, float(hdr["SRCRA"]), float(hdr["SRCDEC"]))
        if np.isfinite(row):
            centre = row
    elif usp and srctype == "POINT" and "SRCRA" in hdr and "XI" in slit and "WSREFRA" in hdr:
        trace = _unrectified_trace(slit)       # a `_cal(ints)` slit: the trace per column
        if trace is not None:
            centre = trace
    centre = centre + position_offset
    shift = centre - nominal
    lower, upper = centre - (float(width) - 1) / 2.0, centre + (float(width) - 1) / 2.0
    p = _frac_profile(rows, lower, upper) * np.ones((1, nx))
    xstart = ap.get("xstart")
    xstop = ap.get("xstop")
    xs = 0 if xstart is None else int(xstart)
    xe = nx - 1 if xstop is None else int(xstop)
    p[:, (cols < xs) | (cols > xe)] = 0.0
    p[~np.isfinite(lam2d)] = 0.0
    valid = np.isfinite(sci)
    for v in _VARS:
        if v in slit:
            valid &= np.isfinite(np.asarray(slit[v], float))
    p = np.where(valid, p, 0.0)

    # ---- background
    bkg_coeff = ap.get("bkg_coeff")
    do_bkg = bkg_coeff is not None and subtract_background is not False and not no_reference
    B = np.zeros((ny, nx))
    bvar = {v: np.zeros(nx) for v in _VARS}         # variance of sum_p B per column
    if do_bkg:
        indep = str(ap.get("independent_var", "pixel")).lower()
        var = np.nanmedian(lam2d, axis=0) if indep.startswith("wave") else cols
        q = _bkg_profile(bkg_coeff, var, rows, shift)
        q = np.where(valid, q, 0.0)
        fit = str(bkg_fit if bkg_fit is not None else ap.get("bkg_fit") or "poly").lower()
        order = int(bkg_order if bkg_order is not None else (ap.get("bkg_order") or 0))
        sl = smoothing_length if smoothing_length is not None else ap.get("smoothing_length")
        data = _smooth(np.where(valid, sci, 0.0), q, sl)
        varr = {v: np.where(valid, np.asarray(slit[v], float), 0.0) if v in slit else np.zeros((ny, nx))
                for v in _VARS}
        B, bvar = _fit_background(data, q, varr, p, fit, 0 if fit == "mean" else order)

    # ---- sums
    with np.errstate(all="ignore"):
        npix = p.sum(axis=0)
        fsum = np.sum(p * np.where(valid, sci - B, 0.0), axis=0)
        bsum = np.sum(p * B, axis=0)
        vs = {v: np.sum(p ** 2 * np.where(valid, np.asarray(slit[v], float), 0.0), axis=0)
              + bvar[v] if v in slit else bvar[v] for v in _VARS}
        wave = np.sum(p * np.nan_to_num(lam2d), axis=0) / npix
        empty = npix <= 0
        fsum[empty] = np.nan
    lam_med = nanmedian(lam2d, axis=0)     # numpy's nanmedian bit for bit, faster
    keep = np.isfinite(np.where(np.isfinite(wave), wave, lam_med))
    wave = np.where(np.isfinite(wave), wave, lam_med)

    bunit = str(hdr.get("BUNIT", "")).strip()
    pixar = float(hdr.get("PIXAR_SR", np.nan))
    tab = new_spec_table(int(keep.sum()), "EXTRACT1D")
    tab["WAVELENGTH"] = wave[keep]
    with np.errstate(all="ignore"):
        if bunit.upper() == "MJY":
            fscale = 1e6
            tab["SURF_BRIGHT"] = 0.0
            tab["BACKGROUND"] = (bsum / npix / pixar)[keep]
            bscale = 1.0 / pixar
            sb = False
        else:
            fscale = pixar * 1e6 if np.isfinite(pixar) else 1.0
            tab["SURF_BRIGHT"] = (fsum / npix)[keep]
            tab["BACKGROUND"] = (bsum / npix)[keep]
            bscale = 1.0
            sb = True
        tab["FLUX"] = (fsum * fscale)[keep]
        for v in _VARS:
            tab[f"FLUX_{v}"] = (vs[v] * fscale ** 2)[keep]
            if sb:
                tab[f"SB_{v}"] = (vs[v] / npix ** 2)[keep]
            tab[f"BKGD_{v}"] = (bvar[v] / npix ** 2 * bscale ** 2)[keep]
        tab["FLUX_ERROR"] = np.sqrt(sum(tab[f"FLUX_{v}"] for v in _VARS))
        tab["SB_ERROR"] = np.sqrt(sum(tab[f"SB_{v}"] for v in _VARS))
        tab["BKGD_ERROR"] = np.sqrt(sum(tab[f"BKGD_{v}"] for v in _VARS))
    tab["NPIXELS"] = npix[keep]
    tab["DQ"] = np.where(np.isfinite(tab["FLUX"]), 0, dqbits.DO_NOT_USE).astype(np.uint32)

    corr_used = False
    if apcorr is not None and srctype == "POINT":
        scale = hdr.get("S2DCDLT2")          # arcsec per row: for sizes in arcsec
        c = apcorr_factor(apcorr, tab["WAVELENGTH"], tab["NPIXELS"], abs(float(scale)) if scale else None)
        for col in ("FLUX", "FLUX_ERROR", "SURF_BRIGHT", "SB_ERROR"):
            tab[col] = tab[col] * c
        for v in _VARS:
            tab[f"FLUX_{v}"] = tab[f"FLUX_{v}"] * c ** 2
            tab[f"SB_{v}"] = tab[f"SB_{v}"] * c ** 2
        corr_used = True

    out_hdr = fits.Header()
    for key in _HEADER_KEYS:
        if key in hdr:
            out_hdr[key] = hdr[key]
    out_hdr["SPORDER"] = hdr.get("SPORDER", 1)
    out_hdr["DISPAXIS"] = hdr.get("DISPAXIS", 1)
    kx = np.flatnonzero(keep & (npix > 0))
    out_hdr["EXTRXSTR"] = int(kx[0]) + 1 if kx.size else 1
    out_hdr["EXTRXSTP"] = int(kx[-1]) + 1 if kx.size else nx
    # (a per-column trace in an unrectified slit: its median limits)
    out_hdr["EXTRYSTR"] = (float(max(np.median(lower), 0.0) + 1), "1-based lower limit of the aperture")
    out_hdr["EXTRYSTP"] = (float(min(np.median(upper), ny - 1) + 1), "1-based upper limit of the aperture")
    return Spectrum(out_hdr, tab), corr_used


def _bkg_profile(bkg_coeff, var, rows, shift):
    """Fractional membership of each pixel in the background regions (pairs of edge polynomials)."""
    coeffs = list(bkg_coeff)
    if len(coeffs) % 2:
        raise InputError("extract1d", "bkg_coeff needs an even number of boundaries (pairs)")
    q = np.zeros((rows.shape[0], np.size(var)))
    for lo_c, hi_c in zip(coeffs[0::2], coeffs[1::2]):
        lo = _poly(lo_c, var) + shift       # pixel-edge boundaries -> inclusive centre limits
        hi = _poly(hi_c, var) + shift
        q += _frac_profile(rows, lo + 0.5, hi - 0.5)
    return np.clip(q, 0.0, 1.0)


def _smooth(data, q, length):
    """Boxcar (odd length >= 3) along the dispersion of the background-region data."""
    if length is None or int(length) < 3:
        return data
    n = int(length) | 1
    kernel = np.ones(n)
    num = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, data * (q > 0))
    den = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, (q > 0).astype(float))
    with np.errstate(all="ignore"):
        return np.where(den > 0, num / den, data)


def _fit_background(data, q, varr, p, fit, order):
    """Per-column background image B and the variance of sum_p B, vectorised over columns."""
    ny, nx = data.shape
    if fit == "median":
        vals = np.where(q > 0, data, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(vals, axis=0)
        med = np.nan_to_num(med)
        B = np.broadcast_to(med, (ny, nx)).copy()
        n = (q > 0).sum(axis=0)
        bvar = {}
        for v, a in varr.items():
            with np.errstate(all="ignore"):
                vmean = np.where(n > 0, np.sum(np.where(q > 0, a, 0.0), axis=0) / n ** 2, 0.0)
            bvar[v] = (np.pi / 2) * vmean * p.sum(axis=0) ** 2
        return B, bvar
    # weighted least squares per column: minimise sum q (d - A c)^2 in a [-1, 1] scaled row
    y = np.arange(ny, dtype=float)
    ys = 2.0 * y / max(ny - 1, 1) - 1.0
    A = np.vander(ys, order + 1, increasing=True)                   # (ny, k)
    M = np.einsum("yk,yl,yx->xkl", A, A, q)                         # (nx, k, k)
    rhs = np.einsum("yk,yx->xk", A, q * data)                       # (nx, k)
    ok = np.abs(np.linalg.det(M)) > 1e-12
    Minv = np.zeros_like(M)
    Minv[ok] = np.linalg.inv(M[ok])
    coef = np.einsum("xkl,xl->xk", Minv, rhs)
    B = np.einsum("yk,xk->yx", A, coef)
    g = np.einsum("yx,yk->xk", p, A)                                # sum_p B = g . coef
    h = np.einsum("xk,xkl->xl", g, Minv)                            # d(sum_p B)/d(rhs)
    bvar = {}
    for v, a in varr.items():
        # coef = Minv A^T Q d  ->  var = sum_y (h . A_y)^2 q_y^2 V_y
        t = np.einsum("xk,yk->yx", h, A)
        bvar[v] = np.sum(t ** 2 * q ** 2 * a, axis=0)
    return B, bvar
