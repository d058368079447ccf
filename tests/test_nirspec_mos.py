"""NIRSpec MOS slitlet geometry (instruments/nirspec/mos.py) on the simulated optics with a full
MSA shutter table: the slit frame spans the slitlet's shutters, pixels and slit points map onto
each other, slitlets off the detector are left out, bad shutters are one-line errors.
(Against the official pipeline: tests/official/test_nrs_mos_wcs_official.py.)"""

import numpy as np
import pytest

from webbspec.errors import InputError
from webbspec.instruments.nirspec import mos, msa
from webbspec.instruments.nirspec.msa import Slitlet
from webbspec.instruments.nirspec.optics import Optics
from webbspec.io.skycoords import radec_to_xieta, xieta_to_radec
from webbspec.simulate import nirspec_optics_refs as design

ARCSEC = design.MSA_ARCSEC
PITCH = (0.27, 0.53)                  # arcsec: shutter pitch along x (rows) and y (columns)
OPEN = (0.20, 0.46)                   # arcsec: open area
# MSA position [arcsec] of shutter (row 1, column 1) per quadrant; Q2 is far off the detectors
ORIGIN = {1: (-100.0, 3.0), 2: (-400.0, -400.0), 3: (2.0, 3.0), 4: (2.0, -93.0)}
HEADER = {"EXP_TYPE": "NRS_MSASPEC", "DETECTOR": "NRS1", "FILTER": "F290LP", "GRATING": "G395M",
          "SUBARRAY": "FULL", "GWA_XTIL": 0.3527, "GWA_YTIL": 0.1321, "RA_REF": 53.16, "DEC_REF": -27.79,
          "ROLL_REF": 138.5, "V2_REF": 321.3, "V3_REF": -478.6, "VA_SCALE": 1.00003, "PROGRAM": "01234",
          "MSAMETFL": "jw01234001001_01_msa.fits", "MSAMETID": 1, "PATT_NUM": 1}


