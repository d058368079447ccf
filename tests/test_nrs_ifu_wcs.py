"""NIRSpec IFU assign_wcs (webbspec/instruments/nirspec/ifu.py) on the simulated optical model:
the backward transform inverts the forward one, the per-pixel arrays follow the IFU contract of
docs/internals.md, and the geometry is the design's (0.1" slices, 0.1" pixels along them)."""

import os

import numpy as np
import pytest
from astropy.io import fits

from webbspec.errors import InputError
from webbspec.instruments.nirspec import ifu
from webbspec.instruments.nirspec.optics import v2v3_to_sky
from webbspec.io.skycoords import radec_to_xieta
from webbspec.simulate import nrs_ifu_optics_refs as design

from nrs_ifu_setup import ifu_assigned, ifu_headers, ifu_refs


@pytest.fixture(scope="module")
def setup():
    _, refs = ifu_refs()
    primary, sci = ifu_headers("science")
    return refs, {**dict(primary.items()), **dict(sci.items())}, ifu_assigned()


def _optics(setup):
    refs, keys, _ = setup
    return ifu.IFUOptics(refs, keys)


def test_backward_inverts_the_forward_model(setup):
    optics = _optics(setup)
    lam = np.linspace(2.9e-6, 4.0e-6, 23)[:, None]
    ys = np.linspace(-0.5, 0.5, 17)[None, :]
    worst_lam = worst_y = 0.0
    for k in range(ifu.N_SLICES):
        x, y = optics.slit_to_detector(k, 0.0, ys, lam)
        got_ys, got_lam = optics.slice_backward(k, x, y)
        _, lam_next = optics.slice_backward(k, x + 1.0, y)
        worst_lam = max(worst_lam, np.max(np.abs(got_lam - lam) / np.abs(lam_next - got_lam)))
        worst_y = max(worst_y, np.max(np.abs(got_ys - ys)) * 30.0)       # a slice is ~30 pixels long
    assert worst_lam < 1e-4 and worst_y < 1e-4, (worst_lam, worst_y)


def test_arrays_follow_the_ifu_contract(setup):
    _, _, out = setup
    img = out.slits[0]
    s = img["SLICE"]
    assert s.dtype == np.int16 and set(np.unique(s)) == set(range(31))
    on = s > 0
    for key in ifu.ARRAYS[:-1]:
        assert img[key].dtype == np.float32 and img[key].shape == (2048, 2048)
        assert np.isfinite(img[key][on]).all() and np.isnan(img[key][~on]).all(), key
    assert out.primary["S_WCS"] == "COMPLETE" and out.primary["R_IFUSLI"] == os.path.basename(design.IFU_REF_FILES["ifuslicer"])
    assert abs(img.header["SLICEWID"] - 0.1) < 1e-4                       # the design's 0.1" slices
    rows = out.tables["SLICES"]
    assert list(rows["SLICE"]) == list(range(1, 31))
    for r in rows:
        box = s[r["YSTART"]:r["YSTOP"] + 1, r["XSTART"]:r["XSTOP"] + 1]
        assert (box == r["SLICE"]).sum() == (s == r["SLICE"]).sum()
    # NRS1 sees 2.87-4.1 um (the band edge 11 pixels before the first column)
    lam = img["WAVELENGTH"][on]
    assert 2.855 < lam.min() < 2.87 and 4.0 < lam.max() < 4.1
    # the along-slice footprint of a pixel is the design's 0.1"
    length = np.hypot(img["XI2"] - img["XI1"], img["ETA2"] - img["ETA1"])[on]
    assert abs(np.median(length) - 0.1) < 1e-3


def test_slices_tile_the_field_side_by_side(setup):
    """At one wavelength the slices' centre lines are 0.1" apart across the slice, in the order of
    the real slicer: even slices on one side of the middle, odd ones on the other (28 ... 2 0 1 3
    ... 29; SLICE = slice + 1), so slices 1 and 3 are neighbours."""
    _, _, out = setup
    img = out.slits[0]
    s, lam = img["SLICE"], img["WAVELENGTH"]
    u = np.array([np.nanmedian(img["XI2"] - img["XI1"]), np.nanmedian(img["ETA2"] - img["ETA1"])])
    v = np.array([-u[1], u[0]]) / np.hypot(*u)
    across = []
    for k in range(1, 31):
        sel = (s == k) & (np.abs(lam - 3.5) < 0.0004)
        proj = img["XI"][sel] * v[0] + img["ETA"][sel] * v[1]
        assert np.ptp(proj) < 2e-3                          # the slice centre line is straight
        across.append(np.mean(proj))
    order = list(range(28, -1, -2)) + list(range(1, 30, 2))
    step = np.abs(np.diff([across[k] for k in order]))
    assert np.all(np.abs(step - 0.1) < 1e-3), step


def test_edges_and_dwave_against_direct_evaluation(setup):
    refs, keys, out = setup
    optics = _optics(setup)
    img = out.slits[0]
    rng = np.random.default_rng(3)
    iy, ix = np.nonzero(img["SLICE"] > 0)
    pick = rng.choice(iy.size, 300, replace=False)
    y, x = iy[pick].astype(float), ix[pick].astype(float)
    ra0, dec0 = keys["RA_REF"], keys["DEC_REF"]
    for k in np.unique(img["SLICE"][iy[pick], ix[pick]]):
        m = img["SLICE"][y.astype(int), x.astype(int)] == k
        xx, yy = x[m], y[m]
        ys, lam = optics.slice_backward(k - 1, xx, yy)
        ys_lo, _ = optics.slice_backward(k - 1, xx, yy - 0.5)
        _, lam_l = optics.slice_backward(k - 1, xx - 0.5, yy)
        _, lam_r = optics.slice_backward(k - 1, xx + 0.5, yy)
        at = (yy.astype(int), xx.astype(int))
        assert np.allclose(img["DWAVE"][at], np.abs(lam_r - lam_l) * 1e6, rtol=1e-5, atol=0)
        # centre and lower edge on the sky through the general path (v2v3 -> RA/Dec -> xi/eta)
        for arr_xi, arr_eta, y_slit in (("XI", "ETA", ys), ("XI1", "ETA1", ys_lo)):
            v2, v3 = optics.slice_to_v2v3(k - 1, 0.0, y_slit, lam)
            ra, dec = v2v3_to_sky(v2, v3, *optics._pointing())
            xi, eta = radec_to_xieta(ra, dec, ra0, dec0)
            assert np.max(np.hypot(xi - img[arr_xi][at], eta - img[arr_eta][at])) < 1e-5


def test_bad_input_is_one_line(setup, tmp_path):
    refs, keys, _ = setup
    g395m = design.design.write_optical_refs(str(tmp_path), grating="G395M")["disperser"]
    with pytest.raises(InputError, match="NRS2 with G395M"):        # the official rule: M gratings miss NRS2
        ifu.IFUOptics(dict(refs, disperser=str(tmp_path / g395m)), dict(keys, DETECTOR="NRS2", GRATING="G395M"))
    with pytest.raises(InputError, match="ifufore"):
        ifu.IFUOptics(dict(refs, ifufore="N/A"), keys)
    with pytest.raises(InputError, match="not a ifupost reference"):
        ifu.IFUOptics(dict(refs, ifupost=refs["ifuslicer"]), keys)
    hdr = fits.Header(dict(keys, EXP_TYPE="NRS_FIXEDSLIT"))
    with pytest.raises(InputError, match="no IFU model"):
        ifu.exposure_coordinates(hdr, (2048, 2048), refs)
