"""cube_build: IFU exposures -> cubes (`_s3d`), one per band, channel or all (output_type).

Input: one exposure or a list of them (Stage 3: every exposure of the association), each an IFU
exposure after assign_wcs (docs/internals.md "IFU exposures and cubes"). Output: a list of
:class:`webbspec.io.cubes.Cube`, ``cube.name`` the official suffix (``ch1-short``,
``ch1-2-shortmediumlong``, ``g395m-f290lp``).

As the official CubeBuildStep: bands are MRS (channel, band) -- a pixel's channel is SLICE // 100
-- or NIRSpec (grating, filter); ``channel``/``band``/``grating``/``filter`` other than "all"
select bands and make one cube of them; ``output_type`` band | channel (MRS) | grating (NIRSpec)
| multi groups them. Per cube, from the cubepar reference (or scalexy / scalew / rois / roiw /
wavemin / wavemax when set): the spaxel size (the smallest of the bands), a linear wavelength grid
(min + (k + 1/2) step) or, for several bands (multi, or linear_wave False), the cubepar's
wavelength table and its per-wavelength ROIs; rois x 1.5 with fewer than 4 exposures unless emsm.
The sky grid is a TAN plane at the middle of the footprint (pixel centres), north up (cube_pa
rotates it), odd-sized and symmetric about the tangent point. Pixels used: finite SCI, not
DO_NOT_USE / NON_SCIENCE, within the wavelength range (+ the ROI or the pixel extent). Kernels and
weights: :mod:`webbspec.algorithms.cube_build`. The drizzle footprint of a pixel is the segment
between its along-slice edges widened across the slice. MRS: edges at x -/+ 0.5 (XI1..ETA2), width
the exposure's SLICEWID (the channel's SLCWID<c> when present) unless the spacing of the slices
measured on the sky departs from it by more than 5% (an MRS exposure holds two channels of
different widths). NIRSpec, as the official cube_build draws it: edges at y -/+ 0.49, width the
distance on the sky between slices 1 and 3 (official numbers), neighbours on the real slicer,
whose slices are interleaved (28 ... 2 0 1 3 ... 29; the simulator's too). On a slicer with the
slices in numerical order that distance is two slice widths, and both our cubes and the official
ones are that much wider across the slices (measured on such a slicer: with SLICEWID ours differed
from the official by 22% per spaxel, with this distance 2e-4).

A band without usable pixels, or missing from the cubepar, is a one-line warning naming the file
and band; the other cubes are still made (an InputError when no cube can be made).

Memory: exposures given as paths are read one at a time, their usable pixels kept (in dispersion
order, so the cloud is nearly sorted by wavelength; then sorted per exposure by plane interval)
and the rest let go. Drizzle keeps them as read (~48 bytes per pixel: float64 wavelength, float32
values and sky coordinates) and sums the exposures one after the other, converting each chunk of
pixels to the cube frame as the kernel takes it (:class:`_LazyCloud`); the point-cloud weightings
merge them into one cloud of ~56 bytes per pixel (float64 position and wavelength, float32 values).
"""

import logging
import math
import os

import numpy as np
from astropy.io import fits

from .. import dq as dqbits
from ..algorithms import cube_build as kernels
from ..errors import InputError
from ..io.cubes import SR_PER_ARCSEC2, Cube, CubeWCS
from ..io.datamodels import copy_header
from ..io.skycoords import radec_to_xieta, tangent_basis, xieta_to_radec
from ..modes import mode_for
from ._cube_refs import nirspec_table_kind, read_cubepar

log = logging.getLogger(__name__)

REFTYPES = ("cubepar",)
NEEDS = ("assign_wcs",)

_BAND_ORDER = {"SHORT": 0, "MEDIUM": 1, "LONG": 2}
_COORDS = ("XI", "ETA", "XI1", "ETA1", "XI2", "ETA2")


