"""barshadow: correct extended-source MOS slitlets for the shadows of the MSA bars (NIRSpec).

Reference ``barshadow`` (the official BarshadowModel FITS): DATA1X1 (one open shutter between
closed ones) and DATA1X3 (an open shutter between open ones), each (1001 rows, 101 columns): rows
are the position along the slit from one shutter pitch below the shutter's centre (CRVAL2 = -1) to
one above, every CDELT2 = 0.002 pitch; columns are wavelengths from CRVAL1 every CDELT1 (metres,
the slit frame's unit; micron values are taken as such).

As the official step, for each slitlet that is not a POINT source (SRCTYPE, or ``source_type``):

* the slitlet's shadow is assembled from half-shutter pieces along its SHUTSTA string (one
  character per shutter from the bottom, "0" closed, "1"/"x" open): the first half from DATA1X1
  rows 0-500, then per next shutter open->open DATA1X3 rows 0-500, open->closed DATA1X1 rows
  500-1000, closed->open DATA1X1 rows 0-500, closed->closed the minimum of DATA1X1; the last half
  DATA1X1 rows 500-1000; each seam row is the mean of the two pieces;
* a pixel's row in it is 500 (n + 1) - 500 (n - i) + 500 y_slit / SLTYSCL (n shutters, i the index
  of "x", y_slit the SLIT_Y array in units of the open shutter height, SLTYSCL the pitch / height
  ratio, 1.15 if absent), its column (lambda - CRVAL1) / CDELT1; the shadow is interpolated there
  bilinearly, coordinates outside the array taken at its edge (NaN stays NaN);

One departure: the official assembly starts the last half at DATA1X1 row 501 on the last shutter's
centre row, so everything above that centre sits one reference row (0.002 pitch) too low. With the
simulated MOS bars (edges blurred by 0.035" x lambda / 4 um) the top outer edge of a slitlet was
over-corrected by 0.7% (0.3-0.4 pitch beyond the last centre) to 2.6% (beyond 0.4): the sky-only
slitlets' Stage 2 residual / sky there +3.6% / +6.9% (+-1.2 / 1.7%) while every other edge was
within 1 sigma of zero. Here the last half is DATA1X1 rows 500-1000 from that centre on.
* SCI, ERR /= shadow, VAR_* /= shadow^2 (``inverse`` multiplies); BARSHADOW = the shadow,
  BARSHDW = T. POINT slitlets: BARSHADOW = 1, BARSHDW = F. No reference: S_BARSHA = SKIPPED.
"""

import numpy as np

from ..errors import InputError
from . import _correction as corr
from ._call import accepts_files
from ._memo import Memo, digest, file_key, read_once

REFTYPES = ("barshadow",)
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): slitlets with wavelengths, slit-frame y and source type
NEEDS = ("assign_wcs", "extract_2d", "srctype")

SLIT_RATIO = 1.15          # official fallback of SLTYSCL (shutter pitch / open height)


@accepts_files
def run(model, refs, *, inverse=False, source_type=None):
    """Bar-shadow-correct the extended-source slitlets of a copy of ``model``."""
    out = model.copy(arrays=False)           # every array the step changes is replaced, not edited
    path = corr.ref_path(refs, "barshadow")
    if path is None or not out.mode.msa:
        corr.mark(out, "BARSHA", "SKIPPED")
        return out
    ref = read_once(read_barshadow, path)      # (not edited: a per-process copy)
    where = model.path or "barshadow"
    for slit in out.slits:
        state = str(slit.header.get("SHUTSTA", "") or "").strip()
        if corr.source_type(slit, out, source_type) == "POINT" or not state:
            slit["BARSHADOW"] = np.ones(slit.shape[-2:], np.float32)
            slit.header["BARSHDW"] = (False, "bar shadow corrected")
            continue
        for key in ("WAVELENGTH", "SLIT_Y"):
            if key not in slit:
                raise InputError(where, f"slitlet {slit.name} has no {key} array (run assign_wcs/extract_2d)")
        shadow = _memo_correction(ref, path, state, slit["SLIT_Y"], slit["WAVELENGTH"],
                                  float(slit.header.get("SLTYSCL", SLIT_RATIO)))
        corr.apply_correction(slit, shadow, inverse)
        slit["BARSHADOW"] = shadow.astype(np.float32)
        slit.header["BARSHDW"] = (True, "bar shadow corrected")
        corr.match_nans_and_flags(slit)
    corr.mark(out, "BARSHA", "COMPLETE")
    corr.record_ref(out, "barshadow", path)
    return out


# master_background_mos corrects every slitlet, then un-corrects its background, and the chain
# corrects the extended ones again: one computation of each slitlet's shadow (steps/_memo.py)
_MEMO = Memo(96 * 2 ** 20)


