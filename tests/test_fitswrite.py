"""webbspec.io.fitswrite: the bytes are FITS that astropy reads back exactly."""

import io
import warnings

import numpy as np
import pytest
from astropy.io import fits

from webbspec.io import fitswrite


def image_hdu_bytes(data, header, name, ver=1):
    return b"".join(bytes(p) for p in fitswrite.image_hdu_parts(data, header, name, ver))


def _roundtrip(parts):
    hdul = fits.open(io.BytesIO(b"".join(parts)))
    hdul.verify("exception")
    return hdul


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int32, np.uint8, np.uint16,
                                   np.uint32])
def test_image_values_and_dtype(dtype):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is not None:   # the extremes, the sign bit of the unsigned ones included
        data = rng.integers(info.min, info.max, size=(3, 5, 7), endpoint=True, dtype=dtype)
        data.flat[:2] = (info.min, info.max)
    else:
        data = rng.normal(size=(3, 5, 7)).astype(dtype)
        data.flat[0] = np.nan
    hdul = _roundtrip([fitswrite.primary_bytes(fits.Header()), image_hdu_bytes(data, None, "SCI", 2)])
    got = hdul["SCI", 2].data
    assert got.dtype.newbyteorder("=") == np.dtype(dtype) and got.shape == (3, 5, 7)
    np.testing.assert_array_equal(got, data)


def test_headers_keep_every_card_kind():
    h = fits.Header()
    h["SRCTYPE"] = ("POINT", "source type")
    h["PIXAR_SR"] = 4.85e-13
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h["A_VERY_LONG_KEYWORD"] = 3          # HIERARCH
    h["LONGSTR"] = "x" * 150                 # CONTINUE cards
    h["FLAG"] = True
    h.add_history("made by a test")
    h["BZERO"] = 7                           # the writer's own: dropped
    read = fits.Header.fromstring(h.tostring())
    read["SRCTYPE"] = "EXTENDED"             # a modified read card is written as modified
    hdul = _roundtrip([fitswrite.primary_bytes(read),
                       image_hdu_bytes(np.zeros((2, 2), np.float32), read, "SCI")])
    for hdr in (hdul[0].header, hdul["SCI"].header):
        assert hdr["SRCTYPE"] == "EXTENDED" and hdr.comments["SRCTYPE"] == "source type"
        assert hdr["PIXAR_SR"] == 4.85e-13 and hdr["A_VERY_LONG_KEYWORD"] == 3
        assert hdr["LONGSTR"] == "x" * 150 and hdr["FLAG"] is True
        assert "made by a test" in str(hdr["HISTORY"])
        assert "BZERO" not in hdr
    assert hdul[0].header["SIMPLE"] is True and hdul[0].header["EXTEND"] is True
    assert hdul["SCI"].header["EXTVER"] == 1


def test_tables_follow_images():
    hdul = _roundtrip([fitswrite.primary_bytes(fits.Header()),
                       image_hdu_bytes(np.ones((2, 3), np.float32), None, "SCI"),
                       fitswrite.bintable_bytes([("FLUX", np.arange(4.0), "Jy")], name="EXTRACT1D", ver=2)])
    assert [h.name for h in hdul] == ["PRIMARY", "SCI", "EXTRACT1D"]
    np.testing.assert_array_equal(hdul["EXTRACT1D"].data["FLUX"], np.arange(4.0))
    assert hdul["EXTRACT1D"].columns["FLUX"].unit == "Jy" and hdul["EXTRACT1D"].header["EXTVER"] == 2


def test_table_columns_of_every_kind_round_trip():
    """Every column kind we write comes back with astropy's values and dtypes, and a table read
    by astropy is written back equal (fits_rec_columns), its old table keywords replaced."""
    n = 5
    rng = np.random.default_rng(3)
    u32 = np.array([0, 1, 2**31 - 1, 2**31, 2**32 - 1], np.uint32)
    cols = [("D", rng.normal(size=n), "Jy"), ("E", rng.normal(size=n).astype(np.float32), None),
            ("J", np.arange(n, dtype=np.int32) - 2, None), ("K", np.arange(n, dtype=np.int64) * 2**40, None),
            ("I", np.arange(n, dtype=np.int16), None), ("U", u32, None),
            ("U16", np.array([0, 1, 2**15, 2**16 - 2, 2**16 - 1], np.uint16), None),
            ("S", np.array(["a", "bb", "", "dd", "e"], dtype="S6"), None), ("L", np.array([1, 0, 1, 1, 0], bool), None),
            ("V", rng.normal(size=(n, 3)), "um"), ("B", np.arange(n * 4, dtype=np.uint8).reshape(n, 4), None)]
    header = fits.Header([("SRCTYPE", "POINT"), ("TTYPE1", "OLD"), ("TFIELDS", 99), ("NAXIS2", 7)])
    raw = fitswrite.bintable_bytes(cols, header, "T", 3)
    hdul = _roundtrip([fitswrite.primary_bytes(fits.Header()), raw])
    t = hdul["T", 3]
    assert t.header["SRCTYPE"] == "POINT" and t.header["TFIELDS"] == len(cols) and t.header["NAXIS2"] == n
    for name, values, unit in cols:
        got = t.data[name]
        if values.dtype.kind in "US":
            assert list(got) == [v.decode() if isinstance(v, bytes) else v for v in values.tolist()]
        else:
            assert got.dtype.newbyteorder("=") == values.dtype, name
            np.testing.assert_array_equal(got, values)
        assert (t.columns[name].unit or None) == unit
    again = _roundtrip([fitswrite.primary_bytes(fits.Header()),
                        fitswrite.bintable_bytes(fitswrite.fits_rec_columns(t.data), t.header, "T")])
    for name, *_ in cols:
        np.testing.assert_array_equal(again["T"].data[name], t.data[name])
        assert again["T"].columns[name].format == t.columns[name].format, name   # string widths kept
