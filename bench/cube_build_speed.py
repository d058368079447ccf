"""cube_build: ours against the official CubeBuildStep on the same official MRS `_cal` files.

The recipe ../shared/recipes/official-mrs-ifu makes toy official references and 4 dithered
MIRIFUSHORT 12SHORT exposures; the official AssignWcsStep and CubeBuildStep (output_type band, both
channel cubes) run offline in their own process (tests/official/cube_build_official.py, CPU
seconds per step). Our exposures are made from the official gwcs (not timed: in our pipeline
assign_wcs writes those arrays) and our cube_build runs on the same grid with the same weighting;
medians of ``--repeat`` runs, CPU and wall, and the agreement per spaxel (median |ours/official - 1|
over spaxels above 1% of the peak).

    python bench/cube_build_speed.py [--nexp 4] [--repeat 3] [--weightings drizzle,emsm]
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "official"))
from _common import RESULTS, machine  # noqa: E402

RECIPE = os.environ.get("WEBBSPEC_MRS_RECIPE", os.path.join(REPO, "..", "shared", "recipes", "official-mrs-ifu"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nexp", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--weightings", default="drizzle,emsm")
    ap.add_argument("--workdir", default=None, help="reuse a directory with the official products")
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="cube_build_bench_")
    if not os.path.exists(os.path.join(work, "times.json")):
        print(f"official recipe + AssignWcsStep + CubeBuildStep in {work} ...", flush=True)
        for cmd in (["build_refs_mrs.py"], ["make_rate_mrs.py", str(args.nexp)]):
            subprocess.run([sys.executable, os.path.join(RECIPE, cmd[0]), *cmd[1:]], cwd=work, check=True,
                           capture_output=True)
        subprocess.run([sys.executable, os.path.join(REPO, "tests", "official", "cube_build_official.py"),
                        "official", work, args.weightings, str(args.nexp)], cwd=work, check=True, capture_output=True)
    official = json.load(open(os.path.join(work, "times.json")))
    from cube_build_official import exposure_from_cal
    from webbspec.io import cubes
    from webbspec.steps import cube_build

    exps = [exposure_from_cal(p) for p in sorted(glob.glob(os.path.join(work, "jw*_cal.fits")))]
    cubepar = json.load(open(os.path.join(work, "refs_mrs", "refs.json")))["cubepar"]
    rows = []
    for wt in args.weightings.split(","):
        wall, cpu = [], []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            ours = cube_build.run(exps, {"cubepar": cubepar}, weighting=wt)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        agree = []
        for cube in ours:
            off = cubes.read(os.path.join(work, f"off_{wt}_{cube.name}_s3d.fits"))
            b = np.isfinite(cube.sci) & np.isfinite(off.sci) & (off.sci > 0.01 * np.nanmax(off.sci))
            agree.append(float(np.median(np.abs(cube.sci[b] / off.sci[b] - 1))))
        row = {"weighting": wt, "exposures": len(exps), "official_cpu_s": official[f"cube_build_{wt}"],
               "ours_cpu_s": float(np.median(cpu)), "ours_wall_s": float(np.median(wall)),
               "median_rel_diff_per_spaxel": max(agree)}
        row["speedup_cpu"] = row["official_cpu_s"] / row["ours_cpu_s"]
        rows.append(row)
    out = {"name": "cube_build_speed", "machine": machine(), "load_after": os.getloadavg()[0], "rows": rows,
           "official_assign_wcs_cpu_s": official.get("assign_wcs")}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "cube_build_speed.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    lines = ["# cube_build: webbspec vs the official CubeBuildStep (MRS 12SHORT, both channel cubes)", "",
             f"{len(exps)} exposures; medians of {args.repeat} runs of ours; host load "
             f"{out['machine']['host_load_1m_at_start']:.1f} -> {out['load_after']:.1f}. Official assign_wcs CPU "
             f"per exposure (not in the cube time): {', '.join(f'{t:.1f}' for t in official.get('assign_wcs', []))} s.",
             "", "| weighting | official CPU [s] | ours CPU [s] | ours wall [s] | speed-up CPU | median per-spaxel diff |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['weighting']} | {r['official_cpu_s']:.1f} | {r['ours_cpu_s']:.2f} | {r['ours_wall_s']:.2f} | "
                     f"{r['speedup_cpu']:.1f}x | {r['median_rel_diff_per_spaxel']:.1e} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(RESULTS, "cube_build_speed.md"), "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
