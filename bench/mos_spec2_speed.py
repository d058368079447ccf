"""Stage 2 of one full-size NIRSpec MOS exposure with 20, 90 and 200 slitlets: ours against the
official Spec2Pipeline, same inputs, same reference files.

    python bench/mos_spec2_speed.py [--sizes 20 90 200] [--official cached|run|skip] [--repeat 3]
                                    [--workdir DIR] [--seed 0] [--resimulate]

Inputs. Per size N, ``webbspec.simulate.simulate("nrs_mos", DIR, scale="full", nsources=N - 5,
per_slot=3)``: one MSA configuration with N slitlets (4 background, 1 virtual, N - 5 sources),
3 nods x NRS1/NRS2 full-frame `_rate` files, imprints, every MOS reference in the official
formats. With G395M every spectrum spans ~3900 pixels along the dispersion, so at most 85 slitlets
fit one configuration without two spectra sharing detector rows; ``per_slot=3`` lets up to three
slitlets share a slot (each its own quadrant side and shutter row), their spectra overlapping on
the detector, as high-multiplex programs accept. Stage 2 does the same per-slitlet work either way
(cutouts, calibration, resampling, extraction); the PRISM (short spectra, no overlap) would need
a second reference set the simulator does not write. The exposure measured is NRS1, dither point 1,
with its spec2 association (the imprint member); the programs stay in ``--workdir`` and are
reused (their `_rate` hashes are recorded) unless ``--resimulate``.

Ours: the chain job of ``workflow.spec2_jobs: exposure`` (products only, as the official writes:
``save_intermediates: false``). First ``webbspec run DIR --cores 2`` with the exposure's `_cal`,
`_s2d`, `_x1d` as targets (Snakemake included, bench/_hook timings), which also gives the exact
command of the chain job; then that command alone ``--repeat`` times (the process from interpreter
start to exit: imports, reading, every step, writing the products): wall, CPU (with its forked
workers and writers), peak RSS, the median run reported and the per-step wall from its log. On two
cores the job runs extract_2d and the steps after it with the slitlets split between two forked
processes (``webbspec.pipeline.stage2chain``; ``WEBBSPEC_CHAIN_WORKERS``); it runs once more in one
process (``WEBBSPEC_CHAIN_WORKERS=1``) for comparison.

Theirs: the official calwebb_spec2 (jwst, offline) on the same spec2 association with the same
reference files (``override_<reftype>`` for every step, and repeated as nested overrides under
master_background_mos, which otherwise returns all-NaN slitlets:
../shared/docs/official-refs.md, MOS), in its own process: wall, CPU, peak RSS, per-step wall
(``stpipe.Step.run`` timed, top-level steps and master_background_mos's inner ones). The official run takes minutes (about 4 s per
slitlet, more at 200), so its measurements are cached in bench/results/mos_spec2_official.json
keyed by size, seed and the `_rate` file's hash: ``--official cached`` (default) reuses a cached
entry whose hash matches and runs the official only where none does; ``run`` always runs it;
``skip`` never (ratios from the cache when there is one). ``--official-only`` runs just the
official (e.g. in the background, once).

Per-step CPU (``--step-cpu-repeat``, default 3): the chain's steps run in one process
(``--step-cpu-worker``) on the job's own spec, each step's CPU seconds (user + system) and user
seconds measured around it alone (a garbage collection before each), the `_cal` written once as
the job writes it, medians over the repeats, each repeat with the per-process memos and caches
emptied (flat, bar shadow, path loss, MOS areas), as in a fresh job: the steady figures to
compare changes by, where the job's wall and system time move with the machine's load.

Targets (issue 18): ours >= 20x faster than the official and < 20 s wall on 2 cores at 200
slitlets. Writes bench/results/mos_spec2_speed.{json,md} and prints them.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

OFFICIAL_CACHE = os.path.join(C.RESULTS, "mos_spec2_official.json")
PER_SLOT = 3
NON_SOURCE = 5                 # background + virtual slitlets per configuration (full scale)
DET, NOD = "NRS1", 1


# ------------------------------------------------------------------------------ inputs
def program(workdir, n, seed, resimulate):
    """The simulated program of ``n`` slitlets (made once, reused)."""
    root = os.path.join(workdir, f"n{n}")
    done = os.path.join(root, ".simulated.json")
    if resimulate or not os.path.exists(done):
        shutil.rmtree(root, ignore_errors=True)
        t0 = time.time()
        code = ("import json, sys; from webbspec.simulate import simulate; "
                f"info = simulate('nrs_mos', {root!r}, seed={seed}, scale='full', nsources={n - NON_SOURCE}, "
                f"per_slot={PER_SLOT}); json.dump({{k: info[k] for k in ('slitlets', 'sources', 'configurations')}}, "
                "sys.stdout)")
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        info = json.loads(out.strip().splitlines()[-1])
        info["simulate_s"] = time.time() - t0
        with open(done, "w") as f:
            json.dump(info, f)
    with open(done) as f:
        info = json.load(f)
    from webbspec.simulate.nirspec_mos import exposure_root

    name = exposure_root(1, NOD, DET)
    asn = next(p for p in sorted(glob.glob(os.path.join(root, "*_spec2_*_asn.json")))
               if json.load(open(p))["products"][0]["name"] == name)
    rate = os.path.join(root, f"{name}_rate.fits")
    return {"root": root, "name": name, "asn": asn, "rate": rate, "rate_sha256": _sha(rate), **info}


def _sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fresh(root, dst):
    """A copy of the program's inputs (links: nothing is written into them) to run in."""
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    for f in os.listdir(root):
        src = os.path.join(root, f)
        if f in ("truth", "webbspec", ".snakemake") or f.startswith("."):
            continue
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dst, f), copy_function=os.link)
        else:
            os.link(src, os.path.join(dst, f))
    return dst


