"""`webbspec compare`: ratios and wavelength offsets against known answers; ours vs official."""

import glob
import os
import sys

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))
from builders import make_nods, make_s2d  # noqa: E402
from test_realdata import CEERS  # noqa: E402

from webbspec.pipeline import compare
from webbspec.io import datamodels, officialio  # noqa: E402
from webbspec.io.datamodels import Model, SpecModel, Spectrum, new_spec_table  # noqa: E402
from webbspec.errors import InputError  # noqa: E402


def _x1d(path, shift=0.0, scale=1.0, err_scale=1.0):
    t = new_spec_table(300)
    t["WAVELENGTH"] = 1.0 + 0.01 * (np.arange(300) + shift)
    t["FLUX"] = scale * (1.0 + t["WAVELENGTH"] ** 2)
    t["FLUX_ERROR"] = err_scale * 0.1
    return datamodels.write(SpecModel(fits.Header({"TELESCOP": "JWST"}),
                                      [Spectrum(fits.Header({"SOURCEID": 3}), t)]), str(path))


def test_x1d_ratios_and_offset(tmp_path):
    a = _x1d(tmp_path / "a_x1d.fits", scale=1.1, err_scale=2.0)
    b = _x1d(tmp_path / "b_x1d.fits", shift=2.3)
    item, = compare.compare(a, b)["items"]
    assert item["flux_ratio"] == pytest.approx(1.1, rel=1e-3)     # smooth spectrum: interpolation exact enough
    assert item["error_ratio"] == pytest.approx(2.0, rel=1e-9)
    # B's column k holds A's wavelength of column k + 2.3: A's lambda falls 2.3 columns earlier in B
    assert item["wave_shift_pix"] == -2 and item["wave_offset_pix"] == pytest.approx(-0.3, abs=1e-6)


def test_s2d_ratios(tmp_path):
    s_a = make_s2d(amp=lambda lam: 2.0 + 0 * lam)
    s_b = make_s2d(amp=lambda lam: 1.0 + 0 * lam)
    for s in (s_a, s_b):
        s["WHT"] = np.ones(s.shape, np.float32)
    hdr = fits.Header({"TELESCOP": "JWST", "INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT"})
    a = officialio.write(Model(hdr, [s_a], "single"), str(tmp_path / "a_s2d.fits"), "s2d")
    b = officialio.write(Model(hdr, [s_b], "single"), str(tmp_path / "b_s2d.fits"), "s2d")
    item, = compare.compare(a, b)["items"]
    assert item["sum_ratio"] == pytest.approx(2.0, rel=1e-6)
    assert item["common_rows_a"] == item["common_rows_b"] == 25
    assert item["wave_shift_pix"] == 0 and item["wave_offset_pix"] == pytest.approx(0.0, abs=1e-6)


def test_crf_counts_and_cli(tmp_path, capsys):
    m = make_nods()
    m.slits[1]["DQ"][3, 4:7] = 17
    a = datamodels.write(m, str(tmp_path / "a_crf.fits"))
    m2 = make_nods()
    m2.slits[1]["DQ"][3, 5:9] = 16
    b = datamodels.write(m2, str(tmp_path / "b_crf.fits"))
    items = compare.compare(a, b)["items"]
    assert [(i["outliers_a"], i["outliers_b"], i["outliers_both"]) for i in items] == \
        [(0, 0, 0), (3, 4, 2), (0, 0, 0)]
    assert compare.main([a, b]) == 0
    assert "outliers_a=3" in capsys.readouterr().out
    with pytest.raises(InputError, match="nothing to compare"):
        compare.compare(a, _x1d(tmp_path / "c_x1d.fits"))


@pytest.mark.official
def test_ours_vs_official_on_ceers(tmp_path, monkeypatch):
    """Our Stage 3 s2d of the 3 real CEERS nods against the official ResampleSpecStep's."""
    # for this test only: a CRDS_PATH left in the environment would be every later workflow run's
    # reference store (rules/common.smk falls back to it)
    for key, value in dict(CRDS_SERVER_URL="https://127.0.0.1:9", CRDS_PATH=str(tmp_path / "crds"),
                           STPIPE_DISABLE_CRDS_STEPPARS="True").items():
        monkeypatch.setenv(key, value)
    from jwst.datamodels import ModelContainer
    from jwst.resample import ResampleSpecStep
    from stdatamodels.jwst import datamodels as dm

    from webbspec.pipeline import stage3
    from webbspec.pipeline.exp_to_source import split_exposure

    official = ResampleSpecStep().run(ModelContainer([dm.open(f) for f in CEERS]))
    official.save(str(tmp_path / "official_s2d.fits"))
    slices = {}
    for i, f in enumerate(CEERS):
        for key, path in split_exposure(f, tmp_path / f"e{i}"):
            slices.setdefault(key, []).append(path)
    man = stage3.run_batch("x_{source_id}", list(slices), slices, str(tmp_path), {}, {},
                           steps=("outlier_detection", "resample_spec"))
    ours = glob.glob(str(tmp_path / "*_s2d.fits"))[0]
    assert man.rows[0]["status"] == "written"
    result = compare.compare(ours, str(tmp_path / "official_s2d.fits"))
    print(compare.report(result))
    item, = result["items"]
    # measured: sum ratio 1.003, median-down-the-slit 1.005 (0.993 and 0.974 before slit-edge
    # pixels were dropped as the official drizzle drops them); the full side by side: tests/official
    assert item["sum_ratio"] == pytest.approx(1.0, abs=0.01)
    assert item["sb_median_ratio"] == pytest.approx(1.0, abs=0.01)
    assert abs(item["wave_offset_pix"]) < 0.05
