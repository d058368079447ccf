"""assign_wcs + extract_2d for NIRSpec MOS on the simulator's optics with a full MSA: one slit per
slitlet that reaches the detector (background slitlets and virtual sources included) with the
official names, source ids and keywords; the cutout is the image's pixels there, and every pixel's
(y_slit, wavelength) maps back onto that pixel through the forward optical model.
(Against the official steps: tests/official/test_nrs_mos_spec2_official.py.)"""

import numpy as np
import pytest

from mosrefs import RATE_HEADER, mos_optical_refs, mos_rate
from webbspec.errors import InputError
from webbspec.instruments.nirspec import mos, msa
from webbspec.instruments.nirspec.msa import Slitlet
from webbspec.instruments.nirspec.optics import Optics
from webbspec.io import datamodels
from webbspec.steps import assign_wcs, extract_2d, srctype


def slitlet(sid, quadrant, row, col, *, source_id=None, name=None, stellarity=0.9, background=False, virtual=False,
            xpos=0.1, ypos=-0.2, cols=(-1, 0, 1)):
    shutters = tuple((quadrant, row, col + c) for c in cols)
    source_id = sid if background else (100 + sid if source_id is None else source_id)
    return Slitlet(sid, quadrant, row, col, shutters, source_id,
                   name or (f"1234_BKG{sid}" if background else f"1234_{source_id}"), f"A{sid}",
                   0.0 if background or virtual else stellarity, 0.0 if background else xpos,
                   0.0 if background else ypos, 0.0 if background else 53.16, 0.0 if background else -27.79,
                   background, virtual, 1, 1)


@pytest.fixture(scope="module")
def exposure(tmp_path_factory):
    d = tmp_path_factory.mktemp("mos_x2d")
    refs = mos_optical_refs(d)
    # Q3 slitlets in distinct rows and columns; a background one; a virtual source (negative id,
    # not in SOURCE_INFO) in a 2-shutter slitlet; a Q2 slitlet off the detectors
    design = [slitlet(1, 3, 5, 10), slitlet(2, 3, 40, 60, background=True),
              slitlet(3, 3, 80, 120, stellarity=0.3), slitlet(4, 3, 120, 30, source_id=-4, virtual=True, cols=(0, 1)),
              slitlet(5, 2, 5, 10)]
    msa.write_msa_file(str(d / RATE_HEADER["MSAMETFL"]), design, "01234")
    rate = mos_rate(d / "jw01234001001_03101_00001_nrs1_rate.fits")
    wcs = assign_wcs.run(rate, refs)
    return d, refs, rate, wcs, extract_2d.run(wcs, refs)


def test_one_slit_per_slitlet_with_the_official_keywords(exposure):
    _, _, rate, wcs, out = exposure
    assert wcs.primary["S_WCS"] == "COMPLETE" and "WAVELENGTH" not in wcs.slits[0]     # image unchanged
    assert out.primary["S_EXTR2D"] == "COMPLETE" and out.layout == "multi" and "SLITS" not in out.tables
    assert [s.name for s in out.slits] == ["1", "2", "3", "4"]                          # Q2 misses the detector
    h = {s.name: s.header for s in out.slits}
    assert [h[n]["SOURCEID"] for n in "1234"] == [101, 2, 103, -4]
    assert [h[n]["SRCNAME"] for n in "1234"] == ["1234_101", "1234_BKG2", "1234_103", "1234_VRT4"]
    assert [h[n]["SHUTSTA"] for n in "1234"] == ["1x1", "1x1", "1x1", "x1"]
    assert [h[n]["SLITID"] for n in "1234"] == [1, 2, 3, 4]
    assert (h["1"]["MSAQUAD"], h["1"]["XCEN"], h["1"]["YCEN"], h["1"]["SHUTTRID"]) == (3, 5, 10, 5 + 9 * 365)
    assert (h["1"]["SRCXPOS"], h["1"]["SRCYPOS"]) == pytest.approx((0.1, -0.2))
    assert (h["1"]["SRCRA"], h["1"]["SRCDEC"], h["2"]["SRCRA"]) == pytest.approx((53.16, -27.79, 0.0))
    assert (h["1"]["SLTXSCL"], h["1"]["SLTYSCL"]) == pytest.approx((0.27 / 0.20, 0.53 / 0.46))
    assert (h["1"]["STLARITY"], h["2"]["STLARITY"], h["4"]["STLARITY"]) == (0.9, 0.0, 0.0)
    # SLTYMIN/MAX: the shutters plus the official margins, in reference-shutter heights
    assert (h["1"]["SLTYMIN"], h["1"]["SLTYMAX"]) == pytest.approx((-0.55 - 0.5 - 1.15, 0.55 + 0.5 + 1.15))
    assert (h["4"]["SLTYMIN"], h["4"]["SLTYMAX"]) == pytest.approx((-1.05, 1.05 + 1.15))
    types = {s.name: s.header["SRCTYPE"] for s in srctype.run(out).slits}
    assert types == {"1": "POINT", "2": "EXTENDED", "3": "EXTENDED", "4": "EXTENDED"}


