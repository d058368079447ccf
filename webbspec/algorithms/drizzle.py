"""Square-kernel drizzle of slit pixels onto a rectified (wavelength, along-slit) grid, and blot.

Every slit pixel carries its own coordinates (WAVELENGTH [um], XI/ETA [arcsec] from the slit's
WSREFRA/WSREFDE), so no WCS is evaluated here:

* :func:`build_grid` makes the output grid of one source from its input slits: the wavelength
  axis is the NIRSpec rule (per-column median WAVELENGTH of the first input with > 100 good pixels,
  extended by the other inputs' column medians beyond its range, near-duplicates dropped); the
  spatial axis is the principal axis of the pooled (XI, ETA) cloud (the slit is narrow, so its
  pixels lie along a line on the sky), sampled at the median along-slit pixel spacing /
  ``pixel_scale_ratio`` (or ``pixel_scale`` arcsec). As the official grid, it spans every input
  pixel with coordinates (whatever its data: the footprint of each input's WCS), ny =
  ceil(span / step) + 1 rows, with the middle of the span at row ny/2; the rows of ours and of the
  official s2d then fall on the same sky positions (within 0.01 row on the MOS side by side),
  which an extended source's fixed-row extraction aperture depends on.
* :func:`pixel_map` gives every input pixel centre's fractional output (x, y): x by interpolating
  lambda on the output wavelength grid, y by projecting (XI, ETA) on the slit axis.
* :func:`drizzle` spreads each input pixel, as an axis-aligned box of the local pixel-map
  Jacobian (width |dx/di|, height |det J|/width, so the area is the parallelogram's), shrunk by
  ``pixfrac``, over the output pixels by overlap area. The loop runs over the few column offsets
  a footprint can reach (vectorised over the row offsets), never over pixels; sums use
  ``np.bincount``.
* :func:`blot` interpolates a rectified image back at input pixel positions (bilinear);
  :func:`blot_many` several images at the same positions.

Conventions: output pixel (row j, column i) covers [i-0.5, i+0.5] x [j-0.5, j+0.5]; output row r
lies at along-slit offset (r - crpix2) * cdelt2 [arcsec] from (ra0, dec0), in direction PA (deg
east of north), i.e. tangent offsets (r - crpix2) * cdelt2 * (sin PA, cos PA).
"""

import warnings
from dataclasses import dataclass

import numpy as np

from .. import dq as dqbits
from ..errors import InputError
from ..io.skycoords import radec_to_xieta, xieta_to_radec
from .nanmedian import nanmedian
from .ivm_smooth import smooth_along_dispersion

__all__ = ["Grid", "build_grid", "slit_axis_coords", "pixel_map", "interior", "footprints",
           "input_weights", "drizzle", "blot", "blot_many", "grid_header", "source_row"]

_BAD = dqbits.DO_NOT_USE | dqbits.NON_SCIENCE


@dataclass
class Grid:
    """A rectified output grid: 1-D wavelengths per column and a linear along-slit axis."""

    wave: np.ndarray        # (nx,) um, strictly increasing
    ny: int
    ra0: float              # deg, sky position of row crpix2
    dec0: float
    pa: float               # deg east of north, direction of increasing row
    cdelt2: float           # arcsec per row
    crpix2: float           # 0-based row of (ra0, dec0)

    @property
    def shape(self):
        return (self.ny, self.wave.size)

    def row_of(self, s):
        """Fractional row of along-slit offset ``s`` [arcsec from (ra0, dec0)]."""
        return self.crpix2 + np.asarray(s) / self.cdelt2


def _good(slit):
    """Pixels usable for the grid and the drizzle: finite coordinates and data, good DQ."""
    ok = np.isfinite(slit["WAVELENGTH"]) & np.isfinite(slit["XI"]) & np.isfinite(slit["ETA"])
    ok &= np.isfinite(slit["SCI"])
    if "DQ" in slit:
        ok &= (np.asarray(slit["DQ"]) & _BAD) == 0
    return ok


def _xieta(slit, ref):
    """XI, ETA [arcsec, float64] of ``slit`` re-referenced to ``ref`` = (ra, dec) if it differs."""
    xi, eta = np.asarray(slit["XI"], float), np.asarray(slit["ETA"], float)
    own = (float(slit.header["WSREFRA"]), float(slit.header["WSREFDE"]))
    if ref is None or np.allclose(own, ref, rtol=0, atol=1e-12):
        return xi, eta
    ra, dec = xieta_to_radec(xi, eta, *own)
    return radec_to_xieta(ra, dec, *ref)


