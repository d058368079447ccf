"""Shared helpers of the multiplicative Stage 2 corrections (flat_field, pathloss, photom, ...).

* :func:`apply_correction`: divide a slit by a correction ``c`` (S/=c, E/=c, VAR_*/=c**2), or
  multiply with ``inverse=True``; ``c`` broadcasts over a leading integration axis (rateints).
* :func:`match_nans_and_flags`: the official rule after each correction -- a pixel NaN in any of
  SCI/ERR/VAR_* or flagged DO_NOT_USE becomes DO_NOT_USE and NaN in all of them.
* Reference helpers: :func:`ref_path` (refs dict -> path or None), :func:`open_reference`
  (InputError naming a missing/unreadable file), :func:`table_row` (row of a per-slit table by
  SLIT_NAME, "ANY" as fallback), :func:`row_vector` (a row's wavelength/value arrays: NELEM
  trimming, finite, sorted, metres -> um) and :func:`interp_nan` (linear interpolation, NaN
  outside the tabulated range).
* Bookkeeping: :func:`mark` (S_<KEY>), :func:`record_ref` (R_<KEY> = basename),
  :func:`source_type` (SRCTYPE with a user override).
"""

import os

import numpy as np
from astropy.io import fits

from .. import dq as dqbits
from ..errors import InputError

__all__ = ["VAR_NAMES", "NAN_NAMES", "apply_correction", "match_nans_and_flags", "ref_path",
           "open_reference", "table_row", "row_vector", "interp_nan", "mark", "record_ref",
           "source_type", "slit_label", "REF_KEYWORDS"]

VAR_NAMES = ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")
NAN_NAMES = ("SCI", "ERR") + VAR_NAMES

# Official header keywords of the reference file names (R_<REFTYPE> truncated to 8 characters).
REF_KEYWORDS = {"flat": "R_FLAT", "pathloss": "R_PTHLOS", "photom": "R_PHOTOM", "area": "R_AREA",
                "bkg": "R_BKG", "barshadow": "R_BARSHA"}


