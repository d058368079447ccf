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
    assert "exposure 2 (slit S200A1): OUTLIER flags A 3, B 4, both 2" in capsys.readouterr().out
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
    # the official weighting (ivm), as the official step runs it: a side by side of the algorithm
    # on the same input (the Stage 3 default, ivm-smooth: tests/official/test_ceers_side_by_side.py)
    man = stage3.run_batch("x_{source_id}", list(slices), slices, str(tmp_path),
                           {"resample_spec": {"weight_type": "ivm"}}, {},
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


# ------------------------------------------------------------------ issue 20: labels, nothing in common, sky


HDR = {"TELESCOP": "JWST", "INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT"}


def _s2d_slit(name, amp, seed=None):
    s = make_s2d(amp=lambda lam: amp + 0 * lam, name=name, seed=seed, rnoise=0.01)
    s["WHT"] = np.ones(s.shape, np.float32)
    return s


def _s2d_file(path, slits):
    return officialio.write(Model(fits.Header(HDR), slits, "multi"), str(path), "s2d")


def _cal_file(path, names, outlier=None):
    """A Stage 2 `_cal` (MultiSlitModel: slits of one exposure); ``outlier``: (slit name, count)."""
    from builders import make_slit

    m = Model(fits.Header(dict(HDR, DATAMODL="MultiSlitModel")), [make_slit(name=n) for n in names], "multi")
    if outlier:
        m.slit(outlier[0])["DQ"][3, :outlier[1]] = 16
    return datamodels.write(m, str(path))


def test_nothing_in_common_exits_non_zero(tmp_path, capsys):
    a = _s2d_file(tmp_path / "a_s2d.fits", [_s2d_slit("S200A1", 2.0), _s2d_slit("S200A2", 1.0)])
    b = _s2d_file(tmp_path / "b_s2d.fits", [_s2d_slit("S1600A1", 2.0), _s2d_slit("S200B1", 1.0)])
    with pytest.raises(InputError, match="no slit in common"):
        compare.compare(a, b)
    assert compare.main([a, b]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("webbspec: ") and "S1600A1" in err and "S200A1" in err
    # x1d: no common SOURCEID
    x = _x1d(tmp_path / "x_x1d.fits")
    with fits.open(x) as h:
        h[1].header["SOURCEID"] = 9
        h.writeto(tmp_path / "y_x1d.fits")
    assert compare.main([x, str(tmp_path / "y_x1d.fits")]) == 2
    assert "no source in common" in capsys.readouterr().err
    # cal/crf without DQ on one side: no outlier flags to compare
    c = _cal_file(tmp_path / "c_cal.fits", ["S200A1"])
    with fits.open(c) as h:
        fits.HDUList([x for x in h if x.name != "DQ"]).writeto(tmp_path / "d_cal.fits")
    assert compare.main([c, str(tmp_path / "d_cal.fits")]) == 2
    assert "DQ" in capsys.readouterr().err


def test_cal_slits_paired_and_labelled_by_name(tmp_path):
    """A Stage 2 `_cal` holds slits of one exposure: paired by name, whatever their order."""
    a = _cal_file(tmp_path / "a_cal.fits", ["S200A1", "S200A2", "S400A1"], outlier=("S200A2", 3))
    b = _cal_file(tmp_path / "b_cal.fits", ["S200A2", "S200A1"], outlier=("S200A2", 5))
    result = compare.compare(a, b)
    assert result["kind"] == "cal"
    assert [(i["slit"], i["slit_b"], i["outliers_a"], i["outliers_b"], i["outliers_both"])
            for i in result["items"]] == [("S200A1", "S200A1", 0, 0, 0), ("S200A2", "S200A2", 3, 5, 3)]
    assert result["only_a"] == ["slit S400A1"] and result["only_b"] == []
    text = compare.report(result)
    assert f"A = {a}" in text and f"B = {b}" in text
    assert "slit S200A2: OUTLIER flags A 3, B 5, both 3" in text
    assert "in A only: slit S400A1" in text
    # Stage 3 (MultiExposureModel): exposures of one source, by position
    n = datamodels.write(make_nods(), str(tmp_path / "n_crf.fits"))
    assert compare.compare(n, n)["kind"] == "crf"
    assert "exposure 1 (slit S200A1): OUTLIER flags A 0, B 0, both 0" in compare.report(compare.compare(n, n))


def test_report_names_quantities_and_sides(tmp_path):
    a = _x1d(tmp_path / "a_x1d.fits", scale=1.1, err_scale=2.0)
    b = _x1d(tmp_path / "b_x1d.fits")
    text = compare.report(compare.compare(a, b))
    assert "source 3: FLUX A/B 1.1000, FLUX_ERROR A/B 2.0000" in text
    assert f"A = {a}" in text and f"B = {b}" in text
    s_a = _s2d_file(tmp_path / "a_s2d.fits", [_s2d_slit("S200A1", 2.0)])
    s_b = _s2d_file(tmp_path / "b_s2d.fits", [_s2d_slit("S200A1", 1.0)])
    text = compare.report(compare.compare(s_a, s_b))
    assert "slit S200A1: surface brightness (median down the slit) A/B 2.0000" in text
    assert "SCI x PIXAR_SR summed over the common sky (rows A 25, B 25) A/B 2.0000" in text


def test_sky_only_slits_get_a_reason_not_a_ratio(tmp_path):
    a = _s2d_file(tmp_path / "a_s2d.fits", [_s2d_slit("S200A1", 2.0), _s2d_slit("S200A2", 0.0, seed=1),
                                            _s2d_slit("S1600A1", 0.0, seed=3)])
    b = _s2d_file(tmp_path / "b_s2d.fits", [_s2d_slit("S200A1", 1.0), _s2d_slit("S200A2", 0.0, seed=2),
                                            _s2d_slit("S1600A1", 1.0)])
    result = compare.compare(a, b)
    target, sky, lost = result["items"]
    assert target["sky_only"] == [] and target["note"] == ""
    assert sky["sky_only"] == ["A", "B"] and sky["snr_a"] < 3 and sky["snr_b"] < 3
    assert lost["sky_only"] == ["A"]                   # a signal lost on one side: the ratio says so
    text = compare.report(result)
    line = [ln for ln in text.splitlines() if "slit S200A2" in ln][0]
    assert "A/B" not in line and "sky only in A" in line and "not a flux comparison" in line
    assert "A/B" in [ln for ln in text.splitlines() if "slit S1600A1" in ln][0]
    # a background slit (MOS: BKG in its name) is sky whatever its numbers
    bkg = _s2d_file(tmp_path / "c_s2d.fits", [_s2d_slit("1234_BKG77", 1.0)])
    assert compare.compare(bkg, bkg)["items"][0]["sky_only"] == ["A", "B"]
    assert "a background slit" in compare.report(compare.compare(bkg, bkg))
    # x1d: a spectrum of noise about zero on both sides
    x0 = _x1d(tmp_path / "s_x1d.fits", scale=0.0)
    item, = compare.compare(x0, x0)["items"]
    assert item["sky_only"] == ["A", "B"]


def test_compare_help_has_an_example():
    text = compare.parser().format_help()
    assert "Example" in text and "A/B" in text


def test_cal_sci_err_ratios_on_the_common_detector_pixels(tmp_path):
    """Stage 2 `_cal` slits (e.g. MOS, ours against the official from the same `_rate`): the median
    SCI / ERR ratios on the detector pixels both cutouts hold, placed by SLTSTRT1/2, and the
    DO_NOT_USE pixels that differ there."""
    from builders import make_slit

    def model(slits):
        return Model(fits.Header(dict(HDR, DATAMODL="MultiSlitModel")), slits, "multi")

    a = make_slit(name="7", seed=1)
    a.header["SLTSTRT1"], a.header["SLTSTRT2"] = 101, 51
    b = make_slit(name="7", seed=1)
    # B's cutout starts 3 columns later; its SCI is half A's, its ERR A's; one pixel DO_NOT_USE
    b.header["SLTSTRT1"], b.header["SLTSTRT2"] = 104, 51
    for k in list(b.arrays):
        b[k] = np.asarray(b[k])[:, 3:].copy()
    b["SCI"] = b["SCI"] * np.float32(0.5)
    b["DQ"][4, 10] = 1
    pa = datamodels.write(model([a]), str(tmp_path / "a_cal.fits"))
    pb = datamodels.write(model([b]), str(tmp_path / "b_cal.fits"))
    item, = compare.compare(pa, pb)["items"]
    assert item["sci_ratio"] == pytest.approx(2.0, rel=1e-6) and item["err_ratio"] == pytest.approx(1.0, rel=1e-6)
    assert item["pixels"] == a.shape[0] * (a.shape[1] - 3) and item["dnu_differ"] == 1
    assert "SCI A/B 2.0000, ERR A/B 1.0000, DO_NOT_USE differs on 1" in compare.report(compare.compare(pa, pb))


def test_s2d_row_offset_between_grids(tmp_path):
    """Where B's rows fall among A's on the sky: 0 for the same grid, the shift of B's S2DCRPX2."""
    a = _s2d_file(tmp_path / "a_s2d.fits", [_s2d_slit("S200A1", 2.0)])
    s = _s2d_slit("S200A1", 2.0)
    s.header["S2DCRPX2"] = float(s.header["S2DCRPX2"]) + 0.3     # B's reference row 0.3 row later
    b = _s2d_file(tmp_path / "b_s2d.fits", [s])
    assert compare.compare(a, a)["items"][0]["row_offset_pix"] == pytest.approx(0.0, abs=1e-6)
    # B's row r sits where A's row r - 0.3 is
    assert compare.compare(a, b)["items"][0]["row_offset_pix"] == pytest.approx(-0.3, abs=1e-3)
