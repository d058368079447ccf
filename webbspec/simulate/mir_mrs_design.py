"""The simulated MIRI MRS: a toy but self-consistent design of channels 1-4 and bands SHORT/MEDIUM/LONG.

Detectors (data shape (1024, 1032), 0-based x 0..1031, y 0..1023): MIRIFUSHORT holds channel 1
(left half, x <= 512) and channel 2 (right half), MIRIFULONG channel 4 (left) and 3 (right), as the
official cube_build hard-codes them. Slice k (1..n) of channel c has the official number 100c + k;
slices are interleaved on the detector (1, h+1, 2, h+2, ...), each a band of ``width`` columns
centred on xc_k(y) = XC_k + tilt (y - YC):

    alpha = s_a (x - xc_k(y))                                 [arcsec, along the slice]
    beta  = bzero + (k - 1) bdel                              [arcsec, constant in a slice]
    lam   = LAMC_k + sign D (y - YC) + g (x - xc_k(y))        [um]; D = band range / 1023
    (v2, v3) = (V2_CEN + dv2, V3_CEN + dv3) + R(THETA) (alpha, beta)            [arcsec]

The geometry (columns, slice widths on the sky, tilt) is the channel's in every band; the band
sets the wavelengths. Everything here is analytic: the reference writer (mir_mrs_wcsrefs) turns it
into the official transforms, the tests check our WCS against it.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["NX", "NY", "YC", "V2_CEN", "V3_CEN", "THETA", "BANDS", "DETECTOR_CHANNELS", "CHANNEL_DETECTOR",
           "Channel", "CHANNELS", "band_range", "wavelength_range", "slice_geometry", "detector_order",
           "truth_det2abl", "ab_to_v2v3", "v2v3_to_ab", "psf_fwhm"]

NX, NY = 1032, 1024
YC = 511.5
V2_CEN, V3_CEN = -503.0, -318.0        # arcsec: the channel-1 field centre (= V2_REF, V3_REF)
THETA = 8.4                            # deg: rotation alpha/beta -> V2/V3
BANDS = ("SHORT", "MEDIUM", "LONG")
DETECTOR_CHANNELS = {"MIRIFUSHORT": "12", "MIRIFULONG": "34"}
CHANNEL_DETECTOR = {"1": "MIRIFUSHORT", "2": "MIRIFUSHORT", "3": "MIRIFULONG", "4": "MIRIFULONG"}

# nominal band ranges [um] (close to the real sub-bands); the detector spans them over its rows
_BAND_RANGE = {
    ("1", "SHORT"): (4.90, 5.74), ("1", "MEDIUM"): (5.66, 6.63), ("1", "LONG"): (6.53, 7.65),
    ("2", "SHORT"): (7.51, 8.77), ("2", "MEDIUM"): (8.67, 10.13), ("2", "LONG"): (10.02, 11.70),
    ("3", "SHORT"): (11.55, 13.47), ("3", "MEDIUM"): (13.34, 15.57), ("3", "LONG"): (15.41, 17.98),
    ("4", "SHORT"): (17.70, 20.95), ("4", "MEDIUM"): (20.69, 24.48), ("4", "LONG"): (24.19, 27.90),
}


@dataclass(frozen=True)
class Channel:
    name: str
    nslice: int
    x0: float          # first column of the leftmost slice band at y = YC
    pitch: float       # columns between slice bands
    width: int         # columns of a slice band
    s_a: float         # arcsec per column along the slice
    bdel: float        # slice width on the sky [arcsec]
    sign: int          # +1: wavelength increases with y
    tilt: float        # columns per row
    g: float           # um per column along the slice (relative to D: fraction of a row's step)
    dv2: float         # field offset from channel 1 [arcsec]
    dv3: float

    @property
    def bzero(self):
        return -(self.nslice - 1) / 2.0 * self.bdel

    def beta(self, k):
        return self.bzero + (k - 1) * self.bdel


CHANNELS = {
    "1": Channel("1", 21, 10, 23, 18, 0.196, 0.177, +1, 0.004, 0.025, 0.0, 0.0),
    "2": Channel("2", 17, 530, 28, 24, 0.196, 0.280, -1, -0.003, -0.03, 0.06, -0.04),
    "3": Channel("3", 16, 535, 29, 22, 0.245, 0.390, -1, 0.002, 0.02, -0.05, 0.08),
    "4": Channel("4", 12, 20, 36, 26, 0.273, 0.656, +1, -0.002, -0.02, 0.10, 0.05),
}


def band_range(channel, band):
    """(lam at the first row's side, lam at the last) range [um] of the band on the detector."""
    return _BAND_RANGE[(str(channel), band.upper())]


def wavelength_range(channel, band):
    """The wavelengthrange reference's range: the detector's plus a margin (no pixel outside)."""
    lo, hi = band_range(channel, band)
    d = dispersion(channel, band)
    return lo - 12 * d, hi + 12 * d


def dispersion(channel, band):
    lo, hi = band_range(channel, band)
    return (hi - lo) / (NY - 1)


def detector_order(n):
    """Interleaved slice order on the detector: 1, h+1, 2, h+2, ... (h = ceil(n/2))."""
    h = (n + 1) // 2
    out = []
    for i in range(h):
        out.append(i + 1)
        if h + i + 1 <= n:
            out.append(h + i + 1)
    return out


def slice_geometry(channel, band):
    """{slice number: (XC_k at y = YC, LAMC_k [um], beta_k [arcsec])} of a channel in a band."""
    ch = CHANNELS[str(channel)]
    lo, hi = band_range(channel, band)
    d = dispersion(channel, band)
    geo = {}
    for pos, k in enumerate(detector_order(ch.nslice)):
        xc = ch.x0 + pos * ch.pitch + (ch.width - 1) / 2.0
        lamc = 0.5 * (lo + hi) + 2.5 * d * np.sin(1.7 * k)     # slices differ by a few rows
        geo[int(ch.name) * 100 + k] = (xc, lamc, ch.beta(k))
    return geo


def truth_det2abl(x, y, channels, band):
    """Analytic (slice, alpha, beta, lam) of detector positions for the given channels: slice 0
    and NaN off every slice (the pixel centre decides, as the regions map does)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    sl = np.zeros(x.shape, np.int16)
    alpha, beta, lam = (np.full(x.shape, np.nan) for _ in range(3))
    for c in channels:
        ch = CHANNELS[c]
        d = dispersion(c, band)
        for s, (xc, lamc, b) in slice_geometry(c, band).items():
            u = x - (xc + ch.tilt * (y - YC))
            inside = (u >= -ch.width / 2.0) & (u < ch.width / 2.0)
            sl[inside] = s
            alpha[inside] = ch.s_a * u[inside]
            beta[inside] = b
            lam[inside] = lamc + ch.sign * d * (y[inside] - YC) + ch.g * d * u[inside]
    return sl, alpha, beta, lam


def ab_to_v2v3(channel, alpha, beta):
    ch = CHANNELS[str(channel)]
    t = np.radians(THETA)
    return (V2_CEN + ch.dv2 + np.cos(t) * alpha - np.sin(t) * beta,
            V3_CEN + ch.dv3 + np.sin(t) * alpha + np.cos(t) * beta)


def v2v3_to_ab(channel, v2, v3):
    ch = CHANNELS[str(channel)]
    t = np.radians(THETA)
    dv2, dv3 = np.asarray(v2) - (V2_CEN + ch.dv2), np.asarray(v3) - (V3_CEN + ch.dv3)
    return np.cos(t) * dv2 + np.sin(t) * dv3, -np.sin(t) * dv2 + np.cos(t) * dv3


def psf_fwhm(lam):
    """The telescope PSF's FWHM [arcsec] (a circular Gaussian here)."""
    return 0.033 * np.asarray(lam, float) + 0.106
