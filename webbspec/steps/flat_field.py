"""flat_field: divide each NIRSpec slit by the product of its three flats (official algorithm).

References (official NirspecFlatModel FITS; read by ``_flatref``): ``fflat`` (fore optics: a
FAST_VARIATION row per fixed slit), ``sflat`` (spectrograph: full-frame SCI/DQ/ERR + a row per
slit), ``dflat`` (detector: SCI (n, 2048, 2048) with a WAVELENGTH per plane + a row "ANY").
A slit's pixels sit at full-frame (SUBSTRT - 1) + (SLTSTRT - 1); a missing reference is 1.

Per component, at each pixel's wavelength lam (the slit's WAVELENGTH):

* image part: sflat/dflat SCI at the pixel; a 3-D SCI is interpolated linearly between its
  planes (DQ of both planes OR-ed, DO_NOT_USE outside the planes' range); one plane is
  wavelength-independent. NaN or 0 -> DQ |= DO_NOT_USE | NO_FLAT_FIELD; DO_NOT_USE -> 1.
* fast part: the table row averaged over the pixel's wavelength width (forward difference along
  the dispersion, 3-point Gauss-Legendre), its error interpolated at lam; outside the table ->
  1 and NO_FLAT_FIELD | DO_NOT_USE; a pixel without wavelength -> 1, unflagged.
* component = image * fast, error = sqrt((err_fast * image)^2 + (err_image * fast)^2); the
  fore-optics component is NaN where flagged DO_NOT_USE (no safe default).

flat = F * S * D; DQ = OR of the parts, NO_FLAT_FIELD -> + DO_NOT_USE, DO_NOT_USE -> + NO_FLAT_FIELD
| UNRELIABLE_FLAT; flat = 1 where DO_NOT_USE; err = flat * sqrt(sum (err_i / f_i)^2); flat <= 0
-> NaN and flagged. A slit without WAVELENGTH gets flat 1.

Applied: S /= f; VAR_POISSON, VAR_RNOISE /= f^2; VAR_FLAT = (S_new * ferr / f)^2; ERR = sqrt(VP +
VR + VF); DQ |= flat DQ; then NaN and DO_NOT_USE made to agree. ``inverse``: S *= f, VP/VR *= f^2,
VF = 0. POINT slits also carry FLATFIELD_PS and FLATFIELD_UN (both the flat applied: one
WAVELENGTH array serves both here).

MOS slitlets (the mode's ``msa`` flag): the fflat is the official quadrant flat (NirspecQuadFlatModel,
``_flatref.QuadFlatRef``) read at the slitlet's reference shutter (MSAQUAD, XCEN/YCEN or SHUTTRID);
sflat and dflat as above with their first FAST_VARIATION row.

``user_supplied_flat``: an interpolated flat (a Model or path; what :func:`interpolated_flat`
returns, the official ``_interpolatedflat``): its slits' SCI (+DQ, ERR) matched by SLTNAME or order.
"""

import math
import warnings

import numpy as np

from .. import dq as dqbits
from ..errors import InputError
from ..modes import known_mode
from ..io import datamodels
from ..io.datamodels import Model, Slit
from ..instruments.nirspec import mos_table
from ..instruments.nirspec.ifu import EXP_TYPE as NRS_IFU
from . import _correction as corr
from ._call import accepts_files
from ._flatref import BADFLAT, open_flat
from ._memo import Memo, digest, file_key
from ..instruments.miri import is_mrs

REFTYPES = ("fflat", "sflat", "dflat")
REFTYPES = REFTYPES + ("flat",)      # MIRI MRS: one full-frame flat (steps/_mrs_calib.py)
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): the slits' per-pixel wavelengths
NEEDS = ("assign_wcs", "extract_2d")

_NOFLAT = dqbits.DO_NOT_USE | dqbits.NO_FLAT_FIELD
_GL = ((-math.sqrt(0.6) / 2, 5 / 18), (0.0, 8 / 18), (math.sqrt(0.6) / 2, 5 / 18))   # offset, weight


