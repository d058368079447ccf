"""flat_field: divide each slit (or the whole image) by its flat field and propagate the errors.

Reference ``flat`` (docs/internals.md): image SCI = full-detector pixel flat (optional DQ, ERR)
and BinTable FAST_VARIATION (SLIT_NAME, WAVELENGTH [um], DATA, optional ERROR). Per pixel

    f = SCI[y, x] * interp(WAVELENGTH_pix, WAVELENGTH, DATA)

with the detector region of a slit cut at SLTSTRT1/2 (1-based, relative to the exposure's image,
so offset by the PRIMARY SUBSTRT1/2 of a subarray) and the region of a single image at
SUBSTRT1/2. Without a WAVELENGTH array (full-frame image before extract_2d) only the pixel flat
applies. NaN, 0, no wavelength, out of the tabulated range or a flat DQ with DO_NOT_USE or
NO_FLAT_FIELD: f = 1 and DQ |= DO_NOT_USE|NO_FLAT_FIELD (then NaN by the match-NaNs rule).

Official propagation: S /= f; VAR_POISSON, VAR_RNOISE /= f**2; VAR_FLAT = (S_new * ferr / f)**2
with ferr = f * sqrt((ERR_pix/SCI_pix)**2 + (ERROR/DATA)**2) (0 where the reference has no
errors); ERR = sqrt(VP + VR + VF); DQ |= flat DQ. ``inverse``: S *= f, VP/VR *= f**2, VF = 0,
ERR = sqrt(VP + VR). POINT slits with a WAVELENGTH array also carry FLATFIELD_PS and
FLATFIELD_UN (both = the flat applied: one WAVELENGTH serves both here).

``user_supplied_flat``: a flat in the reference format above (path), or an already interpolated
flat -- a Model/path whose slits hold the per-slit flat as SCI (+DQ, ERR), matched by SLTNAME or
order, i.e. what :func:`interpolated_flat` returns (the official ``_interpolatedflat`` product;
writing it is the workflow's job, so ``save_interpolated_flat`` is not a parameter here).
"""

import numpy as np

from ..io import datamodels
from .. import dq as dqbits
from ..io.datamodels import Model, Slit
from ..errors import InputError
from . import _correction as corr
from ._call import accepts_files

REFTYPES = ("flat",)

BAD = dqbits.DO_NOT_USE | dqbits.NO_FLAT_FIELD


@accepts_files
def run(model, refs, *, user_supplied_flat=None, inverse=False):
    """Flat-field ``model`` (a copy); S_FLAT = SKIPPED without a flat."""
    out = model.copy()
    source = _load_flat(refs, user_supplied_flat)
    if source is None:
        corr.mark(out, "FLAT", "SKIPPED")
        return out
    for slit in out.slits:
        f, ferr, fdq = _slit_flat(slit, out, source)
        _apply(slit, f, ferr, fdq, inverse)
        if corr.source_type(slit, out) == "POINT" and "WAVELENGTH" in slit:
            slit["FLATFIELD_PS"] = f.astype(np.float32)
            slit["FLATFIELD_UN"] = f.astype(np.float32)
    corr.mark(out, "FLAT", "COMPLETE")
    corr.record_ref(out, "flat", source["path"])
    return out


def interpolated_flat(model, refs, *, user_supplied_flat=None):
    """The flat applied to each slit as a Model (SCI = flat, ERR = its error, DQ = its flags)."""
    source = _load_flat(refs, user_supplied_flat)
    if source is None:
        raise InputError(model.path or "flat_field", "no flat reference file to interpolate")
    slits = []
    for slit in model.slits:
        f, ferr, fdq = _slit_flat(slit, model, source)
        hdr = slit.header.copy()
        hdr["BUNIT"] = ""
        arrays = {"SCI": f.astype(np.float32), "ERR": ferr.astype(np.float32), "DQ": fdq.astype(np.uint32)}
        if "WAVELENGTH" in slit:
            arrays["WAVELENGTH"] = np.array(slit["WAVELENGTH"], dtype=np.float32)
        slits.append(Slit(hdr, arrays))
    primary = model.primary.copy()
    corr.record_ref(Model(primary), "flat", source["path"])
    return Model(primary, slits, model.layout)


