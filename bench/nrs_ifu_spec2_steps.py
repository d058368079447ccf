"""NIRSpec IFU Stage 2 steps on one full-frame NRS1 exposure: ours against the official, same
inputs, same reference files (assign_wcs, flat_field, photom).

    python bench/nrs_ifu_spec2_steps.py [--workdir DIR] [--repeat 3] [--seed 0]

Input: ``webbspec simulate nrs_ifu DIR --seed S`` (small: NRS1, 2048 x 2048, 30 slices, 1.98 M
slice pixels), its first science `_rate` and the references its store selects. Ours: each step in
this process after one warm-up (imports and reference parsing excluded, as a Snakemake job pays
them once), the median of ``--repeat`` runs: wall and CPU. Theirs: jwst's AssignWcsStep,
FlatFieldStep and PhotomStep, offline (``override_<reftype>`` for every file), the CPU time of
each ``call`` (stpipe overhead included). Simulation, ours and theirs each run in their own process
started from a light parent (Linux keeps a parent's peak RSS across exec): peak RSS of each.
Writes bench/results/nrs_ifu_spec2_steps.{json,md}.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OFFICIAL_DIR = os.path.join(os.path.dirname(HERE), "tests", "official")
STEPS = ("assign_wcs", "flat_field", "photom")


def _timed(fn, *args, **kw):
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t, time.process_time() - c


def official(rate, refs_json, out_json):
    """The official steps in this process (run as a subprocess of the bench)."""
    sys.path.insert(0, OFFICIAL_DIR)
    from nrs_fs_wcs_official import offline

    offline()
    import warnings

    warnings.simplefilter("ignore")
    from jwst.assign_wcs import AssignWcsStep
    from jwst.flatfield import FlatFieldStep
    from jwst.photom import PhotomStep
    from stdatamodels.jwst import datamodels as dm

    refs = json.load(open(refs_json))
    own = {"flat_field": ("fflat", "sflat", "dflat"), "photom": ("photom", "area")}
    wcs = {f"override_{k}": v for k, v in refs.items() if k not in own["flat_field"] + own["photom"]}
    res, times = dm.IFUImageModel(rate), {}
    for name, cls, kw in (("assign_wcs", AssignWcsStep, wcs),
                          ("flat_field", FlatFieldStep, {f"override_{k}": refs[k] for k in own["flat_field"]}),
                          ("photom", PhotomStep, {f"override_{k}": refs[k] for k in own["photom"]})):
        res, wall, cpu = _timed(cls.call, res, **kw)
        times[name] = {"wall": wall, "cpu": cpu}
    times["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    json.dump(times, open(out_json, "w"), indent=1)


def ours(rate, store, repeat, out_json):
    from webbspec.io import datamodels, refs
    from webbspec.steps import assign_wcs, flat_field, photom

    modules = {"assign_wcs": assign_wcs, "flat_field": flat_field, "photom": photom}
    model = datamodels.read(rate)
    sel = {name: refs.bestrefs(model.primary, mod.REFTYPES, store) for name, mod in modules.items()}
    runs = {name: [] for name in STEPS}
    for k in range(repeat + 1):                       # the first run warms up (reference parsing)
        m = model
        for name in STEPS:
            m, wall, cpu = _timed(modules[name].run, m, sel[name])
            if k:
                runs[name].append((wall, cpu))
    out = {name: {"wall": statistics.median(w for w, _ in r), "cpu": statistics.median(c for _, c in r)}
           for name, r in runs.items()}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["refs"] = {k: v for s in sel.values() for k, v in s.items() if os.path.isfile(str(v))}
    json.dump(out, open(out_json, "w"), indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "wsbench_nrs_ifu"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--official-run", nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--ours-run", nargs=4, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.official_run:
        return official(*a.official_run)
    if a.ours_run:
        return ours(a.ours_run[0], a.ours_run[1], int(a.ours_run[2]), a.ours_run[3])
    prog = os.path.join(a.workdir, "prog")
    me = [sys.executable, os.path.abspath(__file__)]
    if not os.path.isdir(prog):
        subprocess.run([sys.executable, "-m", "webbspec", "simulate", "nrs_ifu", prog, "--seed", str(a.seed)],
                       check=True, stdout=subprocess.DEVNULL)
    rate = os.path.join(prog, "jw01234001001_03101_00001_nrs1_rate.fits")
    ours_json, off_json = os.path.join(a.workdir, "ours.json"), os.path.join(a.workdir, "official.json")
    subprocess.run(me + ["--ours-run", rate, os.path.join(prog, "refs"), str(a.repeat), ours_json], check=True)
    mine = json.load(open(ours_json))
    refs_json = os.path.join(a.workdir, "refs.json")
    json.dump(mine.pop("refs"), open(refs_json, "w"), indent=1)
    subprocess.run(me + ["--official-run", rate, refs_json, off_json], check=True, stderr=subprocess.DEVNULL)
    theirs = json.load(open(off_json))
    result = {"exposure": os.path.basename(rate), "ours": mine, "official": theirs,
              "speedup_cpu": {s: theirs[s]["cpu"] / mine[s]["cpu"] for s in STEPS}}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    json.dump(result, open(os.path.join(HERE, "results", "nrs_ifu_spec2_steps.json"), "w"), indent=1)
    lines = [f"# NIRSpec IFU Stage 2 steps, one NRS1 full-frame exposure ({result['exposure']})", "",
             "| step | ours wall [s] | ours CPU [s] | official wall [s] | official CPU [s] | CPU ratio |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {mine[s]['wall']:.2f} | {mine[s]['cpu']:.2f} | {theirs[s]['wall']:.2f} | {theirs[s]['cpu']:.2f} "
              f"| {result['speedup_cpu'][s]:.1f}x |" for s in STEPS]
    lines += ["", f"Peak RSS: ours {mine['peak_rss_mb']:.0f} MB, official {theirs['peak_rss_mb']:.0f} MB."]
    open(os.path.join(HERE, "results", "nrs_ifu_spec2_steps.md"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
