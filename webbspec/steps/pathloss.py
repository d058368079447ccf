"""pathloss: correct each NIRSpec slit for the light lost outside the slit aperture.

Reference ``pathloss``: the official PathlossModel FITS, one aperture per EXTVER: ``PS`` (point
source throughput, (nwave, ny, nx) over the source position in the aperture, -0.5..0.5, with
CRPIX/CRVAL/CDELT 1-3; wavelength axis 3 in metres; header APERTURE = slit name), ``UNI``
(uniform illumination, 1-D, WCS axis 1 in metres), PSVAR / UNIVAR (unused). As the official step:

* the source position (SRCXPOS across, SRCYPOS along the slit; 0 when absent) indexes the PS cube
  at crpix + (pos - crval) / cdelt - 1 (0-based); a position outside [0, n - 1) on either axis
  means no correction for that slit (left unchanged); otherwise the PS vector is the bilinear
  interpolation of the four neighbouring spectra;
* each vector is interpolated linearly at every pixel's WAVELENGTH (NaN outside its range ->
  the pixel becomes NaN and DO_NOT_USE by the match-NaNs rule; a non-positive throughput too);
* POINT slits (SRCTYPE, or ``source_type``) are divided by PS, others by UN: S /= c, ERR /= c,
  VAR_* /= c^2 (``inverse`` multiplies). PATHLOSS_PS / PATHLOSS_UN are stored and the slit
  keyword PTHLOSS says which was applied ("POINT" or "UNIFORM").

A slit the reference has no aperture for is an InputError naming the file (the official step
warns and skips it). ``user_slit_loc`` (MIRI LRS only) is accepted for parameter compatibility.

MOS slitlets (the mode's ``msa`` flag): the aperture is chosen by the slitlet's shutters (SHUTSTA,
"x" the source's shutter), as the official step does: the one-shutter aperture (header SHUTTERS = 1)
when the shutters above and below the source's are both closed or absent, else the three-shutter
one; with only the one below closed the source position along the slit (SRCYPOS) is taken 1 lower,
with only the one above closed 1 higher (the 1x3 grid spans -1.5..1.5). A two-shutter slitlet's
uniform throughput is the mean of the MOS1x1 and MOS1x3 apertures' (same grid).
"""

import numpy as np

from ..errors import InputError
from ..modes import known_mode
from . import _correction as corr
from ._call import accepts_files
from ._memo import Memo, digest, file_key, read_once

REFTYPES = ("pathloss",)
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): the slits' wavelengths and source positions
NEEDS = ("assign_wcs", "extract_2d")


@accepts_files
def run(model, refs, *, inverse=False, source_type=None, user_slit_loc=None):
    """Path-loss-correct ``model`` (a copy); S_PTHLOS = SKIPPED without a reference."""
    out = model.copy(arrays=False)           # every array the step changes is replaced, not edited
    path = corr.ref_path(refs, "pathloss")
    if path is None:
        corr.mark(out, "PTHLOS", "SKIPPED")
        return out
    apertures = read_once(read_pathloss, path)      # (not edited: a per-process copy)
    done = 0
    for slit in out.slits:
        kind = corr.source_type(slit, out, source_type)
        arrays = correction_arrays(slit, out, apertures, path)
        if arrays is None:            # source outside the tabulated aperture: no correction
            continue
        ps, un = arrays
        corr.apply_correction(slit, ps if kind == "POINT" else un, inverse)
        slit["PATHLOSS_PS"] = ps.astype(np.float32)
        slit["PATHLOSS_UN"] = un.astype(np.float32)
        slit.header["PTHLOSS"] = ("POINT" if kind == "POINT" else "UNIFORM", "pathloss correction type")
        corr.match_nans_and_flags(slit)
        done += 1
    corr.mark(out, "PTHLOS", "COMPLETE" if done else "SKIPPED")
    if done:
        corr.record_ref(out, "pathloss", path)
    return out


def read_pathloss(path):
    """{APERTURE (upper case): {"ps", "ps_wcs", "uni", "uni_wcs"}} of a PathlossModel file."""
    hdul = corr.open_reference(path, "pathloss", ("PathlossModel",), ("PS", "UNI"))
    uni = {h.ver: h for h in hdul if h.name == "UNI"}
    out = {}
    for h in hdul:
        if h.name != "PS":
            continue
        name = str(h.header.get("APERTURE", "")).strip().upper()
        if h.data is None or h.data.ndim != 3 or h.ver not in uni or uni[h.ver].data is None:
            raise InputError(path, f"aperture {name or h.ver!r} needs a 3-D PS and a 1-D UNI of EXTVER {h.ver}")
        try:
            out[name] = {"ps": np.asarray(h.data, np.float64), "uni": np.asarray(uni[h.ver].data, np.float64).ravel(),
                         "shutters": h.header.get("SHUTTERS"),
                         "ps_wcs": {k: float(h.header[k]) for k in _WCS3},
                         "uni_wcs": {k: float(uni[h.ver].header[k]) for k in _WCS1}}
        except KeyError as exc:
            raise InputError(path, f"aperture {name!r} lacks WCS keyword {exc}") from None
    return out