def _quadrant_table():
    k = np.arange(msa.SHUTTERS_PER_COLUMN * 171)
    t = np.zeros(k.size, [("NO", "<i4"), ("XC", "<f8"), ("YC", "<f8"), ("SIZEX", "<f8"), ("SIZEY", "<f8")])
    t["NO"] = k + 1
    t["XC"] = (k % msa.SHUTTERS_PER_COLUMN) * PITCH[0] * ARCSEC
    t["YC"] = (k // msa.SHUTTERS_PER_COLUMN) * PITCH[1] * ARCSEC
    t["SIZEX"], t["SIZEY"] = OPEN[0] * ARCSEC, OPEN[1] * ARCSEC
    return t


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    from astropy.modeling import models as am
    from stdatamodels.jwst import datamodels as dm

    d = tmp_path_factory.mktemp("mos_optics")
    names = design.write_optical_refs(str(d))
    fs_msa = design.build_models()["msa"]
    data = {f"Q{q}": _quadrant_table() for q in ORIGIN}
    data["Q5"] = fs_msa.Q5.data
    models = {f"Q{q}": am.Shift(x * ARCSEC) & am.Shift(y * ARCSEC) for q, (x, y) in ORIGIN.items()}
    models["Q5"] = am.Identity(2)
    m = dm.MSAModel(models=models, data=data)
    m.meta = fs_msa.meta
    design.save_reproducibly(m, str(d / "mos_msa.asdf"))
    out = {rt: str(d / f) for rt, f in names.items()}
    out["msa"] = str(d / "mos_msa.asdf")
    return out


def _slitlet(sid, quadrant, row, col, background=False, ycen=None):
    shutters = tuple((quadrant, row, c) for c in (col - 1, col, col + 1))
    return Slitlet(sid, quadrant, row, col if ycen is None else ycen, shutters, sid if background else 100 + sid,
                   f"1234_BKG{sid}" if background else f"1234_{100 + sid}", "", 0.0 if background else 0.9,
                   0.0, 0.0, 0.0, 0.0, background, False, 1, 1)


def test_slit_frame_spans_the_shutters_and_maps_back_to_the_pixels(refs):
    o = Optics(refs, HEADER)
    b = mos.slitlet_box(o, _slitlet(1, 3, 5, 10), (2048, 2048))
    assert (b.ymin, b.ymax) == pytest.approx((-2.2, 2.2))
    assert (b.slit_xscale, b.slit_yscale) == pytest.approx((PITCH[0] / OPEN[0], PITCH[1] / OPEN[1]))
    lam, ys = b.arrays["WAVELENGTH"], b.arrays["SLIT_Y"]
    ok = np.isfinite(lam)
    assert ok.sum() > 1000 and np.array_equal(ok, np.isfinite(ys)) and np.array_equal(ok, np.isfinite(b.arrays["XI"]))
    assert ys[ok].min() < -2.1 and ys[ok].max() > 2.1 and (np.abs(ys[ok]) <= 2.2 + 1e-9).all()
    lmin, lmax = (v * 1e6 for v in o.wavelength_range)
    assert lam[ok].min() >= lmin and lam[ok].max() <= lmax
    # every valid pixel lies inside the box with the official margins (3 rows below, 1 above)
    rows = np.nonzero(ok.any(axis=1))[0]
    assert rows.min() == 3 and rows.max() == b.shape[0] - 2
    # pixel -> (y_slit, lambda) -> pixel
    yy, xx = np.nonzero(ok)
    x, y = o.slit_to_detector(mos.shutter_key(b.slitlet), 0.0, ys[ok].astype(float), lam[ok].astype(float) * 1e-6)
    assert np.abs(x - (xx + b.xstart)).max() < 0.01 and np.abs(y - (yy + b.ystart)).max() < 0.01   # float32 arrays


def test_sky_offsets_follow_the_shutter_pitch(refs):
    o = Optics(refs, HEADER)
    b = mos.slitlet_box(o, _slitlet(1, 3, 5, 10), (2048, 2048))
    key = mos.shutter_key(b.slitlet)
    # the centres of the slitlet's two outer shutters: one pitch above and below the reference one
    _, (ra, dec) = o.slit_to_sky(key, 0.0, np.array([-1, 0, 1]) * PITCH[1] / OPEN[1], 4e-6)
    xi, eta = radec_to_xieta(ra, dec, b.ra_ref, b.dec_ref)
    step = np.hypot(np.diff(xi), np.diff(eta))
    assert step == pytest.approx([PITCH[1]] * 2, rel=5e-3)     # the FORE's small chromatic scale
    assert np.hypot(xi[1], eta[1]) < 0.01                      # the reference point is the shutter centre
    ok = np.isfinite(b.arrays["XI"])
    r, d = xieta_to_radec(b.arrays["XI"][ok].astype(float), b.arrays["ETA"][ok].astype(float), b.ra_ref, b.dec_ref)
    assert np.hypot((r - b.ra_ref) * np.cos(np.radians(d)), d - b.dec_ref).max() * 3600 < 2.0   # a 1.5" slitlet


def test_exposure_slitlets_official_order_and_off_detector(refs, tmp_path):
    slitlets = [_slitlet(1, 3, 5, 10), _slitlet(2, 2, 5, 10), _slitlet(3, 1, 360, 40, background=True, ycen=40),
                _slitlet(4, 4, 10, 150)]
    msa.write_msa_file(str(tmp_path / HEADER["MSAMETFL"]), slitlets, "01234")
    rate = str(tmp_path / "jw01234001001_03101_00001_nrs1_rate.fits")
    boxes = mos.exposure_slitlets(HEADER, (2048, 2048), refs, rate)
    assert [b.name for b in boxes] == ["3", "1", "4"]          # by quadrant; Q2 misses the detector
    assert boxes[0].slitlet.background and boxes[0].slitlet.source_name == "1234_BKG3"
    only_off = [_slitlet(2, 2, 5, 10)]
    msa.write_msa_file(str(tmp_path / HEADER["MSAMETFL"]), only_off, "01234")
    with pytest.raises(InputError, match=r"_rate.fits: no open MSA slitlet falls on detector NRS1"):
        mos.exposure_slitlets(HEADER, (2048, 2048), refs, rate)
    with pytest.raises(InputError, match="no MOS model for EXP_TYPE 'NRS_FIXEDSLIT'"):
        mos.exposure_slitlets(dict(HEADER, EXP_TYPE="NRS_FIXEDSLIT"), (2048, 2048), refs, rate)


def test_a_shutter_outside_the_table_names_the_msa_reference(refs):
    o = Optics(refs, HEADER)
    with pytest.raises(InputError, match=r"mos_msa.asdf: msa reference Q3 has no shutter at row 366, column 1"):
        o.slit_data((3, 366, 1))
    with pytest.raises(InputError, match=r"msa reference Q4 has no shutter at row 1, column 172"):
        mos.slitlet_box(o, _slitlet(1, 4, 1, 172), (2048, 2048))
