"""IFU cube kernels: the sky grid, and the three official weightings, vectorised and memory-bounded.

Input is a point cloud of detector pixels already mapped to the cube's pixel frame (:class:`Cloud`:
centre x, y in spaxels, the pixel's footprint on the sky as its along-slice segment (x1, y1) ->
(x2, y2) widened by ``half`` spaxels on either side, wavelength and extent, SCI and ERR). Every
voxel gets F = sum(w f) / sum(w), ERR = sqrt(sum((w e)^2)) / sum(w), WMAP = number of pixels with
w > 0, as the official cube_build does, with w:

* ``drizzle``: the overlap area of the pixel's footprint with the spaxel times the overlap of
  [lam - dlam/2, lam + dlam/2] with the plane's wavelength bin (no read-noise weighting, as jwst 3.0);
* ``emsm``: pixels within ``rois`` (circle) and ``roiw``: w = exp(-(dx^2 + dy^2 + dz^2) / (scalerad /
  spaxel)) with dx, dy in spaxels and dz = dlam / bin width;
* ``msm``: w = 1 / max(r^p, softrad), r^2 as for emsm, p = weight_power.

Memory: planes are processed in blocks of at most ``max_voxels`` voxels; the pixels of a block are
found by bisection in the wavelength-sorted cloud and processed in chunks of ``chunk`` pixels, so
temporaries never exceed a few hundred MB whatever the cube size.

Footprint overlaps are exact: the area of (quadrilateral A) ∩ (unit square S) is the contour
integral of x dy along the boundary of A *clamped* into S (clamping a closed curve into a box keeps
its winding number about every point inside the box), which for straight edges has a closed form
(:func:`quad_square_overlap`); no polygon clipping, fixed-size arrays.
"""

import math
from dataclasses import dataclass

import numpy as np

from .. import dq as dqbits

__all__ = ["Cloud", "sky_grid", "linear_planes", "table_planes", "plane_bins", "build", "quad_square_overlap",
           "final_dq", "WEIGHTINGS"]

WEIGHTINGS = ("drizzle", "emsm", "msm")


@dataclass
class Cloud:
    """Detector pixels in the cube frame, sorted by wavelength (:meth:`sorted`)."""

    x: np.ndarray          # spaxel coordinates of the pixel centre (0-based)
    y: np.ndarray
    lam: np.ndarray        # [um]
    dlam: np.ndarray       # [um] wavelength extent
    flux: np.ndarray
    err: np.ndarray
    x1: np.ndarray = None  # along-slice edges of the footprint (drizzle)
    y1: np.ndarray = None
    x2: np.ndarray = None
    y2: np.ndarray = None
    half: np.ndarray = None   # half the slice width [spaxels]

    def take(self, idx):
        return Cloud(*(None if v is None else v[idx] for v in self.__dict__.values()))

    def sorted(self):
        """This cloud sorted by wavelength, in place, one array at a time (a whole copy of a
        NIRSpec program's cloud would double its memory)."""
        order = np.argsort(self.lam, kind="stable")
        for name, v in self.__dict__.items():
            if v is not None:
                setattr(self, name, v[order])
        return self

    @staticmethod
    def concatenate(clouds):
        """One cloud of ``clouds``, emptying them array by array as it goes."""
        out = {}
        for n in Cloud.__dataclass_fields__:
            vals = [getattr(c, n) for c in clouds]
            out[n] = None if any(v is None for v in vals) else np.concatenate(vals)
            for c in clouds:
                setattr(c, n, None)
        return Cloud(**out)


# ---------------------------------------------------------------- grid


