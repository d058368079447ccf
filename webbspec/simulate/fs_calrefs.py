"""NIRSpec FS calibration references in the official CRDS formats, from the simulator's truth.

What each file tabulates (``nirspec_fs`` and ``flat_truth`` hold the analytic calibration):

* ``fflat`` (NirspecFlatModel): FAST_VARIATION, one row per fixed slit = flat_truth.fore_fast;
  a 1x1 SCI placeholder (the official FS code uses no fore-optics image).
* ``sflat`` (NirspecFlatModel, per detector): full-frame SCI = flat_truth.spectrograph_image,
  DQ, ERR; FAST_VARIATION per slit = flat_truth.spectrograph_fast.
* ``dflat`` (NirspecFlatModel, per detector): SCI (1, 2048, 2048) = the program's pixel flat D
  (of the detector's simulated subarray, placed at its SUBSTRT; 1 elsewhere),
  WAVELENGTH (one row), DQ, ERR; FAST_VARIATION "ANY" = flat_truth.detector_fast.
* ``pathloss`` (PathlossModel): per slit PS (nwave, 2, nx) = point_throughput(width, lam,
  SRCXPOS*width) on SRCXPOS -0.5..0.5 (no dependence on SRCYPOS: 2 rows), UNI = uniform_throughput;
  WCS keywords in metres.
* ``photom`` (NrsFsPhotomModel): PHOTMJ, RELRESPONSE per (filter, grating, slit).
* ``area`` (NirspecSlitAreaModel): pixel area [arcsec^2] per slit.
* ``apcorr`` (NrsFsApcorrModel): 1/enclosed_fraction(width, lam, size) at 2 pixel phases.
* ``extract1d`` (JSON): one target aperture per slit.

Every file carries the official reference keywords (REFTYPE, DATAMODL, INSTRUME, EXP_TYPE,
P_EXP_TY, selectors, USEAFTER, PEDIGREE, AUTHOR, DESCRIP) and opens as its stdatamodels class.
"""

import json
import os

import numpy as np
from astropy.io import fits

from ..instruments.nirspec.fs import EXP_TYPE as NIRSPEC_FIXED_SLIT
from . import flat_truth
from . import nirspec_fs as fs

__all__ = ["write_all", "FS_SLITS", "WAVE_FAST", "PATHLOSS_XPOS"]

FS_SLITS = ("S200A1", "S200A2", "S400A1", "S1600A1", "S200B1")
_WIDTH = {"S200A1": 0.2, "S200A2": 0.2, "S400A1": 0.4, "S1600A1": 1.6, "S200B1": 0.2}   # arcsec
_EXTRACT_WIDTH = {"S200A1": 7, "S200A2": 25, "S400A1": 29, "S1600A1": 11, "S200B1": 7}   # pixels
_USEAFTER = "2022-01-01T00:00:00"
# Fast-variation / photom tables: 0.001 um steps (linear interpolation error < 1e-6).
WAVE_FAST = np.linspace(2.80, 5.20, 2401)
# Pathloss: 0.02 um planes (uniform, the official WCS is linear) and 0.0125 steps in SRCXPOS
# (interpolation error < 2e-4 between nodes for the narrowest slit).
_PL_WAVE = np.linspace(2.80, 5.20, 121)
PATHLOSS_XPOS = np.linspace(-0.5, 0.5, 81)
# Aperture correction grid (bilinear error < 3e-4 over 5..41 pixels, < 1e-4 from 7).
_AP_WAVE = np.linspace(2.80, 5.20, 49)
_AP_SIZE = np.arange(1.0, 41.01, 0.5)


def _primary(reftype, datamodel, descrip, exp_type=NIRSPEC_FIXED_SLIT, **selectors):
    h = fits.Header()
    for key, val in (("DATAMODL", datamodel), ("TELESCOP", "JWST"), ("REFTYPE", reftype.upper()),
                     ("PEDIGREE", "SIMULATION"), ("DESCRIP", descrip), ("AUTHOR", "webbspec simulator"),
                     ("USEAFTER", _USEAFTER), ("INSTRUME", "NIRSPEC"), ("EXP_TYPE", exp_type),
                     ("P_EXP_TY", exp_type + "|")):
        h[key] = val
    for key, val in selectors.items():
        h[key] = val
    return fits.PrimaryHDU(header=h)


def _write(hdus, path):
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return os.path.basename(path)


