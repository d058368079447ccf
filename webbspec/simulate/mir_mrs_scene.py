"""The sky of the simulated MIRI MRS program: a point source, an extended source, the sky background.

* Source 1, POINT at (TARG_RA, TARG_DEC): F_nu(lam) [Jy] = continuum + emission lines.
* Source 2, EXTENDED: a circular Gaussian of FWHM :data:`BLOB_FWHM` arcsec, offset from the target by
  :data:`BLOB_OFFSET` (xi, eta) arcsec, peak surface brightness B(lam) [MJy/sr] (continuum + lines).
* Source 3, EXTENDED: the uniform sky background S(lam) [MJy/sr] (rising thermal emission), seen by
  the science and the dedicated background exposures alike.
The telescope PSF is a circular Gaussian of FWHM mir_mrs_design.psf_fwhm(lam).
Emission lines are Gaussians of sigma lam / 2500 (about 2.4 detector rows in channel 1A).
"""

import numpy as np

__all__ = ["TARG_RA", "TARG_DEC", "BLOB_FWHM", "BLOB_OFFSET", "LINES", "point_flux_jy", "blob_peak_mjysr",
           "sky_mjysr", "line_sigma", "truth_wavelengths"]

TARG_RA, TARG_DEC = 83.8221, -5.3911
BLOB_FWHM = 1.2
BLOB_OFFSET = (0.9, -0.6)
# [um]: a few of the real mid-infrared lines, at least two in every band
LINES = (5.053, 5.340, 5.511, 6.109, 6.636, 6.985, 7.280, 8.025, 8.991, 9.665, 10.511, 11.30, 12.279, 12.814,
         14.322, 15.555, 17.035, 17.936, 18.713, 21.83, 24.318, 25.890, 26.99)


def line_sigma(lam):
    return np.asarray(lam, float) / 2500.0


def _lines(lam, amps):
    lam = np.asarray(lam, float)
    out = np.zeros(lam.shape)
    for l0, a in zip(LINES, amps):
        out += a * np.exp(-0.5 * ((lam - l0) / line_sigma(l0)) ** 2)
    return out


def point_flux_jy(lam):
    """F_nu [Jy] of the point source: 5 mJy (lam / 5 um)^0.5 and lines of 6-20 mJy."""
    lam = np.asarray(lam, float)
    amps = 0.006 + 0.014 * (np.arange(len(LINES)) % 3) / 2.0
    return 0.005 * (lam / 5.0) ** 0.5 + _lines(lam, amps)


def blob_peak_mjysr(lam):
    """Peak surface brightness [MJy/sr] of the extended source: 4 MJy/sr continuum and lines of 6-12.
    Faint enough that the light it puts into the point source's extraction circle (1.1" away; the
    circle 2 PSF FWHM, 1.9" at 26 um) stays within 1-2% of the point source's flux, so the point
    source's x1d measures its own spectrum (10x brighter, it added 2-20%)."""
    lam = np.asarray(lam, float)
    amps = 6.0 * (1 + (np.arange(len(LINES)) % 2))
    return 4.0 * (lam / 10.0) ** 1.0 + _lines(lam, amps)


def sky_mjysr(lam):
    """The uniform sky background [MJy/sr] (zodiacal + thermal, rising to the red)."""
    lam = np.asarray(lam, float)
    return 2.0 + 60.0 * (lam / 25.0) ** 4


def truth_wavelengths():
    """The wavelength grid of the truth spectra: R = 30000 over 4.8-28.5 um (a tenth of a line's sigma)."""
    return np.geomspace(4.8, 28.5, int(np.log(28.5 / 4.8) * 30000) + 1)
