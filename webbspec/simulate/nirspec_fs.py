"""NIRSpec fixed-slit instrument model and scene (the simulator's own forward model).

Geometry of one slit on one detector (all pixel coordinates 0-based pixel centres, x = column):

* slit centre line (trace)  y_c(x) = YCEN + TILT*(x - XREF) + CURV*(x - XREF)**2
* along-slit offset          ya(x, y) = (y - y_c(x)) * PSCALE                  [arcsec]
* wavelength (uniform light) lam(x, y) = polyval((x_eff - DISP_X0)/DISP_XN, DISP_C),
  x_eff = x + LTILT*(y - y_c(x))   (tilted iso-wavelength lines)              [um]
* a pixel is on the slit when slit_y_low <= ya/LENGTH <= slit_y_high and LMIN <= lam <= LMAX.
* sky: the aperture ("ideal") frame (xa across, ya along the slit) [arcsec] is the tangent plane
  at (RA_REF, DEC_REF), rotated by PA_APER (position angle of +ya, east of north):
  xi = xa cos PA + ya sin PA, eta = -xa sin PA + ya cos PA. A slit pixel sits at
  (xa, ya) = (XA, YA + ya(x, y)) (the slit centre line across the slit).
* a point source at (XOFFSET, YOFFSET) in the aperture frame is offset across the slit by
  SRCXPOS = (XOFFSET - XA)/WIDTH; its light of wavelength lam lands SRCXPOS*WIDTH/PSCALE
  columns redward of the uniform-illumination position (undone by wavecorr with
  SLOPE = -WIDTH/PSCALE).

Photometry (what flat_field, pathloss and photom invert): rate [DN/s] per pixel =
D(x,y) * FAST(lam) * R(lam) * (point + extended) with R = 1/(PHOTMJ*RELRESPONSE(lam)),
point [MJy] = F_nu(lam_ps) * sum_k a_k T_k(lam_ps, x0) * G_k(pixel),
extended [MJy] = B(lam) * PIXAR_SR * UN(lam) * coverage.
The PSF is a mixture of two circular Gaussians (core + wing, widths growing with lam): T_k is the
fraction of component k transmitted by the slit width, G_k its pixel integral along the slit
(truncated at the slit ends).
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.special import erf

LMIN, LMAX = 2.87, 5.10            # G395M/F290LP [um]
PSCALE = 0.1                       # arcsec per pixel (both axes)
PIXAR_A2 = PSCALE * PSCALE
PIXAR_SR = PIXAR_A2 * (np.pi / 648000.0) ** 2
PHOTMJ = 2.0e-10                   # MJy per DN/s at RELRESPONSE = 1
GAIN = 1.0                         # e/DN
EFFEXPTM = 1000.0                  # s
VAR_RNOISE = 1.0e-5                # (DN/s)^2 per pixel
PSF_WEIGHTS = (0.85, 0.15)         # core, wing
GRATING, FILTER = "G395M", "F290LP"


@dataclass(frozen=True)
class SlitDef:
    name: str
    width: float        # arcsec (across, dispersion direction)
    length: float       # arcsec (along)
    xa: float           # slit centre in the aperture frame [arcsec]
    ya: float
    shift: float        # spectrum offset along the dispersion [pixels]
    fast_phase: float   # phase of the slit's fast flat variation


# Official FS order (FIXED_SLIT_NUMS); S200B1 is not simulated.
SLITS = (
    SlitDef("S200A1", 0.2, 3.2, 0.0, 0.0, 0.0, 0.0),
    SlitDef("S200A2", 0.2, 3.2, -2.6, 0.3, 9.0, 1.3),
    SlitDef("S400A1", 0.4, 3.8, 2.2, -0.2, -7.0, 2.6),
    SlitDef("S1600A1", 1.6, 1.6, 4.4, 0.5, 15.0, 3.9),
)
SLIT_NUMS = {"S200A1": 1, "S200A2": 2, "S400A1": 3, "S1600A1": 4, "S200B1": 5}
PRIMARY = "S200A1"


def source_id(slit_name, primary=PRIMARY):
    """Official FS source ids: primary slit 1, others 10*num(primary) + num(slit)."""
    return 1 if slit_name == primary else 10 * SLIT_NUMS[primary] + SLIT_NUMS[slit_name]


@dataclass
class SlitGeom:
    """One slit on one detector: the row of the specwcs SLITS table."""

    name: str
    width: float
    length: float
    xa: float
    ya: float
    pscale: float
    xref: float
    ycen: float
    tilt: float
    curv: float
    ltilt: float
    disp_x0: float
    disp_xn: float
    disp_c: tuple
    lmin: float = LMIN
    lmax: float = LMAX

    def trace(self, x):
        u = np.asarray(x, float) - self.xref
        return self.ycen + self.tilt * u + self.curv * u * u

    def wavelength_at(self, x_eff):
        s = (np.asarray(x_eff, float) - self.disp_x0) / self.disp_xn
        return np.polynomial.polynomial.polyval(s, np.asarray(self.disp_c, float))

    def coords(self, x, y, column_shift=0.0):
        """(ya [arcsec], lam [um]) at pixel centres (x, y); ``column_shift`` moves the
        dispersion by that many columns (a point source offset across the slit)."""
        yc = self.trace(x)
        dy = np.asarray(y, float) - yc
        return dy * self.pscale, self.wavelength_at(x + self.ltilt * dy - column_shift)


@dataclass
class Detector:
    name: str
    nx: int
    ny: int
    slits: list = field(default_factory=list)


def _disp_coeffs(span):
    """lam(s) = LMIN + span*(1+a)*s - span*a*s**2 with s in [0, 1] <-> [LMIN, LMAX]."""
    a = 0.12
    return (LMIN, span * (1 + a), -span * a)


def layout(scale="small"):
    """The detectors of a ``scale`` ("small": one 400x200 NRS1; "full": NRS1+NRS2 2048x2048)."""
    if scale == "small":
        specs = [("NRS1", 400, 200, 0.0)]
        v0, vn, row0, tilt0, curv_sag = 12.0, 370.0, 4.0, 0.008, 2.5
    elif scale == "full":
        gap = 30.0
        specs = [("NRS1", 2048, 2048, 0.0), ("NRS2", 2048, 2048, 2048.0 + gap)]
        v0, vn, row0, tilt0, curv_sag = 40.0, 4096.0 + gap - 80.0, 900.0, 0.002, 4.0
    else:
        raise ValueError(f"unknown scale {scale!r}; use 'small' or 'full'")
    dets = []
    for name, nx, ny, xoff in specs:
        xref = (nx - 1) / 2.0
        curv = curv_sag / xref ** 2
        det = Detector(name, nx, ny)
        row = row0
        for i, sd in enumerate(SLITS):
            tilt = tilt0 * (1.0 + 0.15 * i) * (-1) ** i
            drift = abs(tilt) * xref + curv_sag
            half = 0.55 * sd.length / PSCALE
            ycen = row + half + abs(tilt) * xref + 2.0
            det.slits.append(SlitGeom(
                sd.name, sd.width, sd.length, sd.xa, sd.ya, PSCALE, xref, ycen, tilt, curv,
                0.02 * (1 + 0.1 * i), v0 + sd.shift - xoff, vn, _disp_coeffs(LMAX - LMIN)))
            row = ycen + half + drift + 5.0
        if row > ny - 4:
            raise AssertionError("slits do not fit on the detector")
        dets.append(det)
    return dets


def slit_box(geom, nx, ny, slit_y=(-0.55, 0.55)):
    """(y0, y1, x0, x1) integer bounds (inclusive) that enclose the slit's pixels."""
    x = np.arange(nx, dtype=float)
    yc = geom.trace(x)
    lo = yc + slit_y[0] * geom.length / geom.pscale
    hi = yc + slit_y[1] * geom.length / geom.pscale
    y0, y1 = int(np.floor(lo.min())) - 1, int(np.ceil(hi.max())) + 1
    lam = geom.wavelength_at(x)     # centre line; LTILT moves iso-lambda lines < 1 pixel
    ok = np.flatnonzero((lam >= geom.lmin - 0.02) & (lam <= geom.lmax + 0.02))
    if ok.size == 0:
        return None
    return max(y0, 0), min(y1, ny - 1), max(int(ok[0]) - 2, 0), min(int(ok[-1]) + 2, nx - 1)


