"""The MIRI MRS WCS from the official reference files, evaluated with numpy.

The frame chain is the official one (jwst ``assign_wcs.miri.ifu``), written here for arrays:

    detector (x, y; 0-based) -> the slice of the pixel: regions plane 7 (slice numbers 1xx-4xx)
      -> alpha = alpha_model[s](y, x), beta = beta_model[s](x), lambda = specwcs model[s](y, x)
         [arcsec, arcsec, um]; lambda x 1/(1 + VELOSYS/c) when the exposure has VELOSYS
      -> V2/V3: abv2v3_model of the channel whose wavelengthrange ``<channel><band>`` holds lambda
         (none: NaN, as the official LabelMapperRange)
      -> velocity aberration (VA_SCALE about V2_REF/V3_REF) -> sky (the attitude rotation by
         V2_REF, -V3_REF, ROLL_REF, DEC_REF, -RA_REF).
Backward (the simulator's): sky -> V2/V3 exactly, then the abv2v3 explicit inverse; detector
positions from (lambda, alpha) through x_model / y_model.

:func:`pixel_coordinates` gives the per-pixel arrays of an IFU exposure (docs/internals.md, "IFU
exposures and cubes"): WAVELENGTH, DWAVE, XI, ETA, XI1, ETA1, XI2, ETA2, SLICE.
"""


import numpy as np

from ...errors import InputError
from ..nirspec.optics import rotation_matrix, require_pointing, v2v3_to_sky
from .. import transforms
from ..transforms import UnsupportedTransform, build
from . import MRS_EXP_TYPE

__all__ = ["EXP_TYPE", "REFTYPES", "MrsWcs", "pixel_coordinates", "channel_slices", "SLICE_RANGES", "reference_tree"]

EXP_TYPE = MRS_EXP_TYPE
REFTYPES = ("distortion", "specwcs", "regions", "wavelengthrange")
REGIONS_PLANE = 7                   # the 80% throughput plane the official code reads
SLICE_RANGES = {"1": (101, 121), "2": (201, 217), "3": (301, 316), "4": (401, 412)}
_MODEL_TYPES = {"distortion": "DistortionMRSModel", "specwcs": "SpecwcsModel", "regions": "RegionsModel",
                "wavelengthrange": "WavelengthrangeModel"}
_C_M_S = 299792458.0


def channel_slices(channel):
    lo, hi = SLICE_RANGES[str(channel)]
    return range(lo, hi + 1)


def reference_tree(reftype, path):
    if str(path).upper() in ("", "N/A", "NONE"):
        raise InputError("assign_wcs", f"no {reftype} reference file: cannot assign an MRS WCS")
    return transforms.reference_tree(reftype, path, _MODEL_TYPES[reftype])


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v).strip()


