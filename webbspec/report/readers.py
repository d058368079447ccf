"""The arrays the report plots, read with astropy from the products and the truth files."""

import os

import numpy as np
from astropy.io import fits

from ..dq import OUTLIER

__all__ = ["Spectrum", "read_spectrum", "read_s2d", "read_outliers", "read_truth", "binned",
           "provenance"]


class Spectrum:
    """One 1-D spectrum: wavelength [um], ``value`` (column ``column``: FLUX or SURF_BRIGHT) and
    its error (column ``error_column``) in ``unit``; the table's and the file's headers."""

    def __init__(self, wavelength, value, error, column, error_column, unit, header, primary):
        self.wavelength, self.value, self.error = wavelength, value, error
        self.column, self.error_column, self.unit = column, error_column, unit
        self.header, self.primary = header, primary


def read_spectrum(path, extver=1, surface=False):
    """FLUX +- FLUX_ERROR (``surface``: SURF_BRIGHT +- SB_ERROR) of an ``_x1d`` (EXTRACT1D) or
    ``_c1d`` (COMBINE1D, whose flux error column is ERROR) table."""
    with fits.open(path, memmap=False) as hdul:
        name = "EXTRACT1D" if "EXTRACT1D" in hdul else "COMBINE1D"
        hdu = hdul[name, extver]
        data, cols = hdu.data, hdu.columns
        col = "SURF_BRIGHT" if surface else "FLUX"
        err = "SB_ERROR" if surface else ("FLUX_ERROR" if "FLUX_ERROR" in cols.names else "ERROR")
        unit = cols[col].unit or ""
        return Spectrum(np.array(data["WAVELENGTH"], float), np.array(data[col], float),
                          np.array(data[err], float), col, err, unit, hdu.header.copy(), hdul[0].header.copy())


def read_s2d(path):
    """(SCI, 1-D wavelength grid [um], BUNIT) of a single-slit ``_s2d``."""
    with fits.open(path, memmap=False) as hdul:
        sci = np.array(hdul["SCI"].data, float)
        wave = np.array(hdul["WAVELENGTH"].data, float) if "WAVELENGTH" in hdul else None
        unit = hdul["SCI"].header.get("BUNIT", "")
    if wave is not None and wave.ndim == 2:
        wave = np.nanmedian(np.where(np.isfinite(wave), wave, np.nan), axis=0) if np.isfinite(wave).any() else None
    return sci, wave, unit


def read_outliers(path):
    """``[(exposure label, SCI, outlier mask)]``, one per exposure of a ``_crf``."""
    out = []
    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul:
            if hdu.name != "SCI" or hdu.data is None:
                continue
            ver = hdu.ver
            if ("DQ", ver) not in hdul:
                continue
            dq = np.asarray(hdul["DQ", ver].data).astype(np.uint32)
            h = hdu.header
            label = " ".join(str(h.get(k, "")).strip() for k in ("EXPOSURE", "DETECTOR") if k in h)
            out.append((f"exposure {ver}" + (f" ({label})" if label else ""), np.array(hdu.data, float),
                        (dq & OUTLIER) != 0))
    return out


def read_truth(path):
    """(wavelength [um], values, column, unit) of a truth spectrum: ``flux`` [Jy] for a point
    source, ``surf_bright`` [MJy/sr] for an extended one."""
    from astropy.table import Table

    t = Table.read(path, format="ascii.ecsv")
    col = "flux" if "flux" in t.colnames else "surf_bright"
    wave = t["wavelength"].quantity.to_value("um") if t["wavelength"].unit else np.asarray(t["wavelength"], float)
    return wave, np.asarray(t[col], float), col, str(t[col].unit or "")


def binned(wave_t, values_t, wave):
    """The truth averaged over each spectrum pixel's wavelength bin (what a pixel measures);
    NaN outside the truth's range."""
    wave = np.asarray(wave, float)
    out = np.full(wave.shape, np.nan)
    good = np.isfinite(wave)
    w = wave[good]
    if w.size < 2:
        return out
    mid = 0.5 * (w[1:] + w[:-1])
    edges = np.concatenate([[w[0] - (mid[0] - w[0])], mid, [w[-1] + (w[-1] - mid[-1])]])
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (values_t[1:] + values_t[:-1]) * np.diff(wave_t))])
    vals = np.diff(np.interp(edges, wave_t, cum)) / np.diff(edges)
    inside = (np.minimum(edges[:-1], edges[1:]) >= wave_t[0]) & (np.maximum(edges[:-1], edges[1:]) <= wave_t[-1])
    out[np.flatnonzero(good)[inside]] = vals[inside]
    return out


def provenance(path):
    """What a product's PRIMARY header records of its making: ``model`` (DATAMODL), ``context``
    (CRDS_CTX, else REFCTX), ``version`` (WSVERS) and ``refs`` ({R_<REFTYPE>: file name})."""
    h = fits.getheader(path, 0)
    return {"model": str(h.get("DATAMODL", "")).strip(),
            "context": str(h.get("CRDS_CTX", h.get("REFCTX", ""))).strip(),
            "version": str(h.get("WSVERS", "")).strip(),
            "refs": {k: str(h[k]).strip() for k in h if k.startswith("R_")},
            "size": os.path.getsize(path)}
