"""photom: convert count rates to flux density (MJy per pixel, POINT) or surface brightness (MJy/sr).

References (official formats): ``photom`` = NrsFsPhotomModel (PHOTOM table: filter, grating,
slit, photmj, uncertainty, nelem, wavelength [um or m], relresponse, reluncertainty; MOS files
have no slit column) and ``area`` = NirspecSlitAreaModel (AREA table: slit_id, pixarea
[arcsec^2]). As the official step for NIRSpec slits:

* the row whose filter and grating equal the exposure's FILTER / GRATING (and slit the slit's
  name, where the table has that column); none or several -> InputError naming the file;
* PIXAR_A2 = the slit's pixarea, PIXAR_SR = PIXAR_A2 * (pi/648000)^2 (without an area reference:
  the slit's own PIXAR_SR, else the photom file's; a POINT source needs none);
* conv = photmj [/ PIXAR_SR unless POINT] * interp(WAVELENGTH_pix, wavelength, relresponse)
  (nelem-trimmed); NaN (no wavelength, outside the table) -> conv 0 and DO_NOT_USE (NaN after the
  match-NaNs rule). SCI, ERR *= conv; VAR_* *= conv^2 (``inverse`` divides, BUNIT "DN/s").

Slit keywords: BUNIT ("MJy" POINT, else "MJy/sr"), PIXAR_SR, PIXAR_A2, PHOTMJSR (the scalar
factor) and PHOTUJA2. POINT slits also carry PHOTOM_PS (the conversion applied) and PHOTOM_UN
(the uniform-source one, / PIXAR_SR), which master_background uses.

MOS slitlets (the mode's ``msa`` flag): the PHOTOM row of the filter and grating
(NrsMosPhotomModel), and the area reference is a NirspecMosAreaModel (AREA table: quadrant, shutter_x
= row, shutter_y = column, pixarea), matched on the slitlet's reference shutter (MSAQUAD and
XCEN/YCEN, or SHUTTRID). A shutter the table lacks (the official step silently takes 1 sr) is a
warning naming the slitlet, and the photom file's nominal pixel area is used.

``apply_time_correction``: our references carry no TIMECOEFF tables, so there is nothing to
apply; the parameter is accepted for compatibility with the official step.
"""

import logging

import numpy as np

from ..errors import InputError
from ..modes import known_mode
from ..instruments.nirspec import mos_table
from ..instruments.nirspec.ifu import EXP_TYPE as NRS_IFU
from ..instruments.miri import is_mrs
from . import _correction as corr
from ._call import accepts_files

log = logging.getLogger(__name__)

REFTYPES = ("photom", "area")
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): the slits' wavelengths
NEEDS = ("assign_wcs", "extract_2d")

A2_TO_SR = (np.pi / 648000.0) ** 2
MJSR_TO_UJA2 = 1e12 * A2_TO_SR    # 1 MJy/sr in uJy/arcsec^2
_PHOTOM_MODELS = ("NrsFsPhotomModel", "NrsMosPhotomModel")


@accepts_files
def run(model, refs, *, inverse=False, source_type=None, apply_time_correction=True):
    """Flux-calibrate ``model`` (a copy); S_PHOTOM = SKIPPED without a photom reference."""
    if is_mrs(model.exp_type):               # MIRI MRS: steps/_mrs_calib.py
        from ._mrs_calib import photom_mrs
        return photom_mrs(model, refs, inverse=inverse)
    if str(model.exp_type).strip().upper() == NRS_IFU:
        from ._nrs_ifu_calib import photom_nrs_ifu
        return photom_nrs_ifu(model, refs, inverse=inverse)
    out = model.copy(arrays=False)           # every array the step changes is replaced, not edited
    path = corr.ref_path(refs, "photom")
    if path is None:
        corr.mark(out, "PHOTOM", "SKIPPED")
        return out
    hdul = corr.open_reference(path, "photom", _PHOTOM_MODELS, ("PHOTOM",))
    area_path = corr.ref_path(refs, "area")
    msa = getattr(known_mode(out.exp_type), "msa", False)
    areas = read_area(area_path, msa) if area_path is not None else None
    rows = {}                                # the PHOTOM row of each (filter, grating[, slit])
    for slit in out.slits:
        kind = corr.source_type(slit, out, source_type)
        sr, a2 = _pixel_area(slit, out, areas, area_path, hdul[0].header)
        conv, scalar, uniform = conversion(slit, out, hdul, path, kind, sr, rows)
        bad = ~np.isfinite(conv)
        if "DQ" in slit:
            slit["DQ"] = slit["DQ"] | corr.flag_where(bad)
        if inverse:
            corr.apply_correction(slit, np.where(bad | (conv == 0), np.nan, conv), inverse=False)
            slit.header["BUNIT"] = "DN/s"
        else:
            # official: conv 0 where undefined (DO_NOT_USE makes it NaN below); NaN if no DQ
            fill = 0.0 if "DQ" in slit else np.nan
            corr.apply_correction(slit, np.where(bad, fill, conv), inverse=True)   # multiply
            slit.header["BUNIT"] = "MJy" if kind == "POINT" else "MJy/sr"
        if sr is not None:
            slit.header["PIXAR_SR"] = (sr, "nominal pixel area [sr]")
        if a2 is not None:
            slit.header["PIXAR_A2"] = (a2, "nominal pixel area [arcsec^2]")
        slit.header["PHOTMJSR"] = (scalar, "flux conversion factor (MJy or MJy/sr per DN/s)")
        slit.header["PHOTUJA2"] = (scalar * MJSR_TO_UJA2, "flux conversion factor (uJy/arcsec^2 per DN/s)")
        if kind == "POINT" and uniform is not None:
            slit["PHOTOM_PS"] = conv.astype(np.float32)
            slit["PHOTOM_UN"] = uniform.astype(np.float32)
        corr.match_nans_and_flags(slit)
    corr.mark(out, "PHOTOM", "COMPLETE")
    corr.record_ref(out, "photom", path)
    if area_path is not None:
        corr.record_ref(out, "area", area_path)
    return out


