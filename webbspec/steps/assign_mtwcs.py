"""assign_mtwcs: put the exposures of a moving target (TARGTYPE = moving) on the target's frame.

Official behaviour: every exposure carries the target's position at its time (MT_RA, MT_DEC, per
slit or in PRIMARY); their mean is MT_AVRA/MT_AVDEC, and each exposure's world coordinates are
shifted by (MT_AVRA - MT_RA, MT_AVDEC - MT_DEC), so the target sits at one sky position in every
exposure and Stage 3 combines it rather than smearing it. No parameters, no reference files.

Here the exposures' coordinates are the per-pixel XI/ETA about WSREFRA/WSREFDE (exp_to_source),
so the shift is applied to that reference point: a shift of a few arcsec moves every pixel of a
slit by the same (dRA, dDec) to well under a milliarcsecond. Runs on a source's ``multi`` model
(one slit per exposure) before the exposures are put on a common reference. Not a moving target,
or MT_RA/MT_DEC missing in any exposure: S_MTWCS = SKIPPED, coordinates untouched.
"""

import numpy as np

from . import _correction as corr
from ._call import accepts_files

REFTYPES = ()


def _is_moving(model):
    return str(model.primary.get("TARGTYPE", "")).strip().lower() == "moving"


def _target(model, slit):
    try:
        ra = float(slit.header.get("MT_RA", model.primary.get("MT_RA")))
        dec = float(slit.header.get("MT_DEC", model.primary.get("MT_DEC")))
    except (TypeError, ValueError):
        return None
    return (ra, dec) if np.isfinite(ra) and np.isfinite(dec) else None


@accepts_files
def run(model, refs=None):
    """A copy of ``model`` with each exposure's coordinates on the target's mean position."""
    out = model.copy()
    targets = [_target(out, s) for s in out.slits]
    if not _is_moving(out) or any(t is None for t in targets) or not targets:
        corr.mark(out, "MTWCS", "SKIPPED")
        return out
    ras, decs = np.array([t[0] for t in targets]), np.array([t[1] for t in targets])
    # mean RA on the circle (a target crossing RA = 0 must not average to 180 deg)
    av_ra = float(np.degrees(np.arctan2(np.sin(np.radians(ras)).mean(),
                                        np.cos(np.radians(ras)).mean())) % 360.0)
    av_dec = float(decs.mean())
    for s, (ra, dec) in zip(out.slits, targets):
        d_ra = ((av_ra - ra + 180.0) % 360.0) - 180.0
        if "WSREFRA" in s.header:
            s.header["WSREFRA"] = (float(s.header["WSREFRA"]) + d_ra, "[deg] RA of the XI/ETA reference")
            s.header["WSREFDE"] = (float(s.header["WSREFDE"]) + av_dec - dec,
                                   "[deg] Dec of the XI/ETA reference")
        for key in ("SRCRA", "SRCDEC"):
            if key in s.header and s.header[key] is not None:
                try:
                    s.header[key] = float(s.header[key]) + (d_ra if key == "SRCRA" else av_dec - dec)
                except (TypeError, ValueError):
                    pass
    out.primary["MT_AVRA"] = (av_ra, "[deg] mean moving-target RA")
    out.primary["MT_AVDEC"] = (av_dec, "[deg] mean moving-target Dec")
    corr.mark(out, "MTWCS", "COMPLETE")
    return out
