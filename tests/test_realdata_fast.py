"""The fast paths of webbspec.io.realdata give what astropy and gwcs give: the raw HDU index (astropy
reads only the HDUs asked for) and the gwcs evaluated step by step (no compound model built)."""

import gzip
import os
import shutil
import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))
from test_realdata import CEERS, multislit_cal  # noqa: E402

from webbspec.io import realdata  # noqa: E402

pytest.importorskip("gwcs")
from test_read_official_layouts import LRS, LRS_BBOX, gwcs_of, ifu_layout  # noqa: E402


def _same_hdus(path):
    raw = realdata._RawFits(path)
    ref = realdata._AstropyFits(fits.open(path, memmap=False))
    with raw, ref:
        assert [(e.name, e.ver, e.kind, e.naxis) for e in raw.entries] == \
            [(e.name, e.ver, e.kind, e.naxis) for e in ref.entries]
        for i, e in enumerate(raw.entries):
            if e.kind == "IMAGE" and e.naxis:   # read straight from the file (DQ: scaled, astropy)
                got, want = raw.array(i), ref.hdu(i).data
                assert np.array_equal(got, want, equal_nan=True) and got.dtype == want.dtype
                assert got.shape == want.shape and got.flags.writeable
            a, b = raw.hdu(i), ref.hdu(i)
            assert a.header == b.header and type(a) is type(b)
            if e.kind == "IMAGE" and e.naxis:
                assert np.array_equal(a.data, b.data, equal_nan=True) and a.data.dtype == b.data.dtype
            if e.name == "SCI":
                small = e.slit_header()
                assert all(small[k] == b.header[k] for k in realdata.SLIT_KEYS if k in b.header)
                assert set(small) == {k for k in realdata.SLIT_KEYS if k in b.header}
            if e.name == "ASDF":
                assert a.data["ASDF_METADATA"][0].tobytes() == b.data["ASDF_METADATA"][0].tobytes()


def test_raw_index_is_what_astropy_reads(tmp_path):
    _same_hdus(CEERS[0])
    _same_hdus(multislit_cal(tmp_path / "ms_cal.fits", 3))


def test_long_string_and_fallback_to_astropy(tmp_path):
    path = tmp_path / "long_cal.fits"
    shutil.copy(CEERS[0], path)
    name = "a source name longer than one card can hold, " * 3
    with fits.open(path, mode="update") as h:
        h["SCI"].header["SRCNAME"] = name          # written with CONTINUE cards
    _same_hdus(str(path))
    assert realdata.list_slits(str(path))[0]["SRCNAME"] == name.rstrip()   # as astropy reads it
    # gzip: not walked, astropy reads it; the same rows and arrays
    gz = tmp_path / "long_cal.fits.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(realdata._NotPlain):
        realdata._RawFits(str(gz))
    assert realdata.list_slits(str(gz)) == realdata.list_slits(str(path))
    a, b = realdata.read_stage2(str(gz)).slits[0], realdata.read_stage2(str(path)).slits[0]
    assert a.header == b.header and all(np.array_equal(a[k], b[k], equal_nan=True) for k in b.arrays)


def test_keep_sees_the_slit_keywords(tmp_path):
    path = multislit_cal(tmp_path / "ms_cal.fits", 3)
    seen = []

    def keep(index, header):
        seen.append((index, header["SOURCEID"], header["SLTNAME"]))
        return index == 2

    m = realdata.read_stage2(path, keep=keep)
    assert seen == [(1, 933, "138"), (2, 934, "139"), (3, 935, "140")]
    assert [s.header["SOURCEID"] for s in m.slits] == [934]


def _both(w, shape):
    y, x = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return w(x, y), realdata._evaluate(w, x, y)


def _identical(a, b):
    assert len(a) == len(b) == 3
    for p, q in zip(a, b):
        assert p.dtype == q.dtype and p.shape == q.shape and np.array_equal(p, q, equal_nan=True)


def test_step_by_step_gwcs_is_gwcs():
    # the real NIRSpec MOS slit: bit for bit, NaN off the slit / outside the bounding box
    with realdata._fits_open(CEERS[0]) as fx:
        af, (w,), _ = realdata._load_tree(fx, CEERS[0])
        shape = fx.hdu(1).data.shape
        with af:
            a, b = _both(w, shape)
    _identical(a, b)
    assert 0 < np.isnan(b[2]).sum() < b[2].size
    # an IFU regions selector and a plain slit region, each with a bounding box that cuts pixels
    from gwcs import selector

    slices, regions, bbox = ifu_layout("NRS_IFU")
    det2world = selector.RegionsSelector(
        ("x", "y"), ("ra", "dec", "lam"), label_mapper=selector.LabelMapperArray(slices),
        selector={k: r.transform() for k, r in regions.items()})
    for w, shape in ((gwcs_of(det2world, bbox), slices.shape), (gwcs_of(LRS.transform(), LRS_BBOX), (500, 400))):
        a, b = _both(w, shape)
        _identical(a, b)
        assert np.isnan(b[0]).any()
    # no bounding box
    w = gwcs_of(LRS.transform(), LRS_BBOX)
    w.bounding_box = None
    _identical(*_both(w, (40, 30)))
