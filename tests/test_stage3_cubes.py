"""The cube Stage 3 path (webbspec.pipeline.stage3_cubes) on the small analytic IFU of
tests/ifu_builders: master background (analytic), mrs_imatch levels, cube planning and names,
and a band that cannot be made while the others are."""

import os
import sys

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))
from ifu_builders import DITHERS, Exposure, Scene, as_nirspec, ifu_exposure, write_cubepar  # noqa: E402

from webbspec.errors import InputError  # noqa: E402
from webbspec.io import datamodels  # noqa: E402
from webbspec.io.datamodels import SpecModel, Spectrum, new_spec_table  # noqa: E402
from webbspec.pipeline import stage3_cubes  # noqa: E402
from webbspec.steps import master_background, mrs_imatch  # noqa: E402


def _bkg_x1d(wave, sb, exp_type="MIR_MRS", srctype="EXTENDED", exptime=100.0, column="BACKGROUND"):
    t = new_spec_table(len(wave))
    t["WAVELENGTH"] = wave
    t["FLUX"] = 1.0
    t[column] = sb
    if column != "SURF_BRIGHT":
        t["SURF_BRIGHT"] = 7.0 * sb + 3.0       # the whole-field mean: not what an IFU background uses
    p = fits.Header()
    p["EXP_TYPE"], p["EFFEXPTM"], p["BKGDTARG"] = exp_type, exptime, True
    h = fits.Header()
    h["SRCTYPE"] = srctype
    return SpecModel(p, [Spectrum(h, t)], "EXTRACT1D")


@pytest.mark.parametrize("exp_type, srctype, column", [("MIR_MRS", "POINT", "BACKGROUND"),
                                                       ("NRS_IFU", "EXTENDED", "BACKGROUND"),
                                                       ("NRS_IFU", "POINT", "SURF_BRIGHT")])
def test_master_background_of_an_ifu_exposure_is_analytic(exp_type, srctype, column):
    """Two background spectra linear in wavelength, combined with exposure-time weights, then
    interpolated at every pixel's wavelength: the subtracted image is the weighted mean of the two
    lines at each pixel, exactly (linear interpolation of a line). MRS always takes the field's
    BACKGROUND column, NIRSpec IFU when the background is EXTENDED, else SURF_BRIGHT (official)."""
    exp = ifu_exposure(Exposure(designs=("1", "2")))
    if exp_type == "NRS_IFU":
        exp = as_nirspec(exp)
    sci = np.asarray(exp.slits[0]["SCI"], float)
    exp.slits[0]["SCI"] = np.where(np.isfinite(sci), 1.0 + 1e-9 * sci, np.nan).astype(np.float32)   # ~1 MJy/sr
    wave = np.linspace(4.9, 8.0, 400)
    a = _bkg_x1d(wave, 2.0 + 0.5 * wave, exp_type, srctype, 100.0, column)
    b = _bkg_x1d(wave, 5.0 - 0.2 * wave, exp_type, srctype, 300.0, column)
    out = master_background.run(exp, {}, backgrounds=[a, b])
    lam = np.asarray(exp.slits[0]["WAVELENGTH"], float)
    has = np.isfinite(lam)
    expect = (100.0 * (2.0 + 0.5 * lam) + 300.0 * (5.0 - 0.2 * lam)) / 400.0
    got = np.asarray(exp.slits[0]["SCI"], float) - np.asarray(out.slits[0]["SCI"], float)
    sci = np.isfinite(got)
    assert (has & sci).sum() > 50_000
    assert np.max(np.abs(got - expect)[has & sci]) < 2e-6       # float32 SCI of a few MJy/sr
    assert out.primary["S_MSBSUB"] == "COMPLETE"


