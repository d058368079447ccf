"""Snakemake's own cost on our workflow at many Stage 3 sources (science replaced by stand-ins).

    python scripts/bench_workflow_scaling.py 1000 10000 [--batches 8]

Builds a 3-exposure delivered-_cal program in a temporary directory, runs the workflow with the
stand-in modules of tests/workflow/fakes (exp_to_source makes N sources per exposure), and
prints the wall time of: a dry run before exp_to_source, the full run, an up-to-date dry run,
and re-running one batch.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "workflow"))

import fakeprog  # noqa: E402

from webbspec.pipeline.program import product_key  # noqa: E402


def bench(nsources, batches):
    root = tempfile.mkdtemp(prefix=f"wsbench{nsources}_")
    try:
        fakeprog.make_program(root, suffix="cal", spec2_asn=False)
        with open(os.path.join(root, "bench.yaml"), "w") as f:
            f.write(f"workflow: {{batches: {batches}}}\n")
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "tests", "workflow", "fakes"),
                   FAKE_NSOURCES=str(nsources))
        exe = os.path.join(os.path.dirname(sys.executable), "snakemake")

        def run(*args):
            t0 = time.time()
            r = subprocess.run([exe, "-s", os.path.join(REPO, "Snakefile"), "--cores", "2",
                                "--configfile", "bench.yaml", "--config", f"program={root}", *args],
                               cwd=root, capture_output=True, text=True, env=env)
            if r.returncode:
                sys.exit(r.stderr[-2000:])
            return time.time() - t0

        rows = [("dry run, nothing made", run("-n")), ("full run", run()),
                ("dry run, up to date", run("-n"))]
        os.remove(os.path.join(root, "webbspec", "spec3", product_key(fakeprog.SPEC3_NAME), "batches",
                               "000.tsv"))
        rows.append(("re-run one batch", run()))
        for label, t in rows:
            print(f"{nsources:>6} sources, {batches} batches: {label:<22} {t:6.1f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("nsources", type=int, nargs="+")
    p.add_argument("--batches", type=int, default=8)
    a = p.parse_args()
    for n in a.nsources:
        bench(n, a.batches)


if __name__ == "__main__":
    main()
