"""The NIRSpec IFU scene: a point source and an extended source with emission lines on a uniform sky.

Sources (positions as tangent-plane offsets from the target TARG_RA/TARG_DEC):

* source 1, POINT, at the target: F_nu = ``nirspec_fs.point_source_jy`` (continuum + six lines).
* source 2, EXTENDED: a circular Gaussian of EXT_SIGMA at EXT_OFFSET, total flux density
  ``extended_jy`` (continuum + its own lines); its truth spectrum is the surface brightness at its
  centre [MJy/sr] before the PSF.
* the sky: uniform ``nirspec_fs.sky_mjysr`` [MJy/sr] (what the dedicated background sees).

The telescope PSF is ``nirspec_fs``'s mixture of two circular Gaussians (PSF_WEIGHTS,
psf_sigmas(lam)), so the light of a pixel's footprint, a rectangle on the sky (the segment between
the pixel's two along-slice edges, widened by the slice width, cut at the slice ends) is an exact
product of error functions along and across the slice for every source.
"""

import numpy as np
from scipy.special import erf

from . import nirspec_fs as fs

__all__ = ["TARG_RA", "TARG_DEC", "EXT_OFFSET", "EXT_SIGMA", "SR_PER_ARCSEC2", "extended_jy", "extended_peak_mjysr",
           "footprint_mjy", "sky_footprint_mjy", "spaxel_mjysr", "point_source_jy", "sky_mjysr"]

TARG_RA, TARG_DEC = 53.1625, -27.7914
EXT_OFFSET = (0.55, -0.45)          # arcsec (xi east, eta north) from the target
EXT_SIGMA = 0.35                    # arcsec
SR_PER_ARCSEC2 = (np.pi / 648000.0) ** 2
# (centre um, peak mJy, sigma um) of the extended source's lines
EXT_LINES = ((3.4520, 0.12, 0.0030), (3.8400, 0.09, 0.0030), (4.3000, 0.10, 0.0030), (4.8600, 0.08, 0.0030))

point_source_jy = fs.point_source_jy
sky_mjysr = fs.sky_mjysr


def extended_jy(lam):
    """Total flux density [Jy] of the extended source: 0.05 mJy continuum and lines. Faint enough that
    the light it puts into the point source's 0.6" extraction circle (0.71" away) stays near 1% of
    the point source's flux, so the point source's x1d measures its own spectrum (10x brighter, 10%)."""
    lam = np.asarray(lam, float)
    f = 0.05e-3 * (lam / 4.0) ** 0.5
    for c, peak, sig in EXT_LINES:
        f = f + peak * 1e-3 * np.exp(-0.5 * ((lam - c) / sig) ** 2)
    return f


def extended_peak_mjysr(lam):
    """Surface brightness [MJy/sr] at the extended source's centre (before the PSF)."""
    return extended_jy(lam) * 1e-6 / (2.0 * np.pi * EXT_SIGMA ** 2) / SR_PER_ARCSEC2


def _band(lo, hi, sigma):
    """Fraction of a unit 1-D Gaussian of ``sigma`` centred at 0 between lo and hi."""
    r = np.sqrt(2.0) * sigma
    return 0.5 * (erf(hi / r) - erf(lo / r))


def _components(lam):
    """[(weight, sigma arcsec, source flux [MJy], source offset (xi, eta))] of every Gaussian
    the sources make on the sky at ``lam`` (PSF components; the extended source convolved)."""
    sig = fs.psf_sigmas(lam)
    out = []
    for w, s in zip(fs.PSF_WEIGHTS, sig):
        out.append((w, s, point_source_jy(lam) * 1e-6, (0.0, 0.0)))
        out.append((w, np.sqrt(s * s + EXT_SIGMA ** 2), extended_jy(lam) * 1e-6, EXT_OFFSET))
    return out


def footprint_mjy(lam, centre, u, half_len, half_wid, target):
    """Source light [MJy] in pixel footprints at ``lam`` [um]: rectangles centred at ``centre``
    ((xi, eta) arcsec arrays), long axis along unit vectors ``u`` ((ux, uy)) from -half_len[0] to
    +half_len[1] (the cut at the slice ends), across +-half_wid; ``target``: (xi, eta) of the target
    in the same tangent plane."""
    (cx, cy), (ux, uy) = centre, u
    out = 0.0
    for w, s, flux, (ox, oy) in _components(lam):
        dx, dy = target[0] + ox - cx, target[1] + oy - cy
        du, dv = dx * ux + dy * uy, -dx * uy + dy * ux
        out = out + w * flux * _band(-half_len[0] - du, half_len[1] - du, s) * _band(-half_wid - dv, half_wid - dv, s)
    return out


def sky_footprint_mjy(lam, length, width):
    """Sky light [MJy] in footprints of ``length`` x ``width`` arcsec at ``lam`` [um]."""
    return sky_mjysr(lam) * length * width * SR_PER_ARCSEC2


def spaxel_mjysr(lam, xi, eta, spaxel):
    """Mean surface brightness [MJy/sr] of the sources (through the PSF) over square spaxels
    centred at (xi, eta) [arcsec from the target], ``spaxel`` arcsec wide, at ``lam`` [um]
    (arrays broadcast: lam (nz, 1, 1), xi/eta (ny, nx))."""
    h = spaxel / 2.0
    out = 0.0
    for w, s, flux, (ox, oy) in _components(lam):
        out = out + w * flux * _band(xi - h - ox, xi + h - ox, s) * _band(eta - h - oy, eta + h - oy, s)
    return out / (spaxel * spaxel * SR_PER_ARCSEC2)