def sky_grid(xi, eta, spaxel, *, cube_pa=None, nspax_x=None, nspax_y=None):
    """The spatial grid of a cube about its tangent point (official IFUCubeData.set_geometry).

    ``xi``, ``eta``: standard coordinates [arcsec, xi east] of the footprint points about the
    tangent point. Returns (crpix1, crpix2, naxis1, naxis2, pc): the cube is symmetric about the
    tangent point, odd-sized, PC = [[-cos pa, sin pa], [sin pa, cos pa]] (east to the left)."""
    pa = math.radians(float(cube_pa or 0.0))
    c, s = math.cos(pa), math.sin(pa)
    pc = np.array([[-c, s], [s, c]])
    u = -c * np.asarray(xi, float) + s * np.asarray(eta, float)      # pc is its own inverse
    v = s * np.asarray(xi, float) + c * np.asarray(eta, float)
    na = math.ceil(float(np.max(np.abs(u))) / spaxel) + 1
    nb = math.ceil(float(np.max(np.abs(v))) / spaxel) + 1
    if nspax_x is not None:
        na = int(nspax_x) // 2
    if nspax_y is not None:
        nb = int(nspax_y) // 2
    return float(na + 1), float(nb + 1), 2 * na + 1, 2 * nb + 1, pc


def linear_planes(wavemin, wavemax, step):
    """Plane centres of a linear grid: n = ceil((max - min) / step), centres min + (k + 1/2) step."""
    n = int(math.ceil((float(wavemax) - float(wavemin)) / float(step) - 1e-9))
    return float(wavemin) + (np.arange(n) + 0.5) * float(step)


def table_planes(table, wavemin, wavemax):
    """Indices [imin, imax] of a cubepar wavelength table covering [wavemin, wavemax] (the entries
    nearest the limits, widened by one where they fall inside), as the official non-linear grid."""
    t = np.asarray(table, float)
    imin = int(np.argmin(np.abs(t - wavemin)))
    imax = int(np.argmin(np.abs(t - wavemax)))
    if imin > 1 and t[imin] > wavemin:
        imin -= 1
    if imax < t.size - 1 and wavemax > t[imax]:
        imax += 1
    return imin, imax


def plane_bins(z):
    """Bin widths of plane centres ``z`` (next centre minus this one; the last repeats), as the
    official cdelt3_normal."""
    z = np.asarray(z, float)
    if z.size < 2:
        return np.ones_like(z)
    w = np.empty_like(z)
    w[:-1] = np.diff(z)
    w[-1] = w[-2]
    return w


# ---------------------------------------------------------------- overlaps


def _prim(u):
    """An antiderivative of clamp(u, -1/2, 1/2) (in place on ``u``'s copy)."""
    c = np.minimum(np.maximum(u, -0.5), 0.5)
    c += 0.5
    c *= c
    c *= 0.5
    c -= 0.5 * u
    c += np.maximum(u - 0.5, 0.0)
    return c


def quad_square_overlap(qx, qy):
    """Area of the quadrilaterals (qx, qy: (N, 4) corners in order, either orientation) inside the
    square [-1/2, 1/2]^2. Exact for convex and simple quadrilaterals.

    Per edge (x, y)(t) = a + t d, t in [0, 1]: the part where y is inside [-1/2, 1/2] is t in
    [ta, tb], and the integral of clamp(x) dy over it is (dy/dx) (P(x(tb)) - P(x(ta))) with P an
    antiderivative of the clamp (dy (tb - ta) clamp(x) for an edge along y)."""
    area = np.zeros(qx.shape[0])
    for e in range(4):
        xa, ya = qx[:, e], qy[:, e]
        dx, dy = qx[:, (e + 1) % 4] - xa, qy[:, (e + 1) % 4] - ya
        inv = np.divide(1.0, dy, out=np.zeros_like(dy), where=dy != 0)
        t0 = (-0.5 - ya) * inv
        t1 = (0.5 - ya) * inv
        ta = np.minimum(t0, t1)
        tb = np.maximum(t0, t1, out=t1)
        np.clip(ta, 0.0, 1.0, out=ta)
        np.clip(tb, 0.0, 1.0, out=tb)
        steep = np.abs(dx) < 1e-6
        slope = np.divide(dy, dx, out=np.zeros_like(dy), where=~steep)
        part = slope * (_prim(xa + tb * dx) - _prim(xa + ta * dx))
        if steep.any():
            part[steep] = (dy * (tb - ta) * np.clip(xa, -0.5, 0.5))[steep]
        area += part
    return np.abs(area)


