"""bkg_subtract: sigma-clipped mean of background exposures, subarray overlap, rateints."""

import numpy as np
import pytest
from astropy.io import fits

from webbspec.io.datamodels import Model, Slit
from webbspec.errors import InputError
from webbspec.steps import bkg_subtract

SHAPE = (20, 30)


def image(value, *, shape=SHAPE, err=0.5, dq=0, path=None, sub=None, **primary):
    """A single-layout rate(ints) model; ``sub`` = (SUBSTRT1, SUBSTRT2) with SUBSIZE from the shape."""
    data = np.broadcast_to(np.asarray(value, np.float32), shape).copy()
    hdr = fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", **primary})
    if sub is not None:
        hdr.update({"SUBSTRT1": sub[0], "SUBSTRT2": sub[1], "SUBSIZE1": shape[-1], "SUBSIZE2": shape[-2]})
    arrays = {"SCI": data, "ERR": np.full(shape, err, np.float32),
              "DQ": np.broadcast_to(np.asarray(dq, np.uint32), shape).copy(),
              "VAR_POISSON": np.full(shape, 0.2, np.float32), "VAR_RNOISE": np.full(shape, 0.05, np.float32)}
    return Model(hdr, [Slit(fits.Header(), arrays)], "single", path=path)


def test_two_backgrounds_mean_and_dq():
    sci = image(10.0)
    b1, b2 = image(3.0, dq=4), image(5.0)
    b2.slits[0]["DQ"][2, 3] = 1024
    out = bkg_subtract.run(sci, {}, backgrounds=[b1, b2])
    s = out.slits[0]
    np.testing.assert_allclose(s["SCI"], 6.0)
    assert s["DQ"][0, 0] == 4 and s["DQ"][2, 3] == 4 | 1024
    # ours: the mean of two backgrounds with ERR 0.5 adds 0.5**2 / 2 to the variance
    np.testing.assert_allclose(s["ERR"], np.sqrt(0.5**2 + 0.5**2 / 2), rtol=1e-6)
    # read noise of the mean of two backgrounds (0.05 each) / 4 -> VAR_RNOISE, the rest -> VAR_POISSON
    np.testing.assert_allclose(s["VAR_RNOISE"], 0.05 + 0.05 * 2 / 4, rtol=1e-6)
    np.testing.assert_allclose(s["VAR_POISSON"], 0.2 + 0.5**2 / 2 - 0.05 * 2 / 4, rtol=1e-6)
    assert out.primary["S_BKDSUB"] == "COMPLETE"
    assert np.all(sci.slits[0]["SCI"] == 10.0) and "S_BKDSUB" not in sci.primary
    official = bkg_subtract.run(sci, {}, backgrounds=[b1, b2], propagate_error=False).slits[0]
    for name in ("ERR", "VAR_POISSON", "VAR_RNOISE"):          # official: not changed
        np.testing.assert_array_equal(official[name], sci.slits[0][name])


def test_outlier_clipped_with_five_backgrounds():
    levels = [4.0, 4.1, 3.9, 4.05, 3.95]
    bkgs = [image(v) for v in levels]
    bkgs[2].slits[0]["SCI"][5, 7] = 500.0                       # a cosmic ray in one background
    out = bkg_subtract.run(image(10.0), {}, backgrounds=bkgs, sigma=2.0)
    good = np.mean([v for k, v in enumerate(levels) if k != 2])
    assert out.slits[0]["SCI"][5, 7] == pytest.approx(10.0 - good, abs=1e-5)
    np.testing.assert_allclose(out.slits[0]["SCI"][0, 0], 10.0 - np.mean(levels), atol=1e-5)
    # one outlier among N values sits N/sqrt(N-1) sigma off: 2.5 for N=5, so sigma=3 keeps it
    kept = bkg_subtract.run(image(10.0), {}, backgrounds=bkgs)
    assert kept.slits[0]["SCI"][5, 7] == pytest.approx(10.0 - (sum(levels) - 3.9 + 500) / 5, abs=1e-3)
    ten = bkg_subtract.run(image(10.0), {}, backgrounds=bkgs + [image(v) for v in levels])
    assert ten.slits[0]["SCI"][5, 7] == pytest.approx(10.0 - (2 * sum(levels) - 3.9) / 9, abs=1e-5)


def test_combined_background_error():
    bkgs = [image(2.0, err=0.3), image(2.0, err=0.4), image(2.0, err=1.2)]
    comb = bkg_subtract.combined_background(image(0.0), bkgs).slits[0]
    np.testing.assert_allclose(comb["SCI"], 2.0)
    np.testing.assert_allclose(comb["ERR"], np.sqrt(0.09 + 0.16 + 1.44) / 3, rtol=1e-6)


