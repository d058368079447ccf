"""NIRSpec fixed slits: slit names and source ids, which slits a subarray opens, the reference
types assign_wcs needs, and the per-pixel coordinates of an exposure.

:func:`exposure_coordinates` is assign_wcs for this mode: for every open slit whose light reaches
the image it evaluates :class:`~.optics.Optics` on the slit's bounding box (x_slit = 0, the
official convention) and returns full-image float32 arrays WAVELENGTH [um], XI, ETA [arcsec:
gnomonic offsets from (RA_REF, DEC_REF)] and SLIT_Y (slit-frame y, slit units), NaN off the
slits, plus one row per slit for the SLITS table (image bounding box, size and position).
"""

from dataclasses import dataclass

import numpy as np

from ...errors import InputError
from .optics import FS_ROWS, OPTICAL_REFTYPES, Optics, require_pointing

__all__ = ["MODE", "EXP_TYPE", "REF_EXP_TYPES", "EXP_TYPES", "REFTYPES", "SLIT_NAMES", "FIXED_SLIT_NUMS", "source_id",
           "open_slits",
           "exposure_coordinates", "SlitBox", "SOURCE_POSITION_WAVELENGTH"]

MODE = "nrs_fs"                                # webbspec.modes row
EXP_TYPE = "NRS_FIXEDSLIT"
EXP_TYPES = (EXP_TYPE,)
# P_EXP_TY of the references this mode shares with the other NIRSpec slit exposures
REF_EXP_TYPES = "NRS_FIXEDSLIT|NRS_BRIGHTOBJ|"
REFTYPES = OPTICAL_REFTYPES
SLIT_NAMES = tuple(FS_ROWS)                     # official order
FIXED_SLIT_NUMS = {"NONE": 0, **{n: i + 1 for i, n in enumerate(SLIT_NAMES)}}
# subarrays that open one slit (official rule); every other subarray (FULL, ALLSLITS) opens all
_ONE_SLIT = {"SUBS200A1": "S200A1", "SUBS200A2": "S200A2", "SUBS400A1": "S400A1", "SUBS200B1": "S200B1",
             "SUB2048": "S1600A1", "SUB512": "S1600A1", "SUB512S": "S1600A1", "SUB1024A": "S1600A1",
             "SUB1024B": "S1600A1"}
# the official extract_2d places the source in the slit through the WCS at this wavelength
SOURCE_POSITION_WAVELENGTH = 2.0e-6   # m


def source_id(slit_name, primary):
    """Official FS source id: the primary slit (FXD_SLIT) 1, others 10*num(primary) + num(slit)."""
    name, primary = str(slit_name).upper(), str(primary or "NONE").upper()
    if name == primary:
        return 1
    return 10 * FIXED_SLIT_NUMS.get(primary, 0) + FIXED_SLIT_NUMS.get(name, 0)


def open_slits(subarray):
    """The fixed slits an exposure in ``subarray`` opens (official rule)."""
    one = _ONE_SLIT.get(str(subarray or "").strip().upper())
    return (one,) if one else SLIT_NAMES


@dataclass
class SlitBox:
    """One slit on the image: bounding box (0-based inclusive, image pixels) and its geometry."""

    name: str
    xstart: int
    xstop: int
    ystart: int
    ystop: int
    width: float        # arcsec across the slit (on the sky)
    length: float       # arcsec along the slit
    xa: float           # slit centre in the aperture (ideal) frame [arcsec]
    ya: float
    srcxpos: float      # the target's position in the slit [slit units] (0 unless primary)
    srcypos: float


def _ideal(header, v2, v3):
    """V2/V3 [arcsec] -> ideal frame (X, Y) [arcsec] of the aperture (V2_REF, V3_REF, V3I_YANG,
    VPARITY)."""
    v2r, v3r = float(header["V2_REF"]), float(header["V3_REF"])
    ang = np.radians(float(header.get("V3I_YANG", 0.0)))
    par = float(header.get("VPARITY", -1))
    dx, dy = np.asarray(v2) - v2r, np.asarray(v3) - v3r
    return par * (dx * np.cos(ang) - dy * np.sin(ang)), dx * np.sin(ang) + dy * np.cos(ang)


