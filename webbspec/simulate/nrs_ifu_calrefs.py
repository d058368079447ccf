"""NIRSpec IFU calibration references in the official CRDS formats, from the simulator's truth.

* ``fflat`` (NirspecFlatModel): FAST_VARIATION row "ANY" = ``fore_fast`` (SCI a 1x1 placeholder: the
  official IFU code uses no fore-optics image).
* ``sflat`` (NirspecFlatModel, per detector): full-frame SCI = flat_truth.spectrograph_image, DQ,
  ERR; FAST_VARIATION "ANY" = ``spectrograph_fast``.
* ``dflat`` (per detector): the program's pixel flat D and flat_truth.detector_fast (fs_calrefs).
  The forward model multiplies the rate by :func:`flat` = their product at the pixel's wavelength.
* ``photom`` (NrsMosPhotomModel, the IFU's: one row matched on filter + grating): PHOTMJ and
  RELRESPONSE(lam) of the forward model (``nrs_ifu.PHOTMJ``, ``nirspec_fs.relresponse``).
* ``area`` (NirspecIfuAreaModel): AREA (slice_id 0-29, pixarea [arcsec^2]): each slice's median
  pixel footprint (slice width x the pixel's along-slice extent) from our WCS.
* ``extract1d`` (Extract1dIFUModel, ASDF with the ``data`` arrays stored inline, or the official
  step fails reading it): aperture radius 0.6", background annulus 0.8-1.0", no background
  subtraction.
* ``apcorr`` (NrsIfuApcorrModel, ASDF, arrays inline): apcorr_table wavelength (nwave), radius and
  apcorr (nradius, nwave): 1 / the fraction of the simulated PSF (two circular Gaussians) inside a
  circle of that radius [arcsec], exact for the forward model's PSF.
* ``cubepar`` (NirspecIFUCubeParsModel): the G395H/F290LP row (0.1" spaxels, 0.0012 um planes) and
  the msm / emsm / drizzle wavelength tables.

* ``msaoper`` (the official JSON): failed-open shutters :data:`FAILED_OPEN` and failed-closed
  :data:`FAILED_CLOSED` (shutters of the optical set's msa reference, whose light lands on NRS1 in
  bands across the IFU slices). The forward model renders no light through them; msa_flagging
  only flags their pixels' DQ (MSA_FAILED_OPEN), as the official step does.

The forward model has no slit losses, so no pathloss reference is written (pathloss finds "N/A"
and skips, as the official step does).
"""

import os

import numpy as np
from astropy.io import fits

from . import flat_truth, mos_calrefs
from . import nirspec_fs as fs
from . import nrs_ifu_optics_refs as design
from .fs_calrefs import WAVE_FAST, _fast_table, _full_frame_subarray, _image_hdus, _plane_wavelengths, _primary, _write
from .fs_calrefs import write_dflat

__all__ = ["write_all", "enclosed_fraction", "fore_fast", "spectrograph_fast", "flat", "CUBE_SPAXEL", "CUBE_STEP",
           "FAILED_OPEN", "FAILED_CLOSED", "write_msaoper"]

EXP_TYPE = design.EXP_TYPE
CUBE_SPAXEL, CUBE_STEP = 0.10, 0.0012       # arcsec, um
_USEAFTER = "2022-01-01T00:00:00"
# (quadrant, row, column) of the msaoper shutters (the optical set's msa reference holds rows 1-4
# of column 1 in each quadrant)
FAILED_OPEN = ((1, 3, 1), (3, 1, 1))
FAILED_CLOSED = ((2, 2, 1),)


def fore_fast(lam):
    """The IFU fore-optics flat (fflat FAST_VARIATION "ANY")."""
    return 1.0 + 0.015 * np.sin(2 * np.pi * (np.asarray(lam, float) - 2.87) / 0.41 + 0.7)


def spectrograph_fast(lam):
    """The spectrograph flat's wavelength part for the IFU (sflat FAST_VARIATION "ANY")."""
    lam = np.asarray(lam, float)
    return 1.0 + 0.01 * np.cos(2 * np.pi * lam / 0.9) + 0.004 * (lam - 4.0)


