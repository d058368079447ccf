"""IFU cube kernels: the sky grid, and the three official weightings, vectorised and memory-bounded.

Input is a point cloud of detector pixels already mapped to the cube's pixel frame (:class:`Cloud`:
centre x, y in spaxels, the pixel's footprint on the sky as its along-slice segment (x1, y1) ->
(x2, y2) (offsets from the centre) widened by ``half`` spaxels on either side, wavelength and
extent, SCI and ERR). Every
voxel gets F = sum(w f) / sum(w), ERR = sqrt(sum((w e)^2)) / sum(w), WMAP = number of pixels with
w > 0, as the official cube_build does, with w:

* ``drizzle``: the overlap area of the pixel's footprint with the spaxel times the overlap of
  [lam - dlam/2, lam + dlam/2] with the plane's wavelength bin (no read-noise weighting, as jwst 3.0);
* ``emsm``: pixels within ``rois`` (circle) and ``roiw``: w = exp(-(dx^2 + dy^2 + dz^2) / (scalerad /
  spaxel)) with dx, dy in spaxels and dz = dlam / bin width;
* ``msm``: w = 1 / max(r^p, softrad), r^2 as for emsm, p = weight_power.

Memory: planes are processed in blocks of at most ``max_voxels`` voxels; the pixels of a block are
found by bisection in the wavelength-sorted cloud and processed in chunks of ``chunk`` pixels, so
temporaries stay within the CPU caches (a few MB) whatever the cube size.

Speed: every pixel of a chunk gets the same block of candidate spaxels (the box of its footprint
or ROI) and the same number of planes, so the weights are dense (candidate, plane, pixel) arrays
with the pixels on the last axis (long inner loops), in float32 relative to the block; zero
weights are dropped once and the sums are np.bincount over the voxels with float64 weights.

Footprint overlaps are exact: the area of (quadrilateral A) ∩ (unit square S) is the contour
integral of x dy along the boundary of A *clamped* into S (clamping a closed curve into a box keeps
its winding number about every point inside the box), which for straight edges has a closed form
(:func:`quad_square_overlap`, the float64 reference; the kernel uses the same integral clamped into
quadrants at the block's square corners, :func:`_block_overlaps`); no polygon clipping.
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
    x1: np.ndarray = None  # along-slice edges of the footprint (drizzle), relative to (x, y)
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


# ---------------------------------------------------------------- weights


# overlaps below this [spaxel^2] are round-off of footprints touching a spaxel's edge: counting
# them would mark the spaxel covered (WMAP, DQ) by a pixel that does not reach it. The overlaps
# are computed in float32 relative to the pixel's block (round-off <= 2e-6 on random rectangles)
_MIN_AREA = 5e-6


def _per_pixel(value, n):
    return np.broadcast_to(np.asarray(value, float), (n,))


# ---------------------------------------------------------------- the cube


def build(cloud, shape, z, weighting="drizzle", *, rois=None, roiw=None, scalerad=None, weight_power=2.0,
          softrad=0.01, max_voxels=4_000_000, chunk=32_768):
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
            for vox, w, wf, wv, counted in pairs or ():
                if not vox.size:
                    continue
                # the chunk's pixels are adjacent in wavelength: count over the voxels they reach
                # only; entries off the block (zero weight) fall outside [0, nvox) and are dropped
                v0 = int(vox.min())
                span = int(vox.max()) - v0 + 1
                lo, hi = max(v0, 0), min(v0 + span, nvox)
                if hi <= lo:
                    continue
                part, inner = slice(lo, hi), slice(lo - v0, hi - v0)
                vox = vox - v0
                acc_f[part] += np.bincount(vox, wf, span)[inner]
                acc_w[part] += np.bincount(vox, w, span)[inner]
                acc_v[part] += np.bincount(vox, wv, span)[inner]
                acc_n[part] += np.bincount(counted - v0, None, span)[inner]
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
    """The sums' entries (:func:`_weighted`) of the pixels of ``c`` in the planes [z0, z1). Every
    pixel is overlapped with the same block of candidate spaxels (offsets 0..A-1, 0..B-1 from the corner of
    its bounding box) and the same number of planes, as (candidate, plane, pixel) arrays: no
    gathering per candidate; candidates off the footprint get zero area and are dropped with the
    zero weights."""
    lo, hi = c.lam - c.dlam / 2, c.lam + c.dlam / 2
    first, last = _plane_range(lo, hi, zlo, zhi, z0, z1)
    live = np.flatnonzero(last >= first)
    if not live.size:
        return
    if live.size < first.size:
        c, first, last, lo, hi = c.take(live), first[live], last[live], lo[live], hi[live]
    qx, qy = _footprints(c)                                            # (4, N)
    ox = np.floor(qx.min(axis=0) + 0.5)
    oy = np.floor(qy.min(axis=0) + 0.5)
    # corners relative to the block's first spaxel centre, small numbers: float32 is exact enough
    rx = (qx - ox).astype(np.float32)
    ry = (qy - oy).astype(np.float32)
    na = int(np.floor(rx.max() + 0.5)) + 1
    nb = int(np.floor(ry.max() + 0.5)) + 1
    area = _block_overlaps(rx, ry, na, nb)                             # (nb, na, N)
    ox, oy = ox.astype(np.int64), oy.astype(np.int64)
    ix = ox + np.arange(na)[:, None]                                   # (na, N)
    iy = oy + np.arange(nb)[:, None]                                   # (nb, N)
    off_y, off_x = (iy < 0) | (iy >= ny), (ix < 0) | (ix >= nx)
    if off_y.any():
        area[np.broadcast_to(off_y[:, None, :], area.shape)] = 0.0
    if off_x.any():
        area[np.broadcast_to(off_x[None, :, :], area.shape)] = 0.0
    area[area <= _MIN_AREA] = 0.0
    nplanes = int(np.max(last - first)) + 1
    planes = first + np.arange(nplanes)[:, None]                       # (M, N) plane of each overlap
    izc = np.minimum(planes, len(zlo) - 1)
    zov = np.minimum(zhi[izc], hi) - np.maximum(zlo[izc], lo)
    zov = np.where(planes <= last, np.maximum(zov, 0.0), 0.0).astype(np.float32)
    w = area[:, :, None, :] * zov                                      # (nb, na, M, N)
    base = (first - z0) * (nx * ny) + oy * nx + ox                     # voxel of candidate (0, 0), plane first
    offs = (np.arange(nb)[:, None, None] * nx + np.arange(na)[None, :, None]
            + np.arange(nplanes)[None, None, :] * (nx * ny))
    yield _weighted(w, base + offs[..., None], c.flux, c.err)


def _weighted(w, vox, flux, err):
    """(voxel, w, w f, (w e)^2, counted voxels) of the entries of ``w`` (..., N), float64 weights
    (np.bincount is several times faster with them). When most entries are non-zero, all are
    summed (the zeros add nothing; their voxel may be off the block, see :func:`build`), which is
    cheaper than gathering the others; the counted voxels are always those with w > 0."""
    hit = np.flatnonzero(w > 0)
    if hit.size > 0.6 * w.size:
        w64 = w.astype(np.float64)
        wf = w64 * flux
        we = w64 * err
        we *= we
        v = vox.reshape(-1)
        return v, w64.reshape(-1), wf.reshape(-1), we.reshape(-1), v[hit]
    wf = w * flux
    we = w * err
    we *= we
    v = vox.reshape(-1)[hit]
    return (v, w.reshape(-1)[hit].astype(np.float64), wf.reshape(-1)[hit].astype(np.float64),
            we.reshape(-1)[hit].astype(np.float64), v)


def _block_overlaps(rx, ry, na, nb):
    """Areas (nb, na, N) of the quadrilaterals ``rx``, ``ry`` (4, N corners relative to the block,
    all x, y >= -1/2) inside the unit squares centred on (a, b), a < na, b < nb.

    From the corner function G(X, Y) = area of the quadrilateral with x < X, y < Y at the square
    corners X = a + 1/2, Y = b + 1/2 (G = 0 on the block's lower and left sides): area(a, b) =
    G(a, b) - G(a-1, b) - G(a, b-1) + G(a-1, b-1). G is the contour integral of min(x, X)
    d min(y, Y) (clamping a closed curve into a quadrant keeps its winding number about every
    point inside it), summed over the edges in closed form (:func:`_edge_flat`, :func:`_edge_steep`:
    each edge in the variable along which it runs more, so no slope exceeds 1 and float32 is
    enough). The footprints are rectangles: edges 0, 2 of a pixel are of one kind, 1, 3 of the
    other. Pixels run along the last axis (long inner loops)."""
    n = rx.shape[1]
    g = np.zeros((nb, na, n), rx.dtype)
    xs = (np.arange(na, dtype=rx.dtype) + 0.5)[:, None]
    ys = (np.arange(nb, dtype=rx.dtype) + 0.5)[:, None]
    flat0 = np.abs(rx[1] - rx[0]) >= np.abs(ry[1] - ry[0])
    for kind in (True, False):
        group = np.flatnonzero(flat0 == kind)
        if not group.size:
            continue
        whole = group.size == n
        gx, gy = (rx, ry) if whole else (rx[:, group], ry[:, group])
        gg = g if whole else np.zeros((nb, na, group.size), rx.dtype)
        for e in range(4):
            e1 = (e + 1) % 4
            fn = _edge_flat if (e % 2 == 0) == kind else _edge_steep
            fn(gg, gx[e], gy[e], gx[e1], gy[e1], xs, ys)
        if not whole:
            g[:, :, group] = gg
    area = g
    area[:, 1:] -= g[:, :-1].copy()
    area[1:] -= area[:-1].copy()
    np.abs(area, out=area)
    return area


def _edge_flat(g, x0, y0, x1, y1, xs, ys):
    """Adds to ``g`` (nb, na, N) the edge's integral of min(x, X) d min(y, Y) as X dmin(y, Y) +
    (|dy| / 2dx) [min(x - X, 0)^2] between the ends of its part below Y (|dy| <= |dx|)."""
    dx, dy = x1 - x0, y1 - y0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ys - y0) / dy                                                  # (nb, N)
        s = np.where(dx != 0, 0.5 * np.abs(dy) / dx, 0.0).astype(g.dtype)
    np.clip(t, 0.0, 1.0, out=t)
    t[:, dy == 0] = 0.0
    q = (x0 + t * dx)[:, None, :] - xs                                      # x at the cut - X: (nb, na, N)
    np.minimum(q, 0.0, out=q)
    q *= q
    q0 = np.where(dy > 0, x0, x1) - xs                                      # the part's other end: (na, N)
    np.minimum(q0, 0.0, out=q0)
    q0 *= q0
    q -= q0
    q *= s
    g += q
    dyc = np.minimum(y1, ys) - np.minimum(y0, ys)                           # (nb, N)
    g += dyc[:, None, :] * xs


def _edge_steep(g, x0, y0, x1, y1, xs, ys):
    """The same for an edge with |dx| < |dy|, integrated by parts: [min(x, X) min(y, Y)] between
    its ends minus Y dmin(x, X) + (|dx| / 2dy) [min(y - Y, 0)^2] over its part left of X."""
    dx, dy = x1 - x0, y1 - y0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (xs - x0) / dx                                                  # (na, N)
        s = np.where(dy != 0, 0.5 * np.abs(dx) / dy, 0.0).astype(g.dtype)
    np.clip(t, 0.0, 1.0, out=t)
    t[:, dx == 0] = 0.0
    r = (y0 + t * dy)[None, :, :] - ys[:, :, None]                          # y at the cut - Y: (nb, na, N)
    np.minimum(r, 0.0, out=r)
    r *= r
    r0 = np.where(dx > 0, y0, y1) - ys                                      # (nb, N)
    np.minimum(r0, 0.0, out=r0)
    r0 *= r0
    r -= r0[:, None, :]
    r *= s
    g -= r
    # [min(x, X) min(y, Y)] - Y dmin(x, X) = [min(x, X) min(y - Y, 0)] between the ends
    g += np.minimum(y1 - ys, 0.0)[:, None, :] * np.minimum(x1, xs)
    g -= np.minimum(y0 - ys, 0.0)[:, None, :] * np.minimum(x0, xs)


def _footprints(c):
    """Corners (4, N) of each pixel's footprint: its along-slice segment widened by +-half."""
    x1, y1 = c.x + c.x1, c.y + c.y1
    x2, y2 = c.x + c.x2, c.y + c.y2
    dx, dy = x2 - x1, y2 - y1
    norm = np.hypot(dx, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        nxv = np.where(norm > 0, -dy / norm, 0.0) * c.half
        nyv = np.where(norm > 0, dx / norm, 1.0) * c.half
    return (np.stack([x1 - nxv, x2 - nxv, x2 + nxv, x1 + nxv]),
            np.stack([y1 - nyv, y2 - nyv, y2 + nyv, y1 + nyv]))


def _pointcloud_contributions(c, nx, ny, z0, z1, z, width, pars, weighting):
    """The sums' entries (:func:`_weighted`) of the pixels of ``c`` in the planes [z0, z1): every
    pixel with the same block of candidate spaxels (the box of its ROI circle) and planes, as (candidate,
    plane, pixel) arrays; candidates outside the ROI get w = 0 and are dropped."""
    roiw = pars["roiw"]
    first = np.maximum(np.searchsorted(z, c.lam - roiw, "left"), z0)
    last = np.minimum(np.searchsorted(z, c.lam + roiw, "right") - 1, z1 - 1)
    live = np.flatnonzero(last >= first)
    if not live.size:
        return
    if live.size < first.size:
        c, first, last = c.take(live), first[live], last[live]
        pars = {k: v[live] for k, v in pars.items()}
    r = pars["rois"]
    ox = np.maximum(np.ceil(c.x - r), 0.0)
    oy = np.maximum(np.ceil(c.y - r), 0.0)
    na = max(int(np.max(np.minimum(np.floor(c.x + r), nx - 1) - ox)) + 1, 1)
    nb = max(int(np.max(np.minimum(np.floor(c.y + r), ny - 1) - oy)) + 1, 1)
    # squared distances in spaxels, relative to the block (small numbers: float32); outside the
    # ROI (circle, grid, planes beyond ``last``) the distance is infinite: w = 0 in both weightings
    ddx = (ox - c.x).astype(np.float32) + np.arange(na, dtype=np.float32)[:, None]     # (na, N)
    ddy = (oy - c.y).astype(np.float32) + np.arange(nb, dtype=np.float32)[:, None]     # (nb, N)
    ddx *= ddx
    ddy *= ddy
    ox, oy = ox.astype(np.int64), oy.astype(np.int64)
    ddx[ox + np.arange(na)[:, None] >= nx] = np.inf
    ddy[oy + np.arange(nb)[:, None] >= ny] = np.inf
    d2 = ddy[:, None, :] + ddx[None, :, :]                                              # (nb, na, N)
    d2[d2 > (r * r).astype(np.float32)] = np.inf
    nplanes = int(np.max(last - first)) + 1
    planes = first + np.arange(nplanes)[:, None]                                      # (M, N)
    izc = np.minimum(planes, len(z) - 1)
    d3 = ((c.lam - z[izc]) / width[izc]).astype(np.float32)
    d3 *= d3
    d3[planes > last] = np.inf
    if weighting == "emsm":
        # exp(-(d2 + d3) / s) = exp(-d2 / s) exp(-d3 / s): two small exponentials, one product
        k = (-1.0 / pars["scalerad"]).astype(np.float32)
        d2 *= k
        d3 *= k
        w = np.exp(d2, out=d2)[:, :, None, :] * np.exp(d3, out=d3)                     # (nb, na, M, N)
    else:
        w = d2[:, :, None, :] + d3
        np.sqrt(w, out=w)
        w **= pars["power"].astype(np.float32)
        np.maximum(w, pars["softrad"].astype(np.float32), out=w)
        np.divide(1.0, w, out=w)
    base = (first - z0) * (nx * ny) + oy * nx + ox
    offs = (np.arange(nb)[:, None, None] * nx + np.arange(na)[None, :, None]
            + np.arange(nplanes)[None, None, :] * (nx * ny))
    yield _weighted(w, base + offs[..., None], c.flux, c.err)


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
