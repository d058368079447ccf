"""NIRSpec MOS: each slitlet of an exposure on the detector, and its per-pixel coordinates.

The slitlets come from the MSA metadata file (:mod:`.msa`); the geometry from the optical model
(:class:`~.optics.Optics`, the same chain as the fixed slits). A slitlet's slit frame is its
reference shutter's (the primary one; the middle one of a background slitlet): x_slit, y_slit
in units of that shutter's SIZEX, SIZEY from the msa reference's quadrant table, 0 at its centre,
and along y the frame extends over every open shutter of the slitlet (official extent
``Slitlet.slit_y_limits``: the shutters plus a 0.5 margin at each end).

Bounding box (the official assign_wcs + extract_2d cutout, so that the cutouts are the same):
the slitlet's edges (x_slit = 0, y_slit = ymin and ymax) are projected over the wavelength range
sampled every 1e-10 m; the box spans their x range widened by 11 pixels below and 9 above, and
their y range by 3 below and 1 above, clipped to 0..2047 (the official margins of 10 and 2
pixels, less the 1 it subtracts for 1-based coordinates); a slitlet whose box is off the
detector or thinner than 2 x 1 pixels is not on it. The y range is then narrowed to the rows
whose pixels in that box have a y_slit inside the slitlet (any wavelength), widened the same way.
The cutout holds image pixels x0 = floor(x low) .. floor(x high), same for y.

Per pixel of the box (x_slit = 0, the official convention): y_slit (SLIT_Y) and the wavelength
by the backward chain, RA/Dec by the forward one. Pixels outside the slitlet's y extent or the
wavelengthrange reference's range are NaN (the official WCS also gives wavelengths beyond that
range there). Sky positions are XI/ETA [arcsec] about the slitlet's own reference point (the
reference shutter's centre at the middle of the wavelength range): float32 offsets of a few
arcsec keep sub-microarcsecond precision, which offsets from RA_REF across the 3.6' MSA would not.
"""

from dataclasses import dataclass, field

import numpy as np

from ...errors import InputError
from . import msa
from .optics import OPTICAL_REFTYPES, Optics, require_pointing

__all__ = ["MODE", "EXP_TYPE", "EXP_TYPES", "REFTYPES", "SlitletBox", "shutter_key", "slit_scales",
           "slitlet_box", "exposure_slitlets", "reference_point", "cutout_coordinates", "shutter_footprint",
           "FAILED_OPEN_LIMITS"]

MODE = "nrs_mos"                                 # webbspec.modes row
EXP_TYPE = "NRS_MSASPEC"
EXP_TYPES = (EXP_TYPE,)
REFTYPES = OPTICAL_REFTYPES
LAMBDA_STEP = 1e-10     # m: the official sampling of the slit edges for the bounding box
_LOW_X, _HIGH_X, _LOW_Y, _HIGH_Y = 11, 9, 3, 1   # official box margins [pixels], see docstring
_DET_MAX = 2047
FAILED_OPEN_LIMITS = (-0.5, 0.5)   # official slit-frame extent of a failed-open shutter


@dataclass
class SlitletBox:
    """A slitlet on the image: its cutout (0-based inclusive image pixels) and coordinates."""

    slitlet: msa.Slitlet
    xstart: int
    xstop: int
    ystart: int
    ystop: int
    ymin: float                 # slit-frame extent along the slitlet
    ymax: float
    slit_xscale: float          # official shutter pitch / open size of the quadrant
    slit_yscale: float
    ra_ref: float               # deg: the XI/ETA reference point
    dec_ref: float
    arrays: dict = field(default_factory=dict)   # WAVELENGTH [um], XI, ETA [arcsec], SLIT_Y: float32 (ny, nx)

    @property
    def name(self):
        return self.slitlet.name

    @property
    def shape(self):
        return (self.ystop - self.ystart + 1, self.xstop - self.xstart + 1)


def shutter_key(slitlet):
    """The :class:`Optics` slit key of a slitlet: its reference shutter (quadrant, row, column)."""
    return (slitlet.quadrant, slitlet.xcen, slitlet.ycen)


def slit_scales(optics, quadrant):
    """Official (slit_xscale, slit_yscale) of a quadrant: shutter pitch over open size, from the
    first shutters of its table (XC[1] - XC[0]) / SIZEX[0] and YC[365] / SIZEY[0]."""
    t = optics.quadrant_table(quadrant)
    return (float((t["XC"][1] - t["XC"][0]) / t["SIZEX"][0]),
            float(t["YC"][msa.SHUTTERS_PER_COLUMN] / t["SIZEY"][0]))


def _edges(optics, key, ymin, ymax):
    """Image (x, y) of the slitlet's edges over the wavelength range (official sampling)."""
    lmin, lmax = optics.wavelength_range
    lam = np.linspace(lmin, lmax, int((lmax - lmin) / LAMBDA_STEP))
    x, y = optics.slit_to_detector(key, 0.0, np.array([[ymin], [ymax]]), lam[None, :])
    return x - optics.xstart, y - optics.ystart


