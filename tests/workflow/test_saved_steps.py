"""Which Stage 2 files a run keeps (``workflow.save_intermediates`` with one job per exposure): only
the products (the official behaviour), or the files of the steps named (the official per-step
save_results); re-runs stay correct either way (stand-in science: tests/workflow/fakes)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import fakeprog  # noqa: E402
from test_workflow import planned, snakemake  # noqa: E402

pytestmark = pytest.mark.slow
CHAIN = ["assign_wcs", "bkg_subtract", "extract_2d", "srctype", "wavecorr", "flat_field", "pathloss", "photom",
         "resample_spec", "extract_1d"]


def _files(prog, name):
    return sorted(os.listdir(prog / "webbspec" / "spec2" / name))


@pytest.mark.parametrize("save", [False, ["flat_field"]])
def test_saved_steps_and_reruns(tmp_path, save):
    prog = tmp_path / "prog"
    names = fakeprog.make_program(prog, nexp=2, spec3_asn=False)
    workflow = f"workflow: {{spec2_jobs: exposure, save_intermediates: {save if save else 'false'}}}\n"
    over = prog / "save.yaml"
    over.write_text(workflow)
    r = snakemake(prog, "--nolock", "--configfile", over)
    assert r.returncode == 0, r.stderr[-3000:]
    kept = [f"{names[0]}_{s}.fits" for s in (save or [])]
    assert _files(prog, names[0]) == sorted(kept + [f"{names[0]}_{k}.fits" for k in ("cal", "s2d", "x1d")])
    assert planned(snakemake(prog, "-n", "--configfile", over)) == {}

    changed = prog / "photom.yaml"                      # a photom parameter: the chains run again
    changed.write_text(workflow + "spec2: {photom: {inverse: true}}\n")
    before = (prog / "webbspec" / "spec2" / f"{names[0]}_cal.fits").stat().st_mtime_ns
    r = snakemake(prog, "--nolock", "--configfile", changed)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (prog / "webbspec" / "spec2" / f"{names[0]}_cal.fits").stat().st_mtime_ns > before
    log = (prog / "webbspec" / "logs" / "spec2_chain_1" / f"{names[0]}.log").read_text()
    resumed = CHAIN[CHAIN.index("flat_field") + 1:] if save else CHAIN   # after the last file kept
    assert f"ran {len(resumed)} of {len(CHAIN)} steps: {', '.join(resumed)}" in log, log
    assert planned(snakemake(prog, "-n", "--configfile", changed)) == {}