def _expand(lo_x, hi_x, lo_y, hi_y):
    """All (pixel, ix, iy) with ix in [lo_x, hi_x], iy in [lo_y, hi_y] per pixel (inclusive; empty
    ranges give nothing): the candidate spaxels of each pixel, without a Python loop."""
    nx = np.maximum(hi_x - lo_x + 1, 0)
    ny = np.maximum(hi_y - lo_y + 1, 0)
    count = nx * ny
    idx = np.repeat(np.arange(count.size), count)
    start = np.cumsum(count) - count
    off = np.arange(idx.size) - start[idx]
    nxi = nx[idx]
    return idx, lo_x[idx] + off % nxi, lo_y[idx] + off // nxi


# ---------------------------------------------------------------- weights


# overlaps below this [spaxel^2] are round-off of footprints touching a spaxel's edge: counting
# them would mark the spaxel covered (WMAP, DQ) by a pixel that does not reach it
_MIN_AREA = 1e-9


def _roi_pairs(c, nx, ny, r):
    """(pixel, spaxel index, squared distance in spaxels) of the spaxel centres within ``r`` spaxels."""
    lo_x = np.maximum(np.ceil(c.x - r).astype(np.int64), 0)
    hi_x = np.minimum(np.floor(c.x + r).astype(np.int64), nx - 1)
    lo_y = np.maximum(np.ceil(c.y - r).astype(np.int64), 0)
    hi_y = np.minimum(np.floor(c.y + r).astype(np.int64), ny - 1)
    k, ix, iy = _expand(lo_x, hi_x, lo_y, hi_y)
    d2 = (ix - c.x[k]) ** 2 + (iy - c.y[k]) ** 2
    rk = r[k] if np.ndim(r) else r
    keep = d2 <= rk * rk
    return k[keep], (iy * nx + ix)[keep], d2[keep]


def _per_pixel(value, n):
    return np.broadcast_to(np.asarray(value, float), (n,))


# ---------------------------------------------------------------- the cube