# ---------------------------------------------------------------- reference


def _load_flat(refs, user):
    """{"path", "kind": "reference"|"interpolated", ...} or None when there is no flat."""
    if isinstance(user, Model):
        return {"path": user.path or "user_supplied_flat", "kind": "interpolated", "model": user}
    path = corr.ref_path(refs, "flat", user)
    if path is None:
        return None
    hdul = corr.open_reference(path, "flat")
    scis = [h for h in hdul if h.name == "SCI" and h.data is not None]
    if not scis:
        raise InputError(path, "flat reference has no SCI image")
    if user is not None and len(scis) > 1 and "FAST_VARIATION" not in hdul:
        return {"path": path, "kind": "interpolated", "model": datamodels.read(path)}
    pix = np.asarray(scis[0].data, dtype=np.float64)
    dq = np.asarray(hdul["DQ"].data, dtype=np.uint32) if "DQ" in hdul else np.zeros(pix.shape, np.uint32)
    err = np.asarray(hdul["ERR"].data, dtype=np.float64) if "ERR" in hdul else None
    if pix.ndim != 2 or dq.shape != pix.shape or (err is not None and err.shape != pix.shape):
        raise InputError(path, f"flat SCI/DQ/ERR must be matching 2-D images (SCI {pix.shape})")
    return {"path": path, "kind": "reference", "hdul": hdul, "sci": pix, "dq": dq, "err": err}


def _region(slit, model):
    """(y0, x0) 0-based detector corner of the slit's pixels."""
    def sub(key):
        return int(model.primary.get(key, slit.header.get(key, 1)) or 1) - 1
    if model.layout == "multi" or "SLTSTRT1" in slit.header:
        return (sub("SUBSTRT2") + int(slit.header.get("SLTSTRT2", 1)) - 1,
                sub("SUBSTRT1") + int(slit.header.get("SLTSTRT1", 1)) - 1)
    return sub("SUBSTRT2"), sub("SUBSTRT1")


def _cut(image, y0, x0, ny, nx, fill):
    """image[y0:y0+ny, x0:x0+nx] padded with ``fill`` where the region leaves the image."""
    out = np.full((ny, nx), fill, dtype=image.dtype)
    ys, xs = max(y0, 0), max(x0, 0)
    ye, xe = min(y0 + ny, image.shape[0]), min(x0 + nx, image.shape[1])
    if ye > ys and xe > xs:
        out[ys - y0:ye - y0, xs - x0:xe - x0] = image[ys:ye, xs:xe]
    return out


def _slit_flat(slit, model, source):
    """(f, ferr, flat DQ) on the slit's 2-D pixel grid, bad pixels already set to f=1."""
    ny, nx = slit.shape[-2:]
    if source["kind"] == "interpolated":
        f, ferr, fdq = _interpolated_for(slit, model, source)
    else:
        if model.layout == "single" and "SLTSTRT1" not in slit.header and source["sci"].shape == (ny, nx):
            y0, x0 = 0, 0
        elif model.layout == "single" and "SLTSTRT1" not in slit.header and "SUBSTRT1" not in model.primary \
                and "SUBSTRT1" not in slit.header:
            raise InputError(source["path"], f"flat shape {source['sci'].shape} differs from the science "
                                             f"{(ny, nx)} and there are no SUBSTRT keywords to cut it")
        else:
            y0, x0 = _region(slit, model)
        pix = _cut(source["sci"], y0, x0, ny, nx, np.nan)
        fdq = _cut(source["dq"], y0, x0, ny, nx, np.uint32(BAD))
        rel2 = np.zeros((ny, nx))
        if source["err"] is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                rel2 = (_cut(source["err"], y0, x0, ny, nx, 0.0) / pix) ** 2
        f = pix
        if "FAST_VARIATION" in source["hdul"] and "WAVELENGTH" in slit:
            fast, fast_rel2 = _fast_variation(slit, model, source)
            f = pix * fast
            rel2 = rel2 + fast_rel2
        with np.errstate(invalid="ignore"):
            ferr = np.abs(f) * np.sqrt(rel2)
    f = np.asarray(f, dtype=np.float64)
    fdq = np.asarray(fdq, dtype=np.uint32).copy()
    bad = ~np.isfinite(f) | (f == 0)
    fdq[bad] |= np.uint32(BAD)
    fdq[(fdq & dqbits.NO_FLAT_FIELD) != 0] |= np.uint32(dqbits.DO_NOT_USE)
    bad |= (fdq & dqbits.DO_NOT_USE) != 0
    f = np.where(bad, 1.0, f)
    ferr = np.where(bad | ~np.isfinite(ferr), 0.0, ferr)
    return f, ferr, fdq