def run(model, refs, *, channel="all", band="all", grating="all", filter="all", output_type="band",
        linear_wave=True, scalexy=0.0, scalew=0.0, weighting="drizzle", coord_system="skyalign",
        ra_center=None, dec_center=None, cube_pa=None, nspax_x=None, nspax_y=None, rois=0.0, roiw=0.0,
        weight_power=2.0, wavemin=None, wavemax=None, skip_dqflagging=False, offset_file=None):
    """Build the cubes of ``model`` (an exposure, a path, or a list of them); returns [Cube, ...]."""
    exposures = _load(model)
    name = _where(exposures[0])
    weighting = str(weighting).lower()
    if weighting not in kernels.WEIGHTINGS:
        raise InputError("cube_build", f"weighting {weighting!r} is not one of {', '.join(kernels.WEIGHTINGS)}")
    if str(coord_system).lower() not in ("skyalign", "world"):
        raise InputError("cube_build", f"coord_system {coord_system!r} is not supported (skyalign only)")
    if offset_file is not None:
        raise InputError(str(offset_file), "cube_build offset_file is not supported")
    ref = (refs or {}).get("cubepar", "N/A")
    if ref is None or str(ref).strip().upper() in ("", "N/A", "NONE"):
        raise InputError(name, "cube_build needs a cubepar reference file (none selected)")
    pars = read_cubepar(ref)
    selection = {"channel": channel, "band": band, "grating": grating, "filter": filter}
    groups = _cube_groups(exposures, str(output_type).lower(), selection)
    cubes = []
    for bands in groups:
        try:
            cube = _one_cube(exposures, bands, pars, weighting=weighting, linear_wave=linear_wave,
                             multi=str(output_type).lower() == "multi", scalexy=scalexy, scalew=scalew,
                             ra_center=ra_center, dec_center=dec_center, cube_pa=cube_pa, nspax_x=nspax_x,
                             nspax_y=nspax_y, rois=rois, roiw=roiw, weight_power=weight_power,
                             wavemin=wavemin, wavemax=wavemax)
        except _NoData as exc:
            _warn(str(exc))
            continue
        except InputError as exc:
            if len(groups) == 1:
                raise
            _warn(str(exc))
            continue
        cube.primary["R_CUBPAR"] = os.path.basename(str(ref))
        cubes.append(cube)
    if not cubes:
        raise InputError(name, "cube_build made no cube (see the warnings above)")
    return cubes


class _NoData(InputError):
    pass


def _warn(message):
    log.warning("%s", message)      # as every step warns: the job log and stderr


def _load(model):
    """The exposures: models as given; paths as :class:`_OnDisk` (header only: each is read when its
    pixels are used and let go after, so a program's exposures are never all in memory)."""
    items = list(model) if isinstance(model, (list, tuple)) else [model]
    if not items:
        raise InputError("cube_build", "no input exposures")
    out = []
    for m in items:
        if isinstance(m, (str, os.PathLike)):
            m = _OnDisk(os.fspath(m))
            _check_kind(m)
        else:
            _check(m)
        out.append(m)
    return out


class _OnDisk:
    """An exposure file: its PRIMARY header now, its arrays on :func:`_loaded`."""

    def __init__(self, path):
        from ..io import datamodels

        self.path = path
        self.primary = datamodels.read_header(path)
        self.exp_type = str(self.primary.get("EXP_TYPE", "")).strip().upper() or None
        self.mode = mode_for(self.primary, path)


def _loaded(m):
    if not isinstance(m, _OnDisk):
        return m
    from ..io import datamodels

    return _check(datamodels.read(m.path))


def _check_kind(m):
    if m.mode.stage3_kind != "cubes":
        raise InputError(_where(m), f"cube_build needs IFU exposures, not {m.exp_type or 'EXP_TYPE unknown'}")


def _check(m):
    _check_kind(m)
    slit = m.slits[0]
    missing = [k for k in ("SCI", "WAVELENGTH", "SLICE") + _COORDS if k not in slit]
    if missing:
        raise InputError(_where(m), f"IFU exposure lacks {', '.join(missing)} (run assign_wcs first)")
    return m


def _where(model):
    return model.path or str(model.primary.get("FILENAME", "") or "cube_build")


def _is_miri(model):
    return str(model.primary.get("INSTRUME", "")).strip().upper() == "MIRI"


def _bands_of(model):
    """[(par1, par2, slice numbers predicate)] of an exposure: MRS (channel, band), NIRSpec (grating, filter)."""
    p = model.primary
    if _is_miri(model):
        b = str(p.get("BAND", "")).strip().upper()
        return [(ch, b) for ch in str(p.get("CHANNEL", "")).strip() if ch in "1234"]
    return [(str(p.get("GRATING", "")).strip().upper(), str(p.get("FILTER", "")).strip().upper())]


