"""Write FITS files from headers and arrays without building astropy HDU objects.

Every Stage 3 product and every exposure slice is a PRIMARY header plus image extensions whose
headers hold a few hundred cards (the exposure keywords travel with each slit). astropy's HDU
constructors copy each header twice, re-verify every card and look up its configuration per
card: 35-50 ms per file, 6x the science of a source. Here a header is the images of its cards
(cards read from a file keep theirs; astropy formats the rest once), the structural cards come
first as the standard requires, and the data are written big-endian. Binary tables (spectra, the
ASDF extension, reference-like tables) are written from numpy columns too: astropy's BinTableHDU
constructor imports astropy.table (and through its I/O registry asdf), 0.25 s in a job that
writes one table. The bytes are standard FITS: the tests open every product kind with astropy and
with the official data models (strict validation).
"""

import functools
import re

import numpy as np
from astropy.io import fits

__all__ = ["image_hdu_parts", "primary_bytes", "bintable_bytes", "fits_rec_columns", "BLOCK"]

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


# table structure keywords of a given header (the writer sets its own)
_TABLE_OWN = re.compile(r"^(T(TYPE|FORM|UNIT|ZERO|SCAL|DIM|NULL|DISP)\d+|TFIELDS|THEAP|NAXIS\d+)$")


def _header_bytes(structural, header, table=False):
    cards = list(structural)
    if header is not None:
        cards += [_image(c) for c in header.cards
                  if c.keyword not in _OWN and not (table and _TABLE_OWN.match(c.keyword))]
    text = "".join(cards) + "END".ljust(80)
    return _pad(text.encode("ascii"), b" ")


def primary_bytes(header):
    """A data-less PRIMARY HDU with ``header``'s cards."""
    structural = [_card("SIMPLE", True, "conforms to FITS standard"),
                  _card("BITPIX", 8, "array data type"),
                  _card("NAXIS", 0, "number of array dimensions"),
                  _card("EXTEND", True)]
    return _header_bytes(structural, header)


def image_hdu_parts(data, header, name, ver=1):
    """An IMAGE extension of ``data`` (numpy dtype kept; unsigned via BZERO) named ``name``, as
    [header bytes, big-endian array, zero padding] to write one after the other: a big-endian
    array (as astropy reads one) is written as it is, without a copy."""
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
    payload = np.ascontiguousarray(data, dtype=dtype.newbyteorder(">"))
    return [_header_bytes(structural, header), payload.reshape(-1).view(np.uint8),
            b"\0" * (-payload.nbytes % BLOCK)]


# TFORM letter of each numpy kind/size; unsigned integers are stored signed with TZERO
_TFORM = {"f8": "D", "f4": "E", "i8": "K", "i4": "J", "i2": "I", "u1": "B", "b1": "L"}


def bintable_bytes(columns, header=None, name=None, ver=None):
    """A BINTABLE extension from ``columns``: (name, values, unit or None) with values of shape
    (nrows,) or (nrows, repeat) (float, int, uint8/16/32, bool or bytes/str); ``header``'s
    cards follow the structural ones (its table keywords are replaced)."""
    nrows = len(columns[0][1]) if columns else 0
    fields, tcards, values = [], [], []
    for i, (cname, vals, unit) in enumerate(columns, start=1):
        v = np.asarray(vals)
        if v.dtype.kind == "U":
            v = np.char.encode(v, "ascii")
        repeat = int(np.prod(v.shape[1:], dtype=int)) if v.ndim > 1 else 1
        zero = None
        if v.dtype.kind == "S":
            code, disk, repeat = f"{v.dtype.itemsize}A", v.dtype, 1
        else:
            key = f"{v.dtype.kind}{v.dtype.itemsize}"
            if v.dtype in _UNSIGNED:
                signed, zero = _UNSIGNED[v.dtype]
                v = (v ^ v.dtype.type(zero)).view(signed)
                key = f"i{v.dtype.itemsize}"
            if key not in _TFORM:
                raise TypeError(f"no FITS table type for column {cname} ({v.dtype})")
            code = f"{repeat}{_TFORM[key]}" if repeat != 1 else _TFORM[key]
            disk = v.dtype.newbyteorder(">") if key != "b1" else np.dtype("S1")
            if key == "b1":
                v = np.where(v, b"T", b"F")
        fields.append((f"f{i}", disk, (repeat,)) if repeat != 1 else (f"f{i}", disk))
        values.append(v.reshape(nrows, repeat) if repeat != 1 else v.reshape(nrows))
        tcards += [_card(f"TTYPE{i}", cname), _card(f"TFORM{i}", code)]
        if unit:
            tcards.append(_card(f"TUNIT{i}", str(unit)))
        if zero is not None:
            tcards.append(_card(f"TZERO{i}", zero))
    rows = np.empty(nrows, dtype=fields)
    for (fname, *_), v in zip(fields, values):
        rows[fname] = v
    structural = [_card("XTENSION", "BINTABLE", "binary table extension"),
                  _card("BITPIX", 8, "array data type"), _card("NAXIS", 2, "number of array dimensions"),
                  _card("NAXIS1", rows.dtype.itemsize, "length of dimension 1"),
                  _card("NAXIS2", nrows, "length of dimension 2"),
                  _card("PCOUNT", 0, "number of group parameters"), _card("GCOUNT", 1, "number of groups"),
                  _card("TFIELDS", len(columns), "number of table fields")] + tcards
    if name:
        structural.append(_card("EXTNAME", name, "extension name"))
    if ver is not None:
        structural.append(_card("EXTVER", int(ver)))
    return _header_bytes(structural, header, table=True) + _pad(rows.tobytes(), b"\0")


def fits_rec_columns(data):
    """The (name, values, unit) columns of a table read by astropy (a FITS_rec), for
    :func:`bintable_bytes`."""
    cols = []
    for c in data.columns:
        values = np.asarray(data[c.name])
        fmt = str(c.format)
        if fmt.endswith("A") and values.dtype.kind in "US":   # keep the declared width
            values = np.char.encode(values, "ascii") if values.dtype.kind == "U" else values
            values = values.astype(f"S{int(fmt[:-1] or 1)}")
        cols.append((c.name, values, c.unit))
    return cols
