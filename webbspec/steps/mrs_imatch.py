"""mrs_imatch (Stage 3, MIRI MRS): match the sky levels of the exposures of one association.

As the seeds describe the official step: the intensities of the 2-D MRS exposures are matched by
fitting, per exposure, a polynomial "background" defined in world coordinates (RA, Dec,
wavelength) to the exposures' cubes, so that the mismatch between exposures is least; the
backgrounds are recorded and subtracted from the data only with ``subtract`` (default False).

Per MRS band (channel, sub-band), on a coarse common cube: each exposure's pixels of that channel
(finite SCI, not DO_NOT_USE) are binned into voxels of a tangent plane about the first exposure's
reference (cells one slice width square) x wavelength (bins of about 30 detector rows), and the
median of each voxel is that exposure's "cube". Unknowns: per exposure a polynomial P_i(x, y, lam)
of degree ``bkg_degree`` in each coordinate (tensor product; coordinates scaled to [-1, 1] over the
grid). Least squares of D_i(v) - P_i(v) - M(v) over every voxel v seen by two or more exposures,
M(v) the common sky (eliminated: each voxel is centred on its mean), with voxels whose residual is
beyond 3 robust sigma dropped and the fit repeated (a source sampled at different sub-voxel
phases by the dithers does not cancel; the sky does). A common polynomial added to every exposure
leaves the mismatch unchanged: the minimum-norm solution is taken, i.e. the backgrounds sum to
zero over the exposures (levels relative to their mean; what matters to a cube is that exposures
agree).

Records on each exposure (PRIMARY): ``BKGLEV<c>`` the mean of its polynomial over its pixels of
channel c [SCI units], ``BKGLEVEL`` their mean, ``BKGSUB`` whether subtracted, ``BKGDEG``,
``S_MRSMAT`` COMPLETE (SKIPPED with fewer than two exposures of a band). Returns new Models (the
arrays that are not changed are shared with the input).
"""

import os
import warnings

import numpy as np

from .. import dq as dqbits
from ..errors import InputError
from ..instruments.miri import MRS_EXP_TYPE, is_mrs
from ..io.skycoords import radec_to_xieta, xieta_to_radec
from ._call import accepts_files

REFTYPES = ()

_ROWS_PER_BIN = 30     # detector rows (along the dispersion) per wavelength bin
_CLIP = 3.0            # robust sigma beyond which a voxel is dropped
_ITER = 5
_MIN_PIX = 3           # pixels an exposure needs in a voxel for its median to count


@accepts_files
def run(model, refs=None, *, bkg_degree=1, subtract=False):
    """Match the exposures ``model`` (a list of MRS exposure Models); returns a list of new Models
    (one Model for one Model: nothing to match, S_MRSMAT SKIPPED)."""
    from ..io import datamodels

    items = [datamodels.read(os.fspath(m)) if isinstance(m, (str, os.PathLike)) else m
             for m in (model if isinstance(model, (list, tuple)) else [model])]
    if int(bkg_degree) < 0:
        raise InputError("mrs_imatch", f"bkg_degree {bkg_degree!r} must be >= 0")
    outs = [m.copy(arrays=False) for m in items]
    groups = {}
    for i, m in enumerate(outs):
        if not is_mrs(m.primary.get("EXP_TYPE")):
            raise InputError(m.path or "mrs_imatch", f"mrs_imatch is for {MRS_EXP_TYPE} exposures, "
                                                     f"not {m.primary.get('EXP_TYPE')}")
        for ch in str(m.primary.get("CHANNEL", "")).strip():
            if ch in "1234":
                groups.setdefault((ch, str(m.primary.get("BAND", "")).strip().upper()), []).append(i)
    levels = [dict() for _ in outs]
    matched = False
    for (ch, _band), idx in sorted(groups.items()):
        if len(idx) < 2:
            continue
        clouds = [_pixels(outs[i], ch) for i in idx]
        polys = match(clouds, int(bkg_degree))
        matched = True
        for i, (cloud, _), poly in zip(idx, clouds, polys):
            bkg = poly(cloud)
            levels[i][ch] = float(np.mean(bkg)) if bkg.size else 0.0
            if subtract and bkg.size:
                s = outs[i].slits[0]
                sci = np.array(s["SCI"], dtype=np.float32, copy=True)
                sci[cloud.rows, cloud.cols] -= bkg.astype(np.float32)
                s["SCI"] = sci
    for m, lev in zip(outs, levels):
        p = m.primary
        for ch, v in sorted(lev.items()):
            p[f"BKGLEV{ch}"] = (v, f"mrs_imatch background of channel {ch}")
        if lev:
            p["BKGLEVEL"] = (float(np.mean(list(lev.values()))), "mrs_imatch mean background level")
        p["BKGSUB"] = (bool(subtract and lev), "background subtracted by mrs_imatch")
        p["BKGDEG"] = (int(bkg_degree), "mrs_imatch polynomial degree")
        p["S_MRSMAT"] = "COMPLETE" if matched and lev else "SKIPPED"
    return outs if isinstance(model, (list, tuple)) else outs[0]     # one exposure (webbspec step): SKIPPED