def _selected(band, selection, miri):
    def ok(value, wanted):
        w = str(wanted if wanted is not None else "all").strip().upper()
        return w == "ALL" or value.upper() in w.replace("-", ",").split(",")

    if miri:
        return ok(band[0], selection["channel"]) and ok(band[1], selection["band"])
    return ok(band[0], selection["grating"]) and ok(band[1], selection["filter"])


def _cube_groups(exposures, output_type, selection):
    miri = _is_miri(exposures[0])
    present = []
    for m in exposures:
        for b in _bands_of(m):
            if b not in present:
                present.append(b)
    present.sort(key=lambda b: (b[0], _BAND_ORDER.get(b[1], 9), b[1]))
    user = any(str(v if v is not None else "all").strip().lower() != "all" for v in selection.values())
    chosen = [b for b in present if _selected(b, selection, miri)]
    if not chosen:
        wanted = ", ".join(f"{k}={v}" for k, v in selection.items() if str(v).lower() != "all")
        raise InputError(_where(exposures[0]), f"no data for the requested band ({wanted}); the exposures hold "
                         + ", ".join("/".join(b) for b in present))
    if user or output_type == "multi":
        return [chosen]
    if output_type in ("channel", "grating"):
        keys = list(dict.fromkeys(b[0] for b in chosen))
        return [[b for b in chosen if b[0] == k] for k in keys]
    return [[b] for b in chosen]