def test_master_background_skipped_after_stage2_background_unless_forced():
    exps = [ifu_exposure(Exposure(dither=d), patt_num=i + 1) for i, d in enumerate(DITHERS[:2])]
    for e in exps:
        e.primary["S_BKDSUB"] = "COMPLETE"
    wave = np.linspace(4.9, 5.3, 50)
    bkg = [_bkg_x1d(wave, np.full(50, 4.0))]
    params = {"master_background": {"force_subtract": False}, "outlier_detection": {}}
    out = stage3_cubes.prepare_models(exps, bkg, mode="nrs_ifu", steps=("master_background",), params=params)
    assert all(o.primary["S_MSBSUB"] == "SKIPPED" for o in out)
    assert np.array_equal(out[0].slits[0]["SCI"], exps[0].slits[0]["SCI"], equal_nan=True)
    params["master_background"]["force_subtract"] = True
    out = stage3_cubes.prepare_models(exps, bkg, mode="nrs_ifu", steps=("master_background",), params=params)
    d = np.asarray(exps[0].slits[0]["SCI"], float) - np.asarray(out[0].slits[0]["SCI"], float)
    assert np.nanmedian(d) == pytest.approx(4.0, rel=1e-5)


def _sky_dominated(offsets, noise=0.02, seed=1):
    """Four dithered MRS exposures (channels 1 and 2) of a faint scene on a sky of 10 MJy/sr, each
    with its own sky offset and Gaussian noise."""
    faint = Scene(ps_cont=2e-9, lines=(), ext_flux=3e-9)     # peak ~1 MJy/sr: the sky dominates
    rng = np.random.default_rng(seed)
    exps = []
    for i, off in enumerate(offsets):
        e = ifu_exposure(Exposure(designs=("1", "2"), dither=DITHERS[i], scene=faint), patt_num=i + 1)
        s = e.slits[0]
        s["SCI"] = (np.asarray(s["SCI"], float) + 10.0 + off + rng.normal(0.0, noise, s.shape)).astype(np.float32)
        exps.append(e)
    return exps


def test_mrs_imatch_recovers_relative_sky_levels():
    """Known offsets: the recorded level of each exposure and channel is its offset less the mean
    offset (the step matches exposures; their common level is not defined), within 0.002 MJy/sr (measured 3.5e-4):
    the scene's residual mismatch after clipping plus the median noise of ~1e4 pixels per exposure
    (0.02 x 1.25 / 100) is a few 1e-3 at most."""
    offsets = np.array([0.30, -0.10, 0.05, -0.45])
    exps = _sky_dominated(offsets)
    out = mrs_imatch.run(exps, {}, bkg_degree=1)
    want = offsets - offsets.mean()
    for ch in "12":
        got = np.array([o.primary[f"BKGLEV{ch}"] for o in out])
        assert np.max(np.abs(got - want)) < 0.002, (ch, got, want)
    assert all(o.primary["BKGSUB"] is False and o.primary["S_MRSMAT"] == "COMPLETE" for o in out)
    # not subtracted unless asked
    assert all(np.array_equal(o.slits[0]["SCI"], e.slits[0]["SCI"], equal_nan=True) for o, e in zip(out, exps))


def test_mrs_imatch_subtracts_when_asked_and_fits_a_gradient():
    """A sky offset that varies linearly with wavelength in one exposure (degree 1 in lambda):
    after subtraction the exposures agree to the noise over the band, and the sky values move by
    the fitted polynomial only (the scene is untouched)."""
    exps = _sky_dominated(np.zeros(4))
    s = exps[2].slits[0]
    lam = np.asarray(s["WAVELENGTH"], float)
    ramp = 0.4 * (lam - 5.1)          # 0 at 5.1 um, +0.05 at 5.22 um (channel 1), +1.0 at 7.6 um (channel 2)
    s["SCI"] = (np.asarray(s["SCI"], float) + np.nan_to_num(ramp)).astype(np.float32)
    out = mrs_imatch.run(exps, {}, bkg_degree=1, subtract=True)
    assert all(o.primary["BKGSUB"] is True for o in out)
    removed = np.asarray(s["SCI"], float) - np.asarray(out[2].slits[0]["SCI"], float)
    others = np.mean([np.asarray(e.slits[0]["SCI"], float) - np.asarray(o.slits[0]["SCI"], float)
                      for k, (e, o) in enumerate(zip(exps, out)) if k != 2], axis=0)
    # exposure 2 had +ramp, the others 0: relative to their mean, 3/4 ramp in 2 and -1/4 ramp in the others
    ok = np.isfinite(removed) & np.isfinite(ramp)
    assert np.max(np.abs((removed - others)[ok] - ramp[ok])) < 0.01


