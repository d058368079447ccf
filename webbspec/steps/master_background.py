"""master_background (Stage 3): subtract a 1-D master background spectrum from every science slit.

1. Skipped (S_MSBSUB = SKIPPED) when the science already had its background subtracted
   (S_BKDSUB or S_MSBSUB COMPLETE) unless ``force_subtract``, or when there is no background.
2. Master spectrum: ``user_background`` (a path or SpecModel of an x1d/c1d, used as is) or the
   ``backgrounds`` x1d models combined with the combine_1d algorithm (exposure-time weights, no
   clipping). For backgrounds extracted from the science nods themselves (BKGDTARG False) the
   BACKGROUND/BKGD_ERROR columns are used as SURF_BRIGHT/SB_ERROR. Optional odd ``median_kernel``
   median filter.
   IFU backgrounds (MIRI MRS, or NIRSpec IFU spectra of EXTENDED type) also use BACKGROUND/BKGD_ERROR.
3. Per slit (an IFU exposure: its one full-detector slit, every pixel with its own wavelength):
   bkg2d = interp(WAVELENGTH, master lambda, SURF_BRIGHT [MJy/sr], 0 outside), pixels
   without a wavelength get DO_NOT_USE. For POINT data the uniform background is put on the
   point-source scale: x PATHLOSS_UN/PATHLOSS_PS x FLATFIELD_UN/FLATFIELD_PS x PHOTOM_PS/PHOTOM_UN
   where those arrays exist; MJy data without PHOTOM_* arrays are converted with PIXAR_SR.
   NRS_MSASPEC slits are left alone (MOS backgrounds are done in Stage 2).
4. SCI -= bkg2d; MASTERBG records the user file. :func:`master_spectrum` and :func:`expand` are
   public for the workflow (the official save_background is the caller's job: it can write
   :func:`master_spectrum` as ``_masterbg1d``).
"""

import os

import numpy as np

from ..io import datamodels
from .. import dq as dqbits
from ..io.datamodels import SpecModel
from ..errors import InputError
from ..modes import known_mode, mode_for
from .combine_1d import combine_spectra, exposure_weight
from ._call import accepts_files

REFTYPES = ()
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): slits with wavelengths
NEEDS = ("assign_wcs", "extract_2d")


def _as_background_table(model):
    """Tables of one background x1d, with BACKGROUND as SURF_BRIGHT for nod self-backgrounds and
    for IFU backgrounds extracted as extended sources (MIRI MRS always; NIRSpec IFU when the spectrum is
    EXTENDED): there extract_1d reports the field's sigma-clipped mean as BACKGROUND, robust to
    whatever else the background field holds (the official rule)."""
    out = []
    own = model.primary.get("BKGDTARG", True) in (False, "F", "False", 0)
    mode = known_mode(model.primary.get("EXP_TYPE"))
    ifu, miri = mode is not None and mode.stage3_kind == "cubes", mode is not None and mode.instrument == "MIRI"
    for sp in model.spectra:
        t = sp.table.copy()
        srctype = str(sp.header.get("SRCTYPE", model.primary.get("SRCTYPE", ""))).strip().upper()
        ifu_extended = ifu and (miri or srctype == "EXTENDED")
        if (own or ifu_extended) and "BACKGROUND" in t.dtype.names:
            t["SURF_BRIGHT"] = t["BACKGROUND"]
            t["SB_ERROR"] = t["BKGD_ERROR"]
            t["BACKGROUND"] = 0.0
        if "FLUX_ERROR" not in t.dtype.names and "ERROR" in t.dtype.names:   # a c1d
            t = _c1d_as_x1d(t)
        out.append(t)
    return out


def _c1d_as_x1d(t):
    x = datamodels.new_spec_table(len(t), "EXTRACT1D")
    for c in ("WAVELENGTH", "FLUX", "SURF_BRIGHT", "SB_ERROR", "DQ"):
        x[c] = t[c]
    x["FLUX_ERROR"] = t["ERROR"]
    return x