def read_area(path, msa=False):
    """{slit_id (upper case): pixel area [arcsec^2]} of a NirspecSlitAreaModel file; ``msa``:
    {(quadrant, shutter_x, shutter_y): pixel area} of a NirspecMosAreaModel (its ~250,000 rows
    read once per process and file: master_background_mos calls photom twice, the chain once more)."""
    if msa:
        import os

        st = os.stat(path) if os.path.exists(path) else None
        key = (str(path), st and st.st_size, st and st.st_mtime_ns)
        if key not in _MOS_AREAS:
            _MOS_AREAS.clear()
            _MOS_AREAS[key] = _read_mos_area(path)
        return _MOS_AREAS[key]
    hdul = corr.open_reference(path, "area", ("NirspecSlitAreaModel",), ("AREA",))
    data = hdul["AREA"].data
    cols = {n.lower(): n for n in data.columns.names}
    if "slit_id" not in cols or "pixarea" not in cols:
        raise InputError(path, "AREA table needs slit_id and pixarea columns")
    ids = np.char.upper(np.char.strip(np.asarray(data[cols["slit_id"]]).astype(str)))
    return {i: float(a) for i, a in zip(ids, np.asarray(data[cols["pixarea"]], float))}


_MOS_AREAS = {}


def _read_mos_area(path):
    hdul = corr.open_reference(path, "area", ("NirspecMosAreaModel",), ("AREA",))
    data = hdul["AREA"].data
    cols = {n.lower(): n for n in data.columns.names}
    need = ("quadrant", "shutter_x", "shutter_y", "pixarea")
    if any(c not in cols for c in need):
        raise InputError(path, f"AREA table needs {', '.join(need)} columns")
    q, x, y, a = (np.asarray(data[cols[c]]) for c in need)
    return _ShutterAreas(q, x, y, a)


class _ShutterAreas:
    """{(quadrant, shutter_x, shutter_y): pixel area} of a MOS area table, looked up by a binary
    search in its sorted keys: building a dict of its ~250,000 rows took 0.09 s of every MOS
    Stage 2 job. A shutter listed twice takes the last row's area, as a dict built from the rows."""

    def __init__(self, q, x, y, area):
        self.keys = self._key(np.asarray(q, np.int64), np.asarray(x, np.int64), np.asarray(y, np.int64))
        self.order = np.argsort(self.keys, kind="stable")
        self.sorted = self.keys[self.order]
        self.area = np.asarray(area, np.float64)

    @staticmethod
    def _key(q, x, y):
        return (q << 42) + (x << 21) + y          # each fits 21 bits (shutter indices < 2**20)

    def _index(self, shutter):
        try:
            q, x, y = (int(v) for v in shutter)
        except (TypeError, ValueError):
            return None
        if not all(-2 ** 20 < v < 2 ** 20 for v in (q, x, y)):
            return None
        k = self._key(q, x, y)
        i = int(np.searchsorted(self.sorted, k, side="right")) - 1
        return int(self.order[i]) if i >= 0 and self.sorted[i] == k else None

    def __contains__(self, shutter):
        return self._index(shutter) is not None

    def __getitem__(self, shutter):
        i = self._index(shutter)
        if i is None:
            raise KeyError(shutter)
        return float(self.area[i])


