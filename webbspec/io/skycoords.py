"""Gnomonic (tangent-plane) offsets in arcsec around a reference RA/Dec, in float64 math."""

import numpy as np

__all__ = ["radec_to_xieta", "xieta_to_radec"]

_ARCSEC = 180.0 / np.pi * 3600.0


def radec_to_xieta(ra, dec, ra0, dec0):
    """Tangent-plane offsets (xi east, eta north) [arcsec] of (ra, dec) [deg] from (ra0, dec0)."""
    ra, dec = np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float))
    ra0, dec0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    xi = np.cos(dec) * np.sin(ra - ra0) / cosc
    eta = (np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)) / cosc
    return xi * _ARCSEC, eta * _ARCSEC


def xieta_to_radec(xi, eta, ra0, dec0):
    """Inverse of :func:`radec_to_xieta`: (ra, dec) [deg] of tangent offsets [arcsec]."""
    x, y = np.asarray(xi, dtype=float) / _ARCSEC, np.asarray(eta, dtype=float) / _ARCSEC
    ra0, dec0 = np.radians(ra0), np.radians(dec0)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        dec = np.arcsin(np.cos(c) * np.sin(dec0) + np.where(rho > 0, y * np.sin(c) * np.cos(dec0) / rho, 0.0))
    ra = ra0 + np.arctan2(x * np.sin(c), rho * np.cos(dec0) * np.cos(c) - y * np.sin(dec0) * np.sin(c))
    return np.degrees(ra) % 360.0, np.degrees(dec)