def master_spectrum(backgrounds=(), user_background=None, median_kernel=1):
    """(wavelength, SURF_BRIGHT) of the master background [um, MJy/sr]."""
    if user_background is not None:
        m = datamodels.read(user_background) if isinstance(user_background, (str, os.PathLike)) \
            else user_background
        if not isinstance(m, SpecModel) or not m.spectra:
            raise InputError(str(user_background), "user_background is not a 1-D spectrum product")
        t = m.spectra[0].table
        wave, sb = np.asarray(t["WAVELENGTH"], float), np.asarray(t["SURF_BRIGHT"], float)
    else:
        items = []
        for m in backgrounds:
            if not isinstance(m, SpecModel):
                raise InputError(getattr(m, "path", None) or "backgrounds", "background is not an x1d product")
            w = exposure_weight(m.primary, "exposure_time")
            items += [(t, w) for t in _as_background_table(m) if np.any(np.isfinite(t["FLUX"]))
                      or np.any(np.isfinite(t["SURF_BRIGHT"]))]
        if not items:
            raise InputError("master_background", "no usable background spectrum")
        # combine on SURF_BRIGHT: FLUX may be zero for the self-background case, so key the
        # validity on SURF_BRIGHT by passing it as FLUX as well
        items = [(_sb_as_flux(t), w) for t, w in items]
        c = combine_spectra(items)
        wave, sb = np.asarray(c["WAVELENGTH"], float), np.asarray(c["SURF_BRIGHT"], float)
    k = int(median_kernel or 1)
    if k > 1:
        if k % 2 == 0:
            k += 1
        from scipy.signal import medfilt   # imported here: scipy.signal costs 0.6 s per process

        sb = medfilt(sb, k)
    order = np.argsort(wave)
    return wave[order], sb[order]


def _sb_as_flux(t):
    t = t.copy()
    t["FLUX"] = np.where(np.isfinite(t["SURF_BRIGHT"]), t["FLUX"], np.nan)
    return t


def expand(slit, wave, sb, exp_type=""):
    """The 2-D background of ``slit`` in its SCI units, and the pixels with no wavelength."""
    lam = np.asarray(slit["WAVELENGTH"], float)
    nolam = ~np.isfinite(lam)
    good = np.isfinite(sb)
    bkg = np.interp(np.where(nolam, 0.0, lam), wave[good], sb[good], left=0.0, right=0.0)
    bkg[nolam] = 0.0
    hdr = slit.header
    if str(hdr.get("SRCTYPE", "")).strip().upper() == "POINT":
        with np.errstate(all="ignore"):
            for num, den in (("PATHLOSS_UN", "PATHLOSS_PS"), ("FLATFIELD_UN", "FLATFIELD_PS"),
                             ("PHOTOM_PS", "PHOTOM_UN")):
                if num in slit and den in slit:
                    r = np.asarray(slit[num], float) / np.asarray(slit[den], float)
                    bkg = bkg * np.where(np.isfinite(r), r, 1.0)
        if str(hdr.get("BUNIT", "")).strip().upper() == "MJY" and not ("PHOTOM_PS" in slit and "PHOTOM_UN" in slit):
            bkg = bkg * float(hdr.get("PIXAR_SR", 1.0))
    return bkg, nolam


@accepts_files
def run(model, refs=None, *, backgrounds=(), median_kernel=1, user_background=None,
        force_subtract=False):
    """Subtract the master background from each slit of ``model``; returns a new Model."""
    out = model.copy(arrays=False)   # arrays shared: SCI and DQ are replaced below, none changed in place
    done = [str(out.primary.get(k, "")).upper() == "COMPLETE" for k in ("S_BKDSUB", "S_MSBSUB")]
    done += [str(s.header.get("S_BKDSUB", "")).upper() == "COMPLETE" for s in out.slits]
    if (any(done) and not force_subtract) or (not backgrounds and user_background is None):
        out.primary["S_MSBSUB"] = "SKIPPED"
        return out
    wave, sb = master_spectrum(backgrounds, user_background, median_kernel)
    exp_type = str(out.primary.get("EXP_TYPE", "")).strip().upper()
    for s in out.slits:
        if mode_for(s.header if "EXP_TYPE" in s.header else out.primary, out.path or "master_background").msa:
            continue
        if "WAVELENGTH" not in s:
            raise InputError(model.path or s.name or "master_background", "slit has no WAVELENGTH array")
        bkg, nolam = expand(s, wave, sb, exp_type)
        s["SCI"] = (np.asarray(s["SCI"], float) - bkg).astype(np.float32)
        dqa = np.asarray(s["DQ"], np.uint32) if "DQ" in s else np.zeros(s.shape, np.uint32)
        s["DQ"] = dqa | np.where(nolam, np.uint32(dqbits.DO_NOT_USE), np.uint32(0))
    out.primary["S_MSBSUB"] = "COMPLETE"
    if user_background is not None:
        out.primary["MASTERBG"] = os.path.basename(str(getattr(user_background, "path", None)
                                                       or user_background))
    return out