def _fast_table(rows):
    """FAST_VARIATION: rows {slit_name: data on WAVE_FAST}; error = REL_ERR * data."""
    names = list(rows)
    data = np.array([rows[n] for n in names], np.float32)
    n = WAVE_FAST.size
    return fits.BinTableHDU.from_columns([
        fits.Column(name="slit_name", format="15A", array=names),
        fits.Column(name="nelem", format="J", array=np.full(len(names), n, np.int32)),
        fits.Column(name="wavelength", format=f"{n}E", unit="um",
                    array=np.tile(WAVE_FAST.astype(np.float32), (len(names), 1))),
        fits.Column(name="data", format=f"{n}E", array=data),
        fits.Column(name="error", format=f"{n}E", array=(flat_truth.REL_ERR * data).astype(np.float32)),
    ], name="FAST_VARIATION")


def _plane_wavelengths(values):
    return fits.BinTableHDU.from_columns(
        [fits.Column(name="wavelength", format="E", unit="um", array=np.asarray(values, np.float32))],
        name="WAVELENGTH")


def _full_frame_subarray():
    return {"SUBARRAY": "FULL", "SUBSTRT1": 1, "SUBSTRT2": 1, "SUBSIZE1": flat_truth.FULL,
            "SUBSIZE2": flat_truth.FULL}


def _image_hdus(sci):
    """SCI (as given), DQ (2-D, 0) and ERR (2-D, REL_ERR * the first plane) of a full-frame flat."""
    plane = sci if sci.ndim == 2 else sci[0]
    return [fits.ImageHDU(sci.astype(np.float32), name="SCI"),
            fits.ImageHDU(np.zeros(plane.shape, np.uint32), name="DQ"),
            fits.ImageHDU((flat_truth.REL_ERR * plane).astype(np.float32), name="ERR")]


def write_fflat(path):
    prim = _primary("fflat", "NirspecFlatModel", "simulated NIRSpec FS fore-optics flat",
                    FILTER=fs.FILTER, GRATING="ANY")
    fast = _fast_table({n: flat_truth.fore_fast(n, WAVE_FAST) for n in FS_SLITS})
    return _write([prim, fits.ImageHDU(np.ones((1, 1), np.float32), name="SCI"), _plane_wavelengths([0.0]),
                   fast], path)


def write_sflat(det_name, path, fast_rows=None, exp_type=NIRSPEC_FIXED_SLIT, mode="FS"):
    """Full-frame SCI = flat_truth.spectrograph_image; FAST_VARIATION ``fast_rows`` ({name: data
    on WAVE_FAST}; default: the fixed slits' rows)."""
    y, x = np.mgrid[0:flat_truth.FULL, 0:flat_truth.FULL]
    prim = _primary("sflat", "NirspecFlatModel", f"simulated NIRSpec {mode} spectrograph flat ({det_name})",
                    exp_type=exp_type, DETECTOR=det_name, FILTER=fs.FILTER, GRATING=fs.GRATING,
                    **_full_frame_subarray())
    if fast_rows is None:
        fast_rows = {n: flat_truth.spectrograph_fast(n, WAVE_FAST) for n in FS_SLITS}
    fast = _fast_table(fast_rows)
    return _write([prim, *_image_hdus(flat_truth.spectrograph_image(x, y)), _plane_wavelengths([0.0]), fast],
                  path)


def write_dflat(det_name, pixel_flat, path, origin=(0, 0)):
    """``pixel_flat``: the detector flat D of the simulated region whose first pixel is the
    0-based full-frame ``origin`` (y, x) (1.0 elsewhere). One SCI plane: D is achromatic, and the
    official code takes a single plane as wavelength-independent (no interpolation, no range check), so a second plane would only
    add 16 MB to every simulated program."""
    full = np.ones((flat_truth.FULL, flat_truth.FULL), np.float32)
    ny, nx = pixel_flat.shape
    full[origin[0]:origin[0] + ny, origin[1]:origin[1] + nx] = pixel_flat
    prim = _primary("dflat", "NirspecFlatModel", f"simulated NIRSpec detector flat ({det_name})",
                    exp_type="ANY", DETECTOR=det_name, **_full_frame_subarray())
    fast = _fast_table({"ANY": flat_truth.detector_fast(WAVE_FAST)})
    return _write([prim, *_image_hdus(full[None]), _plane_wavelengths([4.0]), fast], path)


