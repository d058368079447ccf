"""The whole simulated NIRSpec MOS program, `_rate` to the Level 3 `_x1d`, through ``webbspec run``.

    python bench/mos_scale.py [--nsources 1000] [--seed 0] [--workdir DIR]
                              [--mode auto|whole|by-configuration] [--configurations C ...]
                              [--per-run K] [--keep] [--keep-products]

The program: ``webbspec simulate nrs_mos DIR --nsources 1000 --scale full`` -- 13 MSA
configurations of up to 80 sources (G395M: one slitlet per slot, 85 slitlets with the background
and virtual ones), each observed at 3 nods on NRS1 and NRS2 with an imprint exposure: 78 science
`_rate` files + 26 imprints (84 MB each, 8.7 GB), 1000 sources, each on 6 `_cal` files.
Run: ``webbspec run DIR --cores 2`` with ``workflow.spec2_jobs: exposure`` and
``save_intermediates: false`` (one Stage 2 job per exposure writing the products only, as the
official pipeline does; one job per step would also write 13 step files per exposure, ~25 GB
more), then Stage 3 over every `_cal`. Measured: wall, CPU (every process of the run), peak
memory (largest process; summed RSS / PSS of the process tree), and the workflow's share from the
per-process records of bench/_hook (science = time inside the steps and Stage 3's per-exposure
and per-source entry points; the rest of the job processes = start, imports, glue; the
snakemake process = DAG, scheduling, the local publish rules): see bench/stage3_scale.py.

Disk: the whole program takes ~9 GB of inputs and ~45 GB of products (`_cal` ~230 MB per
exposure with its per-pixel coordinates, `_s2d`, the Stage 3 source slices and products). Where
the free disk is short of that (``--mode auto`` checks), the program runs one MSA configuration
at a time (``--mode by-configuration``): the simulator writes K configurations alone, the same
bytes as in the whole program (``simulate(..., configurations=[c, ...])``), ``webbspec run`` takes
them from `_rate` to Level 3 (each source is observed in one configuration only, so its Level 3
products are those of the whole run), and their directory is removed before the next K; the
figures are then the sums over the runs (peak memory: the largest), with 13 / K Snakemake starts
instead of one. K (``--per-run``, default: as many as a third of the free disk holds, at most 3)
also packs the two cores better: one run's Stage 2 and Stage 3 jobs of several configurations
fill the cores where one configuration's last batch would leave one idle. The simulated inputs
are cached in ``--workdir`` (whole mode; by configuration with ``--keep`` when the disk allows);
``--keep-products`` keeps each run's products too (webbspec/ beside the inputs: a code change's
products can then be compared with them; a later run of the same configurations replaces them).
Goal (issue 18): under 10 minutes on 2 cores.
Writes bench/results/mos_scale.{json,md} and prints them.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

RATE_MB = 84                       # a full-frame `_rate` (SCI, ERR, DQ, VAR_POISSON, VAR_RNOISE)
PRODUCTS_MB_PER_EXPOSURE = 560     # _cal + _s2d + _x1d, 85 slitlets (Stage 3's slices and products: ~1.5x more)


def simulate(root, nsources, seed, configurations=None):
    """Simulate (in a child process: its memory is not this one's) and time it."""
    shutil.rmtree(root, ignore_errors=True)
    t0 = time.time()
    code = ("import json, sys; from webbspec.simulate import simulate; "
            f"info = simulate('nrs_mos', {root!r}, seed={seed}, scale='full', nsources={nsources}, "
            f"configurations={configurations!r}); "
            "json.dump({k: info[k] for k in ('configurations', 'written_configurations', 'slitlets', 'sources')} "
            "| {'rates': len(info['rates'])}, sys.stdout)")
    res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    info = json.loads(res.stdout.strip().splitlines()[-1])
    info["simulate_s"] = time.time() - t0
    with open(os.path.join(root, ".simulated.json"), "w") as f:
        json.dump(info, f)
    return info


def plan_size(nsources, seed):
    """Configurations and slitlets of the program (the plan alone: a few seconds)."""
    import tempfile

    from webbspec.simulate import mos_optics_refs
    from webbspec.simulate.nirspec_mos import plan_program

    with tempfile.TemporaryDirectory() as tmp:
        mos_optics_refs.write_optical_refs(tmp)
        _, plan, _ = plan_program("full", nsources, seed, tmp)
    return len(plan.configs), len(plan.slitlets)


def run(root, label, conf):
    """``webbspec run ROOT --cores 2`` measured, with the per-process records."""
    timings = os.path.join(root, "timings.jsonl")
    logs = os.path.join(C.RESULTS, "logs")
    os.makedirs(logs, exist_ok=True)
    m = C.run_measured([C.exe("webbspec"), "run", root, "--cores", "2", "--configfile", conf], cwd=root,
                       log=os.path.join(logs, f"mos_scale_{label}.log"), timings=timings)
    records = C.read_timings(timings)
    m.update(C.overhead(m, records))
    kinds = {"chain": "Stage 2 jobs (one per exposure)", "exp-to-source": "Stage 3: exp_to_source",
             "gather-sources": "Stage 3: gather sources", "spec3-batch": "Stage 3: source batches"}
    m["jobs_by_kind"] = {}
    for r in records:
        kind = next((v for k, v in kinds.items() if k in r["argv"]), None)
        if kind is None:
            kind = "snakemake engine" if not any("rules_entry" in a for a in r["argv"]) else "other jobs"
        agg = m["jobs_by_kind"].setdefault(kind, {"processes": 0, "wall_s": 0.0, "cpu_s": 0.0, "science_cpu_s": 0.0})
        agg["processes"] += 1
        agg["wall_s"] += r["wall"]
        agg["cpu_s"] += r["cpu"]
        agg["science_cpu_s"] += r.get("sci_cpu", 0.0)
    spec3 = os.path.join(root, "webbspec", "spec3")
    m["level3_x1d"] = sum(f.endswith("_x1d.fits") for _, _, fs in os.walk(spec3) for f in fs) if os.path.isdir(spec3) else 0
    m["level2_products"] = sum(f.endswith(("_cal.fits", "_s2d.fits", "_x1d.fits"))
                               for f in os.listdir(os.path.join(root, "webbspec", "spec2"))) \
        if os.path.isdir(os.path.join(root, "webbspec", "spec2")) else 0
    m["output_bytes"] = C.dir_size(os.path.join(root, "webbspec")) if os.path.isdir(os.path.join(root, "webbspec")) else 0
    if m["rc"] != 0:
        print(f"bench: {label}: webbspec run failed (rc {m['rc']}); log: {logs}/mos_scale_{label}.log", flush=True)
    return m


def free_disk_mb(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / 2 ** 20


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nsources", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "wsbench_mos_scale"))
    p.add_argument("--mode", choices=("auto", "whole", "by-configuration"), default="auto")
    p.add_argument("--configurations", type=int, nargs="+", default=None,
                   help="by configuration: only these (1-based; the totals then cover them only)")
    p.add_argument("--per-run", type=int, default=0,
                   help="by configuration: configurations per webbspec run (default: by the free disk, at most 3)")
    p.add_argument("--keep", action="store_true", help="keep the simulated inputs (and whole-mode outputs)")
    p.add_argument("--keep-products", action="store_true",
                   help="by configuration: keep each run's products too (to compare them after a code change)")
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    nconf, nslit = plan_size(a.nsources, a.seed)
    need_mb = nconf * 8 * RATE_MB + nconf * 6 * PRODUCTS_MB_PER_EXPOSURE * 2.5 + 300
    free = free_disk_mb(a.workdir)
    mode = a.mode if a.mode != "auto" else ("whole" if free > 1.1 * need_mb else "by-configuration")
    print(f"bench: {a.nsources} sources, {nconf} configurations, {nslit} slitlets; the whole program needs "
          f"~{need_mb / 1024:.0f} GB of disk, {free / 1024:.1f} GB free: {mode}", flush=True)
    conf = os.path.join(a.workdir, "mos_scale.yaml")
    with open(conf, "w") as f:
        f.write("workflow:\n  spec2_jobs: exposure\n  save_intermediates: false\n")
    out = {"machine": C.machine(), "nsources": a.nsources, "seed": a.seed, "configurations": nconf,
           "slitlets": nslit, "mode": mode, "disk_needed_mb": need_mb, "disk_free_mb": free, "runs": []}
    if mode == "whole":
        root = os.path.join(a.workdir, f"n{a.nsources}_seed{a.seed}")
        done = os.path.join(root, ".simulated.json")
        if os.path.exists(done):
            with open(done) as f:
                info = json.load(f)
            info["simulate_s_cached"] = info.pop("simulate_s")
            for made in ("webbspec", ".snakemake", "timings.jsonl"):
                path = os.path.join(root, made)
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else \
                    (os.path.exists(path) and os.remove(path))
        else:
            info = simulate(root, a.nsources, a.seed)
        m = run(root, "whole", conf)
        out["runs"].append({"configurations": "all", "simulated": info, "run": m})
        if not a.keep:
            shutil.rmtree(os.path.join(root, "webbspec"), ignore_errors=True)
    else:
        chosen = a.configurations or list(range(1, nconf + 1))
        per_conf_mb = 8 * RATE_MB + 6 * PRODUCTS_MB_PER_EXPOSURE * 2.5 + 300   # Stage 3's own files too
        k = a.per_run or max(1, min(3, int(free / (3 * per_conf_mb))))    # a shared disk: a third of it at most
        out["per_run"] = k
        for group in [chosen[i:i + k] for i in range(0, len(chosen), k)]:
            c = group[0]
            tag = f"c{c:02d}" + (f"-{group[-1]:02d}" if len(group) > 1 else "")
            root = os.path.join(a.workdir, f"n{a.nsources}_seed{a.seed}_{tag}")
            if not os.path.exists(os.path.join(root, ".simulated.json")) \
                    and free_disk_mb(a.workdir) < len(group) * per_conf_mb:
                print(f"bench: stopping before configuration {c}: {free_disk_mb(a.workdir) / 1024:.1f} GB free, "
                      f"~{len(group) * per_conf_mb / 1024:.1f} GB needed (a shared disk: not filled up)", flush=True)
                out["stopped"] = f"before configuration {c}: disk"
                break
            done = os.path.join(root, ".simulated.json")
            if os.path.exists(done):
                with open(done) as f:
                    info = json.load(f)
                info["simulate_s_cached"] = info.pop("simulate_s")
                shutil.rmtree(os.path.join(root, "webbspec"), ignore_errors=True)
                shutil.rmtree(os.path.join(root, ".snakemake"), ignore_errors=True)
            else:
                info = simulate(root, a.nsources, a.seed, group)
            m = run(root, tag, conf)
            print(f"bench: configurations {', '.join(map(str, group))}: {m['wall_s']:.1f} s wall, {m['cpu_s']:.1f} s CPU, "
                  f"{m['level3_x1d']} Level 3 x1d, rc {m['rc']} (load {m['host_load_1m_before']:.1f})", flush=True)
            out["runs"].append({"configurations": group, "simulated": info, "run": m})
            if not a.keep_products:
                shutil.rmtree(os.path.join(root, "webbspec"), ignore_errors=True)
            if not (a.keep or a.keep_products):
                shutil.rmtree(root, ignore_errors=True)
            C.write_results("mos_scale", out, markdown(out))
    C.write_results("mos_scale", out, markdown(out))


def _total(runs, key, how=sum):
    return how(r["run"][key] for r in runs)


def markdown(out):
    mc, runs = out["machine"], out["runs"]
    if not runs:
        return "# NIRSpec MOS program at scale: nothing run\n"
    done = sorted({c for r in runs for c in (r["configurations"] if r["configurations"] != "all"
                                             else range(1, out["configurations"] + 1))})
    wall, cpu = _total(runs, "wall_s"), _total(runs, "cpu_s")
    sci, eng, jobn = _total(runs, "science_cpu_s"), _total(runs, "engine_cpu_s"), _total(runs, "job_nonscience_cpu_s")
    exposures = sum(r["simulated"]["rates"] for r in runs)
    lines = [
        f"# The simulated NIRSpec MOS program at scale: {out['nsources']} sources, `_rate` to Level 3", "",
        f"`webbspec simulate nrs_mos DIR --nsources {out['nsources']} --scale full --seed {out['seed']}`: "
        f"{out['configurations']} MSA configurations, {out['slitlets']} slitlets, 3 nods x NRS1/NRS2 "
        f"({6 * out['configurations']} science exposures + {2 * out['configurations']} imprints). "
        "`webbspec run DIR --cores 2` with `workflow.spec2_jobs: exposure`, `save_intermediates: false`. "
        f"Mode: **{out['mode']}** (the whole program needs ~{out['disk_needed_mb'] / 1024:.0f} GB of disk; "
        f"{out['disk_free_mb'] / 1024:.1f} GB were free)"
        + (f"; the configurations simulated {out.get('per_run', 1)} at a time (same bytes), run from `_rate` to "
           "Level 3, then removed: "
           "the figures are sums over the runs, one Snakemake start a run."
           if out["mode"] != "whole" else ".")
        + f" Configurations run: {len(done)} of {out['configurations']} ({exposures} science exposures). "
        f"{mc['cpus']} cores, shared machine (load at start {mc['host_load_1m_at_start']:.1f}).", "",
        "| wall s | CPU s | wall per configuration s | Level 3 x1d | peak RSS largest process MB | "
        "peak RSS all processes MB | peak PSS all processes MB | goal |",
        "|---|---|---|---|---|---|---|---|",
        f"| {wall:.1f} | {cpu:.1f} | {wall / len(done):.1f} | {_total(runs, 'level3_x1d')} | "
        f"{_total(runs, 'peak_rss_max_process_mb', max):.0f} | {_total(runs, 'peak_rss_tree_mb', max):.0f} | "
        f"{_total(runs, 'peak_pss_tree_mb', max):.0f} | < 600 s on 2 cores |", ""]
    if len(done) < out["configurations"]:
        lines += [f"Projected to all {out['configurations']} configurations: "
                  f"{wall / len(done) * out['configurations']:.0f} s wall, "
                  f"{cpu / len(done) * out['configurations']:.0f} s CPU.", ""]
    lines += ["| where the time goes | CPU s | share of CPU |", "|---|---|---|"]
    for label, v in (("science (Stage 2 steps, exp_to_source split, per-source Stage 3)", sci),
                     ("job processes outside science (imports, job start, glue, product writing)", jobn),
                     ("snakemake engine (DAG, scheduling, publishing the Stage 2 products)", eng),
                     ("not attributed (interpreter start-up, shells)", cpu - sci - jobn - eng)):
        lines.append(f"| {label} | {v:.1f} | {100 * v / cpu:.1f}% |")
    kinds = {}
    for r in runs:
        for k, v in r["run"]["jobs_by_kind"].items():
            agg = kinds.setdefault(k, {"processes": 0, "wall_s": 0.0, "cpu_s": 0.0, "science_cpu_s": 0.0})
            for kk in agg:
                agg[kk] += v[kk]
    lines += ["", f"Workflow share (everything but science): {100 * (1 - sci / cpu):.1f}% of the CPU; "
              f"{100 * (1 - sci / (2 * wall)):.1f}% of the 2 x wall core-seconds (overhead and idle cores).", "",
              "| processes by kind | processes | wall s (summed) | CPU s | science CPU s |", "|---|---|---|---|---|"]
    for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]["cpu_s"]):
        lines.append(f"| {k} | {v['processes']} | {v['wall_s']:.1f} | {v['cpu_s']:.1f} | {v['science_cpu_s']:.1f} |")
    lines += ["", "| configurations | wall s | CPU s | Level 3 x1d | Level 2 products | outputs MB | simulate s | "
              "load before/after | rc |", "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        x, s = r["run"], r["simulated"]
        sim = s.get("simulate_s", s.get("simulate_s_cached", float("nan")))
        confs = r["configurations"]
        lines.append(f"| {confs if confs == 'all' else '-'.join(map(str, sorted({confs[0], confs[-1]})))} | "
                     f"{x['wall_s']:.1f} | {x['cpu_s']:.1f} | {x['level3_x1d']} | {x['level2_products']} | "
                     f"{x['output_bytes'] / 2 ** 20:.0f} | {sim:.0f}{'' if 'simulate_s' in s else ' (cached)'} | "
                     f"{x['host_load_1m_before']:.1f}/{x['host_load_1m_after']:.1f} | {x['rc']} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