@accepts_files
def run(model, refs, *, user_supplied_flat=None, inverse=False):
    """Flat-field ``model`` (a copy); S_FLAT = SKIPPED without any flat."""
    if is_mrs(model.exp_type):               # MIRI MRS: steps/_mrs_calib.py
        from ._mrs_calib import flat_field_mrs
        return flat_field_mrs(model, refs, inverse=inverse)
    if str(model.exp_type).strip().upper() == NRS_IFU and user_supplied_flat is None:
        from ._nrs_ifu_calib import flat_field_nrs_ifu
        return flat_field_nrs_ifu(model, refs, inverse=inverse)
    out = model.copy(arrays=False)           # every array the step changes is replaced, not edited
    with _Flats(refs, user_supplied_flat, _is_msa(out)) as flats:
        if flats.empty:
            corr.mark(out, "FLAT", "SKIPPED")
            return out
        for slit in out.slits:
            f, ferr, fdq = flats.for_slit(slit, out)
            _apply(slit, f, ferr, fdq, inverse)
            if corr.source_type(slit, out) == "POINT" and "WAVELENGTH" in slit:
                slit["FLATFIELD_PS"] = f.astype(np.float32)
                slit["FLATFIELD_UN"] = f.astype(np.float32)
        flats.record(out)
    corr.mark(out, "FLAT", "COMPLETE")
    return out


def interpolated_flat(model, refs, *, user_supplied_flat=None):
    """The flat applied to each slit as a Model (SCI = flat, ERR = its error, DQ = its flags)."""
    slits = []
    with _Flats(refs, user_supplied_flat, _is_msa(model)) as flats:
        if flats.empty:
            raise InputError(model.path or "flat_field", "no flat reference file to interpolate")
        for slit in model.slits:
            f, ferr, fdq = flats.for_slit(slit, model)
            hdr = slit.header.copy()
            hdr["BUNIT"] = ""
            arrays = {"SCI": f.astype(np.float32), "ERR": ferr.astype(np.float32), "DQ": fdq.astype(np.uint32)}
            if "WAVELENGTH" in slit:
                arrays["WAVELENGTH"] = np.array(slit["WAVELENGTH"], dtype=np.float32)
            slits.append(Slit(hdr, arrays))
        primary = model.primary.copy()
        out = Model(primary, slits, model.layout)
        flats.record(out)
    return out


def _is_msa(model):
    return getattr(known_mode(model.exp_type), "msa", False)


class _Flats:
    """The opened references (or a user-supplied interpolated flat) for one step run; ``msa``:
    MOS slitlets (the fflat is the quadrant flat, read at each slitlet's reference shutter)."""

    def __init__(self, refs, user, msa=False):
        self.refs, self.user, self.msa = {}, None, msa
        if user is not None:
            self.user = user if isinstance(user, Model) else datamodels.read(str(user))
            return
        try:
            for rt in REFTYPES:
                path = corr.ref_path(refs, rt)
                if path is not None:
                    self.refs[rt] = open_flat(path, rt, quadrants=msa)
        except Exception:
            self.close()
            raise

    @property
    def empty(self):
        return self.user is None and not self.refs

    def close(self):
        for ref in self.refs.values():
            ref.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def record(self, model):
        for rt, ref in self.refs.items():
            corr.record_ref(model, rt, ref.path)

    def for_slit(self, slit, model):
        """(f, ferr, flat DQ) on the slit's 2-D grid (read-only arrays: see :data:`_MEMO`)."""
        if self.user is not None:
            return _interpolated_for(slit, model, self.user)
        ny, nx = slit.shape[-2:]
        if "WAVELENGTH" not in slit:       # official placeholder: no wavelengths, no flat
            return np.ones((ny, nx)), np.zeros((ny, nx)), np.zeros((ny, nx), np.uint32)
        y0, x0 = _origin(slit, model)
        dispaxis = int(slit.header.get("DISPAXIS", model.primary.get("DISPAXIS", 1)) or 1)
        by_slit = getattr(known_mode(model.exp_type), "fixed_slits", False)   # rows per slit name
        name = corr.slit_label(slit, model)
        shutter = mos_table.shutter_of(slit.header, model.path or "flat_field") if self.msa else None
        key = _memo_key(self.refs, slit["WAVELENGTH"], (y0, x0, ny, nx, dispaxis, by_slit, name, shutter, self.msa))
        hit = _MEMO.get(key)
        if hit is not None:
            return hit
        wl = np.asarray(slit["WAVELENGTH"], dtype=np.float64)
        wl = np.where(np.isfinite(wl), wl, 0.0)        # official: NaN -> 0 (out of every range)
        parts = []
        grid = _quadrature_grid(wl, dispaxis)        # the same for every reference
        for rt in REFTYPES:
            ref = self.refs.get(rt)
            if ref is not None:
                parts.append(_component(ref, wl, dispaxis, name, by_slit, (y0, x0, ny, nx), shutter, grid))
        return _MEMO.put(key, _combine(parts, (ny, nx)))


