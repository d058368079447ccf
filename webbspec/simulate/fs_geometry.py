"""The simulator's truth geometry of NIRSpec fixed slits: where each slit's light lands.

Pixels are mapped to (y_slit, wavelength) by inverting the FORWARD optical model
(``Optics.slit_to_detector``, the official frame chain on the simulated reference files) with this
module's own 2-D Newton iteration (finite-difference Jacobian, started from a dense forward grid
along the slit centre line), not with the pipeline's backward transform, so an error in the
pipeline's inversion shows up against this truth. For the point source the inversion is done at
its own x_slit: its light of wavelength lam lands where the forward model puts (x_slit, y_slit,
lam), which is what wavecorr must recover.
"""

import atexit
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np

from ..instruments.nirspec.optics import Optics
from . import nirspec_optics_refs as design

__all__ = ["Detector", "SlitGeom", "layout", "optics_for", "APERTURE", "ideal_to_v2v3"]

# the aperture (ideal) frame of the exposures: origin at the S200A1 centre, Y along the slits
APERTURE = {"V2_REF": design.V2V3_S200A1[0], "V3_REF": design.V2V3_S200A1[1],
            "V3I_YANG": -design.OTE_ROT, "VPARITY": -1}
Y_RANGE = (-0.55, 0.55)


def ideal_to_v2v3(x, y, ap=APERTURE):
    """V2/V3 [arcsec] of ideal-frame offsets (x, y) [arcsec] (official IdealToV2V3 formula)."""
    a, par = np.radians(ap["V3I_YANG"]), ap["VPARITY"]
    return (ap["V2_REF"] + par * x * np.cos(a) + y * np.sin(a),
            ap["V3_REF"] - par * x * np.sin(a) + y * np.cos(a))


@functools.lru_cache(maxsize=None)
def _default_refdir():
    d = tempfile.mkdtemp(prefix="webbspec_optics_")
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    design.write_optical_refs(d)
    return d


def optics_for(detector, refdir=None):
    """The forward optical model of ``detector`` from the optical references in ``refdir`` (the
    design written to a private temporary directory when None)."""
    refdir = refdir or _default_refdir()
    refs = {rt: os.path.join(refdir, design.REF_FILES[rt]) for rt in design.OPTICAL_REFTYPES}
    header = {"DETECTOR": detector, "FILTER": "F290LP", "GRATING": "G395M",
              "GWA_XTIL": design.GWA_TILT_READINGS[0], "GWA_YTIL": design.GWA_TILT_READINGS[1]}
    return Optics(refs, header, where="simulator")


@dataclass
class SlitGeom:
    """One slit on one detector frame: its pixels and their truth coordinates.

    ``box`` (y0, y1, x0, x1): inclusive image bounds; ``ya`` [arcsec along the slit from its
    centre] and ``lam`` [um] per box pixel for light from the slit centre line (x_slit = 0);
    ``inside``: |y_slit| <= 0.55 and lam within the wavelength range; ``pscale`` [arcsec per
    pixel along the slit] per box pixel, from the optics (not the nominal 0.1": the along-slit
    extent of a pixel sets how much of a point source's light it holds).
    """

    name: str
    width: float
    length: float
    pscale: float
    box: tuple
    ya: np.ndarray
    lam: np.ndarray
    inside: np.ndarray
    xfull: np.ndarray          # full-frame pixel coordinates of the box
    yfull: np.ndarray
    _optics: object = None
    _ps: dict = field(default_factory=dict)

    def wavelength_for(self, x_slit):
        """[um] per box pixel of the light from across-slit position ``x_slit`` [slit units]."""
        key = round(float(x_slit), 12)
        if key not in self._ps:
            self._ps[key] = invert(self._optics, self.name, key, self.xfull, self.yfull)[1] * 1e6
        return self._ps[key]


@dataclass
class Detector:
    name: str
    nx: int
    ny: int
    x0: int = 0                # subarray start (0-based full-frame column / row)
    y0: int = 0
    subarray: str = "FULL"
    slits: list = field(default_factory=list)
    optics: object = None

    def source_in_slit(self, slit, xoffset, yoffset):
        """(x_slit, y_slit) of a source at ideal (xoffset, yoffset) [arcsec] (at 2 um, as the
        official extract_2d places it)."""
        v2, v3 = ideal_to_v2v3(xoffset, yoffset)
        xs, ys = self.optics.v2v3_to_slit(slit, v2, v3, 2.0e-6)
        return float(xs), float(ys)