def flat(x, y, lam, pixel_flat):
    """The whole flat at full-frame pixels (x, y) (integer arrays) and wavelengths ``lam`` [um]:
    D(x, y) * S(x, y) * fore_fast * spectrograph_fast * detector_fast (what flat_field divides by)."""
    return (pixel_flat[y, x] * flat_truth.spectrograph_image(x, y) * fore_fast(lam) * spectrograph_fast(lam)
            * flat_truth.detector_fast(lam))


def write_fflat(path):
    prim = _primary("fflat", "NirspecFlatModel", "simulated NIRSpec IFU fore-optics flat", exp_type=EXP_TYPE,
                    FILTER=design.FILTER, GRATING="ANY")
    return _write([prim, fits.ImageHDU(np.ones((1, 1), np.float32), name="SCI"), _plane_wavelengths([0.0]),
                   _fast_table({"ANY": fore_fast(WAVE_FAST)})], path)


def write_sflat(det_name, path):
    y, x = np.mgrid[0:flat_truth.FULL, 0:flat_truth.FULL]
    prim = _primary("sflat", "NirspecFlatModel", f"simulated NIRSpec IFU spectrograph flat ({det_name})",
                    exp_type=EXP_TYPE, DETECTOR=det_name, FILTER=design.FILTER, GRATING=design.GRATING,
                    **_full_frame_subarray())
    return _write([prim, *_image_hdus(flat_truth.spectrograph_image(x, y)), _plane_wavelengths([0.0]),
                   _fast_table({"ANY": spectrograph_fast(WAVE_FAST)})], path)


def write_photom(path, photmj):
    m = WAVE_FAST.size
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="filter", format="12A", array=[design.FILTER]),
        fits.Column(name="grating", format="15A", array=[design.GRATING]),
        fits.Column(name="photmj", format="E", unit="MJy/(DN/s)", array=np.array([photmj], np.float32)),
        fits.Column(name="uncertainty", format="E", array=np.array([0.01 * photmj], np.float32)),
        fits.Column(name="nelem", format="I", array=np.array([m], np.int16)),
        fits.Column(name="wavelength", format=f"{m}E", unit="um", array=WAVE_FAST[None].astype(np.float32)),
        fits.Column(name="relresponse", format=f"{m}E", array=fs.relresponse(WAVE_FAST)[None].astype(np.float32)),
        fits.Column(name="reluncertainty", format=f"{m}E", array=np.full((1, m), 1e-3, np.float32)),
    ], name="PHOTOM")
    prim = _primary("photom", "NrsMosPhotomModel", "simulated NIRSpec IFU photometric calibration", exp_type=EXP_TYPE)
    return _write([prim, tab], path)


def write_area(path, areas):
    """``areas``: {slice number 1-30: pixel area [arcsec^2]}; written with the official 0-based slice_id."""
    ids = sorted(areas)
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="slice_id", format="I", array=np.array([s - 1 for s in ids], np.int16)),
        fits.Column(name="pixarea", format="E", unit="arcsec**2", array=np.array([areas[s] for s in ids], np.float32)),
    ], name="AREA")
    prim = _primary("area", "NirspecIfuAreaModel", "simulated NIRSpec IFU pixel areas", exp_type=EXP_TYPE,
                    FILTER=design.FILTER, GRATING=design.GRATING)
    return _write([prim, tab], path)


def _asdf_meta(model, reftype, description):
    m = model.meta
    m.reftype, m.description, m.author, m.pedigree, m.useafter = (reftype.upper(), description, "webbspec simulator",
                                                                  "DUMMY", _USEAFTER)
    m.telescope, m.instrument.name = "JWST", "NIRSPEC"
    m.exposure.type = EXP_TYPE
    return model