# ------------------------------------------------------------------------------ ours
def ours(prog, workdir, repeat, step_cpu_repeat=3):
    """Our chain job for the exposure: through ``webbspec run`` once, then alone ``repeat`` times."""
    n = prog["slitlets"]
    run_dir = _fresh(prog["root"], os.path.join(workdir, f"ours_n{n}"))
    conf = os.path.join(workdir, "mos_spec2_speed.yaml")
    with open(conf, "w") as f:
        f.write("workflow:\n  spec2_jobs: exposure\n  stage3: false\n  save_intermediates: false\n")
    name = prog["name"]
    targets = [f"webbspec/spec2/{name}_{k}.fits" for k in ("cal", "s2d", "x1d")]
    timings = os.path.join(workdir, f"ours_n{n}.timings")
    logs = os.path.join(C.RESULTS, "logs")
    os.makedirs(logs, exist_ok=True)
    wf = C.run_measured([C.exe("webbspec"), "run", run_dir, "--cores", "2", *targets, "--configfile", conf],
                        cwd=run_dir, log=os.path.join(logs, f"mos_spec2_speed_n{n}_workflow.log"), timings=timings)
    records = C.read_timings(timings)
    wf.update(C.overhead(wf, records))
    chain = [r for r in records if "chain" in r["argv"]]
    if wf["rc"] != 0 or len(chain) != 1:
        raise SystemExit(f"our workflow run failed (rc {wf['rc']}); log: {logs}/mos_spec2_speed_n{n}_workflow.log")
    wf["chain_process_wall_s"], wf["chain_process_cpu_s"] = chain[0]["wall"], chain[0]["cpu"]
    cmd = [sys.executable, "-P", "-m", "webbspec.workflow.rules_entry"] + chain[0]["argv"][1:]
    slits = _slitlets_in(os.path.join(run_dir, targets[0]))
    runs = []
    for k in range(repeat + 1):     # the last one in one process (WEBBSPEC_CHAIN_WORKERS=1)
        log = os.path.join(logs, f"mos_spec2_speed_n{n}_chain_{k if k < repeat else 'one_process'}.log")
        i = cmd.index("--log")
        cmd[i + 1] = log
        for t in targets:      # the job's staged outputs: a fresh run writes them again
            for p in (os.path.join(run_dir, t), os.path.join(run_dir, "webbspec", "spec2", name, os.path.basename(t))):
                if os.path.exists(p):
                    os.remove(p)
        env = dict(os.environ, WEBBSPEC_CHAIN_WORKERS="1") if k == repeat else None
        m = C.run_measured(cmd, cwd=run_dir, log=log + ".out", env=env)
        if m["rc"] != 0:
            raise SystemExit(f"our chain job failed (rc {m['rc']}); log: {log}")
        m["steps_s"] = _our_steps(log)
        runs.append(m)
    one = runs.pop()
    best = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]       # the median run
    step_cpu = None
    if step_cpu_repeat > 0:
        spec = cmd[cmd.index("chain") + 1]
        out = subprocess.run([sys.executable, "-P", os.path.abspath(__file__), "--step-cpu-worker", run_dir, spec,
                              str(step_cpu_repeat)], cwd=run_dir, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"the per-step CPU run failed: {out.stderr[-2000:]}")
        step_cpu = json.loads(out.stdout.strip().splitlines()[-1])
    shutil.rmtree(run_dir, ignore_errors=True)
    return {"slitlets_in_cal": slits, "workflow": wf, "runs": runs, "median": best, "one_process": one,
            "walls_s": [r["wall_s"] for r in runs], "cpus_s": [r["cpu_s"] for r in runs], "step_cpu": step_cpu}


