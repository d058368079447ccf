"""photom: convert count rates to flux density (MJy per pixel, POINT) or surface brightness (MJy/sr).

Reference ``photom`` (docs/internals.md): BinTable PHOTOM with SLIT_NAME, PHOTMJ,
WAVELENGTH [um], RELRESPONSE; header keywords PIXAR_SR and PIXAR_A2 (PRIMARY or the PHOTOM
header). Per pixel

    conv = PHOTMJ * interp(WAVELENGTH_pix, WAVELENGTH, RELRESPONSE)   [/ PIXAR_SR unless POINT]

NaN conversion (no wavelength, outside the table) -> conv 0 and DO_NOT_USE (so NaN after the
match-NaNs rule). SCI, ERR *= conv; VAR_* *= conv**2 (``inverse`` divides and restores
BUNIT "DN/s"). Slit keywords: BUNIT ("MJy" POINT, else "MJy/sr"), PIXAR_SR, PIXAR_A2,
PHOTMJSR (the scalar factor) and PHOTUJA2. POINT slits also carry
PHOTOM_PS (the conversion applied) and PHOTOM_UN (the uniform-source one, /PIXAR_SR), which
master_background uses to put a uniform background on the point-source scale.
A table with a PHOTMJSR column (MIRI-style) is already per steradian: no PIXAR_SR division.

``apply_time_correction``: the reference format carries no time-dependence table, so there is
nothing to apply; the parameter is accepted for compatibility with the official step.
"""

import numpy as np

from .. import dq as dqbits
from ..errors import InputError
from . import _correction as corr
from ._call import accepts_files

REFTYPES = ("photom",)

MJSR_TO_UJA2 = 1e12 * (np.pi / 648000.0) ** 2    # 1 MJy/sr in uJy/arcsec^2


@accepts_files
def run(model, refs, *, inverse=False, source_type=None, apply_time_correction=True):
    """Flux-calibrate ``model`` (a copy); S_PHOTOM = SKIPPED without a reference."""
    out = model.copy()
    path = corr.ref_path(refs, "photom")
    if path is None:
        corr.mark(out, "PHOTOM", "SKIPPED")
        return out
    hdul = corr.open_reference(path, "photom")
    if "PHOTOM" not in hdul:
        raise InputError(path, "no PHOTOM table")
    pixar_sr, pixar_a2 = _pixel_area(hdul)
    for slit in out.slits:
        kind = corr.source_type(slit, out, source_type)
        conv, scalar, uniform, sr, a2 = conversion(slit, out, hdul, path, kind, pixar_sr, pixar_a2)
        bad = ~np.isfinite(conv)
        if "DQ" in slit:
            slit["DQ"] = slit["DQ"] | np.where(bad, np.uint32(dqbits.DO_NOT_USE), np.uint32(0))
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
    return out


def _pixel_area(hdul):
    """(PIXAR_SR, PIXAR_A2) from the PRIMARY or PHOTOM header (None when absent)."""
    sr = a2 = None
    for hdr in (hdul["PHOTOM"].header, hdul[0].header):
        sr = hdr.get("PIXAR_SR", sr) if sr is None else sr
        a2 = hdr.get("PIXAR_A2", a2) if a2 is None else a2
    if sr is None and a2 is not None:
        sr = float(a2) * (np.pi / 648000.0) ** 2
    return (None if sr is None else float(sr)), (None if a2 is None else float(a2))


def conversion(slit, model, hdul, path, kind, pixar_sr, pixar_a2):
    """(conv 2-D, scalar factor, uniform conv or None, PIXAR_SR, PIXAR_A2) for one slit."""
    if "WAVELENGTH" not in slit:
        raise InputError(model.path or "photom", f"slit {slit.name or '(unnamed)'!r} has no WAVELENGTH array")
    row = corr.table_row(hdul, "PHOTOM", corr.slit_label(slit, model), path)
    cols = {n.upper(): n for n in row.array.columns.names}
    sr = pixar_sr if pixar_sr is not None else slit.header.get("PIXAR_SR")
    a2 = pixar_a2 if pixar_a2 is not None else slit.header.get("PIXAR_A2")
    wave, rel = corr.row_vector(row, "WAVELENGTH", ("RELRESPONSE",), path)
    rel2d = corr.interp_nan(np.asarray(slit["WAVELENGTH"], dtype=np.float64), wave, rel)
    if "PHOTMJSR" in cols:                       # already per steradian
        scalar = float(row[cols["PHOTMJSR"]])
        return scalar * rel2d, scalar, None, sr, a2
    if "PHOTMJ" not in cols:
        raise InputError(path, "PHOTOM table has neither PHOTMJ nor PHOTMJSR")
    photmj = float(row[cols["PHOTMJ"]])
    if sr is None or not np.isfinite(sr) or sr <= 0:
        if kind != "POINT":
            raise InputError(path, "no PIXAR_SR to convert to surface brightness")
        return photmj * rel2d, photmj, None, None, a2
    sr = float(sr)
    uniform = photmj / sr * rel2d
    if kind == "POINT":
        return photmj * rel2d, photmj, uniform, sr, a2
    return uniform, photmj / sr, uniform, sr, a2
