"""The SLITS table of a NIRSpec MOS exposure: what assign_wcs found for each slitlet on the detector
(its cutout, slit-frame extent and reference point, and the MSA metadata of its source), one row per
slitlet in the official order. extract_2d cuts, names and evaluates the slitlets from it, so the
MSA metadata file is read once, where the `_rate` sits.

:func:`table` writes the rows (a FITS_rec: it travels in ``Model.tables["SLITS"]`` and in the
step's FITS file), :func:`rows` reads them back as plain dicts, :func:`slit_keywords` gives the
official slit keywords of a row (SLTNAME, SLITID = slitlet id, SHUTTRID, SOURCEID, SRCNAME,
SRCALIAS, STLARITY, SRCXPOS/SRCYPOS, SHUTSTA, MSAQUAD, SRCRA/SRCDEC, SLTXSCL/SLTYSCL) plus ours:
XCEN/YCEN (the reference shutter's row and column, which the official keeps in its ASDF tree only),
SLTYMIN/SLTYMAX (the slit-frame extent) and WSREFRA/WSREFDE (the XI/ETA reference).
"""

import numpy as np
from astropy.io import fits

__all__ = ["table", "rows", "slit_keywords", "is_mos_table", "shutter_of"]

# (column, FITS format, SlitletBox -> value)
_COLUMNS = (
    ("SLIT_NAME", "16A", lambda b: b.name),
    ("XSTART", "J", lambda b: b.xstart), ("XSTOP", "J", lambda b: b.xstop),
    ("YSTART", "J", lambda b: b.ystart), ("YSTOP", "J", lambda b: b.ystop),
    ("SLITLET_ID", "J", lambda b: b.slitlet.slitlet_id),
    ("SOURCE_ID", "J", lambda b: b.slitlet.source_id),
    ("SOURCE_NAME", "64A", lambda b: b.slitlet.source_name),
    ("SOURCE_ALIAS", "64A", lambda b: b.slitlet.source_alias),
    ("STELLARITY", "D", lambda b: b.slitlet.stellarity),
    ("SRCXPOS", "D", lambda b: b.slitlet.source_xpos), ("SRCYPOS", "D", lambda b: b.slitlet.source_ypos),
    ("SOURCE_RA", "D", lambda b: b.slitlet.source_ra), ("SOURCE_DEC", "D", lambda b: b.slitlet.source_dec),
    ("QUADRANT", "J", lambda b: b.slitlet.quadrant),
    ("XCEN", "J", lambda b: b.slitlet.xcen), ("YCEN", "J", lambda b: b.slitlet.ycen),
    ("SHUTTER_ID", "J", lambda b: b.slitlet.shutter_id),
    ("SHUTTER_STATE", "64A", lambda b: b.slitlet.shutter_state),
    ("SLIT_YMIN", "D", lambda b: b.ymin), ("SLIT_YMAX", "D", lambda b: b.ymax),
    ("SLIT_XSCALE", "D", lambda b: b.slit_xscale), ("SLIT_YSCALE", "D", lambda b: b.slit_yscale),
    ("REF_RA", "D", lambda b: b.ra_ref), ("REF_DEC", "D", lambda b: b.dec_ref),
    ("BACKGROUND", "J", lambda b: int(b.slitlet.background)),
    ("VIRTUAL", "J", lambda b: int(b.slitlet.virtual)),
)


def table(boxes):
    """The SLITS table (FITS_rec) of :class:`~.mos.SlitletBox` es."""
    cols = [fits.Column(name=n, format=f, array=np.array([get(b) for b in boxes])) for n, f, get in _COLUMNS]
    return fits.FITS_rec.from_columns(cols)


def is_mos_table(data):
    """Whether a SLITS table holds MOS slitlets (rather than fixed slits)."""
    return "SHUTTER_STATE" in data.columns.names


def _value(v):
    if isinstance(v, bytes):
        v = v.decode("ascii", "replace")
    if isinstance(v, str):
        return v.strip()
    return v.item() if hasattr(v, "item") else v


def rows(data):
    """The rows of a SLITS table as dicts {column: python value}."""
    names = data.columns.names
    cols = {n: np.asarray(data[n]) for n in names}
    return [{n: _value(cols[n][i]) for n in names} for i in range(len(data))]


def slit_keywords(row):
    """{keyword: (value, comment)} of an extracted slitlet (see module docstring)."""
    return {
        "SLTNAME": (row["SLIT_NAME"], "slit name"),
        "SLITID": (int(row["SLITLET_ID"]), "slitlet id"),
        "SHUTTRID": (int(row["SHUTTER_ID"]), "shutter id of the reference shutter"),
        "SOURCEID": (int(row["SOURCE_ID"]), "source id"),
        "SRCNAME": (row["SOURCE_NAME"], "source name"),
        "SRCALIAS": (row["SOURCE_ALIAS"], "source alias"),
        "STLARITY": (float(row["STELLARITY"]), "source stellarity"),
        "SRCXPOS": (float(row["SRCXPOS"]), "source position across the slit (shutter widths)"),
        "SRCYPOS": (float(row["SRCYPOS"]), "source position along the slit (shutter heights)"),
        "SHUTSTA": (row["SHUTTER_STATE"], "status of the slitlet's shutters (x: the source's)"),
        "MSAQUAD": (int(row["QUADRANT"]), "MSA quadrant"),
        "XCEN": (int(row["XCEN"]), "reference shutter row (MSA x)"),
        "YCEN": (int(row["YCEN"]), "reference shutter column (MSA y)"),
        "SRCRA": (float(row["SOURCE_RA"]), "[deg] source RA"),
        "SRCDEC": (float(row["SOURCE_DEC"]), "[deg] source Dec"),
        "SLTXSCL": (float(row["SLIT_XSCALE"]), "shutter pitch / open width (x)"),
        "SLTYSCL": (float(row["SLIT_YSCALE"]), "shutter pitch / open height (y)"),
        "SLTYMIN": (float(row["SLIT_YMIN"]), "slit-frame y of the slitlet's lower edge"),
        "SLTYMAX": (float(row["SLIT_YMAX"]), "slit-frame y of the slitlet's upper edge"),
        "WSREFRA": (float(row["REF_RA"]), "[deg] RA of the XI/ETA reference"),
        "WSREFDE": (float(row["REF_DEC"]), "[deg] Dec of the XI/ETA reference"),
    }


def shutter_of(header, where="slit"):
    """(quadrant, row, column) of a MOS slitlet's reference shutter from its keywords: MSAQUAD
    and XCEN/YCEN, or the official SHUTTRID = row + (column - 1) * 365 when XCEN/YCEN are absent
    (official products keep those in their ASDF tree only)."""
    from ...errors import InputError
    from .msa import SHUTTERS_PER_COLUMN

    q = header.get("MSAQUAD")
    if q is None:
        raise InputError(where, f"slitlet {header.get('SLTNAME', '?')} has no MSAQUAD keyword")
    if header.get("XCEN") is not None and header.get("YCEN") is not None:
        return int(q), int(header["XCEN"]), int(header["YCEN"])
    sid = header.get("SHUTTRID")
    if sid is None:
        raise InputError(where, f"slitlet {header.get('SLTNAME', '?')} has neither XCEN/YCEN nor SHUTTRID")
    row, col = (int(sid) - 1) % SHUTTERS_PER_COLUMN + 1, (int(sid) - 1) // SHUTTERS_PER_COLUMN + 1
    return int(q), row, col
