"""msa_flagging: a failed-open shutter's trace is flagged MSA_FAILED_OPEN, nothing else changes.

The analytic answer: the shutter's light (slit-frame y -0.5..0.5, every wavelength of the range)
projected forward through the optical model onto the detector is a band between two curves; every
pixel centre well inside the band is flagged, none well outside it (the edge pixels within half a
pixel may go either way). (Against the official step: tests/official/test_nrs_mos_spec2_official.py.)
"""

import numpy as np
import pytest

from mosrefs import RATE_HEADER, mos_optical_refs, mos_rate, write_msaoper
from webbspec import dq as dqbits
from webbspec.errors import InputError
from webbspec.instruments.nirspec import msa
from webbspec.instruments.nirspec.msa import Slitlet
from webbspec.instruments.nirspec.optics import Optics
from webbspec.steps import assign_wcs, msa_flagging

FLAG = dqbits.FLAGS["MSA_FAILED_OPEN"]


@pytest.fixture(scope="module")
def flagged(tmp_path_factory):
    d = tmp_path_factory.mktemp("msaflag")
    refs = mos_optical_refs(d)
    one = Slitlet(1, 3, 5, 10, ((3, 5, 9), (3, 5, 10), (3, 5, 11)), 101, "1234_101", "", 0.9, 0.0, 0.0,
                  0.0, 0.0, False, False, 1, 1)
    msa.write_msa_file(str(d / RATE_HEADER["MSAMETFL"]), [one], "01234")
    refs["msaoper"] = write_msaoper(d / "msaoper.json", [(3, 150, 30, "open"), (3, 200, 90, "open", "state-only"),
                                                         (4, 10, 10, "closed"), (2, 5, 5, "open")])
    rate = mos_rate(d / "jw01234001001_03101_00001_nrs1_rate.fits")
    wcs = assign_wcs.run(rate, refs)
    return refs, wcs, msa_flagging.run(wcs, refs)


def band(optics, key, shape, widen=0.0):
    """Per column x: the (low, high) y of the shutter's band (edges y_slit = -0.5, 0.5) over the
    wavelength range (``widen``: extended by that fraction at both ends)."""
    lmin, lmax = optics.wavelength_range
    lam = np.linspace(lmin - widen * (lmax - lmin), lmax + widen * (lmax - lmin), 4000)
    xs, ys = optics.slit_to_detector(key, 0.0, np.array([[-0.5], [0.5]]), lam[None, :])
    lo, hi = np.full(shape[1], np.nan), np.full(shape[1], np.nan)
    cols = np.arange(shape[1])
    for edge, (x, y) in enumerate(zip(xs, ys)):
        order = np.argsort(x)
        inside = (cols >= x.min()) & (cols <= x.max())
        yv = np.where(inside, np.interp(cols, x[order], y[order]), np.nan)
        if edge == 0:
            lo = yv
        else:
            hi = yv
    return np.minimum(lo, hi), np.maximum(lo, hi)


def test_failed_open_traces_flagged(flagged):
    refs, wcs, out = flagged
    assert out.primary["S_MSAFLG"] == "COMPLETE" and out.primary["R_MSAOPE"] == "msaoper.json"
    dq = out.slits[0]["DQ"]
    mask = (dq & FLAG) != 0
    assert np.array_equal(dq & ~np.uint32(FLAG), wcs.slits[0]["DQ"])          # only the new bit
    np.testing.assert_array_equal(out.slits[0]["SCI"], wcs.slits[0]["SCI"])
    optics = Optics({k: v for k, v in refs.items() if k != "msaoper"}, RATE_HEADER)
    yy = np.arange(2048)[:, None]
    expected_any = np.zeros_like(mask)
    for key in ((3, 150, 30), (3, 200, 90)):          # any "open" state counts; Q2 misses the detector
        lo, hi = band(optics, key, mask.shape)
        inside = (yy > lo[None, :] + 0.5) & (yy < hi[None, :] - 0.5)
        outside_near = ((yy < lo[None, :] - 0.5) | (yy > hi[None, :] + 0.5)) & (yy > lo[None, :] - 5) & \
            (yy < hi[None, :] + 5)
        # the official box covers the trace over the wavelength range (+ margins), so columns
        # well inside the range are fully flagged across the band
        cols = np.isfinite(lo) & np.isfinite(hi)
        cols[:20], cols[-20:] = False, False
        assert mask[inside & cols[None, :]].all(), key
        assert not mask[outside_near & cols[None, :]].any(), key
        assert inside[:, cols].sum() > 1500
        # the official box reaches 10 pixels beyond the range, where any wavelength is flagged too
        lo, hi = band(optics, key, mask.shape, widen=0.05)
        expected_any |= (yy > lo[None, :] - 1) & (yy < hi[None, :] + 1)
    # nothing flagged away from the two failed-open traces (the closed shutter is not traced)
    assert not mask[~expected_any].any()


def test_no_reference_and_wrong_input(flagged, tmp_path):
    refs, wcs, out = flagged
    skipped = msa_flagging.run(wcs, dict(refs, msaoper="N/A"))
    assert skipped.primary["S_MSAFLG"] == "SKIPPED"
    np.testing.assert_array_equal(skipped.slits[0]["DQ"], wcs.slits[0]["DQ"])
    bad = tmp_path / "msaoper.json"
    bad.write_text('{"title": "no shutters"}')
    with pytest.raises(InputError, match="msaoper.json: not an msaoper reference"):
        msa_flagging.run(wcs, dict(refs, msaoper=str(bad)))
