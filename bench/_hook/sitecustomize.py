"""Benchmark instrumentation, loaded into every Python process of a run through PYTHONPATH.

When WSBENCH_TIMINGS names a file, each process appends one JSON line at exit: its argv, wall
time since this module loaded (just after interpreter start), CPU time (with that of the
processes a science entry point forked and reaped), and the wall/CPU spent inside the science
entry points (exp_to_source.split_exposure, stage3.run_source,
steprun.run_step / call_step, stage2chain.run_chain), wrapped when those modules are first imported.
No webbspec module is imported here, so a process pays only for what it runs.
"""

import atexit
import importlib.abc
import json
import os
import sys
import time

_PATH = os.environ.get("WSBENCH_TIMINGS")
_T0, _C0 = time.time(), time.process_time()
_SCI = {"wall": 0.0, "cpu": 0.0, "calls": 0, "depth": 0, "children": 0.0}


def _children_cpu():
    t = os.times()
    return t.children_user + t.children_system
# run_chain (a Stage 2 job per exposure) forks the processes that run its slitlets and write its
# files: wrapped, their CPU time counts as the job's science (reaped by then), not as unattributed
_TARGETS = {"webbspec.pipeline.exp_to_source": ("split_exposure",), "webbspec.pipeline.stage3": ("run_source",),
            "webbspec.pipeline.steprun": ("run_step", "call_step"), "webbspec.pipeline.stage2chain": ("run_chain",)}


def _wrap(fn):
    def timed(*a, **k):
        if _SCI["depth"]:
            return fn(*a, **k)
        _SCI["depth"] += 1
        t, c, w = time.time(), time.process_time(), _children_cpu()
        try:
            return fn(*a, **k)
        finally:
            _SCI["depth"] -= 1
            _SCI["wall"] += time.time() - t
            forked = _children_cpu() - w   # workers it forked (exp_to_source), reaped by now
            _SCI["children"] += forked
            _SCI["cpu"] += time.process_time() - c + forked
            _SCI["calls"] += 1
    timed.__wrapped__ = fn
    return timed


class _Loader(importlib.abc.Loader):
    def __init__(self, inner, names):
        self.inner, self.names = inner, names

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        for n in self.names:
            if hasattr(module, n):
                setattr(module, n, _wrap(getattr(module, n)))


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in _TARGETS:
            return None
        for f in sys.meta_path:
            if f is self:
                continue
            spec = getattr(f, "find_spec", lambda *a: None)(name, path, target)
            if spec is not None:
                spec.loader = _Loader(spec.loader, _TARGETS[name])
                return spec
        return None


def _peak_rss_mb():
    """This process's own memory high-water mark (VmHWM; ru_maxrss would count the parent's pages
    copied at the fork); None off Linux."""
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None


def _report():
    rec = {"argv": sys.argv, "pid": os.getpid(), "start": _T0, "wall": time.time() - _T0,
           "cpu": time.process_time() - _C0 + _SCI["children"], "sci_wall": _SCI["wall"], "sci_cpu": _SCI["cpu"],
           "sci_calls": _SCI["calls"], "peak_rss_mb": _peak_rss_mb()}
    with open(_PATH, "a") as f:
        f.write(json.dumps(rec) + "\n")


if _PATH:
    sys.meta_path.insert(0, _Finder())
    atexit.register(_report)
