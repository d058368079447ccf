"""The official jwst AssignWcsStep + Extract2dStep, offline, on one NIRSpec MOS `_rate`.

    python nrs_mos_wcs_official.py RATE REFS_JSON OUT_DIR

REFS_JSON: {reftype: path} of the optical-model references, each handed over as
``override_<reftype>``. The MSA metadata file (MSAMETFL) is found next to RATE (``input_dir``).
Writes OUT_DIR/slits.json (per extracted slitlet: name, slitlet_id, source_id, source_name,
source_alias, stellarity, source_xpos/ypos, source_ra/dec, quadrant, xcen, ycen, shutter_id,
shutter_state, slit_ymin/ymax, slit_x/yscale, xstart/ystart (1-based), xsize/ysize) and
OUT_DIR/wcs.npz (per slitlet ``<name>_lam`` [um], ``_ra``, ``_dec`` [deg]: the slitlet's gwcs
on every pixel of its cutout, bounding box ignored). CRDS is never contacted. A separate process
keeps the patching out of the test process.
"""

import json
import os
import sys
import time
import warnings

from nrs_fs_wcs_official import offline  # the script's directory is on sys.path


def main(rate, refs_json, outdir):
    offline()
    warnings.simplefilter("ignore")
    import numpy as np
    from jwst.assign_wcs import AssignWcsStep
    from jwst.extract_2d import Extract2dStep
    from stdatamodels.jwst import datamodels as dm

    refs = json.load(open(refs_json))
    t0 = time.perf_counter()
    res = AssignWcsStep.call(dm.ImageModel(rate), input_dir=os.path.dirname(os.path.abspath(rate)),
                             **{f"override_{k}": v for k, v in refs.items()})
    t1 = time.perf_counter()
    ext = Extract2dStep.call(res)
    t2 = time.perf_counter()
    print(f"official assign_wcs {t1 - t0:.2f} s, extract_2d {t2 - t1:.2f} s, {len(ext.slits)} slitlets")
    slits, arrays = [], {}
    for s in ext.slits:
        slits.append({k: (v if isinstance(v, (str, type(None))) else v.item() if hasattr(v, "item") else v)
                      for k, v in ((k, getattr(s, k)) for k in (
                          "name", "slitlet_id", "source_id", "source_name", "source_alias", "stellarity",
                          "source_xpos", "source_ypos", "source_ra", "source_dec", "quadrant", "xcen", "ycen",
                          "shutter_id", "shutter_state", "slit_ymin", "slit_ymax", "slit_xscale", "slit_yscale",
                          "xstart", "ystart", "xsize", "ysize"))})
        ny, nx = s.data.shape
        y, x = np.mgrid[0:ny, 0:nx].astype(float)
        ra, dec, lam = s.meta.wcs(x, y, with_bounding_box=False)
        arrays.update({f"{s.name}_lam": lam, f"{s.name}_ra": ra, f"{s.name}_dec": dec})
    with open(os.path.join(outdir, "slits.json"), "w") as f:
        json.dump(slits, f, indent=1)
    np.savez(os.path.join(outdir, "wcs.npz"), **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