def step_cpu_worker(run_dir, spec, repeat):
    """(In its own process, in the run directory.) The chain ``spec``'s steps in this process,
    ``repeat`` times: prints {"cpu_s": {step: median}, "user_s": {...}} as JSON (the `_cal` write
    as "(write _cal)")."""
    import gc
    import resource
    import statistics

    from webbspec.io import datamodels
    from webbspec.pipeline.stage2chain import write_product
    from webbspec.pipeline.steprun import call_step, read_input
    from webbspec.steps import barshadow, flat_field, load, pathloss, photom

    spec = json.loads(spec)
    for s in spec["steps"]:
        load(s["name"])
    cal = next((p["input"] for p in spec["products"] if p["output"].endswith("_cal.fits")), None)
    cpu, user = {}, {}

    def measured(name, fn):
        gc.collect()
        c, u = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_utime
        out = fn()
        cpu.setdefault(name, []).append(time.process_time() - c)
        user.setdefault(name, []).append(resource.getrusage(resource.RUSAGE_SELF).ru_utime - u)
        return out

    scratch = os.path.join(run_dir, "step_cpu_cal.fits")
    for _ in range(repeat):
        for module in (flat_field, barshadow, pathloss):      # a fresh job's memos and caches
            memo = getattr(module, "_MEMO", None)
            if memo is not None:
                memo.entries.clear()
                memo.size = 0
        getattr(photom, "_MOS_AREAS", {}).clear()
        model, where = measured("(read the input)", lambda: read_input(spec["input"]))
        for s in spec["steps"]:
            model = measured(s["name"], lambda s=s, m=model, w=where: datamodels.as_written(
                call_step(s["name"], m, s["refs"], s["params"], s["extra"], None, {}, w)))
            where = s["output"]
            if s["output"] == cal:
                measured("(write _cal)", lambda m=model: write_product(m, scratch))
                os.remove(scratch)
    print(json.dumps({"repeat": repeat, "cpu_s": {k: round(statistics.median(v), 3) for k, v in cpu.items()},
                      "user_s": {k: round(statistics.median(v), 3) for k, v in user.items()}}))


def _slitlets_in(cal):
    from astropy.io import fits

    with fits.open(cal) as h:
        return sum(1 for x in h if x.name == "SCI")


def _our_steps(log):
    """{step: wall s} from the chain job's log: the time between consecutive "<step>: done" lines
    (millisecond stamps; the first from the job's first log line), and for the steps the job ran
    in several processes ("<step>: done (2 processes: a, b s)") the slower process's time; then
    the merge of their results and the products ("ran ..." line)."""
    def stamp(text):
        return time.mktime(time.strptime(text[:19], "%Y-%m-%d %H:%M:%S")) + int(text[20:23]) / 1000

    out, last = {}, None
    with open(log) as f:
        for line in f:
            if not re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", line):
                continue
            t = stamp(line)
            m = re.search(r"webbspec: (\w+): done \((\d+) processes: ([\d., ]+) s\)", line)
            if m:
                out[m.group(1) + f" ({m.group(2)} processes)"] = max(float(v) for v in m.group(3).split(","))
                continue
            m = re.search(r"webbspec: slitlets in \d+ processes: .*: ([\d.]+) s$", line.rstrip())
            if m:
                out["(merging and handing over the outputs, while the processes ran)"] = float(m.group(1))
                last = t
                continue
            m = re.search(r"webbspec: (\w+): done$", line.rstrip())
            if m and last is not None:
                out[m.group(1)] = round(t - last, 3)
            elif re.search(r"webbspec: ran \d+ of", line) and last is not None:
                out["(products)"] = round(t - last, 3)
            if last is None or m:
                last = t
    return out


