"""Memory of an IFU program run as the workflow runs it: ``webbspec run`` from `_rate` to the Level 3 cubes.

bench/ifu_stage3_speed.py times our Stage 3 steps in one process that holds every exposure at once
(to set them beside the official steps, which do the same); the workflow instead runs Stage 3 as
one prepare job per product and one job per cube, each reading its exposures one at a time. This
bench measures that: ``webbspec simulate <mode> DIR --scale full`` then ``webbspec run DIR --cores
C`` (``spec2_jobs: exposure``), and prints wall, CPU, the peak RSS of the largest single process
(a job: with ``--cores 1`` one runs at a time) and the peak summed PSS of the whole process tree
(Snakemake and its jobs; a page shared by n processes counts 1/n in each).

    python bench/ifu_workflow_memory.py [--modes nrs,mrs] [--cores 1] [--keep]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _common import exe, machine, read_timings, run_measured, write_results  # noqa: E402

_MODES = {"mrs": "mir_mrs", "nrs": "nrs_ifu"}


def _kind(argv):
    """The kind of job a process record is: the rules_entry sub-command (and what), else its program."""
    a = [str(x) for x in argv]
    for i, x in enumerate(a):
        if x in ("chain", "spec3-cubes", "step", "spec3-batch", "exp-to-source"):
            return " ".join(a[i:i + 2]) if x == "spec3-cubes" else x
    return os.path.basename(a[0]) if a else "?"


def _largest_by_kind(records):
    """{kind: peak VmHWM [MB] of its largest process} from the bench/_hook records."""
    out = {}
    for r in records:
        if r.get("peak_rss_mb") is not None:
            k = _kind(r["argv"])
            out[k] = max(out.get(k, 0.0), r["peak_rss_mb"])
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def bench_mode(mode, top, cores):
    prog = os.path.join(top, "prog")
    t = time.perf_counter()
    subprocess.run([exe("webbspec"), "simulate", _MODES[mode], prog, "--scale", "full", "--seed", "0"],
                   check=True, capture_output=True)
    sim = time.perf_counter() - t
    cfg = os.path.join(top, "exp.yaml")
    with open(cfg, "w") as f:
        f.write("workflow: {spec2_jobs: exposure, save_intermediates: false}\n")
    timings = os.path.join(top, "timings.jsonl")
    run = run_measured([exe("webbspec"), "run", prog, "--cores", str(cores), "--configfile", cfg],
                       log=os.path.join(top, "run.log"), timings=timings)
    run["largest_by_kind"] = _largest_by_kind(read_timings(timings))
    out = os.path.join(prog, "webbspec", "spec3")
    cubes = sorted(f for f in os.listdir(out) if f.endswith("_s3d.fits")) if os.path.isdir(out) else []
    rates = [f for f in os.listdir(prog) if f.endswith("_rate.fits")]
    row = {"mode": _MODES[mode], "rates": len(rates), "cores": cores, "simulate_s": sim, "cubes": len(cubes), **run}
    print(f"{mode}: rc {run['rc']}, {run['wall_s']:.0f} s wall, {run['cpu_s']:.0f} s CPU, largest process "
          f"{run['peak_rss_max_process_mb']:.0f} MB, tree PSS {run['peak_pss_tree_mb']:.0f} MB, "
          f"{len(cubes)} Level 3 cubes; largest process by kind [MB]: {run['largest_by_kind']}", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="nrs")
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    top = tempfile.mkdtemp(prefix="ifu_wf_mem_")
    rows = []
    try:
        for mode in args.modes.split(","):
            rows.append(bench_mode(mode, os.path.join(top, mode), args.cores))
    finally:
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)
    res = {"name": "ifu_workflow_memory", "machine": machine(), "rows": rows}
    tag = "ifu_workflow_memory_" + "_".join(args.modes.split(","))
    lines = ["# IFU programs through `webbspec run` (full size, `_rate` to the Level 3 cubes): memory", "",
             f"`webbspec run DIR --cores N` (spec2_jobs: exposure, save_intermediates: false); host load at start "
             f"{res['machine']['host_load_1m_at_start']:.1f}. Largest process = peak RSS of the largest single "
             "process (a job); tree PSS = peak summed PSS of Snakemake and its jobs.", "",
             "| mode | `_rate` files | cores | Level 3 cubes | wall s | CPU s | largest process MB | tree PSS MB | rc |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['rates']} | {r['cores']} | {r['cubes']} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
                     f"{r['peak_rss_max_process_mb']:.0f} | {r['peak_pss_tree_mb']:.0f} | {r['rc']} |")
    for r in rows:
        lines += ["", f"{r['mode']}: largest process of each kind [MB] (VmHWM, bench/_hook): "
                      + ", ".join(f"{k} {v:.0f}" for k, v in r["largest_by_kind"].items())]
    write_results(tag, res, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
