"""The official jwst AssignWcsStep, offline, on one `_rate` with our optical-model references.

    python nrs_fs_wcs_official.py RATE REFS_JSON BOXES_JSON OUT_NPZ

REFS_JSON: {reftype: path}, each handed over as ``override_<reftype>``; BOXES_JSON: {slit: [x0, x1,
y0, y1]} (0-based inclusive image pixels). For each slit, OUT_NPZ holds the official gwcs
evaluated on every pixel of its box (bounding box ignored): ``<slit>_lam`` [um], ``_ra``, ``_dec``
[deg]. CRDS is never contacted: the client answers "N/A" for every reference type, so only the
overridden files are used. A separate process keeps the patching out of the test process.
"""

import json
import os
import sys
import tempfile
import time
import warnings


def offline():
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "True"
    os.environ.setdefault("CRDS_PATH", tempfile.mkdtemp(prefix="crds_"))
    os.environ["CRDS_SERVER_URL"] = "https://127.0.0.1:9"
    import stpipe.crds_client as client

    client.get_context_used = lambda observatory: "jwst_offline.pmap"
    client.get_multiple_reference_paths = lambda parameters, reftypes, observatory: {r: "N/A" for r in reftypes}
    client.get_reference_file = lambda parameters, reftype, observatory: "N/A"


def main(rate, refs_json, boxes_json, out):
    offline()
    warnings.simplefilter("ignore")
    import numpy as np
    from jwst.assign_wcs import AssignWcsStep
    from jwst.assign_wcs.nirspec import nrs_wcs_set_input
    from stdatamodels.jwst import datamodels as dm

    refs = json.load(open(refs_json))
    boxes = json.load(open(boxes_json))
    t0 = time.perf_counter()
    # a model, not the path: stpipe reads a path's metadata from an ASDF extension ours lack
    res = AssignWcsStep.call(dm.ImageModel(rate), **{f"override_{k}": v for k, v in refs.items()})
    print(f"official assign_wcs: {time.perf_counter() - t0:.2f} s")
    arrays = {}
    for slit, (x0, x1, y0, y1) in boxes.items():
        w = nrs_wcs_set_input(res, slit)
        y, x = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(float)
        ra, dec, lam = w(x, y, with_bounding_box=False)
        arrays.update({f"{slit}_lam": lam, f"{slit}_ra": ra, f"{slit}_dec": dec})
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(*sys.argv[1:])