def _column_median_wave(slit, good):
    lam = np.where(good, slit["WAVELENGTH"], np.nan).astype(float)
    with warnings.catch_warnings():      # all-NaN columns are expected (off the slit)
        warnings.simplefilter("ignore", RuntimeWarning)
        med = nanmedian(lam, axis=0)     # numpy's, bit for bit, faster (algorithms.nanmedian)
    return med[np.isfinite(med)]


def _wave_axis(slits, goods):
    ref = next((i for i, g in enumerate(goods) if g.sum() > 100), None)
    if ref is None:
        ref = int(np.argmax([g.sum() for g in goods]))
    ref_wave = np.sort(_column_median_wave(slits[ref], goods[ref]))
    wave = ref_wave
    if wave.size < 2:
        raise InputError(slits[ref].name or "slit", "fewer than 2 columns with a valid wavelength")
    extra = [wave]
    for i, (s, g) in enumerate(zip(slits, goods)):
        if i == ref or not g.any():
            continue
        w = _column_median_wave(s, g)
        extra.append(w[(w < wave[0]) | (w > wave[-1])])
    wave = np.sort(np.concatenate(extra))
    # drop near-duplicates (< 0.1 of the smallest reference spacing)
    tol = 0.1 * np.min(np.diff(ref_wave))
    keep = np.concatenate([[True], np.diff(wave) > tol])
    return wave[keep]


def _slit_direction(points, first):
    """Unit vector of the principal axis of (xi, eta) ``points``; sign: increasing input row."""
    c = points.mean(axis=0)
    cov = np.cov((points - c).T)
    vals, vecs = np.linalg.eigh(cov)
    u = vecs[:, np.argmax(vals)]
    xi, eta, good = first
    # orient u so that the along-slit coordinate grows with the input row index
    s = np.where(good, xi * u[0] + eta * u[1], np.nan)
    with np.errstate(all="ignore"):
        d = np.nanmedian(np.diff(s, axis=0)) if s.shape[0] > 1 else 1.0
    if np.isfinite(d) and d < 0:
        u = -u
    return u, c


def slit_axis_coords(slit, grid, ref):
    """Along-slit offset [arcsec] of every pixel of ``slit`` on ``grid`` (float64)."""
    xi, eta = _xieta(slit, ref)
    # (ra0, dec0) lies on the axis; its tangent offsets from ref are (xi0, eta0)
    xi0, eta0 = radec_to_xieta(grid.ra0, grid.dec0, *ref)
    pa = np.radians(grid.pa)
    return (xi - xi0) * np.sin(pa) + (eta - eta0) * np.cos(pa)


def build_grid(slits, pixel_scale_ratio=1.0, pixel_scale=None, output_shape=None):
    """The output :class:`Grid` for the slits of one source (see module docstring).

    ``output_shape`` ([nx, ny], official order) fixes the number of rows (centred on the inputs);
    the wavelength axis always follows the inputs.
    """
    if not slits:
        raise InputError("resample", "no slits to resample")
    goods = [_good(s) for s in slits]
    if not any(g.any() for g in goods):
        raise InputError(slits[0].name or "slit", "no valid pixels (all flagged or NaN)")
    ref = (float(slits[0].header["WSREFRA"]), float(slits[0].header["WSREFDE"]))
    wave = _wave_axis(slits, goods)

    coords = [_xieta(s, ref) for s in slits]
    pts = np.concatenate([np.column_stack([xi[g], eta[g]]) for (xi, eta), g in zip(coords, goods)])
    first = next(i for i, g in enumerate(goods) if g.any())
    u, centre = _slit_direction(pts, (*coords[first], goods[first]))
    # (ra0, dec0): the point of the axis nearest the reference position (foot of the perpendicular)
    p0 = centre - np.dot(centre, u) * u
    ra0, dec0 = xieta_to_radec(p0[0], p0[1], *ref)
    pa = float(np.degrees(np.arctan2(u[0], u[1])))

    spacing = []
    for (xi, eta), g in zip(coords, goods):
        s = xi * u[0] + eta * u[1]
        if s.shape[0] > 1:
            d = np.abs(np.diff(s, axis=0))[g[1:] & g[:-1]]
            spacing.append(d)
    spacing = np.concatenate(spacing) if spacing else np.array([])
    if pixel_scale:
        cdelt2 = float(pixel_scale)
    else:
        if spacing.size == 0 or not np.isfinite(np.median(spacing)) or np.median(spacing) <= 0:
            raise InputError(slits[0].name or "slit", "cannot measure the along-slit pixel scale")
        cdelt2 = float(np.median(spacing)) / float(pixel_scale_ratio)
    placed = [np.isfinite(xi) & np.isfinite(eta) & np.isfinite(s["WAVELENGTH"]) for (xi, eta), s in zip(coords, slits)]
    s_all = np.concatenate([xi[m] * u[0] + eta[m] * u[1] for (xi, eta), m in zip(coords, placed)]) - np.dot(p0, u)
    smin, smax = float(s_all.min()), float(s_all.max())
    ny = int(np.ceil((smax - smin) / cdelt2)) + 1
    if output_shape is not None:
        ny = int(list(output_shape)[1])
    crpix2 = ny / 2.0 - 0.5 * (smin + smax) / cdelt2
    return Grid(wave=wave, ny=ny, ra0=float(ra0), dec0=float(dec0), pa=pa, cdelt2=cdelt2,
                crpix2=float(crpix2))


