"""imprint_subtract: SCI - imprint, DQ | imprint DQ, the imprint's variance added; the official choice of imprint."""

import numpy as np
import pytest
from astropy.io import fits

from webbspec.errors import InputError
from webbspec.io.datamodels import Model, Slit
from webbspec.steps import imprint_subtract


def image(value, dq=0, shape=(20, 30), **keys):
    hdr = fits.Header({"EXP_TYPE": "NRS_MSASPEC", "INSTRUME": "NIRSPEC", **keys})
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    return Model(hdr, [Slit(fits.Header(), {"SCI": (value + 0.01 * x + 0.1 * y).astype(np.float32),
                                            "ERR": np.full(shape, 0.5, np.float32),
                                            "DQ": np.full(shape, dq, np.uint32)})], "single")


def test_subtracts_the_one_imprint():
    sci = image(10.0, OBSERVTN="001", PATT_NUM=2)
    imp = image(1.0, dq=4)
    out = imprint_subtract.run(sci, {}, imprints=[imp])
    assert out.primary["S_IMPRNT"] == "COMPLETE" and "S_IMPRNT" not in sci.primary
    np.testing.assert_allclose(out.slits[0]["SCI"], 9.0, rtol=1e-6)
    assert np.all(out.slits[0]["DQ"] == 4)
    np.testing.assert_allclose(out.slits[0]["ERR"], np.hypot(0.5, 0.5), rtol=1e-6)   # two exposures' noise
    np.testing.assert_allclose(sci.slits[0]["SCI"][0, 0], 10.0)          # input untouched


def test_official_choice_among_several():
    sci = image(10.0, OBSERVTN="001", PATT_NUM=2, BKGDTARG=False)
    others = [image(1.0, OBSERVTN="001", PATT_NUM=1, BKGDTARG=False),
              image(2.0, OBSERVTN="001", PATT_NUM=2, BKGDTARG=False),
              image(3.0, OBSERVTN="001", PATT_NUM=2, BKGDTARG=True)]
    out = imprint_subtract.run(sci, {}, imprints=others)
    np.testing.assert_allclose(out.slits[0]["SCI"], 8.0, rtol=1e-6)         # same observation and dither
    one_left = imprint_subtract.run(sci, {}, imprints=[others[0], others[2]])
    np.testing.assert_allclose(one_left.slits[0]["SCI"], 9.0, rtol=1e-6)    # the only non-background one
    none = imprint_subtract.run(sci, {}, imprints=[others[0], image(5.0, OBSERVTN="001", PATT_NUM=3)])
    assert none.primary["S_IMPRNT"] == "SKIPPED"
    assert imprint_subtract.run(sci, {}).primary["S_IMPRNT"] == "SKIPPED"


def test_subarray_window_and_errors():
    full = image(1.0, shape=(40, 50), SUBSTRT1=1, SUBSTRT2=1)
    sub = image(10.0, SUBSTRT1=11, SUBSTRT2=5)
    out = imprint_subtract.run(sub, {}, imprints=[full])
    expected = sub.slits[0]["SCI"] - full.slits[0]["SCI"][4:24, 10:40]
    np.testing.assert_allclose(out.slits[0]["SCI"], expected, rtol=1e-6)
    with pytest.raises(InputError, match="does not cover"):
        imprint_subtract.run(image(10.0, SUBSTRT1=40, SUBSTRT2=5), {}, imprints=[full])


def test_err_is_the_scatter_of_the_difference():
    """Science and imprint each with their own noise (ERR = its sigma): the ERR after subtraction is
    the measured scatter of the difference (the official ERR, unchanged, was 1/sqrt(2) of it here)."""
    rng = np.random.default_rng(1)
    shape = (200, 300)
    sci, imp = image(10.0, shape=shape), image(1.0, shape=shape)
    for m, sigma in ((sci, 0.3), (imp, 0.4)):
        slit = m.slits[0]
        slit["SCI"] = (slit["SCI"] + rng.normal(0, sigma, shape)).astype(np.float32)
        slit["ERR"] = np.full(shape, sigma, np.float32)
        slit["VAR_RNOISE"] = np.full(shape, sigma ** 2, np.float32)
    out = imprint_subtract.run(sci, {}, imprints=[imp]).slits[0]
    resid = out["SCI"] - 9.0                          # both carry the same gradient
    assert abs(np.std(resid) / np.median(out["ERR"]) - 1) < 0.01          # 60000 pixels: +-0.3% (1 sigma)
    np.testing.assert_allclose(out["VAR_RNOISE"], 0.25, rtol=1e-6)
