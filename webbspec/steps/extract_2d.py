"""extract_2d: cut each NIRSpec fixed slit's bounding box out of the full-frame image.

Input: the output of assign_wcs (full-frame SCI/ERR/DQ/VAR_* plus WAVELENGTH/XI/ETA and the
``SLITS`` table of bounding boxes). Output: a ``layout="multi"`` model (MultiSlitModel), one slit
per box with SCI, ERR, DQ, VAR_POISSON, VAR_RNOISE (VAR_FLAT if present), WAVELENGTH, XI, ETA and
the slit keywords: SLTNAME, SLITID, SOURCEID (official FS rule: FXD_SLIT slit 1, others
10*num(FXD_SLIT) + num(slit)), SRCNAME, SRCXPOS/SRCYPOS (FXD_SLIT slit: the SLITS table's SRCXPOS/
SRCYPOS, the target's position in slit units that assign_wcs found through the optical model as the
official extract_2d does; older tables: (XOFFSET - XA)/WIDTH, (YOFFSET - YA)/LENGTH; others 0), SRCRA/SRCDEC (TARG_RA/DEC for
the FXD_SLIT slit), SLTSTRT1/2 (1-based), SLTSIZE1/2, DISPAXIS 1, SPORDER 1, WSREFRA/WSREFDE.
``slit_names`` / ``source_ids`` restrict which slits are cut. The WFSS/TSO parameters are
accepted with the official names and defaults; they do not apply to NIRSpec slits.

MOS (the mode's ``msa`` flag; a MOS SLITS table): one slit per slitlet row, background slitlets
and virtual sources included, in the table's (official) order: the cutout of SCI, ERR, DQ, VAR_*,
and WAVELENGTH, XI, ETA, SLIT_Y evaluated on it through the optical model
(:func:`webbspec.instruments.nirspec.mos.cutout_coordinates`; hence the optical REFTYPES), with the
official MOS slit keywords (:func:`webbspec.instruments.nirspec.mos_table.slit_keywords`). A
slitlet without one pixel inside the wavelength range, or without one valid pixel there (finite
SCI, no DO_NOT_USE), is left out with a warning naming the file and the slitlet; the others are cut
(departure: the official keeps such a slitlet, all NaN, until extract_1d skips it as empty).
"""

import logging

import numpy as np

from ..dq import DO_NOT_USE
from ..io.datamodels import Model, Slit, copy_header
from ..errors import InputError
from ..instruments.nirspec import mos, mos_table
from ..instruments.nirspec.optics import OPTICAL_REFTYPES, Optics
from .assign_wcs import text
from ._call import accepts_files
from ._memo import freeze

log = logging.getLogger(__name__)

REFTYPES = OPTICAL_REFTYPES     # MOS slitlets are evaluated here (fixed slits need none)
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): the slit bounding boxes and per-pixel coordinates
NEEDS = ("assign_wcs",)

FIXED_SLIT_NUMS = {"NONE": 0, "S200A1": 1, "S200A2": 2, "S400A1": 3, "S1600A1": 4, "S200B1": 5}
_ARRAYS = ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT", "WAVELENGTH", "XI", "ETA")
# image keywords carried into each slit
_COPY = ("BUNIT", "WSREFRA", "WSREFDE", "SPECSYS")


def fs_source_id(slit_name, primary):
    """Official fixed-slit source id."""
    name, primary = slit_name.upper(), (primary or "NONE").upper()
    if name == primary:
        return 1
    return 10 * FIXED_SLIT_NUMS.get(primary, 0) + FIXED_SLIT_NUMS.get(name, 0)


@accepts_files
def run(model, refs=None, *, slit_names=None, source_ids=None, source_ra=None, source_dec=None,
        source_max_sep=2.0, extract_orders=None, grism_objects=None, tsgrism_extract_height=None,
        wfss_extract_half_height=5, wfss_mmag_extract=None, wfss_nbright=1000):
    """Cut the slits of ``model`` (an assign_wcs output) into a new multi-slit model."""
    where = model.path or "extract_2d"
    if str(model.primary.get("GRATING", "")).upper() == "MIRROR":
        out = model.copy()
        out.primary["S_EXTR2D"] = "SKIPPED"
        return out
    if "SLITS" not in model.tables or model.primary.get("S_WCS") != "COMPLETE":
        raise InputError(where, "no slit bounding boxes: run assign_wcs first")
    img = model.slits[0]
    boxes = model.tables["SLITS"]
    p = model.primary
    want_names = None if slit_names is None else {str(n).strip().upper() for n in _as_list(slit_names)}
    want_ids = None if source_ids is None else {int(i) for i in _as_list(source_ids)}
    if mos_table.is_mos_table(boxes):
        slits = _slitlets(model, refs, want_names, want_ids, where)
    else:
        slits = _fixed_slits(img, p, boxes, want_names, want_ids, where)
    if not slits and want_names is None and want_ids is None:
        raise InputError(where, "no slit left: every slit lacks valid pixels or a wavelength (see the warnings)")
    if not slits:
        raise InputError(where, "no slit selected (slit_names/source_ids match nothing)")
    primary = p.copy()
    primary["DATAMODL"] = "MultiSlitModel"
    primary["S_EXTR2D"] = "COMPLETE"
    tables = {k: v for k, v in model.tables.items() if k != "SLITS"}
    return Model(primary, slits, "multi", tables, None, model.path)


