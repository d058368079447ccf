"""Per-source Stage 3 science cost: resample_spec + outlier_detection on 3 synthetic nods of a
25 x 341 slit (the shape of a NIRSpec MOS PRISM slitlet), median of repeated runs.

    python bench/step_speed.py        -> prints, writes bench/results/step_speed.json
"""

import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from builders import make_nods  # noqa: E402

from webbspec.steps import outlier_detection, resample_spec  # noqa: E402


def timed(fn, n=15):
    fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return float(np.median(out))


def main():
    m = make_nods(nods=(-0.5, 0.0, 0.5), seed=2, tilt=0.3, curve=0.05)
    res = {"resample_spec_s": timed(lambda: resample_spec.run(m)),
           "outlier_detection_s": timed(lambda: outlier_detection.run(m)),
           "load_1min": os.getloadavg()[0]}
    res["per_source_s"] = res["resample_spec_s"] + res["outlier_detection_s"]
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "step_speed.json"), "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
