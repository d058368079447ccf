"""flat_field on a NIRSpec IFU exposure (steps/_nrs_ifu_calib.py) against the simulator's truth: an
exposure that is the simulated flat itself (nrs_ifu_calrefs.flat: pixel flat x spectrograph image
x three wavelength factors) comes out 1 on every slice pixel; off the slices NaN, no flat."""

import os

import numpy as np
import pytest

from webbspec import dq as dqbits
from webbspec.errors import InputError
from webbspec.io.datamodels import Model, Slit
from webbspec.simulate import nrs_ifu, nrs_ifu_calrefs
from webbspec.steps import flat_field

from nrs_ifu_setup import ifu_assigned


@pytest.fixture(scope="module")
def flattened(tmp_path_factory):
    wcs = ifu_assigned()
    img = wcs.slits[0]
    pixel_flat = np.clip(1.0 + 0.02 * np.random.default_rng(4).standard_normal((2048, 2048)), 0.9, 1.1)
    calref = tmp_path_factory.mktemp("ifu_flats")
    sel = nrs_ifu_calrefs.write_all(str(calref), {s: 0.01 for s in range(1, 31)}, nrs_ifu.PHOTMJ, {"NRS1": pixel_flat})
    flat_refs = {rt: os.path.join(calref, sel[rt][0]["file"]) for rt in ("fflat", "sflat", "dflat")}
    on = img["SLICE"] > 0
    y, x = np.nonzero(on)
    truth = np.full((2048, 2048), np.nan, np.float32)
    truth[on] = nrs_ifu_calrefs.flat(x, y, img["WAVELENGTH"][on].astype(float), pixel_flat)
    img["SCI"] = truth
    img["ERR"] = np.where(on, 0.01, np.nan).astype(np.float32)
    img["VAR_POISSON"] = np.where(on, 1e-4, np.nan).astype(np.float32)
    img["DQ"] = np.zeros((2048, 2048), np.uint32)
    return wcs, flat_field.run(wcs, flat_refs), flat_refs


def test_flat_exposure_becomes_one(flattened):
    before, out, _ = flattened
    img = out.slits[0]
    on = img["SLICE"] > 0
    assert out.primary["S_FLAT"] == "COMPLETE"
    good = on & np.isfinite(img["SCI"])
    assert good.sum() > 0.999 * on.sum()
    # float32 tables and images, and the pixel-width average of smooth factors: < 1e-5
    assert np.max(np.abs(img["SCI"][good] - 1.0)) < 1e-5
    assert np.all(img["VAR_FLAT"][good] >= 0) and np.all(np.isfinite(img["ERR"][good]))
    off = ~on
    assert np.isnan(img["SCI"][off]).all()
    assert np.all(img["DQ"][off] & dqbits.DO_NOT_USE) and np.all(img["DQ"][off] & dqbits.NO_FLAT_FIELD)


def test_inverse_restores_and_bad_input(flattened):
    before, out, flat_refs = flattened
    back = flat_field.run(out, flat_refs, inverse=True)
    ok = np.isfinite(back.slits[0]["SCI"])
    assert np.allclose(back.slits[0]["SCI"][ok], before.slits[0]["SCI"][ok], rtol=1e-5)
    assert flat_field.run(before, {}).primary["S_FLAT"] == "SKIPPED"
    bare = Model(before.primary, [Slit(before.slits[0].header, {"SCI": before.slits[0]["SCI"]})], "single")
    with pytest.raises(InputError, match="SLICE"):
        flat_field.run(bare, flat_refs)
