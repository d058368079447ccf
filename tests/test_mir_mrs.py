"""MIRI MRS: the simulated references in the official formats, our WCS against the analytic design,
the assign_wcs contract of IFU exposures, the simulator's rendering and truth cubes.

One detector / band (MIRIFUSHORT, SHORT: channels 1 and 2) keeps this fast; the official side by
side (tests/official/test_mir_mrs_wcs_official.py) covers both detectors.
"""

import os

import numpy as np
import pytest
from astropy.io import fits

from webbspec.errors import InputError
from webbspec.instruments.miri.mrs import MrsWcs, pixel_coordinates
from webbspec.io.datamodels import Model, Slit
from webbspec.simulate import mir_mrs_design as design
from webbspec.simulate import mir_mrs_scene as scene
from webbspec.simulate.mir_mrs_wcsrefs import wcs_file, write_wcs_refs
from webbspec.steps import assign_wcs

DET, BAND = "MIRIFUSHORT", "SHORT"
POINTING = {"RA_REF": scene.TARG_RA, "DEC_REF": scene.TARG_DEC, "ROLL_REF": 20.0,
            "V2_REF": design.V2_CEN, "V3_REF": design.V3_CEN,
            "VA_SCALE": 1.0000213}


@pytest.fixture(scope="module")
def refdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mrsrefs")
    write_wcs_refs(str(d), [DET], [BAND])
    return str(d)


def _refs(refdir):
    r = {rt: os.path.join(refdir, wcs_file(rt, DET, BAND)) for rt in ("distortion", "specwcs", "regions")}
    r["wavelengthrange"] = os.path.join(refdir, "miri_mrs_wavelengthrange_0001.asdf")
    return r


@pytest.fixture(scope="module")
def wcs(refdir):
    return MrsWcs(_refs(refdir), dict(POINTING, CHANNEL="12", BAND=BAND))


@pytest.fixture(scope="module")
def grid():
    yy, xx = np.mgrid[0:design.NY, 0:design.NX].astype(float)
    return xx, yy, design.truth_det2abl(xx, yy, "12", BAND)


def test_references_open_strictly_as_their_official_models(refdir):
    from stdatamodels.jwst import datamodels as dm

    r = _refs(refdir)
    with dm.DistortionMRSModel(r["distortion"], strict_validation=True) as m:
        assert len(m.slices) == 21 + 17 and list(m.bdel.channel_band) == ["1SHORT", "2SHORT"]
    with dm.RegionsModel(r["regions"], strict_validation=True) as m:
        assert m.regions.shape == (9, 1024, 1032)
        assert set(np.unique(m.regions[7])) == {0} | set(range(101, 122)) | set(range(201, 218))
    with dm.SpecwcsModel(r["specwcs"], strict_validation=True) as m:
        assert len(m.model) == 38
    with dm.WavelengthrangeModel(r["wavelengthrange"], strict_validation=True) as m:
        assert len(m.waverange_selector) == 12


def test_detector_to_alpha_beta_lambda_is_the_design(wcs, grid):
    xx, yy, (sl, a, b, lam) = grid
    alpha, beta, lam_w, sl_w = wcs.detector_to_abl(xx, yy)
    assert (sl_w == sl).all()
    on = sl > 0
    assert np.abs(alpha[on] - a[on]).max() < 1e-9
    assert np.abs(beta[on] - b[on]).max() < 1e-12
    assert np.abs(lam_w[on] - lam[on]).max() < 1e-9
    assert np.isnan(alpha[~on]).all()
    # x_model / y_model invert the forward models
    for s in (101, 111, 217):
        k = sl == s
        x, y = wcs.abl_to_detector(s, a[k], lam[k])
        assert np.abs(x - xx[k]).max() < 1e-6 and np.abs(y - yy[k]).max() < 1e-6


def test_alpha_beta_to_v2v3_to_sky_round_trip(wcs, grid):
    _, _, (sl, a, b, lam) = grid
    for c in "12":
        on = sl // 100 == int(c)
        v2, v3 = wcs.abl_to_v2v3(a[on], b[on], lam[on])
        t2, t3 = design.ab_to_v2v3(c, a[on], b[on])
        assert np.abs(v2 - t2).max() < 1e-9 and np.abs(v3 - t3).max() < 1e-9
        ra, dec = wcs.v2v3_to_sky(v2, v3)
        b2, b3 = wcs.sky_to_v2v3(ra, dec)
        assert np.abs(b2 - v2).max() < 1e-6 and np.abs(b3 - v3).max() < 1e-6      # arcsec
        aa, bb = wcs.v2v3_to_ab(b2, b3, c)
        assert np.abs(aa - a[on]).max() < 1e-6 and np.abs(bb - b[on]).max() < 1e-6
    # a wavelength outside every channel's range has no V2/V3 (official LabelMapperRange)
    assert np.isnan(wcs.abl_to_v2v3(0.0, 0.0, 30.0)[0])


