"""The official jwst AssignWcsStep, offline, on one simulated MIRI MRS `_rate` with our references.

    python mir_mrs_wcs_official.py RATE REFS_JSON OUT_NPZ

REFS_JSON: {reftype: path} (distortion, specwcs, regions, wavelengthrange), each handed over as
``override_<reftype>``. OUT_NPZ: on every pixel of the regions map (plane 7) ``y``, ``x`` (0-based),
the official detector -> alpha_beta values ``alpha``, ``beta``, ``lam`` and detector -> world
``ra``, ``dec``, ``lam_world`` (bounding box ignored). CRDS is never contacted.
"""

import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from nrs_fs_wcs_official import offline  # noqa: E402


def main(rate, refs_json, out):
    offline()
    warnings.simplefilter("ignore")
    import numpy as np
    from jwst.assign_wcs import AssignWcsStep
    from stdatamodels.jwst import datamodels as dm

    refs = json.load(open(refs_json))
    t0 = time.perf_counter()
    res = AssignWcsStep.call(dm.IFUImageModel(rate), **{f"override_{k}": v for k, v in refs.items()})
    print(f"official assign_wcs: {time.perf_counter() - t0:.2f} s; S_WCS {res.meta.cal_step.assign_wcs}")
    with dm.RegionsModel(refs["regions"]) as reg:
        y, x = np.nonzero(reg.regions[7])
    w = res.meta.wcs
    d2ab = w.get_transform("detector", "alpha_beta")
    alpha, beta, lam = d2ab(x.astype(float), y.astype(float))
    ra, dec, lam_w = w(x.astype(float), y.astype(float), with_bounding_box=False)
    np.savez(out, y=y, x=x, alpha=alpha, beta=beta, lam=lam, ra=ra, dec=dec, lam_world=lam_w)


if __name__ == "__main__":
    main(*sys.argv[1:])