def _from_ideal(header, x, y):
    v2r, v3r = float(header["V2_REF"]), float(header["V3_REF"])
    ang = np.radians(float(header.get("V3I_YANG", 0.0)))
    par = float(header.get("VPARITY", -1))
    return (v2r + par * x * np.cos(ang) + y * np.sin(ang), v3r - par * x * np.sin(ang) + y * np.cos(ang))


def _slit_geometry(optics, header, name, primary):
    """(width, length, xa, ya, srcxpos, srcypos) of slit ``name``."""
    lam = SOURCE_POSITION_WAVELENGTH
    v2, v3 = optics.slit_to_v2v3(name, [-0.5, 0.5, 0.0, 0.0, 0.0], [0.0, 0.0, -0.5, 0.5, 0.0], lam)
    width = float(np.hypot(v2[1] - v2[0], v3[1] - v3[0]))
    length = float(np.hypot(v2[3] - v2[2], v3[3] - v3[2]))
    xa, ya = (float(v) for v in _ideal(header, v2[4], v3[4]))
    xpos = ypos = 0.0
    if name == primary and "XOFFSET" in header and "YOFFSET" in header:
        sv2, sv3 = _from_ideal(header, float(header["XOFFSET"]), float(header["YOFFSET"]))
        xpos, ypos = (float(v) for v in optics.v2v3_to_slit(name, sv2, sv3, lam))
    return width, length, xa, ya, xpos, ypos


def exposure_coordinates(header, shape, refs, y_range=(-0.55, 0.55), where="assign_wcs"):
    """({WAVELENGTH, XI, ETA, SLIT_Y: (ny, nx) float32}, [SlitBox]) of an image of ``shape``.

    ``header``: the PRIMARY keywords of the `_rate` (a mapping); ``refs``: {reftype: path} with
    every type of :data:`REFTYPES`. A pixel belongs to a slit when its y_slit is inside
    ``y_range`` and its wavelength inside the wavelengthrange reference's range.
    """
    from ...io.skycoords import radec_to_xieta

    exp_type = str(header.get("EXP_TYPE", "")).strip().upper()
    if exp_type not in EXP_TYPES:
        raise InputError(where, f"no fixed-slit model for EXP_TYPE {exp_type!r}")
    require_pointing(header, where)
    optics = Optics(refs, header, where)
    ny, nx = shape
    sx, sy = optics.xstart, optics.ystart
    primary = str(header.get("FXD_SLIT", "NONE")).strip().upper()
    ra0, dec0 = float(header["RA_REF"]), float(header["DEC_REF"])
    lmin, lmax = optics.wavelength_range
    out = {k: np.full((ny, nx), np.nan, np.float32) for k in ("WAVELENGTH", "XI", "ETA", "SLIT_Y")}
    boxes = []
    for name in open_slits(header.get("SUBARRAY")):
        bb = optics.bounding_box(name, y_range)
        if bb is None:
            continue
        x0, x1 = max(bb[0] - sx, 0), min(bb[1] - sx, nx - 1)
        y0, y1 = max(bb[2] - sy, 0), min(bb[3] - sy, ny - 1)
        if x1 < x0 or y1 < y0:
            continue
        yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(float)
        ys, lam = optics.detector_to_slit(name, xx + sx, yy + sy, y_range)
        inside = np.isfinite(lam) & (lam >= lmin) & (lam <= lmax)
        if not inside.any():
            continue
        ys, lam = ys[inside], lam[inside]
        _, (ra, dec) = optics.slit_to_sky(name, 0.0, ys, lam)
        xi, eta = radec_to_xieta(ra, dec, ra0, dec0)
        sub = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        if np.isfinite(out["WAVELENGTH"][sub][inside]).any():
            raise InputError(where, f"slit {name} overlaps another slit on the detector")
        for key, val in (("WAVELENGTH", lam * 1e6), ("XI", xi), ("ETA", eta), ("SLIT_Y", ys)):
            out[key][sub][inside] = val
        rows, cols = np.nonzero(inside)
        boxes.append(SlitBox(name, x0 + int(cols.min()), x0 + int(cols.max()), y0 + int(rows.min()),
                             y0 + int(rows.max()), *_slit_geometry(optics, header, name, primary)))
    if not boxes:
        raise InputError(where, f"no open fixed slit falls on detector {optics.detector}")
    return out, boxes
