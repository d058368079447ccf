"""The official jwst AssignWcsStep, offline, on one NIRSpec IFU `_rate` with our references.

    python nrs_ifu_wcs_official.py RATE REFS_JSON STEP OUT_NPZ

REFS_JSON: {reftype: path}, each handed over as ``override_<reftype>``. OUT_NPZ holds the
official slice map (``regions``, 2048 x 2048, 0 off the slices) and, on every STEP-th column of
every slice row (plus each slice's first and last columns), the official world coordinates of
the pixel through the slice-mapped WCS: ``x``, ``y``, ``ra``, ``dec`` [deg], ``lam`` [um]. The
whole-frame evaluation of the official IFU WCS costs several GB, hence the subsample. CRDS is
never contacted (``nrs_fs_wcs_official.offline``).
"""

import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nrs_fs_wcs_official import offline  # noqa: E402


def main(rate, refs_json, step, out):
    offline()
    warnings.simplefilter("ignore")
    import numpy as np
    from jwst.assign_wcs import AssignWcsStep
    from stdatamodels.jwst import datamodels as dm

    refs = json.load(open(refs_json))
    t0 = time.perf_counter()
    res = AssignWcsStep.call(dm.IFUImageModel(rate), **{f"override_{k}": v for k, v in refs.items()})
    print(f"official assign_wcs: {time.perf_counter() - t0:.2f} s", flush=True)
    regions = np.asarray(res.regions)
    step = int(step)
    xs, ys = [], []
    for s in range(1, 31):
        yy, xx = np.nonzero(regions == s)
        if xx.size == 0:
            continue
        x0, x1 = xx.min(), xx.max()
        keep = ((xx - x0) % step == 0) | (xx == x1)
        xs.append(xx[keep])
        ys.append(yy[keep])
    x = np.concatenate(xs).astype(float)
    y = np.concatenate(ys).astype(float)
    t0 = time.perf_counter()
    ra, dec, lam = res.meta.wcs(x, y)
    print(f"official WCS on {x.size} pixels: {time.perf_counter() - t0:.2f} s", flush=True)
    np.savez(out, regions=regions.astype(np.int16), x=x, y=y, ra=ra, dec=dec, lam=lam)


if __name__ == "__main__":
    main(*sys.argv[1:])
