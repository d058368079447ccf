"""Radial aperture corrections of IFU point-source spectra (extract_1d on a cube).

The reference (``apcorr``; NrsIfuApcorrModel or MirMrsApcorrModel, ASDF): ``apcorr_table`` with
``wavelength`` (nwave) [um], ``radius`` (nradius, nwave) [arcsec] and ``apcorr`` (nradius, nwave).
As the official radial correction: the table is first interpolated in wavelength (each radius row
linearly, columns sorted by wavelength), then at each wavelength in radius, at the radius of the
circle actually extracted; outside the table's wavelengths no correction (1); radii beyond the
table's take its end value.
"""

import numpy as np

from ..errors import InputError

__all__ = ["read_ifu_apcorr", "ifu_apcorr_factor"]


def read_ifu_apcorr(path):
    """(wavelength (nw,), radius (nr, nw), apcorr (nr, nw)) of an IFU apcorr reference, sorted by wavelength."""
    from ..io.asdfread import Unsupported, read_tree

    try:
        tree = read_tree(path)
    except FileNotFoundError:
        raise InputError(path, "apcorr reference file does not exist") from None
    except Unsupported as exc:
        raise InputError(path, f"not an IFU apcorr reference (ASDF) ({exc})") from None
    except Exception as exc:    # YAML or decoding errors
        raise InputError(path, f"not an IFU apcorr reference (ASDF) ({type(exc).__name__})") from None
    table = tree.get("apcorr_table") or {}
    try:
        wave = np.asarray(table["wavelength"], float).ravel()
        radius = np.atleast_2d(np.asarray(table["radius"], float))
        corr = np.atleast_2d(np.asarray(table["apcorr"], float))
    except (KeyError, TypeError) as exc:
        raise InputError(path, f"IFU apcorr reference has no apcorr_table.{exc.args[0]}") from None
    if radius.shape != corr.shape or radius.shape[-1] != wave.size:
        raise InputError(path, f"IFU apcorr radius {radius.shape} / apcorr {corr.shape} are not (nradius, "
                               f"{wave.size})")
    order = np.argsort(wave)
    return wave[order], radius[:, order], corr[:, order]


def ifu_apcorr_factor(table, wavelength, radius):
    """The correction at each ``wavelength`` [um] for the extraction ``radius`` [arcsec] there."""
    wave, rad, corr = table
    lam = np.asarray(wavelength, float)
    r = np.broadcast_to(np.asarray(radius, float), lam.shape)
    inside = np.isfinite(lam) & (lam >= wave[0]) & (lam <= wave[-1])
    at = np.where(inside, lam, wave[0])
    # every radius row at every spectrum wavelength: (nr, n)
    rad_l = np.array([np.interp(at, wave, row) for row in rad])
    corr_l = np.array([np.interp(at, wave, row) for row in corr])
    order = np.argsort(rad_l, axis=0)
    rad_l = np.take_along_axis(rad_l, order, 0)
    corr_l = np.take_along_axis(corr_l, order, 0)
    rr = np.clip(r, rad_l[0], rad_l[-1])
    j = np.clip((rad_l <= rr).sum(axis=0) - 1, 0, max(rad_l.shape[0] - 2, 0))
    j1 = np.minimum(j + 1, rad_l.shape[0] - 1)
    cols = np.arange(lam.size)
    r0, r1 = rad_l[j, cols], rad_l[j1, cols]
    u = np.where(r1 > r0, (rr - r0) / np.where(r1 > r0, r1 - r0, 1.0), 0.0)
    c = (1 - u) * corr_l[j, cols] + u * corr_l[j1, cols]
    return np.where(inside, c, 1.0)
