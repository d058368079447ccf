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
found by bisection in the cloud, sorted by the interval between plane centres each falls in (a
radix sort, :meth:`Cloud.sorted`), and processed in chunks of ``chunk`` pixels, so temporaries
stay within the CPU caches (a few MB) whatever the cube size. Drizzle also sums a list of such
clouds (one per exposure) without merging them; a cloud may be any object with ``lam``, ``dlam``
and ``take(slice)`` giving a :class:`Cloud` (the step converts each chunk to the cube frame there).

Speed: every pixel of a chunk gets the same block of candidate spaxels (the box of its ROI, or of
its footprint among the pixels with a box of that size) and the same number of planes, so the
weights are dense (candidate, [plane,] pixel) arrays with the pixels on the last axis (long inner
loops), in float32 relative to the block; drizzle keeps the spaxels a footprint overlaps (a third
of its box) before spreading them over the planes, the point-cloud weightings sum every entry of
the box (most are inside the ROI); the sums are np.bincount over the voxels (float64 sums).

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

__all__ = ["Cloud", "interval_keys", "merge_positions", "sky_grid", "linear_planes", "table_planes", "plane_bins", "build",
           "quad_square_overlap", "final_dq", "WEIGHTINGS"]

WEIGHTINGS = ("drizzle", "emsm", "msm")


@dataclass
class Cloud:
    """Detector pixels in the cube frame, sorted by wavelength (:meth:`sorted`)."""

    x: np.ndarray          # spaxel coordinates of the pixel centre (0-based)
    y: np.ndarray
    lam: np.ndarray        # [um]
    dlam: np.ndarray       # [um] wavelength extent (drizzle; None otherwise)
    flux: np.ndarray
    err: np.ndarray
    x1: np.ndarray = None  # along-slice edges of the footprint (drizzle), relative to (x, y)
    y1: np.ndarray = None
    x2: np.ndarray = None
    y2: np.ndarray = None
    half: np.ndarray = None   # half the slice width [spaxels]

    def take(self, idx):
        return Cloud(*(None if v is None else v[idx] for v in self.__dict__.values()))

    def sorted(self, z=None):
        """This cloud sorted by wavelength, in place, one array at a time (a whole copy of a
        NIRSpec program's cloud would double its memory). With the plane centres ``z``: sorted by
        the interval between centres each pixel falls in (:func:`_intervals`), not within it, a
        radix sort of 16-bit keys (O(N), 10x faster than sorting the wavelengths); :func:`build`
        searches such a cloud with a margin of one interval."""
        if z is None or len(z) >= 32000:
            order = np.argsort(self.lam, kind="stable")
        else:
            order = np.argsort(_intervals(self.lam, z), kind="stable")
        for name, v in self.__dict__.items():
            if v is not None:
                setattr(self, name, v[order])
        return self

    @staticmethod
    def concatenate(clouds, z=None):
        """One cloud of ``clouds``, emptying them array by array as it goes. With the plane centres
        ``z``: sorted as :meth:`sorted` sorts, each array gathered from one concatenation buffer
        per dtype (fresh memory costs page faults: one copy of the cloud fewer)."""
        order = None
        if z is not None and len(z) < 32000:
            order = np.argsort(np.concatenate([_intervals(c.lam, z) for c in clouds]), kind="stable")
        out, bufs = {}, {}
        for n in Cloud.__dataclass_fields__:
            vals = [getattr(c, n) for c in clouds]
            if any(v is None for v in vals):
                out[n] = None
            elif order is None:
                out[n] = np.concatenate(vals)
            else:
                dt = np.result_type(*vals)
                if dt not in bufs:
                    bufs[dt] = np.empty(order.size, dt)
                out[n] = np.concatenate(vals, out=bufs[dt]).take(order)
            for c in clouds:
                setattr(c, n, None)
        if z is not None and order is None:
            return Cloud(**out).sorted()
        return Cloud(**out)


    @staticmethod
    def merged(pieces, positions, n):
        """One cloud of ``n`` pixels from ``pieces`` (an iterable of clouds, consumed one at a
        time), piece k's pixels written at ``positions[k]`` (:func:`merge_positions`): the
        sorted cloud made directly, without a concatenated copy to gather from."""
        out = None
        for c, pos in zip(pieces, positions):
            if out is None:
                out = Cloud(**{name: None if v is None else np.empty(n, v.dtype) for name, v in c.__dict__.items()})
            for name, v in c.__dict__.items():
                if v is not None:
                    getattr(out, name)[pos] = v
        return out


