"""Our NIRSpec IFU flat_field and photom against the official FlatFieldStep / PhotomStep (after the
official AssignWcsStep) on a simulated `_rate` with the program's references (fflat / sflat /
dflat NirspecFlatModel; photom NrsMosPhotomModel, area NirspecIfuAreaModel): every slice pixel
within 1e-5 (float32 rounding), the same pixels flagged off the slices."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from webbspec import dq as dqbits
from webbspec.instruments.nirspec import ifu
from webbspec.io import datamodels, refs
from webbspec.steps import assign_wcs, flat_field, photom

from nrs_ifu_program import nrs_ifu_program

pytestmark = pytest.mark.official

HERE = os.path.dirname(__file__)


def _side_by_side(step, module, tmp_path):
    prog, info = nrs_ifu_program()
    rate = info["rates"][1]
    model = datamodels.read(rate)
    sel = refs.bestrefs(model.primary, assign_wcs.REFTYPES + module.REFTYPES, os.path.join(prog, "refs"))
    ours = module.run(assign_wcs.run(model, sel), sel)
    own = [rt for rt in module.REFTYPES if os.path.isfile(str(sel.get(rt)))]
    (tmp_path / "refs.json").write_text(json.dumps({rt: sel[rt] for rt in ifu.REFTYPES + tuple(own)}))
    run = subprocess.run([sys.executable, os.path.join(HERE, "nrs_ifu_calib_official.py"), step, rate,
                          str(tmp_path / "refs.json"), str(tmp_path / "off.npz")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    print(run.stdout.strip().splitlines()[-1])
    off = np.load(tmp_path / "off.npz")
    img = ours.slits[0]
    on = (img["SLICE"] > 0) & np.isfinite(img["SCI"]) & np.isfinite(off["sci"])
    assert on.sum() > 0.99 * (img["SLICE"] > 0).sum()
    big = np.abs(off["sci"][on]) > 1e-3 * np.nanmax(np.abs(off["sci"][on]))
    ratio = img["SCI"][on][big].astype(float) / off["sci"][on][big]
    eratio = img["ERR"][on][big].astype(float) / off["err"][on][big]
    print(f"{step}: {on.sum()} slice pixels; ours / official SCI: max |dev| {np.max(np.abs(ratio - 1)):.2e}, "
          f"ERR: {np.max(np.abs(eratio - 1)):.2e}")
    assert np.max(np.abs(ratio - 1)) < 1e-5 and np.max(np.abs(eratio - 1)) < 1e-5
    return ours, off, img


def test_flat_field_matches_the_official_step(tmp_path):
    ours, off, img = _side_by_side("flat_field", flat_field, tmp_path)
    assert ours.primary["S_FLAT"] == "COMPLETE"
    offslice = img["SLICE"] == 0
    assert np.isnan(img["SCI"][offslice]).all() and np.isnan(off["sci"][offslice]).all()
    assert np.all(img["DQ"][offslice] & dqbits.DO_NOT_USE)


def test_photom_matches_the_official_step(tmp_path):
    ours, off, img = _side_by_side("photom", photom, tmp_path)
    assert str(off["bunit"]) == img.header["BUNIT"] == "MJy/sr"
    assert np.isclose(float(off["pixar_sr"]), img.header["PIXAR_SR"], rtol=1e-6)
    assert np.isclose(float(off["photmjsr"]), img.header["PHOTMJSR"], rtol=1e-6)
