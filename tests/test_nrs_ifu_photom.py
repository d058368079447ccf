"""photom on a NIRSpec IFU exposure (steps/_nrs_ifu_calib.py) against the simulator's truth: the
noise-free rate of the dedicated background (the uniform sky) becomes the sky's surface brightness."""

import os

import numpy as np
import pytest

from webbspec import dq as dqbits
from webbspec.errors import InputError
from webbspec.instruments.nirspec import ifu
from webbspec.io.datamodels import Model, Slit
from webbspec.simulate import nirspec_fs as fs
from webbspec.simulate import nrs_ifu, nrs_ifu_calrefs, nrs_ifu_scene
from webbspec.steps import photom

from nrs_ifu_setup import ifu_coordinates, ifu_headers


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    primary, sci = ifu_headers("background")
    keys, c, width = ifu_coordinates("background")
    calref = tmp_path_factory.mktemp("ifu_cal")
    sel = nrs_ifu_calrefs.write_all(str(calref), nrs_ifu.pixel_areas(c, width), nrs_ifu.PHOTMJ)
    cal_refs = {rt: os.path.join(calref, rows[0]["file"]) for rt, rows in sel.items()}
    # the noise-free rate on a sample of pixels (NaN elsewhere: photom keeps NaN)
    pick = np.zeros((2048, 2048), bool)
    pick[::3, ::7] = True
    pick &= c["SLICE"] > 0
    lam = c["WAVELENGTH"][pick].astype(float)
    rate = np.full((2048, 2048), np.nan, np.float32)
    light = nrs_ifu.footprint_light(c, width, keys, pick)
    rate[pick] = light / (nrs_ifu.PHOTMJ * fs.relresponse(lam))
    arrays = {k: c[k] for k in ifu.ARRAYS}
    arrays.update(SCI=rate, ERR=0.01 * rate, DQ=np.zeros((2048, 2048), np.uint32))
    model = Model(primary, [Slit(sci, arrays)], "single")
    out = photom.run(model, cal_refs)
    return out, model, cal_refs, c, width, pick, light


def test_sky_comes_out_in_mjy_per_sr(calibrated):
    out, _, _, c, width, pick, light = calibrated
    img = out.slits[0]
    assert img.header["BUNIT"] == "MJy/sr" and out.primary["S_PHOTOM"] == "COMPLETE"
    lam = c["WAVELENGTH"][pick].astype(float)
    got = img["SCI"][pick]
    # exactly the footprint's light over its slice's pixel area (the official 2-D sensitivity) ...
    areas = nrs_ifu.pixel_areas(c, width)
    slice_sr = np.array([areas[k] for k in c["SLICE"][pick]]) * nrs_ifu_scene.SR_PER_ARCSEC2
    assert np.allclose(got, light / slice_sr, rtol=1e-5)
    assert np.isclose(img.header["PIXAR_A2"], np.mean(list(areas.values())), rtol=1e-6)
    # ... which is the sky within the footprint-area spread, away from the slice ends
    inner = np.abs(0.5 * (c["SLIT_Y1"] + c["SLIT_Y2"]))[pick] < 0.45
    ratio = got[inner] / nrs_ifu_scene.sky_mjysr(lam[inner])
    assert abs(np.median(ratio) - 1) < 2e-3 and np.ptp(ratio) < 0.02, (np.median(ratio), np.ptp(ratio))
    assert np.allclose(img["ERR"][pick], 0.01 * got, rtol=1e-5)


def test_off_slice_pixels_are_non_science_and_inverse_undoes(calibrated):
    out, model, cal_refs, *_ = calibrated
    img = out.slits[0]
    off = img["SLICE"] == 0
    assert np.all(img["DQ"][off] & dqbits.NON_SCIENCE) and not np.any(img["DQ"][~off] & dqbits.NON_SCIENCE)
    back = photom.run(out, cal_refs, inverse=True)
    ok = np.isfinite(model.slits[0]["SCI"])
    assert np.allclose(back.slits[0]["SCI"][ok], model.slits[0]["SCI"][ok], rtol=1e-5)


def test_bad_input_is_one_line(calibrated, tmp_path):
    _, model, cal_refs, c, width, *_ = calibrated
    bare = Model(model.primary, [Slit(model.slits[0].header, {"SCI": model.slits[0]["SCI"]})], "single")
    with pytest.raises(InputError, match="SLICE"):
        photom.run(bare, cal_refs)
    areas = nrs_ifu.pixel_areas(c, width)
    del areas[17]
    short = nrs_ifu_calrefs.write_area(str(tmp_path / "area.fits"), areas)
    with pytest.raises(InputError, match="area.fits: no pixel area for IFU slice 17"):
        photom.run(model, dict(cal_refs, area=str(tmp_path / short)))