# ------------------------------------------------------------------------------ theirs
def official(prog, workdir):
    """The official Spec2Pipeline on the exposure's association, in its own process."""
    n = prog["slitlets"]
    out = os.path.join(workdir, f"official_n{n}")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    logs = os.path.join(C.RESULTS, "logs")
    os.makedirs(logs, exist_ok=True)
    log = os.path.join(logs, f"mos_spec2_speed_n{n}_official.log")
    m = C.run_measured([sys.executable, os.path.abspath(__file__), "--official-worker", prog["asn"],
                        os.path.join(prog["root"], "refs"), out], log=log)
    if m["rc"] != 0:
        raise SystemExit(f"the official Spec2Pipeline failed (rc {m['rc']}); log: {log}")
    with open(os.path.join(out, "official_times.json")) as f:
        m.update(json.load(f))
    m["slitlets_in_cal"] = _slitlets_in(os.path.join(out, f"{prog['name']}_cal.fits"))
    import jwst

    m.update(jwst_version=jwst.__version__, rate_sha256=prog["rate_sha256"], seed=prog["seed"],
             per_slot=PER_SLOT, date=time.strftime("%Y-%m-%d %H:%M"))
    shutil.rmtree(out, ignore_errors=True)
    return m


def official_worker(asn, store, outdir):
    """(In its own process.) The official Spec2Pipeline with our reference files; writes
    OUTDIR/official_times.json: pipeline wall / CPU and per-step wall."""
    import warnings

    sys.path.insert(0, os.path.join(C.REPO, "tests", "official"))
    import official_jwst as O

    O.offline()
    warnings.simplefilter("ignore")
    from jwst.pipeline import Spec2Pipeline

    with open(asn) as f:
        a = json.load(f)
    here = os.path.dirname(os.path.abspath(asn))
    for prod in a["products"]:
        for mem in prod["members"]:
            mem["expname"] = os.path.basename(O._with_asdf(os.path.join(here, mem["expname"]), outdir))
    for f in glob.glob(os.path.join(here, "*_msa.fits")):   # MSAMETFL resolves beside the input
        shutil.copy(f, outdir)
    run_on = os.path.join(outdir, os.path.basename(asn))
    with open(run_on, "w") as f:
        json.dump(a, f)
    rate = os.path.join(outdir, a["products"][0]["members"][0]["expname"])
    pipe = Spec2Pipeline()
    inner = pipe.master_background_mos
    steps = [getattr(pipe, s) for s in pipe.step_defs] + [getattr(inner, s) for s in inner.step_defs]
    types = sorted({rt for st in steps for rt in getattr(st, "reference_file_types", ())})
    refs = O.our_selection(rate, store, types)
    for st in steps:                  # the nested ones too: see the module docstring
        O.with_references(st, refs)
    pipe.output_dir = outdir
    pipe.save_results = True
    pipe.resample_spec.save_results = True
    pipe.extract_1d.save_results = True

    from stpipe.step import Step

    stack, steps_s, top = [], {}, {}
    plain_run = Step.run

    def timed_run(self, *args, **kw):        # every step's wall, by its depth below the pipeline
        stack.append(self.name)
        t = time.perf_counter()
        try:
            return plain_run(self, *args, **kw)
        finally:
            dt = time.perf_counter() - t
            stack.pop()
            if len(stack) == 1:
                steps_s[self.name] = round(steps_s.get(self.name, 0.0) + dt, 2)
            elif len(stack) == 2 and stack[1] == "master_background_mos":
                top[self.name] = round(top.get(self.name, 0.0) + dt, 2)

    Step.run = timed_run
    t0, c0 = time.perf_counter(), time.process_time()
    pipe.run(run_on)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    with open(os.path.join(outdir, "official_times.json"), "w") as f:
        json.dump({"pipeline_wall_s": wall, "pipeline_cpu_s": cpu, "steps_s": steps_s,
                   "master_background_mos_inner_s": top, "official_refs": refs}, f, indent=1)
    print(f"official Spec2Pipeline: {wall:.1f} s wall, {cpu:.1f} s CPU")


