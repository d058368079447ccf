"""NIRSpec fixed-slit instrument model and scene (the simulator's own forward model).

Geometry (``fs_geometry``): the NIRSpec optical model of the simulated reference files
(``nirspec_optics_refs``: the official frame chain, MSA -> grating -> detector and MSA -> sky),
inverted per pixel with the simulator's own Newton iteration on the forward model. Per slit pixel:
``ya`` [arcsec along the slit from its centre] and ``lam`` [um] of the light from the slit centre
line (uniform illumination; the official WCS convention), and for the point source, which sits at
(x_slit, y_slit) = the slit-frame position of its ideal-frame offsets (XOFFSET, YOFFSET), the
wavelength of its own light at that pixel (``SlitGeom.wavelength_for``; what wavecorr recovers).

Photometry (what flat_field, pathloss and photom invert): rate [DN/s] per pixel =
D(x,y) * S(x,y) * FAST(lam) * R(lam) * (point + extended) with R = 1/(PHOTMJ*RELRESPONSE(lam)),
point [MJy] = F_nu(lam_ps) * sum_k a_k T_k(lam_ps, x0) * G_k(pixel),
extended [MJy] = B(lam) * PIXAR_SR * UN(lam) * coverage.
The PSF is a mixture of two circular Gaussians (core + wing, widths growing with lam): T_k is the
fraction of component k transmitted by the slit width, G_k its pixel integral along the slit
(truncated at the slit ends).
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from . import flat_truth, fs_geometry

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
    fast_phase: float   # phase of the slit's fast flat variation


# Official FS order (FIXED_SLIT_NUMS); all five are open in FULL and ALLSLITS exposures.
SLITS = (
    SlitDef("S200A1", 0.2, 3.2, 0.0),
    SlitDef("S200A2", 0.2, 3.2, 1.3),
    SlitDef("S400A1", 0.4, 3.8, 2.6),
    SlitDef("S1600A1", 1.6, 1.6, 3.9),
    SlitDef("S200B1", 0.2, 3.2, 5.2),
)
SLIT_NUMS = {"S200A1": 1, "S200A2": 2, "S400A1": 3, "S1600A1": 4, "S200B1": 5}
PRIMARY = "S200A1"


def source_id(slit_name, primary=PRIMARY):
    """Official FS source ids: primary slit 1, others 10*num(primary) + num(slit)."""
    return 1 if slit_name == primary else 10 * SLIT_NUMS[primary] + SLIT_NUMS[slit_name]


def layout(scale="small", refdir=None):
    """The detector frames of a ``scale`` with each slit's truth geometry (see fs_geometry):
    "small" the NRS1 ALLSLITS subarray 2048 x 256, "full" NRS1 and NRS2 2048 x 2048."""
    return fs_geometry.layout(scale, refdir, PSCALE)


# ---------------------------------------------------------------- scene and calibration


# (centre um, peak Jy, sigma um): resolved lines (sigma ~4 pixels, about G395M's resolution), four
# of them on NRS1 in the small (ALLSLITS) program
LINES = ((3.2970, 2.0e-3, 0.0025), (3.5350, 1.5e-3, 0.0025), (3.7406, 2.0e-3, 0.0025),
         (3.9200, 1.5e-3, 0.0025), (4.0523, 3.0e-3, 0.0025), (4.6538, 2.0e-3, 0.0025))


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
    """The wavelength-dependent part of a slit's flat (fflat * sflat * dflat; see flat_truth)."""
    return flat_truth.fast_total(slit_name, lam)


def uniform_throughput(slit_name, lam):
    """UN(lam): slit throughput for uniform illumination (smooth, < 1)."""
    lam = np.asarray(lam, float)
    i = SLIT_NUMS[slit_name] - 1
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


def enclosed_fraction(width, lam, size_pixels, pscale=PSCALE):
    """Fraction of the transmitted light of a centred point source within +-size/2 pixels along
    the slit (the aperture-correction model; an unbounded slit length); ``pscale``: the slit's
    along-slit scale [arcsec/pixel]."""
    lam = np.asarray(lam, float)
    h = np.asarray(size_pixels, float) * pscale / 2.0
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
        y0, y1, x0, x1 = g.box
        x, y = g.xfull, g.yfull               # full-frame pixel coordinates of the box
        ya, lam, inside = g.ya, np.where(g.inside, g.lam, 4.0), g.inside
        ext = (sky_mjysr(lam) * PIXAR_SR * uniform_throughput(g.name, lam) * coverage(g, ya)
               / (PHOTMJ * relresponse(lam)) * fast_variation(g.name, lam))
        sig = ext
        if g.name == expo["PRIMARY"]:
            xs, ys = det.source_in_slit(g.name, expo["XOFFSET"], expo["YOFFSET"])
            lam_ps = g.wavelength_for(xs)
            lam_ps = np.where(np.isfinite(lam_ps), lam_ps, 4.0)
            prof = point_profile(g, ya, lam_ps, ys * g.length, xs * g.width)
            pt = (point_source_jy(lam_ps) * 1e-6 * prof / (PHOTMJ * relresponse(lam_ps))
                  * fast_variation(g.name, lam_ps))
            sig = sig + pt
        sub = rate[y0:y1 + 1, x0:x1 + 1]
        # pixel_flat: the detector flat D; times the spectrograph flat's image S (x, y full frame)
        flat = pixel_flat[y0:y1 + 1, x0:x1 + 1] * flat_truth.spectrograph_image(x, y)
        sub[inside] = (sig * flat)[inside]
        onslit[y0:y1 + 1, x0:x1 + 1] |= inside
    return rate, onslit


def point_source_wavelength(det, geom, xoffset, yoffset=0.0):
    """True wavelength [um] of the point source's light at each pixel of ``geom.box`` (the
    wavecorr target)."""
    return geom.wavelength_for(det.source_in_slit(geom.name, xoffset, yoffset)[0])
