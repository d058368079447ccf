"""Reading real official NIRSpec MOS products (CEERS source 933): gwcs -> per-pixel coordinates."""

import copy
import glob
import os
import shutil

import numpy as np
import pytest
from astropy.io import fits

from webbspec.io import realdata
from webbspec.errors import InputError

CEERS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "data", "ceers", "*.fits")))


def multislit_cal(path, nslits, first_id=933, src=CEERS[0]):
    """A MAST-like MultiSlitModel `_cal` holding ``nslits`` copies of a real slit (own ids and gwcs)."""
    from stdatamodels.jwst import datamodels as dm

    with dm.open(src) as slit:
        ms = dm.MultiSlitModel()
        ms.update(slit, only="PRIMARY")
        for i in range(nslits):
            s = slit.copy()
            s.meta.wcs = copy.deepcopy(slit.meta.wcs)   # each slit its own gwcs, as in a real _cal
            s.source_id = first_id + i
            s.source_name = f"1345_{first_id + i}"
            s.name = str(138 + i)
            ms.slits.append(s)
        ms.save(str(path))
    return str(path)


def test_gwcs_coordinates_match_the_file():
    m = realdata.read_stage2(CEERS[0])
    s = m.slits[0]
    with fits.open(CEERS[0]) as h:
        wl = h["WAVELENGTH"].data
        src = h["SCI"].header["SRCRA"], h["SCI"].header["SRCDEC"]
    # world wavelength = the WAVELENGTH extension to float32 rounding; identical NaN mask
    assert np.array_equal(np.isnan(s["WAVELENGTH"]), np.isnan(wl))
    assert np.nanmax(np.abs(s["WAVELENGTH"] - wl)) < 1e-6
    assert 0.5 < np.nanmin(wl) and np.nanmax(wl) < 5.5
    # referenced to the source position; NIRSpec pixels are 0.1 arcsec along the slit
    assert (s.header["WSREFRA"], s.header["WSREFDE"]) == src
    step = np.hypot(np.diff(s["XI"], axis=0), np.diff(s["ETA"], axis=0))
    assert 0.09 < np.nanmedian(step) < 0.11
    # the source (SRCYPOS in the shutter) is inside the slit: the reference lies within XI/ETA
    r = np.hypot(s["XI"], s["ETA"])
    assert np.nanmin(r) < 0.1
    for key in ("SOURCEID", "SRCNAME", "SLTNAME", "SRCXPOS", "SRCYPOS", "STLARITY", "SHUTSTA", "BUNIT",
                "PIXAR_SR"):
        assert key in s.header
    assert s["XI"].dtype == np.float32 and s["DQ"].dtype == np.uint32


def test_multislit_and_metadata_reader(tmp_path):
    path = multislit_cal(tmp_path / "jw01345062001_03101_00001_nrs2_cal.fits", 2)
    rows = realdata.list_slits(path)
    assert [(r["SOURCEID"], r["SRCNAME"], r["SLTNAME"]) for r in rows] == \
        [(933, "1345_933", "138"), (934, "1345_934", "139")]
    m = realdata.read_stage2(path)
    assert m.layout == "multi" and len(m.slits) == 2
    one = realdata.read_stage2(CEERS[0]).slits[0]
    for s in m.slits:
        np.testing.assert_array_equal(s["WAVELENGTH"], one["WAVELENGTH"])
        np.testing.assert_array_equal(s["SCI"], one["SCI"])


def test_centre_reference_without_source_position(tmp_path):
    path = tmp_path / "nopos.fits"
    shutil.copy(CEERS[0], path)
    with fits.open(path, mode="update") as h:
        del h["SCI"].header["SRCRA"]
    s = realdata.read_stage2(str(path)).slits[0]
    # the slit centre: XI/ETA are symmetric about zero
    assert abs(np.nanmax(s["ETA"]) + np.nanmin(s["ETA"])) < 0.01
    assert abs(np.nanmax(s["XI"]) + np.nanmin(s["XI"])) < 0.01


def test_bad_inputs(tmp_path):
    # no ASDF extension
    p1 = tmp_path / "noasdf_cal.fits"
    with fits.open(CEERS[0]) as h:
        fits.HDUList([x for x in h if x.name != "ASDF"]).writeto(p1)
    with pytest.raises(InputError, match="noasdf_cal.fits: no ASDF"):
        realdata.read_stage2(str(p1))
    # ASDF extension that is not ASDF
    p2 = tmp_path / "badasdf_cal.fits"
    with fits.open(CEERS[0]) as h:
        hdus = [x for x in h if x.name != "ASDF"]
        col = fits.Column(name="ASDF_METADATA", format="10B", array=np.zeros((1, 10), np.uint8))
        hdus.append(fits.BinTableHDU.from_columns([col], name="ASDF"))
        fits.HDUList(hdus).writeto(p2)
    with pytest.raises(InputError, match="badasdf_cal.fits: ASDF extension cannot be deserialized"):
        realdata.read_stage2(str(p2))
    # a _rate (assign_wcs not run)
    p3 = tmp_path / "x_rate.fits"
    shutil.copy(CEERS[0], p3)
    with fits.open(p3, mode="update") as h:
        del h[0].header["S_WCS"]
        h[0].header["DATAMODL"] = "ImageModel"
    with pytest.raises(InputError, match="x_rate.fits: assign_wcs has not run"):
        realdata.read_stage2(str(p3))
    # an x1d
    p4 = tmp_path / "x_x1d.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(name="WAVELENGTH", format="D", array=np.ones(3))], name="EXTRACT1D")]).writeto(p4)
    with pytest.raises(InputError, match="x_x1d.fits: a spectrum table"):
        realdata.read_stage2(str(p4))
    with pytest.raises(InputError, match="does not exist"):
        realdata.list_slits(str(tmp_path / "missing.fits"))