def _memo_correction(ref, path, state, slit_y, wavelength, yscale):
    key = (file_key(path), state, yscale, digest(slit_y), digest(wavelength))
    return _MEMO.cached(key, lambda: correction(ref, state, np.asarray(slit_y, float), np.asarray(wavelength, float),
                                                yscale))


def read_barshadow(path):
    """{"1x1", "1x3": (rows, columns) arrays, "crval1", "cdelt1" [um], "cdelt2"} of a BarshadowModel."""
    hdul = corr.open_reference(path, "barshadow", ("BarshadowModel",), ("DATA1X1", "DATA1X3"))
    h = hdul["DATA1X1"].header
    try:
        crval1, cdelt1, cdelt2 = (float(h[k]) for k in ("CRVAL1", "CDELT1", "CDELT2"))
    except KeyError as exc:
        raise InputError(path, f"DATA1X1 lacks WCS keyword {exc}") from None
    scale = 1e6 if abs(crval1) < 1e-4 else 1.0           # metres (official) -> um
    one, three = (np.asarray(hdul[k].data, np.float64) for k in ("DATA1X1", "DATA1X3"))
    if one.ndim != 2 or one.shape != three.shape or one.shape[0] % 2 != 1:
        raise InputError(path, "DATA1X1/DATA1X3 must be two (odd rows, wavelengths) arrays of one shape")
    return {"1x1": one, "1x3": three, "crval1": crval1 * scale, "cdelt1": cdelt1 * scale, "cdelt2": cdelt2}


def shadow_array(ref, state):
    """The slitlet's shadow assembled from half-shutter pieces (module docstring)."""
    one, three = ref["1x1"], ref["1x3"]
    half = one.shape[0] // 2                              # 500 rows: half a shutter pitch
    pieces = {("open", "open"): three[:half + 1], ("open", "closed"): one[half:],
              ("closed", "open"): one[:half + 1],
              ("closed", "closed"): np.full((half + 1, one.shape[1]), np.nanmin(one))}
    shadow = np.zeros((half * (len(state) + 1) + 1, one.shape[1]))
    shadow[:half + 1] = one[:half + 1]
    row, last = half, "open"
    for c in state[1:]:
        now = "closed" if c == "0" else "open"
        row = _append(shadow, pieces[(last, now)], row)
        last = now
    _append(shadow, one[half:], row)                      # the official takes rows half + 1.. (docstring)
    return shadow


def _append(shadow, piece, row):
    """Put ``piece`` at ``row`` (its first row averaged with the one there); the next seam row."""
    shadow[row] = 0.5 * (shadow[row] + piece[0])
    n = min(piece.shape[0] - 1, shadow.shape[0] - row - 1)
    shadow[row + 1:row + 1 + n] = piece[1:1 + n]
    return row + piece.shape[0] - 1


def correction(ref, state, slit_y, wavelength, yscale=SLIT_RATIO):
    """The bar shadow at each pixel (slit_y in open-shutter heights, wavelength [um])."""
    shadow = shadow_array(ref, state)
    per_pitch = 1.0 / ref["cdelt2"]                       # rows per shutter pitch
    top = (ref["1x1"].shape[0] // 2) * (len(state) + 1)    # the row one pitch above the last centre
    row = top - per_pitch * (len(state) - state.find("x")) + slit_y / yscale * per_pitch
    col = (wavelength - ref["crval1"]) / ref["cdelt1"]
    return bilinear(shadow, row, col)


def bilinear(image, row, col):
    """Bilinear interpolation of ``image`` at (row, col), coordinates clipped to the image (the
    edge value outside it); NaN coordinates give NaN."""
    bad = ~(np.isfinite(row) & np.isfinite(col))
    r = np.clip(np.where(bad, 0.0, row), 0, image.shape[0] - 1)
    c = np.clip(np.where(bad, 0.0, col), 0, image.shape[1] - 1)
    r0 = np.minimum(np.floor(r).astype(int), image.shape[0] - 2)
    c0 = np.minimum(np.floor(c).astype(int), image.shape[1] - 2)
    fr, fc = r - r0, c - c0
    # the four neighbours by flat index (np.take: faster than 2-D fancy indexing, same values)
    flat, ncol = np.ascontiguousarray(image).ravel(), image.shape[1]
    i00 = r0 * ncol + c0
    i10 = i00 + ncol
    out = ((1 - fr) * (1 - fc) * flat.take(i00) + (1 - fr) * fc * flat.take(i00 + 1)
           + fr * (1 - fc) * flat.take(i10) + fr * fc * flat.take(i10 + 1))
    return np.where(bad, np.nan, out)
