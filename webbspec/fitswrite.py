"""Write FITS files from headers and arrays without building astropy HDU objects.

Every Stage 3 product and every exposure slice is a PRIMARY header plus image extensions whose
headers hold a few hundred cards (the exposure keywords travel with each slit). astropy's HDU
constructors copy each header twice, re-verify every card and look up its configuration per
card: 35-50 ms per file, 6x the science of a source. Here a header is the images of its cards
(cards read from a file keep theirs; astropy formats the rest once), the structural cards come
first as the standard requires, and the data are written big-endian; table extensions (spectra,
the ASDF extension) are serialized by astropy. The bytes are standard FITS: the tests open every
product kind with astropy and with the official data models (strict validation).
"""

import functools
import io

import numpy as np
from astropy.io import fits

__all__ = ["image_hdu_bytes", "primary_bytes", "table_hdu_bytes", "BLOCK"]

BLOCK = 2880
# keywords the writer sets itself: dropped from the given headers
_OWN = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "EXTNAME",
        "EXTVER", "BZERO", "BSCALE", "CHECKSUM", "DATASUM", "END"}
_BITPIX = {np.dtype(np.uint8): 8, np.dtype(np.int16): 16, np.dtype(np.int32): 32,
           np.dtype(np.int64): 64, np.dtype(np.float32): -32, np.dtype(np.float64): -64}
# unsigned integers are stored signed with BZERO = 2**(bits-1), the FITS convention
_UNSIGNED = {np.dtype(np.uint16): (np.int16, 2 ** 15), np.dtype(np.uint32): (np.int32, 2 ** 31),
             np.dtype(np.uint64): (np.int64, 2 ** 63)}


@functools.lru_cache(maxsize=4096)
def _card(keyword, value, comment=""):
    return fits.Card(keyword, value, comment).image


def _image(card):
    """The card's 80-character image(s): as read when unmodified (astropy's ``image`` would
    verify the card again on every call), else formatted by astropy."""
    image = getattr(card, "_image", None)
    if image and not getattr(card, "_modified", True):
        return image
    return card.image


def _pad(raw, fill):
    return raw + fill * (-len(raw) % BLOCK)


def _header_bytes(structural, header):
    cards = list(structural)
    if header is not None:
        cards += [_image(c) for c in header.cards if c.keyword not in _OWN]
    text = "".join(cards) + "END".ljust(80)
    return _pad(text.encode("ascii"), b" ")


def primary_bytes(header):
    """A data-less PRIMARY HDU with ``header``'s cards."""
    structural = [_card("SIMPLE", True, "conforms to FITS standard"),
                  _card("BITPIX", 8, "array data type"),
                  _card("NAXIS", 0, "number of array dimensions"),
                  _card("EXTEND", True)]
    return _header_bytes(structural, header)


def image_hdu_bytes(data, header, name, ver=1):
    """An IMAGE extension of ``data`` (numpy dtype kept; unsigned via BZERO) named ``name``."""
    data = np.asarray(data)
    dtype = data.dtype.newbyteorder("=")
    zero = None
    if dtype in _UNSIGNED:
        signed, zero = _UNSIGNED[dtype]
        # x - 2**(bits-1) as signed is x with its top bit flipped, read as signed
        data = (data.astype(dtype) ^ dtype.type(zero)).view(signed)
        dtype = np.dtype(signed)
    if dtype not in _BITPIX:
        raise TypeError(f"no FITS image type for {data.dtype}")
    structural = [_card("XTENSION", "IMAGE", "Image extension"),
                  _card("BITPIX", _BITPIX[dtype], "array data type"),
                  _card("NAXIS", data.ndim, "number of array dimensions")]
    structural += [_card(f"NAXIS{i}", n) for i, n in enumerate(reversed(data.shape), start=1)]
    structural += [_card("PCOUNT", 0, "number of parameters"), _card("GCOUNT", 1, "number of groups")]
    if zero is not None:
        structural += [_card("BSCALE", 1), _card("BZERO", zero)]
    structural += [_card("EXTNAME", name, "extension name"), _card("EXTVER", int(ver))]
    payload = np.ascontiguousarray(data, dtype=dtype.newbyteorder(">")).tobytes()
    return _header_bytes(structural, header) + _pad(payload, b"\0")


def table_hdu_bytes(hdu):
    """A table HDU (astropy object) as bytes, serialized by astropy."""
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf, output_verify="ignore")
    return buf.getvalue()[BLOCK:]   # an empty PRIMARY is one block
