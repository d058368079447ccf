"""exp_to_source in parts (workflow.split_mb) on a MAST-like real-slit MOS program: the plan has
one job per part, and the Stage 3 products equal those of one job per exposure."""

import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from realprogram import build_mos_program

pytestmark = pytest.mark.slow

WEBBSPEC = os.path.join(os.path.dirname(sys.executable), "webbspec")


def _run(prog, *args):
    r = subprocess.run([WEBBSPEC, "run", str(prog), "--cores", "2", *map(str, args)], cwd=prog,
                       capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def test_parts_plan_and_same_products(tmp_path):
    whole = tmp_path / "whole"
    build_mos_program(whole, 6, seed=3, fast=True)
    parts = tmp_path / "parts"
    shutil.copytree(whole, parts)
    sizes = [os.path.getsize(p) for p in glob.glob(str(parts / "*_cal.fits"))]
    split_mb = max(sizes) / 3.5 / 2**20           # every exposure: ceil(size / split_mb) = 3 or 4
    expect = sum(-(-s // int(split_mb * 2**20)) for s in sizes)
    (parts / "split.yaml").write_text(f"workflow: {{split_mb: {split_mb}}}\n")

    plan = _run(parts, "-n", "--configfile", parts / "split.yaml")
    planned = [ln.split() for ln in plan.splitlines() if ln.startswith("exp_to_source ")]
    assert planned and int(planned[-1][1]) == expect >= 9
    _run(parts, "--configfile", parts / "split.yaml")
    _run(whole)

    tables = glob.glob(str(parts / "webbspec/spec3/*/exp_to_source/*/sources.*-*.tsv"))
    assert len(tables) == expect
    mine = sorted(glob.glob(str(parts / "webbspec/spec3/*_x1d.fits")))
    theirs = sorted(glob.glob(str(whole / "webbspec/spec3/*_x1d.fits")))
    assert [os.path.basename(p) for p in mine] == [os.path.basename(p) for p in theirs]
    assert len(mine) == 6
    for a, b in zip(mine, theirs):
        for kind in ("x1d", "s2d"):
            with fits.open(a.replace("_x1d", f"_{kind}")) as fa, fits.open(b.replace("_x1d", f"_{kind}")) as fb:
                if kind == "x1d":
                    np.testing.assert_array_equal(fa[1].data["FLUX"], fb[1].data["FLUX"])
                else:
                    np.testing.assert_array_equal(fa["SCI"].data, fb["SCI"].data)
