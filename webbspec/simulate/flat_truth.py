"""The simulated NIRSpec flat field, split the way the official references split it.

flat(x, y, lam) = F(slit, lam) * [S(x, y) * S_fast(slit, lam)] * [D(x, y) * D_fast(lam)]

* F: fore optics (``fflat``): only a per-slit fast variation for fixed slits.
* S: spectrograph (``sflat``): a mild smooth image near 1 over the full frame times a per-slit
  fast variation.
* D: detector (``dflat``): the random pixel flat drawn by the program (achromatic), times a
  slow wavelength trend common to all slits ("ANY").

x, y are 0-based full-frame (2048 x 2048) pixel coordinates. The simulator applies the product
with this module's functions (``nirspec_fs.render``); ``fs_calrefs`` tabulates each part into its
reference file. ``REL_ERR`` is the relative error each file states (small: the truth is exact).
"""

import numpy as np

__all__ = ["FULL", "REL_ERR", "fore_fast", "spectrograph_fast", "detector_fast", "fast_total",
           "spectrograph_image"]

FULL = 2048
REL_ERR = 2.0e-4
_PHASE = {"S200A1": 0.0, "S200A2": 1.3, "S400A1": 2.6, "S1600A1": 3.9, "S200B1": 5.2}
_SLOPE = {"S200A1": 0.006, "S200A2": -0.004, "S400A1": 0.003, "S1600A1": -0.006, "S200B1": 0.002}


def fore_fast(slit_name, lam):
    """F: the fore-optics flat of a fixed slit (fflat FAST_VARIATION row)."""
    lam = np.asarray(lam, float)
    return 1.0 + 0.02 * np.sin(2 * np.pi * (lam - 2.87) / 0.37 + _PHASE[slit_name])


def spectrograph_fast(slit_name, lam):
    """S_fast: the spectrograph flat's per-slit wavelength part (sflat FAST_VARIATION row)."""
    lam = np.asarray(lam, float)
    return 1.0 + 0.01 * np.cos(2 * np.pi * lam / 0.9) + _SLOPE[slit_name] * (lam - 4.0)


def detector_fast(lam):
    """D_fast: the detector flat's wavelength trend (dflat FAST_VARIATION row "ANY")."""
    return 1.0 - 0.008 * (np.asarray(lam, float) - 4.0)


def fast_total(slit_name, lam):
    """F * S_fast * D_fast: every wavelength-dependent factor of a slit's flat."""
    return fore_fast(slit_name, lam) * spectrograph_fast(slit_name, lam) * detector_fast(lam)


def spectrograph_image(x, y):
    """S(x, y): the spectrograph flat's smooth image (sflat SCI), full-frame pixel coordinates."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    u, v = (x - 1023.5) / 1023.5, (y - 1023.5) / 1023.5
    return 1.0 + 0.012 * np.sin(2 * np.pi * x / 613.0) * np.cos(2 * np.pi * y / 397.0) + 0.006 * u - 0.004 * v * v
