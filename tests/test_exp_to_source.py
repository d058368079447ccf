"""exp_to_source: one exposure in, one slice per source out (real official and our own `_cal`)."""

import os
import sys

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))
from builders import make_slit  # noqa: E402
from test_realdata import CEERS, multislit_cal  # noqa: E402

from webbspec.io import datamodels
from webbspec.pipeline import program  # noqa: E402
from webbspec.io.datamodels import Model  # noqa: E402
from webbspec.errors import InputError  # noqa: E402
from webbspec.pipeline.exp_to_source import read_error_slice, source_id_string, source_key, split_exposure  # noqa: E402
from webbspec.io.skycoords import xieta_to_radec  # noqa: E402


def test_real_multislit_exposure(tmp_path):
    cal = multislit_cal(tmp_path / "jw01345062001_03101_00001_nrs2_cal.fits", 3)
    pairs = split_exposure(cal, tmp_path / "out")
    assert [k for k, _ in pairs] == ["1345_933", "1345_934", "1345_935"]
    # sources.tsv is what program.read_sources (the workflow) reads
    assert program.read_sources(tmp_path / "out" / "sources.tsv") == [(k, str(p)) for k, p in pairs]
    text = (tmp_path / "out" / "sources.tsv").read_text().splitlines()
    assert text[1].split("\t") == ["1345_933", "1345_933.fits", "s000000933"]
    m = datamodels.read(pairs[1][1])
    assert m.layout == "single" and m.primary["WSSRCID"] == "s000000934"
    s = m.slits[0]
    for ext in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT", "WAVELENGTH", "XI", "ETA"):
        assert ext in s
    # exposure keywords merged into the slit; reference = the source position
    assert s.header["EFFEXPTM"] == pytest.approx(1021.222) and s.header["DETECTOR"] == "NRS2"
    assert (s.header["WSREFRA"], s.header["WSREFDE"]) == (s.header["SRCRA"], s.header["SRCDEC"])


def test_nods_share_the_source_reference(tmp_path):
    refs, centres = [], []
    for i, f in enumerate(CEERS):
        (key, path), = split_exposure(f, tmp_path / f"e{i}")
        s = datamodels.read(path).slits[0]
        refs.append((s.header["WSREFRA"], s.header["WSREFDE"]))
        centres.append((np.nanmean(s["XI"]), np.nanmean(s["ETA"])))
    assert len(set(refs)) == 1
    # the nods move the slit on the sky by about a shutter (0.53 arcsec pitch) relative to the source
    c = np.array(centres)
    assert 0.4 < np.hypot(*(c[1] - c[0])) < 0.7 and 0.4 < np.hypot(*(c[2] - c[0])) < 0.7


def test_our_own_cal_is_rereferenced(tmp_path):
    a = make_slit(source_id=7, ref=(214.8, 52.9))
    b = make_slit(source_id=8, ref=(214.8, 52.9), name="S200A2")
    b.header["SRCRA"], b.header["SRCDEC"] = 214.8005, 52.9003
    model = Model(fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT",
                               "DATAMODL": "MultiSlitModel"}), [a, b], "multi")
    cal = datamodels.write(model, str(tmp_path / "jw01234001001_03101_00001_nrs1_cal.fits"))
    pairs = dict(split_exposure(cal, tmp_path / "out"))
    assert set(pairs) == {"7", "8"}
    s = datamodels.read(pairs["8"]).slits[0]
    assert (s.header["WSREFRA"], s.header["WSREFDE"]) == (214.8005, 52.9003)
    # same sky positions as before, only the reference changed
    ra0, de0 = xieta_to_radec(b["XI"], b["ETA"], 214.8, 52.9)
    ra1, de1 = xieta_to_radec(s["XI"], s["ETA"], 214.8005, 52.9003)
    assert np.max(np.abs(ra1 - ra0)) * 3600 < 1e-4 and np.max(np.abs(de1 - de0)) * 3600 < 1e-4
    np.testing.assert_array_equal(s["SCI"], b["SCI"])