def test_cube_plans_and_product_names():
    def mrs(ch, band):
        h = fits.Header()
        h["INSTRUME"], h["EXP_TYPE"], h["CHANNEL"], h["BAND"] = "MIRI", "MIR_MRS", ch, band
        return h

    heads = {"e1_mirifushort": mrs("12", "SHORT"), "e1_mirifulong": mrs("34", "SHORT"),
             "e2_mirifushort": mrs("12", "MEDIUM")}
    plans = stage3_cubes.plan_cubes(heads, {"output_type": "band"})
    assert [p.suffix for p in plans] == ["ch1-short", "ch1-medium", "ch2-short", "ch2-medium", "ch3-short",
                                         "ch4-short"]
    assert plans[1].exposures == ["e2_mirifushort"] and plans[4].exposures == ["e1_mirifulong"]
    assert [p.suffix for p in stage3_cubes.plan_cubes(heads, {"output_type": "channel"})] == \
        ["ch1-shortmedium", "ch2-shortmedium", "ch3-short", "ch4-short"]
    assert [p.suffix for p in stage3_cubes.plan_cubes(heads, {"output_type": "multi"})] == \
        ["ch1-2-3-4-shortmedium"]
    assert [p.suffix for p in stage3_cubes.plan_cubes(heads, {"channel": "3"})] == ["ch3-short"]
    with pytest.raises(InputError, match="x_asn.json.*channel=5"):
        stage3_cubes.plan_cubes(heads, {"channel": "5"}, where="x_asn.json")
    name = stage3_cubes.cube_product_name
    assert name("jw01234-o001_t001_miri", "ch1-short") == "jw01234-o001_t001_miri_ch1-short"
    # official NIRSpec IFU association names end with the grating, which cube_build replaces
    assert name("jw01234-o001_t001_nirspec_g395h", "g395h-f290lp") == "jw01234-o001_t001_nirspec_g395h-f290lp"
    assert name("jw01234-o001_t001_nirspec_g395h-f290lp", "g395h-f290lp") == "jw01234-o001_t001_nirspec_g395h-f290lp"
    assert name("jw01234-o001_t001_nirspec_f290lp-g395h", "g395h-f290lp") == "jw01234-o001_t001_nirspec_g395h-f290lp"
    assert stage3_cubes.crf_name("jw01234001001_03102_00001_mirifushort", "o001") == \
        "jw01234001001_03102_00001_mirifushort_o001_crf.fits"


def test_planned_cubes_are_the_cubes_cube_build_makes(tmp_path):
    """The workflow plans the cubes from headers alone: the names must be cube_build's own."""
    from webbspec.steps import cube_build

    exps = [ifu_exposure(Exposure(designs=("1", "2"), dither=d), patt_num=i + 1) for i, d in enumerate(DITHERS[:2])]
    refs = {"cubepar": write_cubepar(tmp_path / "cubepar.fits")}
    heads = {f"e{i}": e.primary for i, e in enumerate(exps)}
    for output_type in ("band", "channel", "multi"):
        made = sorted(c.name for c in cube_build.run(exps, refs, output_type=output_type, weighting="emsm"))
        assert made == sorted(p.suffix for p in stage3_cubes.plan_cubes(heads, {"output_type": output_type}))
    nrs = [as_nirspec(e, "G395H", "F290LP") for e in exps]
    assert [p.suffix for p in stage3_cubes.plan_cubes({f"e{i}": e.primary for i, e in enumerate(nrs)}, {})] == \
        ["g395h-f290lp"]