def _wave_to_x(lam, wave):
    """Fractional column of wavelengths ``lam`` on the tabular axis ``wave`` (linear beyond ends)."""
    x = np.interp(lam, wave, np.arange(wave.size, dtype=float))
    lo, hi = lam < wave[0], lam > wave[-1]
    x = np.where(lo, (lam - wave[0]) / (wave[1] - wave[0]), x)
    x = np.where(hi, wave.size - 1 + (lam - wave[-1]) / (wave[-1] - wave[-2]), x)
    return x


def pixel_map(slit, grid, ref=None):
    """Fractional output (x, y) of every input pixel centre (NaN where the coordinates are NaN)."""
    if ref is None:
        ref = (float(slit.header["WSREFRA"]), float(slit.header["WSREFDE"]))
    lam = np.asarray(slit["WAVELENGTH"], float)
    x = _wave_to_x(np.where(np.isfinite(lam), lam, 0.0), grid.wave)
    x[~np.isfinite(lam)] = np.nan
    y = grid.row_of(slit_axis_coords(slit, grid, ref))
    return x, y


def interior(x, y):
    """Pixels whose map and all 8 neighbours' maps are finite (the array border counts as finite).

    A pixel next to one without coordinates (off the slit, outside the gwcs bounding box) straddles
    the slit edge: it is only partly illuminated, and its footprint cannot be measured on that
    side. The official drizzle skips such pixels (it interpolates each pixel's corners from the
    neighbouring pixel-map values); resample_spec does the same.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    pad = np.pad(ok, 1, constant_values=True)
    ny, nx = ok.shape
    out = ok.copy()
    for dj in range(3):
        for di in range(3):
            out &= pad[dj:dj + ny, di:di + nx]
    return out


def _deriv(a, axis):
    """Centred difference along ``axis`` (one-sided at the ends and next to NaNs)."""
    n = a.shape[axis]
    if n < 2:
        return np.full_like(a, np.nan)
    a = np.moveaxis(a, axis, 0)
    d = np.diff(a, axis=0)
    out = np.empty_like(d, shape=a.shape)
    out[0], out[-1] = d[0], d[-1]      # one side only: the other is off the array
    left, right = d[:-1], d[1:]        # a[i] - a[i-1], a[i+1] - a[i] of the inner rows
    fl, fr = np.isfinite(left), np.isfinite(right)
    with np.errstate(all="ignore"):
        out[1:-1] = np.where(fl & fr, 0.5 * (left + right), np.where(fl, left, right))
    return np.moveaxis(out, 0, axis)


def footprints(x, y):
    """Box width (output columns) and height (output rows) of each input pixel's footprint."""
    dxdi, dydi = _deriv(x, 1), _deriv(y, 1)
    dxdj, dydj = _deriv(x, 0), _deriv(y, 0)
    area = np.abs(dxdi * dydj - dxdj * dydi)
    w = np.abs(dxdi)
    with np.errstate(all="ignore"):
        h = area / w
    # fall back to the direct derivatives where the Jacobian is incomplete
    h = np.where(np.isfinite(h), h, np.abs(dydj))
    return w, h


