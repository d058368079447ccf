"""IFU outlier detection on 4 dithered synthetic exposures (tests/ifu_builders.py) with noise and
injected cosmic rays and hot pixels of known position and amplitude.

Scene: an undersampled point source (Gaussian sigma 0.1": FWHM 0.24" on 0.177" slices and 0.13"
pixels) with a continuum and emission lines, plus an extended source. Noise: read noise and
Poisson-like noise (peak S/N ~ 300). Rays: log-uniform 10-1000 sigma, a quarter of them also in
one neighbour at 30-100% of the amplitude (as webbspec.simulate.noise.cosmic_rays).
"""

import sys
from pathlib import Path

import numpy as np
from scipy import ndimage
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ifu_builders import Scene, dithered  # noqa: E402

from webbspec import dq  # noqa: E402
from webbspec.algorithms import ifu_outliers  # noqa: E402
from webbspec.errors import InputError  # noqa: E402
from webbspec.io.datamodels import Model  # noqa: E402
from webbspec.steps import outlier_detection  # noqa: E402

PSF = 0.1
NRAYS = 60          # events per exposure (~0.06% of the slice pixels)
NHOT = 30           # hot pixels, the same detector pixels in every exposure


def _rays(shape, on, err, rng, n):
    """(added signal, added / err) of ``n`` events on the pixels ``on``."""
    add = np.zeros(shape)
    ys, xs = np.divmod(rng.choice(np.flatnonzero(on.ravel()), n, replace=False), shape[1])
    amp = 10.0 ** rng.uniform(1.0, 3.0, n)
    add[ys, xs] += amp * err[ys, xs]
    two = rng.random(n) < 0.25
    dy, dx = np.array([(0, 1), (1, 0), (0, -1), (-1, 0)])[rng.integers(0, 4, n)].T
    y2, x2 = np.clip(ys + dy, 0, shape[0] - 1), np.clip(xs + dx, 0, shape[1] - 1)
    frac = rng.uniform(0.3, 1.0, n)
    keep = two & on[y2, x2]
    add[y2[keep], x2[keep]] += (amp * frac * err[y2, x2])[keep]
    return add, np.where(on, add / np.where(err > 0, err, np.inf), 0.0)


# a source of emission lines without continuum (unresolved-ish lines: sigma 0.6-0.9 pixel)
LINES_ONLY = Scene(psf=PSF, ps_cont=0.0, ext_flux=0.0,
                   lines=((5.1003, 1.0e-6, 0.0006), (5.1507, 1.6e-6, 0.0008), (5.2, 3e-6, 0.0005)))


def noisy_exposures(seed=0, scene=None):
    """4 dithered exposures with noise, no outliers."""
    rng = np.random.default_rng(seed)
    exps = dithered(4, scene=scene or Scene(psf=PSF))
    peak = max(np.nanmax(e.slits[0]["SCI"]) for e in exps)
    for e in exps:
        s = e.slits[0]
        true = np.asarray(s["SCI"], float)
        err = np.sqrt((peak / 3000) ** 2 + np.clip(true, 0, None) * peak / 9e4)
        s["SCI"] = (true + rng.standard_normal(true.shape) * err).astype(np.float32)
        s["ERR"] = np.where(np.isfinite(true), err, np.nan).astype(np.float32)
    return exps


def program(base, seed=1, rays_in=(0, 1, 2, 3), hot=False):
    """Copies of ``base`` with rays in the exposures ``rays_in`` and, with ``hot``, hot pixels at the
    same detector pixels in all; returns (exposures, [injected S/N per pixel] per exposure)."""
    rng = np.random.default_rng(seed)
    exps = [e.copy() for e in base]
    on = np.isfinite(exps[0].slits[0]["SCI"])
    hot_snr = np.zeros(on.shape)
    if hot:
        ys, xs = np.divmod(rng.choice(np.flatnonzero(on.ravel()), NHOT, replace=False), on.shape[1])
        hot_snr[ys, xs] = 10.0 ** rng.uniform(1.5, 3.0, NHOT)
    snrs = []
    for k, e in enumerate(exps):
        s = e.slits[0]
        err = np.nan_to_num(np.asarray(s["ERR"], float))
        sci = np.asarray(s["SCI"], float) + hot_snr * err
        snr = hot_snr.copy()
        if k in rays_in:
            add, rsnr = _rays(on.shape, on, err, rng, NRAYS)
            sci, snr = sci + add, snr + rsnr
        s["SCI"] = sci.astype(np.float32)
        snrs.append(snr)
    return exps, snrs