def _rate(shape=(design.NY, design.NX)):
    primary = fits.Header({"INSTRUME": "MIRI", "EXP_TYPE": "MIR_MRS", "DETECTOR": DET, "CHANNEL": "12", "BAND": BAND})
    sci = fits.Header(POINTING)
    return Model(primary, [Slit(sci, {"SCI": np.zeros(shape, np.float32), "DQ": np.zeros(shape, np.uint32)})], "single")


def test_assign_wcs_gives_the_ifu_contract(refdir, grid):
    xx, yy, (sl, a, b, lam) = grid
    out = assign_wcs.run(_rate(), _refs(refdir))
    img, h = out.slits[0], out.slits[0].header
    for k in ("WAVELENGTH", "DWAVE", "XI", "ETA", "XI1", "ETA1", "XI2", "ETA2"):
        assert img[k].dtype == np.float32 and img[k].shape == (design.NY, design.NX), k
        assert np.isnan(img[k][sl == 0]).all() and np.isfinite(img[k][sl > 0]).all(), k
    assert img["SLICE"].dtype == np.int16 and (img["SLICE"] == sl).all()
    assert out.primary["S_WCS"] == "COMPLETE" and out.primary["R_REGION"].startswith("miri_mrs_")
    assert (h["WSREFRA"], h["WSREFDE"]) == (POINTING["RA_REF"], POINTING["DEC_REF"])
    assert h["SLICEWID"] == 0.177 and h["SLCWID2"] == 0.28
    on1, on2 = sl // 100 == 1, sl // 100 == 2
    # DWAVE: the row step of the design's dispersion; the edges along the slice one column (s_a) apart
    d1, d2 = design.dispersion("1", BAND), design.dispersion("2", BAND)
    assert np.allclose(img["DWAVE"][on1], d1, rtol=1e-3) and np.allclose(img["DWAVE"][on2], d2, rtol=1e-3)
    for on, c in ((on1, "1"), (on2, "2")):
        step = np.hypot(img["XI2"][on] - img["XI1"][on], img["ETA2"][on] - img["ETA1"][on])
        assert np.allclose(step, design.CHANNELS[c].s_a * POINTING["VA_SCALE"], rtol=1e-4)
        mid = np.hypot(0.5 * (img["XI1"][on] + img["XI2"][on]) - img["XI"][on],
                       0.5 * (img["ETA1"][on] + img["ETA2"][on]) - img["ETA"][on])
        assert mid.max() < 1e-4                     # the centre halfway between the edges (linear alpha)
    # the sky offsets of the slice centre (alpha = 0) of the middle slice of channel 1 (beta = 0):
    # the channel-1 field centre = V2_REF/V3_REF = RA_REF/DEC_REF
    k = (sl == 111) & (np.abs(a) < 0.5 * design.CHANNELS["1"].s_a)
    assert np.hypot(img["XI"][k], img["ETA"][k]).max() < design.CHANNELS["1"].s_a


def test_bad_input_is_one_line_naming_the_file(refdir, tmp_path):
    from stdatamodels.jwst import datamodels as dm

    r = _refs(refdir)
    with pytest.raises(InputError, match="CHANNEL"):
        MrsWcs(r, dict(POINTING, CHANNEL="", BAND=BAND))
    wr = dm.WavelengthrangeModel(wrange_selector=["1SHORT"], wrange=[[4.8, 5.8]], wunits="micron")
    wr.meta.reftype = "WAVELENGTHRANGE"
    bad = str(tmp_path / "wr.asdf")
    wr.save(bad)
    with pytest.raises(InputError, match=r"wr\.asdf.*2SHORT"):
        MrsWcs(dict(r, wavelengthrange=bad), dict(POINTING, CHANNEL="12", BAND=BAND))
    with pytest.raises(InputError, match="regions"):
        MrsWcs(dict(r, regions=r["specwcs"]), dict(POINTING, CHANNEL="12", BAND=BAND))


