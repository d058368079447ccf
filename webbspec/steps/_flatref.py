"""Reading the NIRSpec flat references (official NirspecFlatModel FITS: fflat, sflat, dflat).

A reference is opened once per step (headers only); a slit reads just its own
full-frame region of SCI / DQ / ERR from a memory map of the file (cached per file; astropy's
``ImageHDU.section`` where the stored values need scaling), so a 50-67 MB full-frame flat costs a
few milliseconds, not a full read. Fast-variation rows follow the official selection: for fixed
slits the first row named like the slit or "ANY" (case-insensitive), otherwise the first row;
NELEM-trimmed; NaN, non-positive wavelengths and zero values dropped; metres -> um.

The MOS fore-optics flat is a NirspecQuadFlatModel (:class:`QuadFlatRef`): per MSA quadrant (EXTVER
1-4) a cube SCI/ERR (planes, 171 columns, 365 rows) over the shutters with its WAVELENGTH per plane,
and a FAST_VARIATION row. A slitlet's fast part is that row times its reference shutter's cube
spectrum interpolated at the row's wavelengths (1 outside the planes' range); its image part is 1
with the shutter's ERR spectrum interpolated at each pixel's wavelength (0 outside) as its error.
"""

import os

import numpy as np
from astropy.io import fits

from .. import dq as dqbits
from ..errors import InputError
from . import _correction as corr

__all__ = ["FlatRef", "QuadFlatRef", "open_flat", "BADFLAT"]

BADFLAT = dqbits.DO_NOT_USE | dqbits.NO_FLAT_FIELD | dqbits.FLAGS["UNRELIABLE_FLAT"]
_MODELS = ("NirspecFlatModel",)
_QUAD = "NirspecQuadFlatModel"


class FlatRef:
    """One opened flat reference: ``fast(slit_name, by_slit)``, ``region(y0, x0, ny, nx)``."""

    def __init__(self, path, reftype, hdul):
        self.path, self.reftype, self.hdul = str(path), reftype, hdul
        self.image = reftype != "fflat"          # the FS fore-optics flat has no image part
        if self.image:
            sci = hdul["SCI"]
            self.ndim = sci.header.get("NAXIS", 0)
            if self.ndim not in (2, 3):
                raise InputError(path, f"{reftype} SCI must be 2-D or 3-D (NAXIS {self.ndim})")
            if reftype == "dflat" and self.ndim != 3:
                raise InputError(path, "dflat SCI must be 3-D (planes, y, x)")
            self.plane_wl = self._plane_wavelengths() if self.ndim == 3 else None
        self._table = _read_table(hdul, self.path)
        # the image HDUs, looked up once (a lookup by name walks the HDU list)
        self._hdus = {k: (hdul[k] if k in hdul else None) for k in ("SCI", "DQ", "ERR")} if self.image else {}

    def close(self):
        self.hdul.close()

    def _plane_wavelengths(self):
        nz = self.hdul["SCI"].header["NAXIS3"]
        if nz == 1:
            return np.array([np.nan])      # one plane: wavelength-independent (official)
        if "WAVELENGTH" not in self.hdul:
            raise InputError(self.path, f"{self.reftype} has {nz} planes but no WAVELENGTH table")
        wl = np.asarray(self.hdul["WAVELENGTH"].data["wavelength"], float).ravel()
        wl = wl[np.isfinite(wl) & (wl > 0)]
        if wl.size != nz:
            raise InputError(self.path, f"{self.reftype} WAVELENGTH has {wl.size} valid rows for {nz} planes")
        return wl * 1e6 if wl.max() < 1e-4 else wl

    def fast(self, slit_name, by_slit, shutter=None):
        """(wavelength [um], value, error) of the fast-variation row for ``slit_name``."""
        return _fast_row(self._table, self.path, slit_name, by_slit)

    def shutter_error(self, wl, shutter):
        """The image part's error at wavelengths ``wl``: none for these flats."""
        return np.zeros(wl.shape)

    def region(self, y0, x0, ny, nx):
        """(SCI (ny, nx) or (nz, ny, nx), DQ, ERR) of the full-frame region at 0-based (y0, x0);
        outside the reference image SCI is NaN (flagged as no flat by the caller)."""
        h = self._hdus
        sci = _section(h["SCI"], y0, x0, ny, nx, np.nan, np.float64)
        shape = sci.shape[-2:]
        dq = (_section(h["DQ"], y0, x0, ny, nx, 0, np.uint32) if h["DQ"] is not None
              else np.zeros(shape, np.uint32))
        err = (_section(h["ERR"], y0, x0, ny, nx, 0.0, np.float64) if h["ERR"] is not None
               else np.zeros(shape))
        return sci, dq, err