def score(outs, snrs):
    """(recall of pixels hit by > 10 sigma, fraction of clean slice pixels flagged)."""
    tp = nbig = fp = nclean = 0
    for o, snr in zip(outs, snrs):
        s = o.slits[0]
        flagged = (s["DQ"] & dq.OUTLIER) > 0
        on = np.isfinite(s["WAVELENGTH"])
        big, clean = snr > 10, on & (snr == 0)
        tp += (flagged & big).sum()
        nbig += big.sum()
        fp += (flagged & clean).sum()
        nclean += clean.sum()
    return tp / nbig, fp / nclean


@pytest.fixture(scope="module")
def base():
    return noisy_exposures()


@pytest.fixture(scope="module")
def rays(base):
    return program(base, seed=1)


def test_default_finds_rays_in_every_exposure(rays):
    exps, snrs = rays
    outs = outlier_detection.run(exps)
    recall, false = score(outs, snrs)
    print(f"default: recall {recall:.4f}, clean pixels flagged {false:.2e}")
    assert recall >= 0.95
    assert false <= 1e-3
    for o, e in zip(outs, exps):
        s = o.slits[0]
        f = (s["DQ"] & dq.OUTLIER) > 0
        assert f.any() and np.all(s["DQ"][f] & 17 == 17)
        assert np.all(np.isnan(s["SCI"][f])) and np.all(np.isnan(s["ERR"][f]))
        assert o.primary["S_OUTLIR"] == "COMPLETE"
        assert not np.any(e.slits[0]["DQ"] & dq.OUTLIER)      # the input is untouched


def test_multi_model_and_nirspec_orientation(rays):
    """The same exposures as members of one multi Model flag what they flag as a list; transposed
    (dispersion along x, as NIRSpec IFU) an exposure flags the same pixels, transposed."""
    exps, _ = rays
    listed = outlier_detection.run(exps[:3])
    multi = outlier_detection.run(Model(exps[0].primary, [e.slits[0] for e in exps[:3]], "multi"))
    assert multi.layout == "multi" and len(multi.slits) == 3
    for s, o in zip(multi.slits, listed):
        assert np.array_equal(s["DQ"], o.slits[0]["DQ"])
    s = exps[0].slits[0]
    assert ifu_outliers.dispersion_axis(s["WAVELENGTH"]) == 0
    assert ifu_outliers.dispersion_axis(s["WAVELENGTH"].T) == 1
    direct = ifu_outliers.flag_exposure(s["SCI"], s["ERR"], s["SLICE"], np.isfinite(s["SCI"]))
    t = ifu_outliers.flag_exposure(s["SCI"].T, s["ERR"].T, s["SLICE"].T, np.isfinite(s["SCI"].T), disp_axis=1)
    assert direct.sum() > 40 and np.array_equal(t.T, direct)


def test_emission_lines_without_continuum_are_not_flagged():
    """Next to the peak of a line without continuum the neighbour's profile ratio is unconstrained
    and the model alone flags line peaks; the other exposures, which see the same line there, veto
    them, and the rays stay flagged."""
    exps, snrs = program(noisy_exposures(scene=LINES_ONLY), seed=5)
    alone = []
    for e in exps:
        s = e.slits[0]
        alone.append(ifu_outliers.flag_exposure(s["SCI"], s["ERR"], s["SLICE"], np.isfinite(s["SCI"])))
    clean = [np.isfinite(e.slits[0]["WAVELENGTH"]) & (snr == 0) for e, snr in zip(exps, snrs)]
    false_alone = sum((m & c).sum() for m, c in zip(alone, clean)) / sum(c.sum() for c in clean)
    recall, false = score(outlier_detection.run(exps), snrs)
    print(f"lines only: clean flagged {false_alone:.2e} by the model alone, {false:.2e} confirmed; recall {recall:.4f}")
    assert false_alone > 2e-4
    assert false <= 0.1 * false_alone and false <= 1e-4
    assert recall >= 0.95


def test_official_method_misses_rays_of_one_exposure(base):
    """Rays in exposure 2 only: the official method finds few of them, with one mask for all."""
    exps, snrs = program(base, seed=2, rays_in=(1,))
    outs = outlier_detection.run(exps, ifu_method="official")
    masks = [(o.slits[0]["DQ"] & dq.OUTLIER) > 0 for o in outs]
    assert all(np.array_equal(masks[0], m) for m in masks)
    recall, _ = score(outs[1:2], snrs[1:2])
    on = np.isfinite(exps[0].slits[0]["WAVELENGTH"])
    frac = masks[0][on].mean()
    ours, false = score(outlier_detection.run(exps), snrs)
    print(f"rays of one exposure: official recall {recall:.3f} ({frac:.4f} of the slice pixels flagged), "
          f"default recall {ours:.3f}, clean flagged {false:.2e}")
    assert recall < 0.25
    assert 0.001 < frac < 0.006          # the 99.8th percentile (~0.2-0.4% of the slice pixels), whatever is there
    assert ours >= 0.95 and false <= 1e-3


