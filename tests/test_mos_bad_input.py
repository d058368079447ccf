"""Bad NIRSpec MOS input, step by step: each problem is one line naming the file (and the slitlet
when it concerns one), and what is not affected is calibrated as without it.

* the MSA metadata file missing, or without the exposure's MSAMETID / PATT_NUM: an InputError
  naming the MSA file and the exposure, from assign_wcs and already when the run is planned
  (``program.discover``; tests/workflow/test_mos_bad_input_workflow.py runs it);
* a slitlet without valid pixels (all NaN or DO_NOT_USE in the `_rate`, or cut off by the
  subarray): extract_2d leaves it out with a warning; the other slitlets' cutouts are unchanged;
* a (positive) source id of SHUTTER_INFO that SOURCE_INFO lacks: a warning naming the file, the
  slitlet and the source; the slitlet is kept as a virtual source (official names).
"""

import io
import logging
import os
import sys

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "steps"))

from mosrefs import RATE_HEADER, mos_optical_refs, mos_rate  # noqa: E402
from webbspec.dq import DO_NOT_USE  # noqa: E402
from webbspec.errors import InputError  # noqa: E402
from webbspec.instruments.nirspec import msa  # noqa: E402
from webbspec.instruments.nirspec.msa import Slitlet  # noqa: E402
from webbspec.io import datamodels  # noqa: E402
from webbspec.pipeline import program  # noqa: E402
from webbspec.steps import assign_wcs, extract_2d  # noqa: E402
from webbspec.workflow import planning  # noqa: E402

RATE = "jw01234001001_03101_00001_nrs1_rate.fits"
MSA_FILE = RATE_HEADER["MSAMETFL"]


def _slitlet(sid, row, col, source_id, *, background=False, in_catalog=True, cols=(-1, 0, 1)):
    shutters = tuple((3, row, col + c) for c in cols)
    name = f"1234_BKG{sid}" if background else f"1234_{source_id}"
    return Slitlet(sid, 3, row, col, shutters, source_id, name, f"A{sid}", 0.0 if background else 0.9,
                   0.0, 0.0, 0.0 if background else 53.16, 0.0 if background else -27.79, background,
                   not in_catalog, 1, 1)


# Q3 slitlets in distinct rows: a source, a background slitlet, a source whose (positive) id
# SOURCE_INFO lacks (the writer leaves a virtual slitlet's source out), a planned virtual source
DESIGN = [_slitlet(1, 5, 10, 101), _slitlet(2, 40, 60, 2, background=True),
          _slitlet(3, 80, 120, 777, in_catalog=False), _slitlet(4, 120, 30, -4, in_catalog=False, cols=(0, 1))]


@pytest.fixture(scope="module")
def exposure(tmp_path_factory):
    d = tmp_path_factory.mktemp("mos_bad")
    refs = mos_optical_refs(d)
    msa.write_msa_file(str(d / MSA_FILE), DESIGN, "01234")
    rate = mos_rate(d / RATE)
    wcs = assign_wcs.run(rate, refs)
    return d, refs, rate, wcs, extract_2d.run(wcs, refs)


def _warnings(caplog, *words):
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and all(w in r.getMessage() for w in words)]


# ------------------------------------------------------------------ (c) source id not in SOURCE_INFO

def test_source_missing_from_source_info_is_a_warning_and_a_virtual_source(exposure, caplog):
    d, refs, rate, _, clean = exposure
    with caplog.at_level(logging.INFO):
        out = extract_2d.run(assign_wcs.run(rate, refs), refs)
    msa_path = str(d / MSA_FILE)
    lines = _warnings(caplog, "not in SOURCE_INFO")
    assert len(lines) == 1, lines                                  # the planned virtual source -4: no warning
    assert lines[0].startswith(msa_path) and "slitlet 3" in lines[0] and "source 777" in lines[0]
    assert "\n" not in lines[0]
    assert any("slitlet 4" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)
    h = {s.name: s.header for s in out.slits}
    assert sorted(h) == ["1", "2", "3", "4"]
    assert (h["3"]["SOURCEID"], h["3"]["SRCNAME"], h["3"]["SRCALIAS"]) == (777, "1234_VRT3", "VRT3")
    assert (h["3"]["STLARITY"], h["3"]["SRCRA"], h["3"]["SRCDEC"]) == (0.0, 0.0, 0.0)
    assert (h["1"]["SOURCEID"], h["1"]["SRCNAME"], h["1"]["SRCRA"]) == (101, "1234_101", pytest.approx(53.16))


# ------------------------------------------------------------------ (b) a slitlet without valid pixels