class QuadFlatRef:
    """An opened MOS fore-optics flat (NirspecQuadFlatModel): see the module docstring."""

    image = False

    def __init__(self, path, hdul):
        self.path, self.reftype, self.hdul = str(path), "fflat", hdul
        self._quadrants = {}

    def close(self):
        self.hdul.close()

    def _quadrant(self, q):
        if q not in self._quadrants:
            try:
                sci, err = self.hdul["SCI", q], self.hdul["ERR", q]
                wl = np.asarray(self.hdul["WAVELENGTH", q].data["wavelength"], float).ravel()
                table = _read_table(self.hdul, self.path, ("FAST_VARIATION", q))
            except KeyError:
                raise InputError(self.path, f"quadrant flat has no SCI/ERR/WAVELENGTH/FAST_VARIATION "
                                            f"for quadrant {q}") from None
            if sci.data is None or sci.data.ndim != 3:
                raise InputError(self.path, f"quadrant {q} SCI must be 3-D (planes, columns, rows)")
            self._quadrants[q] = (sci, err, wl * 1e6 if wl.max() < 1e-4 else wl, table)
        return self._quadrants[q]

    def _spectra(self, shutter):
        """(plane wavelengths [um], SCI and ERR of the shutter per plane)."""
        q, row, col = shutter
        sci, err, wl, _ = self._quadrant(q)
        nz, ncol, nrow = sci.data.shape
        if not (1 <= row <= nrow and 1 <= col <= ncol):
            raise InputError(self.path, f"quadrant {q} has no shutter at row {row}, column {col}")
        return wl, np.asarray(sci.data[:, col - 1, row - 1], float), np.asarray(err.data[:, col - 1, row - 1], float)

    def fast(self, slit_name, by_slit, shutter=None):
        if shutter is None:
            raise InputError(self.path, "a quadrant (MOS) fflat; fixed slits need a NirspecFlatModel fflat")
        wl, val, err = _fast_row(self._quadrant(shutter[0])[3], self.path, slit_name, False)
        plane_wl, spec, _ = self._spectra(shutter)
        return wl, val * np.interp(wl, plane_wl, spec, left=1.0, right=1.0), err

    def shutter_error(self, wl, shutter):
        plane_wl, _, err = self._spectra(shutter)
        return np.interp(wl, plane_wl, err, left=0.0, right=0.0)


def _read_table(hdul, path, ext="FAST_VARIATION"):
    """{wavelength, data, error, slit_name, nelem} columns of a FAST_VARIATION table."""
    data = hdul[ext].data
    names = {n.lower(): n for n in data.columns.names}
    missing = [c for c in ("wavelength", "data", "error") if c not in names]
    if missing:
        raise InputError(path, f"FAST_VARIATION has no column(s) {', '.join(missing)}")
    out = {k: np.asarray(data[names[k]]) for k in ("wavelength", "data", "error")}
    out["slit_name"] = (np.char.lower(np.char.strip(np.asarray(data[names["slit_name"]]).astype(str)))
                        if "slit_name" in names else None)
    out["nelem"] = np.asarray(data[names["nelem"]]) if "nelem" in names else None
    return out


def _fast_row(t, path, slit_name, by_slit):
    """(wavelength [um], value, error) of a FAST_VARIATION table's row (see module docstring)."""
    row = 0
    if by_slit and t["slit_name"] is not None and slit_name:
        hit = np.flatnonzero((t["slit_name"] == "any") | (t["slit_name"] == slit_name.lower()))
        if hit.size == 0:
            raise InputError(path, f"FAST_VARIATION has no row for slit {slit_name!r} (nor 'ANY')")
        row = int(hit[0])
    wl, val, err = (np.atleast_1d(np.asarray(t[k][row] if t[k].ndim > 1 else t[k], float)).ravel()
                    for k in ("wavelength", "data", "error"))
    if t["nelem"] is not None and t["wavelength"].ndim > 1:
        n = min(int(t["nelem"][row]), wl.size)
        wl, val, err = wl[:n], val[:n], err[:n]
    good = np.isfinite(wl) & np.isfinite(val) & (wl > 0) & (val != 0)
    wl, val, err = wl[good], val[good], err[good]
    if wl.size == 0:
        raise InputError(path, f"empty FAST_VARIATION row for {slit_name or 'the exposure'!r}")
    if wl.max() < 1e-4:
        wl = wl * 1e6
    return wl, val, err


