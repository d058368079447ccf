"""A small synthetic IFU, analytic end to end, for the cube tests.

Exposures follow the contract of docs/internals.md ("IFU exposures and cubes"): one full-detector
slit with WAVELENGTH, DWAVE, XI, ETA, XI1, ETA1, XI2, ETA2, SLICE and SLICEWID / WSREFRA / WSREFDE.

Geometry per channel: ``nslice`` slices side by side on the detector, ``slice_px`` columns each
(gap of 2 columns), straight traces: row j has wavelength lam0 + dlam * (j + 0.37 * k) in slice k
(a per-slice offset, so planes and pixels never line up), DWAVE = dlam. Along the slice alpha =
s_a * (i - (slice_px - 1) / 2), across it beta = slicewid * (k - (nslice - 1) / 2); the sky
offsets from the pointing centre are R(rot) (alpha, beta) + dither [arcsec, xi east, eta north].

Scene (about SCENE_RA/SCENE_DEC): a Gaussian point source (sigma ``psf``) with a continuum and
Gaussian emission lines, plus an extended Gaussian (sigma ``ext_sigma``) with a flat spectrum.
Every pixel's SCI [MJy/sr] is the exact mean of the scene over its footprint (alpha +- s_a/2,
beta +- slicewid/2) and over its wavelength extent (lam +- dlam/2): the truth is analytic.
"""

from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from scipy.special import erf

from webbspec.io.datamodels import Model, Slit
from webbspec.io.skycoords import radec_to_xieta, xieta_to_radec

SCENE_RA, SCENE_DEC = 83.8221, -5.3911
SR_PER_ARCSEC2 = 2.3504e-11


