"""flat_field and photom for MIRI MRS (called by steps/flat_field.py and steps/photom.py).

Both references are full-frame images per DETECTOR / CHANNEL / BAND, read with astropy:

* ``flat`` (official FlatModel: SCI, ERR, DQ): as the official apply_flat_field: a NaN or 0 flat
  -> DQ |= DO_NOT_USE | NO_FLAT_FIELD, NO_FLAT_FIELD -> DO_NOT_USE, flagged flats count as 1;
  SCI /= f, VAR_POISSON, VAR_RNOISE /= f^2, VAR_FLAT = (SCI_new * ferr / f)^2, ERR = sqrt(sum VAR);
  DQ |= flat DQ. ``inverse``: SCI, VAR_* *= f (f^2), VAR_FLAT = 0.
* ``photom`` (official MirMrsPhotomModel: SCI [(MJy/sr)/(DN/s)], ERR, DQ, PIXSIZ): SCI, ERR *= c,
  VAR_* *= c^2 (``inverse``: divided), DQ |= photom DQ (NaN -> DO_NOT_USE), BUNIT MJy/sr, PHOTMJSR /
  PHOTUJA2 from the reference's PHOTMJSR keyword. The time-dependent correction needs the
  TIMECOEFF tables: without them it is skipped, as officially.
Then NaN and DO_NOT_USE are made to agree (official match_nans_and_flags).
"""

import numpy as np

from .. import dq as dqbits
from ..errors import InputError
from . import _correction as corr

__all__ = ["flat_field_mrs", "photom_mrs"]

_NOFLAT = dqbits.DO_NOT_USE | dqbits.NO_FLAT_FIELD
A2_TO_SR = (np.pi / 648000.0) ** 2


def _image(hdul, path, name, shape, dtype=np.float64):
    if name not in hdul or hdul[name].data is None:
        return None
    arr = np.asarray(hdul[name].data, dtype)
    if arr.shape != tuple(shape):
        raise InputError(str(path), f"{name} {arr.shape} does not match the image {tuple(shape)}")
    return arr


def flat_field_mrs(model, refs, inverse=False):
    out = model.copy()
    path = corr.ref_path(refs, "flat")
    if path is None:
        corr.mark(out, "FLAT", "SKIPPED")
        return out
    hdul = corr.open_reference(path, "flat", models=("FlatModel",), hdus=("SCI",))
    for slit in out.slits:
        shape = slit.shape[-2:]
        f = _image(hdul, path, "SCI", shape).copy()
        ferr = _image(hdul, path, "ERR", shape)
        ferr = np.zeros(shape) if ferr is None else np.nan_to_num(ferr)
        fdq = _image(hdul, path, "DQ", shape, np.uint32)
        fdq = np.zeros(shape, np.uint32) if fdq is None else fdq.copy()
        fdq |= np.where(np.isnan(f) | (f == 0), np.uint32(_NOFLAT), np.uint32(0))
        fdq |= np.where(fdq & dqbits.NO_FLAT_FIELD, np.uint32(dqbits.DO_NOT_USE), np.uint32(0))
        f[(fdq & dqbits.DO_NOT_USE) != 0] = 1.0
        corr.apply_correction(slit, f, inverse=inverse)
        with np.errstate(invalid="ignore", divide="ignore"):
            vflat = np.zeros(shape) if inverse else (np.asarray(slit["SCI"], np.float64) * ferr / f) ** 2
        slit["VAR_FLAT"] = vflat.astype(np.float32)
        _err_from_variances(slit)
        if "DQ" in slit:
            slit["DQ"] = slit["DQ"] | fdq
        corr.match_nans_and_flags(slit)
    corr.record_ref(out, "flat", path)
    corr.mark(out, "FLAT", "COMPLETE")
    return out


def _err_from_variances(slit):
    total = sum(np.asarray(slit[v], np.float64) for v in corr.VAR_NAMES if v in slit)
    slit["ERR"] = np.sqrt(total).astype(np.float32)


def photom_mrs(model, refs, inverse=False):
    out = model.copy()
    path = corr.ref_path(refs, "photom")
    if path is None:
        corr.mark(out, "PHOTOM", "SKIPPED")
        return out
    hdul = corr.open_reference(path, "photom", models=("MirMrsPhotomModel",), hdus=("SCI",))
    for slit in out.slits:
        shape = slit.shape[-2:]
        c = _image(hdul, path, "SCI", shape)
        pdq = _image(hdul, path, "DQ", shape, np.uint32)
        pdq = np.zeros(shape, np.uint32) if pdq is None else pdq
        pdq = pdq | np.where(np.isnan(c), np.uint32(dqbits.DO_NOT_USE), np.uint32(0))
        corr.apply_correction(slit, c, inverse=not inverse)        # multiply by the conversion
        if "DQ" in slit:
            slit["DQ"] = slit["DQ"] | pdq
        slit.header["BUNIT"] = "DN/s" if inverse else "MJy/sr"
        corr.match_nans_and_flags(slit)
    conv = hdul[0].header.get("PHOTMJSR")
    if conv is not None:
        out.primary["PHOTMJSR"] = (float(conv), "[MJy/sr per DN/s] scalar conversion")
        out.primary["PHOTUJA2"] = (float(conv) * 1e12 * A2_TO_SR, "[uJy/arcsec^2 per DN/s]")
    corr.record_ref(out, "photom", path)
    corr.mark(out, "PHOTOM", "COMPLETE")
    return out