def test_pixel_coordinates_shape_mismatch(wcs):
    with pytest.raises(InputError, match="regions map"):
        pixel_coordinates(wcs, (100, 100))


def test_rendered_point_source_conserves_flux(wcs, grid):
    """The point source alone, summed over each detector row of a channel (one wavelength, up to
    the slices' few-row offsets: compared with F_nu at each pixel's own wavelength), gives F_nu."""
    from webbspec.simulate.mir_mrs_render import ARCSEC2_SR, sky_brightness

    sb, sl = sky_brightness(wcs, (design.NY, design.NX), ("point",))
    xx, yy, (_, a, b, lam) = grid
    va = POINTING["VA_SCALE"]
    for c in "12":
        on = sl // 100 == int(c)
        ch = design.CHANNELS[c]
        flux = np.where(on, sb * ch.s_a * ch.bdel * va**2 * ARCSEC2_SR, 0.0)          # MJy
        rel = np.where(on, flux / (scene.point_flux_jy(np.where(on, lam, 5.0)) * 1e-6), 0.0)
        per_row = rel.sum(axis=1)[100:-100]
        # the source sits inside the field (dither-free pointing: near the field centre)
        assert np.abs(per_row - 1.0).max() < 5e-3, (c, per_row.min(), per_row.max())