def test_subarray_overlap():
    y, x = np.mgrid[0:64, 0:80]
    full = image(x + 100.0 * y, shape=(64, 80), sub=(1, 1))
    part = image(0.0, shape=(30, 40), sub=(51, 11))             # covers detector x 50..89, y 10..39
    sci = image(1000.0, sub=(41, 21))                          # detector x 40..69, y 20..39
    out = bkg_subtract.run(sci, {}, backgrounds=[full, part]).slits[0]["SCI"]
    fb = (x + 100.0 * y)[20:40, 40:70]
    overlap = np.zeros(SHAPE, bool)
    overlap[:, 10:] = True                                     # x >= 50 and y in 20..39
    np.testing.assert_allclose(out[overlap], (1000.0 - fb / 2)[overlap], rtol=1e-6)
    np.testing.assert_allclose(out[~overlap], (1000.0 - fb)[~overlap], rtol=1e-6)
    away = image(0.0, shape=(10, 10), sub=(1, 1))              # no overlap at all: ignored (NaN)
    out2 = bkg_subtract.run(sci, {}, backgrounds=[full, away]).slits[0]["SCI"]
    np.testing.assert_allclose(out2, 1000.0 - fb, rtol=1e-6)


def test_shape_mismatch_without_keywords_names_file():
    bad = image(1.0, shape=(10, 10), path="/data/jw01_nod2_rate.fits")
    with pytest.raises(InputError, match="jw01_nod2_rate.fits"):
        bkg_subtract.run(image(5.0), {}, backgrounds=[bad])


def test_rateints_background_and_science():
    b = image(np.array([2.0, 2.2, 1.8, 2.0])[:, None, None], shape=(4,) + SHAPE)
    b.slits[0]["DQ"][1, 0, 0] = 8
    sci = image(np.array([10.0, 20.0])[:, None, None], shape=(2,) + SHAPE)
    out = bkg_subtract.run(sci, {}, backgrounds=[b, image(4.0)]).slits[0]
    # background 1 averaged over its integrations (2.0), then mean with background 2 -> 3.0
    np.testing.assert_allclose(out["SCI"][0], 7.0, rtol=1e-6)
    np.testing.assert_allclose(out["SCI"][1], 17.0, rtol=1e-6)
    assert out["DQ"][0, 0, 0] == 8 and out["DQ"][1, 0, 0] == 8


def test_skipped_cases(tmp_path):
    assert bkg_subtract.run(image(1.0), {}).primary["S_BKDSUB"] == "SKIPPED"
    tilted = image(1.0, GWA_XTIL=0.1)
    out = bkg_subtract.run(image(5.0, GWA_XTIL=0.2), {}, backgrounds=[tilted])
    assert out.primary["S_BKDSUB"] == "SKIPPED" and np.all(out.slits[0]["SCI"] == 5.0)


def test_bkg_list_reads_files(tmp_path):
    from webbspec.io import datamodels

    p = datamodels.write(image(2.5), str(tmp_path / "bkg_rate.fits"))
    out = bkg_subtract.run(image(5.0), {}, bkg_list=[p])
    np.testing.assert_allclose(out.slits[0]["SCI"], 2.5)
    with pytest.raises(InputError, match="missing_rate.fits"):
        bkg_subtract.run(image(5.0), {}, bkg_list=[str(tmp_path / "missing_rate.fits")])


def test_clip_shortcut_matches_astropy():
    """Below n / sqrt(n-1) sigma nothing can be clipped: the shortcut equals astropy's answer."""
    from astropy.stats import sigma_clip

    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 7):
        stack = rng.normal(size=(n, 40, 40))
        stack[0, :5] = 1e6                     # extreme single outliers
        stack[1, 5:8] = np.nan
        kept = bkg_subtract._clip(stack, 3.0, None)
        ref = ~np.ma.getmaskarray(sigma_clip(stack, sigma=3.0, maxiters=None, axis=0, masked=True))
        np.testing.assert_array_equal(kept, ref & np.isfinite(stack))


@pytest.mark.parametrize("nbkg", [2, 3, 10])
def test_row_blocks_do_not_change_the_result(monkeypatch, nbkg):
    """Every operation is per pixel: one row per block gives the same bits as one block."""
    rng = np.random.default_rng(1)
    shape = (3,) + SHAPE
    sci = image(rng.normal(10.0, 1.0, shape), shape=shape)
    bkgs = [image(rng.normal(4.0, 1.0, SHAPE), err=rng.uniform(0.1, 1.0, SHAPE), dq=k) for k in range(nbkg)]
    bkgs[0].slits[0]["SCI"][2, :5] = np.nan
    bkgs[1].slits[0]["SCI"][3, 4] = 1e6
    bkgs[-1] = image(rng.normal(4.0, 1.0, (2,) + SHAPE), shape=(2,) + SHAPE)   # a rateints one
    results = []
    for rows in (1, 10**6):
        monkeypatch.setattr(bkg_subtract, "_row_blocks",
                            lambda shape, n=rows: [slice(y, y + n) for y in range(0, shape[-2], n)])
        results.append(bkg_subtract.run(sci, {}, backgrounds=bkgs).slits[0])
        results.append(bkg_subtract.combined_background(sci, bkgs).slits[0])
    for a, b in ((results[0], results[2]), (results[1], results[3])):
        for name in a.arrays:
            np.testing.assert_array_equal(a[name], b[name])
