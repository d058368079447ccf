"""Mistakes caught when plain ``snakemake`` plans the run, as ``webbspec run`` catches them: one line
``webbspec: <file or key>: <problem>``, exit status 2, nothing created (dry runs)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import fakeprog  # noqa: E402
from test_workflow import planned, snakemake  # noqa: E402


def _stop_lines(result):
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("webbspec: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_misspelt_program_directory_is_an_error_and_is_not_created(tmp_path):
    missing = tmp_path / "progrma"
    line = _stop_lines(snakemake(tmp_path, "-n", "--config", f"program={missing}"))
    assert str(missing) in line and "program directory does not exist" in line
    assert not missing.exists()


def test_a_program_without_inputs_says_what_was_looked_for(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing here")
    line = _stop_lines(snakemake(empty, "-n"))
    assert str(empty) in line and "_rate.fits" in line and "_cal.fits" in line and "_asn.json" in line


def test_bad_association_and_non_fits_rate_are_named_when_planning(tmp_path):
    prog = tmp_path / "prog"
    fakeprog.make_program(prog, nexp=2)
    bad_asn = prog / "jw01234-o001_spec3_00009_asn.json"
    bad_asn.write_text('{"asn_type": "spec3", ')                    # JSON syntax error
    (prog / "jw01234001001_03101_00009_nrs1_rate.fits").write_text("not FITS")
    r = snakemake(prog, "-n")
    assert r.returncode == 0, r.stderr[-3000:]                      # the good exposures are planned
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("webbspec: error: ")]
    assert len(errors) == 2, r.stderr
    assert any(bad_asn.name in ln and "malformed association JSON" in ln for ln in errors)
    assert any("00009_nrs1_rate.fits" in ln and "not a readable FITS file" in ln for ln in errors)


def test_saved_steps_must_be_stage2_steps(tmp_path):
    prog = tmp_path / "prog"
    fakeprog.make_program(prog, nexp=1)
    over = prog / "save.yaml"
    over.write_text("workflow: {spec2_jobs: exposure, save_intermediates: [flat_field, flatfield]}\n")
    line = _stop_lines(snakemake(prog, "-n", "--configfile", over))
    assert "workflow.save_intermediates" in line and "flatfield" in line


def test_snakemake_lint_is_clean(tmp_path):
    prog = tmp_path / "prog"
    fakeprog.make_program(prog, nexp=1)
    r = snakemake(prog, "--lint")
    assert r.returncode == 0 and "Lints for" not in r.stdout + r.stderr, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.slow
def test_the_msa_metadata_file_is_an_input_of_a_mos_exposure(tmp_path):
    """A new MSA file (MSAMETFL) re-runs assign_wcs and what follows (stand-in science; the MSA
    file is a real one: the planning reads its configurations)."""
    from webbspec.instruments.nirspec.msa import Slitlet, write_msa_file

    def slitlet(sid, ypos):
        return Slitlet(sid, 3, 5 + 40 * sid, 10, ((3, 5 + 40 * sid, 10),), 100 + sid, f"1234_{100 + sid}", "A",
                       0.9, 0.0, ypos, 53.16, -27.79, False, False, 1, 1)

    prog = tmp_path / "mos"
    fakeprog.make_program(prog, nexp=1, spec2_asn=False, spec3_asn=False, EXP_TYPE="NRS_MSASPEC",
                          MSAMETFL="jw01234001001_01_msa.fits", MSAMETID=1, PATT_NUM=1)
    write_msa_file(str(prog / "jw01234001001_01_msa.fits"), [slitlet(1, 0.0)], "01234")
    r = snakemake(prog, "--nolock")
    assert r.returncode == 0, r.stderr[-3000:]
    assert planned(snakemake(prog, "-n")) == {}
    write_msa_file(str(prog / "jw01234001001_01_msa.fits"), [slitlet(1, 0.1), slitlet(2, 0.0)], "01234")
    jobs = planned(snakemake(prog, "-n"))
    assert jobs["assign_wcs"] == 1 and jobs["extract_1d"] == 1, jobs


@pytest.mark.parametrize("suffix, workers", [("rate", "1"), ("cal", "2")])
def test_exp_to_source_forks_only_for_a_delivered_cal(tmp_path, suffix, workers):
    """exp_to_source shares a deserialized gwcs between split_workers forked processes: a delivered
    `_cal` gets them (and as many of Snakemake's cores); the `_cal` our Stage 2 writes carries
    per-pixel coordinates, so its jobs take one core and two run side by side."""
    prog = tmp_path / "prog"
    fakeprog.make_program(prog, nexp=2, suffix=suffix)
    r = snakemake(prog, "-n", "-p")
    assert r.returncode == 0, r.stderr[-3000:]
    cmds = [ln for ln in r.stdout.splitlines() if "exp-to-source" in ln]
    assert len(cmds) == 2 and all(f"--workers {workers}" in ln for ln in cmds), cmds


def test_one_core_chain_jobs_keep_large_arrays_on_the_heap(tmp_path):
    """A Stage 2 chain job on one core runs with the glibc malloc settings of the Stage 3 slit jobs
    (large arrays reused from the heap instead of fresh mmaps whose pages fault in again: a full-size
    MOS exposure 7.3 CPU s instead of 8.2); a job splitting its slitlets among forked workers not."""
    prog = tmp_path / "prog"
    fakeprog.make_program(prog, nexp=2)
    over = prog / "jobs.yaml"
    over.write_text("workflow: {spec2_jobs: exposure}\n")
    for extra, expect in ((), True), (("--set-threads", "spec2_chain_1=2"), False):
        r = snakemake(prog, "-n", "-p", "--configfile", over, *extra)
        assert r.returncode == 0, r.stderr[-3000:]
        cmds = [ln for ln in r.stdout.splitlines() if "rules_entry" in ln and " chain " in ln]
        assert len(cmds) == 2, r.stdout[-3000:]
        assert all(("MALLOC_MMAP_THRESHOLD_=" in ln) == expect for ln in cmds), cmds