def _widen(lo, hi, below, above):
    """Official box edges (pixel-edge floats) of a pixel range widened by the margins."""
    return max(0.0, lo - below) - 0.5, min(float(_DET_MAX), hi + above) + 0.5


def _cutout(optics, key, limits, shape, arrays=True):
    """The official cutout of a slit whose frame spans ``limits`` = (ymin, ymax) (see module
    docstring): ((x0, x1, y0, y1) 0-based inclusive image pixels, y_slit and lam [m] on them (NaN
    outside the limits)), or None when its light misses the detector. ``arrays=False``: the
    bounds only (y_slit and lam None), found by evaluating the box's rows from each end inwards
    up to the first one holding a pixel of the slit, instead of the whole box (the same rows:
    each pixel's evaluation does not depend on the others)."""
    ymin, ymax = limits
    edge_x, edge_y = _edges(optics, key, ymin, ymax)
    if not (np.isfinite(edge_x) & np.isfinite(edge_y)).any():
        return None
    bx = _widen(np.nanmin(edge_x), np.nanmax(edge_x), _LOW_X, _HIGH_X)
    by = _widen(np.nanmin(edge_y), np.nanmax(edge_y), _LOW_Y, _HIGH_Y)
    if bx[0] >= _DET_MAX + 1 or by[0] >= _DET_MAX + 1 or bx[1] <= 0 or by[1] <= 0 \
            or bx[1] - bx[0] < 2 or by[1] - by[0] < 1:
        return None
    # pixels the official refinement looks at (gwcs grid of the box) and the cutout's columns
    gx0, gx1 = int(np.floor(bx[0] + 0.5)), int(np.ceil(bx[1] - 0.5))
    gy0, gy1 = int(np.floor(by[0] + 0.5)), int(np.ceil(by[1] - 0.5))
    cx0, cx1 = gx0, int(np.floor(bx[1] + 0.5)) - 1
    # evaluate rows gy0 - 3 .. gy1 + 1: the narrowed box may reach 3 rows below, 1 above the grid
    ey0, ey1 = max(gy0 - _LOW_Y, 0), min(gy1 + _HIGH_Y, _DET_MAX)
    if arrays:
        yy, xx = np.mgrid[ey0:ey1 + 1, gx0:gx1 + 1].astype(float)
        ys, lam = optics.detector_to_slit(key, xx + optics.xstart, yy + optics.ystart, (ymin, ymax))
        rows = np.nonzero(np.isfinite(lam[gy0 - ey0:gy1 - ey0 + 1]).any(axis=1))[0] + gy0
        rows = (rows.min(), rows.max()) if rows.size else None
    else:
        ys = lam = None
        rows = _outer_rows(optics, key, (ymin, ymax), gx0, gx1, gy0, gy1)
    if rows is not None:
        by = _widen(float(rows[0]), float(rows[1]), _LOW_Y, _HIGH_Y)
    cy0, cy1 = int(np.floor(by[0] + 0.5)), int(np.floor(by[1] + 0.5)) - 1
    # the cutout, clipped to the image (a subarray is smaller than the detector)
    ny, nx = shape
    cx0, cy0, cx1, cy1 = max(cx0, 0), max(cy0, 0), min(cx1, nx - 1), min(cy1, ny - 1)
    if cx1 < cx0 or cy1 < cy0:
        return None
    if not arrays:
        return (cx0, cx1, cy0, cy1), None, None
    sub = (slice(cy0 - ey0, cy1 - ey0 + 1), slice(cx0 - gx0, cx1 - gx0 + 1))
    return (cx0, cx1, cy0, cy1), ys[sub], lam[sub]


def _outer_rows(optics, key, limits, gx0, gx1, gy0, gy1, block=4):
    """(lowest, highest) row of gy0..gy1 with a pixel of columns gx0..gx1 inside the slit
    (finite wavelength), or None: rows evaluated ``block`` at a time from each end."""
    def inside(r0, r1):
        yy, xx = np.mgrid[r0:r1 + 1, gx0:gx1 + 1].astype(float)
        _, lam = optics.detector_to_slit(key, xx + optics.xstart, yy + optics.ystart, limits)
        return np.isfinite(lam).any(axis=1)

    low = None
    for r0 in range(gy0, gy1 + 1, block):
        hit = np.flatnonzero(inside(r0, min(r0 + block - 1, gy1)))
        if hit.size:
            low = r0 + int(hit[0])
            break
    if low is None:
        return None
    for r1 in range(gy1, low - 1, -block):
        r0 = max(r1 - block + 1, low)
        hit = np.flatnonzero(inside(r0, r1))
        if hit.size:
            return low, r0 + int(hit[-1])
    return low, low


