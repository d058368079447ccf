"""assign_wcs: evaluate the instrument's optical model once, as per-pixel arrays.

Fixed slits: a thin adapter over :mod:`webbspec.instruments.nirspec.fs`: the NIRSpec optical-model reference
files (official formats: fpa, camera, collimator, disperser, fore, msa, ote, wavelengthrange)
and the `_rate` keywords the official assign_wcs reads give, for every pixel of every open slit
(slit_y_low <= y_slit <= slit_y_high, wavelength inside the wavelengthrange reference), the
full-frame image's WAVELENGTH [um] and XI/ETA [arcsec: tangent-plane offsets from
WSREFRA/WSREFDE = RA_REF/DEC_REF, written to the SCI header]; NaN elsewhere.
``model.tables["SLITS"]`` lists each slit's bounding box (0-based inclusive XSTART..XSTOP,
YSTART..YSTOP in the image) with its name, size [arcsec], centre in the aperture frame (XA, YA
[arcsec]) and the target's position in the slit (SRCXPOS, SRCYPOS; official rule, primary slit
only) for extract_2d.

MOS (the mode's ``msa`` flag): the slitlets of the MSA metadata file (MSAMETFL beside the `_rate`,
:mod:`webbspec.instruments.nirspec.msa`) that reach the detector, each with the official extract_2d
cutout (:mod:`webbspec.instruments.nirspec.mos`). The image is kept as it is; ``SLITS`` holds one
row per slitlet (:mod:`webbspec.instruments.nirspec.mos_table`: cutout, slit-frame extent, XI/ETA
reference point, source metadata). The per-pixel arrays of a slitlet are evaluated on its cutout by
extract_2d (cutouts overlap, so they cannot share full-frame arrays; msa_flagging and the
background steps between the two need none).
"""

import os

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..instruments.nirspec import fs, ifu, mos, mos_table
from ..io.provenance import reference_keyword
from ..modes import known_mode
from ._call import accepts_files
from ..instruments.miri import is_mrs
from ..instruments.miri.mrs import REFTYPES as _mrs_reftypes

REFTYPES = fs.REFTYPES + ifu.IFU_REFTYPES     # NRS_IFU adds ifufore, ifupost, ifuslicer, chromcorr
REFTYPES = REFTYPES + tuple(rt for rt in _mrs_reftypes if rt not in REFTYPES)   # MIRI MRS


@accepts_files
def run(model, refs, *, slit_y_low=-0.55, slit_y_high=0.55):
    """Attach WAVELENGTH/XI/ETA and the SLITS table to a copy of the rate image ``model``.

    The copy shares the input's arrays (the step adds arrays, it changes none).
    (The official imaging/IFU parameters sip_* and nrs_ifu_slice_wcs have no use here.)
    """
    where = model.path or "assign_wcs"
    if is_mrs(model.exp_type):
        from ._assign_wcs_mrs import run_mrs
        return run_mrs(model, refs)
    mode = known_mode(model.exp_type)
    if mode is None or not (mode.fixed_slits or mode.msa or mode.name == ifu.MODE):
        raise InputError(where, f"assign_wcs has no model for EXP_TYPE {model.exp_type!r}")
    if model.layout != "single" or len(model.slits) != 1:
        raise InputError(where, "expected a single full-frame image")
    refs = {rt: (refs or {}).get(rt, "N/A") for rt in REFTYPES}
    out = model.copy(arrays=False)
    img = out.slits[0]
    p = out.primary
    # the pointing keywords (RA_REF, V2_REF, VA_SCALE, ...) live in the SCI header of official
    # products, the others in the PRIMARY
    keys = {**dict(p.items()), **dict(img.header.items())}
    out.tables = dict(out.tables)
    if mode.name == ifu.MODE:
        _ifu_slices(img, keys, refs, (slit_y_low, slit_y_high), where, out)
    elif mode.msa:
        boxes = mos.exposure_slitlets(keys, img.shape[-2:], refs, where, (slit_y_low, slit_y_high), arrays=False)
        out.tables["SLITS"] = mos_table.table(boxes)
    else:
        _fixed_slits(img, keys, refs, (slit_y_low, slit_y_high), where, out)
    img.header["DISPAXIS"] = (1, "dispersion direction")
    img.header["SPECSYS"] = "BARYCENT"
    p["S_WCS"] = "COMPLETE"
    for rt in (ifu.REFTYPES if mode.name == ifu.MODE else fs.REFTYPES):
        p[reference_keyword(rt)] = os.path.basename(str(refs[rt]))
    return out


def _fixed_slits(img, keys, refs, y_range, where, out):
    """Full-frame WAVELENGTH/XI/ETA of the open fixed slits and their SLITS table."""
    coords, boxes = fs.exposure_coordinates(keys, img.shape[-2:], refs, y_range, where)
    for key in ("WAVELENGTH", "XI", "ETA"):
        img[key] = coords[key]
    img.header["WSREFRA"] = (float(keys["RA_REF"]), "[deg] RA of the XI/ETA reference")
    img.header["WSREFDE"] = (float(keys["DEC_REF"]), "[deg] Dec of the XI/ETA reference")
    out.tables["SLITS"] = _box_table(boxes)


def _ifu_slices(img, keys, refs, y_range, where, out):
    """NIRSpec IFU: the full-frame per-pixel arrays of the 30 slices (docs/internals.md, IFU
    section), SLICEWID and the SLICES table (each slice's image bounding box)."""
    coords, boxes, width = ifu.exposure_coordinates(keys, img.shape[-2:], refs, y_range, where)
    for key in ifu.ARRAYS:
        img[key] = coords[key]
    img.header["WSREFRA"] = (float(keys["RA_REF"]), "[deg] RA of the XI/ETA reference")
    img.header["WSREFDE"] = (float(keys["DEC_REF"]), "[deg] Dec of the XI/ETA reference")
    img.header["SLICEWID"] = (width, "[arcsec] IFU slice width on the sky")
    out.tables["SLICES"] = ifu.slice_table(boxes)


def text(value):
    """A FITS string cell as str (bytes from numpy copies of FITS_rec are decoded)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip()


def _box_table(boxes):
    col = {k: [getattr(b, k) for b in boxes] for k in boxes[0].__dataclass_fields__}
    cols = [fits.Column(name="SLIT_NAME", format="8A", array=col["name"])]
    cols += [fits.Column(name=k.upper(), format="J", array=np.array(col[k], np.int32))
             for k in ("xstart", "xstop", "ystart", "ystop")]
    cols += [fits.Column(name=k.upper(), format="D", unit=u, array=np.array(col[k], float))
             for k, u in (("width", "arcsec"), ("length", "arcsec"), ("xa", "arcsec"), ("ya", "arcsec"),
                          ("srcxpos", None), ("srcypos", None))]
    return fits.FITS_rec.from_columns(cols)   # (a BinTableHDU would import astropy.table: 0.4 s)
