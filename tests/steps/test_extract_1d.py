"""extract_1d box extraction of rectified slits against analytic Gaussian sources."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from scipy.special import erf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from builders import make_s2d, make_nods  # noqa: E402
from officialrefs import primary, write_apcorr  # noqa: E402

from webbspec.errors import InputError  # noqa: E402
from webbspec.io.datamodels import Model, X1D_COLUMNS  # noqa: E402
from webbspec.steps import extract_1d, resample_spec  # noqa: E402

FWHM, PS = 0.4, 0.1
SIG_PX = FWHM / 2.3548 / PS


def amp(lam):
    return 1e-3 * (1.0 + 0.2 * np.sin(3.0 * lam))


def box_fraction(size, centre):
    """Flux fraction a box of ``size`` pixels (fractional edge pixels weighted linearly, as the
    extraction does) collects from the pixel-integrated Gaussian centred at ``centre`` (rows)."""
    r = np.arange(-40, 41)[:, None] + np.round(centre)
    cdf = lambda x: 0.5 * (1 + erf((x - centre) / (np.sqrt(2) * SIG_PX)))  # noqa: E731
    pix = cdf(r + 0.5) - cdf(r - 0.5)
    lo, hi = centre - size / 2, centre + size / 2
    p = np.clip(np.minimum(hi, r + 0.5) - np.maximum(lo, r - 0.5), 0, 1)
    return np.sum(p * pix, axis=0)


def write_refs(tmp_path, width=5, phase=0.0, **aperture):
    ap = {"id": "ANY", "region_type": "target", "dispaxis": 1, "extract_width": width, "use_source_posn": True,
          "bkg_coeff": None}
    ap.update(aperture)
    x1d = tmp_path / "extract1d.json"
    x1d.write_text(json.dumps({"reftype": "EXTRACT1D", "apertures": [ap]}))
    # apcorr = 1 / (fraction of the Gaussian a box of SIZE pixels collects at the source's pixel
    # phase): the analytic truth, tabulated as the official NrsFsApcorrModel at pixel phases 0 and
    # 1 around it (the step interpolates to phase 0.5: the mean of the two planes)
    wave = np.linspace(2.5, 5.5, 7)
    size = np.arange(1.0, 16.0)
    corr = np.repeat((1 / box_fraction(size[None, :], phase))[:, None], wave.size, axis=1)   # (nsize, nwave)
    planes = np.stack([corr - 0.3, corr + 0.3], axis=-1)                                   # (nsize, nwave, 2)
    row = ("F290LP", "G395M", "S200A1", wave, np.repeat(size[:, None], wave.size, axis=1), [0.0, 1.0], planes)
    other = ("F290LP", "G235M", "S200A1", wave, row[4], [0.0, 1.0], planes * 5)     # never matched
    apc = write_apcorr(tmp_path / "apcorr.fits", [row, other])
    return {"extract1d": str(x1d), "apcorr": apc}


def s2d_model(**kw):
    slit = make_s2d(fwhm=FWHM, amp=amp, **kw)
    prim = fits.Header({"EXP_TYPE": "NRS_FIXEDSLIT", "FILTER": "F290LP", "GRATING": "G395M"})
    return Model(prim, [slit], "single"), slit


@pytest.mark.parametrize("src, nod", [(0.0, 0.0), (0.137, 0.3), (-0.21, -0.44)])
def test_point_source_flux_with_apcorr(tmp_path, src, nod):
    model, slit = s2d_model(src=src, nod=nod)
    row = (slit.shape[0] - 1) / 2 + (nod + src) / PS
    refs = write_refs(tmp_path, phase=row - np.round(row))
    x1d = extract_1d.run(model, refs)
    t = x1d.spectra[0].table
    assert list(t.dtype.names) == [c[0] for c in X1D_COLUMNS]
    truth = amp(t["WAVELENGTH"]) * 1e6           # MJy -> Jy
    assert np.allclose(t["FLUX"], truth, rtol=0.005)
    assert np.allclose(t["NPIXELS"], 5.0)
    assert np.all(t["SURF_BRIGHT"] == 0)         # MJy data: SB columns 0 (official)
    hdr = x1d.spectra[0].header
    assert hdr["EXTRYSTR"] == pytest.approx(row - 2 + 1) and hdr["EXTRYSTP"] == pytest.approx(row + 2 + 1)
    for key in ("SLTNAME", "SOURCEID", "SRCTYPE", "SPORDER", "DISPAXIS", "SRCRA", "SRCDEC"):
        assert key in hdr
    # without the correction the flux is the enclosed fraction
    raw = extract_1d.run(model, refs, apply_apcorr=False).spectra[0].table
    assert np.allclose(raw["FLUX"] / truth, box_fraction(5.0, row - np.round(row)), rtol=1e-4)
    assert x1d.primary["S_EXTR1D"] == "COMPLETE" and x1d.primary["R_APCORR"] == "apcorr.fits"


def test_errors_and_variances(tmp_path):
    model, slit = s2d_model(src=0.0, seed=4, rnoise=1e-5, gain_var=0.0)
    t = extract_1d.run(model, write_refs(tmp_path), apply_apcorr=False).spectra[0].table
    # box of 5 full pixels: FLUX_VAR_RNOISE = 5 * VAR_RNOISE * 1e12
    assert np.allclose(t["FLUX_VAR_RNOISE"], 5 * slit["VAR_RNOISE"][0] * 1e12, rtol=1e-5)
    assert np.allclose(t["FLUX_ERROR"] ** 2, t["FLUX_VAR_POISSON"] + t["FLUX_VAR_RNOISE"] + t["FLUX_VAR_FLAT"])
    chi = (t["FLUX"] - amp(t["WAVELENGTH"]) * 1e6 * erf(2.5 / (np.sqrt(2) * SIG_PX))) / t["FLUX_ERROR"]
    assert 0.8 < np.mean(chi ** 2) < 1.2


def test_no_reference_extracts_the_whole_height_surface_brightness():
    model, slit = s2d_model(src=0.0, bunit="MJy/sr", srctype="EXTENDED")
    t = extract_1d.run(model, {"extract1d": "N/A", "apcorr": "N/A"}).spectra[0].table
    ny = slit.shape[0]
    assert np.allclose(t["NPIXELS"], ny)
    pixar = slit.header["PIXAR_SR"]
    enclosed = erf(ny / 2 / (np.sqrt(2) * SIG_PX))
    assert np.allclose(t["FLUX"], amp(t["WAVELENGTH"]) * enclosed * pixar * 1e6, rtol=1e-5)
    assert np.allclose(t["SURF_BRIGHT"], amp(t["WAVELENGTH"]) * enclosed / ny, rtol=1e-5)


def test_background_regions_are_subtracted(tmp_path):
    model, slit = s2d_model(src=0.0, background=2e-4)
    refs = write_refs(tmp_path, width=7, bkg_coeff=[[-0.5], [4.5], [19.5], [24.5]], bkg_fit="poly",
                      bkg_order=0)
    t = extract_1d.run(model, refs).spectra[0].table
    assert np.allclose(t["FLUX"], amp(t["WAVELENGTH"]) * 1e6, rtol=0.005)
    pixar = slit.header["PIXAR_SR"]
    assert np.allclose(t["BACKGROUND"], 2e-4 / pixar, rtol=1e-3)
    for fit in ("mean", "median"):
        t2 = extract_1d.run(model, refs, bkg_fit=fit).spectra[0].table
        assert np.allclose(t2["FLUX"], t["FLUX"], rtol=1e-3)
    # a slope across the slit is removed by an order-1 fit
    model.slits[0]["SCI"] = model.slits[0]["SCI"] + 1e-5 * np.arange(slit.shape[0])[:, None]
    t3 = extract_1d.run(model, refs, bkg_order=1).spectra[0].table
    assert np.allclose(t3["FLUX"], t["FLUX"], rtol=1e-3)


def test_resampled_multi_slit_stage2_and_stage3_chain(tmp_path):
    m = make_nods(nods=(-0.43, 0.0, 0.37), tilt=0.3, curve=0.05, src=0.12, fwhm=FWHM, amp=amp)
    s2d = resample_spec.run(m)
    refs = write_refs(tmp_path, width=9)
    t = extract_1d.run(s2d, refs, apply_apcorr=False).spectra[0].table
    frac = erf(4.5 / (np.sqrt(2) * SIG_PX))
    inner = slice(10, -10)
    # drizzling broadens the profile a little: the 9-pixel box still holds > 99.5% of the flux
    assert np.allclose(t["FLUX"][inner] / (amp(t["WAVELENGTH"][inner]) * 1e6), frac, atol=0.006)
    two = Model(s2d.primary, [s2d.slits[0], s2d.slits[0].copy()], "multi")
    assert len(extract_1d.run(two, refs).spectra) == 2


def test_extract_width_parameter_and_position_offset(tmp_path):
    model, slit = s2d_model(src=0.0)
    refs = write_refs(tmp_path)
    t = extract_1d.run(model, refs, extract_width=3, position_offset=1.0)
    hdr = t.spectra[0].header
    row = (slit.shape[0] - 1) / 2
    assert hdr["EXTRYSTR"] == pytest.approx(row + 1 - 1 + 1) and hdr["EXTRYSTP"] == pytest.approx(row + 1 + 1 + 1)
    assert np.allclose(t.spectra[0].table["NPIXELS"], 3)


def test_apcorr_outside_wavelengths_and_wrong_references(tmp_path):
    model, slit = s2d_model(src=0.0, lam0=5.3)          # all wavelengths redder than the table
    refs = write_refs(tmp_path)
    t = extract_1d.run(model, refs).spectra[0].table
    raw = extract_1d.run(model, refs, apply_apcorr=False).spectra[0].table
    inside = t["WAVELENGTH"] <= 5.5
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(t["FLUX"][~inside], raw["FLUX"][~inside])     # no correction (official)
    assert np.all(t["FLUX"][inside] > raw["FLUX"][inside])
    bad_json = tmp_path / "photom.json"
    bad_json.write_text(json.dumps({"reftype": "PHOTOM", "apertures": []}))
    with pytest.raises(InputError, match="photom.json: reftype is 'PHOTOM'"):
        extract_1d.run(model, {"extract1d": str(bad_json), "apcorr": "N/A"})
    not_json = tmp_path / "x1d.fits"
    fits.HDUList([fits.PrimaryHDU()]).writeto(not_json)
    with pytest.raises(InputError, match="x1d.fits: not an extract1d JSON"):
        extract_1d.run(model, {"extract1d": str(not_json), "apcorr": "N/A"})
    wrong = tmp_path / "wrong_apcorr.fits"
    fits.HDUList([primary("apcorr", "MirLrsApcorrModel")]).writeto(wrong)
    with pytest.raises(InputError, match="wrong_apcorr.fits: DATAMODL is 'MirLrsApcorrModel'"):
        extract_1d.run(model, {"extract1d": refs["extract1d"], "apcorr": str(wrong)})
