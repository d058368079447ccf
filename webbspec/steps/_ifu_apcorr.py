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
from ._extract_refs import interp_in_size

__all__ = ["read_ifu_apcorr", "ifu_apcorr_factor"]


def read_ifu_apcorr(path):
    """(wavelength (nw,), radius (nr, nw), apcorr (nr, nw)) of an IFU apcorr reference, sorted by wavelength."""
    from ..io.asdfread import read_reference

    tree = read_reference(path, "IFU apcorr")
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
    return interp_in_size(np.take_along_axis(rad_l, order, 0), np.take_along_axis(corr_l, order, 0), r, inside)
