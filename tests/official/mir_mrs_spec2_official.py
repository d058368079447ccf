"""The official jwst MRS Stage 2 calibration steps, offline, on one simulated `_rate` with our references.

    python mir_mrs_spec2_official.py RATE REFS_JSON OUT_NPZ [--straylight]

REFS_JSON: {reftype: path}: distortion, specwcs, regions, wavelengthrange, mrsxartcorr, flat, fringe,
photom (each handed over as ``override_<reftype>``; every other type "N/A"). Runs AssignWcsStep,
(with ``--straylight``: StraylightStep,) FlatFieldStep, FringeStep, PhotomStep in the calwebb_spec2
order and saves the SCI after each (``straylight``, ``flat_field``, ``fringe``, ``photom``) and the
final ERR / VAR_FLAT / DQ. The official StraylightStep took 254 s (wall, 2 busy cores) on one
exposure here: too slow for the CI budget, hence opt-in.
"""

import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from nrs_fs_wcs_official import offline  # noqa: E402


def main(rate, refs_json, out, *flags):
    offline()
    warnings.simplefilter("ignore")
    import numpy as np
    from jwst.assign_wcs import AssignWcsStep
    from jwst.flatfield import FlatFieldStep
    from jwst.fringe import FringeStep
    from jwst.photom import PhotomStep
    from jwst.straylight import StraylightStep
    from stdatamodels.jwst import datamodels as dm

    refs = json.load(open(refs_json))

    def call(step, model):
        over = {f"override_{rt}": refs.get(rt, "N/A") for rt in step.reference_file_types}
        t0 = time.perf_counter()
        res = step.call(model, **over)
        print(f"official {step.class_alias}: {time.perf_counter() - t0:.2f} s", flush=True)
        return res

    arrays = {}
    model = call(AssignWcsStep, dm.IFUImageModel(rate))
    steps = ((StraylightStep,) if "--straylight" in flags else ()) + (FlatFieldStep, FringeStep, PhotomStep)
    for step in steps:
        model = call(step, model)
        arrays[step.class_alias] = np.array(model.data)
    arrays.update(err=np.array(model.err), var_flat=np.array(model.var_flat), dq=np.array(model.dq))
    print("status:", {s: getattr(model.meta.cal_step, s) for s in ("flat_field", "fringe", "photom")},
          "bunit:", model.meta.bunit_data)
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