def apply_correction(slit, c, inverse=False):
    """S/=c, ERR/=c, VAR_*/=c**2 in place on ``slit`` (times with ``inverse``); float64 math.

    Arrays keep their dtype. Where ``c`` is NaN the data become NaN (``match_nans_and_flags``
    then flags them); a zero divisor is the caller's business (they replace it first).
    """
    c = np.asarray(c, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = c if inverse else 1.0 / c
        for name in ("SCI", "ERR"):
            if name in slit:
                slit[name] = (slit[name] * f).astype(slit[name].dtype, copy=False)
        for name in VAR_NAMES:
            if name in slit:
                slit[name] = (slit[name] * (f * f)).astype(slit[name].dtype, copy=False)


def match_nans_and_flags(slit):
    """Make NaN and DO_NOT_USE agree across SCI, ERR, VAR_* and DQ (in place)."""
    shape = slit["SCI"].shape
    bad = np.zeros(shape, bool)
    for name in NAN_NAMES:
        if name in slit and slit[name].shape == shape:
            bad |= np.isnan(slit[name])
    if "DQ" in slit and slit["DQ"].shape == shape:
        bad |= (slit["DQ"] & dqbits.DO_NOT_USE).astype(bool)
        slit["DQ"] = slit["DQ"] | np.where(bad, np.uint32(dqbits.DO_NOT_USE), np.uint32(0))
    for name in NAN_NAMES:
        if name in slit and slit[name].shape == shape:
            arr = np.array(slit[name], copy=True)
            arr[bad] = np.nan
            slit[name] = arr


def ref_path(refs, reftype, override=None):
    """Path of reference ``reftype`` (``override`` wins), or None when it is "N/A"/missing."""
    path = override if override is not None else (refs or {}).get(reftype)
    if path is None or str(path).strip().upper() in ("", "N/A", "NONE"):
        return None
    return path


def open_reference(path, reftype):
    """An in-memory HDUList of a reference file; InputError naming it if missing or unreadable."""
    path = str(path)
    if not os.path.exists(path):
        raise InputError(path, f"{reftype} reference file does not exist")
    try:
        # every HDU read now (no HDU copies: copying a table imports astropy.table, 0.5 s)
        with fits.open(path, memmap=False, lazy_load_hdus=False) as out:
            for hdu in out:
                _ = hdu.data
    except Exception as exc:
        raise InputError(path, f"not a readable {reftype} reference file ({type(exc).__name__}: {exc})") from None
    return out


def _column(table, name):
    names = {n.upper(): n for n in table.columns.names}
    return names.get(name.upper())


def table_row(hdul, extname, slit_name, path):
    """The row of BinTable ``extname`` whose SLIT_NAME is ``slit_name`` (else "ANY"; a one-row
    table serves a nameless slit). InputError naming the file when there is none."""
    if extname not in hdul:
        raise InputError(path, f"no {extname} table")
    data = hdul[extname].data
    col = _column(data, "SLIT_NAME")
    want = str(slit_name or "").strip().upper()
    if col is None:
        if len(data) == 1:
            return data[0]
        raise InputError(path, f"{extname} table has no SLIT_NAME column")
    names = np.char.upper(np.char.strip(np.asarray(data[col]).astype(str)))
    for key in (want, "ANY"):
        hit = np.flatnonzero(names == key) if key else []
        if len(hit):
            return data[hit[0]]
    if not want and len(data) == 1:
        return data[0]
    raise InputError(path, f"{extname} table has no row for slit {slit_name or '(unnamed)'!r}")


def row_vector(row, wave_col, value_cols, path):
    """(wavelength [um], value arrays...) of a table row: NELEM-trimmed, finite, sorted."""
    names = {n.upper(): n for n in row.array.columns.names}
    missing = [c for c in (wave_col,) + tuple(value_cols) if c.upper() not in names]
    if missing:
        raise InputError(path, f"table has no column(s) {', '.join(missing)}")
    wave = np.atleast_1d(np.asarray(row[names[wave_col.upper()]], dtype=np.float64)).ravel()
    vals = [np.atleast_1d(np.asarray(row[names[c.upper()]], dtype=np.float64)).ravel() for c in value_cols]
    n = min([wave.size] + [v.size for v in vals])
    if "NELEM" in names:
        n = min(n, int(row[names["NELEM"]]))
    wave, vals = wave[:n], [v[:n] for v in vals]
    good = np.isfinite(wave) & (wave > 0)   # zero/NaN padding of fixed-width array columns
    wave, vals = wave[good], [v[good] for v in vals]
    if wave.size == 0:
        raise InputError(path, f"empty {wave_col} array")
    order = np.argsort(wave, kind="stable")
    wave, vals = wave[order], [v[order] for v in vals]
    if wave.max() < 1e-4:      # metres (official files) -> micrometres
        wave = wave * 1e6
    return (wave, *vals)


def interp_nan(x, xp, fp):
    """Linear interpolation of (xp, fp) at ``x``; NaN outside [xp[0], xp[-1]] and where x is NaN."""
    x = np.asarray(x, dtype=np.float64)
    if xp.size == 1:
        return np.where(x == xp[0], fp[0], np.nan)
    return np.interp(x, xp, fp, left=np.nan, right=np.nan)


def mark(model, key, status):
    model.primary[f"S_{key}"] = status


def record_ref(model, reftype, path):
    key = REF_KEYWORDS.get(reftype, f"R_{reftype.upper()}"[:8])
    model.primary[key] = os.path.basename(str(path)) if path is not None else "N/A"


def source_type(slit, model, override=None):
    """"POINT" or "EXTENDED" (anything not POINT) from the user value, else SRCTYPE."""
    value = override if override is not None else slit.header.get("SRCTYPE", model.primary.get("SRCTYPE", ""))
    return "POINT" if str(value).strip().upper() == "POINT" else "EXTENDED"


def slit_label(slit, model):
    """The slit's name for reference lookups: SLTNAME, else the primary FXD_SLIT (single layout)."""
    name = str(slit.header.get("SLTNAME", "") or "").strip()
    if not name and model.layout == "single":
        name = str(model.primary.get("FXD_SLIT", "") or "").strip()
    return name
