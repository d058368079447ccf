"""NIRSpec MOS calibration references in the official CRDS formats, from the simulator's truth.

What each file tabulates (``mos_scene`` holds the functions; official-refs.md, MOS section, the
traps):

* ``msaoper`` (JSON): the failed-open shutters (state "open": msa_flagging flags them) and a few
  failed-closed ones; Q = quadrant, x = row, y = column.
* ``fflat`` (NirspecQuadFlatModel): per quadrant SCI/ERR/DQ (2, 171, 365) = fore_image (two
  planes at 2.5 and 5.5 um with the same values: with one plane the official code would take
  the flat as 1 outside that single wavelength) and FAST_VARIATION "ANY" = fore_fast.
* ``sflat`` (NirspecFlatModel, per detector): the FS layout (full-frame spectrograph image) with
  one FAST_VARIATION row "ANY" = spectrograph_fast (the official code reads the first row for MOS).
* ``wavecorr`` (WaveCorrModel): aperture "MOS" (the name the official step uses for every
  slitlet): the pixel offset -(x(xpos, lam) - x(0, lam)) of a point source at xpos, averaged
  over shutters spread across the MSA. The optics make it vary over the MSA (at xpos 0.3 and
  5 um: 0.59 to 0.85 pixel between corners); one table per aperture is what the official format
  holds, so a shutter's own offset departs from it (by at most 0.1 pixel for the simulated point
  sources, |xpos| <= 0.25).
* ``pathloss`` (PathlossModel): apertures MOS1x1 (shutters 1) and MOS1x3 (shutters 3): PS on
  x -0.5..0.5 (open widths) by y -0.5..0.5 / -1.5..1.5 and UNI = uniform_throughput; wavelengths
  in metres. The y axis is what the pipelines index it with: the source's shutter (k = -1, 0, 1
  from the middle one: the official step adds 1 per closed neighbour) plus SRCYPOS, its offset
  from that shutter's centre in open heights (the MSA file's estimated_source_in_shutter_y - 0.5).
  So PS at y = k + v is the light of a source k + v / R pitches from the middle shutter's centre
  (R = pitch / open height). Tabulated in plain pitches, the official step (and ours) read it at R
  = 1.152 times the source's offset: +0.8-2.8% flux for the sources 0.1-0.26 off centre.
* ``barshadow`` (BarshadowModel): data1x1 / data1x3 (1001 y from -1 to 1 pitch, 101 wavelengths
  in metres) = bar_shadow of one and three open shutters.
* ``photom`` (NrsMosPhotomModel): PHOTMJ, RELRESPONSE per (filter, grating).
* ``area`` (NirspecMosAreaModel): pixarea [arcsec^2] of every shutter of Q1-Q4 (by quadrant).
* ``extract1d`` (JSON): one aperture "ANY"; ``apcorr`` (NrsMosApcorrModel): 1 / the fraction of a
  centred point source's transmitted light within +-size/2 pixels along a 1x3 slitlet.
"""

import json
import os

import numpy as np
from astropy.io import fits

from ..instruments.nirspec.mos import EXP_TYPE as MSA_SPEC
from . import flat_truth, fs_calrefs
from . import mos_scene as scene
from . import nirspec_fs as fs
from .fs_calrefs import WAVE_FAST, _fast_table, _plane_wavelengths, _primary, _write, pathloss_aperture
from .mos_optics_refs import N_COLUMNS, N_ROWS, OPEN

__all__ = ["write_all", "write_msaoper", "PATHLOSS_X", "PATHLOSS_Y", "BAR_ROWS", "BAR_WAVE"]

_USEAFTER = "2022-01-01T00:00:00"
PATHLOSS_X = np.linspace(-0.5, 0.5, 41)                      # open widths
PATHLOSS_Y = {1: np.linspace(-0.5, 0.5, 41), 3: np.linspace(-1.5, 1.5, 121)}   # pitches
_PL_WAVE = np.linspace(2.80, 5.20, 121)                       # um (0.02 um planes)
BAR_ROWS = -1.0 + 0.002 * np.arange(1001)                     # pitches (official layout)
BAR_WAVE = np.linspace(2.80, 5.20, 101)                       # um
_AP_WAVE = np.linspace(2.80, 5.20, 49)
_AP_SIZE = np.arange(1.0, 41.01, 0.5)                         # pixels along the slit
_FLAT_PLANES = (2.5, 5.5)                                     # um
_EXTRACT_WIDTH = 7                                            # pixels
# shutters over the MSA whose mean point-source offset the MOS wavecorr table holds
_WAVECORR_SHUTTERS = ((1, 40, 20), (1, 330, 150), (2, 40, 150), (2, 330, 20), (3, 40, 150), (3, 330, 20),
                      (4, 40, 20), (4, 330, 150), (3, 1, 86))


