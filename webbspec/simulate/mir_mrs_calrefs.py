"""The simulated MIRI MRS calibration references in the official CRDS formats.

Per (detector, band), full frame (1024, 1032), values from the analytic truth of mir_mrs_design
(pixel wavelengths from truth_det2abl):

* ``flat`` (FlatModel): SCI = :func:`flat_truth` (smooth pattern x 1% pixel-to-pixel), 1 off the slices.
* ``photom`` (MirMrsPhotomModel): SCI = :func:`photom_truth` [(MJy/sr) / (DN/s)], NaN off the slices
  (DQ DO_NOT_USE | NON_SCIENCE there, as official files); PIXSIZ = pixel area [arcsec^2].
* ``fringe`` (FringeModel): SCI = :func:`fringe_truth`, a sinusoid in wavenumber, 1 off the slices.
* ``fringefreq`` (FringeFreqModel, the official residual_fringe reference; one file, every slice):
  RFC_FREQ_SHORT/MEDIUM/LONG, a row per slice (100 c + k) with the residual fringe's period in
  wavenumber (``ffreq`` [cm-1], :data:`RESIDUAL_PERIOD`; a second, placeholder fringe 0 as in the
  official files of channels 1-2), the search half-width ``dffreq``, ``max_nfringes``, ``min_snr``,
  ``pgram_res``; MAX_AMP: the largest fringe amplitude to correct per wavelength.
* ``mrsxartcorr`` (MirMrsXArtCorrModel, the official straylight reference): CH<c><A|B|C> tables,
  one row per detector row: the cross-artifact kernel (:data:`XART`), the same for every row.

Band-independent: ``cubepar`` (MiriIFUCubeParsModel: CUBEPAR, CUBEPAR_MSM, CUBEPAR_EMSM,
MULTICHANNEL_* tables), ``extract1d`` (Extract1dIFUModel, arrays inline: a binary block fails in
the official step), ``apcorr`` (MirMrsApcorrModel per channel/band: 1/enclosed fraction of the
Gaussian PSF within the radius).
The forward model these invert (mir_mrs_render): rate [DN/s] = S + stray(S), S = SB [MJy/sr] *
flat * fringe * residual / photom; ``residual`` (:func:`residual_fringe_truth`, 1 + 1% sinusoid in
wavenumber at the fringefreq period) is what the fringe flat leaves, for residual_fringe to remove.
"""

import os

import numpy as np

from ..instruments.miri import MRS_EXP_TYPE
from . import mir_mrs_design as design
from .mir_mrs_wcsrefs import ref_meta, save_reproducibly

__all__ = ["write_cal_refs", "flat_truth", "photom_truth", "fringe_truth", "residual_fringe_truth", "XART",
           "xart_kernel", "apply_xartifact", "CUBEPARS", "pixel_area", "RESIDUAL_PERIOD", "RESIDUAL_AMP"]

DO_NOT_USE, NON_SCIENCE = 1, 1 << 9
BAND_LETTER = {"SHORT": "a", "MEDIUM": "b", "LONG": "c"}
# cross-artifact kernel per channel (columns): lor_fwhm, lor_scale, gau_fwhm, gau_xoff, gau_scale1, gau_scale2
# (about 10% of a column's signal spread along its row)
XART = {"1": (30.0, 0.0008, 8.0, 25.0, 0.002, 0.001), "2": (36.0, 0.0006, 9.0, 28.0, 0.0015, 0.0008),
        "3": (40.0, 0.0005, 10.0, 30.0, 0.0015, 0.0008), "4": (48.0, 0.0004, 12.0, 34.0, 0.001, 0.0005)}
FRINGE_PERIOD = 12.0        # cm-1 in wavenumber
FRINGE_AMP = 0.08
# The residual fringe the fringe flat leaves (the detector's ~2.9 cm-1 fringe, per channel) [cm-1]. Its
# amplitude is kept at 1%: with residual_fringe skipped (the calwebb_spec2 default) the point source's
# x1d ripple stays under the 1% truth bar (rms 0.7%), yet each bright column's fit finds it.
RESIDUAL_PERIOD = {"1": 2.90, "2": 2.95, "3": 3.00, "4": 3.05}
RESIDUAL_AMP = 0.01
RESIDUAL_MAX_AMP = 0.05     # MAX_AMP table: larger "fringes" are spectral features, not corrected


def _pixels(detector, band):
    yy, xx = np.mgrid[0:design.NY, 0:design.NX].astype(float)
    return (xx, yy) + design.truth_det2abl(xx, yy, design.DETECTOR_CHANNELS[detector], band)


