"""wavecorr: correct the wavelengths of point sources that sit off the slit centre (NIRSpec).

Reference ``wavecorr`` (docs/internals.md): BinTable APERTURES with APERTURE (slit name, "MOS"
for MSA slitlets) and SLOPE [dispersion pixels per unit SRCXPOS]. For each POINT slit the
offset d = SLOPE * SRCXPOS (pixels) is applied with the local dispersion of each pixel:
WAVELENGTH += d * dlam/dx, dlam/dx the centred difference along the row (one-sided at the ends
of a row's valid run). WAVECOR = T in the slit header. Data arrays are untouched.
EXTENDED slits, or no reference: unchanged (S_WAVCOR = SKIPPED when no slit was corrected).
"""

import os

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ._call import accepts_files

REFTYPES = ("wavecorr",)

EXP_TYPES = ("NRS_FIXEDSLIT", "NRS_MSASPEC", "NRS_BRIGHTOBJ", "NRS_AUTOFLAT")


@accepts_files
def run(model, refs):
    """Wavelength-correct the point-source slits of a copy of ``model``."""
    out = model.copy()
    path = (refs or {}).get("wavecorr", "N/A")
    if path is None or str(path).upper() in ("", "N/A", "NONE") or out.exp_type not in EXP_TYPES:
        out.primary["S_WAVCOR"] = "SKIPPED"
        return out
    slopes = read_wavecorr(path)
    done = 0
    for slit in out.slits:
        if str(slit.header.get("SRCTYPE", "")).strip().upper() != "POINT":
            continue
        if "WAVELENGTH" not in slit:
            raise InputError(model.path or "wavecorr", f"slit {slit.name!r} has no WAVELENGTH array")
        key = "MOS" if out.exp_type == "NRS_MSASPEC" else slit.name.upper()
        if key not in slopes:
            raise InputError(path, f"no APERTURES row for {key!r}")
        shift = slopes[key] * float(slit.header.get("SRCXPOS", 0.0))
        lam = np.asarray(slit["WAVELENGTH"], np.float64)
        slit["WAVELENGTH"] = (lam + shift * dispersion(lam)).astype(np.float32)
        slit.header["WAVECOR"] = (True, "wavelength corrected for the source position")
        done += 1
    out.primary["S_WAVCOR"] = "COMPLETE" if done else "SKIPPED"
    if done:
        out.primary["R_WAVCOR"] = os.path.basename(str(path))
    return out


def read_wavecorr(path):
    """{APERTURE (upper case): SLOPE}."""
    if not os.path.exists(str(path)):
        raise InputError(path, "wavecorr reference file does not exist")
    try:
        with fits.open(path, memmap=False) as hdul:
            tab = hdul["APERTURES"].data
            return {str(a).strip().upper(): float(s) for a, s in zip(tab["APERTURE"], tab["SLOPE"])}
    except Exception as exc:
        raise InputError(path, f"not a valid wavecorr reference ({type(exc).__name__}: {exc})") from None


def dispersion(lam):
    """d lambda / d column at every pixel (NaN where the row has no valid neighbour)."""
    nan = np.full(lam.shape[:-1] + (1,), np.nan)
    left = np.concatenate([nan, lam[..., :-1]], axis=-1)
    right = np.concatenate([lam[..., 1:], nan], axis=-1)
    centred = (right - left) / 2.0
    fwd, back = right - lam, lam - left
    return np.where(np.isfinite(centred), centred, np.where(np.isfinite(fwd), fwd, back))
