"""The simulated MOS scene and the instrument's truth: what a MOS `_rate` pixel is made of.

Light of wavelength lam [um] at slit-frame position y (units of the open shutter height OPEN_Y,
0 at the slitlet's middle shutter; shutter centres R = pitch / open height apart) gives

    rate [DN/s] = FLAT * (point + extended + sky) / (PHOTMJ * RELRESPONSE(lam))
    point    = F_nu(lam) [Jy] * 1e-6 * sum_k a_k T_k(x0) * Y_k(pixel)
    extended = B(lam) [MJy/sr] * G(y) * PIXAR_SR(q) * UN(lam) * BAR(y, lam)
    sky      = SKY(lam) [MJy/sr] * PIXAR_SR(q) * UN(lam) * BAR(y, lam)
    FLAT     = F(q, row) * F_fast(q, lam) * S(x, y) * S_fast(lam) * D(x, y) * D_fast(lam)

* PSF: the fixed-slit program's two Gaussians (``nirspec_fs``); a_k T_k the fraction of
  component k passing the shutter width at the source's x0, Y_k its fraction inside the pixel
  and inside the open shutters (the bars and the closed shutters beyond the slitlet block the
  rest). PS(lam, x, y) = sum_k a_k T_k * (fraction inside the open shutters) is what the
  pathloss reference tabulates (x in open widths, y in shutter pitches).
* BAR: uniform light through the open shutters, blurred by BAR_BLUR(lam): the barshadow
  reference's profile (y in pitches); UN(lam) the uniform-illumination throughput (pathloss
  uniform_data). G: an extended source's Gaussian profile along the slit (sigma ``size``
  arcsec), uniform across the shutter width; B its surface brightness at the profile peak.
* FLAT: the fore-optics flat of a shutter varies with the quadrant and the row only (all shutters
  of a slitlet share it, so the official per-slitlet value is exact), the spectrograph and
  detector parts are those of the FS program (``flat_truth``), the fast parts MOS's own.
* Extended light and the sky are rendered at the slit-centre wavelength of a pixel (the
  official x_slit = 0 convention: the slit-width smoothing of extended emission lines is not
  modelled); a point source's light at the wavelength of its own across-slit position.

PHOTMJ here is 100 times more sensitive than the FS program's: MOS targets are faint, and at the
FS value the sky would be 30 times below the read noise of a pixel (master background, bar
shadows and imprints would not be measurable).
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.special import erf

from . import flat_truth
from . import nirspec_fs as fs
from .mos_optics_refs import OPEN, PITCH, pitch_over_open

__all__ = ["Source", "spectrum", "sky_mjysr", "relresponse", "uniform_throughput", "bar_shadow",
           "open_fraction", "point_transmission", "fore_image", "fore_fast", "spectrograph_fast",
           "detector_fast", "pixar_a2", "pixar_sr", "PHOTMJ", "LMIN", "LMAX", "LINES_REST", "R", "HALF_OPEN"]

LMIN, LMAX = fs.LMIN, fs.LMAX          # um, F290LP / G395M
PHOTMJ = fs.PHOTMJ / 100.0             # MJy per DN/s at RELRESPONSE = 1 (see the module docstring)
R = pitch_over_open()                  # slit-frame distance between shutter centres
HALF_OPEN = 0.5 / R                    # half open height in pitches
SR_PER_A2 = (np.pi / 648000.0) ** 2
# rest wavelengths [um] of the emission lines: H-beta, [OIII], H-alpha, [NII], [SII], [SIII], Pa-gamma,
# Pa-beta, Pa-alpha, Br-gamma
LINES_REST = (0.48613, 0.49590, 0.50068, 0.65628, 0.65835, 0.67164, 0.95320, 1.09411, 1.28216, 1.87561,
              2.16612)

sky_mjysr = fs.sky_mjysr
relresponse = fs.relresponse
detector_fast = flat_truth.detector_fast


@dataclass(frozen=True)
class Source:
    """A MOS target: where it sits in its shutter and what it emits."""

    source_id: int
    kind: str                  # "point" or "extended"
    stellarity: float
    xpos: float                # slit-frame position in its shutter (open widths / heights, -0.5..0.5)
    ypos: float
    size: float                # extended: Gaussian sigma along the slit [arcsec]; point: 0
    continuum: float           # at 4 um: Jy (point) or MJy/sr at the profile peak (extended)
    slope: float               # continuum ~ (lam / 4 um) ** slope
    redshift: float
    lines: tuple = field(default=())      # peak / continuum of each line of LINES_REST
    sigma_kms: float = 150.0   # line width (velocity dispersion)

    @property
    def srctype(self):
        return "POINT" if self.kind == "point" else "EXTENDED"


def spectrum(src, lam):
    """F_nu [Jy] of a point source or the peak surface brightness [MJy/sr] of an extended one.

    A line adds exactly 0 beyond 40 sigma (exp underflows) or with a zero peak: on finite
    wavelengths it is evaluated only within 40 sigma of its centre (the same values, fewer exps)."""
    lam = np.asarray(lam, float)
    cont = src.continuum * (lam / 4.0) ** src.slope
    out = cont.copy()
    finite = lam.size > 0 and bool(np.isfinite(lam).all())
    lo_lam, hi_lam = (float(lam.min()), float(lam.max())) if finite else (None, None)
    for rest, peak in zip(LINES_REST, src.lines):
        centre = rest * (1.0 + src.redshift)
        sig = centre * src.sigma_kms / 299792.458
        if not finite or lam.ndim == 0:
            out += peak * src.continuum * np.exp(-0.5 * ((lam - centre) / sig) ** 2)
            continue
        if peak == 0 or hi_lam < centre - _LINE_REACH * sig or lo_lam > centre + _LINE_REACH * sig:
            continue
        near = np.abs(lam - centre) < _LINE_REACH * sig
        out[near] += peak * src.continuum * np.exp(-0.5 * ((lam[near] - centre) / sig) ** 2)
    return out


_LINE_REACH = 40.0        # sigmas: exp(-0.5 * 40^2) underflows to 0


def uniform_throughput(lam, nshutters=3):
    """UN(lam): uniform-illumination throughput of a slitlet (a lone shutter loses a bit more)."""
    lam = np.asarray(lam, float)
    return (0.96 - 0.03 * ((lam - 4.0) / 1.1) ** 2) * (1.0 if nshutters > 1 else 0.98)


def _phi(z):
    return 0.5 * (1.0 + erf(z / np.sqrt(2.0)))


def bar_blur(lam):
    """Blur [arcsec] of the shutter edges in the bar-shadow profile (diffraction: ~ lam)."""
    return 0.035 * np.asarray(lam, float) / 4.0


def bar_shadow(u, centres, lam):
    """BAR: fraction of uniform light reaching slit position ``u`` [pitches] through open
    shutters centred at ``centres`` [pitches], at ``lam`` [um]."""
    u = np.asarray(u, float)
    s = bar_blur(lam) / PITCH[1]
    out = 0.0
    for c in centres:
        out = out + _phi((u - c + HALF_OPEN) / s) - _phi((u - c - HALF_OPEN) / s)
    return out


def open_fraction(lo, hi, y_src, centres, sigma):
    """Fraction of a Gaussian (centre ``y_src``, ``sigma``) inside [lo, hi] and inside the open
    shutters centred at ``centres`` (all in slit units: open heights)."""
    out = 0.0
    for c in centres:
        a = np.maximum(lo, c - 0.5)
        b = np.minimum(hi, c + 0.5)
        b = np.maximum(a, b)
        out = out + _phi((b - y_src) / sigma) - _phi((a - y_src) / sigma)
    return out


def point_transmission(x, y, lam, centres):
    """PS: fraction of a point source's light through open shutters centred at ``centres``
    [pitches]; source at ``x`` [open widths] across, ``y`` [pitches] along, ``lam`` [um]."""
    lam = np.asarray(lam, float)
    across = fs.slit_transmission(OPEN[0], lam, np.asarray(x, float) * OPEN[0])
    out = 0.0
    for t, s in zip(across, fs.psf_sigmas(lam)):
        sp = s / PITCH[1]
        inside = 0.0
        for c in centres:
            inside = inside + _phi((c + HALF_OPEN - y) / sp) - _phi((c - HALF_OPEN - y) / sp)
        out = out + t * inside
    return out


# ---------------------------------------------------------------- flat field and photometry
def fore_image(quadrant, row):
    """F: the fore-optics flat of a shutter (the fflat quadrant cube's value), by quadrant and row."""
    row = np.asarray(row, float)
    return 1.0 + 0.015 * np.sin(2.0 * np.pi * row / 97.0 + 0.7 * quadrant)


def fore_fast(quadrant, lam):
    """F_fast: the fore-optics flat's wavelength part of a quadrant (fflat FAST_VARIATION)."""
    lam = np.asarray(lam, float)
    return 1.0 + 0.02 * np.sin(2.0 * np.pi * (lam - 2.87) / 0.41 + 0.9 * quadrant)


def spectrograph_fast(lam):
    """S_fast: the spectrograph flat's wavelength part for MOS (sflat FAST_VARIATION "ANY")."""
    lam = np.asarray(lam, float)
    return 1.0 + 0.01 * np.cos(2.0 * np.pi * lam / 0.9) + 0.004 * (lam - 4.0)


def pixar_a2(quadrant):
    """Pixel area [arcsec^2] of the slitlets of a quadrant (the MOS area reference)."""
    return fs.PIXAR_A2 * (1.0 + 0.002 * (quadrant - 2.5))


def pixar_sr(quadrant):
    return pixar_a2(quadrant) * SR_PER_A2
