"""Failure and restart on a REAL simulated program (NIRSpec FS, 3 nods, 5 sources).

A run is killed with SIGKILL at several points -- Snakemake alone (its running jobs finish as
orphans), one running job, and Snakemake with all its jobs (a node crash, jobs die mid-write) --
and started again with ``webbspec run``; the result must equal an uninterrupted run's (every
data array), and no truncated file is ever left where a job reads it (every writer writes a
temporary sibling and ``os.replace``s it). ``--keep-going`` keeps the other sources going when
one source's data are bad.
"""

import glob
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))
from test_incremental import (KEY, copy_program, executed, ok, planned, run,  # noqa: E402
                              simulated_program, stage3_products)

from webbspec.cli import run_command  # noqa: E402
from webbspec.instruments.nirspec.fs import SLIT_NAMES  # noqa: E402

NSOURCES = len(SLIT_NAMES)                               # one source per fixed slit



# ------------------------------------------------------------------ helpers


def products(prog):
    """Every product (Stage 2 and Stage 3 FITS under webbspec/spec2 and webbspec/spec3, no slices)."""
    out = sorted(glob.glob(os.path.join(prog, "webbspec", "spec2", "*.fits")))
    out += sorted(glob.glob(os.path.join(prog, "webbspec", "spec3", "*.fits")))
    return [os.path.relpath(p, prog) for p in out]


def same_data(a, b):
    """Every HDU's data equal (NaN where NaN), table columns included; headers aside (dates), and
    the ASDF extension (its history lists the asdf extensions in the order a process loaded them)."""
    with fits.open(a) as ha, fits.open(b) as hb:
        assert [h.name for h in ha] == [h.name for h in hb], (a, b)
        for x, y in zip(ha, hb):
            if x.name == "ASDF":
                continue
            if x.data is None:
                assert y.data is None
                continue
            if isinstance(x, fits.BinTableHDU):
                assert x.columns.names == y.columns.names
                for c in x.columns.names:
                    u, v = np.asarray(x.data[c]), np.asarray(y.data[c])
                    if u.dtype.kind == "f":
                        # float64 sums of the same float32 pixels: a chain resumed from a step file
                        # sums big-endian arrays (numpy's pairwise blocks differ): last-bit only
                        np.testing.assert_allclose(u, v, rtol=1e-12, atol=0, err_msg=f"{a}[{x.name}].{c}")
                    else:
                        assert np.array_equal(u, v), f"{a}[{x.name}].{c}"
            else:
                np.testing.assert_array_equal(x.data, y.data, err_msg=f"{a}[{x.name}]")


def all_readable(prog):
    """Every FITS file under webbspec/ (leftover hidden temporaries aside) opens and reads whole."""
    tmps = []
    for d, _, files in os.walk(os.path.join(prog, "webbspec")):
        for f in files:
            path = os.path.join(d, f)
            if f.startswith(".") and f.endswith(".tmp"):
                tmps.append(path)
                continue
            if f.endswith(".fits"):
                assert os.path.getsize(path) % 2880 == 0, f"{path}: truncated"
                with fits.open(path) as h:
                    for hdu in h:
                        _ = hdu.data
    return tmps


def start(prog, logfile, extra=()):
    """Snakemake as ``webbspec run PROG --cores 2 EXTRA`` starts it, in its own session."""
    cmd = run_command(str(prog), 2, list(extra))
    return subprocess.Popen(cmd, cwd=prog, stdout=logfile, stderr=subprocess.STDOUT,
                            start_new_session=True)


def finished_jobs(log):
    with open(log) as f:
        return len(re.findall(r"Finished jobid: \d+ \(Rule: \w+\)", f.read()))


def session_jobs(sid, job=None):
    """PIDs of the job processes (``python -m webbspec.workflow.rules_entry [... job ...]``) of a session."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.getsid(int(d)) != sid:
                continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ProcessLookupError):
            continue
        if b"webbspec.workflow.rules_entry" in argv and (job is None or job.encode() in argv):
            out.append(int(d))
    return out


def wait_for(cond, timeout=600, what=""):
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def session_gone(sid):
    def gone():
        try:
            os.killpg(sid, 0)
        except ProcessLookupError:
            return True
        return False
    return gone


def unlock(prog):
    """After a kill -9 of Snakemake its directory lock stays: ``webbspec run DIR --unlock``."""
    locks = prog / ".snakemake" / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        r = run(prog)
        assert r.returncode != 0 and "Directory cannot be locked" in r.stdout + r.stderr
        ok(run(prog, "--unlock"))


def kill_run(prog, log, when, what, extra=()):
    """Start a run; when ``when(log, sid)`` holds, SIGKILL ``what``: "snakemake" (its jobs go on as
    orphans and finish), "job" (one running job), "all" (Snakemake and every job). Waits until
    the session is empty; returns the number of jobs finished before the kill."""
    unlock(prog)
    with open(log, "w") as f:
        p = start(prog, f, extra)
    sid = p.pid
    try:
        wait_for(lambda: when(log, sid) or p.poll() is not None, what=f"kill point in {log}")
        assert p.poll() is None, "the run finished before the kill point"
        n = finished_jobs(log)
        if what == "snakemake":
            os.kill(p.pid, signal.SIGKILL)
        elif what == "job":
            os.kill(session_jobs(sid)[0], signal.SIGKILL)
        else:
            os.killpg(sid, signal.SIGKILL)
        p.wait(timeout=600)
        wait_for(session_gone(sid), what="the orphaned jobs")
    finally:
        try:
            os.killpg(sid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return n


def after_jobs(n, job=None):
    """Kill point: at least ``n`` jobs finished and (optionally) a ``job`` process running."""
    def cond(log, sid):
        return finished_jobs(log) >= n and (job is None or bool(session_jobs(sid, job)))
    return cond


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The simulated program, untouched, and an uninterrupted run of a copy of it."""
    root = tmp_path_factory.mktemp("restart")
    fresh = simulated_program(root)
    ref = copy_program(fresh, root / "reference")
    ok(run(ref))
    return fresh, ref