def _fixed_slits(img, p, boxes, want_names, want_ids, where):
    missing = [k for k in ("WAVELENGTH", "XI", "ETA") if k not in img]
    if missing:
        raise InputError(where, f"no per-pixel coordinates ({', '.join(missing)}): run assign_wcs first")
    primary_slit = str(p.get("FXD_SLIT", "NONE")).strip().upper()
    slits = []
    for row in boxes:
        name = text(row["SLIT_NAME"])
        sid = fs_source_id(name, primary_slit)
        if (want_names is not None and name.upper() not in want_names) or \
                (want_ids is not None and sid not in want_ids):
            continue
        x0, x1, y0, y1 = (int(row[k]) for k in ("XSTART", "XSTOP", "YSTART", "YSTOP"))
        arrays = {k: np.array(img[k][..., y0:y1 + 1, x0:x1 + 1], copy=True) for k in _ARRAYS if k in img}
        slits.append(Slit(_slit_header(img, p, row, name, sid, primary_slit, x0, y0, x1 - x0 + 1, y1 - y0 + 1),
                          arrays))
    return slits


def _slitlets(model, refs, want_names, want_ids, where):
    """The MOS slitlets of the SLITS table, cut and evaluated (see module docstring)."""
    img = model.slits[0]
    keys = {**dict(model.primary.items()), **dict(img.header.items())}
    optics = Optics({rt: (refs or {}).get(rt, "N/A") for rt in REFTYPES}, keys, where)
    slits = []
    for row in mos_table.rows(model.tables["SLITS"]):
        if (want_names is not None and row["SLIT_NAME"].upper() not in want_names) or \
                (want_ids is not None and int(row["SOURCE_ID"]) not in want_ids):
            continue
        x0, x1, y0, y1 = (int(row[k]) for k in ("XSTART", "XSTOP", "YSTART", "YSTOP"))
        coords = mos.cutout_coordinates(optics, (row["QUADRANT"], row["XCEN"], row["YCEN"]), (x0, x1, y0, y1),
                                        (row["SLIT_YMIN"], row["SLIT_YMAX"]), (row["REF_RA"], row["REF_DEC"]))
        if not np.isfinite(coords["WAVELENGTH"]).any():
            log.warning("%s: slitlet %s (source %s) has no pixel inside the wavelength range; left out",
                        where, row["SLIT_NAME"], row["SOURCE_ID"])
            continue
        arrays = {k: np.array(img[k][..., y0:y1 + 1, x0:x1 + 1], copy=True) for k in _ARRAYS[:6] if k in img}
        if not _has_valid_pixel(arrays, coords["WAVELENGTH"]):
            log.warning("%s: slitlet %s (source %s) has no valid pixel (all NaN or DO_NOT_USE); left out",
                        where, row["SLIT_NAME"], row["SOURCE_ID"])
            continue
        arrays.update({k: freeze(v) for k, v in coords.items()})    # (read-only: their digests kept)
        h = copy_header(img.header)
        for key in _COPY:
            if key not in h and key in model.primary:
                h[key] = model.primary[key]
        for key, card in mos_table.slit_keywords(row).items():
            h[key] = card
        h["SLTSTRT1"] = (x0 + 1, "1-based first column of the slit cutout")
        h["SLTSTRT2"] = (y0 + 1, "1-based first row of the slit cutout")
        h["SLTSIZE1"] = (x1 - x0 + 1, "columns")
        h["SLTSIZE2"] = (y1 - y0 + 1, "rows")
        h["DISPAXIS"] = 1
        h["SPORDER"] = 1
        slits.append(Slit(h, arrays))
    return slits


def _has_valid_pixel(arrays, wavelength):
    """Whether a cutout holds a pixel with a wavelength, a finite SCI and no DO_NOT_USE flag (in
    any integration): one without (a slitlet lost to bad pixels or to a broken exposure) would fail
    the exposure's later steps."""
    ok = np.isfinite(arrays["SCI"]) & np.isfinite(wavelength)
    if "DQ" in arrays:
        ok &= (arrays["DQ"] & DO_NOT_USE) == 0
    return bool(ok.any())


def _as_list(value):
    if isinstance(value, str):
        return [v for v in value.replace(",", " ").split() if v]
    return list(value)


def _slit_header(img, p, row, name, sid, primary_slit, x0, y0, nx, ny):
    h = img.header.copy()
    for key in _COPY:
        if key not in h and key in p:
            h[key] = p[key]
    is_primary = name.upper() == primary_slit
    h["SLTNAME"] = (name, "slit name")
    h["SLITID"] = (FIXED_SLIT_NUMS.get(name.upper(), 0), "slit id")
    h["SOURCEID"] = (sid, "source id")
    h["SRCNAME"] = (str(p.get("TARGNAME", "")) if is_primary else "", "source name")
    xpos = ypos = 0.0
    if is_primary:
        try:                                # assign_wcs placed the target through the optics
            xpos, ypos = float(row["SRCXPOS"]), float(row["SRCYPOS"])
        except (KeyError, ValueError, IndexError):
            xpos = (float(p.get("XOFFSET", 0.0)) - float(row["XA"])) / float(row["WIDTH"])
            ypos = (float(p.get("YOFFSET", 0.0)) - float(row["YA"])) / float(row["LENGTH"])
        if "TARG_RA" in p and "TARG_DEC" in p:
            h["SRCRA"] = (float(p["TARG_RA"]), "[deg] source RA")
            h["SRCDEC"] = (float(p["TARG_DEC"]), "[deg] source Dec")
    h["SRCXPOS"] = (xpos, "source position across the slit (slit widths)")
    h["SRCYPOS"] = (ypos, "source position along the slit (slit lengths)")
    h["SLTSTRT1"] = (x0 + 1, "1-based first column of the slit cutout")
    h["SLTSTRT2"] = (y0 + 1, "1-based first row of the slit cutout")
    h["SLTSIZE1"] = (nx, "columns")
    h["SLTSIZE2"] = (ny, "rows")
    h["DISPAXIS"] = 1
    h["SPORDER"] = 1
    return h