def _memo_key(refs, wavelength, geometry):
    """The flats of the slits flat-fielded last in this process are kept (:data:`_MEMO`) by
    everything they depend on: the reference files by path, size and time, the slit's full-frame
    box, dispersion axis, name, MOS shutter and its WAVELENGTH bytes. master_background_mos
    flat-fields every slit, un-flat-fields its background with the same flats, and the chain then
    flat-fields the slits again (only the point sources' wavelengths moved, by wavecorr), so two of
    those three computations are look-ups."""
    files = tuple((rt, *file_key(refs[rt].path)) for rt in REFTYPES if refs.get(rt) is not None)
    return (files, geometry, *digest(wavelength))


_MEMO = Memo(320 * 2 ** 20)


def _origin(slit, model):
    """0-based full-frame (y, x) of the slit's first pixel: SUBSTRT + SLTSTRT - 2."""
    def key(k):
        return int(model.primary.get(k, slit.header.get(k, 1)) or 1) - 1
    return (key("SUBSTRT2") + int(slit.header.get("SLTSTRT2", 1) or 1) - 1,
            key("SUBSTRT1") + int(slit.header.get("SLTSTRT1", 1) or 1) - 1)


def _component(ref, wl, dispaxis, name, by_slit, box, shutter=None, grid=None):
    """(flat, DQ, err) of one reference at the slit's pixels (``shutter``: a MOS slitlet's
    reference shutter (quadrant, row, column), for the quadrant fflat; ``grid``: the slit's
    :func:`_quadrature_grid`, computed here when not given)."""
    shape = wl.shape
    if ref.image:
        sci, dq, err = ref.region(*box)
        if sci.ndim == 3:
            sci, dq, err = _interpolate_planes(sci, dq, err, ref.plane_wl, wl)
        dq = dq.copy()
        dq[np.isnan(sci) | (sci == 0)] |= np.uint32(_NOFLAT)
        image = np.where((dq & dqbits.DO_NOT_USE) != 0, 1.0, sci)
    else:
        image, dq, err = 1.0, np.zeros(shape, np.uint32), ref.shutter_error(wl, shutter)
    values, ferr, missing = _fast_part(wl, dispaxis, *ref.fast(name, by_slit, shutter), grid=grid)
    dq = dq | corr.flag_where(missing, _NOFLAT)
    err = _quadrature_sum(ferr * image, err * values)
    flat = image * values
    if not ref.image:
        dq = dq | corr.flag_where(np.isnan(flat) | (flat == 0), _NOFLAT)
        flat = np.where((dq & dqbits.DO_NOT_USE) != 0, np.nan, flat)
    return np.broadcast_to(flat, shape).astype(np.float64), dq, err