def build(cloud, shape, z, weighting="drizzle", *, rois=None, roiw=None, scalerad=None, weight_power=2.0,
          softrad=0.01, max_voxels=4_000_000, chunk=150_000):
    """Cube arrays (sci, err, wmap, weight) of ``shape`` (nz, ny, nx) with plane centres ``z`` from a
    wavelength-sorted :class:`Cloud`. ``rois`` [spaxels], ``roiw`` [um], ``scalerad`` [spaxels],
    ``weight_power``, ``softrad``: scalars or per-pixel arrays (aligned with the cloud)."""
    nz, ny, nx = shape
    z = np.asarray(z, float)
    width = plane_bins(z)
    zlo, zhi = z - width / 2, z + width / 2
    nxy = nx * ny
    n = cloud.lam.size
    if weighting == "drizzle":
        margin = float(np.max(cloud.dlam)) / 2 if n else 0.0
    else:
        margin = float(np.max(_per_pixel(roiw, max(n, 1)))) if n else 0.0
        pars = {k: _per_pixel(v, n) for k, v in (("rois", rois), ("roiw", roiw), ("scalerad", scalerad),
                                                  ("power", weight_power), ("softrad", softrad))}
    sci = np.full(shape, np.nan, np.float32)
    err = np.full(shape, np.nan, np.float32)
    wmap = np.zeros(shape, np.float32)
    weight = np.zeros(shape, np.float32)
    block = max(1, int(max_voxels) // max(nxy, 1))
    for z0 in range(0, nz, block):
        z1 = min(nz, z0 + block)
        nvox = (z1 - z0) * nxy
        acc_f, acc_w, acc_v, acc_n = (np.zeros(nvox) for _ in range(4))
        first = int(np.searchsorted(cloud.lam, zlo[z0] - margin, "left"))
        last = int(np.searchsorted(cloud.lam, zhi[z1 - 1] + margin, "right"))
        for s in range(first, last, chunk):
            sel = slice(s, min(last, s + chunk))
            c = cloud.take(sel)
            if weighting == "drizzle":
                pairs = _drizzle_contributions(c, nx, ny, z0, z1, zlo, zhi)
            else:
                pairs = _pointcloud_contributions(c, nx, ny, z0, z1, z, width,
                                                  {k: v[sel] for k, v in pars.items()}, weighting)
            pieces = list(pairs or ())
            if not pieces:
                continue
            k, vox, w = (np.concatenate(p) for p in zip(*pieces))
            # the chunk's pixels are adjacent in wavelength: count over the voxels they reach only
            v0 = int(vox.min())
            span = int(vox.max()) - v0 + 1
            vox -= v0
            part = slice(v0, v0 + span)
            acc_f[part] += np.bincount(vox, w * c.flux[k], span)
            acc_w[part] += np.bincount(vox, w, span)
            acc_v[part] += np.bincount(vox, (w * c.err[k]) ** 2, span)
            acc_n[part] += np.bincount(vox, None, span)
        good = acc_n > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(good, acc_f / acc_w, np.nan)
            e = np.where(good, np.sqrt(acc_v) / acc_w, np.nan)
        sci[z0:z1] = f.reshape(z1 - z0, ny, nx)
        err[z0:z1] = e.reshape(z1 - z0, ny, nx)
        wmap[z0:z1] = acc_n.reshape(z1 - z0, ny, nx)
        weight[z0:z1] = acc_w.reshape(z1 - z0, ny, nx)
    return sci, err, wmap, weight


def _plane_range(lo, hi, zlo, zhi, z0, z1):
    """First plane whose bin ends above ``lo`` and last plane starting below ``hi``, limited to the
    block [z0, z1)."""
    first = np.maximum(np.searchsorted(zhi, lo, "right"), z0)
    last = np.minimum(np.searchsorted(zlo, hi, "left") - 1, z1 - 1)
    return first, last


def _drizzle_contributions(c, nx, ny, z0, z1, zlo, zhi):
    """(pixel, voxel, weight) of the pixels of ``c`` in the planes [z0, z1). Candidate spaxels are
    visited by their offset from the corner of each pixel's bounding box, for all pixels at once
    (per-pixel arrays, no gathering of pairs)."""
    lo, hi = c.lam - c.dlam / 2, c.lam + c.dlam / 2
    first, last = _plane_range(lo, hi, zlo, zhi, z0, z1)
    live = np.flatnonzero(last >= first)
    if not live.size:
        return
    c, first, last, lo, hi = c.take(live), first[live], last[live], lo[live], hi[live]
    qx, qy = _footprints(c)
    lo_x = np.maximum(np.floor(qx.min(axis=1) + 0.5).astype(np.int64), 0)
    hi_x = np.minimum(np.floor(qx.max(axis=1) + 0.5).astype(np.int64), nx - 1)
    lo_y = np.maximum(np.floor(qy.min(axis=1) + 0.5).astype(np.int64), 0)
    hi_y = np.minimum(np.floor(qy.max(axis=1) + 0.5).astype(np.int64), ny - 1)
    nplanes = int(np.max(last - first)) + 1
    planes = first[:, None] + np.arange(nplanes)                      # (N, M) plane of each overlap
    izc = np.minimum(planes, len(zlo) - 1)
    zov = np.minimum(zhi[izc], hi[:, None]) - np.maximum(zlo[izc], lo[:, None])
    zov = np.where(planes <= last[:, None], np.maximum(zov, 0.0), 0.0)
    k_all = np.arange(live.size)
    for a in range(int(np.max(hi_x - lo_x)) + 1):
        for b in range(int(np.max(hi_y - lo_y)) + 1):
            sel = (lo_x + a <= hi_x) & (lo_y + b <= hi_y)
            k = k_all if sel.all() else np.flatnonzero(sel)
            if not k.size:
                continue
            ix, iy = lo_x[k] + a, lo_y[k] + b
            area = quad_square_overlap(qx[k] - ix[:, None], qy[k] - iy[:, None])
            w = area[:, None] * zov[k]
            w[area <= _MIN_AREA] = 0.0
            i, m = np.nonzero(w > 0)
            yield live[k[i]], (planes[k[i], m] - z0) * (nx * ny) + (iy * nx + ix)[i], w[i, m]


def _footprints(c):
    """Corners (N, 4) of each pixel's footprint: its along-slice segment widened by +-half."""
    dx, dy = c.x2 - c.x1, c.y2 - c.y1
    norm = np.hypot(dx, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        nxv = np.where(norm > 0, -dy / norm, 0.0) * c.half
        nyv = np.where(norm > 0, dx / norm, 1.0) * c.half
    return (np.stack([c.x1 - nxv, c.x2 - nxv, c.x2 + nxv, c.x1 + nxv], axis=1),
            np.stack([c.y1 - nyv, c.y2 - nyv, c.y2 + nyv, c.y1 + nyv], axis=1))


def _pointcloud_contributions(c, nx, ny, z0, z1, z, width, pars, weighting):
    roiw = pars["roiw"]
    first = np.maximum(np.searchsorted(z, c.lam - roiw, "left"), z0)
    last = np.minimum(np.searchsorted(z, c.lam + roiw, "right") - 1, z1 - 1)
    live = last >= first
    if not live.any():
        return
    idx = np.flatnonzero(live)
    k, sp, d2 = _roi_pairs(c.take(idx), nx, ny, pars["rois"][idx])
    k = idx[k]
    nplanes = int(np.max(last[live] - first[live])) + 1
    for m in range(nplanes):
        iz = first[k] + m
        ok = iz <= last[k]
        izc = np.minimum(iz, len(z) - 1)
        d3 = (c.lam[k] - z[izc]) / width[izc]
        r2 = d2 + d3 * d3
        if weighting == "emsm":
            w = np.exp(-r2 / pars["scalerad"][k])
        else:
            w = 1.0 / np.maximum(np.sqrt(r2) ** pars["power"][k], pars["softrad"][k])
        ok &= w > 0
        yield k[ok], (iz[ok] - z0) * (nx * ny) + sp[ok], w[ok]


# ---------------------------------------------------------------- quality


def final_dq(weight, sci, wmap, err, miri=False):
    """The official final DQ, in place on ``sci``/``err``/``wmap``: 0 under data; DO_NOT_USE |
    NON_SCIENCE without coverage; DO_NOT_USE alone for holes (no weight, but all four neighbours
    covered, not on the cube edge). MIRI: planes with few good spaxels (< 75% of the 3rd percentile
    of the planes' counts) are blanked, as the official spectral-tear cut. DO_NOT_USE -> NaN."""
    covered = weight > 0
    dq = np.where(covered, 0, dqbits.DO_NOT_USE | dqbits.NON_SCIENCE).astype(np.uint32)
    inner = np.zeros_like(covered)
    inner[:, 1:-1, 1:-1] = (covered[:, :-2, 1:-1] & covered[:, 2:, 1:-1]
                            & covered[:, 1:-1, :-2] & covered[:, 1:-1, 2:])
    dq[inner & ~covered] = dqbits.DO_NOT_USE
    if miri and dq.shape[0]:
        ngood = (dq == 0).sum(axis=(1, 2))
        pos = ngood[ngood > 0]
        if pos.size:
            low = (ngood > 0) & (ngood < 0.75 * np.percentile(pos, 3))
            dq[low] = dqbits.DO_NOT_USE | dqbits.NON_SCIENCE
            wmap[low] = 0
    bad = (dq & dqbits.DO_NOT_USE) != 0
    sci[bad] = np.nan
    err[bad] = np.nan
    return dq
