"""Stage 3 of the real-slit MOS program at scale, webbspec only, and dry runs at 1,000 / 10,000 sources.

    python bench/stage3_scale.py [--n 1000] [--dry 1000 10000] [--workdir DIR] [--skip-run]

1. Full run: the real-slit program (webbspec.realprogram, N sources x 3 nods) through
   ``webbspec run DIR --cores 2``: wall, CPU, peak memory, and the share of workflow overhead
   from the per-process records of bench/_hook (science = time inside exp_to_source.split_exposure
   and stage3.run_source; the rest of the job processes is job start + imports + glue; the
   snakemake process itself is DAG building and scheduling). Dry runs on the same program:
   before anything is made, and up to date after the run.
2. Dry runs at 1,000 and 10,000 sources on a cheap program: the three `_cal` files are the
   real 1-source files (discovery reads only PRIMARY headers), and exp_to_source's outputs (the
   per-exposure source tables, empty slice files) and the Stage 3 source table (the checkpoint)
   are fabricated, so the dry run plans every Stage 3 batch with all its slice inputs.
Writes bench/results/stage3_scale.{json,md} and prints them.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

from webbspec.pipeline.program import discover  # noqa: E402
from realprogram import build_mos_program  # noqa: E402


def dry_run(root, label):
    import re

    log = os.path.join(C.RESULTS, "logs", "dry_" + re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_") + ".log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    m = C.run_measured([C.exe("webbspec"), "run", root, "--cores", "2", "-n", "--quiet", "rules"], cwd=root,
                       log=log)
    with open(log) as f:
        text = f.read()
    jobs = {k: int(v) for k, v in re.findall(r"(?m)^(\w+)\s+(\d+)\s*$", text)}
    return {"label": label, "planned_jobs": jobs, "log": log,
            **{k: m[k] for k in ("rc", "wall_s", "cpu_s", "peak_rss_max_process_mb")}}


def fake_program(root, n, template_dir):
    """3 one-source `_cal` files + fabricated exp_to_source outputs for ``n`` sources."""
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    for f in os.listdir(template_dir):
        if f.endswith("_cal.fits") or f.endswith("_asn.json"):
            shutil.copy(os.path.join(template_dir, f), root)
    prog = discover(root)
    (key, prod), = prog.products.items()
    base = os.path.join(root, "webbspec", "spec3", key)
    tables = []
    for exp in prod.science:
        d = os.path.join(base, "exp_to_source", exp)
        os.makedirs(d)
        with open(os.path.join(d, "sources.0-1.tsv"), "w") as f:
            f.write("source_key\tpath\tsource_id\n")
            for k in range(n):
                name = f"1345_{933 + k}"
                open(os.path.join(d, f"{name}.fits"), "w").close()
                f.write(f"{name}\t{name}.fits\ts{933 + k:09d}\n")
        tables.append(os.path.join(d, "sources.0-1.tsv"))
    subprocess.run([sys.executable, "-m", "webbspec.workflow.rules_entry", "gather-sources",
                    os.path.join(base, "sources.tsv"), *tables], check=True, cwd=root)
    return root


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--dry", type=int, nargs="*", default=[1000, 10000],
                   help="source counts for the dry runs (none: skip them, keep earlier results)")
    p.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "wsbench"))
    p.add_argument("--skip-run", action="store_true")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--reuse", action="store_true",
                   help="run on the program a --keep run left in the workdir (no rebuild)")
    p.add_argument("--results", default="stage3_scale",
                   help="name of the results files under bench/results (e.g. stage3_N100 for --n 100 --dry)")
    a = p.parse_args()
    machine = C.machine()
    out = {"machine": machine}
    previous = os.path.join(C.RESULTS, f"{a.results}.json")
    if os.path.exists(previous):   # a partial run (--skip-run, or --dry with no sizes) keeps the rest
        import json

        with open(previous) as f:
            old = json.load(f)
        if a.skip_run and "full_run" in old:
            out["full_run"] = old["full_run"]
            out["machine_full_run"] = old.get("machine_full_run", old["machine"])
        if not a.dry and "dry_runs" in old:
            out["dry_runs"] = old["dry_runs"]
            out["machine_dry_runs"] = old.get("machine_dry_runs", old["machine"])
    if not a.skip_run:
        out["machine_full_run"] = machine
    if a.dry:
        out["machine_dry_runs"] = machine
    os.makedirs(a.workdir, exist_ok=True)
    logs = os.path.join(C.RESULTS, "logs")
    os.makedirs(logs, exist_ok=True)

    if not a.skip_run:
        root = os.path.join(a.workdir, f"stage3_scale_N{a.n}")
        t0 = time.time()
        if a.reuse and os.path.exists(os.path.join(root, "realprogram.json")):
            for made in ("webbspec", ".snakemake", "timings.jsonl"):   # inputs only
                path = os.path.join(root, made)
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else \
                    (os.path.exists(path) and os.remove(path))
        else:
            shutil.rmtree(root, ignore_errors=True)
            build_mos_program(root, a.n, seed=0)
        run = {"n_sources": a.n, "program_build_s": time.time() - t0,
               "input_bytes": C.dir_size(root, "*_cal.fits")}
        run["dry_before"] = dry_run(root, "dry run, nothing made")
        timings = os.path.join(root, "timings.jsonl")
        m = C.run_measured([C.exe("webbspec"), "run", root, "--cores", "2"], cwd=root,
                           log=os.path.join(logs, f"stage3_scale_N{a.n}.log"), timings=timings)
        m.update(C.overhead(m, C.read_timings(timings)))
        m["s_per_source"] = m["wall_s"] / a.n
        run["run"] = m
        run["dry_after"] = dry_run(root, "dry run, up to date")
        out["full_run"] = run
        C.write_results(a.results, out, markdown(out))
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)

    if not a.dry:
        C.write_results(a.results, out, markdown(out))
        return
    tmpl = os.path.join(a.workdir, "stage3_scale_template")
    shutil.rmtree(tmpl, ignore_errors=True)
    build_mos_program(tmpl, 1, seed=0)
    out["dry_runs"] = []
    for n in a.dry:
        root = fake_program(os.path.join(a.workdir, f"stage3_dry_N{n}"), n, tmpl)
        r = dry_run(root, f"dry run, {n} sources, Stage 3 to do")
        r["n_sources"] = n
        r["slice_files"] = 3 * n
        out["dry_runs"].append(r)
        C.write_results(a.results, out, markdown(out))
        shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(tmpl, ignore_errors=True)


def markdown(out):
    m = out["machine"]
    lines = ["# webbspec Stage 3 at scale (real-slit MOS program)", "",
             f"{m['cpus']} cores; host load (1 min) at start {m['host_load_1m_at_start']:.1f} (other jobs "
             "share this machine: wall times are inflated, CPU times less so).", ""]
    r = out.get("full_run")
    if r:
        x = r["run"]
        lines += [f"## Full run: {r['n_sources']} sources x 3 nods, `webbspec run DIR --cores 2`", "",
                  f"Host load (1 min) at start of this run: "
                  f"{out.get('machine_full_run', m)['host_load_1m_at_start']:.1f}.", "",
                  "| wall s | CPU s | s/source | peak RSS largest process MB | peak RSS all processes MB | "
                  "peak PSS all processes MB | jobs | load before/after | rc |", "|---|---|---|---|---|---|---|---|---|",
                  f"| {x['wall_s']:.1f} | {x['cpu_s']:.1f} | {x['s_per_source']:.3f} | "
                  f"{x['peak_rss_max_process_mb']:.0f} | {x['peak_rss_tree_mb']:.0f} | "
                  f"{x.get('peak_pss_tree_mb', float('nan')):.0f} | {x['jobs']} | "
                  f"{x['host_load_1m_before']:.1f}/{x['host_load_1m_after']:.1f} | {x['rc']} |", "",
                  "| where the time goes | CPU s | share of CPU |", "|---|---|---|"]
        tot = x["cpu_s"]
        for label, v in (("science (exp_to_source split, per-source Stage 3 steps + product writing)",
                          x["science_cpu_s"]),
                         ("job processes outside science (imports, job start, glue)", x["job_nonscience_cpu_s"]),
                         ("snakemake engine (DAG, scheduling, job submission)", x["engine_cpu_s"]),
                         ("not attributed (interpreter start-up, shells)",
                          tot - x["science_cpu_s"] - x["job_nonscience_cpu_s"] - x["engine_cpu_s"])):
            lines.append(f"| {label} | {v:.1f} | {100 * v / tot:.1f}% |")
        lines += ["", f"Workflow overhead share: {100 * x['overhead_share_cpu']:.1f}% of CPU, "
                  f"{100 * (tot - x['science_cpu_s']) / (2 * x['wall_s']):.1f}% of the 2 x wall "
                  f"core-seconds. Not spent in science CPU: {100 * (1 - x['science_cpu_s'] / (2 * x['wall_s'])):.1f}%"
                  " of the 2 x wall core-seconds, i.e. the overhead and idle cores (a core waits while an "
                  "exp_to_source job reads its exposure's gwcs alone, before forking its workers; the last "
                  f"batches finish unevenly). Science wall summed over job processes: "
                  f"{x['science_wall_s_sum']:.1f} s. PSS counts a page "
                  "shared by n processes (Python, numpy, astropy libraries) as 1/n in each: its sum is the "
                  "memory the run occupies; the RSS sum counts shared pages once per process. "
                  f"Program build {r['program_build_s']:.0f} s, inputs {r['input_bytes'] / 2 ** 20:.0f} MB.", "",
                  "| dry run on this program | wall s | CPU s | jobs planned |", "|---|---|---|---|"]
        for d in (r["dry_before"], r.get("dry_after")):
            if d:
                planned = ", ".join(f"{k} {v}" for k, v in d.get("planned_jobs", {}).items())
                lines.append(f"| {d['label']} | {d['wall_s']:.1f} | {d['cpu_s']:.1f} | {planned or '-'} |")
        lines.append("")
    if out.get("dry_runs"):
        lines += ["## Dry runs (DAG building) with every Stage 3 batch to plan", "",
                  "`webbspec run DIR --cores 2 -n`, exp_to_source outputs fabricated (all slice files "
                  "present), so every batch job is planned with its slice inputs. Host load (1 min) at "
                  f"start: {out.get('machine_dry_runs', m)['host_load_1m_at_start']:.1f}.", "",
                  "| sources | slice files | wall s | CPU s | peak RSS MB | jobs planned | rc |",
                  "|---|---|---|---|---|---|---|"]
        for d in out["dry_runs"]:
            planned = ", ".join(f"{k} {v}" for k, v in d.get("planned_jobs", {}).items())
            lines.append(f"| {d['n_sources']} | {d['slice_files']} | {d['wall_s']:.1f} | {d['cpu_s']:.1f} | "
                         f"{d['peak_rss_max_process_mb']:.0f} | {planned or '-'} | {d['rc']} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
