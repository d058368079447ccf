"""NIRSpec IFU: the 30 slices' per-pixel coordinates from the official optical model.

The frame chain is the official one (jwst ``assign_wcs.nirspec.ifu``), on the NIRSpec optical set
plus the IFU files ifuslicer, ifupost, ifufore and chromcorr:

    slit_frame of slice k (x_slit, y_slit in slice units; k = 0..29, official slice k + 1)
      -> slicer plane: ifuslicer data row k (x * SIZEX + XC, y * SIZEY + YC), then its model
    spectrograph side: slicer -> ifupost slice k (linear, then x = xpoly + xpoly_distortion * lam,
      y likewise) -> MSA plane -> collimator -> GWA -> grating -> camera -> detector (``Optics``)
    sky side: slicer -> ifufore (x, y, lam [m]) -> MSA entrance -> fore (x, y, lam) -> OTEIP
      -> chromcorr (x, y, lam) -> ote -> V2/V3 -> sky

Backward (detector -> slit frame), as for slits: x_slit = 0 and y_slit from the diffracted beta,
here by linear interpolation in a per-slice table of (beta_in, y_slit, alpha_in) of 3401 points
(the official code interpolates a table of 1000), lam from the grating equation; the ifupost
wavelength terms at the band centre, as the official backward transform takes them (the forward
too here: the simulated ifupost has none). Pixel edges (XI1.., DWAVE) are the means of the
neighbouring pixel centres' y_slit / lam, so one backward evaluation per pixel serves all arrays.
Measured on a full NRS1 frame (1.98 M slice pixels): ~0.6-0.9 s CPU (the official assign_wcs
~9-10 s), every slice pixel the same slice as the official map, lam and sky within 1e-5 pixel.

Which pixels are a slice's, and which slice a pixel is, follow the official slice map
(``compute_bounding_box`` + ``apply_slicemap``): the box of the slice edges (y_slit = +-0.55 at
x_slit = 0 over the wavelengthrange), widened by 11 / 9 pixels in x and 3 / 1 rows in y, its rows
refined to the pixels with a finite y_slit, then every pixel of the box with |y_slit| <= 0.55;
a later slice overwrites an earlier one. Wavelengths are not cut to the wavelengthrange.
"""

from dataclasses import dataclass

import numpy as np

from ...errors import InputError
from .optics import OPTICAL_REFTYPES, Optics, _model, rotation_matrix, _tree, require_pointing

__all__ = ["MODE", "EXP_TYPE", "N_SLICES", "IFU_REFTYPES", "REFTYPES", "IFUOptics", "SliceBox", "slice_table",
           "exposure_coordinates", "ARRAYS"]

MODE = "nrs_ifu"
EXP_TYPE = "NRS_IFU"
N_SLICES = 30
IFU_REFTYPES = ("ifufore", "ifupost", "ifuslicer", "chromcorr")
REFTYPES = OPTICAL_REFTYPES + IFU_REFTYPES
# per-pixel arrays assign_wcs attaches (docs/internals.md, IFU section)
ARRAYS = ("WAVELENGTH", "DWAVE", "XI", "ETA", "XI1", "ETA1", "XI2", "ETA2", "SLICE")
_ARCSEC = 180.0 / np.pi * 3600.0
_DETECTOR_MAX = 2047            # the official slice boxes are clipped to the full frame