def _interpolate_planes(sci, dq, err, plane_wl, wl):
    """A 3-D (planes, y, x) flat at each pixel's wavelength (official linear interpolation)."""
    nz = sci.shape[0]
    if nz == 1:
        return sci[0], (dq if dq.ndim == 2 else dq[0]), (err if err.ndim == 2 else err[0])
    k = np.clip(np.searchsorted(plane_wl, wl, side="right") - 1, 0, nz - 2)
    lo, hi = plane_wl[k], plane_wl[k + 1]
    denom = np.where(hi == lo, 1.0, hi - lo)
    p = np.where(hi == lo, 0.0, (wl - lo) / denom)
    iy, ix = np.indices(wl.shape)
    flat = (1 - p) * sci[k, iy, ix] + p * sci[k + 1, iy, ix]
    if err.ndim == 3:
        err = (1 - p) * err[k, iy, ix] + p * err[k + 1, iy, ix]
    if dq.ndim == 3:
        dq = np.where(p == 0, dq[k, iy, ix], dq[k, iy, ix] | dq[k + 1, iy, ix])
    dq = dq | corr.flag_where((wl < plane_wl[0]) | (wl > plane_wl[-1]), dqbits.DO_NOT_USE)
    flat = np.where((dq & dqbits.DO_NOT_USE) != 0, 1.0, flat)
    return flat, dq, err