def reference_point(optics, key):
    """(RA, Dec) [deg] of a slitlet's XI/ETA reference: its reference shutter's centre at the
    middle of the wavelength range."""
    lmin, lmax = optics.wavelength_range
    return tuple(float(v) for v in optics.slit_to_sky(key, 0.0, 0.0, 0.5 * (lmin + lmax))[1])


def _coordinates(optics, key, ys, lam, ref):
    """WAVELENGTH [um], XI, ETA [arcsec about ``ref``], SLIT_Y (float32) of pixels with y_slit
    ``ys`` and lam [m]; NaN outside the wavelengthrange reference's range."""
    lmin, lmax = optics.wavelength_range
    inside = np.isfinite(lam) & (lam >= lmin) & (lam <= lmax)
    arrays = {k: np.full(inside.shape, np.nan, np.float32) for k in ("WAVELENGTH", "XI", "ETA", "SLIT_Y")}
    if inside.any():
        xi, eta = optics.slit_to_xieta(key, 0.0, ys[inside], lam[inside], ref)
        for k, v in (("WAVELENGTH", lam[inside] * 1e6), ("XI", xi), ("ETA", eta), ("SLIT_Y", ys[inside])):
            arrays[k][inside] = v
    return arrays


def slitlet_box(optics, slitlet, shape, slit_y_range=(-0.55, 0.55), arrays=True):
    """The :class:`SlitletBox` of ``slitlet`` on an image of ``shape`` with its per-pixel
    arrays (``arrays=False``: the box only), or None when the slitlet's light misses the detector
    (official rule)."""
    key = shutter_key(slitlet)
    limits = slitlet.slit_y_limits(slit_y_range)
    cut = _cutout(optics, key, limits, shape, arrays)
    if cut is None:
        return None
    (cx0, cx1, cy0, cy1), ys, lam = cut
    ref = reference_point(optics, key)
    coords = _coordinates(optics, key, ys, lam, ref) if arrays else {}
    return SlitletBox(slitlet, cx0, cx1, cy0, cy1, *limits, *slit_scales(optics, slitlet.quadrant), *ref, coords)


def cutout_coordinates(optics, key, bounds, limits, ref):
    """The per-pixel arrays of :func:`slitlet_box` on the cutout ``bounds`` = (x0, x1, y0, y1)
    (0-based inclusive image pixels) of the slitlet with shutter ``key``, frame extent ``limits``
    and XI/ETA reference ``ref`` = (RA, Dec): extract_2d's half of the work assign_wcs did."""
    x0, x1, y0, y1 = bounds
    yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(float)
    ys, lam = optics.detector_to_slit(key, xx + optics.xstart, yy + optics.ystart, tuple(limits))
    return _coordinates(optics, key, ys, lam, ref)


def shutter_footprint(optics, quadrant, row, column, shape):
    """((x0, x1, y0, y1), mask) of one open MSA shutter (a failed-open one): the official box of a
    one-shutter slit spanning y_slit -0.5..0.5 and, in it, the pixels whose y_slit is within that
    span (any wavelength, as the official msa_flagging takes them); None off the detector."""
    cut = _cutout(optics, (int(quadrant), int(row), int(column)), FAILED_OPEN_LIMITS, shape)
    if cut is None:
        return None
    bounds, _, lam = cut
    return bounds, np.isfinite(lam)


def exposure_slitlets(header, shape, refs, exposure_path, slit_y_range=(-0.55, 0.55), arrays=True):
    """[:class:`SlitletBox`] of the slitlets of an exposure that fall on its detector, in the
    official order (by quadrant, then MSA file order). ``header``: the `_rate` keywords (PRIMARY
    and SCI merged: MSAMETFL, MSAMETID, PATT_NUM, PROGRAM, DETECTOR, FILTER, GRATING,
    GWA_XTIL/YTIL, pointing); ``refs``: {reftype: path} with every type of :data:`REFTYPES`;
    ``exposure_path`` locates MSAMETFL and names the exposure in errors; ``arrays=False``: the
    boxes without their per-pixel arrays (see :func:`cutout_coordinates`)."""
    where = str(exposure_path)
    exp_type = str(header.get("EXP_TYPE", "")).strip().upper()
    if exp_type not in EXP_TYPES:
        raise InputError(where, f"no MOS model for EXP_TYPE {exp_type!r}")
    require_pointing(header, where)
    slitlets = msa.exposure_slitlets(header, exposure_path)
    optics = Optics(refs, header, where)
    slitlets = sorted(slitlets, key=lambda s: s.quadrant)          # stable: file order within
    boxes = [b for b in (slitlet_box(optics, s, shape, slit_y_range, arrays) for s in slitlets) if b is not None]
    if not boxes:
        raise InputError(where, f"no open MSA slitlet falls on detector {optics.detector}")
    return boxes