def test_keys_and_ids():
    h = fits.Header({"SOURCEID": 933, "SRCNAME": "1345_933", "SLTNAME": "138"})
    assert source_key(h) == "1345_933" and source_id_string(h, "NRS_MSASPEC") == "s000000933"
    h = fits.Header({"SOURCEID": 12, "SRCNAME": " ", "SLTNAME": "1345_BKG12"})
    assert source_key(h) == "12" and source_id_string(h, "NRS_MSASPEC") == "b000000012"
    h = fits.Header({"SOURCEID": -5, "SRCNAME": "", "SLTNAME": "1345_VRT5"})
    assert source_id_string(h, "NRS_MSASPEC") == "v000000005"
    assert source_id_string(fits.Header({"SOURCEID": 1}), "NRS_FIXEDSLIT") == "s000000001"


def test_slit_without_sourceid(tmp_path):
    s = make_slit()
    del s.header["SOURCEID"]
    model = Model(fits.Header({"EXP_TYPE": "NRS_FIXEDSLIT"}), [s], "single")
    cal = datamodels.write(model, str(tmp_path / "noid_cal.fits"))
    with pytest.raises(InputError, match=r"noid_cal.fits\[slit S200A1\]: slit has no SOURCEID"):
        split_exposure(cal, tmp_path / "out")


def test_parts_of_an_exposure_make_the_same_slices(tmp_path):
    """Job k of n (workflow.split_mb) writes exactly the slices of its sources, equal to the ones
    of one job for the whole exposure, and its own source table."""
    cal = multislit_cal(tmp_path / "jw01345062001_03101_00001_nrs2_cal.fits", 6)
    whole = dict(split_exposure(cal, tmp_path / "whole"))
    got = {}
    for k in range(3):
        table = tmp_path / "parts" / f"sources.{k}-3.tsv"
        pairs = split_exposure(cal, tmp_path / "parts", part=(k, 3), table=table)
        assert all(program.batch_of(key, 3) == k for key, _ in pairs)
        assert program.read_sources(table) == [(key, str(p)) for key, p in pairs]
        got.update(pairs)
    assert sorted(got) == sorted(whole) and len({program.batch_of(key, 3) for key in got}) > 1
    for key, path in got.items():
        a, b = datamodels.read(whole[key]), datamodels.read(path)
        for ext in ("SCI", "DQ", "WAVELENGTH", "XI", "ETA"):
            np.testing.assert_array_equal(a.slits[0][ext], b.slits[0][ext])
        assert a.slits[0].header == b.slits[0].header


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_forked_workers_write_the_same_files(tmp_path):
    """workflow.split_workers: sources split by processes forked after the gwcs is built write
    byte for byte what one process writes (slices and source table), whole and in parts."""
    cal = multislit_cal(tmp_path / "jw01345062001_03101_00001_nrs2_cal.fits", 5)
    for part in ((0, 1), (1, 2)):
        one, two = tmp_path / f"one{part[0]}", tmp_path / f"two{part[0]}"
        a = split_exposure(cal, one, part=part)
        b = split_exposure(cal, two, part=part, workers=2)
        assert [k for k, _ in a] == [k for k, _ in b] and len(a) >= 2
        assert _files(one) == _files(two)


def test_a_slit_without_coordinates_fails_its_source_only(tmp_path):
    """A bad slit found while splitting (in a worker) becomes that source's error slice; the
    other sources are made. Without defer_errors it raises, and no slice is left behind."""
    good = [make_slit(source_id=i, name=f"S{i}", ref=(214.8, 52.9)) for i in (7, 8, 9)]
    del good[1].arrays["XI"]
    model = Model(fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT",
                               "DATAMODL": "MultiSlitModel"}), good, "multi")
    cal = datamodels.write(model, str(tmp_path / "jw1_cal.fits"))
    pairs = dict(split_exposure(cal, tmp_path / "out", defer_errors=True, workers=2))
    assert pairs["7"].endswith("7.fits") and pairs["9"].endswith("9.fits")
    assert str(read_error_slice(pairs["8"])) == \
        f"{cal}[slit S8]: no per-pixel coordinates (XI)"
    with pytest.raises(InputError, match=r"\[slit S8\]: no per-pixel coordinates"):
        split_exposure(cal, tmp_path / "raise", workers=2)
    assert os.listdir(tmp_path / "raise") == []


