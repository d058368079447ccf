"""master_background_mos: subtract a master background made from the MOS background slitlets (Stage 2).

The official algorithm (jwst-spec-steps.md, master_background_mos), on our own steps:

1. Skipped (S_MSBSUB = SKIPPED) when a background was already subtracted (S_BKDSUB or S_MSBSUB
   COMPLETE) unless ``force_subtract``; FAILED without background slitlets (source name with "BKG"
   or "BACKGROUND") or without source slitlets (unless ``user_background`` is given).
2. A copy of every slitlet is calibrated as an extended source: flat_field, pathloss, barshadow and
   photom (the last three with ``source_type="EXTENDED"``) with this step's references.
3. The master background [MJy/sr]: ``user_background`` (an x1d / c1d, its first spectrum), else the
   calibrated background slitlets rectified (resample_spec), extracted (extract_1d with the
   extract1d / apcorr references) and combined (combine_1d, exposure-time weights, ``sigma_clip``);
   optionally median-filtered (``median_kernel``, an even size taken one smaller, as official).
4. Each calibrated slitlet's copy gets SCI = the master interpolated at its WAVELENGTH (0 and
   DO_NOT_USE outside the master's wavelengths or without one), then is un-calibrated: photom,
   barshadow, pathloss, flat_field, each with ``inverse=True`` (still extended).
5. Every slitlet: SCI -= that background (``inverse``: +=), DQ |= its DQ (the calibration's flags
   included); ERR and the variances are not changed (official). S_MSBSUB = COMPLETE.

:func:`master_background` returns the pieces (1-D master, the 2-D backgrounds) for callers that
keep them (the official ``save_background`` writes them as ``_masterbg1d`` / ``_masterbg2d``; a
step writes no file, so that file-writing parameter is not taken, as the config does not list it).
"""

import os

import numpy as np

from .. import dq as dqbits
from ..errors import InputError
from ..instruments.nirspec.msa import is_background_name
from ..io import datamodels
from ..io.datamodels import Model, SpecModel
from . import _correction as corr
from . import barshadow, combine_1d, extract_1d, flat_field, pathloss, photom, resample_spec
from ._call import accepts_files

_CALIBRATION = (flat_field, pathloss, barshadow, photom)
REFTYPES = tuple(dict.fromkeys(rt for m in _CALIBRATION + (extract_1d,) for rt in m.REFTYPES))
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): slitlets with wavelengths and source types
NEEDS = ("assign_wcs", "extract_2d", "srctype")


@accepts_files
def run(model, refs, *, sigma_clip=3.0, median_kernel=1, force_subtract=False, user_background=None,
        inverse=False):
    """Subtract the master background from every slitlet of a copy of ``model``."""
    out = model.copy(arrays=False)           # SCI and DQ are replaced below, not edited
    done = [str(out.primary.get(k, "")).strip().upper() == "COMPLETE" for k in ("S_BKDSUB", "S_MSBSUB")]
    if any(done) and not force_subtract:
        corr.mark(out, "MSBSUB", "SKIPPED")
        return out
    if user_background is None:
        nbkg = sum(is_background_name(s.header.get("SRCNAME")) for s in out.slits)
        if nbkg == 0 or nbkg == len(out.slits):
            corr.mark(out, "MSBSUB", "FAILED")      # official: no background, or no source slitlets
            return out
    _, background = master_background(model, refs, sigma_clip=sigma_clip, median_kernel=median_kernel,
                                      user_background=user_background)
    sign = -1.0 if inverse else 1.0
    for slit, bkg in zip(out.slits, background.slits):
        slit["SCI"] = (np.asarray(slit["SCI"], np.float64) - sign * np.asarray(bkg["SCI"], np.float64)
                       ).astype(np.float32)
        slit["DQ"] = np.asarray(slit["DQ"], np.uint32) | np.asarray(bkg["DQ"], np.uint32)
    corr.mark(out, "MSBSUB", "COMPLETE")
    for rt in REFTYPES:
        if corr.ref_path(refs, rt) is not None:
            corr.record_ref(out, rt, refs[rt])
    if user_background is not None:
        out.primary["MASTERBG"] = os.path.basename(str(getattr(user_background, "path", None) or user_background))
    return out


def master_background(model, refs, *, sigma_clip=3.0, median_kernel=1, user_background=None):
    """(master spectrum (wavelength [um], SURF_BRIGHT [MJy/sr]), the 2-D background of every
    slitlet in its own units as a Model) -- steps 2 to 4 of the module docstring."""
    where = model.path or "master_background_mos"
    calibrated = model
    for step in _CALIBRATION:
        extra = {} if step is flat_field else {"source_type": "EXTENDED"}
        calibrated = step.run(calibrated, refs, **extra)
    wave, sb = _master_spectrum(calibrated, refs, sigma_clip, median_kernel, user_background, where)
    background = calibrated.copy(arrays=False)            # SCI and DQ replaced below
    lo, hi = np.nanmin(wave), np.nanmax(wave)
    for slit in background.slits:
        lam = np.asarray(slit["WAVELENGTH"], np.float64)
        outside = ~((lam >= lo) & (lam <= hi))            # NaN wavelengths too
        slit["SCI"] = np.interp(np.where(outside, -1.0, lam), wave, sb, left=0.0, right=0.0).astype(np.float32)
        slit["DQ"] = np.asarray(slit["DQ"], np.uint32) | np.where(outside, np.uint32(dqbits.DO_NOT_USE),
                                                                   np.uint32(0))
    for step in reversed(_CALIBRATION):
        extra = {} if step is flat_field else {"source_type": "EXTENDED"}
        background = step.run(background, refs, inverse=True, **extra)
    return (wave, sb), background


def _master_spectrum(calibrated, refs, sigma_clip, median_kernel, user_background, where):
    """(wavelength, SURF_BRIGHT) of the master background, sorted by wavelength."""
    if user_background is not None:
        m = datamodels.read(user_background) if isinstance(user_background, (str, os.PathLike)) else user_background
        if not isinstance(m, SpecModel) or not m.spectra:
            raise InputError(str(user_background), "user_background is not a 1-D spectrum product")
        table = m.spectra[0].table
    else:
        slits = [s for s in calibrated.slits if is_background_name(s.header.get("SRCNAME"))]
        bkg = Model(calibrated.primary.copy(), slits, "multi", {}, None, calibrated.path)
        # (extended sources: no aperture correction applies)
        x1d = extract_1d.run(resample_spec.run(bkg, {}), refs, apply_apcorr=False)
        try:
            table = combine_1d.run(x1d, sigma_clip=sigma_clip).spectra[0].table
        except InputError:
            raise InputError(where, "no background slitlet gives a valid spectrum for the master background") from None
    wave, sb = np.asarray(table["WAVELENGTH"], float), np.asarray(table["SURF_BRIGHT"], float)
    k = int(median_kernel or 1)
    k -= (k % 2 == 0)                                     # official: even kernels one smaller
    if k > 1:
        from scipy.signal import medfilt                 # imported here: 0.6 s

        sb = medfilt(sb, k)
    order = np.argsort(wave)
    return wave[order], sb[order]
