"""What each choice of Stage 2 files costs on disk and in time (README "Stage 2 files").

Simulates a full-scale NIRSpec FS program (6 full-frame exposures) and runs Stage 2 only
(``workflow.stage3: false``) once per choice:
  step                      one job per step (the default): every step's file is a job output
  exposure, all steps       one job per exposure, every step's file written (``save_intermediates: true``)
  exposure, products only   the official behaviour (``save_intermediates: false``)
  exposure, two steps       ``save_intermediates: [flat_field, photom]`` (the official per-step save_results)
Prints and writes bench/results/spec2_disk.{md,json}: the input size, the bytes under
webbspec/spec2 (each file once: a product and its staged name are one hard-linked file), the
products' share, wall and CPU time, and what a changed photom parameter then re-runs.

    python bench/spec2_disk.py [--keep DIR]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from _common import exe, machine, run_measured, write_results

CHOICES = [("step", {"spec2_jobs": "step"}),
           ("exposure, all steps", {"spec2_jobs": "exposure", "save_intermediates": True}),
           ("exposure, products only", {"spec2_jobs": "exposure", "save_intermediates": False}),
           ("exposure, flat_field + photom", {"spec2_jobs": "exposure",
                                              "save_intermediates": ["flat_field", "photom"]})]


def disk_bytes(path, pattern=None):
    """Bytes of the files under ``path`` (each inode once), optionally only names ending ``pattern``."""
    seen, total = set(), 0
    for d, _, files in os.walk(path):
        for f in files:
            st = os.stat(os.path.join(d, f))
            if (pattern is None or f.endswith(pattern)) and st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


def _yaml(workflow):
    import yaml

    return yaml.safe_dump({"workflow": dict(workflow, stage3=False)})


def _run(prog, over, *extra):
    return run_measured([exe("webbspec"), "run", prog, "--cores", "2", "--configfile", over, *extra])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", help="simulate into this directory and keep it")
    a = ap.parse_args()
    base = a.keep or tempfile.mkdtemp(prefix="spec2_disk_")
    src = os.path.join(base, "src")
    if not os.path.isdir(src):
        subprocess.run([exe("webbspec"), "simulate", "nrs_fs", src, "--scale", "full", "--seed", "1"], check=True,
                       capture_output=True)
    inputs = sum(os.path.getsize(os.path.join(src, f)) for f in os.listdir(src) if f.endswith("_rate.fits"))
    rows = []
    for name, workflow in CHOICES:
        prog = os.path.join(base, name.replace(" ", "_").replace(",", "").replace("+", ""))
        shutil.rmtree(prog, ignore_errors=True)
        shutil.copytree(src, prog, symlinks=True)
        over = os.path.join(prog, "choice.yaml")
        with open(over, "w") as f:
            f.write(_yaml(workflow))
        m = _run(prog, over)
        assert m["rc"] == 0, f"{name}: run failed (rc {m['rc']})"
        spec2 = os.path.join(prog, "webbspec", "spec2")
        total = disk_bytes(spec2)
        products = sum(os.path.getsize(os.path.join(spec2, f)) for f in os.listdir(spec2) if f.endswith(".fits"))
        with open(os.path.join(prog, "photom.yaml"), "w") as f:
            f.write(_yaml(workflow) + "spec2: {photom: {inverse: false, source_type: POINT}}\n")
        rerun = _run(prog, os.path.join(prog, "photom.yaml"))
        rows.append({"choice": name, "workflow": workflow, "spec2_bytes": total, "products_bytes": products,
                     "wall_s": m["wall_s"], "cpu_s": m["cpu_s"], "rerun_wall_s": rerun["wall_s"],
                     "rerun_cpu_s": rerun["cpu_s"], "rerun_rc": rerun["rc"]})
        if not a.keep:
            shutil.rmtree(prog)
    gb = 1e9
    md = ["# Stage 2 files: disk and time per choice (`bench/spec2_disk.py`)", "",
          f"Full-scale simulated NIRSpec FS program: {len([f for f in os.listdir(src) if f.endswith('_rate.fits')])} "
          f"full-frame `_rate` files, {inputs / gb:.3f} GB of input; Stage 2 only, `webbspec run --cores 2`. "
          f"Machine: {machine()}.", "",
          "| choice | webbspec/spec2 on disk | of it products | wall | CPU "
          "| re-run after a photom parameter change (wall / CPU) |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['choice']} | {r['spec2_bytes'] / gb:.2f} GB ({r['spec2_bytes'] / inputs:.1f}x input) | "
                  f"{r['products_bytes'] / gb:.2f} GB | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | "
                  f"{r['rerun_wall_s']:.1f} s / {r['rerun_cpu_s']:.1f} s |")
    write_results("spec2_disk", {"machine": machine(), "input_bytes": inputs, "rows": rows}, "\n".join(md) + "\n")
    if not a.keep:
        shutil.rmtree(base)


if __name__ == "__main__":
    sys.exit(main())