def test_truth_cube_holds_the_sources_flux():
    from webbspec.simulate.mir_mrs_render import ARCSEC2_SR
    from webbspec.simulate.mir_mrs_truth import truth_cube

    sci, lam, h = truth_cube("1", "SHORT")
    spax = abs(h["CDELT1"]) * 3600.0
    total = sci.astype(float).sum(axis=(1, 2)) * spax**2 * ARCSEC2_SR * 1e6              # Jy
    sig_b = scene.BLOB_FWHM / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    expect = scene.point_flux_jy(lam) + scene.blob_peak_mjysr(lam) * 2 * np.pi * sig_b**2 * ARCSEC2_SR * 1e6
    assert np.abs(total / expect - 1).max() < 2e-3
    # the target at the spaxel centre CRPIX (1-based), east to the left
    c = int(h["CRPIX1"]) - 1
    point = sci[len(lam) // 2]
    assert h["CDELT1"] < 0 and np.unravel_index(np.argmax(point), point.shape) == (c, c)


def test_xartifact_is_the_official_kernel_per_detector_half():
    from webbspec.simulate.mir_mrs_calrefs import apply_xartifact, xart_kernel

    img = np.zeros((design.NY, design.NX))
    img[10, 300] = 1.0                 # a channel-1 column (left half)
    img[20, 700] = 2.0                 # channel 2 (right half)
    out = apply_xartifact(img, DET)
    x = np.arange(design.NX)
    ref1 = xart_kernel("1", x - 300.0)
    ref2 = 2.0 * xart_kernel("2", x - 700.0)
    ref1[:4] = ref1[-4:] = ref2[:4] = ref2[-4:] = 0.0
    assert np.allclose(out[10], ref1, atol=1e-12) and np.allclose(out[20], ref2, atol=1e-12)
    assert np.abs(out[11]).max() < 1e-12     # along rows only


# ------------------------------------------------------------------ Stage 2 calibrations against the truth
@pytest.fixture(scope="module")
def calrefs(refdir):
    from webbspec.simulate import mir_mrs_calrefs as cal

    names = cal._write_detector_band(refdir, DET, BAND)
    names["mrsxartcorr"] = cal._write_xartcorr(refdir)
    r = {rt: os.path.join(refdir, n) for rt, n in names.items()}
    r["regions"] = _refs(refdir)["regions"]
    return r


@pytest.fixture(scope="module")
def rendered(wcs):
    """Noise-free rate of the full scene: (rate, stray light, SB truth, slice map)."""
    from webbspec.simulate.mir_mrs_render import instrument_rate, sky_brightness

    sb, sl = sky_brightness(wcs, (design.NY, design.NX))
    rate, stray = instrument_rate(sb, DET, BAND)
    return rate, stray, sb, sl


def _rate_model(sci):
    m = _rate(sci.shape)
    img = m.slits[0]
    img["SCI"] = sci.astype(np.float32)
    for k in ("ERR", "VAR_POISSON", "VAR_RNOISE"):
        img[k] = np.full(sci.shape, 0.01, np.float32)
    return m


def test_straylight_removes_the_cross_artifact(calrefs, rendered):
    from webbspec.steps import straylight

    rate, stray, sb, sl = rendered
    signal = rate - stray
    out = straylight.run(_rate_model(rate), calrefs)
    got = out.slits[0]["SCI"].astype(float)
    on = (sl > 0) & (signal > 0.01 * np.percentile(signal[sl > 0], 99))
    before = np.abs(rate[on] / signal[on] - 1)
    after = np.abs(got[on] / signal[on] - 1)
    print(f"stray light / signal: median {np.median(before):.2e}, max {before.max():.2e}; "
          f"after straylight: median {np.median(after):.2e}, max {after.max():.2e}")
    assert np.median(before) > 0.01              # the effect is there ...
    assert after.max() < 0.01 and np.median(after) < 1e-3         # ... and gone to < 1% of the signal
    assert out.primary["S_STRAY"] == "COMPLETE" and out.primary["R_MRSXAR"].startswith("miri_mrs_")


def test_flat_fringe_photom_give_the_surface_brightness(calrefs, rendered):
    from webbspec.steps import flat_field, fringe, photom

    rate, stray, sb, sl = rendered
    m = _rate_model(rate - stray)
    no_fringe = photom.run(flat_field.run(m, calrefs), calrefs)
    cal = photom.run(fringe.run(flat_field.run(m, calrefs), calrefs), calrefs)
    img = cal.slits[0]
    on = sl > 0
    from webbspec.simulate.mir_mrs_calrefs import residual_fringe_truth

    # the residual fringe (1%) is left for residual_fringe (tests/test_residual_fringe.py)
    resid = np.abs(img["SCI"][on] / (sb[on] * residual_fringe_truth(DET, BAND)[on]) - 1)
    resid0 = np.abs(no_fringe.slits[0]["SCI"][on] / sb[on] - 1)
    print(f"|cal/truth - 1| without fringe: max {resid0.max():.2e}; with: max {resid.max():.2e}")
    assert np.percentile(resid0, 90) > 0.03      # the fringes are there without the step
    assert resid.max() < 1e-4                    # float32 rounding
    assert img.header["BUNIT"] == "MJy/sr" and np.isnan(img["SCI"][~on]).all()
    assert cal.primary["S_FRINGE"] == cal.primary["S_FLAT"] == cal.primary["S_PHOTOM"] == "COMPLETE"
    # VAR_FLAT from the flat's error (0.01): (SCI / flat * 0.01)^2, carried through fringe and photom
    from webbspec.simulate.mir_mrs_calrefs import flat_truth

    vf = img["VAR_FLAT"][on].astype(float)
    assert np.allclose(np.sqrt(vf), 0.01 * np.abs(img["SCI"][on]) / flat_truth(DET, BAND)[on], rtol=1e-3)


def test_full_scale_plan_and_pointing(refdir):
    from webbspec.simulate.mir_mrs import DITHERS_AB, plan, wcs_for

    exposures = plan(refdir, "full")
    assert len(exposures) == (4 + 2) * 2 * 3                          # (dithers + backgrounds) x detectors x bands
    assert {e["band"] for e in exposures} == set(design.BANDS)
    assert len({e["root"] for e in exposures}) == len(exposures)
    e = next(e for e in exposures if e["kind"] == "science" and e["number"] == 3)
    w = wcs_for(refdir, DET, BAND, e["ra_ref"], e["dec_ref"])
    a, b = w.v2v3_to_ab(*w.sky_to_v2v3(scene.TARG_RA, scene.TARG_DEC), "1")
    assert np.hypot(a - DITHERS_AB[2][0], b - DITHERS_AB[2][1]) < 1e-6


def test_velosys_shifts_wavelengths_as_officially(refdir, grid):
    """VELOSYS [m/s] in the exposure: lambda x 1 / (1 + VELOSYS / c) (official velocity_correction)."""
    xx, yy, (sl, _, _, lam) = grid
    w = MrsWcs(_refs(refdir), dict(POINTING, CHANNEL="12", BAND=BAND, VELOSYS=-30000.0))
    on = sl == 105
    alpha, _, got, _ = w.detector_to_abl(xx[on], yy[on])
    assert np.allclose(got, lam[on] / (1.0 - 30000.0 / 299792458.0), rtol=1e-12)
    x, y = w.abl_to_detector(105, alpha, got)                     # and back
    assert np.abs(x - xx[on]).max() < 1e-6 and np.abs(y - yy[on]).max() < 1e-6
