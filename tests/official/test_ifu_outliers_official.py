"""IFU outlier detection side by side with the official OutlierDetectionStep (mode "ifu").

Two sets of 4 dithered exposures with injected outliers of known position and S/N:
* the synthetic IFU of tests/ifu_builders.py with noise (tests/test_ifu_outliers.py): rays in one
  exposure, then the same hot pixels in all four;
* `webbspec simulate mir_mrs` (small program, seed 3): the 4 MIRIFUSHORT science exposures after
  our assign_wcs, with the simulator's cosmic rays (truth/outliers) in every exposure; the same
  for `webbspec simulate nrs_ifu` (NRS1; also marked slow).

The official step runs offline in its own process (this file run as a script) on IFUImageModels
made of the same SCI / ERR / DQ (it reads nothing else: no WCS, no reference file). Checked: our
``ifu_method="official"`` flags the same pixels as the official step, and our default finds the
rays > 10 sigma the official step misses.
"""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

OUTLIER = 16


def _official_run(inp, out):
    """(own process) The official OutlierDetectionStep on the exposures of npz ``inp``; the DQ of its
    outputs to npz ``out``."""
    from official_jwst import offline

    offline()
    from jwst.datamodels import ModelContainer
    from jwst.outlier_detection import OutlierDetectionStep
    from stdatamodels.jwst import datamodels as dm

    z = np.load(inp)
    meta = json.loads(str(z["meta"]))
    models = []
    for i in range(meta["n"]):
        m = dm.IFUImageModel(data=z[f"sci{i}"], err=z[f"err{i}"], dq=z[f"dq{i}"])
        m.meta.instrument.name = meta["instrument"]
        m.meta.instrument.detector = meta["detector"]
        m.meta.exposure.type = meta["exp_type"]
        m.meta.filename = f"exp{i + 1}_cal.fits"
        models.append(m)
    result = OutlierDetectionStep.call(ModelContainer(models), **meta.get("params", {}))
    np.savez(out, **{f"dq{i}": np.asarray(m.dq) for i, m in enumerate(result)})


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "official":
    _official_run(sys.argv[2], sys.argv[3])
    sys.exit(0)

from webbspec import dq  # noqa: E402
from webbspec.steps import outlier_detection  # noqa: E402

pytestmark = pytest.mark.official


def official_flags(exps, workdir, tag, **params):
    """The official step's OUTLIER masks of ``exps`` (our Models), run in its own process."""
    s0 = exps[0]
    inp, out = os.path.join(workdir, f"{tag}_in.npz"), os.path.join(workdir, f"{tag}_out.npz")
    arrays = {}
    for i, e in enumerate(exps):
        s = e.slits[0]
        arrays[f"sci{i}"] = np.asarray(s["SCI"], np.float32)
        arrays[f"err{i}"] = np.asarray(s["ERR"], np.float32)
        arrays[f"dq{i}"] = np.asarray(s["DQ"], np.uint32)
    meta = {"n": len(exps), "instrument": str(s0.primary.get("INSTRUME", "MIRI")),
            "detector": str(s0.primary.get("DETECTOR", "MIRIFUSHORT")), "exp_type": s0.exp_type, "params": params}
    np.savez(inp, meta=json.dumps(meta), **arrays)
    run = subprocess.run([sys.executable, os.path.abspath(__file__), "official", inp, out], capture_output=True,
                         text=True, cwd=workdir)
    assert run.returncode == 0, run.stderr[-3000:]
    z = np.load(out)
    return [(z[f"dq{i}"] & OUTLIER) > 0 for i in range(len(exps))]


def ours(exps, method, **params):
    return [(o.slits[0]["DQ"] & dq.OUTLIER) > 0 for o in outlier_detection.run(exps, ifu_method=method, **params)]


def recall(masks, snrs, exps):
    """(flagged pixels hit by > 10 sigma / all of them, clean slice pixels flagged / all of them)."""
    tp = nb = fp = nc = 0
    for m, snr, e in zip(masks, snrs, exps):
        s = e.slits[0]
        on = np.isfinite(s["SCI"]) & ((np.asarray(s["DQ"]) & 1) == 0) & (np.asarray(s["SLICE"]) > 0)
        big, clean = on & (snr > 10), on & (snr == 0)
        tp, nb = tp + (m & big).sum(), nb + big.sum()
        fp, nc = fp + (m & clean).sum(), nc + clean.sum()
    return tp / nb, fp / nc, int(nb)


