"""webbspec.fitswrite: the bytes are FITS that astropy reads back exactly."""

import io
import warnings

import numpy as np
import pytest
from astropy.io import fits

from webbspec import fitswrite


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
    hdul = _roundtrip([fitswrite.primary_bytes(fits.Header()), fitswrite.image_hdu_bytes(data, None, "SCI", 2)])
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
                       fitswrite.image_hdu_bytes(np.zeros((2, 2), np.float32), read, "SCI")])
    for hdr in (hdul[0].header, hdul["SCI"].header):
        assert hdr["SRCTYPE"] == "EXTENDED" and hdr.comments["SRCTYPE"] == "source type"
        assert hdr["PIXAR_SR"] == 4.85e-13 and hdr["A_VERY_LONG_KEYWORD"] == 3
        assert hdr["LONGSTR"] == "x" * 150 and hdr["FLAG"] is True
        assert "made by a test" in str(hdr["HISTORY"])
        assert "BZERO" not in hdr
    assert hdul[0].header["SIMPLE"] is True and hdul[0].header["EXTEND"] is True
    assert hdul["SCI"].header["EXTVER"] == 1


def test_tables_follow_images():
    col = fits.Column(name="FLUX", format="D", unit="Jy", array=np.arange(4.0))
    table = fits.BinTableHDU.from_columns([col], name="EXTRACT1D")
    hdul = _roundtrip([fitswrite.primary_bytes(fits.Header()),
                       fitswrite.image_hdu_bytes(np.ones((2, 3), np.float32), None, "SCI"),
                       fitswrite.table_hdu_bytes(table)])
    assert [h.name for h in hdul] == ["PRIMARY", "SCI", "EXTRACT1D"]
    np.testing.assert_array_equal(hdul["EXTRACT1D"].data["FLUX"], np.arange(4.0))
    assert hdul["EXTRACT1D"].columns["FLUX"].unit == "Jy"
