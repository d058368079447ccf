"""imprint_subtract: subtract the MSA imprint (leakcal) exposure from a NIRSpec full-frame image.

``imprints``: the association's imprint members (models). Which one, as the official step: a
single imprint is used as it is; of several, those with the science's BKGDTARG are kept, then the
one with the science's OBSERVTN and PATT_NUM, else the only one left; otherwise S_IMPRNT = SKIPPED.
SCI -= imprint SCI, DQ |= imprint DQ (the imprint cut to the science's subarray when both carry
SUBSTRT/SUBSIZE). S_IMPRNT = COMPLETE.

One departure: the imprint's variances are added to the science's (VAR_POISSON, VAR_RNOISE, and
ERR in quadrature). The official step leaves ERR unchanged, but the imprint is an exposure as noisy
as the science one (read noise dominates both for faint MOS targets), so its subtraction doubles the
variance: on the simulated MOS program the Stage 2 `_cal` chi^2 of sky pixels about zero was 1.56-1.67
with the official ERR.
"""

import logging

import numpy as np

from ..errors import InputError
from . import _correction as corr
from ._call import accepts_files

log = logging.getLogger(__name__)

REFTYPES = ()
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): the image must not be cut into slits yet
NEEDS = ("assign_wcs",)


def _true(value):
    return value is True or str(value).strip().upper() in ("T", "TRUE", "1")


def _same(a, b, key):
    return str(a.get(key, "")).strip() == str(b.get(key, "")).strip()


def choose(science, imprints):
    """The imprint model to subtract from ``science`` (official rule), or None."""
    if len(imprints) == 1:
        return imprints[0]
    p = science.primary
    kept = [m for m in imprints if _true(m.primary.get("BKGDTARG", False)) == _true(p.get("BKGDTARG", False))]
    match = [m for m in kept if _same(m.primary, p, "OBSERVTN") and _same(m.primary, p, "PATT_NUM")]
    if match:
        return match[0]
    return kept[0] if len(kept) == 1 else None


@accepts_files
def run(model, refs=None, *, imprints=()):
    """Subtract the matching imprint from a copy of the full-frame ``model``."""
    where = model.path or "imprint_subtract"
    out = model.copy(arrays=False)
    imprints = [imprints] if not isinstance(imprints, (list, tuple)) else list(imprints)
    chosen = choose(model, imprints) if imprints else None
    if chosen is None:
        if imprints:
            log.warning("%s: no imprint exposure matches; imprint_subtract skipped", where)
        corr.mark(out, "IMPRNT", "SKIPPED")
        return out
    if out.layout != "single" or len(out.slits) != 1:
        raise InputError(where, "imprint_subtract needs the full-frame image (run it before extract_2d)")
    img, imp = out.slits[0], chosen.slits[0]
    grid = _on_science_grid(imp, chosen.primary, model.primary, img.shape, chosen.path or "imprint")
    img["SCI"] = _combine(img["SCI"], grid["SCI"], np.subtract)
    img["DQ"] = np.asarray(img.get("DQ", np.zeros(img.shape, np.uint32)), np.uint32) | grid["DQ"]
    for key in ("ERR", "VAR_POISSON", "VAR_RNOISE"):
        if key in img and key in grid:
            img[key] = _quadrature(img[key], grid[key]) if key == "ERR" else _combine(img[key], grid[key], np.add)
    corr.mark(out, "IMPRNT", "COMPLETE")
    return out


def _combine(a, b, op):
    """float32 ``op(a, b)`` (subtract or add) as computed in float64 and rounded to float32.

    Two float32 operands: float32 arithmetic gives those very bits (a float64 result rounded to
    float32 is correctly rounded when 53 >= 2 * 24 + 2 bits), without the full-frame float64
    temporaries (on a 2048x2048 frame most of this step's time was their fresh pages)."""
    if a.dtype.kind == "f" and a.dtype.itemsize == 4 and b.dtype.kind == "f" and b.dtype.itemsize == 4:
        return op(a, b, dtype=np.float32)
    return op(np.asarray(a, np.float64), np.asarray(b, np.float64)).astype(np.float32)


def _quadrature(a, b, rows=128):
    """float32 sqrt(a**2 + b**2) computed in float64 (the square root needs it), by blocks of
    ``rows`` rows so the float64 temporaries stay small and reused."""
    a, b = np.broadcast_arrays(a, b)
    out = np.empty(a.shape, np.float32)
    flat_a, flat_b, flat_out = (x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x.reshape(1, -1) for x in (a, b, out))
    for r in range(0, flat_a.shape[0], rows):
        t = flat_a[r:r + rows].astype(np.float64)
        t *= t
        u = flat_b[r:r + rows].astype(np.float64)
        u *= u
        t += u
        np.sqrt(t, out=t)
        flat_out[r:r + rows] = t
    return out


def _on_science_grid(imp, imp_primary, sci_primary, shape, where):
    """{SCI, DQ, and ERR / VAR_* where the imprint has them} of the imprint on the science's pixels."""
    sci = np.asarray(imp["SCI"])
    arrays = {"SCI": sci, "DQ": np.asarray(imp.get("DQ", np.zeros(sci.shape, np.uint32)), np.uint32)}
    arrays.update({k: np.asarray(imp[k]) for k in ("ERR", "VAR_POISSON", "VAR_RNOISE") if k in imp})
    if sci.shape[-2:] == tuple(shape[-2:]):
        return arrays
    # different subarrays: the science's window of the imprint (both 1-based SUBSTRT)
    try:
        dx = int(sci_primary["SUBSTRT1"]) - int(imp_primary["SUBSTRT1"])
        dy = int(sci_primary["SUBSTRT2"]) - int(imp_primary["SUBSTRT2"])
    except (KeyError, TypeError, ValueError):
        raise InputError(where, f"imprint shape {sci.shape} differs from the science {shape} "
                                "and SUBSTRT1/2 do not place it") from None
    ny, nx = shape[-2:]
    if dx < 0 or dy < 0 or dy + ny > sci.shape[-2] or dx + nx > sci.shape[-1]:
        raise InputError(where, "the imprint exposure does not cover the science subarray")
    return {k: a[..., dy:dy + ny, dx:dx + nx] for k, a in arrays.items()}