def invert(optics, slit, x_slit, x, y, iterations=4):
    """(y_slit, lam [m]) whose forward image at ``x_slit`` is the full-frame pixel (x, y)."""
    lmin, lmax = design.LAM_RANGE
    grid = np.linspace(lmin - 0.1e-6, lmax + 0.1e-6, 4000)
    xc, yc = optics.slit_to_detector(slit, x_slit, 0.0, grid)
    _, yup = optics.slit_to_detector(slit, x_slit, 0.1, grid)
    lam = np.interp(x, xc, grid, left=np.nan, right=np.nan)
    ys = (y - np.interp(x, xc, yc)) / np.interp(x, xc, (yup - yc) / 0.1)
    h_ys, h_lam = 1e-4, 1e-11
    for _ in range(iterations):
        fx, fy = optics.slit_to_detector(slit, x_slit, ys, lam)
        ax, ay = optics.slit_to_detector(slit, x_slit, ys + h_ys, lam)
        bx, by = optics.slit_to_detector(slit, x_slit, ys, lam + h_lam)
        j11, j21 = (ax - fx) / h_ys, (ay - fy) / h_ys
        j12, j22 = (bx - fx) / h_lam, (by - fy) / h_lam
        det = j11 * j22 - j12 * j21
        rx, ry = x - fx, y - fy
        ys = ys + (j22 * rx - j12 * ry) / det
        lam = lam + (-j21 * rx + j11 * ry) / det
    return ys, lam


def _box(optics, slit, det):
    """Inclusive image bounds of the slit's light on the frame, or None."""
    lam = np.linspace(*design.LAM_RANGE, 300)
    xs = np.array([-0.5, 0.0, 0.5])[:, None, None]
    ys = np.array([-0.6, 0.6])[None, :, None]
    x, y = optics.slit_to_detector(slit, xs, ys, lam[None, None, :])
    x0, x1 = int(np.floor(x.min())) - 2 - det.x0, int(np.ceil(x.max())) + 2 - det.x0
    y0, y1 = int(np.floor(y.min())) - 2 - det.y0, int(np.ceil(y.max())) + 2 - det.y0
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, det.nx - 1), min(y1, det.ny - 1)
    return None if x1 < x0 or y1 < y0 else (y0, y1, x0, x1)


def _slit_geom(det, name, pscale):
    """The slit's truth geometry on ``det`` (``pscale``: the nominal scale, for a one-row box)."""
    width, length = design.SLIT_SIZES[name]
    box = _box(det.optics, name, det)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    yfull, xfull = np.mgrid[y0 + det.y0:y1 + det.y0 + 1, x0 + det.x0:x1 + det.x0 + 1].astype(float)
    ys, lam = invert(det.optics, name, 0.0, xfull, yfull)
    lam_um = lam * 1e6
    lmin, lmax = (v * 1e6 for v in design.LAM_RANGE)
    with np.errstate(invalid="ignore"):
        inside = (np.abs(ys) <= Y_RANGE[1]) & (lam_um >= lmin) & (lam_um <= lmax)
    if not inside.any():
        return None
    ya = ys * length
    local = np.abs(np.gradient(ya, axis=0)) if ya.shape[0] > 1 else np.full(ya.shape, pscale)
    return SlitGeom(name, width, length, local, box, ya, lam_um, inside, xfull, yfull, det.optics)


def layout(scale="small", refdir=None, pscale=0.1):
    """The detector frames of a ``scale`` with every fixed slit's truth geometry: "small" is the
    NRS1 ALLSLITS subarray (2048 x 256), "full" NRS1 and NRS2 at 2048 x 2048."""
    if scale not in design.SUBARRAYS:
        raise ValueError(f"unknown scale {scale!r}; use 'small' or 'full'")
    dets = []
    for name, sub, sx, sy, nx, ny in design.SUBARRAYS[scale]:
        det = Detector(name, nx, ny, sx - 1, sy - 1, sub, optics=optics_for(name, refdir))
        det.slits = [g for g in (_slit_geom(det, s, pscale) for s in design.FS_SLITS) if g is not None]
        dets.append(det)
    return dets
