"""`webbspec step`: parameters checked against the schema, input checked for the steps it needs,
output named as the official strun names it; a problem is one line, exit status 2, no file."""

import os
import subprocess
import sys

import pytest

from webbspec.pipeline.steprun import output_name
from webbspec.simulate import simulate

ROOT = "jw01234001001_03101_00001_nrs1"


def _step(cwd, *args):
    return subprocess.run([sys.executable, "-m", "webbspec", "step", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def _one_line_error(r, *words):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("webbspec: ") and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    """A simulated NIRSpec FS program with one exposure's _assign_wcs and _extract_2d files."""
    d = tmp_path_factory.mktemp("step") / "prog"
    simulate("nrs_fs", str(d))
    assert _step(d, "assign_wcs", f"{ROOT}_rate.fits").returncode == 0
    assert _step(d, "extract_2d", f"{ROOT}_assign_wcs.fits").returncode == 0
    return d


def _fits(d):
    return sorted(p for p in os.listdir(d) if p.endswith(".fits"))


def test_output_named_as_strun(prog):
    """The step suffix replaces the input's product or step suffix (not `_assign_extract_2d`)."""
    assert (prog / f"{ROOT}_assign_wcs.fits").exists() and (prog / f"{ROOT}_extract_2d.fits").exists()
    assert output_name("flat_field", f"some/dir/{ROOT}_assign_wcs.fits") == f"{ROOT}_flat_field.fits"
    assert output_name("flat_field", f"{ROOT}_rate.fits") == f"{ROOT}_flat_field.fits"
    assert output_name("resample_spec", f"{ROOT}_cal.fits") == f"{ROOT}_resample_spec.fits"
    assert output_name("extract_1d", "jw1-o001_t001_nirspec_s000000001_s2d.fits") == \
        "jw1-o001_t001_nirspec_s000000001_extract_1d.fits"
    assert output_name("flat_field", "x_bkg_subtract.fits") == "x_flat_field.fits"
    assert output_name("photom", "mydata.fits") == "mydata_photom.fits"
    assert output_name("photom", "my_data.fits") == "my_data_photom.fits"
    r = _step(prog, "flat_field", f"{ROOT}_extract_2d.fits")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{ROOT}_flat_field.fits" and (prog / f"{ROOT}_flat_field.fits").exists()


@pytest.mark.parametrize("args, words", [
    (["--pixfrac", "-1"], ["resample_spec --pixfrac: -1 is not greater than 0"]),
    (["--pixfrac", "abc"], ["resample_spec --pixfrac: 'abc' is not of type 'number'"]),
    (["--pixfrac=2"], ["resample_spec --pixfrac: 2 is not at most 1"]),
    (["--kernel", "gauss"], ["resample_spec --kernel: 'gauss' is not one of"]),
    (["--pixfrak", "0.5"], ["unknown parameter --pixfrak", "--pixfrac"]),
])
def test_bad_parameter_is_one_line_and_writes_nothing(prog, args, words):
    before = _fits(prog)
    _one_line_error(_step(prog, "resample_spec", f"{ROOT}_extract_2d.fits", *args), *words)
    assert _fits(prog) == before


def test_string_of_numbers_parameter(prog):
    _one_line_error(_step(prog, "outlier_detection", f"{ROOT}_extract_2d.fits", "--snr", "5"),
                    """outlier_detection --snr: '5' is not two positive numbers ("5.0 4.0")""")


@pytest.mark.parametrize("step, given, missing", [
    ("resample_spec", "assign_wcs", "extract_2d"),
    ("extract_1d", "assign_wcs", "extract_2d"),
    ("photom", "rate", "assign_wcs and extract_2d"),
    ("srctype", "assign_wcs", "extract_2d"),
])
def test_input_missing_a_step_is_one_line_naming_the_file(prog, step, given, missing):
    """resample_spec of a full-frame _assign_wcs image made a 96% NaN product; now: what is missing."""
    before = _fits(prog)
    _one_line_error(_step(prog, step, f"{ROOT}_{given}.fits"), f"{ROOT}_{given}.fits",
                    f"{step} needs {missing} to have run on its input first")
    assert _fits(prog) == before


def test_input_with_what_it_needs_runs(prog):
    r = _step(prog, "resample_spec", f"{ROOT}_extract_2d.fits", "--pixfrac", "0.8", "-o", "s2d.fits")
    assert r.returncode == 0, r.stderr
    assert (prog / "s2d.fits").exists()


def test_association_input_is_its_science_member(prog):
    """An association selects references from, and names the output after, its science member."""
    asn = "jw01234-o001_20240102t000000_spec2_00002_asn.json"
    r = _step(prog, "assign_wcs", asn)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "jw01234001001_03101_00002_nrs1_assign_wcs.fits"
    assert (prog / "jw01234001001_03101_00002_nrs1_assign_wcs.fits").exists()