def test_workers_die_with_a_killed_job(tmp_path):
    """kill -9 of an exp_to_source job leaves no forked worker behind (they would go on writing
    slices for a run that has ended)."""
    import signal
    import subprocess
    import time

    import psutil

    cal = multislit_cal(tmp_path / "jw01345062001_03101_00001_nrs2_cal.fits", 3)
    code = ("import sys, time; from webbspec.pipeline import exp_to_source as e; s = e._split_source; "
            "e._split_source = lambda job, src: (time.sleep(60), s(job, src))[1]; "
            "e.split_exposure(sys.argv[1], sys.argv[2], workers=2)")
    job = subprocess.Popen([sys.executable, "-P", "-c", code, cal, str(tmp_path / "out")])
    try:
        deadline = time.time() + 120
        while len(psutil.Process(job.pid).children()) < 2:
            assert time.time() < deadline and job.poll() is None, "no workers started"
            time.sleep(0.2)
        workers = psutil.Process(job.pid).children()
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive
    finally:
        job.kill()


def test_a_slit_without_a_catalogued_source_is_referenced_to_itself():
    """MOS background and virtual slitlets carry SRCRA = SRCDEC = 0 in official products: no position
    (re-referencing their sky coordinates to (0, 0) stretched their Stage 3 grid 3.3x)."""
    from webbspec.pipeline.exp_to_source import _source_position

    assert _source_position(fits.Header({"SRCRA": 0.0, "SRCDEC": 0.0})) is None
    assert _source_position(fits.Header({"SRCRA": 53.1, "SRCDEC": -27.8})) == (53.1, -27.8)
    assert _source_position(fits.Header({"SRCRA": 53.1})) is None


@pytest.mark.parametrize("ref,new", [((53.15, -27.80), (53.1503, -27.8012)),      # CEERS-like, arcsec apart
                                     ((210.0, 52.9), (209.99, 52.91)),              # tens of arcsec
                                     ((359.9999, 0.0001), (0.0002, -0.0002)),       # across RA 0
                                     ((120.0, 89.99), (300.0, 89.995))])            # near the pole
def test_retangent_is_the_gnomonic_round_trip(ref, new):
    # the projective map equals xieta_to_radec then radec_to_xieta (the route it replaces) over a
    # 4 x 200 arcsec slit region to 1e-9 arcsec (1e-8 of a 0.1 arcsec NIRSpec pixel), or, near the
    # pole, to twice the error of that route's own round trip around one point (its RA is
    # ill-conditioned there: 3e-5 arcsec); the map's own round trip is exact to 1e-10 arcsec
    from webbspec.io.skycoords import radec_to_xieta
    from webbspec.pipeline.exp_to_source import retangent

    xi, eta = np.meshgrid(np.linspace(-2.0, 2.0, 41), np.linspace(-100.0, 100.0, 51))
    trig = radec_to_xieta(*xieta_to_radec(xi, eta, *ref), *ref)
    tol = max(1e-9, 2 * max(np.max(np.abs(trig[0] - xi)), np.max(np.abs(trig[1] - eta))))
    want = radec_to_xieta(*xieta_to_radec(xi, eta, *ref), *new)
    got = retangent(xi, eta, ref, new)
    assert np.max(np.abs(got[0] - want[0])) < tol and np.max(np.abs(got[1] - want[1])) < tol
    back = retangent(*got, new, ref)
    assert np.max(np.abs(back[0] - xi)) < 1e-10 and np.max(np.abs(back[1] - eta)) < 1e-10
