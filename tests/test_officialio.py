"""Products we write open strictly as the official classes, in specutils and in the official steps."""

import os
import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))
from builders import make_nods, make_s2d  # noqa: E402

from webbspec.io import datamodels, officialio  # noqa: E402
from webbspec.io.datamodels import Model, SpecModel, Spectrum, new_spec_table  # noqa: E402
from webbspec.errors import InputError  # noqa: E402

PRIMARY = {"TELESCOP": "JWST", "INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "S_PHOTOM": "COMPLETE"}


def _s2d_model():
    s = make_s2d(srctype="POINT")
    s["WHT"] = np.full(s.shape, 2.0, np.float32)
    s["CON"] = np.ones((1,) + s.shape, np.int32)
    return Model(fits.Header(PRIMARY), [s], "single")


def _spec(kind, n=200):
    t = new_spec_table(n, kind)
    t["WAVELENGTH"] = 1.0 + 0.01 * np.arange(n)
    t["FLUX"] = 1e-3 * (1 + 0.1 * np.sin(t["WAVELENGTH"]))
    t[("FLUX_ERROR" if kind == "EXTRACT1D" else "ERROR")] = 1e-5
    t["SURF_BRIGHT"], t["SB_ERROR"] = 2.0, 0.1
    t["DQ"][5] = 2
    if kind == "EXTRACT1D":
        t["NPIXELS"] = 5
    else:
        t["WEIGHT"], t["N_INPUT"] = 1000.0, 3
    h = fits.Header({"SOURCEID": 1, "SRCTYPE": "POINT", "SLTNAME": "S200A1"})
    return SpecModel(fits.Header(dict(PRIMARY, EFFEXPTM=1000.0)), [Spectrum(h, t)], kind)


def _open_strict(path):
    from stdatamodels.jwst import datamodels as dm

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)   # a dropped keyword would warn
        return dm.open(path, strict_validation=True)


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    d = tmp_path_factory.mktemp("oio")
    nods = make_nods(srctype="POINT")
    nods.primary.update(PRIMARY)
    return {
        "cal": officialio.write(nods, str(d / "a_cal.fits"), "cal"),
        "crf": officialio.write(nods, str(d / "a_crf.fits"), "crf"),
        "s2d": officialio.write(_s2d_model(), str(d / "a_s2d.fits"), "s2d"),
        "x1d": officialio.write(_spec("EXTRACT1D"), str(d / "a_x1d.fits"), "x1d"),
        "c1d": officialio.write(_spec("COMBINE1D"), str(d / "a_c1d.fits"), "c1d"),
        "nods": nods,
    }


def test_open_strictly_as_official_classes(products):
    expected = {"cal": "MultiExposureModel", "crf": "MultiExposureModel", "s2d": "SlitModel",
                "x1d": "MultiSpecModel", "c1d": "MultiCombinedSpecModel"}
    for kind, cls in expected.items():
        m = _open_strict(products[kind])
        assert type(m).__name__ == cls, kind
    nods = products["nods"]
    m = _open_strict(products["cal"])
    assert len(m.exposures) == 3
    for e, s in zip(m.exposures, nods.slits):
        np.testing.assert_array_equal(e.data, s["SCI"])
        np.testing.assert_array_equal(e.var_rnoise, s["VAR_RNOISE"])
        np.testing.assert_array_equal(e.wavelength, s["WAVELENGTH"])
        assert e.meta.bunit_data == "MJy" and e.source_type == "POINT"
    s2d = _open_strict(products["s2d"])
    ours = _s2d_model().slits[0]
    np.testing.assert_array_equal(s2d.data, ours["SCI"])
    np.testing.assert_array_equal(s2d.wht, ours["WHT"])
    assert s2d.con.dtype.newbyteorder("=") == np.int32
    assert s2d.meta.photometry.pixelarea_steradians == pytest.approx(ours.header["PIXAR_SR"], rel=1e-12)
    # the gwcs reproduces the grid: wavelength per column, the S2D reference at row S2DCRPX2
    ra, dec, lam = s2d.meta.wcs(np.arange(ours.shape[1]), np.full(ours.shape[1], ours.header["S2DCRPX2"]))
    np.testing.assert_allclose(lam, ours["WAVELENGTH"][0], rtol=1e-7)
    assert np.allclose(ra, ours.header["S2DRA0"]) and np.allclose(dec, ours.header["S2DDEC0"])
    # one row = S2DCDLT2 arcsec along PA
    ra1, dec1, _ = s2d.meta.wcs(10.0, ours.header["S2DCRPX2"] + 1)
    sep = np.hypot((ra1 - ra[0]) * np.cos(np.radians(dec1)), dec1 - dec[0]) * 3600
    assert sep == pytest.approx(ours.header["S2DCDLT2"], rel=1e-6)
    x1d = _open_strict(products["x1d"])
    t = x1d.spec[0].spec_table
    np.testing.assert_array_equal(t["FLUX"], _spec("EXTRACT1D").spectra[0].table["FLUX"])
    assert t["DQ"][5] == 2 and x1d.spec[0].source_type == "POINT"


