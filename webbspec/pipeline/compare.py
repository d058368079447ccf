"""`webbspec compare A B`: side-by-side numbers for two products of the same kind.

Ours against the official pipeline's, or two runs of ours. Ratios are A/B on A's wavelengths
(B interpolated), medians over the central 80% of the common wavelength range.

* s2d: per-wavelength median-down-the-slit surface brightness ratio; ratio of the column sums of
  SCI*PIXAR_SR over the stretch of sky both cover (rows placed on the sky with each slit's gwcs,
  else all rows); wavelength grid offset in pixels; where B's rows fall among A's on the sky (an
  extended source's fixed-row extraction aperture depends on it).
* x1d / c1d: FLUX and FLUX_ERROR (c1d: ERROR) ratios, wavelength offset in pixels; spectra paired
  by SOURCEID when both have it, else by position.
* cal (Stage 2: the slits of one exposure, paired by name) / crf (Stage 3 ``_cal`` or ``_crf``:
  the exposures of one source, paired by position): OUTLIER flag counts side by side, and the
  pixels both flag; cal also the median SCI and ERR ratios on the detector pixels both cutouts
  hold (SLTSTRT1/2) and the DO_NOT_USE pixels that differ there (e.g. MOS slitlets, ours and
  the official's from the same `_rate`).

Wavelength offset: B's grid is aligned to A's by an integer column shift, then the median of
(fractional column of A's wavelength in B - aligned column) is the sub-pixel offset.

Sky only: a slit or spectrum whose median |signal| is below ``SKY_SNR`` times its median error
(s2d: the per-wavelength sums over the common rows; x1d: FLUX), or a background slit ("BKG" in its
slit or source name, as MOS names them). A ratio of two such is noise over noise: the report says
so instead of printing it (the numbers stay in the result, with ``sky_only`` and ``note``).
Two products with no slit, source or needed extension in common are an :class:`InputError`.
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

__all__ = ["compare", "report", "main", "parser", "kind_of", "SKY_SNR"]

log = logging.getLogger(__name__)

SKY_SNR = 3.0   # median |signal| below this many times its error: sky only (no signal to compare)


def kind_of(model):
    """'x1d', 'c1d', 's2d', 'crf' (Stage 3 MultiExposureModel `_cal`/`_crf`: exposures of one
    source) or 'cal' (any other slit product: the slits of one exposure) of a product."""
    if isinstance(model, SpecModel):
        return "x1d" if model.kind == "EXTRACT1D" else "c1d"
    s = model.slits[0]
    if "WHT" in s or (str(model.primary.get("S_RESAMP", "")).upper() == "COMPLETE" and "DQ" not in s):
        return "s2d"
    return "crf" if str(model.primary.get("DATAMODL", "")) == "MultiExposureModel" else "cal"


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


def _is_background(header):
    """A background slit: "BKG" in its slit or source name (as NIRSpec MOS names them)."""
    return any("BKG" in str(header.get(k, "") or "").upper() for k in ("SLTNAME", "SRCNAME"))


def _snr(w, signal, err):
    """Median |signal| over its median error, over the central 80% of the wavelengths (nan: no error)."""
    w, signal, err = (np.asarray(x, float) for x in (w, signal, err))
    sel = _central(np.where(np.isfinite(signal) & np.isfinite(err), w, np.nan))
    if not sel.any():
        return np.nan
    e = float(np.median(err[sel]))
    return float(np.median(np.abs(signal[sel])) / e) if e > 0 else np.nan


def _sky(item, hdr_a, hdr_b):
    """``item`` with ``sky_only`` (the sides, "A"/"B", holding sky only) and ``note`` (why)."""
    why = {}
    for side, hdr in (("A", hdr_a), ("B", hdr_b)):
        snr = item[f"snr_{side.lower()}"]
        if _is_background(hdr):
            why[side] = "a background slit"
        elif snr < SKY_SNR:      # nan (no error to judge by): not sky
            why[side] = f"median |signal| {snr:.2f} x its error, below {SKY_SNR:g}"
    item["sky_only"] = list(why)
    if len(why) == 2:
        item["note"] = (f"sky only in A ({why['A']}) and in B ({why['B']}): their ratio is noise over "
                        "noise about zero, not a flux comparison")
    elif why:
        (side, reason), = why.items()
        item["note"] = f"sky only in {side} ({reason}), not in {'B' if side == 'A' else 'A'}"
    else:
        item["note"] = ""
    return item


def _pair_spectra(a, b):
    """Spectra paired by SOURCEID when both sides have one (A's unique), else by position."""
    ida = [sp.header.get("SOURCEID") for sp in a.spectra]
    idb = [sp.header.get("SOURCEID") for sp in b.spectra]
    if None not in ida and None not in idb and len(set(ida)) == len(ida):
        return [(sa, b.spectra[idb.index(i)]) for sa, i in zip(a.spectra, ida) if i in idb]
    return list(zip(a.spectra, b.spectra))


def _index(seq, obj):
    """Position of ``obj`` itself in ``seq`` (``list.index`` would compare the arrays)."""
    return next(i for i, x in enumerate(seq) if x is obj)


def _spec_label(model, sp):
    sid = sp.header.get("SOURCEID")
    return f"source {sid}" if sid is not None else f"spectrum {_index(model.spectra, sp) + 1}"


def _compare_spec(a, b):
    err = "FLUX_ERROR" if a.kind == "EXTRACT1D" else "ERROR"
    out = []
    for sa, sb in _pair_spectra(a, b):
        ta, tb = sa.table, sb.table
        shift, off = _wave_offset(ta["WAVELENGTH"], tb["WAVELENGTH"])
        out.append(_sky({
            "sourceid": sa.header.get("SOURCEID"), "sourceid_b": sb.header.get("SOURCEID"),
            "label_a": _spec_label(a, sa), "label_b": _spec_label(b, sb),
            "flux_ratio": _ratio_median(ta["WAVELENGTH"], ta["FLUX"], tb["WAVELENGTH"], tb["FLUX"]),
            "error_ratio": _ratio_median(ta["WAVELENGTH"], ta[err], tb["WAVELENGTH"], tb[err]),
            "wave_shift_pix": shift, "wave_offset_pix": off,
            "n_a": int(len(ta)), "n_b": int(len(tb)),
            "snr_a": _snr(ta["WAVELENGTH"], ta["FLUX"], ta[err]),
            "snr_b": _snr(tb["WAVELENGTH"], tb["FLUX"], tb[err]),
        }, sa.header, sb.header))
    return out


def _row_positions(path, shapes):
    """Per slit of the product (``shapes``: their (ny, nx)): (RA, Dec) [deg] of each row at the
    central column from the slit's gwcs (a single-slit product: the model's), or None. One open of
    the file for all slits (building the gwcs is the slow part)."""
    try:
        from stdatamodels.jwst import datamodels as dm

        with dm.open(path) as m:
            slits = list(getattr(m, "slits", None) or [])
            wcss = [s.meta.wcs for s in slits] if slits else [m.meta.wcs]
            out = []
            for wcs, (ny, nx) in zip(wcss, shapes):
                if wcs is None:
                    out.append(None)
                    continue
                ra, dec, _ = wcs(np.full(ny, (nx - 1) / 2.0), np.arange(ny, dtype=float), with_bounding_box=False)
                out.append((np.asarray(ra, float), np.asarray(dec, float)))
            return out + [None] * (len(shapes) - len(out))
    except Exception as exc:   # a product without a usable gwcs: fall back to all rows
        log.warning("%s: no usable gwcs (%s); using all rows", path, exc)
        return [None] * len(shapes)


def _row_offset(pa, pb):
    """Where B's rows fall among A's: median over B's rows r of (A's fractional row at B's row r's
    sky position - r); nan without both positions. 0: the two grids sample the same sky."""
    if pa is None or pb is None or len(pa[0]) < 2:
        return np.nan
    from ..io.skycoords import radec_to_xieta

    ra0, dec0 = float(np.nanmedian(pa[0])), float(np.nanmedian(pa[1]))
    xa, ya = radec_to_xieta(*pa, ra0, dec0)
    xb, yb = radec_to_xieta(*pb, ra0, dec0)
    d = np.array([np.nanmedian(np.diff(xa)), np.nanmedian(np.diff(ya))])
    step = np.hypot(*d)
    if not np.isfinite(step) or step == 0:
        return np.nan
    sa, sb = (xa * d[0] + ya * d[1]) / step ** 2, (xb * d[0] + yb * d[1]) / step ** 2   # in A's rows
    row_a = np.arange(sa.size, dtype=float)
    ok = np.isfinite(sa)
    if ok.sum() < 2:
        return np.nan
    fit = np.polyfit(sa[ok], row_a[ok], 1)            # A's row of an along-slit position
    return float(np.nanmedian(np.polyval(fit, sb) - np.arange(sb.size)))


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
    """Slits paired by name when each side's names are unique (the slits of one exposure; no
    common name: no pairs), else, or when each side has one slit, by position (the exposures of
    one source)."""
    na, nb = [s.name for s in a.slits], [s.name for s in b.slits]
    unique = all(na) and all(nb) and len(set(na)) == len(na) and len(set(nb)) == len(nb)
    if unique and not (len(na) == len(nb) == 1):
        return [(sa, b.slits[nb.index(sa.name)]) for sa in a.slits if sa.name in nb]
    return list(zip(a.slits, b.slits))


def _slit_label(model, slit, kind):
    if kind == "crf":
        return f"exposure {_index(model.slits, slit) + 1} (slit {slit.name or '?'})"
    return f"slit {slit.name}" if slit.name else f"slit {_index(model.slits, slit) + 1}"


def _column_sum(slit, rows):
    """Per-wavelength sum of SCI x PIXAR_SR over ``rows`` and its error (nan without ERR)."""
    pixar = float(slit.header.get("PIXAR_SR", 1.0))
    total = np.nansum(np.asarray(slit["SCI"], float)[rows], axis=0) * pixar
    if "ERR" not in slit:
        return total, np.full(total.shape, np.nan)
    return total, np.sqrt(np.nansum(np.asarray(slit["ERR"], float)[rows] ** 2, axis=0)) * pixar


def _compare_s2d(a, b):
    out = []
    pos_a = _row_positions(a.path, [s.shape for s in a.slits])
    pos_b = _row_positions(b.path, [s.shape for s in b.slits])
    for sa, sb in _pair_slits(a, b):
        for m, s in ((a, sa), (b, sb)):
            if "WAVELENGTH" not in s:
                raise InputError(m.path, f"{_slit_label(m, s, 's2d')} has no WAVELENGTH extension")
        wa = np.nanmedian(np.asarray(sa["WAVELENGTH"], float), axis=0)
        wb = np.nanmedian(np.asarray(sb["WAVELENGTH"], float), axis=0)
        pa, pb = pos_a[_index(a.slits, sa)], pos_b[_index(b.slits, sb)]
        ma, mb = _common_rows(pa, pb, sa.shape[0], sb.shape[0])
        with np.errstate(all="ignore"):
            med_a = np.nanmedian(np.asarray(sa["SCI"], float), axis=0)
            med_b = np.nanmedian(np.asarray(sb["SCI"], float), axis=0)
        sum_a, err_a = _column_sum(sa, ma)
        sum_b, err_b = _column_sum(sb, mb)
        shift, off = _wave_offset(wa, wb)
        out.append(_sky({
            "slit": sa.name, "slit_b": sb.name,
            "label_a": _slit_label(a, sa, "s2d"), "label_b": _slit_label(b, sb, "s2d"),
            "shape_a": list(sa.shape), "shape_b": list(sb.shape),
            "sb_median_ratio": _ratio_median(wa, med_a, wb, med_b),
            "sum_ratio": _ratio_median(wa, sum_a, wb, sum_b),
            "common_rows_a": int(ma.sum()), "common_rows_b": int(mb.sum()),
            "wave_shift_pix": shift, "wave_offset_pix": off, "row_offset_pix": _row_offset(pa, pb),
            "snr_a": _snr(wa, sum_a, err_a), "snr_b": _snr(wb, sum_b, err_b),
        }, sa.header, sb.header))
    return out


def _outlier_mask(slit):
    return (np.asarray(slit["DQ"]) & dqbits.OUTLIER) != 0 if "DQ" in slit else None


def _detector_overlap(sa, sb):
    """Index slices (A's, B's) of the detector pixels both cutouts hold (placed by SLTSTRT1/2,
    1-based, when both have them; else the same shape at the same place), or None."""
    keys = ("SLTSTRT1", "SLTSTRT2")
    if all(k in s.header for k in keys for s in (sa, sb)):
        (xa, ya), (xb, yb) = [[int(s.header[k]) - 1 for k in keys] for s in (sa, sb)]
    elif sa.shape == sb.shape:
        xa = ya = xb = yb = 0
    else:
        return None
    (nya, nxa), (nyb, nxb) = sa.shape[-2:], sb.shape[-2:]
    x0, x1, y0, y1 = max(xa, xb), min(xa + nxa, xb + nxb), max(ya, yb), min(ya + nya, yb + nyb)
    if x1 <= x0 or y1 <= y0:
        return None
    return ((slice(y0 - ya, y1 - ya), slice(x0 - xa, x1 - xa)),
            (slice(y0 - yb, y1 - yb), slice(x0 - xb, x1 - xb)))


def _pixel_ratios(sa, sb):
    """Stage 2 `_cal` slits of one exposure on the detector pixels both hold: median SCI and ERR
    ratios A/B (where both are finite and B non-zero; the same input's noise on both sides, so a
    ratio, not noise over noise), the common pixels and the DO_NOT_USE pixels that differ."""
    where = _detector_overlap(sa, sb)
    none = {"sci_ratio": np.nan, "err_ratio": np.nan, "pixels": 0, "dnu_differ": None}
    if where is None or sa["SCI"].ndim != 2 or sb["SCI"].ndim != 2:
        return none
    (ia, ib) = where
    res = dict(none, pixels=int(np.asarray(sa["SCI"])[ia].size))
    for k, key in (("SCI", "sci_ratio"), ("ERR", "err_ratio")):
        if k in sa and k in sb:
            x, y = np.asarray(sa[k], float)[ia], np.asarray(sb[k], float)[ib]
            ok = np.isfinite(x) & np.isfinite(y) & (y != 0)
            res[key] = float(np.median(x[ok] / y[ok])) if ok.any() else np.nan
    if "DQ" in sa and "DQ" in sb:
        da, db = ((np.asarray(s["DQ"])[i] & dqbits.DO_NOT_USE) != 0 for s, i in ((sa, ia), (sb, ib)))
        res["dnu_differ"] = int(np.count_nonzero(da != db))
    return res


def _compare_crf(a, b, kind):
    """Per exposure (crf, paired by position) or slit (cal, by name): OUTLIER counts of A and B
    (None without DQ), and how many pixels both flag (None when the cutouts differ in shape);
    cal: also the SCI / ERR ratios on the common detector pixels (:func:`_pixel_ratios`)."""
    out = []
    for sa, sb in _pair_slits(a, b):
        ma, mb = _outlier_mask(sa), _outlier_mask(sb)
        both = int(np.count_nonzero(ma & mb)) if (ma is not None and mb is not None
                                                   and ma.shape == mb.shape) else None
        item = {"slit": sa.name, "slit_b": sb.name,
                "label_a": _slit_label(a, sa, kind), "label_b": _slit_label(b, sb, kind),
                "outliers_a": int(np.count_nonzero(ma)) if ma is not None else None,
                "outliers_b": int(np.count_nonzero(mb)) if mb is not None else None,
                "outliers_both": both}
        if kind == "crf":
            item = {"exposure": _index(a.slits, sa) + 1, **item}     # counted from 1, as in its label
        else:
            item.update(_pixel_ratios(sa, sb))
        out.append(item)
    if out and all(i["outliers_a"] is None or i["outliers_b"] is None for i in out):
        side = b.path if any(i["outliers_a"] is not None for i in out) else a.path
        raise InputError(side, "no DQ extension: no outlier flags to compare")
    return out


def compare(a_path, b_path):
    """Numbers comparing two products of the same kind (see module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN columns are expected
        return _compare(a_path, b_path)


def _short(labels, n=6):
    return ", ".join(labels[:n]) + (f" and {len(labels) - n} more" if len(labels) > n else "")


def _compare(a_path, b_path):
    a, b = datamodels.read(a_path), datamodels.read(b_path)
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        raise InputError(b_path, f"is a {kb} product, {a_path} is a {ka}: nothing to compare")
    if ka in ("x1d", "c1d"):
        items, unit = _compare_spec(a, b), "source"
        all_a, all_b = [_spec_label(a, s) for s in a.spectra], [_spec_label(b, s) for s in b.spectra]
    else:
        items = _compare_s2d(a, b) if ka == "s2d" else _compare_crf(a, b, ka)
        unit = "exposure" if ka == "crf" else "slit"
        all_a, all_b = [_slit_label(a, s, ka) for s in a.slits], [_slit_label(b, s, ka) for s in b.slits]
    if not items:
        raise InputError(b_path, f"no {unit} in common with {a_path} (A: {_short(all_a) or 'none'}; "
                                 f"B: {_short(all_b) or 'none'}): nothing to compare")
    return {"kind": ka, "a": str(a_path), "b": str(b_path), "items": items,
            "only_a": [x for x in all_a if x not in {i["label_a"] for i in items}],
            "only_b": [x for x in all_b if x not in {i["label_b"] for i in items}]}


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4f}" if np.isfinite(v) else "nan"
    return str(v)


_HEADINGS = {
    "x1d": "x1d spectra: FLUX and FLUX_ERROR, median of A/B",
    "c1d": "c1d spectra: FLUX and ERROR, median of A/B",
    "s2d": "s2d slits: surface brightness and summed flux, median of A/B",
    "cal": "cal (the slits of one exposure, paired by name): OUTLIER flags, SCI and ERR median A/B",
    "crf": "cal/crf (the exposures of one source, paired by position): OUTLIER flags",
}


def _item_line(kind, item):
    label = item["label_a"] if item["label_a"] == item["label_b"] else \
        f"{item['label_a']} (A) with {item['label_b']} (B)"
    if kind in ("cal", "crf"):
        n = {k: "no DQ" if item[k] is None else item[k] for k in ("outliers_a", "outliers_b")}
        both = "" if item["outliers_both"] is None else f", both {item['outliers_both']}"
        pixels = ""
        if item.get("pixels"):
            dnu = "" if item["dnu_differ"] is None else f", DO_NOT_USE differs on {item['dnu_differ']}"
            pixels = (f"; on the {item['pixels']} detector pixels both hold: SCI A/B {_fmt(item['sci_ratio'])}, "
                      f"ERR A/B {_fmt(item['err_ratio'])}{dnu}")
        return f"{label}: OUTLIER flags A {n['outliers_a']}, B {n['outliers_b']}{both}{pixels}"
    wave = (f"wavelength grids: B's shifted {item['wave_shift_pix']} columns from A's, then "
            f"{_fmt(item['wave_offset_pix'])} pixel apart")
    if np.isfinite(item.get("row_offset_pix", np.nan)):
        wave += f"; B's rows fall {_fmt(item['row_offset_pix'])} rows from A's on the sky"
    if item["sky_only"] == ["A", "B"]:        # no ratio: it would be read as a result
        return f"{label}: {item['note']}; {wave}"
    if kind == "s2d":
        ratios = (f"surface brightness (median down the slit) A/B {_fmt(item['sb_median_ratio'])}, "
                  f"SCI x PIXAR_SR summed over the common sky (rows A {item['common_rows_a']}, "
                  f"B {item['common_rows_b']}) A/B {_fmt(item['sum_ratio'])}")
    else:
        err = "FLUX_ERROR" if kind == "x1d" else "ERROR"
        ratios = (f"FLUX A/B {_fmt(item['flux_ratio'])}, {err} A/B {_fmt(item['error_ratio'])} "
                  f"(rows A {item['n_a']}, B {item['n_b']})")
    return f"{label}: {ratios}; {wave}" + (f"; {item['note']}" if item["note"] else "")


def report(result):
    """A printable report of :func:`compare`'s result."""
    kind = result["kind"]
    lines = [f"{_HEADINGS[kind]}", f"  A = {result['a']}", f"  B = {result['b']}"]
    if kind in ("x1d", "c1d", "s2d"):
        lines.append("  (medians over the central 80% of the common wavelength range, B interpolated "
                     "onto A's wavelengths)")
    if not result["items"]:
        lines.append("  nothing in common")
    lines += ["  " + _item_line(kind, item) for item in result["items"]]
    for side in ("a", "b"):
        if result.get(f"only_{side}"):
            lines.append(f"  not compared, in {side.upper()} only: {_short(result[f'only_{side}'], 20)}")
    return "\n".join(lines)


def parser():
    """The arguments of ``webbspec compare``."""
    p = argparse.ArgumentParser(
        prog="webbspec compare", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compare two products of the same kind (x1d, c1d, s2d, cal or crf), e.g. ours (A) "
                    "and the official pipeline's (B):\nA/B ratios of the fluxes and errors, wavelength "
                    "offsets, outlier flags side by side. Exits 2 when they have nothing in common.",
        epilog="""\
Example:
  webbspec compare demo/webbspec/spec2/jw01234001001_03101_00001_nrs1_x1d.fits \\
      official/jw01234001001_03101_00001_nrs1_x1d.fits""")
    p.add_argument("a", help="product A (the numerator of the ratios)")
    p.add_argument("b", help="product B, of the same kind")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        result = compare(args.a, args.b)
    except InputError as exc:
        print(f"webbspec: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1, default=str) if args.json else report(result))
    return 0
