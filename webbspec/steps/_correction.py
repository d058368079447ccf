"""Shared helpers of the multiplicative Stage 2 corrections (flat_field, pathloss, photom, ...).

* :func:`apply_correction`: divide a slit by a correction ``c`` (S/=c, E/=c, VAR_*/=c**2), or
  multiply with ``inverse=True``; ``c`` broadcasts over a leading integration axis (rateints).
* :func:`match_nans_and_flags`: the official rule after each correction -- a pixel NaN in any of
  SCI/ERR/VAR_* or flagged DO_NOT_USE becomes DO_NOT_USE and NaN in all of them.
* Reference helpers: :func:`ref_path` (refs dict -> path or None), :func:`open_reference`
  (in-memory HDUList; InputError naming a missing/unreadable file), :func:`check_reference` (the
  file is the official model its reftype needs: REFTYPE, DATAMODL, extensions) and
  :func:`interp_nan` (linear interpolation, NaN outside the tabulated range).
* Bookkeeping: :func:`mark` (S_<KEY>), :func:`record_ref` (the official R_<REFTYPE> keyword
  of ``io.provenance`` = basename), :func:`source_type` (SRCTYPE with a user override).
"""

import os

import numpy as np
from astropy.io import fits

from .. import dq as dqbits
from ..errors import InputError
from ..io.provenance import reference_keyword

__all__ = ["VAR_NAMES", "NAN_NAMES", "apply_correction", "match_nans_and_flags", "flag_where", "ref_path",
           "open_reference", "interp_nan", "mark", "record_ref",
           "source_type", "slit_label", "check_reference"]

VAR_NAMES = ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")
NAN_NAMES = ("SCI", "ERR") + VAR_NAMES


def apply_correction(slit, c, inverse=False):
    """S/=c, ERR/=c, VAR_*/=c**2 in place on ``slit`` (times with ``inverse``); float64 math.

    Arrays keep their dtype. Where ``c`` is NaN the data become NaN (``match_nans_and_flags``
    then flags them); a zero divisor is the caller's business (they replace it first).
    """
    c = np.asarray(c, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = c if inverse else 1.0 / c
        f2 = None
        for name in ("SCI", "ERR") + VAR_NAMES:
            if name in slit:
                if name in VAR_NAMES and f2 is None:
                    f2 = f * f
                slit[name] = _times(slit[name], f if name in ("SCI", "ERR") else f2)


def _times(a, f):
    """``(a * f).astype(a.dtype)`` without the full-size float64 product: the float64 loop
    writes through numpy's small cast buffer into the new array (the same values)."""
    a = np.asarray(a)
    out = np.empty(np.broadcast_shapes(a.shape, f.shape), a.dtype)
    return np.multiply(a, f, out=out, casting="unsafe")


def match_nans_and_flags(slit):
    """Make NaN and DO_NOT_USE agree across SCI, ERR, VAR_* and DQ (in place)."""
    shape = slit["SCI"].shape
    bad = np.zeros(shape, bool)
    nans = {}
    for name in NAN_NAMES:
        if name in slit and slit[name].shape == shape:
            nans[name] = np.isnan(slit[name])
            bad |= nans[name]
    if "DQ" in slit and slit["DQ"].shape == shape:
        bad |= (slit["DQ"] & dqbits.DO_NOT_USE) != 0
        slit["DQ"] = slit["DQ"] | flag_where(bad)
    nbad = np.count_nonzero(bad)
    for name, nan in nans.items():
        if np.count_nonzero(nan) != nbad:   # NaN wherever bad (nan is within bad): kept, not copied
            arr = np.array(slit[name], copy=True)
            arr[bad] = np.nan
            slit[name] = arr


def flag_where(mask, flag=dqbits.DO_NOT_USE):
    """uint32 ``flag`` where ``mask``, else 0: ``np.where(mask, np.uint32(flag), np.uint32(0))``
    as a cast of the mask (3x quicker)."""
    flags = np.asarray(mask).astype(np.uint32)
    if flag != 1:
        flags *= np.uint32(flag)
    return flags


def ref_path(refs, reftype, override=None):
    """Path of reference ``reftype`` (``override`` wins), or None when it is "N/A"/missing."""
    path = override if override is not None else (refs or {}).get(reftype)
    if path is None or str(path).strip().upper() in ("", "N/A", "NONE"):
        return None
    return path


def open_reference(path, reftype, models=(), hdus=()):
    """An in-memory HDUList of a reference file, checked by :func:`check_reference`; InputError
    naming the file if it is missing, unreadable or not the model ``reftype`` needs."""
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
    check_reference(out, path, reftype, models, hdus)
    return out


def check_reference(hdul, path, reftype, models=(), hdus=()):
    """InputError unless the PRIMARY REFTYPE is ``reftype``, DATAMODL (when present) one of
    ``models`` (the official classes) and every extension in ``hdus`` is there."""
    hdr = hdul[0].header
    got = str(hdr.get("REFTYPE", "") or "").strip().upper()
    model = str(hdr.get("DATAMODL", "") or "").strip()
    if got != reftype.upper():
        raise InputError(path, f"REFTYPE is {got or '(missing)'!r}, not a {reftype} reference file")
    if models and model and model not in models:
        raise InputError(path, f"DATAMODL is {model!r}; a {reftype} reference must be {' or '.join(models)}")
    missing = [h for h in hdus if h not in hdul]
    if missing:
        raise InputError(path, f"{reftype} reference has no {', '.join(missing)} extension")


def interp_nan(x, xp, fp):
    """Linear interpolation of (xp, fp) at ``x``; NaN outside [xp[0], xp[-1]] and where x is NaN."""
    x = np.asarray(x, dtype=np.float64)
    if xp.size == 1:
        return np.where(x == xp[0], fp[0], np.nan)
    return np.interp(x, xp, fp, left=np.nan, right=np.nan)


def mark(model, key, status):
    model.primary[f"S_{key}"] = status


def record_ref(model, reftype, path):
    key = reference_keyword(reftype)
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
