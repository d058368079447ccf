"""Forward rendering of a simulated MIRI MRS exposure through OUR WCS (webbspec.instruments.miri.mrs).

For every slice pixel the WCS gives (alpha, beta, lambda) at its centre and alpha at its two edges
along the slice (x -/+ 0.5); its footprint on the sky is the rectangle [alpha1, alpha2] x [beta -/+
bdel/2] of the channel's alpha/beta frame, which the toy optics map to the sky by a rotation (and
the velocity-aberration scale). A circular Gaussian on the sky stays one there, so the scene
(mir_mrs_scene: PSF-convolved point source and extended Gaussian, uniform sky) integrates over the
footprint exactly as erf products:

    SB_pixel = sum_sources  flux(lambda) * fa * fb / Omega_pixel  (+ sky),  Omega = |alpha2 - alpha1| bdel VA^2

Then the instrument (mir_mrs_calrefs truth): S = SB * flat * fringe * residual / photom [DN/s], and the
rate is S + cross-artifact(S) (the additive stray light the straylight reference describes); residual
is the fringe the fringe flat leaves (1% in wavenumber at the fringefreq reference's period), which
only residual_fringe removes.
"""

import numpy as np
from scipy.special import erf

from . import mir_mrs_calrefs as cal
from . import mir_mrs_design as design
from . import mir_mrs_scene as scene

__all__ = ["sky_brightness", "instrument_rate", "ARCSEC2_SR", "gaussian_fraction", "COMPONENTS"]

ARCSEC2_SR = (np.pi / 180.0 / 3600.0) ** 2
_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


def gaussian_fraction(lo, hi, centre, sigma):
    """Fraction of a 1-D Gaussian (``centre``, ``sigma``) between ``lo`` and ``hi``."""
    s = np.sqrt(2.0) * sigma
    return 0.5 * np.abs(erf((hi - centre) / s) - erf((lo - centre) / s))


def _source_ab(wcs, channel, ra, dec):
    return wcs.v2v3_to_ab(*wcs.sky_to_v2v3(ra, dec), channel)


COMPONENTS = ("point", "blob", "sky")


def sky_brightness(wcs, shape, components=COMPONENTS):
    """Surface brightness [MJy/sr] of the scene's ``components`` (point source, extended source,
    sky) on every slice pixel (0 off the slices) and the slice map. A background exposure's field
    holds only the sky (computing the sources there would give ~0 anyway)."""
    from ..io.skycoords import xieta_to_radec

    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    alpha, beta, lam, sl = wcs.detector_to_abl(xx, yy)
    on = np.isfinite(lam) & (sl > 0)
    sb = np.zeros(shape)
    va = wcs.pointing[5]
    blob_ra, blob_dec = xieta_to_radec(*scene.BLOB_OFFSET, scene.TARG_RA, scene.TARG_DEC)
    for c in wcs.channels:
        pix = on & (sl // 100 == int(c))
        s_idx = sl[pix]
        x, y = xx[pix], yy[pix]
        a, b, lm = alpha[pix], beta[pix], lam[pix]
        a1, a2 = np.empty_like(a), np.empty_like(a)
        for s in np.unique(s_idx):
            k = s_idx == s
            a1[k] = wcs.slice_to_abl(int(s), x[k] - 0.5, y[k])[0]
            a2[k] = wcs.slice_to_abl(int(s), x[k] + 0.5, y[k])[0]
        lo, hi = np.minimum(a1, a2), np.maximum(a1, a2)
        half = wcs.slice_width(c) / 2.0
        omega = (hi - lo) * 2.0 * half                        # arcsec^2 in alpha/beta
        val = scene.sky_mjysr(lm) if "sky" in components else np.zeros(lm.shape)
        psf = design.psf_fwhm(lm) / _FWHM / va                # sigma in alpha/beta
        if "point" in components:
            a0, b0 = _source_ab(wcs, c, scene.TARG_RA, scene.TARG_DEC)
            frac = gaussian_fraction(lo, hi, a0, psf) * gaussian_fraction(b - half, b + half, b0, psf)
            val = val + scene.point_flux_jy(lm) * 1e-6 * frac / (omega * va**2 * ARCSEC2_SR)
        if "blob" in components:
            sig_b = scene.BLOB_FWHM / _FWHM
            tot = np.hypot(sig_b / va, psf)
            a0, b0 = _source_ab(wcs, c, blob_ra, blob_dec)
            frac = gaussian_fraction(lo, hi, a0, tot) * gaussian_fraction(b - half, b + half, b0, tot)
            val = val + scene.blob_peak_mjysr(lm) * 2 * np.pi * sig_b**2 * frac / (omega * va**2)
        sb[pix] = val
    return sb, sl


_CAL_CACHE = {}


def _cal_arrays(detector, band):
    key = (detector, band)
    if key not in _CAL_CACHE:
        _CAL_CACHE[key] = (cal.flat_truth(detector, band) * cal.fringe_truth(detector, band)
                           * cal.residual_fringe_truth(detector, band), cal.photom_truth(detector, band))
    return _CAL_CACHE[key]


def instrument_rate(sb, detector, band):
    """(true rate [DN/s], stray light [DN/s]) of a surface-brightness image [MJy/sr]."""
    gain, photom = _cal_arrays(detector, band)
    with np.errstate(invalid="ignore"):
        signal = np.where(np.isfinite(photom), sb * gain / photom, 0.0)
    stray = cal.apply_xartifact(signal, detector)
    return signal + stray, stray