def _mos_primary(reftype, datamodel, descrip, **selectors):
    return _primary(reftype, datamodel, descrip, exp_type=MSA_SPEC, **selectors)


def write_msaoper(path, failed_open, failed_closed, exp_type=MSA_SPEC, title="simulated NIRSpec MSA operability"):
    """An MSA operability reference (JSON, the official layout): shutters (Q, x, y) failed open / closed."""
    shutters = [{"Q": int(q), "x": int(r), "y": int(c), "state": state, "TA state": state,
                 "Internal state": state, "Vignetted": "no"}
                for keys, state in ((failed_open, "open"), (failed_closed, "closed")) for q, r, c in keys]
    tree = {"title": title, "reftype": "MSAOPER", "instrument": "NIRSPEC",
            "telescope": "JWST", "exp_type": exp_type, "pedigree": "SIMULATION", "author": "webbspec simulator",
            "useafter": _USEAFTER, "description": "simulated failed-open and failed-closed MSA shutters",
            "msaoper": shutters}
    with open(path, "w") as fh:
        json.dump(tree, fh, indent=1)
        fh.write("\n")
    return os.path.basename(path)


def write_fflat(path):
    prim = _mos_primary("fflat", "NirspecQuadFlatModel", "simulated NIRSpec MOS fore-optics flat",
                        FILTER=fs.FILTER, GRATING="ANY")
    hdus = [prim]
    rows = np.arange(1, N_ROWS + 1)
    for q in range(1, 5):
        plane = np.broadcast_to(scene.fore_image(q, rows)[None, :], (N_COLUMNS, N_ROWS))
        cube = np.stack([plane] * len(_FLAT_PLANES)).astype(np.float32)
        hdus += [fits.ImageHDU(cube, name="SCI", ver=q),
                 fits.ImageHDU(np.zeros(cube.shape, np.uint32), name="DQ", ver=q),
                 fits.ImageHDU((flat_truth.REL_ERR * cube).astype(np.float32), name="ERR", ver=q)]
        wl = _plane_wavelengths(_FLAT_PLANES)
        wl.ver = q
        fast = _fast_table({"ANY": scene.fore_fast(q, WAVE_FAST)})
        fast.ver = q
        hdus += [wl, fast]
    return _write(hdus, path)


def write_wavecorr(path, optics):
    """The official WaveCorrModel with the one aperture "MOS" (module docstring)."""
    from astropy.modeling.models import Tabular2D
    from stdatamodels.jwst import datamodels as dm

    from . import nirspec_optics_refs as design

    lam = np.linspace(2.70e-6, 5.30e-6, 53)
    xpos = np.linspace(-0.5, 0.5, 21)
    grid_l, grid_x = np.meshgrid(lam, xpos, indexing="ij")
    offsets = []
    for key in _WAVECORR_SHUTTERS:
        x1, _ = optics.slit_to_detector(key, grid_x, 0.0, grid_l)
        x0, _ = optics.slit_to_detector(key, 0.0, 0.0, grid_l)
        offsets.append(-(x1 - x0))
    table = Tabular2D(points=(lam, xpos), lookup_table=np.mean(offsets, axis=0), bounds_error=False,
                      fill_value=None, name="zero_point_MOS")
    wc = dm.WaveCorrModel(apertures=[{"aperture_name": "MOS", "width": OPEN[0] * design.MSA_ARCSEC,
                                      "zero_point_offset": table,
                                      "variance": np.zeros(table.lookup_table.shape, np.float32)}])
    m = wc.meta
    m.reftype, m.author, m.pedigree, m.useafter = "WAVECORR", "webbspec simulator", "DUMMY", _USEAFTER
    m.description = "Simulated NIRSpec MOS wavelength zero-point offsets from the optical model"
    m.telescope, m.instrument.name = "JWST", "NIRSPEC"
    m.exposure.type, m.exposure.p_exptype = MSA_SPEC, MSA_SPEC + "|"
    design.save_reproducibly(wc, path)
    return os.path.basename(path)


