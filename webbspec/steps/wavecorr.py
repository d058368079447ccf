"""wavecorr: correct the wavelengths of point sources that sit off the slit centre (NIRSpec).

Reference ``wavecorr``: the official WaveCorrModel (ASDF): ``apertures``, each with
``aperture_name`` (slit name; "MOS" for MSA slitlets), ``width`` [m] and ``zero_point_offset``,
a table over (wavelength [m], source position across the slit [slit units]) -> pixel offset.
The official algorithm, on the per-pixel arrays: for each POINT slit, the column means of the
wavelength (lam_bar) and of the dispersion (d_bar, the centred difference along the row [um per
pixel]) give lam_corr = lam_bar + offset(lam_bar, SRCXPOS) * d_bar (the table extrapolated); if
lam_corr increases monotonically, every pixel's WAVELENGTH becomes interp(lam, lam_bar, lam_corr)
(linear, extrapolated); WAVECOR = T in the slit header. Data arrays are untouched. EXTENDED slits,
or no reference: unchanged (S_WAVCOR = SKIPPED when no slit was corrected).
"""

import os
import warnings

import numpy as np

from ..errors import InputError
from ..instruments.transforms import UnsupportedTransform, build, open_tree
from ._call import accepts_files
from ._memo import freeze

REFTYPES = ("wavecorr",)
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): the slits' wavelengths and source type
NEEDS = ("assign_wcs", "extract_2d", "srctype")



@accepts_files
def run(model, refs):
    """Wavelength-correct the point-source slits of a copy of ``model`` (WAVELENGTH is replaced,
    never edited: the other arrays are shared)."""
    out = model.copy(arrays=False)
    path = (refs or {}).get("wavecorr", "N/A")
    if path is None or str(path).upper() in ("", "N/A", "NONE") or not (out.mode.fixed_slits or out.mode.msa):
        out.primary["S_WAVCOR"] = "SKIPPED"
        return out
    tables = read_wavecorr(path)
    done = 0
    for slit in out.slits:
        if str(slit.header.get("SRCTYPE", "")).strip().upper() != "POINT":
            continue
        if "WAVELENGTH" not in slit:
            raise InputError(model.path or "wavecorr", f"slit {slit.name!r} has no WAVELENGTH array")
        key = "MOS" if out.mode.msa else slit.name.upper()    # the official aperture names
        if key not in tables:
            raise InputError(path, f"no aperture {key!r} in the wavecorr reference")
        lam = np.asarray(slit["WAVELENGTH"], np.float64)
        new = corrected(lam, tables[key], float(slit.header.get("SRCXPOS", 0.0)))
        if new is None:
            continue
        slit["WAVELENGTH"] = freeze(new.astype(np.float32))     # (read-only: its digest kept)
        slit.header["WAVECOR"] = (True, "wavelength corrected for the source position")
        done += 1
    out.primary["S_WAVCOR"] = "COMPLETE" if done else "SKIPPED"
    if done:
        out.primary["R_WAVCOR"] = os.path.basename(str(path))
    return out


def read_wavecorr(path):
    """{aperture name (upper case): zero-point offset transform (lam [m], xpos) -> pixels}."""
    if not os.path.exists(str(path)):
        raise InputError(path, "wavecorr reference file does not exist")
    try:
        tree = open_tree(str(path))
    except Exception as exc:
        raise InputError(path, f"not a readable ASDF wavecorr reference ({type(exc).__name__}: {exc})") from None
    if str((tree.get("meta") or {}).get("reftype", "")).lower() != "wavecorr" or "apertures" not in tree:
        raise InputError(path, "not a wavecorr reference (REFTYPE WAVECORR with apertures)")
    out = {}
    for ap in tree["apertures"]:
        node = ap.get("zero_point_offset")
        if node is None:
            raise InputError(path, f"aperture {ap.get('aperture_name')!r} has no zero_point_offset")
        node = type(node)(node)
        node._tag = ap["zero_point_offset"]._tag
        node["bounds_error"], node["fill_value"] = False, None      # extrapolate, as the official step
        try:
            out[str(ap["aperture_name"]).strip().upper()] = build(node)
        except UnsupportedTransform as exc:
            raise InputError(path, f"aperture {ap.get('aperture_name')!r}: {exc}") from None
    return out


def corrected(lam, offset, xpos):
    """The corrected wavelengths [um] of a slit's array ``lam`` [um], or None when the corrected
    column wavelengths do not increase monotonically (the official step then leaves the slit)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns
        lam_bar = np.nanmean(lam, axis=0)
        d_bar = np.nanmean(dispersion(lam), axis=0)
    ok = np.isfinite(lam_bar) & np.isfinite(d_bar)
    if ok.sum() < 2:
        return None
    lam_bar, d_bar = lam_bar[ok], d_bar[ok]
    lam_corr = lam_bar + offset(lam_bar * 1e-6, np.full(lam_bar.shape, xpos))[0] * d_bar
    if not np.all(np.diff(lam_corr) > 0):
        return None
    return _interp_extrapolated(lam, lam_bar, lam_corr)


def _interp_extrapolated(x, xp, fp):
    """Linear interpolation in increasing ``xp``, extrapolated linearly outside (NaN stays NaN)."""
    i = np.clip(np.searchsorted(xp, x) - 1, 0, xp.size - 2)
    w = (x - xp[i]) / (xp[i + 1] - xp[i])
    return fp[i] + w * (fp[i + 1] - fp[i])


def dispersion(lam):
    """d lambda / d column at every pixel (NaN where the row has no valid neighbour)."""
    nan = np.full(lam.shape[:-1] + (1,), np.nan)
    left = np.concatenate([nan, lam[..., :-1]], axis=-1)
    right = np.concatenate([lam[..., 1:], nan], axis=-1)
    centred = (right - left) / 2.0
    fwd, back = right - lam, lam - left
    return np.where(np.isfinite(centred), centred, np.where(np.isfinite(fwd), fwd, back))
