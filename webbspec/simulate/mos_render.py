"""Rendering MOS exposures: the noise-free count rate of slitlets, failed-open shutters and the
MSA leakage on one detector frame (the scene and its truth: ``mos_scene``).

Where light lands comes from the forward optical model of the program's own references,
inverted per pixel with the simulator's own Newton iteration (``fs_geometry.invert``), never
with the pipeline's backward transform. A slitlet's pixels are solved once per detector in the
frame of its middle shutter (at x_slit = 0 for the sky and extended light; at the point source's
x_slit for its light) and reused for the three nods: the nod moves the sources along the
slitlet, not the slitlet on the detector.

The MSA leakage (what the imprint / leakcal exposure records with every shutter closed): light of
the sky leaking through the closed shutters, dispersed over the detector rows the MSA covers,
brightest at the shutter centres (a LEAK_LEVEL fraction of the slitlets' sky), plus the spectra of
the failed-open shutters.
"""

from dataclasses import dataclass, field

import numpy as np

from . import flat_truth
from . import nirspec_fs as fs
from . import mos_scene as scene
from .fs_geometry import invert
from .mos_optics_refs import N_COLUMNS, OPEN
from .mos_plan import NOD_SHIFTS

__all__ = ["ShutterImage", "shutter_image", "render_exposure", "failed_open_rate", "leak_pattern",
           "sky_rate", "source_rate", "LEAK_LEVEL"]

LEAK_LEVEL = 0.3          # leakage glow at a shutter centre / sky of an open shutter (4 um)
_LAM = (scene.LMIN, scene.LMAX)
_CENTRES = {3: (-1.0, 0.0, 1.0), 1: (0.0,)}        # open shutters [pitches] about the middle one


@dataclass
class ShutterImage:
    """The pixels one slitlet (``nshutters`` = 3) or failed-open shutter (1) lights on a frame.

    ``box`` (y0, y1, x0, x1): inclusive frame pixels; per box pixel ``ys`` (slit-frame y of the
    middle shutter, open heights) and ``lam`` [um] at x_slit = 0, ``lit`` where light can land.
    """

    key: tuple                   # (quadrant, row, column) of the middle shutter
    nshutters: int
    box: tuple
    xfull: np.ndarray
    yfull: np.ndarray
    ys: np.ndarray
    lam: np.ndarray
    lit: np.ndarray
    _optics: object = None
    _point: dict = field(default_factory=dict)

    def point_geometry(self, x_slit):
        """(ys, lam [um], along-slit pixel extent [open heights]) of the light from ``x_slit``."""
        k = round(float(x_slit), 12)
        if k not in self._point:
            ys, lam = invert(self._optics, self.key, k, self.xfull, self.yfull)
            ext = np.abs(np.gradient(ys, axis=0)) if ys.shape[0] > 1 else np.full(ys.shape, 0.1 / OPEN[1])
            self._point[k] = (ys, lam * 1e6, ext)
        return self._point[k]


def _reach(nshutters):
    """Slit-frame half extent [open heights] the light of a slitlet can reach: the outer open
    edges plus 4.7 sigma of the bar-shadow blur at 5.1 um (the rest, < 1e-5 of the light, is cut)."""
    return (scene.R if nshutters > 1 else 0.0) + 0.5 + 0.45


def shutter_image(optics, det, key, nshutters):
    """The :class:`ShutterImage` of a slitlet / shutter on frame ``det`` (``fs_geometry.Detector``
    with x0, y0, nx, ny), or None when its light misses the frame."""
    reach = _reach(nshutters)
    lam = np.linspace(_LAM[0] * 1e-6, _LAM[1] * 1e-6, 300)
    x, y = optics.slit_to_detector(key, np.array([-0.5, 0.5])[:, None, None],
                                   np.array([-reach, reach])[None, :, None], lam[None, None, :])
    x0, x1 = int(np.floor(x.min())) - 2 - det.x0, int(np.ceil(x.max())) + 2 - det.x0
    y0, y1 = int(np.floor(y.min())) - 2 - det.y0, int(np.ceil(y.max())) + 2 - det.y0
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, det.nx - 1), min(y1, det.ny - 1)
    if x1 < x0 or y1 < y0:
        return None
    yfull, xfull = np.mgrid[y0 + det.y0:y1 + det.y0 + 1, x0 + det.x0:x1 + det.x0 + 1].astype(float)
    ys, lam_m = invert(optics, key, 0.0, xfull, yfull)
    lam_um = lam_m * 1e6
    with np.errstate(invalid="ignore"):
        lit = (np.abs(ys) <= reach) & (lam_um >= _LAM[0]) & (lam_um <= _LAM[1])
    if not lit.any():
        return None
    return ShutterImage(key, nshutters, (y0, y1, x0, x1), xfull, yfull, ys, lam_um, lit, optics)


def _flat(img, pixel_flat, lam):
    """FLAT of the box pixels at wavelength ``lam`` [um] (``pixel_flat``: D of the frame)."""
    y0, y1, x0, x1 = img.box
    q, row, _ = img.key
    return (pixel_flat[y0:y1 + 1, x0:x1 + 1] * flat_truth.spectrograph_image(img.xfull, img.yfull)
            * scene.fore_image(q, row) * scene.fore_fast(q, lam) * scene.spectrograph_fast(lam)
            * scene.detector_fast(lam))


