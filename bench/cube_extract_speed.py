"""extract_1d from an IFU cube: ours against the official Extract1dStep, same cube, same aperture.

The cube is a channel-4-MRS-sized IFUCubeModel (600 x 27 x 27, 0.35" spaxels, a point source on a
sloped background, uncovered corners) written by stdatamodels with the official gwcs
(tests/official/cube_extract_official.py); the reference an Extract1dIFUModel (1" radius,
1.5-2" annulus, background subtracted). Both sides get the cube already opened: the official
step's ``run`` on a datamodel (in its own process, offline), ours ``extract_cube`` on a Cube; our
time including reading the file is reported too. EXTENDED (the whole field) and POINT
(ifu_autocen). Medians of ``--repeat`` runs (wall and CPU); the machine is shared.

    python bench/cube_extract_speed.py [--repeat 5] [--shape 600 27 27]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import RESULTS, machine  # noqa: E402

HELPER = os.path.join(os.path.dirname(HERE), "tests", "official", "cube_extract_official.py")
SRCTYPES = ("EXTENDED", "POINT")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--shape", type=int, nargs=3, default=(600, 27, 27))
    args = ap.parse_args()
    from webbspec.algorithms.cube_extract import extract_cube
    from webbspec.io import cubes

    work = tempfile.mkdtemp(prefix="cube_x1d_bench_")
    s3d, ref = os.path.join(work, "cube_s3d.fits"), os.path.join(work, "ifu_extract1d.asdf")
    subprocess.run([sys.executable, HELPER, "make", s3d, *map(str, args.shape)], check=True, capture_output=True)
    subprocess.run([sys.executable, HELPER, "ref", ref, "1.0", "1.5", "2.0"], check=True, capture_output=True)
    print(f"cube {args.shape}; official Extract1dStep x {args.repeat} per source type ...", flush=True)
    subprocess.run([sys.executable, HELPER, "run", s3d, ref, ",".join(SRCTYPES), "1",
                    os.path.join(work, "official"), str(args.repeat)], check=True, capture_output=True)
    rows = []
    for st in SRCTYPES:
        off = np.load(os.path.join(work, f"official_{st}.npz"))
        wall, cpu, wall_read = [], [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            cube = cubes.read(s3d)
            t, c = time.perf_counter(), time.process_time()
            x1d = extract_cube(cube, ref, ifu_set_srctype=st, ifu_autocen=True)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            wall_read.append(time.perf_counter() - t0)
        ratio = np.abs(x1d.spectra[0].table["FLUX"] / off["FLUX"] - 1)
        row = {"srctype": st, "official_wall_s": float(np.median(off["times"])),
               "official_cpu_s": float(np.median(off["cpu"])), "ours_wall_s": float(np.median(wall)),
               "ours_cpu_s": float(np.median(cpu)), "ours_wall_with_read_s": float(np.median(wall_read)),
               "flux_max_rel_diff": float(np.nanmax(ratio))}
        row["speedup_wall"] = row["official_wall_s"] / row["ours_wall_s"]
        row["speedup_cpu"] = row["official_cpu_s"] / row["ours_cpu_s"]
        row["speedup_wall_with_read"] = row["official_wall_s"] / row["ours_wall_with_read_s"]
        rows.append(row)
    out = {"name": "cube_extract_speed", "shape": list(args.shape), "repeat": args.repeat, "machine": machine(),
           "load_after": os.getloadavg()[0], "rows": rows, "target": "ours >= 20x faster"}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "cube_extract_speed.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    lines = ["# extract_1d from a cube: webbspec vs the official Extract1dStep", "",
             f"Cube {tuple(args.shape)} (nwave, ny, nx), medians of {args.repeat} runs; host load "
             f"{out['machine']['host_load_1m_at_start']:.1f} -> {out['load_after']:.1f}.", "",
             "| source | official wall [s] | official CPU [s] | ours wall [s] | ours CPU [s] | ours + read [s] "
             "| speed-up wall | speed-up CPU | max FLUX diff |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['srctype']} | {r['official_wall_s']:.2f} | {r['official_cpu_s']:.2f} | "
                     f"{r['ours_wall_s']:.3f} | {r['ours_cpu_s']:.3f} | {r['ours_wall_with_read_s']:.3f} | "
                     f"{r['speedup_wall']:.0f}x | {r['speedup_cpu']:.0f}x | {r['flux_max_rel_diff']:.1e} |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(RESULTS, "cube_extract_speed.md"), "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