def write_extract1d(path):
    from stdatamodels.jwst import datamodels as dm

    from .nirspec_optics_refs import save_reproducibly

    wl = np.array([2.5, 3.5, 4.5, 5.5], np.float32)
    e = _asdf_meta(dm.Extract1dIFUModel(), "extract1d", "simulated NIRSpec IFU extraction apertures")
    e.meta.region_type, e.meta.subtract_background, e.meta.method, e.meta.subpixels = "target", False, "exact", 10
    e.data = {"wavelength": wl, "wavelength_units": "micron",
              "radius": np.full(4, 0.6, np.float32), "radius_units": "arcsec",
              "inner_bkg": np.full(4, 0.8, np.float32), "inner_bkg_units": "arcsec",
              "outer_bkg": np.full(4, 1.0, np.float32), "outer_bkg_units": "arcsec",
              "axis_ratio": np.ones(4, np.float32), "axis_pa": np.zeros(4, np.float32), "axis_pa_units": "deg"}
    import asdf

    with asdf.config_context() as cfg:
        cfg.array_inline_threshold = 10 ** 9
        save_reproducibly(e, path)
    return os.path.basename(path)


def enclosed_fraction(radius, lam):
    """Fraction of the simulated PSF inside a circle of ``radius`` [arcsec] at ``lam`` [um]."""
    return sum(w * (1.0 - np.exp(-0.5 * (radius / s) ** 2)) for w, s in zip(fs.PSF_WEIGHTS, fs.psf_sigmas(lam)))


def write_apcorr(path):
    from stdatamodels.jwst import datamodels as dm

    from .nirspec_optics_refs import save_reproducibly

    wave = np.linspace(2.8, 5.2, 25).astype(np.float32)
    radius = np.tile(np.linspace(0.1, 1.5, 15, dtype=np.float32)[:, None], (1, wave.size))
    corr = (1.0 / enclosed_fraction(radius.astype(float), wave[None, :].astype(float))).astype(np.float32)
    a = _asdf_meta(dm.NrsIfuApcorrModel(), "apcorr", "simulated NIRSpec IFU aperture corrections (PSF model)")
    a.meta.instrument.filter, a.meta.instrument.grating = design.FILTER, design.GRATING
    a.apcorr_table = {"grating": design.GRATING, "filter": design.FILTER, "wavelength": wave, "wavelength_units": "micron",
                      "radius": radius, "radius_units": "arcsec", "apcorr": corr, "apcorr_err": np.zeros_like(corr)}
    import asdf

    with asdf.config_context() as cfg:
        cfg.array_inline_threshold = 10 ** 9
        save_reproducibly(a, path)
    return os.path.basename(path)


def write_cubepar(path):
    from stdatamodels.jwst import datamodels as dm

    from .nirspec_optics_refs import save_reproducibly

    cp = _asdf_meta(dm.NirspecIFUCubeParsModel(), "cubepar", "simulated NIRSpec IFU cube_build parameters")
    g, f = design.GRATING, design.FILTER
    t = np.zeros(1, dtype=[("disperser", "S15"), ("filter", "S15"), ("wavemin", "<f4"), ("wavemax", "<f4"),
                           ("spaxelsize", "<f4"), ("spectralstep", "<f4")])
    t[0] = (g, f, 2.87, 5.10, CUBE_SPAXEL, CUBE_STEP)
    tm = np.zeros(1, dtype=[("disperser", "S15"), ("filter", "S15"), ("roispatial", "<f4"), ("roispectral", "<f4"),
                            ("power", "<f4"), ("softrad", "<f4")])
    tm[0] = (g, f, 0.1, 2 * CUBE_STEP, 2.0, 0.01)
    te = np.zeros(1, dtype=[("disperser", "S15"), ("filter", "S15"), ("roispatial", "<f4"), ("roispectral", "<f4"),
                            ("scalerad", "<f4")])
    te[0] = (g, f, 0.1, 2 * CUBE_STEP, 0.1)
    values = {"roispatial": 0.1, "roispectral": 2 * CUBE_STEP, "power": 2.0, "softrad": 0.01, "scalerad": 0.1}
    # the multi-band (output_type multi, calwebb_spec2's) wavelength grids, geometric as the official
    # tables: high resolution at the G395H planes' spacing at 4 um (CUBE_STEP), medium R ~ 1000, prism R ~ 100
    grids = {res: np.exp(np.arange(np.log(0.6), np.log(5.3), dlog)).astype(np.float32)
             for res, dlog in (("prism", 0.01), ("med", 0.001), ("high", CUBE_STEP / 4.0))}

    def table(cols, wl):
        a = np.zeros(wl.size, dtype=[(c, "<f4") for c in cols])
        a["wavelength"] = wl
        for c in cols[1:]:
            a[c] = values[c]
        return a

    cp.ifucubepars_table, cp.ifucubepars_msm_table, cp.ifucubepars_emsm_table = t, tm, te
    for res in ("prism", "med", "high"):
        wl = grids[res]
        setattr(cp, f"ifucubepars_{res}_msm_wavetable", table(("wavelength", "roispatial", "roispectral", "power",
                                                               "softrad"), wl))
        setattr(cp, f"ifucubepars_{res}_emsm_wavetable", table(("wavelength", "roispatial", "roispectral", "scalerad"),
                                                               wl))
        setattr(cp, f"ifucubepars_{res}_driz_wavetable", table(("wavelength",), wl))
    save_reproducibly(cp, path)
    return os.path.basename(path)


