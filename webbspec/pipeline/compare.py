"""`webbspec compare A B`: side-by-side numbers for two products of the same kind.

Ours against the official pipeline's, or two runs of ours. Ratios are A/B on A's wavelengths
(B interpolated), medians over the central 80% of the common wavelength range.

* s2d: per-wavelength median-down-the-slit surface brightness ratio; ratio of the column sums of
  SCI*PIXAR_SR over the stretch of sky both cover (rows placed on the sky with each product's
  gwcs, else all rows); wavelength grid offset in pixels.
* x1d / c1d: FLUX and FLUX_ERROR (c1d: ERROR) ratios, wavelength offset in pixels; spectra paired
  by SOURCEID when both have it, else by position.
* cal / crf: OUTLIER flag counts per exposure side by side, and the pixels both flag.

Wavelength offset: B's grid is aligned to A's by an integer column shift, then the median of
(fractional column of A's wavelength in B - aligned column) is the sub-pixel offset.
"""

import argparse
import json
import logging
import sys
import warnings

import numpy as np

from ..io import datamodels
from .. import dq as dqbits
from ..io.datamodels import SpecModel
from ..errors import InputError

__all__ = ["compare", "report", "main", "kind_of"]

log = logging.getLogger(__name__)


def kind_of(model):
    """'x1d', 'c1d', 's2d' or 'crf' (any multi-exposure or slit product with DQ) of a product."""
    if isinstance(model, SpecModel):
        return "x1d" if model.kind == "EXTRACT1D" else "c1d"
    s = model.slits[0]
    if "WHT" in s or (str(model.primary.get("S_RESAMP", "")).upper() == "COMPLETE" and "DQ" not in s):
        return "s2d"
    return "crf"


def _central(w, frac=0.8):
    """Mask of the central ``frac`` of the wavelength range of finite w."""
    good = np.isfinite(w)
    if not good.any():
        return good
    lo, hi = np.nanmin(w), np.nanmax(w)
    pad = 0.5 * (1 - frac) * (hi - lo)
    return good & (w >= lo + pad) & (w <= hi - pad)


def _ratio_median(wa, fa, wb, fb):
    """Median of fa / fb(wa) over the central 80% of the common wavelength range."""
    wa, fa, wb, fb = (np.asarray(x, float) for x in (wa, fa, wb, fb))
    okb = np.isfinite(wb) & np.isfinite(fb)
    if okb.sum() < 2:
        return np.nan
    order = np.argsort(wb[okb])
    wbs, fbs = wb[okb][order], fb[okb][order]
    inside = np.isfinite(wa) & (wa >= wbs[0]) & (wa <= wbs[-1])
    common = np.where(inside, wa, np.nan)
    sel = _central(common) & np.isfinite(fa)
    if not sel.any():
        return np.nan
    fbi = np.interp(wa[sel], wbs, fbs)
    with np.errstate(all="ignore"):
        r = fa[sel] / fbi
    r = r[np.isfinite(r)]
    return float(np.median(r)) if r.size else np.nan


def _wave_offset(wa, wb):
    """(integer column shift, sub-pixel offset) of B's wavelength grid relative to A's."""
    wa, wb = np.asarray(wa, float), np.asarray(wb, float)
    ia, ib = np.flatnonzero(np.isfinite(wa)), np.flatnonzero(np.isfinite(wb))
    if ia.size < 2 or ib.size < 2:
        return 0, np.nan
    order = np.argsort(wb[ib])
    fb = np.interp(wa[ia], wb[ib][order], ib[order].astype(float), left=np.nan, right=np.nan)
    sel = _central(np.where(np.isfinite(fb), wa[ia], np.nan))
    if not sel.any():
        return 0, np.nan
    d = fb[sel] - ia[sel]
    shift = int(np.round(np.median(d)))
    return shift, float(np.median(d - shift))


def _pair_spectra(a, b):
    ida = [sp.header.get("SOURCEID") for sp in a.spectra]
    idb = [sp.header.get("SOURCEID") for sp in b.spectra]
    if None not in ida and None not in idb and len(set(ida)) == len(ida):
        return [(sa, b.spectra[idb.index(i)]) for sa, i in zip(a.spectra, ida) if i in idb]
    return list(zip(a.spectra, b.spectra))


def _compare_spec(a, b):
    err = "FLUX_ERROR" if a.kind == "EXTRACT1D" else "ERROR"
    out = []
    for sa, sb in _pair_spectra(a, b):
        ta, tb = sa.table, sb.table
        shift, off = _wave_offset(ta["WAVELENGTH"], tb["WAVELENGTH"])
        out.append({
            "sourceid": sa.header.get("SOURCEID"),
            "flux_ratio": _ratio_median(ta["WAVELENGTH"], ta["FLUX"], tb["WAVELENGTH"], tb["FLUX"]),
            "error_ratio": _ratio_median(ta["WAVELENGTH"], ta[err], tb["WAVELENGTH"], tb[err]),
            "wave_shift_pix": shift, "wave_offset_pix": off,
            "n_a": int(len(ta)), "n_b": int(len(tb)),
        })
    return out


def _row_positions(path, shape):
    """Tangent-plane position [arcsec] along the slit of each row (central column), or None."""
    try:
        from stdatamodels.jwst import datamodels as dm

        with dm.open(path) as m:
            wcs = m.meta.wcs
            if wcs is None:
                return None
            ny, nx = shape
            y = np.arange(ny, dtype=float)
            ra, dec, _ = wcs(np.full(ny, (nx - 1) / 2.0), y, with_bounding_box=False)
            return np.asarray(ra, float), np.asarray(dec, float)
    except Exception as exc:   # a product without a usable gwcs: fall back to all rows
        log.warning("%s: no usable gwcs (%s); using all rows", path, exc)
        return None


