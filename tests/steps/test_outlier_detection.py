"""outlier_detection ('spec') on 3 synthetic nods with injected hits of known position."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from builders import make_nods  # noqa: E402

from webbspec import dq  # noqa: E402
from webbspec.steps import outlier_detection  # noqa: E402

NODS = (-0.5, 0.0, 0.5)     # arcsec = 5 rows of 0.1"


def nods_with_hits(seed=3, nhits=40, red_ivm=10.0):
    """3 nods (ivm weight 10x lower at the red end) with hits of 10-1000 sigma at all wavelengths.

    Hits go where all three exposures overlap on the sky (elsewhere the median of the others
    does not exist and no method can tell a hit from the sky); 40 per exposure = 0.5% of the
    pixels (a dense cosmic-ray rate: at much higher densities hits of two exposures land on the
    same sky pixel and no median of 3 can reject them).
    """
    m = make_nods(nods=NODS, seed=seed, tilt=0.3, curve=0.05, red_ivm=red_ivm, gain_var=2e-3,
                  amp=lambda lam: 0.5 + 0.3 * np.sin(2 * lam), fwhm=0.25)
    rng = np.random.default_rng(seed)
    hits = []
    for k, s in enumerate(m.slits):
        ny, nx = s.shape
        rows = np.arange(ny)
        nod_rows = int(round(NODS[k] / 0.1))
        # rows of this exposure seen by all three: s = (j - 12)*0.1 - nod within every slit
        lo = max(0, 5 + nod_rows + 1)
        hi = min(ny - 1, ny - 1 - 5 + nod_rows - 1)
        jj = rng.integers(lo, hi + 1, nhits)
        ii = rng.integers(0, nx, nhits)
        keep = np.unique(jj * nx + ii, return_index=True)[1]
        jj, ii = jj[keep], ii[keep]
        sig = np.sqrt(s["VAR_RNOISE"] + s["VAR_POISSON"])[jj, ii]
        s["SCI"][jj, ii] += sig * 10 ** rng.uniform(1, 3, jj.size)
        h = np.zeros((ny, nx), bool)
        h[jj, ii] = True
        hits.append(h)
        assert rows[lo] >= 0
    return m, hits


def score(outs, hitss, cols=slice(None)):
    tp = fp = nh = nclean = 0
    for s, h in ((s, h) for out, hits in zip(outs, hitss) for s, h in zip(out.slits, hits)):
        f = (s["DQ"] & dq.OUTLIER) > 0
        f, h = f[:, cols], h[:, cols]
        tp += (f & h).sum()
        nh += h.sum()
        fp += (f & ~h).sum()
        nclean += (~h).sum()
    return tp / nh, fp / nclean


def test_recall_and_false_flags_at_all_wavelengths():
    runs = [nods_with_hits(seed) for seed in (3, 4, 5, 6)]
    outs = [outlier_detection.run(m) for m, _ in runs]
    hitss = [h for _, h in runs]
    m, hits, out = runs[0][0], runs[0][1], outs[0]
    recall, false = score(outs, hitss)
    nx = m.slits[0].shape[1]
    red_recall, _ = score(outs, hitss, slice(2 * nx // 3, None))
    print(f"recall {recall:.3f}, red-end recall {red_recall:.3f}, false flags {false:.5f}")
    assert recall >= 0.95
    assert red_recall >= 0.95
    assert false < 0.001
    assert out.primary["S_OUTLIR"] == "COMPLETE"
    for s, h in zip(out.slits, hits):
        f = (s["DQ"] & dq.OUTLIER) > 0
        assert np.all(s["DQ"][f] & 17 == 17)
        assert np.all(np.isnan(s["SCI"][f])) and np.all(np.isnan(s["VAR_RNOISE"][f]))
    # the input is untouched
    assert not np.any(m.slits[0]["DQ"])


def test_per_column_weight_mask_beats_the_global_one_at_the_red_end():
    """The documented improvement: the official global-mean mask blanks the red-end median."""
    runs = [nods_with_hits(seed) for seed in (3, 4, 5, 6)]
    m = runs[0][0]
    goods = [np.isfinite(s["SCI"]) for s in m.slits]
    nx = m.slits[0].shape[1]
    red = slice(2 * nx // 3, None)
    recalls = {}
    for per_column in (True, False):
        found = tot = 0
        for m, hits in runs:
            goods = [np.isfinite(s["SCI"]) for s in m.slits]
            bs, be, bd = outlier_detection._median_blots(m.slits, goods, "ivm", 1.0, "square", 0.7,
                                                         per_column)
            for s, b, e, d, h in zip(m.slits, bs, be, bd, hits):
                f = outlier_detection.flag_outliers(s["SCI"].astype(float), b, e, 5, 4, 1.2, 0.7,
                                                    deriv=d)
                found += (f & h)[:, red].sum()
                tot += h[:, red].sum()
        recalls[per_column] = found / tot
    print("red-end recall per-column / global:", recalls)
    assert recalls[True] >= 0.95 and recalls[False] < 0.5


def test_clean_data_gets_almost_no_flags():
    m = make_nods(nods=NODS, seed=11, tilt=0.3, red_ivm=10.0, gain_var=2e-3, fwhm=0.25)
    out = outlier_detection.run(m)
    nflag = sum(((s["DQ"] & dq.OUTLIER) > 0).sum() for s in out.slits)
    assert nflag / sum(s["SCI"].size for s in out.slits) < 0.001


def test_fewer_than_two_exposures_is_skipped():
    m = make_nods(nods=(0.0,), seed=1)
    out = outlier_detection.run(m)
    assert out.primary["S_OUTLIR"] == "SKIPPED"


def test_without_resampling_compares_pixel_by_pixel():
    m = make_nods(nods=(0.0, 0.0, 0.0), seed=5)
    m.slits[1]["SCI"][10, 100] += 5.0
    out = outlier_detection.run(m, resample_data=False)
    flagged = [(np.argwhere(s["DQ"] & dq.OUTLIER)).tolist() for s in out.slits]
    assert flagged[1] == [[10, 100]]


def test_bad_parameter_is_an_input_error():
    from webbspec.errors import InputError
    with pytest.raises(InputError):
        outlier_detection.run(make_nods(), snr="5")


FS_NODS = (-0.87, 0.0, 0.92)     # arcsec: the source ~9 rows apart, at other pixel phases per nod


def nod_subtracted(seed, nods=FS_NODS, nrays=40, amp=3.0):
    """3 nods of a bright point source on one detector (same cutout), each minus the mean of the
    others (bkg_subtract with propagate_error), rays of 10-1000 sigma added to the nods before the
    subtraction (so each ray is imprinted, -1/2, on the other two).

    Returns the model, per nod the ray mask, the ray's signal over the noise of the subtracted
    image, the pixels whose sky position every nod sees, and the pixels of the nod's own trace.
    """
    m = make_nods(nods=nods, seed=None, ny=36, tilt=0.3, curve=0.05, fwhm=0.25, gain_var=2e-4,
                  amp=lambda lam: amp * (0.8 + 0.3 * np.sin(2 * lam)))
    rng = np.random.default_rng(seed)
    raws, variances, rays, snrs = [], [], [], []
    for s in m.slits:
        var = np.asarray(s["VAR_POISSON"], float) + np.asarray(s["VAR_RNOISE"], float)
        snr = np.zeros(s.shape)
        snr[rng.integers(0, s.shape[0], nrays), rng.integers(0, s.shape[1], nrays)] = \
            10 ** rng.uniform(1, 3, nrays)
        raws.append(s.truth + (rng.standard_normal(s.shape) + snr) * np.sqrt(var))
        variances.append(var)
        rays.append(snr > 0)
        snrs.append(snr)
    info = []
    ny = m.slits[0].shape[0]
    for k, s in enumerate(m.slits):
        others = [j for j in range(len(nods)) if j != k]
        bvar = sum(variances[j] for j in others) / len(others) ** 2
        s["SCI"] = (raws[k] - sum(raws[j] for j in others) / len(others)).astype(np.float32)
        s["ERR"] = np.sqrt(variances[k] + bvar).astype(np.float32)
        s["VAR_POISSON"] = (np.asarray(s["VAR_POISSON"], float) + bvar).astype(np.float32)
        s.header.update({"S_BKDSUB": "COMPLETE", "SLTSTRT1": 1, "SLTSTRT2": 1, "DETECTOR": "NRS1"})
        sky = (np.arange(ny) - (ny - 1) / 2.0) * 0.1 - nods[k]
        seen = np.all([np.abs((sky + n) / 0.1) <= (ny - 1) / 2.0 - 0.5 for n in nods], axis=0)
        info.append({"rays": rays[k], "snr": snrs[k] * np.sqrt(variances[k] / (variances[k] + bvar)),
                     "seen": np.broadcast_to(seen[:, None], s.shape),
                     "trace": s.truth > 3 * np.sqrt(variances[k]),
                     "negative": sum(m.slits[j].truth for j in others) / len(others) > 5 * s["ERR"]})
    return m, info


def test_nod_subtracted_negative_traces_are_not_flagged():
    """The negative copies of the source that nodded background subtraction leaves in each nod are a
    real feature, sampled a little differently by each nod: not flagged (before the fix: 3.8e-3 of
    the clean pixels, 80% of them on the negative traces), while rays > 10 sigma of the subtracted
    image's noise at sky positions every nod sees still are: off the nod's own trace (where the
    median test's derivative allowance limits any median method) >= 95%; on the negative traces,
    where the restored background's own uncertainty is allowed for, >= 80% (measured 40/45;
    44/45 before the fix, with the false flags)."""
    found = strong = found_neg = strong_neg = false = clean = false_neg = 0
    for seed in range(1, 9):
        m, info = nod_subtracted(seed)
        out = outlier_detection.run(m)
        union = np.logical_or.reduce([i["rays"] for i in info])
        for s, i in zip(out.slits, info):
            f = (s["DQ"] & dq.OUTLIER) > 0
            ray = (i["snr"] > 10) & i["seen"] & ~i["trace"]
            found, strong = found + (f & ray).sum(), strong + ray.sum()
            found_neg += (f & ray & i["negative"]).sum()
            strong_neg += (ray & i["negative"]).sum()
            false, clean = false + (f & ~union).sum(), clean + (~union).sum()
            false_neg += (f & ~union & i["negative"]).sum()
    print(f"rays > 10 sigma flagged {found}/{strong} (on negative traces {found_neg}/{strong_neg}); "
          f"clean pixels flagged {false}/{clean} ({false_neg} on negative traces)")
    assert strong > 200 and strong_neg >= 20
    assert found >= 0.95 * strong
    assert found_neg >= 0.8 * strong_neg
    assert false <= 1e-3 * clean


def test_light_one_exposure_does_not_see_is_not_an_outlier():
    """A MOS nod whose slit edge hides part of the source the other nods see: those pixels read ~0
    (noise only) far below the median; they are not outliers (flagging them let the combination
    fill them from the other nods and biased the flux high), while rays on them still are."""
    m = make_nods(nods=NODS, seed=7, tilt=0.3, curve=0.05, amp=lambda lam: 0.5 + 0.0 * lam, fwhm=0.25)
    s = m.slits[1]
    rng = np.random.default_rng(7)
    err = np.sqrt(s["VAR_RNOISE"] + s["VAR_POISSON"])
    s["ERR"] = err.astype(np.float32)
    trace = s["SCI"] > 5 * err                           # the source's pixels in this nod
    hidden = trace & (np.arange(s.shape[1])[None, :] < s.shape[1] // 2)
    seen = s["SCI"].copy()                              # what the other nods see there
    s["SCI"][hidden] = rng.normal(0.0, err[hidden])     # behind a bar: noise only
    rays = np.zeros(s.shape, bool)
    rays[np.nonzero(hidden)[0][::50], np.nonzero(hidden)[1][::50]] = True
    s["SCI"][rays] = seen[rays] + 30 * err[rays]        # a ray brighter than the others' light
    out = outlier_detection.run(m).slits[1]
    flagged = (out["DQ"] & dq.OUTLIER) > 0
    print(f"hidden pixels {hidden.sum()}: flagged {np.count_nonzero(flagged & hidden & ~rays)}; "
          f"rays {np.count_nonzero(flagged & rays)}/{rays.sum()}")
    assert hidden.sum() > 100 and rays.sum() >= 5
    assert np.count_nonzero(flagged & hidden & ~rays) <= 0.01 * hidden.sum()
    # 11/12: the one missed sits where the median's derivative allowance is large (missed alike
    # without this rule, which flags 528 of the 574 hidden pixels)
    assert np.count_nonzero(flagged & rays) >= 0.9 * rays.sum()