def interval_keys(lam, z):
    """The sort keys of :meth:`Cloud.sorted` (the interval between plane centres ``z`` of each
    wavelength), or None where that sort takes the wavelengths themselves (32000 planes or more;
    no ``z``)."""
    if z is None or len(z) >= 32000:
        return None
    return _intervals(np.asarray(lam, float), z)


def merge_positions(keys):
    """Where the pixels of pieces, each already sorted stably by its ``keys`` (int16 from
    :func:`interval_keys`), fall in the stable sort of the pieces' concatenation (the order of
    :meth:`Cloud.concatenate`): by key, then piece, then position in the piece."""
    nk = max((int(k.max()) + 1 for k in keys if k.size), default=1)
    counts = np.stack([np.bincount(k, minlength=nk) for k in keys])        # (pieces, keys)
    tot = counts.sum(axis=0)
    before = np.cumsum(tot) - tot                                          # pixels of lower keys
    earlier = np.cumsum(counts, axis=0) - counts                           # ... of this key, earlier pieces
    out = []
    for k, cnt, ear in zip(keys, counts, earlier):
        base = before + ear - (np.cumsum(cnt) - cnt)                       # minus the key's start in the piece
        pos = np.arange(k.size, dtype=np.int64)
        pos += base.take(k)
        out.append(pos)
    return out


def _intervals(lam, z):
    """int16 index of the interval between plane centres ``z`` holding each wavelength (0 below
    the first, len(z) above the last): monotonic in ``lam``, each interval at most one bin wide."""
    z = np.asarray(z, float)
    if z.size < 2:
        return (lam >= z[0]).astype(np.int16)
    step = (z[-1] - z[0]) / (z.size - 1)
    if np.allclose(np.diff(z), step, rtol=1e-6, atol=0):
        k = (lam - z[0]) * (1.0 / step)          # monotonic in lam, as floor of it is
        np.floor(k, out=k)
        k += 1.0
        np.clip(k, 0, z.size, out=k)
        return k.astype(np.int16)
    return np.searchsorted(z, lam, "right").astype(np.int16)


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
          softrad=0.01, max_voxels=8_000_000, chunk=32_768):
    """Cube arrays (sci, err, wmap, weight) of ``shape`` (nz, ny, nx) with plane centres ``z`` from a
    wavelength-sorted :class:`Cloud`. ``rois`` [spaxels], ``roiw`` [um], ``scalerad`` [spaxels],
    ``weight_power``, ``softrad``: scalars or per-pixel arrays (aligned with the cloud).

    Drizzle also takes a list of sorted clouds (one per exposure): their pixels are summed as one
    cloud's, without merging them (the voxel sums then add in another order: float64 round-off)."""
    nz, ny, nx = shape
    z = np.asarray(z, float)
    width = plane_bins(z)
    zlo, zhi = z - width / 2, z + width / 2
    wmax = float(np.max(width)) if z.size else 0.0
    nxy = nx * ny
    clouds = list(cloud) if isinstance(cloud, (list, tuple)) else [cloud]
    if len(clouds) > 1 and weighting != "drizzle":
        raise ValueError("several clouds are summed by drizzle only")
    cloud = clouds[0]
    n = cloud.lam.size
    if weighting == "drizzle":
        margin = max((float(np.max(c.dlam)) for c in clouds if c.lam.size), default=0.0) / 2
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
        for cloud, s, sel in _chunks(clouds, zlo[z0] - margin - 2 * wmax, zhi[z1 - 1] + margin + 2 * wmax, chunk):
            c = cloud.take(sel)
            if weighting == "drizzle":
                pairs = _drizzle_contributions(c, nx, ny, z0, z1, zlo, zhi)
            else:
                pairs = _pointcloud_contributions(c, nx, ny, z0, z1, z, width,
                                                  {k: v[sel] for k, v in pars.items()}, weighting)
            for v0, span, vox, w, wf, wv, counted in pairs or ():
                # the chunk's pixels are adjacent in wavelength: count over the voxels they reach
                # only (offsets from v0); entries off the block have zero weight and fall outside
                # [0, nvox): dropped
                lo, hi = max(v0, 0), min(v0 + span, nvox)
                if hi <= lo or not vox.size:
                    continue
                part, inner = slice(lo, hi), slice(lo - v0, hi - v0)
                acc_f[part] += np.bincount(vox, wf, span)[inner]
                acc_w[part] += np.bincount(vox, w, span)[inner]
                acc_v[part] += np.bincount(vox, wv, span)[inner]
                acc_n[part] += np.bincount(vox, counted, span)[inner]
        # straight into the block's planes (NaN already where nothing counts), in float64, cast on writing
        good = acc_n > 0
        np.divide(acc_f, acc_w, out=sci[z0:z1].reshape(-1), where=good)
        np.sqrt(acc_v, out=acc_v)
        np.divide(acc_v, acc_w, out=err[z0:z1].reshape(-1), where=good)
        wmap[z0:z1] = acc_n.reshape(z1 - z0, ny, nx)
        weight[z0:z1] = acc_w.reshape(z1 - z0, ny, nx)
    return sci, err, wmap, weight