@dataclass
class Scene:
    ps_xy: tuple = (0.12, -0.07)        # point source offset from (SCENE_RA, SCENE_DEC) [arcsec]
    psf: float = 0.2                    # Gaussian sigma [arcsec]
    ps_cont: float = 2.0e-3             # continuum [MJy] at lam_ref, slope ps_slope per um (relative)
    ps_slope: float = -0.2
    lam_ref: float = 5.3
    lines: tuple = ((5.1003, 1.0e-6, 0.0012), (5.4507, 1.6e-6, 0.0015), (7.7504, 1.2e-6, 0.002))
    # (centre [um], integrated flux [MJy um], sigma [um])
    ext_xy: tuple = (-0.25, 0.2)
    ext_sigma: float = 0.2
    ext_flux: float = 3.0e-3            # [MJy], flat in wavelength

    def ps_flux_density(self, lam):
        """Point-source F_nu [MJy] at ``lam``."""
        lam = np.asarray(lam, float)
        f = self.ps_cont * (1.0 + self.ps_slope * (lam - self.lam_ref))
        for l0, flux, sig in self.lines:
            f = f + flux / (np.sqrt(2 * np.pi) * sig) * np.exp(-0.5 * ((lam - l0) / sig) ** 2)
        return f

    def ps_bin_mean(self, lo, hi):
        """Mean point-source F_nu [MJy] over [lo, hi] (exact: linear continuum + Gaussian lines)."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        mid = 0.5 * (lo + hi)
        f = self.ps_cont * (1.0 + self.ps_slope * (mid - self.lam_ref))
        for l0, flux, sig in self.lines:
            s2 = np.sqrt(2.0) * sig
            f = f + flux * 0.5 * (erf((hi - l0) / s2) - erf((lo - l0) / s2)) / (hi - lo)
        return f

    def total_bin_mean(self, lo, hi):
        return self.ps_bin_mean(lo, hi) + self.ext_flux


@dataclass
class ChannelDesign:
    channel: str = "1"
    nslice: int = 15
    slice_px: int = 26
    ny: int = 260
    lam0: float = 5.0
    dlam: float = 0.0009
    s_a: float = 0.13
    slicewid: float = 0.177


DESIGNS = {"1": ChannelDesign(), "2": ChannelDesign("2", 9, 18, 200, 7.6, 0.0014, 0.18, 0.28)}
# a dither pattern of 4 positions [arcsec]
DITHERS = ((0.0, 0.0), (0.31, 0.27), (-0.27, 0.13), (0.09, -0.33))


def _box_mean(c, half, mu, sig):
    """Mean of a unit Gaussian density N(mu, sig) over [c - half, c + half] (per unit length)."""
    s2 = np.sqrt(2.0) * sig
    return 0.5 * (erf((c + half - mu) / s2) - erf((c - half - mu) / s2)) / (2 * half)


@dataclass
class Exposure:
    designs: tuple = ("1",)
    dither: tuple = (0.0, 0.0)
    rot: float = 8.4                    # deg, (alpha, beta) -> (xi, eta)
    ref: tuple = (SCENE_RA + 1e-4, SCENE_DEC - 5e-5)   # WSREFRA/WSREFDE of this exposure
    scene: Scene = field(default_factory=Scene)
    point_only: bool = False
    err: float = 0.02                   # ERR [MJy/sr]


def ifu_exposure(exp=None, band="SHORT", patt_num=1):
    """One synthetic MIR_MRS exposure (a :class:`Model`) from an :class:`Exposure` description."""
    exp = exp or Exposure()
    sc = exp.scene
    parts, x0 = [], 0
    for ch in exp.designs:
        d = DESIGNS[ch]
        parts.append((d, x0))
        x0 += d.nslice * (d.slice_px + 2)
    ny = max(d.ny for d, _ in parts)
    nx = x0
    arrays = {k: np.full((ny, nx), np.nan) for k in ("SCI", "WAVELENGTH", "DWAVE", "XI", "ETA", "XI1", "ETA1",
                                                       "XI2", "ETA2")}
    slice_no = np.zeros((ny, nx), np.int16)
    rot = np.radians(exp.rot)
    rmat = np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
    for d, xs in parts:
        jj, kk, ii = np.meshgrid(np.arange(d.ny), np.arange(d.nslice), np.arange(d.slice_px), indexing="ij")
        cols = xs + kk * (d.slice_px + 2) + ii
        lam = d.lam0 + d.dlam * (jj + 0.37 * kk)
        alpha = d.s_a * (ii - (d.slice_px - 1) / 2.0)
        beta = d.slicewid * (kk - (d.nslice - 1) / 2.0)

        def sky(a, b):    # scene tangent-plane offsets [arcsec]
            return (rmat[0, 0] * a + rmat[0, 1] * b + exp.dither[0], rmat[1, 0] * a + rmat[1, 1] * b + exp.dither[1])

        def to_ref(xi, eta):
            ra, dec = xieta_to_radec(xi, eta, SCENE_RA, SCENE_DEC)
            return radec_to_xieta(ra, dec, *exp.ref)

        xi, eta = to_ref(*sky(alpha, beta))
        xi1, eta1 = to_ref(*sky(alpha - d.s_a / 2, beta))
        xi2, eta2 = to_ref(*sky(alpha + d.s_a / 2, beta))
        # the scene in the (alpha, beta) frame of this exposure (rotation keeps Gaussians separable)
        inv = rmat.T

        def ab_of(xy):
            v = np.asarray(xy, float) - np.asarray(exp.dither, float)
            return inv @ v

        ps_a, ps_b = ab_of(sc.ps_xy)
        spatial_ps = (_box_mean(alpha, d.s_a / 2, ps_a, sc.psf) * _box_mean(beta, d.slicewid / 2, ps_b, sc.psf))
        lo, hi = lam - d.dlam / 2, lam + d.dlam / 2
        sb = sc.ps_bin_mean(lo, hi) * spatial_ps
        if not exp.point_only:
            ex_a, ex_b = ab_of(sc.ext_xy)
            sb = sb + sc.ext_flux * (_box_mean(alpha, d.s_a / 2, ex_a, sc.ext_sigma)
                                     * _box_mean(beta, d.slicewid / 2, ex_b, sc.ext_sigma))
        sb = sb / SR_PER_ARCSEC2          # MJy/arcsec^2 -> MJy/sr
        for name, val in (("SCI", sb), ("WAVELENGTH", lam), ("DWAVE", np.full(lam.shape, d.dlam)), ("XI", xi),
                          ("ETA", eta), ("XI1", xi1), ("ETA1", eta1), ("XI2", xi2), ("ETA2", eta2)):
            arrays[name][jj, cols] = val
        slice_no[jj, cols] = int(d.channel) * 100 + kk + 1
    primary = fits.Header()
    for key, val in (("TELESCOP", "JWST"), ("INSTRUME", "MIRI"), ("DETECTOR", "MIRIFUSHORT"),
                     ("EXP_TYPE", "MIR_MRS"), ("CHANNEL", "".join(exp.designs)), ("BAND", band),
                     ("FILTER", "N/A"), ("TARG_RA", SCENE_RA + sc.ps_xy[0] / 3600 / np.cos(np.radians(SCENE_DEC))),
                     ("TARG_DEC", SCENE_DEC + sc.ps_xy[1] / 3600), ("PATT_NUM", patt_num), ("EFFEXPTM", 222.0),
                     ("DATE-OBS", "2023-01-01"), ("TIME-OBS", "00:00:00"), ("SRCTYPE", "POINT"),
                     ("PROGRAM", "09999"), ("S_WCS", "COMPLETE"), ("S_PHOTOM", "COMPLETE")):
        primary[key] = val
    header = fits.Header()
    header["BUNIT"] = "MJy/sr"
    header["SRCTYPE"] = "POINT"
    header["SLICEWID"] = DESIGNS[exp.designs[0]].slicewid
    header["WSREFRA"], header["WSREFDE"] = exp.ref
    finite = np.isfinite(arrays["WAVELENGTH"])
    sci = np.where(finite, arrays.pop("SCI"), np.nan).astype(np.float32)
    slit_arrays = {"SCI": sci, "ERR": np.where(finite, exp.err, np.nan).astype(np.float32),
                   "DQ": np.where(finite, 0, 513).astype(np.uint32)}   # DO_NOT_USE | NON_SCIENCE off slices
    slit_arrays.update({k: v.astype(np.float32) for k, v in arrays.items()})
    slit_arrays["SLICE"] = slice_no
    return Model(primary, [Slit(header, slit_arrays)], "single")


def dithered(n=4, **kw):
    """``n`` exposures of the 4-point pattern (keywords: :class:`Exposure` fields)."""
    return [ifu_exposure(Exposure(dither=DITHERS[i], **kw), patt_num=i + 1) for i in range(n)]


# cubepar rows used by the tests: spaxel [arcsec], spectral step [um], wavemin, wavemax, rois, roiw,
# scalerad, power, softrad
CUBEPARS = {("1", "SHORT"): (0.13, 0.0008, 5.02, 5.22, 0.15, 0.0010, 0.10, 2.0, 0.01),
            ("2", "SHORT"): (0.17, 0.0013, 7.63, 7.85, 0.20, 0.0016, 0.12, 2.0, 0.01)}


def write_cubepar(path, pars=None):
    """A MiriIFUCubeParsModel cubepar reference with ``pars`` rows (default :data:`CUBEPARS`)."""
    from stdatamodels.jwst import datamodels as dm

    pars = CUBEPARS if pars is None else pars
    keys = sorted(pars)
    t = np.zeros(len(keys), dtype=[("channel", "S3"), ("band", "S12"), ("spaxelsize", "<f4"),
                                   ("spectralstep", "<f4"), ("wavemin", "<f4"), ("wavemax", "<f4")])
    tm = np.zeros(len(keys), dtype=[("channel", "S3"), ("band", "S12"), ("roispatial", "<f4"),
                                    ("roispectral", "<f4"), ("power", "<f4"), ("softrad", "<f4")])
    te = np.zeros(len(keys), dtype=[("channel", "S3"), ("band", "S12"), ("roispatial", "<f4"),
                                    ("roispectral", "<f4"), ("scalerad", "<f4")])
    for i, k in enumerate(keys):
        sp, st, w0, w1, rs, rw, sr, pw, sf = pars[k]
        t[i] = (k[0], k[1], sp, st, w0, w1)
        tm[i] = (k[0], k[1], rs, rw, pw, sf)
        te[i] = (k[0], k[1], rs, rw, sr)
    wl = np.geomspace(4.8, 28.0, 1500).astype(np.float32)
    rs = np.interp(wl, [5, 8, 13, 20, 28], [0.15, 0.20, 0.25, 0.40, 0.40]).astype(np.float32)
    rw = (wl / 3500.0).astype(np.float32)
    mm = np.zeros(wl.size, dtype=[("wavelength", "<f4"), ("roispatial", "<f4"), ("roispectral", "<f4"),
                                  ("power", "<f4"), ("softrad", "<f4")])
    mm["wavelength"], mm["roispatial"], mm["roispectral"], mm["power"], mm["softrad"] = wl, rs, rw, 2.0, 0.01
    me = np.zeros(wl.size, dtype=[("wavelength", "<f4"), ("roispatial", "<f4"), ("roispectral", "<f4"),
                                  ("scalerad", "<f4")])
    me["wavelength"], me["roispatial"], me["roispectral"], me["scalerad"] = wl, rs, rw, rs * 0.65
    md = np.zeros(wl.size, dtype=[("wavelength", "<f4")])
    md["wavelength"] = wl
    cp = dm.MiriIFUCubeParsModel()
    cp.meta.instrument.name = "MIRI"
    cp.meta.instrument.detector = "N/A"
    cp.meta.reftype = "CUBEPAR"
    cp.meta.author = "webbspec tests"
    cp.meta.pedigree = "DUMMY"
    cp.meta.useafter = "2022-01-01T00:00:00"
    cp.meta.description = "Test MRS cube parameters"
    cp.meta.exposure.type = "MIR_MRS"
    cp.ifucubepars_table = t
    cp.ifucubepars_msm_table = tm
    cp.ifucubepars_emsm_table = te
    cp.ifucubepars_multichannel_msm_wavetable = mm
    cp.ifucubepars_multichannel_emsm_wavetable = me
    cp.ifucubepars_multichannel_driz_wavetable = md
    cp.save(str(path))
    return str(path)


def as_nirspec(model, grating="G395M", filt="F290LP"):
    """The same synthetic exposure labelled as a NIRSpec IFU one (slices 1..n, GRATING/FILTER)."""
    out = model.copy()
    p = out.primary
    for key, val in (("INSTRUME", "NIRSPEC"), ("DETECTOR", "NRS1"), ("EXP_TYPE", "NRS_IFU"), ("GRATING", grating),
                     ("FILTER", filt)):
        p[key] = val
    for key in ("CHANNEL", "BAND"):
        p.remove(key, ignore_missing=True)
    sl = out.slits[0]["SLICE"]
    out.slits[0]["SLICE"] = np.where(sl > 0, sl % 100, 0).astype(np.int16)
    return out


def write_nirspec_cubepar(path, rows):
    """A NirspecIFUCubeParsModel with ``rows``: {(disperser, filter): (spaxel, step, wavemin, wavemax,
    rois, roiw, scalerad, power, softrad)}."""
    from stdatamodels.jwst import datamodels as dm

    keys = sorted(rows)
    t = np.zeros(len(keys), dtype=[("disperser", "S5"), ("filter", "S6"), ("wavemin", "<f4"), ("wavemax", "<f4"),
                                   ("spaxelsize", "<f4"), ("spectralstep", "<f4")])
    tm = np.zeros(len(keys), dtype=[("disperser", "S5"), ("filter", "S6"), ("roispatial", "<f4"),
                                    ("roispectral", "<f4"), ("power", "<f4"), ("softrad", "<f4")])
    te = np.zeros(len(keys), dtype=[("disperser", "S5"), ("filter", "S6"), ("roispatial", "<f4"),
                                    ("roispectral", "<f4"), ("scalerad", "<f4")])
    for i, k in enumerate(keys):
        sp, st, w0, w1, rs, rw, sr, pw, sf = rows[k]
        t[i] = (k[0], k[1], w0, w1, sp, st)
        tm[i] = (k[0], k[1], rs, rw, pw, sf)
        te[i] = (k[0], k[1], rs, rw, sr)
    cp = dm.NirspecIFUCubeParsModel()
    cp.meta.instrument.name = "NIRSPEC"
    cp.meta.reftype, cp.meta.author, cp.meta.pedigree = "CUBEPAR", "webbspec tests", "DUMMY"
    cp.meta.useafter, cp.meta.description = "2022-01-01T00:00:00", "Test NIRSpec IFU cube parameters"
    cp.meta.exposure.type = "NRS_IFU"
    cp.ifucubepars_table, cp.ifucubepars_msm_table, cp.ifucubepars_emsm_table = t, tm, te
    cp.save(str(path))
    return str(path)
