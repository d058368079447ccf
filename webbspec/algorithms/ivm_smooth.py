"""The ``ivm-smooth`` drizzle weight: 1/VAR_RNOISE without its pixel-to-pixel part along the dispersion.

Why (issue 18): after flat_field, each pixel's ivm weight (1/VAR_RNOISE) carries the pixel flat.
Drizzling an undersampled trace with weights that differ from pixel to pixel is not flux-conserving:
each output pixel is a weighted mean of input pixels whose values change by a factor of a few
across the trace, so on the simulated MOS program a 2% pixel flat became a noise-free 3.2 per mil
pattern in the Stage 3 point-source FLUX (chi^2 against the truth 1.52-1.53). Each positive weight
is therefore replaced by the median of the positive weights among the ``WINDOW`` pixels centred on
it in its own row along the dispersion: the row-to-row structure (bar shadows, slit edges) and the
slow change with wavelength stay, the pixel-to-pixel part goes. Weight 0 (a pixel not used) stays 0
and does not enter its neighbours' medians.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .nanmedian import nanmedian

__all__ = ["WINDOW", "smooth_along_dispersion"]

WINDOW = 9      # pixels along the dispersion (odd: centred)


def smooth_along_dispersion(weights, dispaxis=1, window=WINDOW):
    """``weights`` (0 where a pixel is not used) with each positive one replaced by the running
    median of the positive ones over ``window`` pixels of its row along the dispersion (x for
    DISPAXIS 1, y for 2); float64, same shape."""
    w = np.asarray(weights, float)
    along_y = int(dispaxis or 1) == 2
    if along_y:
        w = w.T
    used = w > 0
    half = int(window) // 2
    # NaN outside the used pixels and beyond the row ends: the window's median ignores them
    padded = np.full(w.shape[:-1] + (w.shape[-1] + 2 * half,), np.nan)
    padded[..., half:half + w.shape[-1]] = np.where(used, w, np.nan)
    med = nanmedian(sliding_window_view(padded, 2 * half + 1, axis=-1), axis=-1)
    out = np.where(used, med, 0.0)     # a used pixel is in its own window: its median is finite
    return out.T if along_y else out