class MrsWcs:
    """The WCS of one MRS exposure: ``refs`` {reftype: path} with every type of :data:`REFTYPES`,
    ``header`` the exposure's keywords (CHANNEL, BAND, pointing)."""

    def __init__(self, refs, header, where="assign_wcs"):
        self.where = where
        self.channels = _text(header.get("CHANNEL", "")).upper()
        self.band = _text(header.get("BAND", "")).upper()
        if self.channels not in ("12", "34") or self.band not in ("SHORT", "MEDIUM", "LONG"):
            raise InputError(where, f"MRS exposure needs CHANNEL 12|34 and BAND SHORT|MEDIUM|LONG "
                                    f"(got {self.channels!r}, {self.band!r})")
        trees = {rt: reference_tree(rt, refs.get(rt, "N/A")) for rt in REFTYPES}
        dist, spec = trees["distortion"], trees["specwcs"]
        self.slices = [int(s) for s in dist["slices"]]
        if [int(s) for s in spec["slices"]] != self.slices:
            raise InputError(str(refs["specwcs"]), "specwcs slices differ from the distortion reference's")
        try:
            self._alpha = {s: build(m) for s, m in zip(self.slices, dist["alpha_model"])}
            self._beta = {s: build(m) for s, m in zip(self.slices, dist["beta_model"])}
            self._lam = {s: build(m) for s, m in zip(self.slices, spec["model"])}
            self._x = {s: build(m) for s, m in zip(self.slices, dist["x_model"])}
            self._y = {s: build(m) for s, m in zip(self.slices, dist["y_model"])}
            ab = dist["abv2v3_model"]
            self._v23 = {_text(cb): build(m) for cb, m in zip(ab["channel_band"], ab["model"])}
        except UnsupportedTransform as exc:
            raise InputError(str(refs["distortion"]), f"distortion/specwcs: {exc}") from None
        self.bdel = {_text(cb): float(v) for cb, v in zip(dist["bdel"]["channel_band"], dist["bdel"]["delta_beta"])}
        self.bzero = {_text(cb): float(v) for cb, v in zip(dist["bzero"]["channel_band"], dist["bzero"]["beta_zero"])}
        wr = trees["wavelengthrange"]
        ranges = dict(zip((_text(s) for s in wr["waverange_selector"]), (tuple(map(float, r)) for r in wr["wavelengthrange"])))
        self.ranges = {}
        for c in self.channels:
            cb = c + self.band
            for table, what in ((ranges, "wavelengthrange"), (self._v23, "distortion abv2v3_model"),
                                (self.bdel, "distortion bdel")):
                if cb not in table:
                    raise InputError(str(refs["wavelengthrange" if table is ranges else "distortion"]),
                                     f"{what} has no {cb}")
            self.ranges[c] = ranges[cb]
        regions = np.asarray(trees["regions"]["regions"])
        if regions.ndim != 3 or regions.shape[0] <= REGIONS_PLANE:
            raise InputError(str(refs["regions"]), f"regions must be (9, ny, nx), got {regions.shape}")
        self.slice_map = regions[REGIONS_PLANE].astype(np.int16)
        velosys = header.get("VELOSYS")
        self.lam_factor = 1.0 / (1.0 + float(velosys) / _C_M_S) if velosys not in (None, "") else 1.0
        require_pointing(header, where)
        self.pointing = tuple(float(header.get(k, d)) for k, d in (
            ("RA_REF", None), ("DEC_REF", None), ("ROLL_REF", None), ("V2_REF", None), ("V3_REF", None),
            ("VA_SCALE", 1.0)))

    def slice_width(self, channel):
        """The slice width on the sky [arcsec] of ``channel`` in this band (bdel)."""
        return self.bdel[str(channel) + self.band]

    # ------------------------------------------------------------------ forward
    def slice_to_abl(self, s, x, y):
        """(alpha, beta, lambda) of detector positions taken to be in slice ``s``."""
        alpha = self._alpha[s](y, x)[0]
        beta = self._beta[s](x)[0] * np.ones_like(alpha)
        lam = self._lam[s](y, x)[0] * self.lam_factor
        return alpha, beta, lam

    def detector_to_abl(self, x, y):
        """(alpha, beta, lambda, slice) of detector positions; NaN / 0 off the slices (the slice of
        the pixel that holds the position, as the official regions lookup)."""
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        ny, nx = self.slice_map.shape
        ix, iy = np.floor(x + 0.5).astype(int), np.floor(y + 0.5).astype(int)
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        sl = np.zeros(x.shape, np.int16)
        sl[inside] = self.slice_map[iy[inside], ix[inside]]
        out = [np.full(x.shape, np.nan) for _ in range(3)]
        for s in np.unique(sl[sl > 0]):
            if s not in self._alpha:
                continue
            on = sl == s
            for arr, val in zip(out, self.slice_to_abl(int(s), x[on], y[on])):
                arr[on] = val
        return (*out, sl)

    def channel_of(self, lam):
        """Channel number (int) whose wavelength range holds ``lam``; 0 where none does."""
        lam = np.asarray(lam, float)
        ch = np.zeros(lam.shape, int)
        for c, (lo, hi) in self.ranges.items():
            ch[(lam >= lo) & (lam <= hi)] = int(c)
        return ch

    def abl_to_v2v3(self, alpha, beta, lam, channel=None):
        """V2/V3 [arcsec]; the channel from the wavelength (official) unless given."""
        alpha, beta, lam = np.broadcast_arrays(*(np.asarray(a, float) for a in (alpha, beta, lam)))
        ch = self.channel_of(lam) if channel is None else np.broadcast_to(np.asarray(channel), alpha.shape)
        v2, v3 = np.full(alpha.shape, np.nan), np.full(alpha.shape, np.nan)
        for c in self.channels:
            on = ch == int(c)
            if on.any():
                v2[on], v3[on] = self._v23[c + self.band](alpha[on], beta[on])
        return v2, v3

    def v2v3_to_sky(self, v2, v3):
        return v2v3_to_sky(v2, v3, *self.pointing)

    def v2v3_to_xieta(self, v2, v3):
        """Tangent-plane offsets (xi, eta) [arcsec] from (RA_REF, DEC_REF) of V2/V3 [arcsec]: the
        same as radec_to_xieta(*v2v3_to_sky(...)), with the attitude and the projection as one
        rotation (a third of the trigonometry)."""
        ra_ref, dec_ref, roll, v2_ref, v3_ref, va = self.pointing
        v2, v3 = np.asarray(v2, float), np.asarray(v3, float)
        if va != 1.0:
            v2, v3 = va * v2 + (1.0 - va) * v2_ref, va * v3 + (1.0 - va) * v3_ref
        lon, lat = np.radians(v2 / 3600.0), np.radians(v3 / 3600.0)
        a, d = np.radians(ra_ref), np.radians(dec_ref)
        tangent = np.array([[-np.sin(a), np.cos(a), 0.0],
                            [-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)],
                            [np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)]])
        m = tangent @ rotation_matrix([v2_ref / 3600.0, -v3_ref / 3600.0, roll, dec_ref, -ra_ref], "zyxyz")
        cl = np.cos(lat)
        vec = (cl * np.cos(lon), cl * np.sin(lon), np.sin(lat))
        p = [m[i, 0] * vec[0] + m[i, 1] * vec[1] + m[i, 2] * vec[2] for i in range(3)]
        scale = np.degrees(1.0) * 3600.0
        return scale * p[0] / p[2], scale * p[1] / p[2]

    # ------------------------------------------------------------------ backward
    def sky_to_v2v3(self, ra, dec):
        """V2/V3 [arcsec] of sky positions (the exact inverse of :meth:`v2v3_to_sky`)."""
        ra_ref, dec_ref, roll, v2_ref, v3_ref, va = self.pointing
        ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
        vec = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
        m = rotation_matrix([v2_ref / 3600.0, -v3_ref / 3600.0, roll, dec_ref, -ra_ref], "zyxyz")
        x, y, z = np.tensordot(m.T, vec, axes=1)
        v2, v3 = np.degrees(np.arctan2(y, x)) * 3600.0, np.degrees(np.arctan2(z, np.hypot(x, y))) * 3600.0
        return (v2 - (1.0 - va) * v2_ref) / va, (v3 - (1.0 - va) * v3_ref) / va

    def v2v3_to_ab(self, v2, v3, channel):
        return self._v23[str(channel) + self.band].inverse(v2, v3)

    def abl_to_detector(self, s, alpha, lam):
        """Detector (x, y) of (alpha, lambda) in slice ``s`` (x_model / y_model)."""
        lam = np.asarray(lam, float) / self.lam_factor
        return self._x[s](lam, alpha)[0], self._y[s](lam, alpha)[0]