def _pixel_area(slit, model, areas, area_path, photom_header):
    """(PIXAR_SR, PIXAR_A2) of a slit: the area reference, else the slit's, else the photom's."""
    if areas is not None and getattr(known_mode(model.exp_type), "msa", False):
        shutter = mos_table.shutter_of(slit.header, model.path or "photom")
        if shutter in areas:
            return areas[shutter] * A2_TO_SR, areas[shutter]
        log.warning("%s: no pixel area for slitlet %s (quadrant %d, shutter row %d, column %d); the photom "
                    "file's nominal area is used", area_path, slit.name, *shutter)
        areas = None
    if areas is not None:
        name = str(corr.slit_label(slit, model)).strip().upper()
        if name not in areas:
            raise InputError(area_path, f"no pixel area for slit {name or '(unnamed)'!r}")
        return areas[name] * A2_TO_SR, areas[name]
    for hdr in (slit.header, photom_header):
        sr, a2 = hdr.get("PIXAR_SR"), hdr.get("PIXAR_A2")
        if sr is None and a2 is not None:
            sr = float(a2) * A2_TO_SR
        if sr is not None and np.isfinite(float(sr)) and float(sr) > 0:
            return float(sr), (None if a2 is None else float(a2))
    return None, None


def _row(data, path, match):
    """The one table row whose string columns equal ``match`` (case-insensitive, stripped)."""
    cols = {n.lower(): n for n in data.columns.names}
    keep = np.ones(len(data), bool)
    for key, value in match.items():
        if key not in cols:
            continue
        col = np.char.upper(np.char.strip(np.asarray(data[cols[key]]).astype(str)))
        keep &= col == str(value).strip().upper()
    hits = np.flatnonzero(keep)
    if hits.size != 1:
        what = ", ".join(f"{k}={v}" for k, v in match.items())
        raise InputError(path, f"PHOTOM table has {hits.size} rows for {what} (need exactly one)")
    return data[hits[0]], cols


def _response(hdul, path, match):
    """(wavelength [um], relresponse (sorted, nelem-trimmed), photmjsr or None, photmj or None)
    of the PHOTOM row ``match`` selects."""
    row, cols = _row(hdul["PHOTOM"].data, path, match)
    wave = np.asarray(row[cols["wavelength"]], float).ravel()
    rel = np.asarray(row[cols["relresponse"]], float).ravel()
    if "nelem" in cols:
        n = int(row[cols["nelem"]])
        wave, rel = wave[:n], rel[:n]
    order = np.argsort(wave)
    wave, rel = wave[order], rel[order]
    if 0 < wave.max() < 1e-4:          # metres -> um
        wave = wave * 1e6
    if "photmjsr" in cols:
        return wave, rel, float(row[cols["photmjsr"]]), None
    if "photmj" not in cols:
        raise InputError(path, "PHOTOM table has neither photmj nor photmjsr")
    return wave, rel, None, float(row[cols["photmj"]])


def conversion(slit, model, hdul, path, kind, sr, rows=None):
    """(conv 2-D, scalar factor, uniform conv or None) for one slit (``rows``: a dict the
    caller keeps over its slits, the PHOTOM rows already read by what they matched)."""
    if "WAVELENGTH" not in slit:
        raise InputError(model.path or "photom", f"slit {slit.name or '(unnamed)'!r} has no WAVELENGTH array")
    match = {"filter": model.primary.get("FILTER", ""), "grating": model.primary.get("GRATING", "")}
    if getattr(known_mode(model.exp_type), "fixed_slits", False):   # rows per slit name
        match["slit"] = corr.slit_label(slit, model)
    rows = {} if rows is None else rows
    key = tuple(sorted((k, str(v)) for k, v in match.items()))
    if key not in rows:
        rows[key] = _response(hdul, path, match)
    wave, rel, photmjsr, photmj = rows[key]
    rel2d = corr.interp_nan(np.asarray(slit["WAVELENGTH"], dtype=np.float64), wave, rel)
    if photmjsr is not None:                     # already per steradian
        return photmjsr * rel2d, photmjsr, None
    if sr is None:
        if kind != "POINT":
            raise InputError(path, "no pixel area (area reference, PIXAR_SR) to convert to surface brightness")
        return photmj * rel2d, photmj, None
    uniform = photmj / sr * rel2d
    if kind == "POINT":
        return photmj * rel2d, photmj, uniform
    return uniform, photmj / sr, uniform