def _cache():
    if os.path.exists(OFFICIAL_CACHE):
        with open(OFFICIAL_CACHE) as f:
            return json.load(f)
    return {}


def _cache_key(n, seed):
    return f"n{n}_seed{seed}_{DET.lower()}_nod{NOD}"


# ------------------------------------------------------------------------------ main
def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[20, 90, 200])
    p.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "wsbench_mos_spec2"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3, help="runs of our chain job alone per size (median reported)")
    p.add_argument("--official", choices=("cached", "run", "skip"), default="cached")
    p.add_argument("--official-only", action="store_true", help="run (or reuse) the official only; no ours")
    p.add_argument("--resimulate", action="store_true")
    p.add_argument("--step-cpu-repeat", type=int, default=3,
                   help="in-process runs of the steps for their CPU seconds (median; 0: none)")
    p.add_argument("--official-worker", nargs=3, metavar=("ASN", "STORE", "OUTDIR"), help=argparse.SUPPRESS)
    p.add_argument("--step-cpu-worker", nargs=3, metavar=("RUNDIR", "SPEC", "REPEAT"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.official_worker:
        official_worker(*a.official_worker)
        return
    if a.step_cpu_worker:
        step_cpu_worker(a.step_cpu_worker[0], a.step_cpu_worker[1], int(a.step_cpu_worker[2]))
        return
    os.makedirs(a.workdir, exist_ok=True)
    out = {"machine": C.machine(), "sizes": {}, "per_slot": PER_SLOT, "seed": a.seed}
    for n in a.sizes:
        prog = program(a.workdir, n, a.seed, a.resimulate)
        prog["seed"] = a.seed
        print(f"n={n}: {prog['name']} ({prog['slitlets']} slitlets planned), rate sha256 {prog['rate_sha256'][:12]}",
              flush=True)
        res = {"input": {k: prog[k] for k in ("name", "slitlets", "sources", "rate_sha256", "simulate_s")
                         if k in prog}}
        key = _cache_key(n, a.seed)
        cache = _cache()
        hit = cache.get(key)
        if hit and hit.get("rate_sha256") != prog["rate_sha256"]:
            print(f"n={n}: the cached official run was on another `_rate` (sha256 {hit['rate_sha256'][:12]})",
                  flush=True)
            hit = None if a.official != "skip" else hit
        if a.official == "run" or (a.official == "cached" and hit is None):
            print(f"n={n}: running the official Spec2Pipeline (minutes)", flush=True)
            hit = official(prog, a.workdir)
            cache = _cache()                        # another run may have written meanwhile
            cache[key] = hit
            os.makedirs(C.RESULTS, exist_ok=True)
            with open(OFFICIAL_CACHE, "w") as f:
                json.dump(cache, f, indent=1, sort_keys=True)
            res["official_ran_now"] = True
        res["official"] = hit
        if not a.official_only:
            res["ours"] = ours(prog, a.workdir, a.repeat, a.step_cpu_repeat)
        out["sizes"][str(n)] = res
        print(f"n={n}: done", flush=True)
    if a.official_only:
        return
    C.write_results("mos_spec2_speed", out, markdown(out))


def markdown(out):
    mc = out["machine"]
    lines = [
        "# Stage 2 of one full-size NIRSpec MOS exposure: webbspec vs the official Spec2Pipeline", "",
        f"Simulated G395M/F290LP NRS1 `_rate` (2048 x 2048, dither point 1, imprint member), one MSA "
        f"configuration of N slitlets (up to {out['per_slot']} per slot: spectra overlap beyond 85), same "
        "reference files for both (official formats). Ours = the `spec2_jobs: exposure` chain job "
        "(`rules_entry chain`, products only), process wall from interpreter start to exit, median of the "
        "repeats; on 2 cores it runs extract_2d and the steps after it with the slitlets split between 2 "
        "processes (`WEBBSPEC_CHAIN_WORKERS`, default 2 here), and the same job in one process is shown too. "
        "Theirs = the official calwebb_spec2 process (jwst offline, every reference overridden, nested under "
        "master_background_mos too). CPU = the process and its children (user + system). "
        f"{mc['cpus']} cores, shared machine: host load (1 min) at start {mc['host_load_1m_at_start']:.1f}; "
        "CPU seconds are the steadier figure.", "",
        "| slitlets | ours wall s | ours CPU s | ours peak RSS MB | ours, one process: wall s / CPU s | "
        "official wall s | official CPU s | official peak RSS MB | ratio wall | ratio CPU | ours s/slitlet | "
        "official s/slitlet | ours via `webbspec run --cores 2` wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, r in out["sizes"].items():
        o, f = r.get("ours"), r.get("official")
        if o is None:
            continue
        m, one = o["median"], o["one_process"]
        ns = o["slitlets_in_cal"]
        if f:
            fw, fc, fr = f["wall_s"], f["cpu_s"], f["peak_rss_max_process_mb"]
            cells = (f"{fw:.1f}", f"{fc:.1f}", f"{fr:.0f}", f"{fw / m['wall_s']:.1f}x", f"{fc / m['cpu_s']:.1f}x",
                     f"{fw / ns:.2f}")
        else:
            cells = ("-",) * 6
        lines.append(f"| {ns} | {m['wall_s']:.2f} | {m['cpu_s']:.2f} | {m['peak_rss_max_process_mb']:.0f} | "
                     f"{one['wall_s']:.2f} / {one['cpu_s']:.2f} | {cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} | "
                     f"{cells[4]} | {m['wall_s'] / ns:.3f} | {cells[5]} | {o['workflow']['wall_s']:.1f} |")
    lines += ["", "Targets at 200 slitlets: ours >= 20x faster than the official, < 20 s wall on 2 cores. "
              "The official runs are cached (bench/results/mos_spec2_official.json; `--official run` repeats "
              "them): their load and date are below. Through `webbspec run` the chain job runs in one process "
              "(Snakemake sets OMP_NUM_THREADS to the rule's threads, 1), and the wall includes Snakemake's "
              "start and the local publish jobs.", ""]
    for n, r in out["sizes"].items():
        o, f = r.get("ours"), r.get("official")
        if o:
            wf = o["workflow"]
            lines.append(f"- N={n}: our repeats wall {', '.join(f'{v:.2f}' for v in o['walls_s'])} s, CPU "
                         f"{', '.join(f'{v:.2f}' for v in o['cpus_s'])} s (load "
                         f"{o['median']['host_load_1m_before']:.1f}); through `webbspec run --cores 2`: "
                         f"{wf['wall_s']:.1f} s wall, {wf['cpu_s']:.1f} s CPU (chain job process "
                         f"{wf['chain_process_wall_s']:.1f} s; Snakemake engine {wf['engine_cpu_s']:.1f} CPU s). "
                         "Our steps [s wall]: " + ", ".join(f"{k} {v}" for k, v in o["median"]["steps_s"].items())
                         + "; in one process: " + ", ".join(f"{k} {v}" for k, v in o["one_process"]["steps_s"].items()))
            sc = o.get("step_cpu")
            if sc:
                lines.append(f"  Per-step CPU s in one process (user + system; median of {sc['repeat']}, fresh memos): "
                             + ", ".join(f"{k} {v}" for k, v in sc["cpu_s"].items())
                             + f"; total {sum(sc['cpu_s'].values()):.2f} (user {sum(sc['user_s'].values()):.2f})")
        if f:
            lines.append(f"  Official ({f.get('date', '?')}, load {f['host_load_1m_before']:.1f} at start, "
                         f"{f['host_load_1m_after']:.1f} at end): steps [s wall]: "
                         + (", ".join(f"{k} {v}" for k, v in f["steps_s"].items()) or "(not recorded)")
                         + "; inside master_background_mos: "
                         + (", ".join(f"{k} {v}" for k, v in f.get("master_background_mos_inner_s", {}).items())
                            or "(not recorded)"))
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
