"""Stage 2 of one full-size NIRSpec fixed-slit exposure, webbspec on 2 cores.

    python bench/stage2_full.py [--workdir DIR] [--seed 0]

Simulates the program (``webbspec simulate nrs_fs DIR --scale full``), then runs only the
Stage 2 rules of ONE exposure (its `_cal`, `_s2d`, `_x1d` as snakemake targets) through
``webbspec run DIR --cores 2 <targets>``, measuring wall, CPU, peak memory and the overhead
share (science = time inside webbspec.steps.run_step of the job processes, bench/_hook).
Writes bench/results/stage2_full.{json,md} and prints them.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

from webbspec.program import discover, spec2_chain, spec2_products  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "wsbench"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--reuse", action="store_true", help="reuse a simulated program left by --keep")
    a = p.parse_args()
    machine = C.machine()
    root = os.path.join(a.workdir, "stage2_full")
    os.makedirs(a.workdir, exist_ok=True)
    sim_s = None
    if a.reuse and os.path.isdir(root):
        shutil.rmtree(os.path.join(root, "webbspec"), ignore_errors=True)
        shutil.rmtree(os.path.join(root, ".snakemake"), ignore_errors=True)
    else:
        shutil.rmtree(root, ignore_errors=True)
        t0 = time.time()
        subprocess.run([C.exe("webbspec"), "simulate", "nrs_fs", root, "--scale", "full", "--seed",
                        str(a.seed)], check=True, stdout=subprocess.DEVNULL)
        sim_s = time.time() - t0
    prog = discover(root)
    name = sorted(prog.stage2)[0]
    exp = prog.stage2[name]
    chain = spec2_chain(exp)
    kinds = [k for k in spec2_products(chain) if k != "bsub"]
    targets = [f"webbspec/spec2/{name}_{k}.fits" for k in kinds]
    from astropy.io import fits

    with fits.open(os.path.join(root, exp.path)) as h:
        shape = h["SCI"].data.shape
    timings = os.path.join(root, "timings.jsonl")
    logs = os.path.join(C.RESULTS, "logs")
    os.makedirs(logs, exist_ok=True)
    m = C.run_measured([C.exe("webbspec"), "run", root, "--cores", "2", *targets], cwd=root,
                       log=os.path.join(logs, "stage2_full.log"), timings=timings)
    m.update(C.overhead(m, C.read_timings(timings)))
    steps = []
    for t in C.read_timings(timings):
        if "step" in t["argv"]:
            i = t["argv"].index("step")
            steps.append({"step": t["argv"][i + 1], "process_wall_s": t["wall"], "process_cpu_s": t["cpu"],
                          "science_wall_s": t["sci_wall"], "science_cpu_s": t["sci_cpu"]})
    out = {"machine": machine, "exposure": name, "shape": list(shape), "chain": chain, "targets": targets,
           "simulate_s": sim_s, "run": m, "steps": steps}
    C.write_results("stage2_full", out, markdown(out))
    if not a.keep:
        shutil.rmtree(root, ignore_errors=True)


def markdown(out):
    x, mc = out["run"], out["machine"]
    lines = ["# webbspec Stage 2 of one full-size NIRSpec FS exposure", "",
             f"`{out['exposure']}_rate.fits`, SCI {out['shape'][0]} x {out['shape'][1]}; steps: "
             f"{', '.join(out['chain'])}; `webbspec run DIR --cores 2` with the exposure's "
             f"{', '.join(t.rsplit('_', 1)[1][:-5] for t in out['targets'])} as targets. {mc['cpus']} cores; "
             f"host load (1 min) at start {mc['host_load_1m_at_start']:.1f} (shared machine).", "",
             "| wall s | CPU s | peak RSS largest process MB | peak RSS all processes MB | jobs | "
             "overhead share CPU | overhead share wall | load before/after | rc |",
             "|---|---|---|---|---|---|---|---|---|",
             f"| {x['wall_s']:.1f} | {x['cpu_s']:.1f} | {x['peak_rss_max_process_mb']:.0f} | "
             f"{x['peak_rss_tree_mb']:.0f} | {x['jobs']} | {100 * x['overhead_share_cpu']:.1f}% | "
             f"{100 * x['overhead_share_wall']:.1f}% | {x['host_load_1m_before']:.1f}/"
             f"{x['host_load_1m_after']:.1f} | {x['rc']} |", "",
             f"Science (inside the steps) {x['science_cpu_s']:.1f} CPU s; job processes outside the steps "
             f"(imports, reading/writing glue) {x['job_nonscience_cpu_s']:.1f} CPU s; snakemake engine "
             f"{x['engine_cpu_s']:.1f} CPU s. The overhead share by wall is 1 - (science wall summed over "
             "jobs) / (2 x wall): Stage 2 of one exposure is a chain, so one core idles by construction.", "",
             "| job | process wall s | process CPU s | science wall s | science CPU s |", "|---|---|---|---|---|"]
    for s in out["steps"]:
        lines.append(f"| {s['step']} | {s['process_wall_s']:.2f} | {s['process_cpu_s']:.2f} | "
                     f"{s['science_wall_s']:.2f} | {s['science_cpu_s']:.2f} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
