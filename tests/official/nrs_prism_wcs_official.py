"""The official jwst AssignWcsStep, offline, on several `_rate` files in one process.

    python nrs_prism_wcs_official.py JOBS_JSON

JOBS_JSON: a list of {"rate", "refs_json", "boxes_json", "out"}; each job is one run of
``nrs_fs_wcs_official.main`` (same inputs and outputs: the official gwcs of every slit on every
pixel of its box), so importing jwst (~5 s) is paid once for all of them.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nrs_fs_wcs_official import main  # noqa: E402

if __name__ == "__main__":
    for job in json.load(open(sys.argv[1])):
        main(job["rate"], job["refs_json"], job["boxes_json"], job["out"])