def _same_cutouts(out, clean, names):
    by = {s.name: s for s in clean.slits}
    assert [s.name for s in out.slits] == names
    for s in out.slits:
        for k in ("SCI", "DQ", "WAVELENGTH", "XI", "ETA"):
            np.testing.assert_array_equal(s[k], by[s.name][k])


@pytest.mark.parametrize("how", ["nan", "do_not_use"])
def test_slitlet_without_valid_pixels_is_left_out_with_a_warning(exposure, caplog, how):
    d, refs, rate, wcs, clean = exposure
    one = next(s for s in clean.slits if s.name == "1")
    y0, x0 = one.header["SLTSTRT2"] - 1, one.header["SLTSTRT1"] - 1
    trace = np.isfinite(one["WAVELENGTH"])                        # its pixels inside the wavelength range
    bad = wcs.copy()
    box = (slice(y0, y0 + one.shape[0]), slice(x0, x0 + one.shape[1]))
    if how == "nan":
        bad.slits[0]["SCI"][box][trace] = np.nan
    else:
        bad.slits[0]["DQ"][box][trace] |= DO_NOT_USE
    with caplog.at_level(logging.WARNING):
        out = extract_2d.run(bad, refs)
    lines = _warnings(caplog, "slitlet 1 ", "no valid pixel")
    assert len(lines) == 1 and lines[0].startswith(str(d / RATE)) and "source 101" in lines[0], caplog.text
    _same_cutouts(out, clean, ["2", "3", "4"])
    # one valid pixel left is enough to keep it
    keep = bad.copy()
    yy, xx = np.argwhere(trace)[trace.sum() // 2]
    keep.slits[0]["SCI"][y0 + yy, x0 + xx] = 1.0
    keep.slits[0]["DQ"][y0 + yy, x0 + xx] = 0
    assert [s.name for s in extract_2d.run(keep, refs).slits] == ["1", "2", "3", "4"]


def test_exposure_without_any_valid_slitlet_is_one_error(exposure):
    d, refs, _, wcs, _ = exposure
    bad = wcs.copy()
    bad.slits[0]["SCI"] = np.full(bad.slits[0].shape, np.nan, np.float32)
    with pytest.raises(InputError) as err:
        extract_2d.run(bad, refs)
    assert str(err.value) == f"{d / RATE}: no slit left: every slit lacks valid pixels or a wavelength (see the warnings)"


def test_subarray_cutting_off_slitlets(exposure, caplog):
    """A subarray starting at the last row of slitlet 2's cutout: the slitlets wholly below it are
    not on the exposure (as the official assign_wcs, no warning), slitlet 2 keeps a cutout without
    a wavelength (left out with a warning), the others are the same pixels as on the full frame."""
    d, refs, rate, _, clean = exposure
    by = {s.name: s for s in clean.slits}
    two = by["2"]
    top = two.header["SLTSTRT2"] - 1 + two.shape[0] - 1              # its last row (0-based)
    assert not np.isfinite(two["WAVELENGTH"][-1]).any()              # a margin row
    above = [n for n, s in by.items() if s.header["SLTSTRT2"] - 1 > top]
    below = [n for n, s in by.items() if s.header["SLTSTRT2"] - 1 + s.shape[0] <= top]
    assert above and below and len(above) + len(below) == len(by) - 1   # the design spans both
    sub = rate.copy()
    sub.primary.update({"SUBARRAY": "GENERIC", "SUBSTRT1": 1, "SUBSTRT2": top + 1, "SUBSIZE1": 2048,
                        "SUBSIZE2": 2048 - top})
    for k in list(sub.slits[0].arrays):
        sub.slits[0][k] = np.array(rate.slits[0][k][top:])
    with caplog.at_level(logging.WARNING):
        out = extract_2d.run(assign_wcs.run(sub, refs), refs)
    lines = _warnings(caplog, "slitlet 2 ", "no pixel inside the wavelength range")
    assert len(lines) == 1 and lines[0].startswith(str(d / RATE)), caplog.text
    assert [s.name for s in out.slits] == above
    assert not any(f"slitlet {n} " in caplog.text for n in below)
    for s in out.slits:
        ref = by[s.name]
        assert s.header["SLTSTRT2"] + top == ref.header["SLTSTRT2"]
        for k in ("SCI", "WAVELENGTH", "XI", "ETA"):
            np.testing.assert_array_equal(s[k], ref[k])


# ------------------------------------------------------------------ (a) MSA metadata file

def test_missing_msa_file_names_it_and_the_exposure(exposure, tmp_path):
    _, refs, rate, _, _ = exposure
    lost = rate.copy()
    lost.path = str(tmp_path / RATE)
    with pytest.raises(InputError) as err:
        assign_wcs.run(lost, refs)
    msg = str(err.value)
    assert msg == f"{tmp_path / MSA_FILE}: MSA metadata file (MSAMETFL) does not exist (MSAMETFL of {RATE})"


@pytest.mark.parametrize("keys, problem", [
    ({"MSAMETID": 7}, "MSAMETID 7 is not in SHUTTER_INFO (configurations: 1)"),
    ({"PATT_NUM": 3}, "MSAMETID 1 has no shutters at PATT_NUM 3 (dither points: 1)"),
])
def test_msametid_not_in_the_file(exposure, keys, problem):
    d, refs, rate, _, _ = exposure
    other = rate.copy()
    other.primary.update(keys)
    expected = f"{d / MSA_FILE}: {problem} (MSAMETFL of {RATE})"
    with pytest.raises(InputError) as err:
        assign_wcs.run(other, refs)
    assert str(err.value) == expected
    with pytest.raises(InputError) as err:                          # the planning check: the same line
        msa.check_exposure({**RATE_HEADER, **keys}, str(d / RATE))
    assert str(err.value) == expected


def _header_only_rate(path, **keys):
    """A `_rate` holding the MOS keywords and a tiny SCI: discovery reads only PRIMARY headers."""
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({**RATE_HEADER, **keys})),
                  fits.ImageHDU(np.zeros((2, 2), np.float32), name="SCI")]).writeto(path)


