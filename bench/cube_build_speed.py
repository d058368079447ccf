"""cube_build: ours against the official CubeBuildStep on the same inputs, MRS and NIRSpec IFU.

MRS: the recipe ../shared/recipes/official-mrs-ifu makes toy official references and 4 dithered
MIRIFUSHORT 12SHORT exposures; the official AssignWcsStep and CubeBuildStep (output_type band, both
channel cubes) run offline in their own process (tests/official/cube_build_official.py, CPU
seconds per step). Our exposures are made from the official gwcs (not timed: in our pipeline
assign_wcs writes those arrays).

NIRSpec IFU: ``webbspec simulate nrs_ifu`` (small: NRS1, G395H/F290LP, 4 dithers; 30 slices on
a full frame); the official AssignWcsStep + CubeBuildStep on its 4 science `_rate` files with the
program's references (override_<reftype>), ours = our assign_wcs (CPU reported apart) then our
cube_build.

Both: the same grid and weighting; ours medians of ``--repeat`` runs (CPU and wall, inputs in
memory as the official's are), the agreement per spaxel (median |ours/official - 1| over spaxels
above 1% of the peak), and our peak RSS (VmHWM of a fresh process running cube_build on the
exposures read from files, one at a time as cube_build does with paths) against the official
process's (assign_wcs + both cube_build runs).

    python bench/cube_build_speed.py [--modes mrs,nrs] [--nexp 4] [--repeat 3] [--weightings drizzle,emsm] [--keep]
"""

import argparse
import glob
import json
import os
import resource
import shutil
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
OFFICIAL = os.path.join(REPO, "tests", "official", "cube_build_official.py")

_PEAK = """
import json, resource, sys, time
from webbspec.steps import cube_build
paths, cubepar, wt = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
c = time.process_time()
cubes = cube_build.run(paths, {"cubepar": cubepar}, weighting=wt)
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"cpu": time.process_time() - c, "rss_mb": peak}))
"""