class _Cloud:
    """One exposure's usable pixels of one channel: detector (rows, cols), common-frame (xi, eta)
    [arcsec], wavelength [um], SCI."""

    def __init__(self, rows, cols, xi, eta, lam, sci, width):
        self.rows, self.cols, self.xi, self.eta, self.lam, self.sci = rows, cols, xi, eta, lam, sci
        self.width = width


def _pixels(model, channel, ref=None):
    s = model.slits[0]
    for k in ("SCI", "WAVELENGTH", "XI", "ETA", "SLICE"):
        if k not in s:
            raise InputError(model.path or "mrs_imatch", f"MRS exposure lacks {k} (run assign_wcs first)")
    sci = np.asarray(s["SCI"])
    dq = np.asarray(s["DQ"]) if "DQ" in s else np.zeros(sci.shape, np.uint32)
    lam = np.asarray(s["WAVELENGTH"])
    with np.errstate(invalid="ignore"):
        use = ((np.asarray(s["SLICE"]) // 100) == int(channel)) & np.isfinite(sci) & np.isfinite(lam) \
            & ((dq & dqbits.DO_NOT_USE) == 0)
    rows, cols = np.nonzero(use)
    own = (float(s.header["WSREFRA"]), float(s.header["WSREFDE"]))
    xi = np.asarray(s["XI"], float)[rows, cols]
    eta = np.asarray(s["ETA"], float)[rows, cols]
    width = float(s.header.get(f"SLCWID{channel}", s.header.get("SLICEWID", 0.2)))
    return _Cloud(rows, cols, xi, eta, lam[rows, cols].astype(float), sci[rows, cols].astype(float), width), own


def match(clouds, degree=1):
    """The background polynomial of each exposure (callables of a :class:`_Cloud`), from
    ``clouds``: [(cloud, reference (ra, dec))] of one band (module docstring)."""
    ref = clouds[0][1]
    pts = []
    for c, own in clouds:
        xi, eta = c.xi, c.eta
        if own != ref:
            xi, eta = radec_to_xieta(*xieta_to_radec(xi, eta, *own), *ref)
        pts.append((xi, eta))
    cell = max(c.width for c, _ in clouds)
    allx = np.concatenate([p[0] for p in pts])
    ally = np.concatenate([p[1] for p in pts])
    alll = np.concatenate([c.lam for c, _ in clouds])
    if not allx.size:
        return [_Poly(np.zeros(1), degree, (0, 1, 0, 1, 0, 1), ref, o) for _, o in clouds]
    lo = np.array([allx.min(), ally.min(), alll.min()])
    hi = np.array([allx.max(), ally.max(), alll.max()])
    nrows = max(1, int(np.median([np.unique(c.rows).size for c, _ in clouds])))
    nlam = max(1, nrows // _ROWS_PER_BIN)
    nxy = np.maximum(1, np.ceil((hi[:2] - lo[:2]) / cell).astype(int))
    shape = (int(nxy[0]), int(nxy[1]), nlam)
    box = (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])
    # per exposure: voxel medians
    vox_ids, meds = [], []
    for (c, _), (x, y) in zip(clouds, pts):
        ix = np.minimum(((x - lo[0]) / cell).astype(int), shape[0] - 1)
        iy = np.minimum(((y - lo[1]) / cell).astype(int), shape[1] - 1)
        il = np.minimum(((c.lam - lo[2]) / max(hi[2] - lo[2], 1e-12) * nlam).astype(int), nlam - 1)
        key = (ix * shape[1] + iy) * nlam + il
        ids, med = _group_median(key, c.sci)
        vox_ids.append(ids)
        meds.append(med)
    # observations: (voxel, exposure, median) for voxels seen by >= 2 exposures
    v_all = np.concatenate(vox_ids)
    e_all = np.concatenate([np.full(v.size, k) for k, v in enumerate(vox_ids)])
    d_all = np.concatenate(meds)
    uniq, inv, counts = np.unique(v_all, return_inverse=True, return_counts=True)
    keep = counts[inv] >= 2
    v, e, d, g = v_all[keep], e_all[keep], d_all[keep], inv[keep]
    n = len(clouds)
    nterm = (degree + 1) ** 3
    if not v.size:
        return [_Poly(np.zeros(nterm), degree, box, ref, o) for _, o in clouds]
    il = v % nlam
    iy = (v // nlam) % shape[1]
    ix = v // (nlam * shape[1])
    centres = (lo[0] + (ix + 0.5) * cell, lo[1] + (iy + 0.5) * cell, lo[2] + (il + 0.5) * (hi[2] - lo[2]) / nlam)
    phi = _terms(*_scaled(centres, box), degree)                # (nobs, nterm)
    active = np.ones(v.size, bool)
    coef = np.zeros(n * nterm)
    for _ in range(_ITER):
        gi = np.unique(g[active], return_inverse=True)[1]
        ng = gi.max() + 1 if gi.size else 0
        cnt = np.bincount(gi, minlength=ng)
        ok = cnt[gi] >= 2
        rows_idx = np.nonzero(active)[0][ok]
        gi = np.unique(gi[ok], return_inverse=True)[1]
        if not rows_idx.size:
            break
        ng = gi.max() + 1
        cnt = np.bincount(gi, minlength=ng)
        x = np.zeros((rows_idx.size, n * nterm))
        for t in range(nterm):
            x[np.arange(rows_idx.size), e[rows_idx] * nterm + t] = phi[rows_idx, t]
        y = d[rows_idx]
        # centre every voxel on its mean (eliminates the common sky M(v))
        xm = np.stack([np.bincount(gi, x[:, j], minlength=ng) for j in range(x.shape[1])], axis=1) / cnt[:, None]
        ym = np.bincount(gi, y, minlength=ng) / cnt
        xc, yc = x - xm[gi], y - ym[gi]
        coef = np.linalg.lstsq(xc, yc, rcond=None)[0]
        resid = yc - xc @ coef
        sigma = 1.4826 * np.median(np.abs(resid - np.median(resid)))
        if not sigma > 0:
            break
        bad_groups = np.unique(gi[np.abs(resid) > _CLIP * sigma])
        if not bad_groups.size:
            break
        # drop whole voxels (their centring would otherwise be biased)
        drop_vox = np.unique(g[rows_idx][np.isin(gi, bad_groups)])
        active &= ~np.isin(g, drop_vox)
    return [_Poly(coef[k * nterm:(k + 1) * nterm], degree, box, ref, o) for k, (_, o) in enumerate(clouds)]


def _group_median(key, values):
    """(unique keys, median of ``values`` per key) for keys with at least _MIN_PIX values."""
    order = np.lexsort((values, key))
    k, vals = key[order], values[order]
    ids, start, cnt = np.unique(k, return_index=True, return_counts=True)
    lo = vals[start + (cnt - 1) // 2]
    hi = vals[start + cnt // 2]
    med = 0.5 * (lo + hi)
    ok = cnt >= _MIN_PIX
    return ids[ok], med[ok]


def _scaled(coords, box):
    out = []
    for c, (a, b) in zip(coords, ((box[0], box[1]), (box[2], box[3]), (box[4], box[5]))):
        half = max((b - a) / 2.0, 1e-12)
        out.append((np.asarray(c, float) - (a + b) / 2.0) / half)
    return out


def _terms(x, y, lam, degree):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.stack([x ** a * y ** b * lam ** c for c in range(degree + 1) for b in range(degree + 1)
                         for a in range(degree + 1)], axis=-1)


class _Poly:
    """A fitted background: ``poly(cloud)`` evaluates it at the cloud's pixels; ``coef`` in the
    order of :func:`_terms` over the grid box ``box`` (common frame about ``ref``)."""

    def __init__(self, coef, degree, box, ref, own):
        self.coef, self.degree, self.box, self.ref, self.own = np.asarray(coef, float), degree, box, ref, own

    def __call__(self, cloud):
        c = cloud[0] if isinstance(cloud, tuple) else cloud
        xi, eta = c.xi, c.eta
        if self.own != self.ref:
            xi, eta = radec_to_xieta(*xieta_to_radec(xi, eta, *self.own), *self.ref)
        if self.coef.size == 1:
            return np.full(c.lam.size, float(self.coef[0]))
        return _terms(*_scaled((xi, eta, c.lam), self.box), self.degree) @ self.coef