def _band_pixels(model, band):
    """Boolean mask of the exposure's pixels in ``band`` (MRS: their channel's slices)."""
    slit = model.slits[0]
    sl = np.asarray(slit["SLICE"])
    if _is_miri(model):
        return (sl // 100) == int(band[0])
    return sl > 0


def _suffix(bands, miri):
    if miri:
        chans = list(dict.fromkeys(b[0] for b in bands))
        subs = sorted({b[1] for b in bands}, reverse=True)   # short, medium, long
        return "ch" + "-".join(chans) + "-" + "".join(s.lower() for s in subs)
    return "-".join(f"{g}-{f}" for g, f in bands).lower()


def _one_cube(exposures, bands, pars, *, weighting, linear_wave, multi, scalexy, scalew, ra_center, dec_center,
              cube_pa, nspax_x, nspax_y, rois, roiw, weight_power, wavemin, wavemax):
    miri = _is_miri(exposures[0])
    label = "/".join("/".join(b) for b in bands)
    rows = [pars.band(*b, where=f" (needed for {_where(exposures[0])})") for b in bands]
    members = [(m, b) for m in exposures for b in bands if b in _bands_of(m)]
    nfiles = len({id(m) for m, _ in members})
    spaxel = float(scalexy) if scalexy else min(r["spaxel"] for r in rows)
    wmin = float(wavemin) if wavemin is not None else min(r["wavemin"] for r in rows)
    wmax = float(wavemax) if wavemax is not None else max(r["wavemax"] for r in rows)
    table = None
    if (multi or not linear_wave) and not scalew:
        kind = "MULTI" if miri else nirspec_table_kind(bands[0][0])
        table = pars.tables.get(kind)
        if table is None:
            raise InputError(pars.path, f"cubepar has no multi-band wavelength table ({kind}) for {label}")
        i0, i1 = kernels.table_planes(table["wavelength"], wmin, wmax)
        z = np.asarray(table["wavelength"][i0:i1 + 1], float)
        table = {k: np.asarray(v[i0:i1 + 1], float) for k, v in table.items()}
    else:
        step = float(scalew) if scalew else min(r["step"] for r in rows)
        z = kernels.linear_planes(wmin, wmax, step)
    roi_s = float(rois) if rois else rows[int(np.argmin([r["spaxel"] for r in rows]))].get("rois", np.nan)
    if not rois and nfiles < 4 and weighting != "emsm":
        roi_s *= 1.5
    roi_w = float(roiw) if roiw else rows[0].get("roiw", np.nan)
    if weighting != "drizzle" and table is None and not (np.isfinite(roi_s) and np.isfinite(roi_w)):
        raise InputError(pars.path, f"cubepar has no {weighting} ROI for {label}")
    # pixels beyond the planes by up to a bin plus their own extent still overlap the end planes
    margin = 2.0 * float(np.max(kernels.plane_bins(z))) if weighting == "drizzle" else roi_w
    if table is not None and weighting != "drizzle":
        margin = float(np.max(table["roiw"]))

    # one pass over the exposures (each read once when given as a path, and let go): the footprint
    # (pixel centres of the bands) and the usable pixels' values; then the tangent point and grid
    pieces, ra_all, dec_all, shead = [], [], [], None
    for m, b in members:
        m = _loaded(m)
        slit = m.slits[0]
        shead = slit.header if shead is None else shead
        inband = _band_pixels(m, b) & np.isfinite(slit["WAVELENGTH"])
        if not inband.any():
            _warn(f"{_where(m)}: band {'/'.join(b)} has no valid pixels (no slice with a wavelength)")
            continue
        ref = (float(slit.header["WSREFRA"]), float(slit.header["WSREFDE"]))
        ra, dec = xieta_to_radec(*_extreme_candidates(np.asarray(slit["XI"])[inband],
                                                      np.asarray(slit["ETA"])[inband]), *ref)
        ra_all.append(ra)
        dec_all.append(dec)
        raw = _pixels(m, "/".join(b), inband, z[0] - margin, z[-1] + margin, weighting, miri, z)
        if raw is not None:
            pieces.append((raw, ref))
        del m, slit, inband
    if not ra_all:
        raise _NoData(_where(exposures[0]), f"band {label} has no data in any exposure")
    ra_all, dec_all = np.concatenate(ra_all), np.concatenate(dec_all)
    crval1, crval2 = _centre(ra_all, dec_all)
    if ra_center is not None:
        crval1 = float(ra_center)
    if dec_center is not None:
        crval2 = float(dec_center)
    ext = [np.argmin(ra_all), np.argmax(ra_all), np.argmin(dec_all), np.argmax(dec_all)]
    xi_c, eta_c = radec_to_xieta(ra_all[ext], dec_all[ext], crval1, crval2)
    crpix1, crpix2, nx, ny, pc = kernels.sky_grid(xi_c, eta_c, spaxel, cube_pa=cube_pa, nspax_x=nspax_x,
                                                  nspax_y=nspax_y)
    wcs = CubeWCS(crval1, crval2, crpix1, crpix2, spaxel / 3600.0, spaxel / 3600.0, pc, z,
                  linear=table is None)

    # the point cloud in the cube frame (each exposure's pixel values let go as they are converted)
    if not pieces:
        raise _NoData(_where(exposures[0]), f"band {label} has no valid pixels in its wavelength range")

    def converted():
        while pieces:
            raw, ref = pieces.pop(0)
            yield _cloud(raw, ref, wcs)
            del raw

    keys = [raw.pop("KEY") for raw, _ in pieces]
    if keys[0] is None:
        cloud = kernels.Cloud.concatenate(list(converted()), z)
    elif weighting == "drizzle":
        # each piece sorted by its plane intervals already (_pixels): summed piece by piece, each
        # converted to the cube frame a chunk at a time as the kernel takes it (no cloud arrays)
        cloud = [_LazyCloud(raw, ref, wcs) for raw, ref in pieces]
        pieces.clear()
    else:
        # each piece sorted by its plane intervals already (_pixels): written straight to its place
        positions = kernels.merge_positions(keys)
        cloud = kernels.Cloud.merged(converted(), positions, sum(k.size for k in keys))
        del keys, positions
    kw = {}
    if weighting != "drizzle":
        if table is not None:
            near = np.clip(np.searchsorted(z, cloud.lam), 1, len(z) - 1)
            near = np.where(np.abs(z[near - 1] - cloud.lam) <= np.abs(z[near] - cloud.lam), near - 1, near)
            s_roi = table["rois"][near] * (1.5 if nfiles < 4 else 1.0) if not rois else np.full(near.size, roi_s)
            kw = dict(rois=s_roi / spaxel, roiw=table["roiw"][near] if not roiw else roi_w,
                      scalerad=table.get("scalerad", np.full(z.size, 0.1))[near] / spaxel,
                      weight_power=table.get("power", np.full(z.size, 2.0))[near] if weighting == "msm" else 2.0,
                      softrad=table.get("softrad", np.full(z.size, 0.01))[near])
        else:
            row = rows[int(np.argmin([r["spaxel"] for r in rows]))]
            kw = dict(rois=roi_s / spaxel, roiw=roi_w, scalerad=row.get("scalerad", 0.1) / spaxel,
                      weight_power=float(weight_power) if weight_power else row.get("power", 2.0),
                      softrad=row.get("softrad", 0.01))
    sci, err, wmap, weight = kernels.build(cloud, (z.size, ny, nx), z, weighting, **kw)
    dq = kernels.final_dq(weight, sci, wmap, err, miri=miri)
    return _make_cube(exposures[0].primary, shead, bands, wcs, sci, err, dq, wmap, z, weighting, roi_s, roi_w, kw, miri)


def _extreme_candidates(xi, eta, tol=0.05):
    """The pixels that can hold the RA / Dec extremes of the footprint: those within ``tol``
    arcsec of the extremes in xi and in eta (RA and Dec are monotonic in them across an IFU field;
    the extreme of RA departs from that of xi by ~ xi eta tan(dec) / 206265, < 1e-3 arcsec)."""
    xi, eta = np.asarray(xi), np.asarray(eta)
    if xi.size <= 256:
        return xi.astype(float), eta.astype(float)
    lo_x, hi_x, lo_e, hi_e = xi.min(), xi.max(), eta.min(), eta.max()
    pick = (xi <= lo_x + tol) | (xi >= hi_x - tol) | (eta <= lo_e + tol) | (eta >= hi_e - tol)
    return xi[pick].astype(float), eta[pick].astype(float)


def _centre(ra, dec):
    """The official cube centre: the circular mean of the RA extremes, the mean of the Dec extremes."""
    r0, r1 = np.radians(np.min(ra)), np.radians(np.max(ra))
    ra_mid = math.degrees(math.atan2(math.sin(r0) + math.sin(r1), math.cos(r0) + math.cos(r1))) % 360.0
    return ra_mid, 0.5 * (float(np.min(dec)) + float(np.max(dec)))


def _to_cube(wcs, xi, eta, ref):
    """Cube pixel (x, y) of tangent offsets [arcsec] about ``ref``. A gnomonic projection maps
    great circles to lines, so moving between two tangent planes is a homography: no trigonometry
    per pixel, exact to float64; the cube's affine pixel frame is folded into it, so a pixel costs
    three linear forms and two divisions."""
    if abs(ref[0] - wcs.crval1) < 1e-12 and abs(ref[1] - wcs.crval2) < 1e-12:
        return wcs.xieta_to_pixel(xi, eta)
    c0, e0, n0 = tangent_basis(*ref)
    c1, e1, n1 = tangent_basis(wcs.crval1, wcs.crval2)
    # rows: the denominator and the numerators of (xi, eta) about crval [rad], as forms in (1, u, v)
    # with u, v = xi, eta [arcsec] about ref
    scale = np.array([1.0, 1.0 / _ARCSEC_PER_RAD, 1.0 / _ARCSEC_PER_RAD])
    h = np.array([[c0 @ c1, e0 @ c1, n0 @ c1], [c0 @ e1, e0 @ e1, n0 @ e1], [c0 @ n1, e0 @ n1, n0 @ n1]]) * scale
    inv = np.linalg.inv(np.asarray(wcs.pc, float))
    a = inv * (_ARCSEC_PER_RAD / (np.array([wcs.cdelt1, wcs.cdelt2]) * 3600.0))   # [rad] -> cube pixels
    px = a[0, 0] * h[1] + a[0, 1] * h[2] + (wcs.crpix1 - 1.0) * h[0]
    py = a[1, 0] * h[1] + a[1, 1] * h[2] + (wcs.crpix2 - 1.0) * h[0]
    u = np.asarray(xi, float)
    v = np.asarray(eta, float)
    den = h[0, 1] * u
    den += h[0, 2] * v
    den += h[0, 0]
    x = px[1] * u
    x += px[2] * v
    x += px[0]
    x /= den
    y = py[1] * u
    y += py[2] * v
    y += py[0]
    y /= den
    return x, y


_ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0


def _pixels(model, band, inband, lam_lo, lam_hi, weighting, miri, z=None):
    """The usable pixels of ``band`` of an exposure, in dispersion order, as stored (no sky grid
    needed yet): {name: array}, the slice half-width for drizzle, KEY their sort keys among the
    plane centres ``z`` (:func:`kernels.interval_keys`; the pixels sorted by it, stably; None:
    not sorted); None when there are none."""
    slit = model.slits[0]
    # the rows holding the band (a NIRSpec IFU's slices cover half the detector): every test on
    # them alone, the flat indices of whole rows offset by the first one's
    rows = np.flatnonzero(inband.any(axis=1))
    if not rows.size:
        return None
    r0, r1 = int(rows[0]), int(rows[-1]) + 1

    def band_rows(a):
        return np.asarray(a)[r0:r1]

    inband = inband[r0:r1]
    sci = band_rows(slit["SCI"])
    lam = band_rows(slit["WAVELENGTH"])
    dq = band_rows(slit["DQ"]) if "DQ" in slit else np.zeros(sci.shape, np.uint32)
    err = band_rows(slit["ERR"]) if "ERR" in slit else np.zeros(sci.shape, np.float32)
    valid = inband & np.isfinite(sci) & np.isfinite(err) & ((dq & (dqbits.DO_NOT_USE | dqbits.NON_SCIENCE)) == 0)
    sl = band_rows(slit["SLICE"])                        # > 0 in the band (_band_pixels)
    n_in = np.bincount(sl[inband])
    empty = np.flatnonzero((n_in > 0) & (np.bincount(sl[valid], minlength=n_in.size) == 0))
    if empty.size:
        _warn(f"{_where(model)}: band {band}: slice{'s' if empty.size > 1 else ''} "
              f"{', '.join(str(int(v)) for v in empty)} without valid pixels")
    with np.errstate(invalid="ignore"):
        use = valid & (lam >= lam_lo) & (lam <= lam_hi)
    names = ("XI", "ETA") + ((_COORDS[2:] + ("DWAVE",)) if weighting == "drizzle" else ())
    for k in names:
        use &= np.isfinite(band_rows(slit[k])) if k in slit else False
    # the pixels in dispersion order: the cloud is then nearly sorted by wavelength already, so the
    # gathers of its sort are cheap (full-frame tests above, then one gather per array: cheaper
    # than gathering the candidates first, the gathers down detector columns being the cost)
    idx = _dispersion_order(use, miri)
    if not idx.size:
        return None
    wave = lam.reshape(-1).take(idx).astype(float)       # the cloud's float64 wavelengths
    key = kernels.interval_keys(wave, z)
    if key is not None:     # the pixels in the order of the cloud's sort (Cloud.sorted)
        order = np.argsort(key, kind="stable")
        idx, wave, key = idx.take(order), wave.take(order), key.take(order)
    raw = {k: band_rows(slit[k]).reshape(-1).take(idx) for k in names if k in slit}
    raw.update(WAVELENGTH=wave, SCI=sci.reshape(-1).take(idx), ERR=err.reshape(-1).take(idx), KEY=key)
    if weighting == "drizzle":
        if miri:
            whole = np.zeros(slit.shape, bool)
            whole[r0:r1] = use
            raw["SLICEWID"] = _slice_width(slit, whole, band.split("/")[0])
        else:
            raw["SLICEWID"] = _nirspec_footprint_width(slit, inband, r0 * inband.shape[1])
            raw["ALONG"] = _NRS_ALONG
    return raw


def _dispersion_order(mask, miri):
    """Flat indices of ``mask`` in dispersion order: row by row (MIRI), column by column (NIRSpec)."""
    if miri:
        return np.flatnonzero(mask)
    idx = np.flatnonzero(np.ascontiguousarray(mask.T))          # column * ny + row
    ny, nx = mask.shape
    col = ((idx + 0.5) * (1.0 / ny)).astype(np.int64)           # exact: idx < 2^52, 0.5 / ny margin
    idx -= col * ny
    idx *= nx
    idx += col
    return idx


def _cloud(raw, ref, wcs):
    """The pixels of :func:`_pixels` in the cube frame. Geometry in float64, the footprint's
    edges as float32 offsets from the centre and the per-pixel values in float32 (memory: a
    NIRSpec program has ~1.6e7 pixels)."""
    n = raw["XI"].size
    c = kernels.Cloud(x=np.empty(n), y=np.empty(n), lam=raw.pop("WAVELENGTH").astype(float),
                      dlam=raw.pop("DWAVE").astype(np.float32, copy=False) if "DWAVE" in raw else None,
                      flux=raw.pop("SCI").astype(np.float32, copy=False),
                      err=raw.pop("ERR").astype(np.float32, copy=False))
    edges = "SLICEWID" in raw
    if edges:
        for e in ("x1", "y1", "x2", "y2"):
            setattr(c, e, np.empty(n, np.float32))
    # in runs of _RUN pixels: the float64 temporaries of the projection stay in the CPU caches
    for s in range(0, n, _RUN):
        part = slice(s, min(n, s + _RUN))
        _place(raw, part, ref, wcs, c, part)
    if edges:
        c.half = _half(raw, wcs, n)
    return c


_RUN = 65536


def _place(raw, part, ref, wcs, c, at):
    """Writes the cube-frame positions (and footprint edges) of the pixels ``part`` of ``raw`` to
    ``c`` at ``at``."""
    x, y = _to_cube(wcs, raw["XI"][part], raw["ETA"][part], ref)
    c.x[at], c.y[at] = x, y
    if "SLICEWID" not in raw:
        return
    along = np.float32(raw.get("ALONG", 1.0))
    for e in "12":
        ex, ey = _to_cube(wcs, raw["XI" + e][part], raw["ETA" + e][part], ref)
        ex -= x
        ey -= y
        for name, v in (("x" + e, ex), ("y" + e, ey)):
            out = getattr(c, name)[at]
            out[...] = v                     # float32, as the offsets are kept
            if along != 1.0:
                out *= along


def _half(raw, wcs, n):
    """Half the footprint's width [spaxels], one value per exposure: a broadcast view."""
    return np.broadcast_to(np.float32(raw["SLICEWID"] / 2.0 / wcs.spaxel_arcsec), (n,))


class _LazyCloud:
    """The drizzle cloud of one exposure as :func:`_pixels` gathered it (sorted by plane interval):
    the kernel's chunks (:meth:`take`) are converted to the cube frame as :func:`_cloud` converts
    the whole, so no full-size cloud arrays are made."""

    def __init__(self, raw, ref, wcs):
        self.raw, self.ref, self.wcs = raw, ref, wcs
        self.lam = np.asarray(raw.pop("WAVELENGTH"), float)
        self.dlam = raw["DWAVE"]

    def take(self, sel):
        raw = self.raw
        n = self.lam[sel].size
        c = kernels.Cloud(x=np.empty(n), y=np.empty(n), lam=self.lam[sel],
                          dlam=raw["DWAVE"][sel].astype(np.float32), flux=raw["SCI"][sel].astype(np.float32),
                          err=raw["ERR"][sel].astype(np.float32),
                          **{e: np.empty(n, np.float32) for e in ("x1", "y1", "x2", "y2")})
        _place(raw, sel, self.ref, self.wcs, c, slice(None))
        c.half = _half(raw, self.wcs, n)
        return c


# NIRSpec drizzle footprints as the official cube_build draws them: the along-slice edges at
# y -/+ 0.49 (our XI1.. are at -/+ 0.5; scaling the offsets is exact to first order, the
# along-slice mapping being linear over a pixel) and the width across the slice the slicer
# distance of slices 1 and 3 (official numbers), which the official code takes for neighbours
_NRS_ALONG = 0.98
_NRS_WIDTH_SLICES = (1, 3)


def _sample(slit, name, idx):
    """float64 values of the per-pixel array ``name`` at the flat indices ``idx``."""
    return np.asarray(slit[name]).reshape(-1).take(idx).astype(float)


def _nirspec_footprint_width(slit, inband, offset=0):
    """The across-slice width [arcsec] of the official NIRSpec drizzle footprint: the distance on
    the sky between the centre lines of slices 1 and 3 (every 7th pixel of each: their mean
    positions are as good). Where the exposure lacks one of them, the median distance of slices
    k and k + 2 over those present; SLICEWID when fewer than 3 slices (module docstring)."""
    idx = np.flatnonzero(inband)[::7]
    idx += offset           # ``inband``: whole rows from the flat index ``offset`` on
    sl = np.asarray(slit["SLICE"]).reshape(-1)[idx]
    xi, eta = (_sample(slit, k, idx) for k in ("XI", "ETA"))
    ux = _sample(slit, "XI2", idx) - _sample(slit, "XI1", idx)
    uy = _sample(slit, "ETA2", idx) - _sample(slit, "ETA1", idx)
    ok = np.isfinite(xi) & np.isfinite(eta) & np.isfinite(ux) & np.isfinite(uy)
    sl, xi, eta, ux, uy = sl[ok], xi[ok], eta[ok], ux[ok], uy[ok]
    ids, inv = np.unique(sl, return_inverse=True)
    if ids.size >= 3:
        ang = np.arctan2(np.median(uy), np.median(ux))
        across = -np.sin(ang) * xi + np.cos(ang) * eta
        pos = dict(zip(ids.tolist(), np.bincount(inv, across) / np.bincount(inv)))
        a, b = _NRS_WIDTH_SLICES
        if a in pos and b in pos:
            return abs(pos[a] - pos[b])
        pairs = [abs(pos[k] - pos[k + 2]) for k in pos if k + 2 in pos]
        if pairs:
            return float(np.median(pairs))
    given = slit.header.get("SLICEWID")
    if given is None:
        raise InputError("cube_build", "cannot tell the slice width (no SLICEWID and fewer than 3 slices)")
    return float(given)


def _slice_width(slit, use, channel=None):
    """Slice width on the sky [arcsec] of the selected pixels (see the module docstring): the MRS
    channel's SLCWID<c> or SLICEWID, checked against the slices' spacing."""
    given = slit.header.get(f"SLCWID{channel}", slit.header.get("SLICEWID")) if channel else slit.header.get("SLICEWID")
    # every 7th selected pixel: the slices' mean positions are as good, at a fraction of the cost
    idx = np.flatnonzero(use)[::7]
    sl = np.asarray(slit["SLICE"]).reshape(-1)[idx]
    xi, eta = (_sample(slit, k, idx) for k in ("XI", "ETA"))
    ux = _sample(slit, "XI2", idx) - _sample(slit, "XI1", idx)
    uy = _sample(slit, "ETA2", idx) - _sample(slit, "ETA1", idx)
    measured = None
    ids, inv = np.unique(sl, return_inverse=True)
    if ids.size >= 2:
        ang = np.arctan2(np.median(uy), np.median(ux))
        across = -np.sin(ang) * xi + np.cos(ang) * eta
        pos = np.bincount(inv, across) / np.bincount(inv)
        measured = float(np.median(np.diff(np.sort(pos))))
    if given is not None and (measured is None or abs(measured - float(given)) <= 0.05 * float(given)):
        return float(given)
    if measured is None or not np.isfinite(measured) or measured <= 0:
        raise InputError("cube_build", "cannot tell the slice width (no SLICEWID and fewer than 2 slices)")
    return measured


def _make_cube(first_primary, shead, bands, wcs, sci, err, dq, wmap, z, weighting, roi_s, roi_w, kw, miri):
    primary = copy_header(first_primary)
    if miri:
        primary["CHANNEL"] = "".join(sorted({b[0] for b in bands}))
        subs = sorted({b[1] for b in bands}, key=lambda s: _BAND_ORDER.get(s, 9))
        primary["BAND"] = subs[0] if len(subs) == 1 else "MULTIPLE"
    else:
        primary["GRATING"] = bands[0][0] if len({b[0] for b in bands}) == 1 else "MULTIPLE"
        primary["FILTER"] = bands[0][1] if len({b[1] for b in bands}) == 1 else "MULTIPLE"
    primary["DATAMODL"] = "IFUCubeModel"
    primary["S_IFUCUB"] = "COMPLETE"
    drizzle = weighting == "drizzle"
    primary["FLUXEXT"] = ("SCI", "extension with the flux data")
    primary["ERREXT"] = ("ERR", "extension with the error data")
    primary["MASKEXT"] = ("DQ", "extension with the data quality")
    primary["ROIS"] = (0.0 if drizzle else float(np.mean(roi_s)), "[arcsec] spatial ROI")
    primary["ROIW"] = (0.0 if drizzle else float(np.mean(kw.get("roiw", roi_w))), "[um] spectral ROI")
    primary["WTYPE"] = (weighting, "Weighting type")
    primary["WPOWER"] = (0.0 if drizzle else float(np.mean(kw.get("weight_power", 2.0))), "Weighting power for MSM")
    head = fits.Header()
    head["BUNIT"] = str(shead.get("BUNIT", "MJy/sr"))
    area = wcs.spaxel_arcsec ** 2
    head["PIXAR_SR"] = (area * SR_PER_ARCSEC2, "Nominal pixel area in steradians")
    head["PIXAR_A2"] = (area, "Nominal pixel area in arcsec^2")
    srctype = shead.get("SRCTYPE", primary.get("SRCTYPE"))
    if srctype is not None:
        head["SRCTYPE"] = str(srctype).strip().upper()
    head["DISPAXIS"] = 2 if miri else 1
    cube = Cube(primary, sci, err, dq, wmap, np.asarray(z, float), wcs, head)
    cube.name = _suffix(bands, miri)
    return cube