def write_pathloss(path):
    hdus = [_mos_primary("pathloss", "PathlossModel", "simulated NIRSpec MOS pathloss")]
    lam = _PL_WAVE
    dlam = (lam[-1] - lam[0]) / (lam.size - 1)
    dx = (PATHLOSS_X[-1] - PATHLOSS_X[0]) / (PATHLOSS_X.size - 1)
    for k, (name, n) in enumerate((("MOS1x1", 1), ("MOS1x3", 3)), start=1):
        yv = PATHLOSS_Y[n]
        dy = (yv[-1] - yv[0]) / (yv.size - 1)
        centres = (0.0,) if n == 1 else (-1.0, 0.0, 1.0)
        shutter = np.round(yv)
        pitches = shutter + (yv - shutter) / scene.R                              # see the module docstring
        ps = scene.point_transmission(PATHLOSS_X[None, None, :], pitches[None, :, None], lam[:, None, None],
                                      centres).astype(np.float32)                 # (nwave, ny, nx)
        un = scene.uniform_throughput(lam, n).astype(np.float32)
        hdus += pathloss_aperture(k, name, n, ps, (float(PATHLOSS_X[0]), float(dx)), (float(yv[0]), float(dy)),
                                  un, (float(lam[0]), float(dlam)))
    return _write(hdus, path)


def write_barshadow(path):
    prim = _mos_primary("barshadow", "BarshadowModel", "simulated NIRSpec MOS bar shadows", GRATING=fs.GRATING)
    hdus = [prim]
    for n, centres in ((1, (0.0,)), (3, (-1.0, 0.0, 1.0))):
        data = scene.bar_shadow(BAR_ROWS[:, None], centres, BAR_WAVE[None, :]).astype(np.float32)
        hdu = fits.ImageHDU(data, name=f"DATA1X{n}")
        if n == 1:
            dl = (BAR_WAVE[-1] - BAR_WAVE[0]) / (BAR_WAVE.size - 1)
            for key, val in (("CRVAL1", float(BAR_WAVE[0]) * 1e-6), ("CDELT1", float(dl) * 1e-6),
                             ("CRVAL2", float(BAR_ROWS[0])), ("CDELT2", 0.002)):
                hdu.header[key] = val
        hdus += [hdu, fits.ImageHDU(np.zeros_like(data), name=f"VAR1X{n}")]
    return _write(hdus, path)


def write_photom(path):
    m = WAVE_FAST.size
    rel = scene.relresponse(WAVE_FAST).astype(np.float32)
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="filter", format="12A", array=[fs.FILTER]),
        fits.Column(name="grating", format="15A", array=[fs.GRATING]),
        fits.Column(name="photmj", format="E", unit="MJy/(DN/s)", array=np.array([scene.PHOTMJ], np.float32)),
        fits.Column(name="uncertainty", format="E", array=np.array([0.01 * scene.PHOTMJ], np.float32)),
        fits.Column(name="nelem", format="I", array=np.array([m], np.int16)),
        fits.Column(name="wavelength", format=f"{m}E", unit="um", array=WAVE_FAST.astype(np.float32)[None]),
        fits.Column(name="relresponse", format=f"{m}E", array=rel[None]),
        fits.Column(name="reluncertainty", format=f"{m}E", array=np.full((1, m), 1e-3, np.float32)),
    ], name="PHOTOM")
    prim = _mos_primary("photom", "NrsMosPhotomModel", "simulated NIRSpec MOS photometric calibration")
    return _write([prim, tab], path)


def write_area(path):
    k = np.arange(N_ROWS * N_COLUMNS)
    quad = np.repeat(np.arange(1, 5), k.size)
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="quadrant", format="I", array=quad.astype(np.int16)),
        fits.Column(name="shutter_x", format="I", array=np.tile(k % N_ROWS + 1, 4).astype(np.int16)),
        fits.Column(name="shutter_y", format="I", array=np.tile(k // N_ROWS + 1, 4).astype(np.int16)),
        fits.Column(name="pixarea", format="E", unit="arcsec**2", array=scene.pixar_a2(quad).astype(np.float32)),
    ], name="AREA")
    prim = _mos_primary("area", "NirspecMosAreaModel", "simulated NIRSpec MOS pixel areas per shutter",
                        FILTER=fs.FILTER, GRATING=fs.GRATING)
    return _write([prim, tab], path)


def enclosed_fraction(lam, size_pixels):
    """Fraction of a centred point source's light through a 1x3 slitlet within +-size/2 pixels
    (0.1" each) along the slit."""
    lam = np.asarray(lam, float)
    h = np.asarray(size_pixels, float) * 0.1 / OPEN[1] / 2.0         # open heights
    centres = (-scene.R, 0.0, scene.R)
    num = den = 0.0
    for t, s in zip(fs.slit_transmission(OPEN[0], lam), fs.psf_sigmas(lam)):
        num = num + t * scene.open_fraction(-h, h, 0.0, centres, s / OPEN[1])
        den = den + t * scene.open_fraction(-np.inf, np.inf, 0.0, centres, s / OPEN[1])
    return num / den