def flat_truth(detector, band):
    xx, yy, sl, *_ = _pixels(detector, band)
    rng = np.random.default_rng(sum(map(ord, detector + band)))     # a property of the detector: fixed
    flat = (1.0 + 0.03 * np.sin(xx / 97.0) * np.cos(yy / 131.0)) * (1.0 + 0.01 * rng.standard_normal(xx.shape))
    return np.where(sl > 0, flat, 1.0)


def photom_truth(detector, band):
    """(MJy/sr) per (DN/s): a smooth response in wavelength per channel."""
    _, _, sl, _, _, lam = _pixels(detector, band)
    out = np.full(sl.shape, np.nan)
    for c in design.DETECTOR_CHANNELS[detector]:
        lo, hi = design.band_range(c, band)
        on = (sl // 100) == int(c)
        t = (lam[on] - lo) / (hi - lo)
        out[on] = 5.0 * int(c) * (1.0 + 0.25 * (t - 0.5) ** 2 - 0.1 * t)
    return out


def fringe_truth(detector, band):
    """1 + A sin(2 pi sigma / P + phi(alpha)): sigma = 1e4 / lam [cm-1]; 1 off the slices."""
    _, _, sl, alpha, _, lam = _pixels(detector, band)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = 1.0 + FRINGE_AMP * np.sin(2 * np.pi * (1e4 / lam) / FRINGE_PERIOD + 0.3 * alpha)
    return np.where(sl > 0, f, 1.0)


def residual_fringe_truth(detector, band):
    """1 + A_r sin(2 pi sigma / P_c + phi_k + 0.5 alpha): the fringe the fringe flat leaves, P_c the
    fringefreq period of the channel, phi_k a phase per slice; 1 off the slices."""
    _, _, sl, alpha, _, lam = _pixels(detector, band)
    period = np.ones(sl.shape)
    for c in design.DETECTOR_CHANNELS[detector]:
        period[(sl // 100) == int(c)] = RESIDUAL_PERIOD[c]
    with np.errstate(invalid="ignore", divide="ignore"):
        f = 1.0 + RESIDUAL_AMP * np.sin(2 * np.pi * (1e4 / lam) / period + 0.7 * (sl % 100) + 0.5 * alpha)
    return np.where(sl > 0, f, 1.0)


def pixel_area(detector, band):
    """Pixel solid angle [arcsec^2] (s_a x slice width), 0 off the slices."""
    _, _, sl, *_ = _pixels(detector, band)
    area = np.zeros(sl.shape)
    for c in design.DETECTOR_CHANNELS[detector]:
        ch = design.CHANNELS[c]
        area[(sl // 100) == int(c)] = ch.s_a * ch.bdel
    return area


def xart_kernel(channel, dx):
    """The cross-artifact kernel (official form: a Lorentzian and two Gaussian pairs) at column
    offsets ``dx``."""
    lw, ls, gw, gx, g1, g2 = XART[str(channel)]
    gamma, sd = lw / 2.0, gw / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    dx = np.asarray(dx, float)
    return (ls * gamma**2 / (gamma**2 + dx**2)
            + g1 * (np.exp(-(dx - gx) ** 2 / (2 * sd**2)) + np.exp(-(dx + gx) ** 2 / (2 * sd**2)))
            + g2 * (np.exp(-(dx - 2 * gx) ** 2 / (8 * sd**2)) + np.exp(-(dx + 2 * gx) ** 2 / (8 * sd**2))))


def apply_xartifact(image, detector):
    """The cross-artifact (additive stray light) of ``image`` [DN/s]: each detector half's columns
    (0..515, 516..1023, as the official step splits them) spread along the rows by its channel's
    kernel (negative values count as 0); reference columns 0-3 and 1028-1031 get none."""
    img = np.clip(np.nan_to_num(np.asarray(image, float)), 0.0, None)
    left, right = (design.DETECTOR_CHANNELS[detector][i] for i in ((0, 1) if detector == "MIRIFUSHORT" else (1, 0)))
    nx = img.shape[1]
    n = 2 * nx
    xs = np.arange(n)
    out = np.zeros_like(img)
    for ch, (i0, i1) in ((left, (0, 516)), (right, (516, 1024))):
        src = np.zeros((img.shape[0], n))
        src[:, i0:i1] = img[:, i0:i1]
        ker = xart_kernel(ch, np.where(xs < n // 2, xs, xs - n))      # circular offsets, no wrap-around
        out += np.fft.irfft(np.fft.rfft(src, axis=1) * np.fft.rfft(ker)[None], n=n, axis=1)[:, :nx]
    out[:, :4] = 0.0
    out[:, nx - 4:] = 0.0
    return out


def _full_frame(model):
    """Full-frame subarray keywords where the model's schema has them (photom's has none)."""
    try:
        sub = model.meta.subarray
        sub.name, sub.xstart, sub.ystart, sub.xsize, sub.ysize = "FULL", 1, 1, design.NX, design.NY
    except AttributeError:
        pass
    return model


def _dq(valid):
    return np.where(valid, 0, DO_NOT_USE | NON_SCIENCE).astype(np.uint32)


def _write_detector_band(refdir, detector, band):
    from stdatamodels.jwst import datamodels as dm

    tag = f"{design.DETECTOR_CHANNELS[detector]}{band}"
    name = f"miri_mrs_{detector.lower()}_{band.lower()}"
    out = {}
    flat = flat_truth(detector, band).astype(np.float32)
    fm = ref_meta(dm.FlatModel(data=flat, err=np.full(flat.shape, 0.01, np.float32),
                               dq=np.zeros(flat.shape, np.uint32)),
                  f"Simulated MRS flat {tag}", "FLAT", detector, band)
    out["flat"] = save_reproducibly(_full_frame(fm), os.path.join(refdir, f"{name}_flat_0001.fits"))

    ph = photom_truth(detector, band).astype(np.float32)
    pm = ref_meta(dm.MirMrsPhotomModel(data=ph, err=np.abs(0.01 * ph), dq=_dq(np.isfinite(ph)),
                                       pixsiz=pixel_area(detector, band).astype(np.float32)),
                  f"Simulated MRS photom {tag}: (MJy/sr) / (DN/s)", "PHOTOM", detector, band)
    pm.meta.photometry.conversion_megajanskys = 1.0
    pm.meta.photometry.conversion_microjanskys = 1.0
    out["photom"] = save_reproducibly(_full_frame(pm), os.path.join(refdir, f"{name}_photom_0001.fits"))

    fr = fringe_truth(detector, band).astype(np.float32)
    frm = ref_meta(dm.FringeModel(data=fr, err=np.zeros(fr.shape, np.float32), dq=np.zeros(fr.shape, np.uint32)),
                   f"Simulated MRS fringe flat {tag}", "FRINGE", detector, band)
    out["fringe"] = save_reproducibly(_full_frame(frm), os.path.join(refdir, f"{name}_fringe_0001.fits"))
    return out


def _write_fringefreq(refdir):
    """The residual_fringe reference: every slice of channels 1-4, the same rows in each band."""
    from stdatamodels.jwst import datamodels as dm

    model = ref_meta(dm.FringeFreqModel(), "Simulated MRS residual fringe frequencies", "FRINGEFREQ")
    slices = [100 * int(c) + k for c in "1234" for k in range(1, design.CHANNELS[c].nslice + 1)]
    dtype = [("slice", "<f8"), ("ffreq", "<f8", (2,)), ("dffreq", "<f8", (2,)), ("min_nfringes", "<i8", (2,)),
             ("max_nfringes", "<i8", (2,)), ("min_snr", "<f8", (2,)), ("pgram_res", "<f8", (2,))]
    t = np.zeros(len(slices), dtype=dtype)
    t["slice"] = slices
    t["ffreq"] = [(RESIDUAL_PERIOD[str(s // 100)], 0.0) for s in slices]
    t["dffreq"] = (0.3, 0.0)
    t["min_nfringes"] = (1, 0)
    t["max_nfringes"] = (3, 0)
    t["min_snr"] = (10.0, 10.0)
    t["pgram_res"] = (0.001, 0.001)
    model.rfc_freq_short_table, model.rfc_freq_medium_table, model.rfc_freq_long_table = t, t.copy(), t.copy()
    amp = np.zeros(6, dtype=[("wavelength", "<f8"), ("amplitude", "<f8")])
    amp["wavelength"] = np.linspace(4.5, 29.0, 6)
    amp["amplitude"] = RESIDUAL_MAX_AMP
    model.max_amp_table = amp
    return save_reproducibly(model, os.path.join(refdir, "miri_mrs_fringefreq_0001.fits"))


def _write_xartcorr(refdir):
    from stdatamodels.jwst import datamodels as dm

    model = ref_meta(dm.MirMrsXArtCorrModel(), "Simulated MRS cross-artifact (straylight) kernels", "MRSXARTCORR")
    rows = np.arange(design.NY, dtype=np.int16)
    dtype = [("YROW", "<i2"), ("LOR_FWHM", "<f4"), ("LOR_SCALE", "<f4"), ("GAU_FWHM", "<f4"),
             ("GAU_XOFF", "<f4"), ("GAU_SCALE1", "<f4"), ("GAU_SCALE2", "<f4")]
    for c in "1234":
        for band, letter in BAND_LETTER.items():
            t = np.zeros(design.NY, dtype=dtype)
            t["YROW"] = rows
            for name, v in zip(("LOR_FWHM", "LOR_SCALE", "GAU_FWHM", "GAU_XOFF", "GAU_SCALE1", "GAU_SCALE2"), XART[c]):
                t[name] = v
            setattr(model, f"ch{c}{letter}_table", t)
    return save_reproducibly(model, os.path.join(refdir, "miri_mrs_mrsxartcorr_0001.fits"))


# spaxel [arcsec], spectral step [um], wavemin, wavemax, roi spatial, roi spectral, scalerad, msm power, softrad
def _cubepar_row(c, band):
    lo, hi = design.band_range(c, band)
    d = design.dispersion(c, band)
    spax = {"1": 0.13, "2": 0.17, "3": 0.20, "4": 0.35}[c]
    return (spax, 1.0 * d, lo + 0.01 * (hi - lo), hi - 0.01 * (hi - lo), spax * 1.15, 1.2 * d, spax * 0.75, 2.0, 0.01)


CUBEPARS = {(c, b): _cubepar_row(c, b) for c in "1234" for b in design.BANDS}


def _write_cubepar(refdir):
    from stdatamodels.jwst import datamodels as dm

    keys = sorted(CUBEPARS, key=lambda k: (k[0], design.BANDS.index(k[1])))
    t = np.zeros(len(keys), dtype=[("channel", "S3"), ("band", "S12"), ("spaxelsize", "<f4"), ("spectralstep", "<f4"),
                                   ("wavemin", "<f4"), ("wavemax", "<f4")])
    tm = np.zeros(len(keys), dtype=[("channel", "S3"), ("band", "S12"), ("roispatial", "<f4"), ("roispectral", "<f4"),
                                    ("power", "<f4"), ("softrad", "<f4")])
    te = np.zeros(len(keys), dtype=[("channel", "S3"), ("band", "S12"), ("roispatial", "<f4"), ("roispectral", "<f4"),
                                    ("scalerad", "<f4")])
    for i, k in enumerate(keys):
        sp, st, w0, w1, rs, rw, sr, pw, sf = CUBEPARS[k]
        t[i] = (k[0], k[1], sp, st, w0, w1)
        tm[i] = (k[0], k[1], rs, rw, pw, sf)
        te[i] = (k[0], k[1], rs, rw, sr)
    # multichannel tables (output_type multi, calwebb_spec2's: a geometric wavelength grid, planes
    # lambda / 3500 apart as the official tables' ~R 3500 sampling)
    wl = np.exp(np.arange(np.log(4.8), np.log(28.0), 1.0 / 3500.0)).astype(np.float32)
    rs = np.interp(wl, [5, 8, 13, 20, 28], [0.15, 0.20, 0.23, 0.40, 0.40]).astype(np.float32)
    rw = (wl / 3500.0).astype(np.float32)
    mm = np.zeros(len(wl), dtype=[("wavelength", "<f4"), ("roispatial", "<f4"), ("roispectral", "<f4"),
                                  ("power", "<f4"), ("softrad", "<f4")])
    mm["wavelength"], mm["roispatial"], mm["roispectral"], mm["power"], mm["softrad"] = wl, rs, rw, 2.0, 0.01
    me = np.zeros(len(wl), dtype=[("wavelength", "<f4"), ("roispatial", "<f4"), ("roispectral", "<f4"),
                                  ("scalerad", "<f4")])
    me["wavelength"], me["roispatial"], me["roispectral"], me["scalerad"] = wl, rs, rw, rs * 0.65
    md = np.zeros(len(wl), dtype=[("wavelength", "<f4")])
    md["wavelength"] = wl
    cp = ref_meta(dm.MiriIFUCubeParsModel(), "Simulated MRS cube_build default parameters", "CUBEPAR")
    cp.ifucubepars_table, cp.ifucubepars_msm_table, cp.ifucubepars_emsm_table = t, tm, te
    cp.ifucubepars_multichannel_msm_wavetable = mm
    cp.ifucubepars_multichannel_emsm_wavetable = me
    cp.ifucubepars_multichannel_driz_wavetable = md
    return save_reproducibly(cp, os.path.join(refdir, "miri_mrs_cubepar_0001.fits"))


def _write_extract1d(refdir):
    from stdatamodels.jwst import datamodels as dm

    wl = np.array([4.5, 6.0, 8.0, 10.0, 15.0, 20.0, 29.0], np.float32)
    fwhm = np.maximum(design.psf_fwhm(wl), 0.31)
    e = ref_meta(dm.Extract1dIFUModel(), "Simulated MRS IFU extract1d parameters", "EXTRACT1D")
    e.meta.region_type = "target"
    e.meta.subtract_background = False
    e.meta.method = "exact"
    e.meta.subpixels = 10
    e.data = {"wavelength": wl, "wavelength_units": "micron",
              "radius": (2.0 * fwhm).astype(np.float32), "radius_units": "arcsec",
              "inner_bkg": (2.5 * fwhm).astype(np.float32), "inner_bkg_units": "arcsec",
              "outer_bkg": (3.0 * fwhm).astype(np.float32), "outer_bkg_units": "arcsec",
              "axis_ratio": np.ones_like(wl), "axis_pa": np.zeros_like(wl), "axis_pa_units": "deg"}
    # arrays inline in the YAML tree: a binary block fails in the official extract_1d
    # ("Attempt to load block from closed file")
    return save_reproducibly(e, os.path.join(refdir, "miri_mrs_extract1d_0001.asdf"), all_array_storage="inline")


def _write_apcorr(refdir, channel, band):
    """1/EE(r) of the Gaussian PSF: EE = 1 - exp(-r^2 / (2 sigma^2)), radii 0.5..3 FWHM [arcsec].
    ``channel``: one channel, or a detector's two ("12": the wavelengths of both, for the
    multi-band cube of a Stage 2 exposure)."""
    from stdatamodels.jwst import datamodels as dm

    wl = np.concatenate([np.linspace(*design.band_range(c, band), 9) for c in channel])
    fwhm = design.psf_fwhm(wl)
    k = np.linspace(0.5, 3.0, 11)[:, None]
    radius = k * fwhm[None]
    ee = 1.0 - np.exp(-(radius**2) / (2 * (fwhm[None] / 2.3548) ** 2))
    model = ref_meta(dm.MirMrsApcorrModel(), f"Simulated MRS aperture corrections {channel}{band}", "APCORR")
    model.meta.instrument.channel, model.meta.instrument.band = channel, band
    model.apcorr_table = {"channel": channel, "band": band, "wavelength": wl.astype(np.float32),
                          "wavelength_units": "micron", "radius": radius.astype(np.float32), "radius_units": "arcsec",
                          "apcorr": (1.0 / ee).astype(np.float32), "apcorr_err": np.zeros(radius.shape, np.float32)}
    return save_reproducibly(model, os.path.join(refdir, f"miri_mrs_{channel}{band.lower()}_apcorr_0001.asdf"))


def write_cal_refs(refdir, detectors, bands):
    """Write the calibration references into ``refdir``; returns the selections {reftype: [...]}."""
    os.makedirs(refdir, exist_ok=True)
    mrs = {"INSTRUME": "MIRI", "EXP_TYPE": MRS_EXP_TYPE}
    sel = {rt: [] for rt in ("flat", "photom", "fringe", "apcorr")}
    for det in detectors:
        channels = design.DETECTOR_CHANNELS[det]
        for band in bands:
            match = dict(mrs, DETECTOR=det, CHANNEL=channels, BAND=band)
            for rt, name in _write_detector_band(refdir, det, band).items():
                sel[rt].append({"match": match, "file": name})
            for c in channels:
                # the official apcorr is one file per channel/band; the x1d of a band cube selects it
                sel["apcorr"].append({"match": dict(mrs, CHANNEL=c, BAND=band), "file": _write_apcorr(refdir, c, band)})
            # the exposure's channels (CHANNEL "12"): the x1d of its Stage 2 (multi) cube
            sel["apcorr"].append({"match": dict(mrs, CHANNEL=channels, BAND=band),
                                  "file": _write_apcorr(refdir, channels, band)})
    sel["mrsxartcorr"] = [{"match": mrs, "file": _write_xartcorr(refdir)}]
    sel["fringefreq"] = [{"match": mrs, "file": _write_fringefreq(refdir)}]
    sel["cubepar"] = [{"match": mrs, "file": _write_cubepar(refdir)}]
    sel["extract1d"] = [{"match": mrs, "file": _write_extract1d(refdir)}]
    return sel