# ------------------------------------------------------------------ tests


@pytest.mark.slow
def test_kill_and_restart(reference, tmp_path):
    fresh, ref = reference
    prog = copy_program(fresh, tmp_path / "prog")
    log = tmp_path / "run.log"
    kills = []
    # 1. Snakemake killed during Stage 2 (its running step jobs finish as orphans)
    kills.append(kill_run(prog, log, after_jobs(4), "snakemake"))
    # 2. restarted, then a running Stage 2 step job killed
    kills.append(kill_run(prog, log, after_jobs(10, "step"), "job"))
    # 3. restarted, then everything killed while exp_to_source (writes many files) runs
    kills.append(kill_run(prog, log, after_jobs(0, "exp-to-source"), "all"))
    # 4. restarted, then everything killed while a Stage 3 batch runs (products half written)
    kills.append(kill_run(prog, log, after_jobs(1, "spec3-batch"), "all"))
    assert all(n > 0 for n in kills[:2]), kills
    tmps = all_readable(prog)          # nothing truncated under a real name; temporaries hidden
    unlock(prog)
    r = ok(run(prog))                  # 5. restart to the end
    assert executed(r), "the last restart had nothing left to do"
    assert planned(run(prog, "-n")) == {}
    assert all_readable(prog) == [t for t in tmps if os.path.exists(t)]
    got, want = products(prog), products(ref)
    assert got == want and len(want) == 9 + 4 * NSOURCES
    for p in want:
        same_data(os.path.join(ref, p), os.path.join(prog, p))
    assert sorted(stage3_products(prog)) == sorted(stage3_products(ref))


@pytest.mark.slow
def test_keep_going_with_one_bad_source(reference, tmp_path):
    """One source's slice is bad: with --keep-going its batch fails (after making its other
    sources) and every other batch finishes; the good products equal the reference run's."""
    _, ref = reference
    prog = copy_program(ref, tmp_path / "prog")
    made = stage3_products(prog)
    bad = sorted(made)[0]
    for ps in made.values():           # Stage 3 from scratch
        for p in ps:
            os.remove(prog / p)
    for m in (prog / "webbspec" / "spec3" / KEY / "batches").glob("*.tsv"):
        m.unlink()
    exp_dir = prog / "webbspec" / "spec3" / KEY / "exp_to_source"
    victim = next(p for p in sorted(exp_dir.glob("*/*.fits"))
                  if fits.getheader(p).get("WSSRCKEY") == bad)
    victim.write_bytes(victim.read_bytes()[:5000])        # a truncated slice
    r = run(prog, "--keep-going")
    assert r.returncode != 0
    summary = re.compile(r"webbspec: (\d+ s; products|\d+ job\(s\) failed|\d+ product\(s\) of an earlier run)")
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("webbspec: ")
              and not ln.startswith("webbspec: warning: ") and not summary.match(ln)]
    assert errors and all(victim.name in ln for ln in errors), r.stderr[-3000:]
    assert any(victim.name in ln and "[log: webbspec/logs/spec3_batch/" in ln for ln in r.stderr.splitlines())
    done = executed(r)
    assert done.get("spec3_batch") == 7, done          # every batch but the bad source's
    for key, ps in made.items():
        for p in ps:
            assert (prog / p).exists() == (key != bad), p
            if key != bad:
                same_data(ref / p, prog / p)


@pytest.mark.slow
def test_kill_and_restart_one_stage2_job_per_exposure(reference, tmp_path):
    """workflow.spec2_jobs: exposure: a chain job killed after writing some step files, then
    everything killed while chain jobs run; the restart skips the finished steps (their files
    record their signature) and the products equal the uninterrupted per-step run's."""
    fresh, ref = reference
    prog = copy_program(fresh, tmp_path / "prog")
    over = tmp_path / "exposure_jobs.yaml"
    over.write_text("workflow:\n  spec2_jobs: exposure\n")
    extra = ["--configfile", str(over)]
    log = tmp_path / "run.log"

    def chain_wrote(step):
        def cond(log, sid):
            return bool(session_jobs(sid, "chain")) and bool(glob.glob(str(prog / "webbspec" / "spec2" / "*" / f"*_{step}.fits")))
        return cond

    kill_run(prog, log, chain_wrote("extract_2d"), "job", extra)
    written = glob.glob(str(prog / "webbspec" / "spec2" / "*" / "*_assign_wcs.fits"))
    assert written
    times = {p: os.stat(p).st_mtime_ns for p in written}
    kill_run(prog, log, after_jobs(0, "chain"), "all", extra)
    tmps = all_readable(prog)
    unlock(prog)
    r = ok(run(prog, *extra))
    assert executed(r), "the last restart had nothing left to do"
    assert planned(run(prog, "-n", *extra)) == {}
    assert all_readable(prog) == [t for t in tmps if os.path.exists(t)]
    assert all(os.stat(p).st_mtime_ns == t for p, t in times.items())   # finished steps were skipped
    got, want = products(prog), products(ref)
    assert got == want and len(want) == 9 + 4 * NSOURCES
    for p in want:
        same_data(os.path.join(ref, p), os.path.join(prog, p))