def input_weights(slit, weight_type="ivm", good=None):
    """Drizzle weight of each pixel: 1/VAR_RNOISE (ivm), that smoothed along the dispersion
    (ivm-smooth: :mod:`.ivm_smooth`), EFFEXPTM (exptime) or 1; 0 where bad."""
    if good is None:
        good = _good(slit)
    wt = str(weight_type).lower() if weight_type is not None else "none"
    if wt in ("ivm", "ivm-smooth") and "VAR_RNOISE" in slit:
        vr = np.asarray(slit["VAR_RNOISE"], float)
        with np.errstate(all="ignore"):
            w = np.where(np.isfinite(vr) & (vr > 0), 1.0 / vr, 0.0)
        if wt == "ivm-smooth":   # medians over the good pixels only
            w = smooth_along_dispersion(np.where(good, w, 0.0), slit.header.get("DISPAXIS", 1))
    elif wt == "exptime":
        t = slit.header.get("EFFEXPTM", slit.header.get("TMEASURE", 1.0))
        w = np.full(slit.shape, float(t if t else 1.0))
    else:
        w = np.ones(slit.shape)
    return np.where(good, w, 0.0)


def drizzle(grid, maps, weights, values, pixfrac=1.0, kernel="square", coverage=False):
    """Drizzle several inputs onto ``grid``; per-input sums so callers can combine as they need.

    ``maps``: list of (x, y) from :func:`pixel_map`; ``weights``: list of per-pixel weights;
    ``values``: dict name -> list of per-pixel arrays (one per input). Returns ``(wsum, sums)``
    with ``wsum[k]`` (ny, nx) = sum of w*a over input k and ``sums[name][k]`` = sum of w*a*value.
    ``kernel="point"`` puts each pixel wholly in the output pixel containing its centre.
    ``coverage``: also return, third, ``wsum`` of unit weights where ``weights`` > 0 (the same
    numbers as a second call with those weights, without computing the footprints again).

    The (input pixel, output pixel) pairs are listed once, input by input, offset by offset, pixel
    by pixel (``np.bincount`` adds them in that order: the sums do not depend on how they are
    listed, bit for bit, as long as that order is kept); every value is then taken at the pairs'
    input pixels from the inputs laid end to end.
    """
    ny, nx = grid.shape
    nout = ny * nx
    nin = len(maps)
    point = str(kernel).lower() == "point"
    chunks = []          # (input pixel, overlap area, output pixel, weight x area), globally indexed
    start = 0            # index of input k's first pixel in the inputs laid end to end
    for k, ((x, y), w) in enumerate(zip(maps, weights)):
        pairs = _pairs_point if point else _pairs_square
        chunks += pairs(x, y, w, nx, ny, pixfrac, start, k * nout)
        start += np.size(w)
    src, a, idx, wa = (np.concatenate([c[i] for c in chunks]) if chunks else np.zeros(0, t)
                       for i, t in enumerate((np.int64, float, np.int64, float)))
    size = nin * nout
    wsum = np.bincount(idx, weights=wa, minlength=size).reshape(nin, ny, nx)
    sums = {}
    for name, arrays in values.items():
        v = np.concatenate([np.asarray(arrays[k], float).ravel() for k in range(nin)]) if nin else np.zeros(0)
        v = _finite(v)[src]      # per input pixel (fewer than the pairs), then taken per pair
        sums[name] = np.bincount(idx, weights=wa * v, minlength=size).reshape(nin, ny, nx)
    if coverage:
        return wsum, sums, np.bincount(idx, weights=a, minlength=size).reshape(nin, ny, nx)
    return wsum, sums


def _finite(v):
    """``np.nan_to_num(v)`` in place (``v``: an array of ours), converting only the non-finite
    values (few: quicker than numpy's on large arrays)."""
    bad = ~np.isfinite(v)
    if bad.any():
        v[bad] = np.nan_to_num(v[bad])
    return v


def _pairs_point(x, y, w, nx, ny, pixfrac, pix0, out0):
    """[(input pixel + pix0, area 1, output pixel + out0, weight)] of the used pixels, each in
    the output pixel holding its centre (``pixfrac`` unused)."""
    use = (w > 0) & np.isfinite(x) & np.isfinite(y)
    ix = np.floor(x[use] + 0.5).astype(np.int64)
    iy = np.floor(y[use] + 0.5).astype(np.int64)
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    pix = np.flatnonzero(use)[inside]
    return [(pix0 + pix, np.ones(pix.size), out0 + iy[inside] * nx + ix[inside], w.ravel()[pix])]


