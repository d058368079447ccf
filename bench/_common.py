"""Shared helpers of the benchmarks: run a command and measure it, summarise per-job timings."""

import json
import os
import platform
import resource
import subprocess
import threading
import time

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
HOOK = os.path.join(HERE, "_hook")
VENV_BIN = os.path.dirname(os.path.abspath(os.sys.executable))


def exe(name):
    path = os.path.join(VENV_BIN, name)
    return path if os.path.exists(path) else name


def machine():
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "host_load_1m_at_start":
            os.getloadavg()[0]}


_SHIM = os.path.join(RESULTS, ".no-slurm-client")


def slurm_client_stalls():
    """True if ``scontrol`` is installed but no controller answers (this machine after the
    cluster test stops its SLURM). Snakemake imports every executor plugin at start, and the
    SLURM one then runs ``scontrol show config``, which waits 9-10 s for the controller: every
    workflow run would pay it, a cost of this machine's state, not of webbspec. A workstation
    without SLURM (scontrol missing) or a cluster (controller up) pays nothing."""
    import shutil

    if shutil.which("scontrol") is None:
        return False
    try:
        subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=3)
    except subprocess.TimeoutExpired:
        return True
    return False


def hide_stalled_slurm_client(env):
    """``env`` with a PATH whose ``scontrol`` fails at once, when :func:`slurm_client_stalls`."""
    global _STALLS
    if _STALLS is None:
        _STALLS = slurm_client_stalls()
        if _STALLS:
            print("bench: scontrol installed but no SLURM controller answers; hiding it from "
                  "the measured runs (Snakemake's SLURM plugin would wait 9-10 s at every start)")
    if not _STALLS:
        return env
    os.makedirs(_SHIM, exist_ok=True)
    stub = os.path.join(_SHIM, "scontrol")
    with open(stub, "w") as f:
        f.write("#!/bin/sh\nexit 1\n")
    os.chmod(stub, 0o755)
    env["PATH"] = _SHIM + os.pathsep + env.get("PATH", "")
    return env


_STALLS = None


def run_measured(cmd, *, cwd=None, env=None, log=None, timings=None):
    """Run ``cmd``; returns wall, CPU (user+sys of it and every descendant it waited for), peak
    RSS of the largest single process (ru_maxrss, or sampled: see below), peak summed RSS and peak summed PSS of the
    process tree (sampled every 0.2 s; PSS counts a page shared by n processes, such as the
    Python and numpy libraries, as 1/n in each, so its sum is the memory the run occupies), the exit
    code and the host load average before/after.

    ``timings``: a path; the process tree is run with the instrumentation hook of bench/_hook
    (one JSON line per Python process, see there)."""
    env = hide_stalled_slurm_client(dict(os.environ if env is None else env))
    if timings:
        if os.path.exists(timings):
            os.remove(timings)
        env["WSBENCH_TIMINGS"] = timings
        env["PYTHONPATH"] = HOOK + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    out = open(log, "w") if log else subprocess.DEVNULL
    load0 = os.getloadavg()[0]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    peak = [0, 0, 0]       # summed RSS, summed PSS, largest single RSS
    done = threading.Event()

    def sample():
        try:
            root = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.is_set():
            total = [0, 0, 0]
            try:
                for p in [root] + root.children(recursive=True):
                    try:
                        rss = p.memory_info().rss
                        total[0] += rss
                        total[1] += p.memory_full_info().pss
                        total[2] = max(total[2], rss)
                    except (psutil.Error, AttributeError):
                        pass
            except psutil.Error:
                pass
            peak[:] = [max(a, b) for a, b in zip(peak, total)]
            done.wait(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    done.set()
    th.join()
    if log:
        out.close()
    return {"cmd": " ".join(map(str, cmd)), "rc": os.waitstatus_to_exitcode(status), "wall_s": wall,
            "cpu_user_s": ru.ru_utime, "cpu_sys_s": ru.ru_stime, "cpu_s": ru.ru_utime + ru.ru_stime,
            # ru_maxrss of a child counts the memory it had before exec, a copy of this process's:
            # above this process's own peak it is the child's; otherwise the sampled one is used
            "peak_rss_max_process_mb": (ru.ru_maxrss if ru.ru_maxrss > own else peak[2] / 1024) / 1024.0,
            "peak_rss_tree_mb": peak[0] / 2 ** 20,
            "peak_pss_tree_mb": peak[1] / 2 ** 20,
            "host_load_1m_before": load0, "host_load_1m_after": os.getloadavg()[0]}


def read_timings(path):
    if not path or not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def overhead(meas, timings, cores=2):
    """Split a workflow run into science and overhead from the per-process records.

    science = time inside the science entry points of the job processes; job overhead = the rest
    of the job processes (interpreter start excluded, imports, argument/IO glue); engine = the
    snakemake process itself (DAG building, scheduling, job submission). Shares are of the total
    CPU seconds and, for wall, of cores x wall (what a perfectly packed run could use)."""
    jobs = [t for t in timings if any("rules_entry" in a for a in t["argv"])]
    engine = [t for t in timings if t not in jobs]
    sci_cpu = sum(t["sci_cpu"] for t in jobs)
    sci_wall = sum(t["sci_wall"] for t in jobs)
    job_wall = sum(t["wall"] for t in jobs)
    job_cpu = sum(t["cpu"] for t in jobs)
    eng_cpu = sum(t["cpu"] for t in engine)
    total_cpu = meas["cpu_s"]
    return {"jobs": len(jobs), "science_cpu_s": sci_cpu, "science_wall_s_sum": sci_wall,
            "job_process_wall_s_sum": job_wall, "job_process_cpu_s_sum": job_cpu,
            "job_nonscience_cpu_s": job_cpu - sci_cpu, "engine_cpu_s": eng_cpu,
            "overhead_share_cpu": 1.0 - sci_cpu / total_cpu if total_cpu else None,
            "overhead_share_wall": 1.0 - sci_wall / (cores * meas["wall_s"]) if meas["wall_s"] else None}


def dir_size(path, pattern=None):
    import fnmatch

    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            if pattern is None or fnmatch.fnmatch(f, pattern):
                total += os.path.getsize(os.path.join(d, f))
    return total


def write_results(name, data, markdown):
    os.makedirs(RESULTS, exist_ok=True)
    jpath = os.path.join(RESULTS, f"{name}.json")
    mpath = os.path.join(RESULTS, f"{name}.md")
    with open(jpath, "w") as f:
        json.dump(data, f, indent=1, default=str)
    with open(mpath, "w") as f:
        f.write(markdown)
    print(markdown)
    print(f"written: {jpath}, {mpath}")
    return jpath, mpath