def test_both_methods_find_persistent_hot_pixels(base):
    exps, snrs = program(base, seed=3, rays_in=(), hot=True)
    official = outlier_detection.run(exps, ifu_method="official", threshold_percent=99.8)
    rec_off, _ = score(official, snrs)
    ours, false = score(outlier_detection.run(exps), snrs)
    print(f"hot pixels: official recall {rec_off:.3f}, default recall {ours:.3f} (clean flagged {false:.2e})")
    assert rec_off >= 0.8
    assert ours >= 0.95 and false <= 1e-3


def test_detectors_are_told_apart_in_a_multi_model(rays):
    """Members of one multi Model share a PRIMARY: without their own DETECTOR, exposures of another
    wavelength range (another MRS channel pair or NIRSpec detector) form their own official group."""
    exps, _ = rays
    slits = [e.slits[0].copy() for e in exps]
    for s in slits[2:]:
        s["WAVELENGTH"] = s["WAVELENGTH"] + 6.0
    out = outlier_detection.run(Model(exps[0].primary, slits, "multi"), ifu_method="official")
    masks = [(s["DQ"] & dq.OUTLIER) > 0 for s in out.slits]
    assert np.array_equal(masks[0], masks[1]) and np.array_equal(masks[2], masks[3])
    assert not np.array_equal(masks[0], masks[2])
    slits[2].header["DETECTOR"] = slits[3].header["DETECTOR"] = "MIRIFUSHORT"   # their own keyword wins
    slits[0].header["DETECTOR"] = slits[1].header["DETECTOR"] = "MIRIFUSHORT"
    out = outlier_detection.run(Model(exps[0].primary, slits, "multi"), ifu_method="official")
    masks = [(s["DQ"] & dq.OUTLIER) > 0 for s in out.slits]
    assert all(np.array_equal(masks[0], m) for m in masks)


def test_official_mask_percentile_and_kernel():
    """Noise alone: ~(100 - threshold_percent)% of the interior flagged; a spike present in every
    exposure is among them; ifu_second_check adds the pixels whose minimum difference is NaN."""
    rng = np.random.default_rng(0)
    scis = [rng.standard_normal((80, 90)) for _ in range(3)]
    for s in scis:
        s[40, 45] += 50.0
        s[10, 20:23] = np.nan
    mask, normed = ifu_outliers.official_mask(scis, 1, (7, 7), 99.0)
    inner = mask[4:-4, 4:-4]
    assert mask[40, 45]
    assert 0.008 < inner.mean() < 0.012
    assert not mask[10, 21] and np.isnan(normed[10, 21])
    mask2, _ = ifu_outliers.official_mask(scis, 1, (6, 7), 99.0, second_check=True)   # 6 -> 7
    assert mask2[10, 21] and np.array_equal(mask2 & ~np.isnan(normed), mask)


def test_bad_method_and_single_exposure(base):
    exps = base
    with pytest.raises(InputError, match="ifu_method"):
        outlier_detection.run(exps[:2], ifu_method="median")
    one = outlier_detection.run(exps[:1])
    assert one[0].primary["S_OUTLIR"] == "SKIPPED"


def test_later_passes_equal_a_full_refit(rays):
    """A later pass refits only the pixels whose windows see new flags: what a refit of every slice
    without those pixels gives, bit for bit where nothing changed and to round-off where refitted.
    The window sums are differences of running sums down the slice, whose round-off grows with the
    running sums: a whole-slice refit carries ~1e-8 of the residual (measured 7.7e-9 here), the
    short refit less. In units of the noise that is < 1e-10 sigma against thresholds of 4-5."""
    s = rays[0][0].slits[0]
    d = np.asarray(s["SCI"], float)
    e = np.nan_to_num(np.asarray(s["ERR"], float))
    slc = np.where(np.isfinite(d), np.asarray(s["SLICE"]), 0).astype(np.int32)
    boxes = ifu_outliers._slice_boxes(slc)
    z, r = ifu_outliers._residual_sigma(d, e, slc, 7, boxes)
    with np.errstate(invalid="ignore"):
        new = z > 5.0
    new[:, [0, 5]] = np.isfinite(d[:, [0, 5]])        # whole columns, at the array's edge too
    assert new.sum() > 60
    dm, sm = np.where(new, np.nan, d), np.where(new, 0, slc)
    full = ifu_outliers._residual_sigma(dm, e, sm, 7, ifu_outliers._slice_boxes(sm))
    part = ifu_outliers._residual_sigma(dm, e, sm, 7, boxes, z.copy(), r.copy(), redo=new)
    for f, p in zip(full, part):
        assert np.array_equal(np.isnan(f), np.isnan(p))
        assert np.allclose(f, p, rtol=1e-7, atol=0, equal_nan=True)
    assert np.nanmax(np.abs(full[0] - part[0])) < 1e-9           # sigma
    # columns more than 2 away from any change are never refitted: bit for bit
    far = ~ndimage.binary_dilation(new.any(axis=0), np.ones(5, bool))
    assert far.sum() > 100 and np.array_equal(z[:, far], part[0][:, far], equal_nan=True)
    assert not np.array_equal(z, part[0], equal_nan=True)     # the refit did change something


