"""Detector effects of a simulated `_rate`: noise with an exact error model, bad pixels, cosmic rays.

* Noise: VAR_POISSON = true rate / (GAIN * EFFEXPTM), VAR_RNOISE constant; the measured rate is
  the true rate + N(0, sqrt(VP + VR)), so ERR = sqrt(VP + VR) is exactly the scatter.
* Bad pixels (a property of the detector: same pixels in every exposure of a detector): dead
  (DO_NOT_USE|DEAD) and hot (DO_NOT_USE|HOT); their SCI/ERR/VAR_* are NaN, as in recent rate files.
* Cosmic rays (residual jumps): amplitudes 10-1000 sigma of the pixel's noise, about half on slit
  pixels, a quarter of them 2-pixel events; returned as a boolean mask (the truth).
"""

import numpy as np

from .. import dq as dqbits

__all__ = ["add_noise", "bad_pixels", "cosmic_rays", "observe"]


def add_noise(rate, rng, exptime, gain, var_rnoise):
    """(sci, var_poisson, var_rnoise) float64 for a true ``rate`` [DN/s]."""
    vp = np.clip(rate, 0.0, None) / (gain * exptime)
    vr = np.full(rate.shape, float(var_rnoise))
    sci = rate + rng.standard_normal(rate.shape) * np.sqrt(vp + vr)
    return sci, vp, vr


def bad_pixels(shape, rng, onslit, n_dead, n_hot):
    """uint32 DQ with dead and hot pixels (a third of them on slit pixels)."""
    dq = np.zeros(shape, np.uint32)
    slit_idx = np.flatnonzero(onslit.ravel())
    n = n_dead + n_hot
    k_on = min(n // 3, slit_idx.size)
    on = rng.choice(slit_idx, size=k_on, replace=False) if k_on else np.zeros(0, int)
    off = rng.choice(dq.size, size=n - k_on, replace=False)
    idx = np.unique(np.concatenate([on, off]))
    rng.shuffle(idx)
    flat = dq.ravel()
    flat[idx[:n_dead]] = dqbits.flag("DO_NOT_USE", "DEAD")
    flat[idx[n_dead:]] = dqbits.flag("DO_NOT_USE", "HOT")
    return dq


def cosmic_rays(sigma, rng, onslit, n):
    """(added signal [DN/s], boolean mask) of ``n`` cosmic-ray events; ``sigma`` = noise per pixel."""
    ny, nx = sigma.shape
    slit_idx = np.flatnonzero(onslit.ravel())
    n_on = min(n // 2, slit_idx.size)
    hits = np.concatenate([rng.choice(slit_idx, size=n_on, replace=False),
                           rng.choice(ny * nx, size=n - n_on, replace=False)])
    y, x = np.divmod(hits, nx)
    amp = 10.0 ** rng.uniform(1.0, 3.0, size=n)           # 10..1000 sigma
    add = np.zeros((ny, nx))
    mask = np.zeros((ny, nx), bool)
    add[y, x] += amp * sigma[y, x]
    mask[y, x] = True
    # a quarter of the events also hit a neighbour (30-100% of the amplitude)
    two = rng.random(n) < 0.25
    dy, dx = np.array([(0, 1), (1, 0), (0, -1), (-1, 0)])[rng.integers(0, 4, n)].T
    y2, x2 = np.clip(y + dy, 0, ny - 1), np.clip(x + dx, 0, nx - 1)
    frac = rng.uniform(0.3, 1.0, n)
    y2, x2, a2 = y2[two], x2[two], (amp * frac)[two]
    add[y2, x2] += a2 * sigma[y2, x2]
    mask[y2, x2] = True
    return add, mask


def observe(true_rate, rng, onslit, dq, n_cr, exptime, gain, var_rnoise):
    """A measured `_rate` of ``true_rate``: noise, ``n_cr`` cosmic rays, NaN at the pixels ``dq``
    flags. Returns (sci, err, var_poisson, var_rnoise, ray mask, ray amplitude / err)."""
    sci, vp, vr = add_noise(true_rate, rng, exptime, gain, var_rnoise)
    crs, mask = cosmic_rays(np.sqrt(vp + vr), rng, onslit, n_cr)
    sci = sci + crs
    bad = dq != 0
    mask &= ~bad
    err = np.sqrt(vp + vr)
    snr = np.where(mask, crs / np.where(err > 0, err, np.inf), 0.0)
    for arr in (sci, err, vp, vr):
        arr[bad] = np.nan
    return sci, err, vp, vr, mask, snr
