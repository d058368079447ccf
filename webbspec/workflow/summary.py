"""The lines the workflow prints when a run ends (rules: ``onsuccess`` / ``onerror``).

How many products of each kind there are and where, how long the run took, and when jobs failed:
one line per failed job (its error and its log), and the products left stale, i.e. those of
earlier runs that a failed job should have re-made (they are kept, never removed).
"""

import glob
import os
import re
import time

from . import jobstatus

__all__ = ["summary_lines", "products", "stale_products"]

OUT = "webbspec"


def products(root="."):
    """``{stage: {kind: [paths]}}`` of the Stage 2 and Stage 3 products under ``root``/webbspec."""
    out = {}
    for stage in ("spec2", "spec3"):
        kinds = {}
        for path in sorted(glob.glob(os.path.join(root, OUT, stage, "*.fits"))):
            kind = os.path.basename(path)[:-5].rsplit("_", 1)[-1]
            kinds.setdefault(kind, []).append(path)
        out[stage] = kinds
    return out


def _spec3_files(root, prod):
    """The product's Stage 3 files: those named after it (per source, per cube) and, for cube
    products, the `_crf` of its exposures (named after each exposure)."""
    from ..pipeline.stage3_cubes import crf_name

    pattern = re.sub(r"\{\w+\}", "*", prod.name)
    files = glob.glob(os.path.join(root, OUT, "spec3", glob.escape(pattern).replace("[*]", "*") + "_*.fits"))
    crfs = (os.path.join(root, OUT, "spec3", crf_name(e, prod.asn_id)) for e in prod.science)
    return files + [p for p in crfs if os.path.exists(p)]


def stale_products(program, failed_logs, start, root="."):
    """Products older than ``start`` that depend on a failed job (named in its log path)."""
    exposures = {n for n in program.exposures if any(n in log for log in failed_logs)}
    keys = {k for k in program.products if any(f"/{k}" in log for log in failed_logs)}
    keys |= {k for k, p in program.products.items() if exposures & set(p.science)}
    paths = [p for n in exposures for p in glob.glob(os.path.join(root, OUT, "spec2", glob.escape(n) + "_*.fits"))]
    paths += [p for k in keys for p in _spec3_files(root, program.products[k])]
    return sorted(p for p in set(paths) if os.path.getmtime(p) < start)


def _counts(kinds):
    n = sum(len(v) for v in kinds.values())
    return f"{n} ({', '.join(f'{len(v)} _{k}' for k, v in sorted(kinds.items()))})" if n else "0"


def summary_lines(program, start, root=".", now=None):
    """The end-of-run summary: products, time, failures with their logs, stale products."""
    now = time.time() if now is None else now
    made = products(root)
    where = os.path.join(os.path.abspath(root), OUT)
    lines = [f"webbspec: {now - start:.0f} s; products in {where}/: Stage 2 {_counts(made['spec2'])}, "
             f"Stage 3 {_counts(made['spec3'])}"]
    failures = jobstatus.failed(os.path.join(root, OUT, "logs"), since=start)
    if failures:
        lines.append(f"webbspec: {len(failures)} job(s) failed (full logs named below):")
        lines += [f"  {msg}  [log: {os.path.relpath(log, root)}]" for log, msg in failures]
        stale = stale_products(program, [log for log, _ in failures], start, root)
        if stale:
            shown = [os.path.relpath(p, root) for p in stale[:10]]
            more = f" and {len(stale) - 10} more" if len(stale) > 10 else ""
            lines.append(f"webbspec: {len(stale)} product(s) of an earlier run are now stale (kept, not "
                         f"re-made; the next run tries again): {', '.join(shown)}{more}")
    return lines