def test_planning_names_bad_msa_metadata_once_and_plans_the_rest(tmp_path):
    """Discovery marks the exposures whose MSA file is missing or lacks their MSAMETID (one
    line each, as report_bad_inputs prints them); the other exposures keep their whole chain."""
    msa.write_msa_file(str(tmp_path / MSA_FILE), DESIGN, "01234")
    good, nofile, noid = (f"jw01234001001_03101_0000{k}_nrs1" for k in (1, 2, 3))
    _header_only_rate(tmp_path / f"{good}_rate.fits")
    _header_only_rate(tmp_path / f"{nofile}_rate.fits", MSAMETFL="jw01234001001_09_msa.fits")
    _header_only_rate(tmp_path / f"{noid}_rate.fits", MSAMETID=5)
    prog = program.discover(str(tmp_path))
    assert prog.exposures[good].error is None
    assert program.spec2_chain(prog.exposures[good])[:2] == ["assign_wcs", "msa_flagging"]
    errors = {n: prog.exposures[n].error for n in (nofile, noid)}
    assert errors[nofile] == (f"{tmp_path / 'jw01234001001_09_msa.fits'}: MSA metadata file (MSAMETFL) does not "
                              f"exist (MSAMETFL of {nofile}_rate.fits)")
    assert errors[noid] == (f"{tmp_path / MSA_FILE}: MSAMETID 5 is not in SHUTTER_INFO (configurations: 1) "
                            f"(MSAMETFL of {noid}_rate.fits)")
    for n in (nofile, noid):
        assert prog.exposures[n].mode == "nrs_mos"              # its one job, assign_wcs, fails with it
        assert program.spec2_chain(prog.exposures[n]) == ["assign_wcs"]
    program.check_plan(prog)                                      # not a reason to stop the run
    report = io.StringIO()
    planning.report_bad_inputs(prog, report)
    lines = report.getvalue().splitlines()
    assert sorted(lines) == sorted(f"webbspec: error: {e} (its jobs will fail; everything else is built)"
                                   for e in errors.values())
    with pytest.raises(InputError, match="MSA metadata file"):
        program.discover(str(tmp_path), strict=True)


def test_assign_wcs_job_fails_with_the_line_planning_reported(exposure, tmp_path):
    """The workflow's assign_wcs job (steprun.run_step, run from the program directory) raises the
    error discovery recorded for the exposure, word for word."""
    from webbspec.pipeline.steprun import run_step

    d, refs, rate, _, _ = exposure
    bad = rate.copy()
    bad.primary["MSAMETID"] = 5
    datamodels.write(bad, str(tmp_path / RATE))
    msa.write_msa_file(str(tmp_path / MSA_FILE), DESIGN, "01234")
    recorded = program.discover(str(tmp_path)).exposures[RATE[:-10]].error
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(InputError) as err:
            run_step("assign_wcs", RATE, "out.fits", refs=refs)
    finally:
        os.chdir(cwd)
    assert str(err.value) == recorded
    assert not (tmp_path / "out.fits").exists()