def _chunks(clouds, lo, hi, chunk):
    """(cloud, start, slice) of the runs of at most ``chunk`` pixels of each cloud that can hold
    wavelengths in [lo, hi] (the bounds hold the margin of two bins: a cloud may be sorted by
    interval only, :meth:`Cloud.sorted`)."""
    for cloud in clouds:
        first = int(np.searchsorted(cloud.lam, lo, "left"))
        last = int(np.searchsorted(cloud.lam, hi, "right"))
        for s in range(first, last, chunk):
            yield cloud, s, slice(s, min(last, s + chunk))


def _plane_range(lo, hi, zlo, zhi, z0, z1):
    """First plane whose bin ends above ``lo`` and last plane starting below ``hi``, limited to the
    block [z0, z1)."""
    first = np.maximum(_search(zhi, lo, "right"), z0)
    last = np.minimum(_search(zlo, hi, "left") - 1, z1 - 1)
    return first, last


def _drizzle_contributions(c, nx, ny, z0, z1, zlo, zhi):
    """The sums' entries (:func:`_entries`) of the pixels of ``c`` in the planes [z0, z1). The
    pixels of one box size are overlapped with the same block of candidate spaxels (offsets
    0..A-1, 0..B-1 from the corner of their bounding box), as (candidate, pixel) arrays: no
    gathering per candidate; the candidates they overlap are then spread over the same number of
    planes."""
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
    ox, oy = ox.astype(np.int64), oy.astype(np.int64)
    # the spatial overlaps above round-off (_MIN_AREA), as (candidate offset, pixel) pairs; the
    # pixels grouped by the size of their own box (a 2-spaxel-wide footprint at 45 degrees spans
    # 3 x 3 spaxels more often than 4 x 4: a third fewer cells to integrate)
    na_p = np.floor(rx.max(axis=0) + 0.5).astype(np.int64) + 1
    nb_p = np.floor(ry.max(axis=0) + 0.5).astype(np.int64) + 1
    key = na_p * (int(nb_p.max()) + 1) + nb_p
    counts = np.bincount(key)
    kinds = np.flatnonzero(counts)
    # each kind's pixels in increasing order (the groups of a stable radix sort of the small keys)
    groups = np.split(np.argsort(key.astype(np.int16), kind="stable"), np.cumsum(counts[kinds])[:-1]) \
        if kinds.size > 1 else [None]
    spoff, pix, a = [], [], []
    for k, g in zip(kinds, groups):
        na, nb = divmod(int(k), int(nb_p.max()) + 1)
        gx, gy = (rx, ry) if g is None else (rx[:, g], ry[:, g])
        area = _block_overlaps(gx, gy, na, nb)                         # (nb, na, G)
        gox, goy = (ox, oy) if g is None else (ox[g], oy[g])
        off_y = (goy + np.arange(nb)[:, None] < 0) | (goy + np.arange(nb)[:, None] >= ny)    # (nb, G)
        off_x = (gox + np.arange(na)[:, None] < 0) | (gox + np.arange(na)[:, None] >= nx)    # (na, G)
        if off_y.any():
            area[np.broadcast_to(off_y[:, None, :], area.shape)] = 0.0
        if off_x.any():
            area[np.broadcast_to(off_x[None, :, :], area.shape)] = 0.0
        hit = np.flatnonzero(area.reshape(-1) > _MIN_AREA)
        cand, p = np.divmod(hit, area.shape[-1])
        a.append(area.reshape(-1).take(hit))
        spoff.append((np.arange(nb)[:, None] * nx + np.arange(na)).reshape(-1).take(cand))
        pix.append(p if g is None else g.take(p))
    a, spoff, pix = (np.concatenate(v) if len(v) > 1 else v[0] for v in (a, spoff, pix))
    nplanes = int(np.max(last - first)) + 1
    planes = first + np.arange(nplanes)[:, None]                       # (M, N) plane of each overlap
    izc = np.minimum(planes, len(zlo) - 1)
    zov = np.minimum(zhi[izc], hi) - np.maximum(zlo[izc], lo)
    zov = np.where(planes <= last, np.maximum(zov, 0.0), 0.0).astype(np.float32)
    nxy = nx * ny
    base = (first - z0) * nxy + oy * nx + ox                           # voxel of candidate (0, 0), plane first
    v0 = int(base.min())
    base -= v0
    sp = base.take(pix) + spoff                                        # (H,)
    span = int(sp.max()) + (nplanes - 1) * nxy + 1 if sp.size else 1
    flux, err = c.flux.take(pix), c.err.take(pix)
    # plane m of each overlap, for the pixels that reach it only (a pixel spans 1 or 2 planes, the
    # chunk's widest M): no zero entries; the voxel sums see the same terms in the same order
    reach = (last - first).take(pix) if nplanes > 1 else None
    vox, w, fl, er = [sp], [zov[0].take(pix) * a], [flux], [err]
    for m in range(1, nplanes):
        sel = np.flatnonzero(reach >= m)
        vox.append(sp.take(sel) + m * nxy)
        w.append(zov[m].take(pix.take(sel)) * a.take(sel))
        fl.append(flux.take(sel))
        er.append(err.take(sel))
    vox, w, fl, er = (np.concatenate(v) if len(v) > 1 else v[0] for v in (vox, w, fl, er))
    yield _entries(v0, span, vox, w, fl, er, w > 0)