def _fast_variation(slit, model, source):
    """(fast variation, its relative variance) at each pixel's wavelength (NaN outside)."""
    row = corr.table_row(source["hdul"], "FAST_VARIATION", corr.slit_label(slit, model), source["path"])
    cols = {n.upper() for n in row.array.columns.names}
    has_err = "ERROR" in cols
    vec = corr.row_vector(row, "WAVELENGTH", ("DATA", "ERROR") if has_err else ("DATA",), source["path"])
    lam = np.asarray(slit["WAVELENGTH"], dtype=np.float64)
    fast = corr.interp_nan(lam, vec[0], vec[1])
    rel2 = np.zeros(lam.shape)
    if has_err:
        with np.errstate(divide="ignore", invalid="ignore"):
            rel2 = (corr.interp_nan(lam, vec[0], vec[2]) / fast) ** 2
    return fast, np.where(np.isfinite(rel2), rel2, 0.0)


def _interpolated_for(slit, model, source):
    """The slit's flat from an interpolated-flat model (by SLTNAME, else by position)."""
    flat_model = source["model"]
    name = slit.name
    match = [s for s in flat_model.slits if name and s.name == name]
    if not match:
        idx = next((i for i, s in enumerate(model.slits) if s is slit), 0)
        if idx >= len(flat_model.slits):
            raise InputError(source["path"], f"user-supplied flat has no slit {name or idx!r}")
        match = [flat_model.slits[idx]]
    fs = match[0]
    if fs.shape[-2:] != slit.shape[-2:]:
        raise InputError(source["path"], f"user-supplied flat for slit {name!r} has shape {fs.shape}, "
                                         f"science {slit.shape}")
    f = np.asarray(fs["SCI"], dtype=np.float64)
    ferr = np.asarray(fs["ERR"], dtype=np.float64) if "ERR" in fs else np.zeros(f.shape)
    fdq = np.asarray(fs["DQ"], dtype=np.uint32) if "DQ" in fs else np.zeros(f.shape, np.uint32)
    return f, ferr, fdq


# ---------------------------------------------------------------- applying


def _apply(slit, f, ferr, fdq, inverse):
    """Official flat propagation in place (f broadcasts over integrations)."""
    sci = np.asarray(slit["SCI"], dtype=np.float64)
    zeros = np.zeros(sci.shape)
    vp = np.asarray(slit.get("VAR_POISSON", zeros), dtype=np.float64)
    vr = np.asarray(slit.get("VAR_RNOISE", zeros), dtype=np.float64)
    f2 = f * f
    if not inverse:
        sci = sci / f
        vf = (sci * ferr / f) ** 2
        vp, vr = vp / f2, vr / f2
    else:
        sci = sci * f
        vf = zeros
        vp, vr = vp * f2, vr * f2
    slit["SCI"] = sci.astype(np.float32)
    slit["VAR_POISSON"] = vp.astype(np.float32)
    slit["VAR_RNOISE"] = vr.astype(np.float32)
    slit["VAR_FLAT"] = vf.astype(np.float32)
    slit["ERR"] = np.sqrt(vp + vr + vf).astype(np.float32)
    dq = np.asarray(slit.get("DQ", np.zeros(sci.shape, np.uint32)), dtype=np.uint32)
    slit["DQ"] = dq | fdq
    corr.match_nans_and_flags(slit)