def write_pathloss(path):
    hdus = [_primary("pathloss", "PathlossModel", "simulated NIRSpec FS pathloss")]
    lam = _PL_WAVE
    dlam = (lam[-1] - lam[0]) / (lam.size - 1)
    dx = (PATHLOSS_XPOS[-1] - PATHLOSS_XPOS[0]) / (PATHLOSS_XPOS.size - 1)
    for k, name in enumerate(FS_SLITS, start=1):
        w = _WIDTH[name]
        ps = fs.point_throughput(w, lam[:, None], PATHLOSS_XPOS[None, :] * w)        # (nwave, nx)
        cube = np.repeat(ps[:, None, :], 2, axis=1).astype(np.float32)             # y: -0.5, 0.5
        un = fs.uniform_throughput(name, lam).astype(np.float32)
        hdus += pathloss_aperture(k, name, 1, cube, (float(PATHLOSS_XPOS[0]), float(dx)), (-0.5, 1.0),
                                  un, (float(lam[0]), float(dlam)))
    return _write(hdus, path)


def pathloss_aperture(k, name, shutters, ps, x_axis, y_axis, uni, lam_axis):
    """The PS, PSVAR, UNI, UNIVAR extensions (EXTVER k) of one pathloss aperture: ``ps`` (nwave,
    ny, nx) on (start, step) axes x, y and wavelength [um] (written in metres), ``uni`` (nwave,)."""
    ps_hdu = fits.ImageHDU(ps, name="PS", ver=k)
    for key, val in (("APERTURE", name), ("SHUTTERS", shutters),
                     ("CRPIX1", 1.0), ("CRVAL1", x_axis[0]), ("CDELT1", x_axis[1]),
                     ("CRPIX2", 1.0), ("CRVAL2", y_axis[0]), ("CDELT2", y_axis[1]),
                     ("CRPIX3", 1.0), ("CRVAL3", lam_axis[0] * 1e-6), ("CDELT3", lam_axis[1] * 1e-6)):
        ps_hdu.header[key] = val
    un_hdu = fits.ImageHDU(uni, name="UNI", ver=k)
    for key, val in (("CRPIX1", 1.0), ("CRVAL1", lam_axis[0] * 1e-6), ("CDELT1", lam_axis[1] * 1e-6)):
        un_hdu.header[key] = val
    return [ps_hdu, fits.ImageHDU(np.zeros_like(ps), name="PSVAR", ver=k), un_hdu,
            fits.ImageHDU(np.zeros_like(uni), name="UNIVAR", ver=k)]


def write_photom(path):
    n, m = len(FS_SLITS), WAVE_FAST.size
    rel = fs.relresponse(WAVE_FAST).astype(np.float32)
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="filter", format="12A", array=[fs.FILTER] * n),
        fits.Column(name="grating", format="15A", array=[fs.GRATING] * n),
        fits.Column(name="slit", format="15A", array=list(FS_SLITS)),
        fits.Column(name="photmj", format="E", unit="MJy/(DN/s)", array=np.full(n, fs.PHOTMJ, np.float32)),
        fits.Column(name="uncertainty", format="E", array=np.full(n, 0.01 * fs.PHOTMJ, np.float32)),
        fits.Column(name="nelem", format="I", array=np.full(n, m, np.int16)),
        fits.Column(name="wavelength", format=f"{m}E", unit="um",
                    array=np.tile(WAVE_FAST.astype(np.float32), (n, 1))),
        fits.Column(name="relresponse", format=f"{m}E", array=np.tile(rel, (n, 1))),
        fits.Column(name="reluncertainty", format=f"{m}E", array=np.full((n, m), 1e-3, np.float32)),
    ], name="PHOTOM")
    prim = _primary("photom", "NrsFsPhotomModel", "simulated NIRSpec FS photometric calibration",
                    PIXAR_SR=fs.PIXAR_SR, PIXAR_A2=fs.PIXAR_A2)
    return _write([prim, tab], path)


def write_area(path):
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="slit_id", format="15A", array=list(FS_SLITS)),
        fits.Column(name="pixarea", format="E", unit="arcsec**2",
                    array=np.full(len(FS_SLITS), fs.PIXAR_A2, np.float32)),
    ], name="AREA")
    prim = _primary("area", "NirspecSlitAreaModel", "simulated NIRSpec FS pixel areas",
                    FILTER=fs.FILTER, GRATING=fs.GRATING)
    return _write([prim, tab], path)