# ---------------------------------------------------------------- scene and calibration


LINES = ((3.2970, 0.4e-3, 0.020), (3.7406, 0.6e-3, 0.010), (4.0523, 1.5e-3, 0.010),
         (4.6538, 1.0e-3, 0.010))   # (centre um, peak Jy, sigma um)


def point_source_jy(lam):
    """The primary target's spectrum F_nu [Jy]: power-law continuum plus emission lines."""
    lam = np.asarray(lam, float)
    f = 1.0e-3 * (lam / 4.0) ** -1.5
    for c, peak, sig in LINES:
        f = f + peak * np.exp(-0.5 * ((lam - c) / sig) ** 2)
    return f


def sky_mjysr(lam):
    """Uniform sky (zodiacal + thermal-like) surface brightness [MJy/sr]."""
    lam = np.asarray(lam, float)
    return 0.03 + 0.05 * (lam / 3.0) ** 1.5


def relresponse(lam):
    """RELRESPONSE(lam): photom conversion relative to PHOTMJ (1/system throughput)."""
    lam = np.asarray(lam, float)
    return 1.0 / (0.25 + 0.75 * np.exp(-0.5 * ((lam - 3.9) / 1.1) ** 2))


def fast_variation(slit_name, lam):
    phase = next(s.fast_phase for s in SLITS if s.name == slit_name)
    lam = np.asarray(lam, float)
    return 1.0 + 0.02 * np.sin(2 * np.pi * (lam - LMIN) / 0.37 + phase) + 0.01 * np.cos(2 * np.pi * lam / 0.9)


