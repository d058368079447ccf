"""NIRSpec IFU flat_field and photom (the NRS_IFU branches of steps/flat_field.py and photom.py),
as the official steps do them.

flat_field: fflat / sflat / dflat (NirspecFlatModel; their first FAST_VARIATION row, "ANY") as for
slits, slice by slice on each slice's box (the SLICES table of assign_wcs) with the pixels of the
other slices' masked, exactly as the official code evaluates them on each slice's bounding box (so
the fast variation is averaged over each pixel's wavelength width from the same neighbours); the
pixels off every slice get no flat: NaN and DO_NOT_USE | NO_FLAT_FIELD, as officially.

photom:
References: ``photom`` (NrsMosPhotomModel: the PHOTOM row of the exposure's FILTER and GRATING)
and ``area`` (NirspecIfuAreaModel: AREA slice_id 0-29, pixarea [arcsec^2]; the mean over the slices
is the exposure's PIXAR_A2, as officially). Every slice pixel (SLICE > 0, from assign_wcs) is
converted to surface brightness, point source or not, with its own slice's area (as the official
2-D sensitivity map): conv = photmj / area_sr(slice) * interp(WAVELENGTH, wavelength, relresponse);
pixels off the slices keep their values and are flagged NON_SCIENCE (the official conversion is
1 there); a slice pixel without a relresponse (wavelength outside the table) is DO_NOT_USE and NaN.
"""

import numpy as np

from .. import dq as dqbits
from ..errors import InputError
from ..io.datamodels import Slit
from . import _correction as corr
from .photom import A2_TO_SR, MJSR_TO_UJA2, conversion

__all__ = ["photom_nrs_ifu", "flat_field_nrs_ifu", "ifu_areas"]


def ifu_areas(path):
    """{official slice number 1-30: pixel area [arcsec^2]} of a NirspecIfuAreaModel file."""
    hdul = corr.open_reference(path, "area", ("NirspecIfuAreaModel",), ("AREA",))
    data = hdul["AREA"].data
    cols = {n.lower(): n for n in data.columns.names}
    if "pixarea" not in cols or "slice_id" not in cols or len(data) == 0:
        raise InputError(path, "AREA table needs slice_id and pixarea columns with a row per slice")
    area = np.asarray(data[cols["pixarea"]], float)
    if not (np.all(np.isfinite(area)) and np.all(area > 0)):
        raise InputError(path, "AREA table has a pixel area that is not a positive number")
    return {int(k) + 1: float(a) for k, a in zip(np.asarray(data[cols["slice_id"]]), area)}


def photom_nrs_ifu(model, refs, *, inverse=False):
    """Flux-calibrate a NIRSpec IFU exposure (a copy) to MJy/sr; SKIPPED without a photom file."""
    out = model.copy()
    path = corr.ref_path(refs, "photom")
    if path is None:
        corr.mark(out, "PHOTOM", "SKIPPED")
        return out
    hdul = corr.open_reference(path, "photom", ("NrsMosPhotomModel", "NrsFsPhotomModel"), ("PHOTOM",))
    slit = out.slits[0]
    if "SLICE" not in slit:
        raise InputError(model.path or "photom", "no SLICE array: run assign_wcs first")
    area_path = corr.ref_path(refs, "area")
    on = slit["SLICE"] > 0
    if area_path is not None:
        areas = ifu_areas(area_path)
        missing = sorted(set(np.unique(slit["SLICE"][on]).tolist()) - set(areas))
        if missing:
            raise InputError(area_path, f"no pixel area for IFU slice {missing[0]}")
        a2 = float(np.mean(list(areas.values())))
        table = np.ones(max(areas) + 1)
        table[list(areas)] = list(areas.values())
        slice_a2 = table[slit["SLICE"]]
    else:
        a2 = hdul[0].header.get("PIXAR_A2")
        if a2 is None:
            raise InputError(path, "no area reference and no PIXAR_A2: cannot convert to surface brightness")
        slice_a2 = a2 = float(a2)
    sr = a2 * A2_TO_SR
    conv, scalar, _ = conversion(slit, out, hdul, path, "EXTENDED", sr)
    conv = conv * (a2 / slice_a2)
    bad = on & ~np.isfinite(conv)
    conv = np.where(on & ~bad, conv, np.where(bad, np.nan, 1.0))
    flags = np.where(bad, np.uint32(dqbits.DO_NOT_USE), np.uint32(0)) | np.where(
        on, np.uint32(0), np.uint32(dqbits.flag("NON_SCIENCE")))
    slit["DQ"] = (slit["DQ"] if "DQ" in slit else np.zeros(conv.shape, np.uint32)) | flags
    corr.apply_correction(slit, conv, inverse=not inverse)      # apply_correction divides unless inverse
    slit.header["BUNIT"] = "DN/s" if inverse else "MJy/sr"
    slit.header["PIXAR_SR"] = (sr, "nominal pixel area [sr]")
    slit.header["PIXAR_A2"] = (a2, "nominal pixel area [arcsec^2]")
    slit.header["PHOTMJSR"] = (scalar, "flux conversion factor (MJy/sr per DN/s)")
    slit.header["PHOTUJA2"] = (scalar * MJSR_TO_UJA2, "flux conversion factor (uJy/arcsec^2 per DN/s)")
    corr.match_nans_and_flags(slit)
    corr.mark(out, "PHOTOM", "COMPLETE")
    corr.record_ref(out, "photom", path)
    if area_path is not None:
        corr.record_ref(out, "area", area_path)
    return out


def flat_field_nrs_ifu(model, refs, *, inverse=False):
    """Flat-field a NIRSpec IFU exposure (a copy); SKIPPED without any flat reference."""
    from .flat_field import _NOFLAT, _apply, _Flats

    out = model.copy()
    img = out.slits[0]
    if "SLICE" not in img or "SLICES" not in out.tables:
        raise InputError(model.path or "flat_field", "no SLICE array / SLICES table: run assign_wcs first")
    shape = img.shape[-2:]
    flat, ferr = np.full(shape, np.nan), np.full(shape, np.nan)
    fdq = np.full(shape, np.uint32(_NOFLAT))
    with _Flats(refs, None) as flats:
        if flats.empty:
            corr.mark(out, "FLAT", "SKIPPED")
            return out
        for row in out.tables["SLICES"]:
            k = int(row["SLICE"])
            box = (slice(int(row["YSTART"]), int(row["YSTOP"]) + 1), slice(int(row["XSTART"]), int(row["XSTOP"]) + 1))
            mine = img["SLICE"][box] == k
            header = img.header.copy()
            header["SLTSTRT1"], header["SLTSTRT2"] = int(row["XSTART"]) + 1, int(row["YSTART"]) + 1
            cut = Slit(header, {"SCI": img["SCI"][box], "WAVELENGTH": np.where(mine, img["WAVELENGTH"][box], np.nan)})
            f, e, d = flats.for_slit(cut, out)
            flat[box][mine], ferr[box][mine], fdq[box][mine] = f[mine], e[mine], d[mine]
        flats.record(out)
    _apply(img, np.where(np.isnan(flat), 1.0, flat), np.where(np.isnan(ferr), 0.0, ferr), fdq, inverse)
    corr.mark(out, "FLAT", "COMPLETE")
    return out