def agreement(a, b):
    """Flagged in both / flagged in either, over all exposures."""
    both = sum((x & y).sum() for x, y in zip(a, b))
    either = sum((x | y).sum() for x, y in zip(a, b))
    return both / max(either, 1)


def side_by_side(exps, snrs, workdir, tag, report):
    theirs = official_flags(exps, workdir, tag)
    same = ours(exps, "official")
    default = ours(exps, "webbspec")
    r_theirs, f_theirs, n = recall(theirs, snrs, exps)
    r_ours, f_ours, _ = recall(default, snrs, exps)
    agree = agreement(theirs, same)
    report[tag] = {"hits_gt_10_sigma": n, "official_recall": round(float(r_theirs), 4),
                   "official_clean_flagged": float(f_theirs), "our_official_agreement": round(float(agree), 5),
                   "default_recall": round(float(r_ours), 4), "default_clean_flagged": float(f_ours)}
    print(tag, json.dumps(report[tag]))
    return theirs, same, report[tag]


@pytest.fixture(scope="module")
def report():
    rep = {}
    yield rep
    print("IFU outliers side by side:", json.dumps(rep, indent=1))


def test_synthetic_ifu_side_by_side(tmp_path, report):
    from test_ifu_outliers import noisy_exposures, program

    base = noisy_exposures()
    exps, snrs = program(base, seed=2, rays_in=(1,))
    theirs, same, r = side_by_side(exps, snrs, str(tmp_path), "synthetic_rays_one_exposure", report)
    assert all(np.array_equal(theirs[0], t) for t in theirs)        # one mask for every exposure
    assert r["our_official_agreement"] >= 0.99
    assert r["official_recall"] < 0.25
    assert r["default_recall"] >= 0.95 and r["default_clean_flagged"] <= 1e-3
    exps, snrs = program(base, seed=3, rays_in=(), hot=True)
    _, _, r = side_by_side(exps, snrs, str(tmp_path), "synthetic_hot_pixels_all_exposures", report)
    assert r["our_official_agreement"] >= 0.99
    assert r["official_recall"] >= 0.8
    assert r["default_recall"] >= 0.95 and r["default_clean_flagged"] <= 1e-3


def simulated(root, mode, pattern):
    """Our assign_wcs on the science rates of `webbspec simulate <mode>` (seed 3) matching
    ``pattern``, with the simulator's injected S/N per pixel (truth/outliers)."""
    from astropy.io import fits

    from webbspec.steps import assign_wcs

    run = subprocess.run([sys.executable, "-m", "webbspec", "simulate", mode, str(root), "--seed", "3"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    rates = sorted(glob.glob(os.path.join(str(root), pattern)))
    assert len(rates) == 4
    exps, snrs = [], []
    for r in rates:
        exps.append(assign_wcs.run(r))
        name = os.path.basename(r).replace(".fits", "_crmask.fits")
        with fits.open(os.path.join(str(root), "truth", "outliers", name)) as h:
            snrs.append(np.where(h[0].data > 0, h[1].data, 0.0))
    return exps, snrs


def test_mrs_simulator_side_by_side(tmp_path, report):
    exps, snrs = simulated(tmp_path / "mrs", "mir_mrs", "jw01234001001_*_mirifushort_rate.fits")
    _, _, r = side_by_side(exps, snrs, str(tmp_path), "mir_mrs_sim_rays_every_exposure", report)
    assert r["hits_gt_10_sigma"] >= 100
    assert r["our_official_agreement"] >= 0.99
    assert r["official_recall"] < 0.25
    assert r["default_recall"] >= 0.95 and r["default_clean_flagged"] <= 1e-3


@pytest.mark.slow
def test_nrs_ifu_simulator_side_by_side(tmp_path, report):
    """NIRSpec IFU (NRS1, 2048 x 2048, dispersion along x): ~2.5 min and ~3.5 GB more."""
    exps, snrs = simulated(tmp_path / "nrs", "nrs_ifu", "jw01234001001_03101_*_nrs1_rate.fits")
    _, _, r = side_by_side(exps, snrs, str(tmp_path), "nrs_ifu_sim_rays_every_exposure", report)
    assert r["hits_gt_10_sigma"] >= 100
    assert r["our_official_agreement"] >= 0.99
    assert r["official_recall"] < 0.25
    assert r["default_recall"] >= 0.95 and r["default_clean_flagged"] <= 1e-3
