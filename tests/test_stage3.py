"""The per-source Stage 3 driver: products, names, bad sources, skipping unchanged sources."""

import glob
import os
import sys

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))
from builders import amp_default, make_slit  # noqa: E402
from test_realdata import CEERS  # noqa: E402

from webbspec.io import datamodels
from webbspec.pipeline import stage3  # noqa: E402
from webbspec.io.datamodels import Model  # noqa: E402
from webbspec.pipeline.exp_to_source import split_exposure  # noqa: E402

FS = "jw01234-o001_t001-{source_id}_nirspec_f290lp-g395m-{slit_name}"
MOS = "jw01345-o062_{source_id}_nirspec_clear-prism"


def _fs_program(root, scale8=1.0):
    """3 nod exposures of an FS-like program with two sources (7 in S200A1, 8 in S200A2)."""
    tables = []
    for k, nod in enumerate((-0.5, 0.0, 0.5)):
        slits = [make_slit(nod=nod, source_id=7, name="S200A1", seed=10 + k),
                 make_slit(nod=nod, source_id=8, name="S200A2", seed=20 + k,
                           amp=lambda lam: scale8 * amp_default(lam))]
        primary = fits.Header({"TELESCOP": "JWST", "INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT",
                               "DATAMODL": "MultiSlitModel", "S_PHOTOM": "COMPLETE", "EFFEXPTM": 1000.0})
        name = f"jw01234001001_03101_0000{k + 1}_nrs1"
        cal = datamodels.write(Model(primary, slits, "multi"), str(root / f"{name}_cal.fits"))
        tables.append(split_exposure(cal, root / "e2s" / name))
    slices = {}
    for pairs in tables:
        for key, path in pairs:
            slices.setdefault(key, []).append(path)
    return slices


def test_fs_batch_products_numbers_and_skip(tmp_path):
    slices = _fs_program(tmp_path)
    out = tmp_path / "spec3"
    man = stage3.run_batch(FS, ["7", "8"], slices, str(out), {"outlier_detection": {"snr": "5.0 4.0"}}, {})
    assert [r["status"] for r in man.rows] == ["written", "written"]
    names = sorted(os.path.basename(p) for p in glob.glob(str(out / "*.fits")))
    assert names == [f"jw01234-o001_t001-s00000000{i}_nirspec_f290lp-g395m-s200a{i - 6}_{k}.fits"
                     for i in (7, 8) for k in ("cal", "crf", "s2d", "x1d")]
    assert man["7"] == [str(out / f"jw01234-o001_t001-s000000007_nirspec_f290lp-g395m-s200a1_{k}.fits")
                        for k in ("cal", "crf", "s2d", "x1d")]
    # the point source's spectrum comes back (MJy point source: rows of a column sum to amp)
    x1d = datamodels.read(man["8"][3]).spectra[0].table
    core = slice(40, -40)
    ratio = x1d["FLUX"][core] / (1e6 * amp_default(x1d["WAVELENGTH"][core]))
    assert np.nanmedian(ratio) == pytest.approx(1.0, abs=0.01)
    cal = datamodels.read(man["7"][0])
    assert cal.primary["DATAMODL"] == "MultiExposureModel" and len(cal.slits) == 3
    sig = {fits.getval(p, "WSINSIG") for p in man["7"]}
    assert len(sig) == 1

    # unchanged inputs: nothing re-written
    mtimes = {p: os.stat(p).st_mtime_ns for p in glob.glob(str(out / "*.fits"))}
    man2 = stage3.run_batch(FS, ["7", "8"], slices, str(out), {"outlier_detection": {"snr": "5.0 4.0"}}, {})
    assert [r["status"] for r in man2.rows] == ["unchanged", "unchanged"]
    assert mtimes == {p: os.stat(p).st_mtime_ns for p in mtimes}

    # source 8's data change (exp_to_source re-run on new _cal files): only 8 is re-written
    slices = _fs_program(tmp_path, scale8=2.0)
    man3 = stage3.run_batch(FS, ["7", "8"], slices, str(out), {"outlier_detection": {"snr": "5.0 4.0"}}, {})
    assert [r["status"] for r in man3.rows] == ["unchanged", "written"]
    assert all(os.stat(p).st_mtime_ns == mtimes[p] for p in man3["7"])
    x1d = datamodels.read(man3["8"][3]).spectra[0].table
    assert np.nanmedian(x1d["FLUX"][core] / (1e6 * amp_default(x1d["WAVELENGTH"][core]))) == \
        pytest.approx(2.0, abs=0.02)

    # a parameter change re-runs every source
    man4 = stage3.run_batch(FS, ["7", "8"], slices, str(out), {"outlier_detection": {"snr": "6.0 4.0"}}, {})
    assert [r["status"] for r in man4.rows] == ["written", "written"]