def write_apcorr(path, pscales=None):
    """SIZE (nsize, nwave) and APCORR (nsize, nwave, npixphase) in numpy order (TDIM reversed);
    ``pscales``: {slit: along-slit arcsec per pixel} (the aperture is counted in pixels)."""
    pscales = pscales or {}
    nw, ns, phases = _AP_WAVE.size, _AP_SIZE.size, np.array([0.0, 0.5], np.float32)
    n = len(FS_SLITS)
    size = np.tile(_AP_SIZE[:, None], (1, nw)).astype(np.float32)
    corr = np.stack([1.0 / fs.enclosed_fraction(_WIDTH[s], _AP_WAVE[None, :], _AP_SIZE[:, None],
                                                 pscales.get(s, fs.PSCALE)) for s in FS_SLITS])
    corr = np.repeat(corr[..., None], phases.size, axis=-1).astype(np.float32)    # (n, nsize, nwave, nphase)
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="filter", format="12A", array=[fs.FILTER] * n),
        fits.Column(name="grating", format="15A", array=[fs.GRATING] * n),
        fits.Column(name="slit", format="15A", array=list(FS_SLITS)),
        fits.Column(name="wavelength", format=f"{nw}E", unit="um", array=np.tile(_AP_WAVE.astype(np.float32), (n, 1))),
        fits.Column(name="nelem_wl", format="I", array=np.full(n, nw, np.int16)),
        fits.Column(name="size", format=f"{ns * nw}E", dim=f"({nw},{ns})", unit="pixels",
                    array=np.repeat(size[None], n, axis=0)),
        fits.Column(name="nelem_size", format="I", array=np.full(n, ns, np.int16)),
        fits.Column(name="pixphase", format=f"{phases.size}E", array=np.tile(phases, (n, 1))),
        fits.Column(name="apcorr", format=f"{corr[0].size}E", dim=f"({phases.size},{nw},{ns})", array=corr),
        fits.Column(name="apcorr_err", format=f"{corr[0].size}E", dim=f"({phases.size},{nw},{ns})",
                    array=np.zeros_like(corr)),
    ], name="APCORR")
    tab.header["SIZEUNIT"] = "pixels"
    return _write([_primary("apcorr", "NrsFsApcorrModel", "simulated NIRSpec FS aperture corrections"), tab],
                  path)


def write_extract1d(path):
    aps = [{"id": name, "region_type": "target", "dispaxis": 1, "bkg_order": 0,
            "extract_width": _EXTRACT_WIDTH[name], "use_source_posn": name == fs.PRIMARY}
           for name in FS_SLITS]
    tree = {"reftype": "EXTRACT1D", "instrument": "NIRSPEC", "telescope": "JWST", "exp_type": NIRSPEC_FIXED_SLIT,
            "pedigree": "SIMULATION", "author": "webbspec simulator", "useafter": _USEAFTER,
            "description": "simulated NIRSpec FS extraction apertures", "apertures": aps}
    with open(path, "w") as fh:
        json.dump(tree, fh, indent=1)
        fh.write("\n")
    return os.path.basename(path)


def write_all(refdir, detectors, pixel_flats):
    """Write every FS calibration reference; returns {reftype: [{"match": {...}, "file": name}]}
    with the header selectors of each file (DETECTOR per detector for sflat / dflat)."""
    grat, filt = fs.GRATING.lower(), fs.FILTER.lower()
    base = {"INSTRUME": "NIRSPEC", "EXP_TYPE": NIRSPEC_FIXED_SLIT}
    optics = dict(base, FILTER=fs.FILTER, GRATING=fs.GRATING)
    out = {rt: [] for rt in ("fflat", "sflat", "dflat")}
    for det in detectors:
        d = det.name.lower()
        out["sflat"].append({"match": dict(optics, DETECTOR=det.name), "file": write_sflat(
            det.name, os.path.join(refdir, f"nirspec_fs_sflat_{grat}_{filt}_{d}_0001.fits"))})
        out["dflat"].append({"match": {"INSTRUME": "NIRSPEC", "DETECTOR": det.name}, "file": write_dflat(
            det.name, np.asarray(pixel_flats[det.name]), os.path.join(refdir, f"nirspec_dflat_{d}_0001.fits"),
            (getattr(det, "y0", 0), getattr(det, "x0", 0)))})
    p = os.path.join
    scales = {g.name: float(np.median(g.pscale[g.inside])) for g in getattr(detectors[0], "slits", ())}
    out["fflat"].append({"match": dict(base, FILTER=fs.FILTER),
                         "file": write_fflat(p(refdir, f"nirspec_fs_fflat_{filt}_0001.fits"))})
    for rt, match, name, writer in (
            ("pathloss", base, "nirspec_fs_pathloss_0001.fits", write_pathloss),
            ("photom", base, "nirspec_fs_photom_0001.fits", write_photom),
            ("area", optics, f"nirspec_fs_area_{grat}_{filt}_0001.fits", write_area),
            ("apcorr", base, "nirspec_fs_apcorr_0001.fits", lambda path: write_apcorr(path, scales)),
            ("extract1d", base, "nirspec_fs_extract1d_0001.json", write_extract1d)):
        out[rt] = [{"match": dict(match), "file": writer(p(refdir, name))}]
    return out