_WCS1 = ("CRPIX1", "CRVAL1", "CDELT1")
_WCS3 = _WCS1 + ("CRPIX2", "CRVAL2", "CDELT2", "CRPIX3", "CRVAL3", "CDELT3")


def _axis(w, n, axis):
    """Metres -> um wavelengths of WCS ``axis`` with ``n`` pixels (1-based CRPIX)."""
    i = np.arange(n, dtype=float)
    lam = w[f"CRVAL{axis}"] + (i + 1 - w[f"CRPIX{axis}"]) * w[f"CDELT{axis}"]
    return lam * 1e6 if np.nanmax(np.abs(lam)) < 1e-4 else lam


def point_vector(ap, xpos, ypos):
    """(wavelength [um], PS) at the source position, or None outside the tabulated grid."""
    cube, w = ap["ps"], ap["ps_wcs"]
    nw, ny, nx = cube.shape
    col = w["CRPIX1"] + (xpos - w["CRVAL1"]) / w["CDELT1"] - 1
    row = w["CRPIX2"] + (ypos - w["CRVAL2"]) / w["CDELT2"] - 1
    if not (0 <= col < nx - 1 and 0 <= row < ny - 1):
        return None
    j, i = int(col), int(row)
    fx, fy = col - j, row - i
    vec = ((1 - fx) * (1 - fy) * cube[:, i, j] + (1 - fx) * fy * cube[:, i + 1, j]
           + fx * (1 - fy) * cube[:, i, j + 1] + fx * fy * cube[:, i + 1, j + 1])
    return _axis(w, nw, 3), vec


def correction_arrays(slit, model, apertures, path):
    """(PS, UN) throughput at each pixel's wavelength (NaN where undefined, read-only arrays), or
    None when the source lies outside the aperture's tabulated positions."""
    if "WAVELENGTH" not in slit:
        raise InputError(model.path or "pathloss", f"slit {slit.name or '(unnamed)'!r} has no WAVELENGTH array")
    pos = [slit.header.get(k, 0.0) for k in ("SRCXPOS", "SRCYPOS")]
    pos = [float(v) if v is not None and np.isfinite(float(v)) else 0.0 for v in pos]
    msa = getattr(known_mode(model.exp_type), "msa", False)
    # master_background_mos corrects every slitlet, un-corrects its background, and the chain
    # corrects the slitlets again: one computation per slitlet (steps/_memo.py)
    key = (file_key(path), msa, str(slit.header.get("SHUTSTA", "") or "").strip() if msa else corr.slit_label(slit, model),
           tuple(pos), digest(slit["WAVELENGTH"]))
    return _MEMO.cached(key, lambda: _correction_arrays(slit, model, apertures, path, pos, msa))


_MEMO = Memo(192 * 2 ** 20)


def _correction_arrays(slit, model, apertures, path, pos, msa):
    if msa:
        ap, pos[1], un = _mos_aperture(apertures, str(slit.header.get("SHUTSTA", "") or "").strip(), pos[1], path)
    else:
        name = corr.slit_label(slit, model)
        ap = apertures.get(str(name).strip().upper())
        if ap is None:
            raise InputError(path, f"no pathloss aperture for slit {name or '(unnamed)'!r}")
        un = ap["uni"]
    ps_vec = point_vector(ap, *pos)
    if ps_vec is None:
        return None
    un_vec = (_axis(ap["uni_wcs"], un.size, 1), un)
    lam = np.asarray(slit["WAVELENGTH"], dtype=np.float64)
    out = []
    for wave, vec in (ps_vec, un_vec):
        order = np.argsort(wave)
        c = corr.interp_nan(lam, wave[order], vec[order])
        with np.errstate(invalid="ignore"):
            out.append(np.where(c > 0, c, np.nan))
    return out[0], out[1]


def _closed_beside(state):
    """(below closed, above closed): the neighbours of the source's shutter ("x") in SHUTSTA."""
    i = state.find("x")
    return i <= 0 or state[i - 1] == "0", i == len(state) - 1 or state[i + 1] == "0"


def _mos_aperture(apertures, state, ypos, path):
    """(aperture, source y in its grid, uniform throughput) of a MOS slitlet (module docstring)."""
    below, above = _closed_beside(state)
    want = 1 if below and above else 3
    ap = next((a for a in apertures.values() if a["shutters"] is not None and int(a["shutters"]) == want), None)
    if ap is None:
        raise InputError(path, f"no {want}-shutter aperture (header SHUTTERS) for shutter state {state!r}")
    if below and not above:
        ypos -= 1.0
    elif above and not below:
        ypos += 1.0
    uni = ap["uni"]
    one, three = apertures.get("MOS1X1"), apertures.get("MOS1X3")
    if len(state) == 2 and one is not None and three is not None and one["uni"].size == three["uni"].size \
            and one["uni_wcs"] == three["uni_wcs"]:
        uni = 0.5 * (one["uni"] + three["uni"])
    return ap, ypos, uni