def test_bad_source_does_not_stop_the_batch(tmp_path, caplog):
    slices = _fs_program(tmp_path)
    slices["9"] = [str(tmp_path / "missing.fits")]
    with caplog.at_level("INFO", logger="webbspec.progress"):
        man = stage3.run_batch(FS, ["9", "7"], slices, str(tmp_path / "out"), {}, {},
                               steps=("resample_spec", "extract_1d"))
    assert [r["status"] for r in man.rows] == ["error", "written"]
    assert [r.getMessage().split(": ")[-1] for r in caplog.records if r.name == "webbspec.progress"] == \
        ["1 of 2 sources of this batch done", "2 of 2 sources of this batch done"]   # the terminal's progress
    assert "missing.fits: file does not exist" in man.rows[0]["message"]
    assert man["9"] == [] and len(man["7"]) == 3          # cal, s2d, x1d
    tsv = stage3.write_manifest(man.rows, str(tmp_path / "out" / "000.tsv"))
    lines = open(tsv).read().splitlines()
    assert lines[1].startswith("9\t\terror\t") and len(lines) == 5


def test_workflow_call_convention(tmp_path):
    """rules_entry passes sources as {key: [slices]} with product=, mode=, context=."""
    slices = _fs_program(tmp_path)
    man = stage3.run_batch(sources={"7": slices["7"]}, outdir=str(tmp_path / "o"), product=FS,
                           mode="nrs_fs", params={}, refs={}, backgrounds=[], context="webbspec_0001")
    assert list(man) == ["7"] and len(man["7"]) == 4
    assert fits.getval(man["7"][3], "REFCTX") == "webbspec_0001"


def test_real_ceers_source(tmp_path):
    slices = {}
    for i, f in enumerate(CEERS):
        for key, path in split_exposure(f, tmp_path / f"e{i}"):
            slices.setdefault(key, []).append(path)
    assert list(slices) == ["1345_933"]
    man = stage3.run_batch(MOS, list(slices), slices, str(tmp_path / "out"), {}, {})
    assert man.rows[0]["status"] == "written", man.rows[0]["message"]
    assert os.path.basename(man["1345_933"][2]) == "jw01345-o062_s000000933_nirspec_clear-prism_s2d.fits"
    s2d = datamodels.read(man["1345_933"][2]).slits[0]
    # three nods of a 25-row slit combined: a taller rectified slit covering the PRISM range
    assert s2d.shape[0] > 25 and 1.0 < np.nanmin(s2d["WAVELENGTH"]) < 1.6 and np.nanmax(s2d["WAVELENGTH"]) > 5.0


def test_product_names():
    assert stage3.product_name(MOS, "s000000933") == "jw01345-o062_s000000933_nirspec_clear-prism"
    assert stage3.product_name(FS, "s000000001", ["S200A1"]) == \
        "jw01234-o001_t001-s000000001_nirspec_f290lp-g395m-s200a1"
    assert stage3.product_name("jw1-o001_t001_nirspec_g395m", "s000000002") == \
        "jw1-o001_t001_nirspec_g395m_s000000002"


def test_a_failed_rerun_keeps_the_earlier_products(tmp_path):
    """Issue 20: a bad parameter in a re-run fails the source but leaves the products of the
    earlier good run in place, byte for byte, and no new file behind."""
    slices = _fs_program(tmp_path)
    out = tmp_path / "spec3"
    good = stage3.run_batch(FS, ["7"], slices, str(out), {"outlier_detection": {"snr": "5.0 4.0"}}, {})
    before = {p: open(p, "rb").read() for p in good["7"]}
    assert all(fits.getval(p, "FILENAME") == os.path.basename(p) for p in good["7"])
    bad = stage3.run_batch(FS, ["7"], slices, str(out), {"outlier_detection": {"snr": "abc"}}, {})
    assert bad.rows[0]["status"] == "error" and "snr" in bad.rows[0]["message"]
    assert {p: open(p, "rb").read() for p in good["7"]} == before
    assert sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in good["7"])