def uniform_throughput(slit_name, lam):
    """UN(lam): slit throughput for uniform illumination (smooth, < 1)."""
    lam = np.asarray(lam, float)
    i = [s.name for s in SLITS].index(slit_name)
    return 0.97 - 0.01 * i - 0.03 * ((lam - 4.0) / 1.1) ** 2


def psf_sigmas(lam):
    """(core, wing) Gaussian sigmas [arcsec] at ``lam``."""
    lam = np.asarray(lam, float)
    return 0.068 * lam / 4.5, 0.15 * lam / 4.5


def _transmit(half_width, x0, sigma):
    r2 = np.sqrt(2.0) * sigma
    return 0.5 * (erf((half_width - x0) / r2) + erf((half_width + x0) / r2))


def slit_transmission(width, lam, x0=0.0):
    """Per PSF component, a_k * T_k: weighted fraction transmitted across the slit width."""
    return [a * _transmit(width / 2.0, x0, s) for a, s in zip(PSF_WEIGHTS, psf_sigmas(lam))]


def point_throughput(width, lam, x0=0.0):
    """PS(lam): fraction of a point source at across-slit offset x0 transmitted by the slit."""
    return sum(slit_transmission(width, lam, x0))


def enclosed_fraction(width, lam, size_pixels):
    """Fraction of the transmitted light of a centred point source within +-size/2 pixels along
    the slit (the aperture-correction model; an unbounded slit length)."""
    lam = np.asarray(lam, float)
    h = np.asarray(size_pixels, float) * PSCALE / 2.0
    parts = slit_transmission(width, lam)
    num = sum(t * erf(h / (np.sqrt(2.0) * s)) for t, s in zip(parts, psf_sigmas(lam)))
    return num / sum(parts)


def point_profile(geom, ya, lam, ya_src, x0):
    """MJy fraction per pixel of a unit point source (pixel integral along the slit, truncated at
    the slit ends, times the across-slit transmission)."""
    half = geom.length / 2.0
    lo = np.maximum(ya - geom.pscale / 2.0, -half) - ya_src
    hi = np.minimum(ya + geom.pscale / 2.0, half) - ya_src
    hi = np.maximum(hi, lo)
    out = 0.0
    for t, s in zip(slit_transmission(geom.width, lam, x0), psf_sigmas(lam)):
        r2 = np.sqrt(2.0) * s
        out = out + t * 0.5 * (erf(hi / r2) - erf(lo / r2))
    return out


def coverage(geom, ya):
    """Fraction of a pixel's along-slit extent inside the slit (sharp slit ends)."""
    return np.clip((geom.length / 2.0 - np.abs(ya)) / geom.pscale + 0.5, 0.0, 1.0)


def render(det, expo, pixel_flat):
    """True count rate [DN/s] of one exposure on ``det`` and the boolean mask of slit pixels.

    ``expo``: dict with XOFFSET, YOFFSET [arcsec] (point source in the aperture frame) and
    PRIMARY (the slit holding the source).
    """
    rate = np.zeros((det.ny, det.nx))
    onslit = np.zeros((det.ny, det.nx), bool)
    for g in det.slits:
        box = slit_box(g, det.nx, det.ny)
        if box is None:
            continue
        y0, y1, x0, x1 = box
        y, x = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(float)
        ya, lam = g.coords(x, y)
        inside = (lam >= g.lmin) & (lam <= g.lmax) & (np.abs(ya) <= 0.55 * g.length)
        ext = (sky_mjysr(lam) * PIXAR_SR * uniform_throughput(g.name, lam) * coverage(g, ya)
               / (PHOTMJ * relresponse(lam)) * fast_variation(g.name, lam))
        sig = ext
        if g.name == expo["PRIMARY"]:
            xpos = (expo["XOFFSET"] - g.xa) / g.width
            _, lam_ps = g.coords(x, y, column_shift=xpos * g.width / g.pscale)
            prof = point_profile(g, ya, lam_ps, expo["YOFFSET"] - g.ya, expo["XOFFSET"] - g.xa)
            pt = (point_source_jy(lam_ps) * 1e-6 * prof / (PHOTMJ * relresponse(lam_ps))
                  * fast_variation(g.name, lam_ps))
            sig = sig + pt
        sub = rate[y0:y1 + 1, x0:x1 + 1]
        sub[inside] = (sig * pixel_flat[y0:y1 + 1, x0:x1 + 1])[inside]
        onslit[y0:y1 + 1, x0:x1 + 1] |= inside
    return rate, onslit


def point_source_wavelength(geom, x, y, xoffset):
    """True wavelength [um] of the point source's light at pixel (x, y) (the wavecorr target)."""
    xpos = (xoffset - geom.xa) / geom.width
    return geom.coords(x, y, column_shift=xpos * geom.width / geom.pscale)[1]