def pixel_coordinates(wcs, shape):
    """The per-pixel arrays of an MRS exposure of ``shape`` (ny, nx): WAVELENGTH, DWAVE [um],
    XI, ETA, XI1, ETA1, XI2, ETA2 [arcsec from (RA_REF, DEC_REF)] (float32, NaN off the slices
    and where the wavelength is outside the channel's range) and SLICE (int16, 0 off the slices).
    Edges: x -/+ 0.5 at the pixel's own wavelength (XI1/ETA1, XI2/ETA2); y -/+ 0.5 for DWAVE."""
    ny, nx = shape
    if wcs.slice_map.shape != (ny, nx):
        raise InputError(wcs.where, f"regions map {wcs.slice_map.shape} does not match the image {shape}")
    names = ("WAVELENGTH", "DWAVE", "XI", "ETA", "XI1", "ETA1", "XI2", "ETA2")
    out = {k: np.full(shape, np.nan, np.float32) for k in names}
    sl = np.where(np.isin(wcs.slice_map, wcs.slices), wcs.slice_map, 0).astype(np.int16)
    iy, ix = np.nonzero(sl)
    s_of = sl[iy, ix]
    order = np.argsort(s_of, kind="stable")
    iy, ix, s_of = iy[order], ix[order], s_of[order]
    bounds = np.flatnonzero(np.diff(s_of)) + 1
    cols = {k: np.full(iy.size, np.nan) for k in names}
    for part in np.split(np.arange(iy.size), bounds):
        if part.size == 0:
            continue
        s = int(s_of[part[0]])
        x, y = ix[part].astype(float), iy[part].astype(float)
        alpha, beta, lam = wcs.slice_to_abl(s, x, y)
        dw = np.abs(wcs.slice_to_abl(s, x, y + 0.5)[2] - wcs.slice_to_abl(s, x, y - 0.5)[2])
        ch = wcs.channel_of(lam)
        a1 = wcs.slice_to_abl(s, x - 0.5, y)[0]
        a2 = wcs.slice_to_abl(s, x + 0.5, y)[0]
        three = np.concatenate([alpha, a1, a2])
        v2, v3 = wcs.abl_to_v2v3(three, np.tile(beta, 3), np.tile(lam, 3), np.tile(ch, 3))
        xi, eta = wcs.v2v3_to_xieta(v2, v3)
        n = part.size
        cols["WAVELENGTH"][part] = np.where(ch > 0, lam, np.nan)
        cols["DWAVE"][part] = np.where(ch > 0, dw, np.nan)
        for k, (a, b) in (("", (0, n)), ("1", (n, 2 * n)), ("2", (2 * n, 3 * n))):
            cols["XI" + k][part], cols["ETA" + k][part] = xi[a:b], eta[a:b]
    for k in names:
        out[k][iy, ix] = cols[k]
    out["SLICE"] = sl
    return out
