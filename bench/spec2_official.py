"""Stage 2 (and the whole program) side by side with the official pipeline, same inputs, same run.

    python bench/spec2_official.py [--workdir DIR] [--seed 0] [--reuse] [--keep]

Simulates a full-size NIRSpec FS program (``webbspec simulate nrs_fs DIR --scale full``: 3 nods x
NRS1/NRS2 = 6 full-frame `_rate` files, reference files in the official formats). Then, one after
the other on this machine:

1. ours, Stage 2 only, one job per exposure (``workflow.spec2_jobs: exposure``), through
   ``webbspec run DIR --cores 2``: wall, CPU, peak memory of the run, and per exposure the wall of
   its job process (interpreter start to exit: imports, reading, the steps, writing; not
   Snakemake's own start or scheduling), from the bench/_hook timings;
2. the official calwebb_spec2 on each of the same `_rate` files with the same reference files
   (tests/official/official_jwst.py ``spec2``, one process per exposure): wall, CPU, peak memory
   per exposure;
3. the whole program from `_rate` to Level 3, ours (``webbspec run DIR --cores 2``: Stage 2 +
   Stage 3, one job per exposure; and again with the default one job per step) against the official
   Spec2 on every exposure followed by calwebb_spec3 on the
   program's spec3 association (official_jwst.py ``spec3``).

Targets (issue 17): our job for one exposure >= 10x faster than the official Spec2 per exposure;
the whole program >= 5x faster than the official Spec2 + Spec3.
Writes bench/results/spec2_official.{json,md} and prints them.
"""

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

OFFICIAL = os.path.join(C.REPO, "tests", "official", "official_jwst.py")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "wsbench_spec2"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", default="full")
    p.add_argument("--reuse", action="store_true", help="reuse a simulated program left by --keep")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--save-intermediates", action="store_true",
                   help="our chain also writes every step's file (default: the products only, as the official)")
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    sim = os.path.join(a.workdir, "simulated")
    if not (a.reuse and os.path.isdir(sim)):
        shutil.rmtree(sim, ignore_errors=True)
        subprocess.run([C.exe("webbspec"), "simulate", "nrs_fs", sim, "--seed", str(a.seed), "--scale", a.scale],
                       check=True, stdout=subprocess.DEVNULL)
    rates = sorted(glob.glob(os.path.join(sim, "*_rate.fits")))
    out = {"machine": C.machine(), "exposures": len(rates), "scale": a.scale,
           "save_intermediates": a.save_intermediates}

    # 1. ours, Stage 2 only, one job per exposure
    conf = os.path.join(a.workdir, "stage2_exposure_jobs.yaml")
    with open(conf, "w") as f:
        f.write("workflow:\n  spec2_jobs: exposure\n  stage3: false\n"
                f"  save_intermediates: {'true' if a.save_intermediates else 'false'}\n")
    ours2 = _fresh(sim, os.path.join(a.workdir, "ours_stage2"))
    timings = os.path.join(a.workdir, "ours_stage2.timings")
    m = C.run_measured([C.exe("webbspec"), "run", ours2, "--cores", "2", "--configfile", conf],
                       log=os.path.join(a.workdir, "ours_stage2.log"), timings=timings)
    jobs = [r for r in C.read_timings(timings) if "chain" in r["argv"]]
    m["job_wall_s"] = sorted(r["wall"] for r in jobs)
    m["job_cpu_s"] = sorted(r["cpu"] for r in jobs)
    out["ours_stage2"] = m

    # 2. the official Spec2, one process per exposure, same rate files and reference files
    offdir = os.path.join(a.workdir, "official")
    shutil.rmtree(offdir, ignore_errors=True)
    os.makedirs(offdir)
    per = []
    for rate in rates:
        r = C.run_measured([sys.executable, OFFICIAL, "spec2", rate, os.path.join(sim, "refs"), offdir],
                           log=os.path.join(offdir, os.path.basename(rate) + ".log"))
        per.append(r)
    out["official_stage2"] = per

    # 3. the whole program, _rate to Level 3
    ours_all = _fresh(sim, os.path.join(a.workdir, "ours_all"))
    conf_all = os.path.join(a.workdir, "program_exposure_jobs.yaml")
    with open(conf_all, "w") as f:
        f.write("workflow:\n  spec2_jobs: exposure\n"
                f"  save_intermediates: {'true' if a.save_intermediates else 'false'}\n")
    out["ours_program"] = C.run_measured([C.exe("webbspec"), "run", ours_all, "--cores", "2", "--configfile", conf_all],
                                         log=os.path.join(a.workdir, "ours_all.log"))
    ours_default = _fresh(sim, os.path.join(a.workdir, "ours_default"))
    out["ours_program_default"] = C.run_measured([C.exe("webbspec"), "run", ours_default, "--cores", "2"],
                                                 log=os.path.join(a.workdir, "ours_default.log"))
    asns = [p for p in glob.glob(os.path.join(sim, "*_asn.json")) if _level(p) == 3]
    spec3 = []
    for asn in asns:
        dst = os.path.join(offdir, os.path.basename(asn))
        shutil.copyfile(asn, dst)
        spec3.append(C.run_measured([sys.executable, OFFICIAL, "spec3", dst, offdir],
                                    log=dst + ".log", cwd=offdir))
    out["official_stage3"] = spec3
    C.write_results("spec2_official", out, markdown(out))
    if not a.keep:
        for d in (ours2, ours_all, ours_default):
            shutil.rmtree(d, ignore_errors=True)