def test_specutils_reads_them(products):
    from specutils import Spectrum as SuSpectrum
    from specutils import SpectrumList

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sl = SpectrumList.read(products["x1d"], format="JWST x1d multi")
        auto = SuSpectrum.read(products["x1d"])            # auto-identified (TELESCOP + ASDF)
        c1d = SuSpectrum.read(products["c1d"])
        s2d = SuSpectrum.read(products["s2d"])
    assert len(sl) == 1 and str(sl[0].flux.unit) == "Jy"
    np.testing.assert_allclose(auto.flux.value, _spec("EXTRACT1D").spectra[0].table["FLUX"])
    assert c1d.flux.shape == (200,)
    assert s2d.flux.shape == (25, 341)
    np.testing.assert_allclose(s2d.spectral_axis.value, _s2d_model().slits[0]["WAVELENGTH"][0], rtol=1e-6)


def test_bad_kind():
    with pytest.raises(InputError, match="unknown product kind"):
        officialio.to_official(_s2d_model(), "i2d")
    with pytest.raises(InputError, match="x1d needs a spectrum model"):
        officialio.to_official(_s2d_model(), "x1d")


def _offline(monkeypatch, tmp_path):
    # for this test only: a CRDS_PATH left in the environment would be every later workflow run's
    # reference store (rules/common.smk falls back to it)
    for key, value in dict(CRDS_SERVER_URL="https://127.0.0.1:9", CRDS_PATH=str(tmp_path / "crds"),
                           STPIPE_DISABLE_CRDS_STEPPARS="True").items():
        monkeypatch.setenv(key, value)
    import stpipe.crds_client as c

    c.get_context_used = lambda obs: "jwst_offline.pmap"


@pytest.mark.official
def test_official_extract_1d_and_combine_1d_accept_ours(products, monkeypatch, tmp_path):
    _offline(monkeypatch, tmp_path)
    from jwst.combine_1d import Combine1dStep
    from jwst.extract_1d import Extract1dStep
    from stdatamodels.jwst import datamodels as dm

    from webbspec.steps import extract_1d

    step = Extract1dStep()
    for rt in step.reference_file_types:
        setattr(step, f"override_{rt}", "N/A")
    step.apply_apcorr = False
    theirs = step.run(dm.open(products["s2d"]))
    ours = extract_1d.run(datamodels.read(products["s2d"]), {})
    # whole-height box, MJy point source -> Jy: both give the same spectrum
    np.testing.assert_allclose(theirs.spec[0].spec_table["FLUX"], ours.spectra[0].table["FLUX"], rtol=1e-5)
    c1d = Combine1dStep().run(dm.open(products["x1d"]))
    assert len(c1d.spec[0].spec_table) == 200
