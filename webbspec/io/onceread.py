"""Read a product file once: its bytes hashed and parsed into a :class:`~webbspec.io.datamodels.Model`.

A Stage 3 source reads each of its per-exposure slices and hashes the same bytes for its input
signature. :func:`read_hashed` reads the file into one buffer, hashes it, indexes the HDUs from
the raw header blocks (:func:`webbspec.io.realdata._walk`) and takes the image arrays as views of
the buffer: astropy parses only the PRIMARY and SCI headers (the ones the Model keeps), instead
of building every HDU (three quarters of a slice's reading). Anything else (tables other than
ASDF, scaled or blank-valued images, spectra, cubes, a file the walk does not take) is read by
:func:`webbspec.io.datamodels.read`, which gives the same Model and the same errors.
"""

import hashlib
import io

import numpy as np
from astropy.io import fits

from . import datamodels
from .datamodels import Model, Slit
from .realdata import _DTYPES, _NotPlain, _int, _str, _walk

__all__ = ["read_hashed"]


def read_hashed(path):
    """``(model, sha256 hex digest of the file)``, the model as :func:`datamodels.read` gives it."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            raw = bytearray(f.read())     # writable: the arrays are views of it
    except OSError:
        return datamodels.read(path), None    # its InputError (a missing file)
    digest = hashlib.sha256(raw).hexdigest()
    try:
        model = _parse(raw, path)
    except (_NotPlain, ValueError, KeyError, UnicodeDecodeError):
        model = None
    return (model if model is not None else datamodels.read(path)), digest


def _parse(raw, path):
    """The Model of a plain image file in ``raw``, or None for anything :func:`datamodels.read`
    must handle (module docstring)."""
    if raw[:9] != b"SIMPLE  =":
        return None
    hdus = _walk(io.BytesIO(raw), len(raw))
    primary_cards = hdus[0][0]
    if _int(primary_cards["NAXIS"]) != 0:
        return None
    groups = {}
    for cards, pos, head, _ in hdus[1:]:
        name = _str(cards["EXTNAME"]).upper() if "EXTNAME" in cards else ""
        kind = _str(cards["XTENSION"]).upper()
        if kind != "IMAGE":
            if kind == "BINTABLE" and name == "ASDF":
                continue
            return None                 # a table the Model keeps, or a spectrum
        naxis = _int(cards["NAXIS"])
        if naxis == 0:
            continue
        shape = tuple(_int(cards[f"NAXIS{k}"]) for k in range(naxis, 0, -1))
        data = _image(raw, cards, shape, pos + head)
        if data is None:
            return None
        ver = _int(cards["EXTVER"]) if "EXTVER" in cards else 1
        group = groups.setdefault(ver, Slit())
        group.arrays[name] = data
        if name in datamodels._INT_ARRAYS and data.dtype.kind == "f":   # as datamodels._read_model
            group.arrays[name] = np.nan_to_num(data).astype(np.int32)
        if name == "SCI":
            group.header = datamodels._clean_ext_header(fits.Header.fromstring(bytes(raw[pos:pos + head])))
    primary = fits.Header.fromstring(bytes(raw[:hdus[0][2]]))
    if str(primary.get("DATAMODL", "")).strip() == "IFUCubeModel":
        return None
    if not groups or any("SCI" not in g.arrays for g in groups.values()):
        return None                     # its InputError from datamodels.read
    slits = [groups[v] for v in sorted(groups)]
    datamodl = str(primary.get("DATAMODL", ""))
    layout = "multi" if (datamodl in datamodels._MULTI_MODELS or len(slits) > 1) else "single"
    return Model(primary, slits, layout, {}, None, path)


# unsigned integers stored as FITS signed ones with BZERO = 2**(bits-1) and BSCALE = 1 (DQ)
_UNSIGNED = {16: (32768, np.uint16), 32: (2147483648, np.uint32)}


def _image(raw, cards, shape, offset):
    """The image at ``offset`` of ``raw`` as astropy reads it: a view of the buffer when stored
    unscaled; an unsigned integer image (the offset BZERO) in native order as astropy gives it;
    None for any other scaling or a BLANK value."""
    bitpix = _int(cards["BITPIX"])
    dtype = _DTYPES.get(bitpix)
    scaled = {"BSCALE", "BZERO"} & set(cards)
    if dtype is None or "BLANK" in cards:
        return None
    count = int(np.prod(shape))
    if not scaled:
        return np.frombuffer(raw, dtype, count, offset).reshape(shape)
    if bitpix not in _UNSIGNED or "BZERO" not in cards or _int(cards["BZERO"]) != _UNSIGNED[bitpix][0] \
            or ("BSCALE" in cards and float(cards["BSCALE"][10:].split("/", 1)[0]) != 1.0):
        return None
    unsigned = _UNSIGNED[bitpix][1]
    stored = np.frombuffer(raw, np.dtype(dtype).newbyteorder(">").str.replace("i", "u"), count, offset)
    # adding 2**(bits-1) modulo 2**bits flips the top bit of the stored two's complement value
    return (stored.astype(unsigned) ^ unsigned(_UNSIGNED[bitpix][0])).reshape(shape)