def _section(hdu, y0, x0, ny, nx, fill, dtype):
    """hdu.data[..., y0:y0+ny, x0:x0+nx] read through a memory map of the file (only those
    rows; ``section`` where the data cannot be mapped as stored), padded."""
    shape = tuple(hdu.shape)
    out = np.full(shape[:-2] + (ny, nx), fill, dtype=dtype)
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + ny, shape[-2]), min(x0 + nx, shape[-1])
    if ye > ys and xe > xs:
        raw = _mapped(hdu)
        if raw is None:
            out[..., ys - y0:ye - y0, xs - x0:xe - x0] = hdu.section[..., ys:ye, xs:xe]
        else:
            mm, flip = raw
            part = mm[..., ys:ye, xs:xe]
            if flip is not None:          # BZERO 2**(bits-1): unsigned, the sign bit flipped
                part = part.astype(part.dtype.newbyteorder("=")).view(flip.dtype) ^ flip
            out[..., ys - y0:ye - y0, xs - x0:xe - x0] = part
    return out


_MAPS = {}
_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def _mapped(hdu):
    """(read-only memory map of the HDU's stored array, sign-bit mask or None) when the stored
    values are the data as astropy gives them (BSCALE 1, BZERO 0, or BZERO 2**(bits-1) on a
    signed integer type: unsigned); None otherwise. Cached per file (path, size, mtime) and HDU."""
    try:
        info = hdu.fileinfo()
        path = info["file"].name
        st = os.stat(path)
    except Exception:
        return None
    key = (path, st.st_size, st.st_mtime_ns, info["datLoc"])
    if key in _MAPS:
        return _MAPS[key]
    h = hdu.header
    code = _BITPIX.get(h.get("BITPIX"))
    bscale, bzero = h.get("BSCALE", 1), h.get("BZERO", 0)
    result = None
    if code is not None and "BLANK" not in h and bscale == 1:
        dt = np.dtype(code)
        flip = None
        if bzero != 0:
            if dt.kind == "i" and bzero == 2 ** (8 * dt.itemsize - 1):
                flip = np.array(bzero, dtype=f"u{dt.itemsize}")
            else:
                dt = None
        if dt is not None:
            shape = tuple(h[f"NAXIS{k}"] for k in range(h["NAXIS"], 0, -1))
            result = (np.memmap(path, dtype=dt, mode="r", offset=info["datLoc"], shape=shape), flip)
    if len(_MAPS) > 64:
        _MAPS.clear()
    _MAPS[key] = result
    return result


def open_flat(path, reftype, quadrants=False):
    """A :class:`FlatRef` (``quadrants``, for MOS slitlets: the fflat is a :class:`QuadFlatRef`);
    InputError naming the file if missing, unreadable or not a NirspecFlatModel (NirspecQuadFlatModel)
    ``reftype`` reference (REFTYPE, DATAMODL, SCI / FAST_VARIATION)."""
    path = str(path)
    if not os.path.exists(path):
        raise InputError(path, f"{reftype} reference file does not exist")
    try:
        hdul = fits.open(path, memmap=False)   # section reads (BZERO DQ cannot be memory-mapped)
        len(hdul)                       # all headers parsed; image data stay on disk until sliced
    except Exception as exc:
        raise InputError(path, f"not a readable {reftype} reference file ({type(exc).__name__}: {exc})") from None
    try:
        quad = str(hdul[0].header.get("DATAMODL", "")).strip() == _QUAD
        if reftype == "fflat" and quad != bool(quadrants):
            raise InputError(path, "a quadrant (MOS) fflat; fixed slits need a NirspecFlatModel fflat" if quad
                             else f"not a quadrant fflat; MOS slitlets need a {_QUAD}")
        if reftype == "fflat" and quad:
            corr.check_reference(hdul, path, reftype, (_QUAD,), ("SCI", "ERR", "WAVELENGTH", "FAST_VARIATION"))
            return QuadFlatRef(path, hdul)
        corr.check_reference(hdul, path, reftype, _MODELS,
                             ("FAST_VARIATION",) if reftype == "fflat" else ("SCI", "FAST_VARIATION"))
        return FlatRef(path, reftype, hdul)
    except InputError:
        hdul.close()
        raise
    except Exception as exc:
        hdul.close()
        raise InputError(path, f"not a valid {reftype} reference ({type(exc).__name__}: {exc})") from None