def _fresh(src, dst):
    """A copy of the simulated program (inputs only) to run in."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("webbspec", "truth"))
    return dst


def _level(asn):
    from webbspec.io import associations

    return associations.read(asn, check_files=False).level


def _med(values):
    return statistics.median(values) if values else float("nan")


def markdown(out):
    o2, f2 = out["ours_stage2"], out["official_stage2"]
    job = _med(o2["job_wall_s"])
    off = _med([r["wall_s"] for r in f2])
    off_cpu = _med([r["cpu_s"] for r in f2])
    ours_prog = out["ours_program"]["wall_s"]
    off_prog = sum(r["wall_s"] for r in f2) + sum(r["wall_s"] for r in out["official_stage3"])
    off_prog_cpu = sum(r["cpu_s"] for r in f2) + sum(r["cpu_s"] for r in out["official_stage3"])
    lines = [
        f"# Stage 2 and the whole program vs the official pipeline ({out['exposures']} {out['scale']}-size "
        f"NIRSpec FS exposures, same run)", "",
        f"machine: {out['machine']}", "",
        "| what | webbspec | official | ratio (official / ours) | target |",
        "|---|---|---|---|---|",
        f"| one exposure's Stage 2 (our chain job, median; official Spec2 process, median) [s] | "
        f"{job:.2f} | {off:.2f} | {off / job:.1f}x | >= 10x |",
        f"| one exposure's Stage 2, CPU [s] | {_med(o2['job_cpu_s']):.2f} | {off_cpu:.2f} | "
        f"{off_cpu / _med(o2['job_cpu_s']):.1f}x | |",
        f"| Stage 2 of the program, wall (ours: `webbspec run --cores 2`; official: sum) [s] | "
        f"{o2['wall_s']:.1f} | {sum(r['wall_s'] for r in f2):.1f} | "
        f"{sum(r['wall_s'] for r in f2) / o2['wall_s']:.1f}x | |",
        f"| whole program `_rate` -> Level 3, wall [s] | {ours_prog:.1f} | {off_prog:.1f} | "
        f"{off_prog / ours_prog:.1f}x | >= 5x |",
        f"| whole program, CPU [s] | {out['ours_program']['cpu_s']:.1f} | {off_prog_cpu:.1f} | "
        f"{off_prog_cpu / out['ours_program']['cpu_s']:.1f}x | |",
        f"| whole program with the default one job per Stage 2 step, wall [s] | "
        f"{out['ours_program_default']['wall_s']:.1f} | {off_prog:.1f} | "
        f"{off_prog / out['ours_program_default']['wall_s']:.1f}x | |",
        f"| peak memory, summed PSS of the run / largest official process [MB] | "
        f"{out['ours_program']['peak_pss_tree_mb']:.0f} | "
        f"{max(r['peak_rss_max_process_mb'] for r in f2 + out['official_stage3']):.0f} | | |",
        "", "Per-exposure job walls, ours [s]: " + ", ".join(f"{v:.2f}" for v in o2["job_wall_s"]),
        "Official Spec2 walls [s]: " + ", ".join(f"{r['wall_s']:.2f}" for r in f2),
        "Official Spec3 walls [s]: " + ", ".join(f"{r['wall_s']:.2f}" for r in out["official_stage3"]),
        f"Return codes: ours {o2['rc']}, {out['ours_program']['rc']}; official "
        f"{[r['rc'] for r in f2 + out['official_stage3']]}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