def test_cutouts_and_coordinates(exposure):
    _, refs, rate, _, out = exposure
    img = rate.slits[0]
    optics = Optics(refs, RATE_HEADER)
    for s in out.slits:
        h = s.header
        y0, x0 = h["SLTSTRT2"] - 1, h["SLTSTRT1"] - 1
        assert s.shape == (h["SLTSIZE2"], h["SLTSIZE1"])
        for k in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"):
            np.testing.assert_array_equal(s[k], img[k][y0:y0 + s.shape[0], x0:x0 + s.shape[1]])
        lam, ys = s["WAVELENGTH"], s["SLIT_Y"]
        ok = np.isfinite(lam)
        assert ok.sum() > 500 and np.array_equal(ok, np.isfinite(ys)) and np.array_equal(ok, np.isfinite(s["XI"]))
        assert ys[ok].min() >= h["SLTYMIN"] - 1e-6 and ys[ok].max() <= h["SLTYMAX"] + 1e-6
        yy, xx = np.nonzero(ok)
        x, y = optics.slit_to_detector((h["MSAQUAD"], h["XCEN"], h["YCEN"]), 0.0, ys[ok].astype(float),
                                       lam[ok].astype(float) * 1e-6)
        assert np.abs(x - (xx + x0)).max() < 0.01 and np.abs(y - (yy + y0)).max() < 0.01     # float32 arrays
        # XI/ETA about the slitlet's reference shutter centre: within a few arcsec
        assert np.hypot(s["XI"][ok], s["ETA"][ok]).max() < 3.0
    # the same boxes and arrays as the instrument layer in one go
    boxes = mos.exposure_slitlets({**RATE_HEADER}, (2048, 2048), refs, rate.path)
    for b, s in zip(boxes, out.slits):
        assert (b.xstart + 1, b.ystart + 1) == (s.header["SLTSTRT1"], s.header["SLTSTRT2"])
        for k in ("WAVELENGTH", "XI", "ETA", "SLIT_Y"):
            np.testing.assert_array_equal(b.arrays[k], s[k])


def test_selection_round_trip_and_errors(exposure, tmp_path):
    d, refs, rate, wcs, out = exposure
    assert [s.name for s in extract_2d.run(wcs, refs, slit_names=["3"]).slits] == ["3"]
    assert [s.name for s in extract_2d.run(wcs, refs, source_ids=[2, -4]).slits] == ["2", "4"]
    back = extract_2d.run(datamodels.read(datamodels.write(wcs, str(tmp_path / "wcs.fits"))), refs)
    for a, b in zip(back.slits, out.slits):
        assert a.header["SRCNAME"] == b.header["SRCNAME"]
        np.testing.assert_array_equal(a["WAVELENGTH"], b["WAVELENGTH"])
    with pytest.raises(InputError, match="no slit selected"):
        extract_2d.run(wcs, refs, slit_names=["9"])
    with pytest.raises(InputError, match="camera"):
        extract_2d.run(wcs, dict(refs, camera="N/A"))
    lost = rate.copy()
    lost.path = str(tmp_path / "elsewhere_rate.fits")
    with pytest.raises(InputError, match="MSA metadata file .MSAMETFL. does not exist"):
        assign_wcs.run(lost, refs)