def test_stream_flags_what_the_step_flags():
    """flag_stream (the prepare job: one exposure in memory at a time, each read twice) flags the
    pixels flag_exposures flags, vote included (on line peaks without continuum it drops about half
    of the first flags), and leaves what it reads untouched."""
    exps, _ = program(noisy_exposures(scene=LINES_ONLY), seed=1)
    outs, masks = ifu_outliers.flag_exposures(exps, lambda s: np.ones(s.shape, bool))
    alone = [ifu_outliers.flag_exposure(e.slits[0]["SCI"], e.slits[0]["ERR"], e.slits[0]["SLICE"],
                                        np.isfinite(e.slits[0]["SCI"])) for e in exps]
    assert sum(m.sum() for m in alone) > 1.5 * sum(m.sum() for m in masks)
    reads = []
    gen = ifu_outliers.flag_stream(lambda i: reads.append(i) or exps[i], len(exps), lambda s: np.ones(s.shape, bool))
    streamed = list(gen)
    assert reads == [0, 1, 2, 3, 0, 1, 2, 3]
    for o, st in zip(outs, streamed):
        assert np.array_equal(o.slits[0]["DQ"], st.slits[0]["DQ"])
        assert np.array_equal(o.slits[0]["SCI"], st.slits[0]["SCI"], equal_nan=True)
        assert st.primary["S_OUTLIR"] == "COMPLETE"
    assert sum(m.sum() for m in masks) > 200
    assert not any(np.any(e.slits[0]["DQ"] & dq.OUTLIER) for e in exps)


@pytest.mark.parametrize("stage2_background", [False, True])
def test_prepare_job_streams_the_same_crfs(rays, tmp_path, monkeypatch, stage2_background):
    """The Stage 3 prepare job with master_background (skipped: no background, or background
    members whose sky Stage 2 already subtracted, S_BKDSUB COMPLETE: decided from the headers, the
    background file is never opened) and our outlier detection reads each `_cal` twice, one at a
    time, and writes what the in-memory path makes. (The NIRSpec IFU program's prepare job held all
    8 exposures, 2.9 GB, when its background members kept it off this path; 688 MB on it.)"""
    from webbspec.io import datamodels
    from webbspec.pipeline import stage3_cubes

    exps, _ = rays
    backgrounds = []
    if stage2_background:
        exps = [e.copy() for e in exps]
        for e in exps:
            e.primary["S_BKDSUB"] = "COMPLETE"
        backgrounds = [str(tmp_path / "not_read_x1d.fits")]
    cals = [datamodels.write(e, str(tmp_path / f"e{k}_cal.fits")) for k, e in enumerate(exps)]
    crfs = [str(tmp_path / f"e{k}_crf.fits") for k in range(len(exps))]
    steps = ("master_background", "outlier_detection")
    reads, read = [], datamodels.read
    monkeypatch.setattr(datamodels, "read", lambda p: reads.append(p) or read(p))
    stage3_cubes.prepare(cals, crfs, backgrounds=backgrounds, mode="mir_mrs", steps=steps)
    assert reads == cals + cals
    ref = stage3_cubes.prepare_models([read(c) for c in cals], mode="mir_mrs", steps=steps)
    for path, m in zip(crfs, ref):
        got = read(path)
        assert np.array_equal(got.slits[0]["DQ"], m.slits[0]["DQ"])
        assert np.array_equal(got.slits[0]["SCI"], m.slits[0]["SCI"], equal_nan=True)
        assert got.primary["S_OUTLIR"] == "COMPLETE" and got.primary["S_MSBSUB"] == "SKIPPED"
    assert sum(((m.slits[0]["DQ"] & dq.OUTLIER) > 0).sum() for m in ref) > 200
