"""A failed re-run never removes a good product, says which products are stale, and the next run
tries the failed job again (stand-in science: tests/workflow/fakes; a fake step fails on the
exposure whose header has FAILME = <step>)."""

import os
import sys

import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))
import fakeprog  # noqa: E402
from test_workflow import planned, snakemake  # noqa: E402

pytestmark = pytest.mark.slow


def _products(prog):
    """{product path: (size, mtime_ns)} of every Stage 2 and Stage 3 product."""
    out = {}
    for stage in ("spec2", "spec3"):
        for p in (prog / "webbspec" / stage).glob("*.fits"):
            st = p.stat()
            out[p.name] = (st.st_size, st.st_mtime_ns)
    return out


def _fail_in(prog, exposure, step):
    with fits.open(prog / f"{exposure}_rate.fits", mode="update") as h:
        h[0].header["FAILME"] = step


@pytest.mark.parametrize("jobs", ["step", "exposure"])
def test_failed_rerun_keeps_products_names_them_stale_and_is_tried_again(tmp_path, jobs):
    prog = tmp_path / "prog"
    fakeprog.make_program(prog, nexp=3, spec2_asn=False)
    over = prog / "jobs.yaml"
    over.write_text(f"workflow: {{spec2_jobs: {jobs}}}\n")
    first = snakemake(prog, "--nolock", "--configfile", over)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "webbspec: " in first.stderr and "Stage 2 9 (3 _cal, 3 _s2d, 3 _x1d)" in first.stderr
    before = _products(prog)
    assert len(before) == 9 + 5           # the fake Stage 3 writes one product per source

    bad = fakeprog.exposure_name(2)
    _fail_in(prog, bad, "photom")
    second = snakemake(prog, "--nolock", "--configfile", over)
    assert second.returncode != 0
    assert _products(prog) == before             # every product of the good run, byte for byte
    lines = second.stderr.splitlines()
    failed = [ln for ln in lines if "fake failure in photom" in ln and "[log: webbspec/logs/" in ln]
    assert len(failed) == 1 and bad in failed[0], second.stderr[-3000:]
    stale = next(ln for ln in lines if "now stale" in ln)
    assert f"webbspec/spec2/{bad}_cal.fits" in stale and "webbspec/spec3/" in stale
    assert fakeprog.exposure_name(1) + "_cal" not in stale

    again = planned(snakemake(prog, "-n", "--configfile", over))   # the failed job is tried again
    assert again.get("photom" if jobs == "step" else "spec2_chain_1") == 1, again
    assert again.get("spec2_publish") == 3       # and its products published again