def write_apcorr(path):
    nw, ns, phases = _AP_WAVE.size, _AP_SIZE.size, np.array([0.0, 0.5], np.float32)
    size = np.tile(_AP_SIZE[:, None], (1, nw)).astype(np.float32)
    corr = 1.0 / enclosed_fraction(_AP_WAVE[None, :], _AP_SIZE[:, None])
    corr = np.repeat(corr[..., None], phases.size, axis=-1).astype(np.float32)[None]   # (1, nsize, nwave, nphase)
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="filter", format="12A", array=[fs.FILTER]),
        fits.Column(name="grating", format="15A", array=[fs.GRATING]),
        fits.Column(name="wavelength", format=f"{nw}E", unit="um", array=_AP_WAVE.astype(np.float32)[None]),
        fits.Column(name="nelem_wl", format="I", array=np.array([nw], np.int16)),
        fits.Column(name="size", format=f"{ns * nw}E", dim=f"({nw},{ns})", unit="pixels", array=size[None]),
        fits.Column(name="nelem_size", format="I", array=np.array([ns], np.int16)),
        fits.Column(name="pixphase", format=f"{phases.size}E", array=phases[None]),
        fits.Column(name="apcorr", format=f"{corr[0].size}E", dim=f"({phases.size},{nw},{ns})", array=corr),
        fits.Column(name="apcorr_err", format=f"{corr[0].size}E", dim=f"({phases.size},{nw},{ns})",
                    array=np.zeros_like(corr)),
    ], name="APCORR")
    tab.header["SIZEUNIT"] = "pixels"
    return _write([_mos_primary("apcorr", "NrsMosApcorrModel", "simulated NIRSpec MOS aperture corrections"),
                   tab], path)


def write_extract1d(path):
    aps = [{"id": "ANY", "region_type": "target", "dispaxis": 1, "bkg_order": 0,
            "extract_width": _EXTRACT_WIDTH, "use_source_posn": True}]
    tree = {"reftype": "EXTRACT1D", "instrument": "NIRSPEC", "telescope": "JWST", "exp_type": MSA_SPEC,
            "pedigree": "SIMULATION", "author": "webbspec simulator", "useafter": _USEAFTER,
            "description": "simulated NIRSpec MOS extraction aperture", "apertures": aps}
    with open(path, "w") as fh:
        json.dump(tree, fh, indent=1)
        fh.write("\n")
    return os.path.basename(path)


def write_all(refdir, detectors, pixel_flats, optics, failed_open, failed_closed):
    """Write every MOS calibration reference; returns {reftype: [{"match": {...}, "file": name}]}.
    ``detectors``: frames with name, y0, x0 (sflat / dflat per detector); ``optics``: an
    :class:`Optics` of the MOS set (wavecorr)."""
    grat, filt = fs.GRATING.lower(), fs.FILTER.lower()
    base = {"INSTRUME": "NIRSPEC", "EXP_TYPE": MSA_SPEC}
    optical = dict(base, FILTER=fs.FILTER, GRATING=fs.GRATING)
    p = os.path.join
    out = {"sflat": [], "dflat": []}
    for det in detectors:
        d = det.name.lower()
        out["sflat"].append({"match": dict(optical, DETECTOR=det.name), "file": fs_calrefs.write_sflat(
            det.name, p(refdir, f"nirspec_mos_sflat_{grat}_{filt}_{d}_0001.fits"),
            {"ANY": scene.spectrograph_fast(WAVE_FAST)}, MSA_SPEC, "MOS")})
        out["dflat"].append({"match": {"INSTRUME": "NIRSPEC", "DETECTOR": det.name}, "file": fs_calrefs.write_dflat(
            det.name, np.asarray(pixel_flats[det.name]), p(refdir, f"nirspec_dflat_{d}_0001.fits"),
            (det.y0, det.x0))})
    for rt, match, name, writer in (
            ("msaoper", base, "nirspec_mos_msaoper_0001.json",
             lambda path: write_msaoper(path, failed_open, failed_closed)),
            ("fflat", dict(base, FILTER=fs.FILTER), f"nirspec_mos_fflat_{filt}_0001.fits", write_fflat),
            ("wavecorr", base, "nirspec_mos_wavecorr_0001.asdf", lambda path: write_wavecorr(path, optics)),
            ("pathloss", base, "nirspec_mos_pathloss_0001.fits", write_pathloss),
            ("barshadow", dict(base, GRATING=fs.GRATING), f"nirspec_mos_barshadow_{grat}_0001.fits", write_barshadow),
            ("photom", base, "nirspec_mos_photom_0001.fits", write_photom),
            ("area", optical, f"nirspec_mos_area_{grat}_{filt}_0001.fits", write_area),
            ("apcorr", base, "nirspec_mos_apcorr_0001.fits", write_apcorr),
            ("extract1d", base, "nirspec_mos_extract1d_0001.json", write_extract1d)):
        out[rt] = [{"match": dict(match), "file": writer(p(refdir, name))}]
    return out