def _peak(paths, cubepar, wt):
    """(CPU s, peak RSS MB) of our cube_build on ``paths`` in a fresh process: VmHWM, the high-water
    mark of the process's own memory (Linux keeps the parent's RSS at the fork in ru_maxrss across
    exec, so a child of a big process would report the parent's size)."""
    out = subprocess.run([sys.executable, "-c", _PEAK, json.dumps(paths), cubepar, wt], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _agreement(cubes_ours, official_path):
    from webbspec.io import cubes

    agree = []
    for cube in cubes_ours:
        off = cubes.read(official_path(cube.name))
        b = np.isfinite(cube.sci) & np.isfinite(off.sci) & (off.sci > 0.01 * np.nanmax(off.sci))
        agree.append(float(np.median(np.abs(cube.sci[b] / off.sci[b] - 1))))
    return max(agree)


def _time_ours(exps, cubepar, wt, repeat):
    from webbspec.steps import cube_build

    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        ours = cube_build.run(exps, {"cubepar": cubepar}, weighting=wt)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return ours, float(np.median(cpu)), float(np.median(wall))


def mrs(work, args):
    if not os.path.exists(os.path.join(work, "times.json")):
        print(f"MRS: official recipe + AssignWcsStep + CubeBuildStep in {work} ...", flush=True)
        for cmd in (["build_refs_mrs.py"], ["make_rate_mrs.py", str(args.nexp)]):
            subprocess.run([sys.executable, os.path.join(RECIPE, cmd[0]), *cmd[1:]], cwd=work, check=True,
                           capture_output=True)
        subprocess.run([sys.executable, OFFICIAL, "official", work, args.weightings, str(args.nexp)], cwd=work,
                       check=True, capture_output=True)
    official = json.load(open(os.path.join(work, "times.json")))
    from cube_build_official import exposure_from_cal
    from webbspec.io import datamodels

    cals = sorted(glob.glob(os.path.join(work, "jw*_cal.fits")))
    exps = [exposure_from_cal(p) for p in cals]
    os.makedirs(os.path.join(work, "ours"), exist_ok=True)
    ours_files = [datamodels.write(m, os.path.join(work, "ours", os.path.basename(p))) for m, p in zip(exps, cals)]
    cubepar = json.load(open(os.path.join(work, "refs_mrs", "refs.json")))["cubepar"]
    rows = []
    for wt in args.weightings.split(","):
        ours, cpu, wall = _time_ours(exps, cubepar, wt, args.repeat)
        peak = _peak(ours_files, cubepar, wt)
        rows.append({"mode": "MRS 12SHORT (ch1 + ch2 cubes)", "weighting": wt, "exposures": len(exps),
                     "official_cpu_s": official[f"cube_build_{wt}"], "ours_cpu_s": cpu, "ours_wall_s": wall,
                     "ours_peak_rss_mb": peak["rss_mb"], "official_peak_rss_mb": official.get("peak_rss_mb"),
                     "median_rel_diff_per_spaxel": _agreement(ours, lambda n: os.path.join(work, f"off_{wt}_{n}_s3d.fits"))})
    return rows, {"official_assign_wcs_cpu_s": official.get("assign_wcs")}


def nrs(work, args):
    from webbspec.instruments.nirspec import ifu  # noqa: F401  (the IFU reference types)
    from webbspec.io import datamodels, refs
    from webbspec.simulate import simulate
    from webbspec.steps import assign_wcs, cube_build

    prog = os.path.join(work, "prog")
    if not os.path.isdir(prog):
        print(f"NIRSpec IFU: simulating the small program in {prog} ...", flush=True)
        simulate("nrs_ifu", prog, seed=2)
    rates = sorted(glob.glob(os.path.join(prog, "jw01234001001_03101_*_nrs1_rate.fits")))[:args.nexp]
    first = datamodels.read(rates[0])
    sel = refs.bestrefs(first.primary, assign_wcs.REFTYPES + cube_build.REFTYPES, os.path.join(prog, "refs"))
    sel = {k: v for k, v in sel.items() if os.path.isfile(str(v))}
    with open(os.path.join(work, "refs.json"), "w") as fh:
        json.dump(sel, fh)
    if not os.path.exists(os.path.join(work, "times.json")):
        print(f"NIRSpec IFU: official AssignWcsStep + CubeBuildStep on {len(rates)} rates ...", flush=True)
        subprocess.run([sys.executable, OFFICIAL, "official_nrs", work, os.path.join(work, "refs.json"),
                        args.weightings, *rates], cwd=work, check=True, capture_output=True)
    official = json.load(open(os.path.join(work, "times.json")))
    exps, awcs = [], []
    for r in rates:
        m = datamodels.read(r)
        c = time.process_time()
        exps.append(assign_wcs.run(m, sel))
        awcs.append(time.process_time() - c)
    os.makedirs(os.path.join(work, "ours"), exist_ok=True)
    files = [datamodels.write(m, os.path.join(work, "ours", os.path.basename(r).replace("_rate", "_cal")))
             for m, r in zip(exps, rates)]
    rows = []
    for wt in args.weightings.split(","):
        ours, cpu, wall = _time_ours(exps, sel["cubepar"], wt, args.repeat)
        peak = _peak(files, sel["cubepar"], wt)
        rows.append({"mode": "NIRSpec IFU G395H/F290LP NRS1", "weighting": wt, "exposures": len(exps),
                     "official_cpu_s": official[f"cube_build_{wt}"], "ours_cpu_s": cpu, "ours_wall_s": wall,
                     "ours_peak_rss_mb": peak["rss_mb"], "official_peak_rss_mb": official.get("peak_rss_mb"),
                     "median_rel_diff_per_spaxel": _agreement(ours, lambda n: os.path.join(work, f"off_{wt}_{n}_s3d.fits"))})
    return rows, {"official_assign_wcs_cpu_s": official.get("assign_wcs"), "ours_assign_wcs_cpu_s": awcs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="mrs,nrs")
    ap.add_argument("--nexp", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--weightings", default="drizzle,emsm")
    ap.add_argument("--workdir", default=None, help="reuse a directory with the official products (kept)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = ap.parse_args()
    top = args.workdir or tempfile.mkdtemp(prefix="cube_build_bench_")
    rows, extra = [], {}
    try:
        for mode in args.modes.split(","):
            work = os.path.join(top, mode)
            os.makedirs(work, exist_ok=True)
            r, e = {"mrs": mrs, "nrs": nrs}[mode](work, args)
            rows += r
            extra[mode] = e
    finally:
        if not (args.keep or args.workdir):
            shutil.rmtree(top, ignore_errors=True)
    for r in rows:
        r["speedup_cpu"] = r["official_cpu_s"] / r["ours_cpu_s"]
    out = {"name": "cube_build_speed", "machine": machine(), "load_after": os.getloadavg()[0], "rows": rows,
           "extra": extra, "bench_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "cube_build_speed.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    lines = ["# cube_build: webbspec vs the official CubeBuildStep (output_type band, same grid and weighting)", "",
             f"Medians of {args.repeat} runs of ours; CPU seconds; host load {out['machine']['host_load_1m_at_start']:.1f}"
             f" -> {out['load_after']:.1f} (2 cores, shared). Peak RSS of ours: a fresh process running cube_build on the"
             " exposure files; official: the whole official process (assign_wcs + both cube_build runs).",
             "", "| mode | weighting | exposures | official CPU [s] | ours CPU [s] | ours wall [s] | speed-up CPU | "
             "ours peak RSS [MB] | official peak RSS [MB] | median per-spaxel diff |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        off_rss = f"{r['official_peak_rss_mb']:.0f}" if r["official_peak_rss_mb"] else "-"
        lines.append(f"| {r['mode']} | {r['weighting']} | {r['exposures']} | {r['official_cpu_s']:.1f} | {r['ours_cpu_s']:.2f} | "
                     f"{r['ours_wall_s']:.2f} | {r['speedup_cpu']:.1f}x | {r['ours_peak_rss_mb']:.0f} | {off_rss} | "
                     f"{r['median_rel_diff_per_spaxel']:.1e} |")
    for mode, e in extra.items():
        lines.append("")
        lines.append(f"{mode}: assign_wcs CPU per exposure (not in the cube times): official "
                     + ", ".join(f"{t:.1f}" for t in e.get("official_assign_wcs_cpu_s") or [])
                     + (" s; ours " + ", ".join(f"{t:.1f}" for t in e["ours_assign_wcs_cpu_s"]) + " s"
                        if e.get("ours_assign_wcs_cpu_s") else " s"))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(RESULTS, "cube_build_speed.md"), "w") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