class IFUOptics(Optics):
    """The optical model of one NIRSpec IFU exposure: slits are the slice indices 0..29.

    ``refs``: {reftype: path} with every type of :data:`REFTYPES`; ``header``: the `_rate`
    keywords (as for :class:`Optics`)."""

    def __init__(self, refs, header, where="assign_wcs"):
        missing = [rt for rt in IFU_REFTYPES if str(refs.get(rt, "N/A")).upper() in ("", "N/A", "NONE")]
        if missing:
            raise InputError(where, f"no {', '.join(missing)} reference file(s): cannot assign an IFU WCS")
        super().__init__(refs, header, where)
        if self.detector == "NRS2" and (self.grating.endswith("M") or (self.grating, self.filter) == ("G140H", "F070LP")):
            raise InputError(where, f"no IFU slices fall on NRS2 with {self.grating}/{self.filter} (official rule)")
        trees = {rt: _tree(rt, refs[rt]) for rt in IFU_REFTYPES}
        self._slicer = _model("ifuslicer", refs["ifuslicer"], trees["ifuslicer"], "model")
        data = np.asarray(trees["ifuslicer"].get("data", []), float)
        if data.ndim != 2 or data.shape[0] < N_SLICES or data.shape[1] != 5:
            raise InputError(refs["ifuslicer"], f"ifuslicer data is not {N_SLICES} rows of "
                                                f"(slice, XC, YC, SIZEX, SIZEY) (shape {data.shape})")
        self.slice_geometry = data[:N_SLICES, 1:5]          # XC, YC, SIZEX, SIZEY [m]
        self._post = []
        for k in range(N_SLICES):
            node = trees["ifupost"].get(f"slice_{k}")
            if node is None:
                raise InputError(refs["ifupost"], f"ifupost reference has no slice_{k}")
            self._post.append(tuple(_model("ifupost", refs["ifupost"], node, key)
                                    for key in ("linear", "xpoly", "xpoly_distortion", "ypoly", "ypoly_distortion")))
        self._ifufore = _model("ifufore", refs["ifufore"], trees["ifufore"], "model")
        self._chromcorr = _model("chromcorr", refs["chromcorr"], trees["chromcorr"], "model")
        if self._ifufore.n_in != 3 or self._ifufore.n_out != 2:
            raise InputError(refs["ifufore"], "ifufore model must take (x, y, lam) to (x, y)")
        self.lam_cen = 0.5 * sum(self.wavelength_range)
        self._tables = {}

    # ------------------------------------------------------------------ frames
    def slit_to_slicer(self, k, xs, ys):
        """Slicer-plane (x, y) [m] of slit-frame points of slice ``k``."""
        xc, yc, sx, sy = self.slice_geometry[k]
        return self._slicer(np.asarray(xs, float) * sx + xc, np.asarray(ys, float) * sy + yc)

    def slit_to_msa(self, slit, xs, ys):
        """MSA-plane (x, y) [m] of slit-frame points: slice ``slit`` (an int) through ifupost, the
        wavelength terms at the band centre; a fixed slit or shutter as :class:`Optics` does."""
        if not isinstance(slit, (int, np.integer)):
            return super().slit_to_msa(slit, xs, ys)
        linear, xp, xd, yp, yd = self._post[slit]
        u, v = linear(*self.slit_to_slicer(slit, xs, ys))
        return (xp(u, v)[0] + xd(u, v)[0] * self.lam_cen, yp(u, v)[0] + yd(u, v)[0] * self.lam_cen)

    def _slice_table(self, k):
        """(beta_in, y_slit, alpha_in) of slice ``k`` along x_slit = 0 at the band centre,
        increasing in beta_in, over y_slit -0.85..0.85 (the slice and its pixels' edges)."""
        if k not in self._tables:
            grid = np.linspace(-0.85, 0.85, 3401)
            a, b, _ = self._msa_to_gwa(*self.slit_to_msa(k, np.zeros_like(grid), grid))
            order = np.argsort(b)
            if not np.all(np.diff(b[order]) > 0):
                raise InputError(self.where, f"IFU slice {k + 1}: beta_in is not monotonic along the slice")
            self._tables[k] = (b[order], grid[order], a[order])
        return self._tables[k]

    def slice_backward(self, k, x, y):
        """(y_slit, lam [m]) of full-frame DMS pixels (x, y) for slice ``k`` (x_slit = 0): the
        diffracted direction from the camera side, y_slit and alpha_in from the slice's table
        of beta_in = -beta_out (linear interpolation on 3401 points, as the official
        ``gwa_to_ymsa`` table of 1000: the slice is nearly linear in beta), lam from the grating
        equation (or the prism); NaN outside the table."""
        a_out, b_out, _ = self._sca_to_gwa(*self._dms_to_sca(np.asarray(x, float), np.asarray(y, float)))
        beta, ys_t, a_t = self._slice_table(k)
        target = -b_out
        ys = np.interp(target, beta, ys_t, left=np.nan, right=np.nan)
        a_in = np.interp(target, beta, a_t, left=np.nan, right=np.nan)
        if self.prism is not None:
            lam = self.prism.wavelength(a_in, target, a_out)
        else:
            lam = -(a_in + a_out) / (self.groove_density * self.order)
        return ys, lam

    def slice_to_v2v3(self, k, xs, ys, lam):
        """V2/V3 [arcsec] of slit-frame points of slice ``k`` at ``lam`` [m] (sky side)."""
        xs, ys, lam = np.broadcast_arrays(*(np.asarray(v, float) for v in (xs, ys, lam)))
        x, y = self.slit_to_slicer(k, xs, ys)
        xm, ym = self._ifufore(x, y, lam)
        xo, yo = self._fore(xm, ym, lam)
        xo, yo = self._chromcorr(xo, yo, lam)[:2]
        return self._ote(xo, yo)

    def v2v3_to_xieta(self, v2, v3, ra0, dec0):
        """Gnomonic offsets (xi east, eta north) [arcsec] from (ra0, dec0) of V2/V3 [arcsec]:
        the exposure's attitude (and velocity-aberration scale) and the tangent projection as
        one rotation of the unit vector (the same numbers as ``v2v3_to_sky`` then
        ``radec_to_xieta``, without the detour through RA/Dec)."""
        ra_ref, dec_ref, roll, v2r, v3r, va = self._pointing()
        v2, v3 = np.asarray(v2, float), np.asarray(v3, float)
        if va != 1.0:
            v2, v3 = va * v2 + (1.0 - va) * v2r, va * v3 + (1.0 - va) * v3r
        lon, lat = v2 / _ARCSEC, v3 / _ARCSEC
        a, d = np.radians(ra0), np.radians(dec0)
        tangent = np.array([[np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)],
                            [-np.sin(a), np.cos(a), 0.0],
                            [-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)]])
        m = tangent @ rotation_matrix([v2r / 3600.0, -v3r / 3600.0, roll, dec_ref, -ra_ref], "zyxyz")
        (cl, sl), (co, so) = _cos_sin(lat), _cos_sin(lon)
        vx, vy, vz = cl * co, cl * so, sl
        r = m[0, 0] * vx + m[0, 1] * vy + m[0, 2] * vz
        xi = (m[1, 0] * vx + m[1, 1] * vy + m[1, 2] * vz) / r
        eta = (m[2, 0] * vx + m[2, 1] * vy + m[2, 2] * vz) / r
        return xi * _ARCSEC, eta * _ARCSEC

    def slice_width(self):
        """Slice width on the sky [arcsec] (the middle slice at the band centre)."""
        v2, v3 = self.slice_to_v2v3(N_SLICES // 2, [-0.5, 0.5], [0.0, 0.0], self.lam_cen)
        return float(np.hypot(v2[1] - v2[0], v3[1] - v3[0]))

    def slice_box(self, k, y_range=(-0.55, 0.55), nlam=2001):
        """The official initial bounding box of slice ``k``: full-frame inclusive pixel bounds
        (x0, x1, y0, y1) of the slice edges' images over the wavelengthrange, x widened by 11 / 9
        pixels and y by 3 / 1 rows (jwst ``compute_bounding_box``), clipped to the detector; None
        off the detector. (The official comment calls the -1 of those margins a 1-based
        correction; the transforms are 0-based, and so are these bounds.)"""
        lam = np.linspace(*self.wavelength_range, nlam)
        x, y = self.slit_to_detector(k, 0.0, np.array(y_range, float)[:, None], lam[None, :])
        # the box edges are x_min - 11.5 and x_max + 9.5 (clipped), and the official slice map
        # evaluates the WCS with its bounding box: a column is in only when it is inside them
        x0 = int(np.ceil(max(0.0, np.nanmin(x) - 11.0) - 0.5))
        x1 = int(np.floor(min(float(_DETECTOR_MAX), np.nanmax(x) + 9.0) + 0.5))
        y0 = int(np.floor(max(0.0, np.nanmin(y) - 3.0)))
        y1 = int(np.ceil(min(float(_DETECTOR_MAX), np.nanmax(y) + 1.0)))
        return None if x1 < x0 or y1 < y0 else (x0, x1, y0, y1)


def _cos_sin(t):
    """(cos t, sin t); for |t| < 0.02 rad (V2/V3 are within ~0.2 deg of the V frame origin) by
    their Taylor series to t^6 / t^7, exact in float64 there (next terms < 1e-19) and 3x faster."""
    if t.size == 0 or np.abs(t).max() >= 0.02:
        return np.cos(t), np.sin(t)
    t2 = t * t
    return (1.0 - t2 * (0.5 - t2 * (1.0 / 24.0 - t2 / 720.0)),
            t * (1.0 - t2 * (1.0 / 6.0 - t2 * (1.0 / 120.0 - t2 / 5040.0))))


@dataclass
class SliceBox:
    """One slice on the image: official slice number and the inclusive 0-based image bounds of
    its pixels."""

    slice: int
    xstart: int
    xstop: int
    ystart: int
    ystop: int


def _slice_pixels(optics, k, y_range, frame):
    """The slice's evaluation grid and its pixels (official slice map rule), or None.

    Returns (rows, cols, valid, ys, lam): full-frame 1-D index ranges of the grid, the boolean
    mask of the slice's pixels on it, y_slit and lam [m] on the grid widened by one pixel on every
    side ((len(rows) + 2, len(cols) + 2), NaN outside the table), from which the pixel edges
    follow. ``frame``: (x0, x1, y0, y1) full-frame inclusive bounds of the image."""
    box = optics.slice_box(k, y_range)
    if box is None:
        return None
    x0, x1, y0, y1 = box
    fx0, fx1, fy0, fy1 = frame
    # rows up to 3 beyond the initial box can enter the refined box
    gx0, gx1, gy0, gy1 = max(x0, fx0), min(x1, fx1), max(y0 - 3, fy0), min(y1 + 3, fy1)
    if gx1 < gx0 or gy1 < gy0:
        return None
    rows, cols = np.arange(gy0, gy1 + 1), np.arange(gx0, gx1 + 1)
    yy, xx = np.meshgrid(np.arange(gy0 - 1, gy1 + 2, dtype=float), np.arange(gx0 - 1, gx1 + 2, dtype=float),
                         indexing="ij")
    ys, lam = optics.slice_backward(k, xx, yy)
    inner = ys[1:-1, 1:-1]
    with np.errstate(invalid="ignore"):
        valid = (inner >= y_range[0]) & (inner <= y_range[1]) & np.isfinite(lam[1:-1, 1:-1])
    init = valid & ((rows >= y0) & (rows <= y1))[:, None]
    if not init.any():
        return None
    r = rows[init.any(axis=1)]
    ry0, ry1 = max(0, int(r.min()) - 3), min(_DETECTOR_MAX, int(r.max()) + 1)
    valid &= ((rows >= ry0) & (rows <= ry1))[:, None]
    return rows, cols, valid, ys, lam


def exposure_coordinates(header, shape, refs, y_range=(-0.55, 0.55), where="assign_wcs", slit_edges=False):
    """({name: (ny, nx) array} of :data:`ARRAYS`, [SliceBox], slice width [arcsec]) of an
    NRS_IFU image of ``shape``. ``header``: the `_rate` keywords (PRIMARY and SCI merged);
    ``refs``: {reftype: path} with every type of :data:`REFTYPES`.

    WAVELENGTH [um] and XI/ETA [arcsec from (RA_REF, DEC_REF)] of each slice pixel's centre
    (x_slit = 0); DWAVE [um]: |lam(x + 0.5) - lam(x - 0.5)|; XI1/ETA1, XI2/ETA2: the sky positions
    of y_slit at the pixel's lower / upper edge (y -/+ 0.5) at the pixel's own wavelength;
    SLICE: 1..30 (0 off the slices); float32 NaN off the slices. The edge values are the means of
    the neighbouring pixel centres' (y_slit along a column and lam along a row are smooth to
    ~1e-6 pixel over a pixel: the second-order term is far below float32). ``slit_edges``: also
    SLIT_Y1, SLIT_Y2 (float32), y_slit at the two edges (the simulator's footprints).
    """
    exp_type = str(header.get("EXP_TYPE", "")).strip().upper()
    if exp_type != EXP_TYPE:
        raise InputError(where, f"no IFU model for EXP_TYPE {exp_type!r}")
    require_pointing(header, where)
    optics = IFUOptics(refs, header, where)
    ny, nx = shape
    sx, sy = optics.xstart, optics.ystart
    ra0, dec0 = float(header["RA_REF"]), float(header["DEC_REF"])
    out = {k: np.full((ny, nx), np.nan, np.float32) for k in ARRAYS if k != "SLICE"}
    out["SLICE"] = np.zeros((ny, nx), np.int16)
    for key in ("SLIT_Y1", "SLIT_Y2") if slit_edges else ():
        out[key] = np.full((ny, nx), np.nan, np.float32)
    frame = (sx, sx + nx - 1, sy, sy + ny - 1)
    for k in range(N_SLICES):
        got = _slice_pixels(optics, k, y_range, frame)
        if got is None:
            continue
        rows, cols, valid, ys, lam = got
        centre = (slice(1, -1), slice(1, -1))
        lam_v = lam[centre][valid]
        ys_c = ys[centre][valid]
        ys1 = 0.5 * (ys_c + ys[:-2, 1:-1][valid])          # y - 0.5
        ys2 = 0.5 * (ys_c + ys[2:, 1:-1][valid])           # y + 0.5
        v2, v3 = optics.slice_to_v2v3(k, 0.0, np.concatenate([ys_c, ys1, ys2]), np.tile(lam_v, 3))
        xi, eta = optics.v2v3_to_xieta(v2, v3, ra0, dec0)
        n = lam_v.size
        vals = {"WAVELENGTH": lam_v * 1e6, "DWAVE": 0.5e6 * np.abs(lam[1:-1, 2:][valid] - lam[1:-1, :-2][valid]),
                "XI": xi[:n], "ETA": eta[:n], "XI1": xi[n:2 * n], "ETA1": eta[n:2 * n],
                "XI2": xi[2 * n:], "ETA2": eta[2 * n:], "SLICE": k + 1}
        if slit_edges:
            vals.update(SLIT_Y1=ys1, SLIT_Y2=ys2)
        box = (slice(rows[0] - sy, rows[-1] - sy + 1), slice(cols[0] - sx, cols[-1] - sx + 1))
        for key, val in vals.items():
            out[key][box][valid] = val
    boxes = _boxes(out["SLICE"])
    if not boxes:
        raise InputError(where, f"no IFU slice falls on detector {optics.detector}")
    return out, boxes, optics.slice_width()


def _boxes(slice_map):
    """[SliceBox] of the slices present in ``slice_map`` (after later slices overwrote earlier)."""
    out = []
    for s in range(1, N_SLICES + 1):
        rows = np.flatnonzero((slice_map == s).any(axis=1))
        if rows.size == 0:
            continue
        cols = np.flatnonzero((slice_map[rows[0]:rows[-1] + 1] == s).any(axis=0))
        out.append(SliceBox(s, int(cols[0]), int(cols[-1]), int(rows[0]), int(rows[-1])))
    return out


def slice_table(boxes):
    """The SLICES BinTable rows (FITS_rec): SLICE, XSTART, XSTOP, YSTART, YSTOP (0-based inclusive)."""
    from astropy.io import fits

    cols = [fits.Column(name=k.upper(), format="J", array=np.array([getattr(b, k) for b in boxes], np.int32))
            for k in ("slice", "xstart", "xstop", "ystart", "ystop")]
    return fits.FITS_rec.from_columns(cols)
