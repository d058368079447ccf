"""straylight: remove the MIRI MRS cross-artifact (the official StraylightStep, mrsxartcorr).

Reference ``mrsxartcorr`` (official MirMrsXArtCorrModel FITS): per channel and band (CH1A ...
CH4C) a row per detector row with the kernel that spreads each column's signal along its row: a
Lorentzian (LOR_FWHM, LOR_SCALE) and two Gaussian pairs at +-GAU_XOFF and +-2 GAU_XOFF (GAU_FWHM;
the outer pair twice as wide; GAU_SCALE1/2). As officially, the detector halves are separate:
columns 0-515 spread by the left channel's kernel (channel 1 on MIRIFUSHORT, 4 on MIRIFULONG),
516-1023 by the right one's (2, 3); reference columns 0-3 and 1028-1031 get none.

Where we depart: the official step convolves the observed image (the stray light included, pixels
below a pedestal + 3 rms cut excluded) once and then subtracts a dark pedestal. We solve
observed = S + K*S for the signal S by fixed-point iterations (K has a norm of ~0.1: 4 iterations
leave ~1e-4 of the stray light), with only slice pixels (regions plane 7, when the regions
reference is given) as sources, negatives counted as 0 (official) and flagged pixels excluded.
No pedestal is subtracted. The convolutions are FFTs along the rows (one kernel per row).
``clean_showers`` (residual cosmic-ray showers) is not implemented: asking for it is an error.
"""

import numpy as np

from .. import dq as dqbits
from ..errors import InputError
from ..instruments.miri import is_mrs
from . import _correction as corr
from ._call import accepts_files

REFTYPES = ("mrsxartcorr", "regions")
NEEDS = ("assign_wcs",)

_LETTER = {"SHORT": "A", "MEDIUM": "B", "LONG": "C"}
_HALVES = {"12": (("1", 0, 516), ("2", 516, 1024)), "34": (("4", 0, 516), ("3", 516, 1024))}
_COLUMNS = ("LOR_FWHM", "LOR_SCALE", "GAU_FWHM", "GAU_XOFF", "GAU_SCALE1", "GAU_SCALE2")
_EXCLUDE = dqbits.flag("DO_NOT_USE", "DEAD", "HOT")
_ITERATIONS = 4


@accepts_files
def run(model, refs, *, clean_showers=False, shower_plane=3, shower_x_stddev=18.0, shower_y_stddev=5.0,
        shower_low_reject=0.1, shower_high_reject=99.9):
    """Cross-artifact-corrected copy of a full-frame MRS image; SKIPPED without a reference."""
    where = model.path or "straylight"
    out = model.copy(arrays=False)
    path = corr.ref_path(refs, "mrsxartcorr")
    if path is None or not is_mrs(out.exp_type):
        corr.mark(out, "STRAY", "SKIPPED")
        return out
    if clean_showers:
        raise InputError(where, f"clean_showers (shower_plane {shower_plane}, stddev {shower_x_stddev} x "
                                f"{shower_y_stddev}, reject {shower_low_reject}-{shower_high_reject}) is not implemented")
    hdul = corr.open_reference(path, "mrsxartcorr", models=("MirMrsXArtCorrModel",))
    channels = str(out.primary.get("CHANNEL", "")).strip()
    band = str(out.primary.get("BAND", "")).strip().upper()
    if channels not in _HALVES or band not in _LETTER:
        raise InputError(where, f"straylight needs CHANNEL 12|34 and BAND SHORT|MEDIUM|LONG (got {channels!r}, {band!r})")
    sources = _slice_pixels(refs, out.slits[0].shape[-2:])
    for slit in out.slits:
        kernels = [(_row_kernels(hdul, path, f"CH{c}{_LETTER[band]}", slit.shape[-2:]), i0, i1)
                   for c, i0, i1 in _HALVES[channels]]
        sci = np.asarray(slit["SCI"], np.float64)
        usable = np.isfinite(sci) & (sources if sources is not None else True)
        if "DQ" in slit:
            usable &= (slit["DQ"] & _EXCLUDE) == 0
        signal = sci
        for _ in range(_ITERATIONS):
            stray = _stray(np.where(usable, np.clip(signal, 0.0, None), 0.0), kernels)
            signal = sci - stray
        slit["SCI"] = signal.astype(slit["SCI"].dtype)
    corr.record_ref(out, "mrsxartcorr", path)
    if corr.ref_path(refs, "regions") is not None:
        corr.record_ref(out, "regions", refs["regions"])
    corr.mark(out, "STRAY", "COMPLETE")
    return out


def _slice_pixels(refs, shape):
    """Slice pixels (regions plane 7 > 0) or None without a regions reference."""
    path = corr.ref_path(refs, "regions")
    if path is None:
        return None
    from ..instruments.miri.mrs import REGIONS_PLANE, reference_tree

    regions = np.asarray(reference_tree("regions", path)["regions"])
    if regions.ndim != 3 or regions.shape[1:] != tuple(shape):
        raise InputError(str(path), f"regions {regions.shape} do not match the image {tuple(shape)}")
    return regions[REGIONS_PLANE] > 0


def _row_kernels(hdul, path, extname, shape):
    """rfft of every row's kernel on circular offsets of a (2 nx) padding (no wrap-around)."""
    if extname not in hdul:
        raise InputError(str(path), f"mrsxartcorr has no {extname} table")
    t = hdul[extname].data
    names = [n.upper() for n in t.columns.names]
    ny, nx = shape
    if len(t) != ny or any(c not in names for c in _COLUMNS):
        raise InputError(str(path), f"{extname}: expected {ny} rows with {', '.join(_COLUMNS)}")
    order = np.argsort(np.asarray(t.field(names.index("YROW")))) if "YROW" in names else np.arange(ny)
    lw, ls, gw, gx, g1, g2 = (np.asarray(t.field(names.index(c)), np.float64)[order][:, None] for c in _COLUMNS)
    n = 2 * nx
    dx = np.where(np.arange(n) < nx, np.arange(n), np.arange(n) - n).astype(float)[None]
    gamma, sd = lw / 2.0, gw / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    k = (ls * gamma**2 / (gamma**2 + dx**2)
         + g1 * (np.exp(-(dx - gx) ** 2 / (2 * sd**2)) + np.exp(-(dx + gx) ** 2 / (2 * sd**2)))
         + g2 * (np.exp(-(dx - 2 * gx) ** 2 / (8 * sd**2)) + np.exp(-(dx + 2 * gx) ** 2 / (8 * sd**2))))
    return np.fft.rfft(k, axis=1)


def _stray(src, kernels):
    ny, nx = src.shape
    out = np.zeros((ny, nx))
    for kf, i0, i1 in kernels:
        pad = np.zeros((ny, 2 * nx))
        pad[:, i0:i1] = src[:, i0:i1]
        out += np.fft.irfft(np.fft.rfft(pad, axis=1) * kf, n=2 * nx, axis=1)[:, :nx]
    out[:, :4] = 0.0
    out[:, nx - 4:] = 0.0
    return out