def _clean_wl(wl):
    """Wavelengths with the unusable ones (<= 0) replaced by their column mean, and columns
    without any copied from the nearest such column at the ends (dispersion along x)."""
    w = np.where(wl > 0, wl, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        colmean = np.nanmean(w, axis=0)
    w = np.where(np.isnan(w), colmean[None, :], w)
    cols = np.flatnonzero(np.isfinite(colmean))
    if cols.size:
        w[:, :cols[0]] = w[:, cols[0]:cols[0] + 1]
        w[:, cols[-1]:] = w[:, cols[-1]:cols[-1] + 1]
    return w


def _quadrature_grid(wl, dispaxis):
    """(cleaned wavelengths, the 3 Gauss-Legendre wavelengths of each pixel's width, mask of
    the pixels with a wavelength) of a slit, the wavelengths only at those pixels (1-D): what
    :func:`_fast_part` evaluates every table at (a pixel without one gets 1 whatever the table
    says, so it is not evaluated)."""
    t = (lambda a: a.T) if dispaxis == 2 else (lambda a: a)
    w = t(_clean_wl(t(wl)))
    dw = np.zeros_like(w)
    dw[:, :-1] = w[:, 1:] - w[:, :-1]
    if w.shape[1] > 1:
        dw[:, -1] = dw[:, -2]
    w, dw = t(w), t(dw)
    has = wl > 0
    w, dw = w[has], dw[has]
    return w, [w + dw * off for off, _ in _GL], has


def _fast_part(wl, dispaxis, tab_wl, tab_val, tab_err, grid=None):
    """(values, error, missing): the table averaged over each pixel's wavelength width; 1 and
    error 0 at a pixel without a wavelength or outside the table (missing: the latter)."""
    w, points, has = grid if grid is not None else _quadrature_grid(wl, dispaxis)
    values = sum(wt * corr.interp_nan(p, tab_wl, tab_val) for p, (_, wt) in zip(points, _GL))
    err = corr.interp_nan(w, tab_wl, tab_err)
    lost = np.isnan(values)
    values[lost] = 1.0
    err[lost] = 0.0
    missing = np.zeros(wl.shape, bool)
    missing[has] = lost
    return _scatter(values, has, 1.0), _scatter(err, has, 0.0), missing


def _scatter(part, has, fill):
    """A slit-shaped array: ``part`` at the pixels ``has``, ``fill`` elsewhere."""
    out = np.full(has.shape, fill)
    out[has] = part
    return out


def _quadrature_sum(a, b):
    """sqrt(a**2 + b**2) with a NaN term taken as 0 (``a`` and ``b``: new arrays of the caller's,
    squared in place; a nansum of the two without stacking them)."""
    with np.errstate(invalid="ignore", over="ignore"):
        np.multiply(a, a, out=a)
        np.multiply(b, b, out=b)
        a[np.isnan(a)] = 0.0
        b[np.isnan(b)] = 0.0
        a += b
        return np.sqrt(a, out=a)


def _combine(parts, shape):
    """F * S * D with the official DQ and error combination."""
    flat = np.ones(shape)
    dq = np.zeros(shape, np.uint32) if parts else np.full(shape, BADFLAT, np.uint32)
    var = np.zeros(shape)
    for f, d, e in parts:
        flat = flat * f
        dq = dq | d
    with np.errstate(invalid="ignore", divide="ignore"):
        for f, d, e in parts:
            term = np.divide(e, np.where(f == 0, 1.0, f))
            np.multiply(term, term, out=term)
            var += term
        ferr = flat * np.sqrt(var, out=var)
    dq = dq | corr.flag_where((dq & dqbits.NO_FLAT_FIELD) != 0, dqbits.DO_NOT_USE)
    dq = dq | corr.flag_where((dq & dqbits.DO_NOT_USE) != 0, BADFLAT)
    flat = np.where((dq & dqbits.DO_NOT_USE) != 0, 1.0, flat)
    nonpos = flat <= 0
    dq = dq | corr.flag_where(nonpos, BADFLAT)
    return np.where(nonpos, np.nan, flat), ferr, dq


def _interpolated_for(slit, model, flat_model):
    """The slit's flat from an interpolated-flat model (by SLTNAME, else by position)."""
    name = slit.name
    match = [s for s in flat_model.slits if name and s.name == name]
    if not match:
        idx = next((i for i, s in enumerate(model.slits) if s is slit), 0)
        if idx >= len(flat_model.slits):
            raise InputError(flat_model.path or "user_supplied_flat", f"user-supplied flat has no slit {name or idx!r}")
        match = [flat_model.slits[idx]]
    fs = match[0]
    if fs.shape[-2:] != slit.shape[-2:]:
        raise InputError(flat_model.path or "user_supplied_flat",
                         f"user-supplied flat for slit {name!r} has shape {fs.shape}, science {slit.shape}")
    f = np.asarray(fs["SCI"], dtype=np.float64)
    ferr = np.asarray(fs["ERR"], dtype=np.float64) if "ERR" in fs else np.zeros(f.shape)
    fdq = np.asarray(fs["DQ"], dtype=np.uint32) if "DQ" in fs else np.zeros(f.shape, np.uint32)
    return f, ferr, fdq


def _apply(slit, f, ferr, fdq, inverse):
    """Official flat propagation in place (f broadcasts over integrations)."""
    # float64 math on new arrays (the float32 inputs are promoted exactly), updated in place
    sci = np.asarray(slit["SCI"])
    zeros = np.zeros(sci.shape)
    vp = np.asarray(slit.get("VAR_POISSON", zeros))
    vr = np.asarray(slit.get("VAR_RNOISE", zeros))
    f2 = f * f
    scale = np.multiply if inverse else np.divide
    with np.errstate(invalid="ignore", over="ignore"):
        sci = scale(sci, f, dtype=np.float64)
        vp, vr = scale(vp, f2, dtype=np.float64), scale(vr, f2, dtype=np.float64)
        if not inverse:
            vf = sci * ferr
            vf /= f
            np.multiply(vf, vf, out=vf)
        else:
            vf = zeros
        err = vp + vr
        err += vf
        np.sqrt(err, out=err)
    slit["SCI"] = sci.astype(np.float32)
    slit["VAR_POISSON"] = vp.astype(np.float32)
    slit["VAR_RNOISE"] = vr.astype(np.float32)
    slit["VAR_FLAT"] = vf.astype(np.float32)
    slit["ERR"] = err.astype(np.float32)
    dq = np.asarray(slit.get("DQ", np.zeros(sci.shape, np.uint32)), dtype=np.uint32)
    slit["DQ"] = dq | fdq
    corr.match_nans_and_flags(slit)
