"""3-D `_rateints` input: Stage 2 runs per integration and writes `_calints` and `_x1dints`
(one spectrum per slit and integration), each integration's point-source flux on the truth."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from webbspec.io import datamodels

pytestmark = pytest.mark.slow

ROOT = "jw01234001001_03101_00001_nrs1"
NINT = 2


def _to_rateints(prog, rng):
    """Replace nod 1's _rate by a 2-integration _rateints (independent noise per integration)."""
    rate = prog / f"{ROOT}_rate.fits"
    h = fits.open(rate, memmap=False)
    h.readall()
    err = h["ERR"].data
    for name in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"):
        data = h[name].data
        stack = np.stack([data] * NINT)
        if name == "SCI":
            stack = stack + rng.normal(size=stack.shape).astype(np.float32) * err * 0.1
        h[name].data = stack
    h[0].header["NINTS"] = NINT
    h.writeto(prog / f"{ROOT}_rateints.fits")
    h.close()
    rate.unlink()
    for asn in prog.glob("*_asn.json"):
        tree = json.loads(asn.read_text())
        for p in tree["products"]:
            if tree["asn_type"] == "spec3":      # official Stage 3 takes no _calints
                p["members"] = [m for m in p["members"] if not m["expname"].startswith(ROOT)]
            for m in p["members"]:
                if m["expname"] == f"{ROOT}_rate.fits":
                    m["expname"] = f"{ROOT}_rateints.fits"
        asn.write_text(json.dumps(tree, indent=2))


def test_rateints_give_calints_and_x1dints(tmp_path):
    prog = tmp_path / "prog"
    exe = os.path.join(os.path.dirname(sys.executable), "webbspec")
    subprocess.run([exe, "simulate", "nrs_fs", str(prog)], check=True, capture_output=True)
    _to_rateints(prog, np.random.default_rng(5))
    run = subprocess.run([exe, "run", str(prog), "--cores", "2"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = prog / "webbspec" / "spec2"
    assert not (out / f"{ROOT}_s2d.fits").exists()           # no resampling per integration
    cal = datamodels.read(str(out / f"{ROOT}_calints.fits"))
    assert all(np.ndim(s["SCI"]) == 3 and np.shape(s["SCI"])[0] == NINT for s in cal.slits)
    x1d = datamodels.read(str(out / f"{ROOT}_x1dints.fits"))
    assert len(x1d.spectra) == NINT * len(cal.slits)
    truth = Table.read(prog / "truth" / "spectra" / "s000000001.ecsv")
    point = [sp for sp in x1d.spectra if sp.header.get("SLTNAME") == "S200A1"]
    assert sorted(sp.header["INT_NUM"] for sp in point) == list(range(1, NINT + 1))
    for sp in point:
        w, f = np.asarray(sp.table["WAVELENGTH"], float), np.asarray(sp.table["FLUX"], float)
        n = w.size
        ratio = np.nanmedian((f / np.interp(w, truth["wavelength"], truth["flux"]))[n // 10: 9 * n // 10])
        assert abs(ratio - 1) < 0.02, (sp.header["INT_NUM"], ratio)
    # the other nods are untouched and Stage 3 still runs on them
    assert (out / "jw01234001001_03101_00002_nrs1_x1d.fits").exists()
    assert list((prog / "webbspec" / "spec3").glob("*_s000000001_x1d.fits"))