def _entries(v0, span, vox, w, flux, err, counted):
    """The sums' entries of a chunk: (v0, span, voxel - v0, w, w f, (w e)^2, count weights) with
    ``flux``, ``err`` broadcast against ``w`` (float32; np.bincount sums them in float64) and
    ``counted`` the entries that count in WMAP (w > 0; None: all)."""
    wf = w * flux
    we = w * err
    we *= we
    if counted is not None and counted.all():
        counted = None        # a plain count: np.bincount without weights (no float copy of them)
    return (v0, span, vox.reshape(-1), w.reshape(-1), wf.reshape(-1), we.reshape(-1),
            None if counted is None else counted.reshape(-1))


def _block_overlaps(rx, ry, na, nb):
    """Areas (nb, na, N) of the quadrilaterals ``rx``, ``ry`` (4, N corners relative to the block,
    all x, y >= -1/2) inside the unit squares centred on (a, b), a < na, b < nb.

    From the corner function G(X, Y) = area of the quadrilateral with x < X, y < Y at the square
    corners X = a + 1/2, Y = b + 1/2 (G = 0 on the block's lower and left sides): area(a, b) =
    G(a, b) - G(a-1, b) - G(a, b-1) + G(a-1, b-1). G is the contour integral of min(x, X)
    d min(y, Y) (clamping a closed curve into a quadrant keeps its winding number about every
    point inside it), summed over the edges in closed form (:func:`_edge_flat`:
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
            _edge_flat(gg, gx[e], gy[e], gx[e1], gy[e1], xs, ys, steep=(e % 2 == 0) != kind)
        if not whole:
            g[:, :, group] = gg
    area = g
    area[:, 1:] -= g[:, :-1].copy()
    area[1:] -= area[:-1].copy()
    np.abs(area, out=area)
    return area


def _edge_flat(g, x0, y0, x1, y1, xs, ys, steep=False):
    """Adds to ``g`` (nb, na, N) an edge's integral of min(x, X) d min(y, Y).

    Flat edge (|dy| <= |dx|): X dmin(y, Y) + (|dy| / 2dx) [min(x - X, 0)^2] between the ends of
    its part below Y. Steep edge (``steep``, |dx| < |dy|), integrated by parts: [min(x, X) min(y, Y)]
    between its ends minus the same integral with the axes swapped, which for it is flat: the
    quadratic term is the flat one with x, y and X, Y exchanged (on g's transpose), and the rest
    [min(x, X) min(y, Y)] - Y dmin(x, X) = [min(x, X) min(y - Y, 0)] between the ends."""
    if steep:
        _edge_square(g.transpose(1, 0, 2), y0, x0, y1, x1, ys, xs, -1.0)
        g += np.minimum(y1 - ys, 0.0)[:, None, :] * np.minimum(x1, xs)
        g -= np.minimum(y0 - ys, 0.0)[:, None, :] * np.minimum(x0, xs)
    else:
        _edge_square(g, x0, y0, x1, y1, xs, ys, 1.0)
        dyc = np.minimum(y1, ys) - np.minimum(y0, ys)                       # (nb, N)
        g += dyc[:, None, :] * xs


def _edge_square(g, x0, y0, x1, y1, xs, ys, sign):
    """Adds ``sign`` (|dy| / 2dx) [min(x - X, 0)^2] between the ends of the part of a flat edge
    below Y to ``g`` (len(ys), len(xs), N)."""
    dx, dy = x1 - x0, y1 - y0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (ys - y0) / dy                                                  # (nb, N)
        s = np.where(dx != 0, (0.5 * sign) * np.abs(dy) / dx, 0.0).astype(g.dtype)
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
    """The sums' entries (:func:`_entries`) of the pixels of ``c`` in the planes [z0, z1): every
    pixel with the same block of candidate spaxels (the box of its ROI circle) and planes, as
    (candidate, plane, pixel) arrays; candidates outside the ROI get w = 0 (most are inside: all
    entries are summed, which is cheaper than gathering)."""
    roiw = pars["roiw"]
    first = np.maximum(_search(z, c.lam - roiw, "left"), z0)
    last = np.minimum(_search(z, c.lam + roiw, "right") - 1, z1 - 1)
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
    nxy = nx * ny
    base = (first - z0) * nxy + oy * nx + ox
    v0 = int(base.min())
    base -= v0
    offs = (np.arange(nb)[:, None, None] * nx + np.arange(na)[None, :, None]
            + np.arange(nplanes)[None, None, :] * nxy)
    span = int(base.max()) + int(offs.max()) + 1
    pos = w > 0
    if np.count_nonzero(pos) < 0.5 * pos.size:       # large ROI boxes: gather the entries inside
        hit = np.flatnonzero(pos)
        rows, pix = np.divmod(hit, first.size)
        yield _entries(v0, span, base.take(pix) + offs.reshape(-1).take(rows), w.reshape(-1).take(hit),
                       c.flux.take(pix), c.err.take(pix), None)
    else:
        yield _entries(v0, span, base + offs[..., None], w, c.flux, c.err, pos)


def _search(a, v, side):
    """np.searchsorted(a, v, side), exactly, searching only the part of ``a`` between the results
    of v.min() and v.max() (a chunk's pixels span a few planes, not all)."""
    i = int(np.searchsorted(a, v.min(), side))
    j = int(np.searchsorted(a, v.max(), side))
    out = np.searchsorted(a[i:j], v, side)
    out += i
    return out


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