def _common_rows(pa, pb, na, nb):
    """Row masks of A and B restricted to the stretch of sky both cover."""
    if pa is None or pb is None:
        return np.ones(na, bool), np.ones(nb, bool)
    from ..io.skycoords import radec_to_xieta

    ra0, dec0 = float(np.nanmedian(pa[0])), float(np.nanmedian(pa[1]))
    xa, ya = radec_to_xieta(*pa, ra0, dec0)
    xb, yb = radec_to_xieta(*pb, ra0, dec0)
    # the slit axis: direction of A's rows
    d = np.array([np.nanmedian(np.diff(xa)), np.nanmedian(np.diff(ya))])
    d /= np.hypot(*d)
    sa, sb = xa * d[0] + ya * d[1], xb * d[0] + yb * d[1]
    step = np.nanmedian(np.abs(np.diff(sa))) / 2
    lo = max(np.nanmin(sa), np.nanmin(sb)) - step
    hi = min(np.nanmax(sa), np.nanmax(sb)) + step
    return (sa >= lo) & (sa <= hi), (sb >= lo) & (sb <= hi)


def _pair_slits(a, b):
    """Slits paired by name when each side's names are unique, else by position."""
    na, nb = [s.name for s in a.slits], [s.name for s in b.slits]
    if None not in na and len(set(na)) == len(na) and len(set(nb)) == len(nb) and set(na) & set(nb):
        return [(sa, b.slits[nb.index(sa.name)]) for sa in a.slits if sa.name in nb]
    return list(zip(a.slits, b.slits))


def _compare_s2d(a, b):
    out = []
    for k, (sa, sb) in enumerate(_pair_slits(a, b)):
        wa = np.nanmedian(np.asarray(sa["WAVELENGTH"], float), axis=0)
        wb = np.nanmedian(np.asarray(sb["WAVELENGTH"], float), axis=0)
        ma, mb = _common_rows(_row_positions(a.path, sa.shape) if k == 0 else None,
                              _row_positions(b.path, sb.shape) if k == 0 else None,
                              sa.shape[0], sb.shape[0])
        with np.errstate(all="ignore"):
            med_a = np.nanmedian(np.asarray(sa["SCI"], float), axis=0)
            med_b = np.nanmedian(np.asarray(sb["SCI"], float), axis=0)
        sum_a = np.nansum(np.asarray(sa["SCI"], float)[ma], axis=0) * float(sa.header.get("PIXAR_SR", 1.0))
        sum_b = np.nansum(np.asarray(sb["SCI"], float)[mb], axis=0) * float(sb.header.get("PIXAR_SR", 1.0))
        shift, off = _wave_offset(wa, wb)
        out.append({
            "slit": sa.name, "shape_a": list(sa.shape), "shape_b": list(sb.shape),
            "sb_median_ratio": _ratio_median(wa, med_a, wb, med_b),
            "sum_ratio": _ratio_median(wa, sum_a, wb, sum_b),
            "common_rows_a": int(ma.sum()), "common_rows_b": int(mb.sum()),
            "wave_shift_pix": shift, "wave_offset_pix": off,
        })
    return out


def _outlier_mask(slit):
    return (np.asarray(slit["DQ"]) & dqbits.OUTLIER) != 0 if "DQ" in slit else None


def _compare_crf(a, b):
    """Per exposure (paired by position): OUTLIER counts of A and B, and how many pixels both flag
    (None when the exposures' cutouts differ in shape)."""
    out = []
    for i in range(max(len(a.slits), len(b.slits))):
        ma = _outlier_mask(a.slits[i]) if i < len(a.slits) else None
        mb = _outlier_mask(b.slits[i]) if i < len(b.slits) else None
        both = int(np.count_nonzero(ma & mb)) if (ma is not None and mb is not None
                                                   and ma.shape == mb.shape) else None
        out.append({"exposure": i,
                    "outliers_a": int(np.count_nonzero(ma)) if ma is not None else 0,
                    "outliers_b": int(np.count_nonzero(mb)) if mb is not None else 0,
                    "outliers_both": both})
    return out


def compare(a_path, b_path):
    """Numbers comparing two products of the same kind (see module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns are expected
        return _compare(a_path, b_path)


def _compare(a_path, b_path):
    a, b = datamodels.read(a_path), datamodels.read(b_path)
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        raise InputError(b_path, f"is a {kb} product, {a_path} is a {ka}: nothing to compare")
    if ka in ("x1d", "c1d"):
        items = _compare_spec(a, b)
    elif ka == "s2d":
        items = _compare_s2d(a, b)
    else:
        items = _compare_crf(a, b)
    return {"kind": ka, "a": str(a_path), "b": str(b_path), "items": items}


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4f}" if np.isfinite(v) else "nan"
    return str(v)


def report(result):
    """A printable report of :func:`compare`'s result."""
    lines = [f"{result['kind']}: A = {result['a']}", f"{' ' * len(result['kind'])}  B = {result['b']}"]
    if not result["items"]:
        lines.append("  nothing in common")
    for item in result["items"]:
        lines.append("  " + "  ".join(f"{k}={_fmt(v)}" for k, v in item.items()))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="webbspec compare",
                                description="Compare two products of the same kind (A/B ratios).")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = p.parse_args(argv)
    try:
        result = compare(args.a, args.b)
    except InputError as exc:
        print(f"webbspec: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1, default=str) if args.json else report(result))
    return 0