def write_msaoper(path, failed_open=FAILED_OPEN, failed_closed=FAILED_CLOSED):
    return mos_calrefs.write_msaoper(path, failed_open, failed_closed, exp_type=EXP_TYPE,
                                     title="simulated NIRSpec MSA operability (IFU)")


def write_all(refdir, areas, photmj, pixel_flats=None):
    """Write the IFU calibration references; returns {reftype: [{"match": {...}, "file": name}]}.
    ``pixel_flats``: {detector: full-frame pixel flat D} (flats written when given)."""
    base = {"INSTRUME": "NIRSPEC", "EXP_TYPE": EXP_TYPE}
    optics = dict(base, FILTER=design.FILTER, GRATING=design.GRATING)
    p = os.path.join
    g, f = design.GRATING.lower(), design.FILTER.lower()
    out = {}
    if pixel_flats:
        fflat = write_fflat(p(refdir, f"nirspec_ifu_fflat_{f}_0001.fits"))
        out["fflat"] = [{"match": dict(base, FILTER=design.FILTER), "file": fflat}]
        out["sflat"], out["dflat"] = [], []
        for det, pixel_flat in sorted(pixel_flats.items()):
            d = det.lower()
            out["sflat"].append({"match": dict(optics, DETECTOR=det), "file": write_sflat(
                det, p(refdir, f"nirspec_ifu_sflat_{g}_{f}_{d}_0001.fits"))})
            out["dflat"].append({"match": {"INSTRUME": "NIRSPEC", "DETECTOR": det}, "file": write_dflat(
                det, np.asarray(pixel_flat), p(refdir, f"nirspec_dflat_{d}_0001.fits"))})
    return out | {
        "photom": [{"match": optics, "file": write_photom(p(refdir, f"nirspec_ifu_photom_{g}_{f}_0001.fits"), photmj)}],
        "area": [{"match": optics, "file": write_area(p(refdir, f"nirspec_ifu_area_{g}_{f}_0001.fits"), areas)}],
        "extract1d": [{"match": base, "file": write_extract1d(p(refdir, "nirspec_ifu_extract1d_0001.asdf"))}],
        "cubepar": [{"match": base, "file": write_cubepar(p(refdir, "nirspec_ifu_cubepar_0001.fits"))}],
        "apcorr": [{"match": optics, "file": write_apcorr(p(refdir, f"nirspec_ifu_apcorr_{g}_{f}_0001.asdf"))}],
        "msaoper": [{"match": base, "file": write_msaoper(p(refdir, "nirspec_ifu_msaoper_0001.json"))}],
    }