def test_a_band_missing_from_the_cubepar_is_one_warning_and_the_others_are_made(tmp_path, capsys):
    exps = [ifu_exposure(Exposure(designs=("1", "2"), dither=d), patt_num=i + 1) for i, d in enumerate(DITHERS[:2])]
    cals = []
    for i, e in enumerate(exps):
        e.primary["SRCTYPE"] = "EXTENDED"
        e.slits[0].header["SRCTYPE"] = "EXTENDED"
        cals.append(datamodels.write(e, str(tmp_path / f"jw09999001001_03102_0000{i + 1}_mirifushort_cal.fits")))
    from ifu_builders import CUBEPARS

    cubepar = write_cubepar(tmp_path / "cubepar.fits", {k: v for k, v in CUBEPARS.items() if k[0] == "1"})
    out = stage3_cubes.run_product(cals, product="jw09999-o001_t001_miri", asn_id="o001", outdir=str(tmp_path / "s3"),
                                   mode="mir_mrs", params={"cube_build": {"weighting": "emsm"},
                                                           "outlier_detection": {}, "mrs_imatch": {}},
                                   refs={"cubepar": cubepar, "extract1d": "N/A"})
    assert [os.path.basename(p) for p in out["s3d"]] == ["jw09999-o001_t001_miri_ch1-short_s3d.fits"]
    assert [os.path.basename(p) for p in out["x1d"]] == ["jw09999-o001_t001_miri_ch1-short_x1d.fits"]
    assert [os.path.basename(p) for p in out["crf"]] == [f"jw09999001001_03102_0000{i}_mirifushort_o001_crf.fits"
                                                         for i in (1, 2)]
    assert list(out["failed"]) == ["ch2-short"]
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "ch2-short" in ln or "2/SHORT" in ln]
    assert len(lines) == 1 and "cubepar.fits" in lines[0] and "\n" not in lines[0], lines
    crf = datamodels.read(out["crf"][0])
    assert crf.primary["DATAMODL"] == "IFUImageModel" and crf.primary["S_OUTLIR"] == "COMPLETE"
    assert crf.primary["S_MRSMAT"] == "COMPLETE" and "SLICE" in crf.slits[0]


def test_a_band_without_data_is_one_error_naming_file_and_band(tmp_path, capsys):
    """Channel 2 of every exposure without a usable pixel: the ch2 cube job fails on one line naming
    the file and the band (cube_build warns which slices), the ch1 cube is made."""
    exps = [ifu_exposure(Exposure(designs=("1", "2"), dither=d), patt_num=i + 1) for i, d in enumerate(DITHERS[:2])]
    for e in exps:
        s = e.slits[0]
        s["SCI"] = np.where(np.asarray(s["SLICE"]) // 100 == 2, np.nan, s["SCI"]).astype(np.float32)
        e.path = str(tmp_path / "x_cal.fits")
    refs = {"cubepar": write_cubepar(tmp_path / "cubepar.fits")}
    plans = stage3_cubes.plan_cubes({f"e{i}": e.primary for i, e in enumerate(exps)}, {})
    assert [p.suffix for p in plans] == ["ch1-short", "ch2-short"]       # the headers say both
    assert stage3_cubes.build_cube_models(exps, plans[0], params={"weighting": "emsm"}, refs=refs).name == "ch1-short"
    with pytest.raises(InputError) as err:
        stage3_cubes.build_cube_models(exps, plans[1], params={"weighting": "emsm"}, refs=refs)
    msg = str(err.value)
    assert "\n" not in msg and "x_cal.fits" in msg and "2/SHORT" in msg and "ch2-short" in msg, msg