def _pairs_square(x, y, w, nx, ny, pixfrac, pix0, out0):
    """[(input pixel + pix0, overlap area, output pixel + out0, weight x area)] of every overlap
    > 0 of the pixels' footprints with the output pixels, in chunks ordered by column offset,
    then within a chunk by row offset, then input pixel.

    The loop runs over the few column offsets a footprint can reach, vectorised over the row
    offsets and the pixels (flat (row offset, pixel) indices: 1-D takes). An overlap area is > 0
    where both its column and row extents are: they are differences of coordinates (>= 1e-13
    when not 0), whose product cannot underflow."""
    use = (w > 0) & np.isfinite(x) & np.isfinite(y)
    fw, fh = footprints(x, y)
    flat = np.flatnonzero(use & np.isfinite(fw) & np.isfinite(fh))
    n = flat.size
    xc, yc = x.ravel()[flat], y.ravel()[flat]
    hw, hh = 0.5 * pixfrac * fw.ravel()[flat], 0.5 * pixfrac * fh.ravel()[flat]
    x0, x1, y0, y1 = xc - hw, xc + hw, yc - hh, yc + hh
    ix0, iy0 = np.floor(x0 + 0.5).astype(np.int64), np.floor(y0 + 0.5).astype(np.int64)
    nxo = int(np.ceil(np.max(2 * hw, initial=0))) + 1
    nyo = int(np.ceil(np.max(2 * hh, initial=0))) + 1
    wk = w.ravel()[flat]
    # row overlaps of every (row offset, pixel), flattened; 0 where off the grid
    jj = iy0 + np.arange(nyo)[:, None]
    jf = jj.astype(float)
    oy = np.maximum(np.minimum(y1, jf + 0.5) - np.maximum(y0, jf - 0.5), 0.0).ravel()
    oky = ((oy > 0) & ((jj >= 0) & (jj < ny)).ravel()).reshape(nyo, n)
    row_out = (out0 + jj * nx).ravel()
    chunks = []
    for dx in range(nxo):
        ii = ix0 + dx
        fi = ii.astype(float)
        ox = np.maximum(np.minimum(x1, fi + 0.5) - np.maximum(x0, fi - 0.5), 0.0)
        okx = (ox > 0) & (ii >= 0) & (ii < nx)
        q = np.flatnonzero(oky & okx)          # row offset major, then pixel: the sums' order
        p = q % n if n else q
        a = ox[p] * oy[q]
        chunks.append((pix0 + flat[p], a, row_out[q] + ii[p], wk[p] * a))
    return chunks


def blot(image, x, y):
    """Bilinear interpolation of ``image`` (ny, nx) at fractional (x, y); NaN outside or from NaNs."""
    return blot_many([image], x, y)[0]


def blot_many(images, x, y):
    """:func:`blot` of several images of one shape at the same (x, y): the corners and their
    weights are found once."""
    ny, nx = np.shape(images[0])
    ok = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
    xs, ys = x[ok], y[ok]
    i0 = np.minimum(np.floor(xs).astype(np.int64), max(nx - 2, 0))
    j0 = np.minimum(np.floor(ys).astype(np.int64), max(ny - 2, 0))
    i1, j1 = np.minimum(i0 + 1, nx - 1), np.minimum(j0 + 1, ny - 1)
    fx, fy = xs - i0, ys - j0
    corners = (j0 * nx + i0, j0 * nx + i1, j1 * nx + i0, j1 * nx + i1)
    weights = ((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy)
    outs = []
    for image in images:
        flat = np.asarray(image).ravel()
        out = np.full(np.shape(x), np.nan)
        v = [flat[c] for c in corners]
        out[ok] = weights[0] * v[0] + weights[1] * v[1] + weights[2] * v[2] + weights[3] * v[3]
        outs.append(out)
    return outs


def grid_header(grid):
    """The S2D* keywords describing ``grid`` (see docs/internals.md)."""
    return {
        "S2DRA0": (grid.ra0, "[deg] RA of row S2DCRPX2"),
        "S2DDEC0": (grid.dec0, "[deg] Dec of row S2DCRPX2"),
        "S2DCRPX2": (grid.crpix2, "0-based row of S2DRA0/S2DDEC0"),
        "S2DCDLT2": (grid.cdelt2, "[arcsec] along-slit step per row"),
        "S2DPA": (grid.pa, "[deg] E of N, direction of increasing row"),
        "DISPAXIS": (1, "dispersion along x"),
    }


def source_row(header, ra, dec):
    """Fractional row of sky position (ra, dec) projected on an s2d's slit axis (S2D* keys)."""
    xi, eta = radec_to_xieta(ra, dec, float(header["S2DRA0"]), float(header["S2DDEC0"]))
    pa = np.radians(float(header["S2DPA"]))
    s = xi * np.sin(pa) + eta * np.cos(pa)
    return float(header["S2DCRPX2"]) + float(s) / float(header["S2DCDLT2"])
