"""pathloss: correct each slit for the light lost outside the slit aperture.

Reference ``pathloss`` (docs/internals.md): BinTable PATHLOSS with SLIT_NAME, WAVELENGTH [um],
PS (throughput of a centred point source) and UN (uniform illumination). Per pixel the vectors
are interpolated linearly at WAVELENGTH (NaN outside the table -> the pixel becomes NaN and
DO_NOT_USE by the match-NaNs rule). POINT slits (SRCTYPE, or ``source_type`` when given) are
divided by PS, all others by UN: S/=c, ERR/=c, VAR_*/=c**2 (``inverse`` multiplies). Both 2-D
vectors are stored as PATHLOSS_PS / PATHLOSS_UN and the slit keyword PTHLOSS says which one was
applied ("POINT" or "UNIFORM"). A non-positive throughput counts as no data (NaN).
An optional BinTable PS_XPOS (SLIT_NAME, SRCXPOS, WAVELENGTH, PS: one row per slit and across-slit
source position) gives PS as a function of the source position, as the official files do; PS is
then interpolated linearly at the slit's SRCXPOS (clipped to the tabulated range).

MIRI LRS fixed slit (official behaviour): only POINT data are corrected and the correction
multiplies. The table has no source-position axis, so ``user_slit_loc`` (the official LRS
position override) cannot change the result; it is accepted for parameter compatibility.
"""

import numpy as np

from ..errors import InputError
from . import _correction as corr
from ._call import accepts_files

REFTYPES = ("pathloss",)

# EXP_TYPEs whose pathloss correction multiplies and applies to point sources only (official).
MULTIPLY_EXP_TYPES = ("MIR_LRS-FIXEDSLIT",)


@accepts_files
def run(model, refs, *, inverse=False, source_type=None, user_slit_loc=None):
    """Path-loss-correct ``model`` (a copy); S_PTHLOS = SKIPPED without a reference."""
    out = model.copy()
    path = corr.ref_path(refs, "pathloss")
    if path is None:
        corr.mark(out, "PTHLOS", "SKIPPED")
        return out
    hdul = corr.open_reference(path, "pathloss")
    multiply = out.exp_type in MULTIPLY_EXP_TYPES
    done = 0
    for slit in out.slits:
        kind = corr.source_type(slit, out, source_type)
        if multiply and kind != "POINT":
            continue
        ps, un = correction_arrays(slit, out, hdul, path)
        c = ps if kind == "POINT" else un
        # divisor normally; LRS multiplies, i.e. divides by 1/c
        corr.apply_correction(slit, 1.0 / c if multiply else c, inverse)
        slit["PATHLOSS_PS"] = ps.astype(np.float32)
        slit["PATHLOSS_UN"] = un.astype(np.float32)
        slit.header["PTHLOSS"] = ("POINT" if kind == "POINT" else "UNIFORM", "pathloss correction type")
        corr.match_nans_and_flags(slit)
        done += 1
    corr.mark(out, "PTHLOS", "COMPLETE" if done else "SKIPPED")
    if done:
        corr.record_ref(out, "pathloss", path)
    return out


def correction_arrays(slit, model, hdul, path):
    """(PS, UN) throughput at each pixel's wavelength (float64, NaN where undefined)."""
    if "WAVELENGTH" not in slit:
        raise InputError(model.path or "pathloss", f"slit {slit.name or '(unnamed)'!r} has no WAVELENGTH array")
    row = corr.table_row(hdul, "PATHLOSS", corr.slit_label(slit, model), path)
    wave, ps, un = corr.row_vector(row, "WAVELENGTH", ("PS", "UN"), path)
    lam = np.asarray(slit["WAVELENGTH"], dtype=np.float64)
    vecs = [(wave, ps), (wave, un)]
    by_pos = _ps_at_position(hdul, slit, model, path)
    if by_pos is not None:
        vecs[0] = by_pos
    out = []
    for wave, vec in vecs:
        c = corr.interp_nan(lam, wave, vec)
        with np.errstate(invalid="ignore"):
            out.append(np.where(c > 0, c, np.nan))
    return out[0], out[1]


def _ps_at_position(hdul, slit, model, path):
    """(wavelength, PS) at the slit's SRCXPOS from table PS_XPOS, or None without either."""
    xpos = slit.header.get("SRCXPOS")
    if "PS_XPOS" not in hdul or xpos is None or not np.isfinite(float(xpos)):
        return None
    data = hdul["PS_XPOS"].data
    names = np.char.upper(np.char.strip(np.asarray(data["SLIT_NAME"]).astype(str)))
    rows = np.flatnonzero(names == str(corr.slit_label(slit, model) or "").strip().upper())
    if rows.size < 2:
        return None
    pos = np.asarray(data["SRCXPOS"][rows], float)
    order = np.argsort(pos)
    rows, pos = rows[order], pos[order]
    x = float(np.clip(float(xpos), pos[0], pos[-1]))
    i = int(np.clip(np.searchsorted(pos, x) - 1, 0, pos.size - 2))
    f = (x - pos[i]) / (pos[i + 1] - pos[i])
    wave, lo = corr.row_vector(data[rows[i]], "WAVELENGTH", ("PS",), path)
    _, hi = corr.row_vector(data[rows[i + 1]], "WAVELENGTH", ("PS",), path)
    return wave, (1 - f) * lo + f * hi