def _uniform(img, lam, surface):
    """Rate of uniform light of ``surface`` [MJy/sr, per pixel] through the open shutters, before FLAT."""
    q = img.key[0]
    bar = scene.bar_shadow(img.ys / scene.R, _CENTRES[img.nshutters], lam)
    return (surface * scene.pixar_sr(q) * scene.uniform_throughput(lam, img.nshutters) * bar
            / (scene.PHOTMJ * scene.relresponse(lam)))


def sky_rate(img, pixel_flat):
    """The sky through the shutters [DN/s] per box pixel (0 where unlit)."""
    lam = np.where(img.lit, img.lam, 4.0)
    return np.where(img.lit, _uniform(img, lam, scene.sky_mjysr(lam)) * _flat(img, pixel_flat, lam), 0.0)


def source_rate(img, src, shift, pixel_flat):
    """A source's light [DN/s] per box pixel at a dither point moving it ``shift`` shutters."""
    y_src = src.ypos + scene.R * shift
    if src.kind == "extended":
        lam = np.where(img.lit, img.lam, 4.0)
        prof = np.exp(-0.5 * ((img.ys - y_src) * OPEN[1] / src.size) ** 2)
        val = _uniform(img, lam, scene.spectrum(src, lam) * prof) * _flat(img, pixel_flat, lam)
        return np.where(img.lit, val, 0.0)
    ys, lam, ext = img.point_geometry(src.xpos)
    ok = np.isfinite(lam) & (lam >= _LAM[0]) & (lam <= _LAM[1]) & np.isfinite(ys)
    lam = np.where(ok, lam, 4.0)
    ys = np.where(ok, ys, 0.0)
    centres = [c * scene.R for c in _CENTRES[3]]
    across = fs.slit_transmission(OPEN[0], lam, src.xpos * OPEN[0])
    frac = sum(t * scene.open_fraction(ys - ext / 2, ys + ext / 2, y_src, centres, sig / OPEN[1])
               for t, sig in zip(across, fs.psf_sigmas(lam)))
    val = (scene.spectrum(src, lam) * 1e-6 * frac / (scene.PHOTMJ * scene.relresponse(lam))
           * _flat(img, pixel_flat, lam))
    return np.where(ok, val, 0.0)


def render_exposure(images, slitlets, nod, shape, pixel_flat):
    """(true rate [DN/s], lit mask) of dither point ``nod`` (1-based) on a frame of ``shape``:
    ``slitlets`` [PlannedSlitlet] with ``images`` {slitlet_id: ShutterImage or None}."""
    rate = np.zeros(shape)
    lit = np.zeros(shape, bool)
    shift = NOD_SHIFTS[nod - 1]
    for s in slitlets:
        img = images.get(s.slitlet_id)
        if img is None:
            continue
        val = sky_rate(img, pixel_flat)
        if s.kind == "source":
            val = val + source_rate(img, s.source, shift, pixel_flat)
        _add(rate, lit, img, val)
    return rate, lit


def failed_open_rate(images, shape, pixel_flat):
    """The sky through the failed-open shutters (``images``: [ShutterImage or None])."""
    rate = np.zeros(shape)
    lit = np.zeros(shape, bool)
    for img in images:
        if img is not None:
            _add(rate, lit, img, sky_rate(img, pixel_flat))
    return rate, lit


def _add(rate, lit, img, val):
    y0, y1, x0, x1 = img.box
    rate[y0:y1 + 1, x0:x1 + 1] += val
    lit[y0:y1 + 1, x0:x1 + 1] |= img.lit


def leak_pattern(optics, det):
    """The MSA leakage glow [DN/s] on frame ``det``: bumps at the detector rows of the shutter
    centres of every MSA column (both halves), a slow ramp along the dispersion, scaled to
    LEAK_LEVEL times the sky of an open shutter at 4 um."""
    sky = (scene.sky_mjysr(4.0) * scene.pixar_sr(2.5) * scene.uniform_throughput(4.0)
           / (scene.PHOTMJ * scene.relresponse(4.0)))
    cols = np.arange(1, N_COLUMNS + 1)
    rows = []
    for q in (3, 4):   # column centres of the upper and lower halves at 4 um (a regular grid:
        # column c is (c - 1) * R open heights from column 1 in the latter's slit frame)
        _, y = optics.slit_to_detector((q, 183, 1), 0.0, (cols - 1) * scene.R, 4.0e-6)
        rows.append(np.asarray(y) - det.y0)
    centres = np.concatenate(rows)
    y = np.arange(det.ny, dtype=float)
    sig = 0.25 * OPEN[1] / 0.1               # pixels: a quarter of the open height
    bumps = np.zeros(det.ny)
    for c in centres:
        near = np.abs(y - c) < 6 * sig
        bumps[near] += np.exp(-0.5 * ((y[near] - c) / sig) ** 2)
    x = np.arange(det.nx, dtype=float) + det.x0
    ramp = 0.7 + 0.3 * np.cos(2.0 * np.pi * (x - 1023.5) / 3000.0)
    return LEAK_LEVEL * sky * bumps[:, None] * ramp[None, :]
