"""The official jwst AssignWcsStep then one calibration step, offline, on a NIRSpec IFU `_rate`.

    python nrs_ifu_calib_official.py STEP RATE REFS_JSON OUT_NPZ

STEP: flat_field or photom. REFS_JSON: {reftype: path} for the WCS types plus the step's, each
handed over as ``override_<reftype>``. OUT_NPZ: ``sci``, ``err`` (float32, 2048 x 2048), ``dq``,
``pixar_sr`` and ``photmjsr`` (meta.photometry), ``bunit``. CRDS is never contacted.
"""

import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nrs_fs_wcs_official import offline  # noqa: E402

STEP_TYPES = {"flat_field": ("fflat", "sflat", "dflat"), "photom": ("photom", "area")}


def main(step, rate, refs_json, out):
    offline()
    warnings.simplefilter("ignore")
    import numpy as np
    from jwst.assign_wcs import AssignWcsStep
    from jwst.flatfield import FlatFieldStep
    from jwst.photom import PhotomStep
    from stdatamodels.jwst import datamodels as dm

    refs = json.load(open(refs_json))
    own = STEP_TYPES[step]
    res = AssignWcsStep.call(dm.IFUImageModel(rate), **{f"override_{k}": v for k, v in refs.items() if k not in own})
    t0 = time.perf_counter()
    cls = {"flat_field": FlatFieldStep, "photom": PhotomStep}[step]
    cal = cls.call(res, **{f"override_{k}": refs.get(k, "N/A") for k in own})
    status = getattr(cal.meta.cal_step, "flat_field" if step == "flat_field" else "photom")
    print(f"official {step}: {time.perf_counter() - t0:.2f} s, {status}", flush=True)
    ph = cal.meta.photometry
    np.savez(out, sci=np.asarray(cal.data, np.float32), err=np.asarray(cal.err, np.float32), dq=np.asarray(cal.dq),
             pixar_sr=ph.pixelarea_steradians or np.nan, photmjsr=ph.conversion_megajanskys or np.nan,
             bunit=str(cal.meta.bunit_data))


if __name__ == "__main__":
    main(*sys.argv[1:])
