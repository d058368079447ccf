"""Reading official JWST Stage 2 products: the gwcs turned into per-pixel coordinate arrays.

An official `_cal` (MultiSlitModel, SlitModel or ImageModel) keeps its WCS as a gwcs in the ASDF
extension. We deserialize that tree ONCE per exposure (asdf + gwcs; stdatamodels only registers
the JWST transform tags through entry points, it is never imported), evaluate every slit's
detector->world transform on all pixels of its cutout, and from then on the slit carries
WAVELENGTH [um] and XI/ETA [arcsec] arrays (docs/internals.md). Arrays come from the FITS HDUs,
never from the ASDF tree (its arrays are unresolved ``fits:`` references).

The gwcs of an extracted slit takes cutout pixel coordinates (extract_2d prepends the SLTSTRT
shift), and its bounding box is in those coordinates, so pixel (x, y) of the cutout arrays is
evaluated at (x, y): pixels outside the bounding box / off the slit come back NaN.

Reading a slit costs only its own HDUs: the file's HDUs are indexed from the raw header blocks
(:class:`_RawFits`), so a part of a 10,000-HDU exposure does not parse every header.

Public: :func:`read_stage2` (full read + coordinates), :class:`Stage2Reader` (the same, one slit
at a time), :func:`list_slits` (cheap, headers only),
:func:`read_product` (any product via :func:`webbspec.io.datamodels.read`), :func:`slit_coordinates`.
"""

import logging
import os
import re
import warnings

import numpy as np
from astropy.io import fits

from . import datamodels
from .asdftree import open_shared
from .datamodels import Model, Slit
from ..errors import InputError
from .skycoords import radec_to_xieta

__all__ = ["read_stage2", "Stage2Reader", "list_slits", "read_product", "slit_coordinates", "reference_of",
           "STAGE2_MODELS", "SLIT_KEYS"]

log = logging.getLogger(__name__)

# DATAMODL values of the Stage 2 per-exposure products we split into sources.
STAGE2_MODELS = ("MultiSlitModel", "SlitModel", "ImageModel", "IFUImageModel")
# Slit keywords kept from the file (docs/jwst-products.md); others in the SCI header are kept too.
SLIT_KEYS = ("SLTNAME", "SLITID", "SOURCEID", "SRCNAME", "SRCALIAS", "SRCXPOS", "SRCYPOS", "STLARITY",
             "SHUTSTA", "SHUTTRID", "SRCTYPE", "SRCRA", "SRCDEC", "BUNIT", "PIXAR_SR", "PIXAR_A2",
             "SLTSTRT1", "SLTSTRT2", "SLTSIZE1", "SLTSIZE2", "DISPAXIS", "SPORDER", "WAVECOR")
# Per-pixel arrays copied from the HDUs of a slit group.
_ARRAYS = ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT", "WAVELENGTH", "BARSHADOW",
           "FLATFIELD_PS", "FLATFIELD_UN", "PATHLOSS_PS", "PATHLOSS_UN", "PHOTOM_PS", "PHOTOM_UN",
           "AREA")


def _fits_open(path):
    if not os.path.exists(path):
        raise InputError(path, "file does not exist")
    try:
        return _RawFits(path)
    except _NotPlain:
        pass
    try:
        return _AstropyFits(fits.open(path, memmap=False))
    except Exception as exc:
        raise InputError(path, f"not a readable FITS file ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------- HDU index
#
# A MOS `_cal` of 1,000 slits has ~10,000 HDUs and astropy parses every header to open it
# (a quarter of an exp_to_source part). _RawFits walks the raw header blocks instead, parsing only
# the cards of _WANTED, and astropy reads just the HDUs asked for, from their bytes.
# _AstropyFits gives the same view of any file the walk does not handle (gzip, random groups,
# tile-compressed images, broken headers), so astropy keeps the last word on those.

_CARD, _BLOCK = 80, 2880
_STRUCT = ("XTENSION", "EXTNAME", "EXTVER", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "GROUPS", "ZIMAGE",
           "BSCALE", "BZERO", "BLANK")
# the array dtype of an unscaled image (as astropy reads it)
_DTYPES = {8: "uint8", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_WANTED = {k.ljust(8).encode() for k in _STRUCT + SLIT_KEYS + tuple(f"NAXIS{i}" for i in range(1, 1000))}
_END_CARD = b"END".ljust(_CARD)


class _NotPlain(Exception):
    """The file is not one the raw walk handles: astropy opens it."""


class _Entry:
    """One HDU: upper-cased EXTNAME, EXTVER, kind ("PRIMARY", "IMAGE", "BINTABLE", ...), NAXIS."""
    __slots__ = ("name", "ver", "kind", "naxis", "cards", "span")

    def __init__(self, name, ver, kind, naxis, cards, span=None):
        self.name, self.ver, self.kind, self.naxis, self.cards, self.span = name, ver, kind, naxis, cards, span

    def slit_header(self):
        """The SLIT_KEYS cards of this HDU as a :class:`fits.Header` (astropy parses the values)."""
        if isinstance(self.cards, fits.Header):
            return self.cards
        return fits.Header.fromstring("".join(c for k, c in self.cards.items() if k in SLIT_KEYS))


def _int(card):
    return int(card[10:].split("/", 1)[0])


def _str(card):
    m = re.match(r"\s*'((?:[^']|'')*)'", card[10:])
    if m is None:
        raise _NotPlain(card)
    return m.group(1).replace("''", "'").strip()


def _walk(f, size):
    """``[(cards, header offset, header+data bytes)]`` of every HDU of the open file ``f``."""
    out, pos = [], 0
    while pos < size:
        f.seek(pos)
        cards, nblocks, last = {}, 0, None
        while True:
            block = f.read(_BLOCK)
            if len(block) < _BLOCK:
                raise _NotPlain("header ends before its END card")
            nblocks += 1
            end = None
            for i in range(0, _BLOCK, _CARD):
                key = block[i:i + 8]
                if key == b"CONTINUE" and last is not None:   # long string of a wanted card
                    cards[last] += block[i:i + _CARD].decode("ascii")
                    continue
                last = None
                if key in _WANTED:
                    last = key.rstrip().decode()
                    if last in cards:   # a repeated keyword: the first one counts (as in astropy)
                        last = None
                    else:
                        cards[last] = block[i:i + _CARD].decode("ascii")
                elif key == b"END     ":
                    if block[i:i + _CARD] != _END_CARD:
                        raise _NotPlain("malformed END card")
                    end = i
                    break
            if end is not None:
                break
        if (pos == 0) != ("XTENSION" not in cards) or "GROUPS" in cards or "ZIMAGE" in cards:
            raise _NotPlain("not a plain image/table HDU")
        naxis = _int(cards["NAXIS"])
        nbytes = 0
        if naxis:
            n = 1
            for i in range(1, naxis + 1):
                n *= _int(cards[f"NAXIS{i}"])
            gcount = _int(cards["GCOUNT"]) if "GCOUNT" in cards else 1
            pcount = _int(cards["PCOUNT"]) if "PCOUNT" in cards else 0
            nbytes = abs(_int(cards["BITPIX"])) // 8 * gcount * (pcount + n)
        span = nblocks * _BLOCK + -(-nbytes // _BLOCK) * _BLOCK
        out.append((cards, pos, nblocks * _BLOCK, span))
        pos += span
    if pos != size:
        raise _NotPlain("truncated")
    return out


_READERS = {"PRIMARY": fits.PrimaryHDU, "IMAGE": fits.ImageHDU, "BINTABLE": fits.BinTableHDU,
            "TABLE": fits.TableHDU}


class _RawFits:
    """The HDUs of a plain FITS file, indexed from the raw header blocks."""

    def __init__(self, path):
        self._f = open(path, "rb")
        try:
            if self._f.read(9) != b"SIMPLE  =":
                raise _NotPlain("no SIMPLE card")
            self.entries = []
            for cards, pos, head, span in _walk(self._f, os.fstat(self._f.fileno()).st_size):
                first = not self.entries
                kind = "PRIMARY" if first else _str(cards["XTENSION"]).upper()
                if kind not in _READERS:
                    raise _NotPlain(f"XTENSION {kind}")
                name = _str(cards["EXTNAME"]) if "EXTNAME" in cards else "PRIMARY" if first else ""
                ver = _int(cards["EXTVER"]) if "EXTVER" in cards else 1
                self.entries.append(_Entry(name.upper(), ver, kind, _int(cards["NAXIS"]), cards,
                                           (pos, head, span)))
        except (_NotPlain, ValueError, KeyError, UnicodeDecodeError) as exc:
            self._f.close()
            raise _NotPlain(str(exc)) from None
        self._hdus = {}

    def array(self, i):
        """The data of image HDU ``i``: read straight into an array when unscaled (astropy
        building each HDU cost more than reading its data)."""
        e = self.entries[i]
        dtype = _DTYPES.get(_int(e.cards["BITPIX"]))
        if i in self._hdus or dtype is None or {"BSCALE", "BZERO", "BLANK"} & set(e.cards):
            return np.array(self.hdu(i).data)
        shape = tuple(_int(e.cards[f"NAXIS{k}"]) for k in range(e.naxis, 0, -1))
        buf = bytearray(int(np.prod(shape)) * np.dtype(dtype).itemsize)
        self._f.seek(e.span[0] + e.span[1])
        if self._f.readinto(buf) != len(buf):
            return np.array(self.hdu(i).data)
        return np.frombuffer(buf, dtype).reshape(shape)

    def header(self, i):
        """The header of HDU ``i`` as astropy parses it (its header bytes alone)."""
        if i in self._hdus:
            return self._hdus[i].header
        pos, head, _ = self.entries[i].span
        self._f.seek(pos)
        return fits.Header.fromstring(self._f.read(head))

    def reopen(self, path):
        self._f = open(path, "rb")

    def hdu(self, i):
        """HDU ``i`` as astropy reads it (its bytes alone)."""
        if i not in self._hdus:
            pos, _, span = self.entries[i].span
            self._f.seek(pos)
            self._hdus[i] = _READERS[self.entries[i].kind].fromstring(self._f.read(span))
        return self._hdus[i]

    def close(self):
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _AstropyFits(_RawFits):
    """The same view of an HDUList astropy opened."""

    def __init__(self, hdul):
        self._hdul = hdul
        self.entries = []
        for i, h in enumerate(hdul):
            kind = "PRIMARY" if i == 0 else "IMAGE" if isinstance(h, fits.ImageHDU) else \
                "BINTABLE" if isinstance(h, fits.BinTableHDU) else type(h).__name__
            self.entries.append(_Entry(h.name.upper(), h.header.get("EXTVER", 1), kind,
                                       h.header.get("NAXIS", 0), h.header))

    def array(self, i):
        return np.array(self._hdul[i].data)

    def header(self, i):
        return self._hdul[i].header

    def reopen(self, path):
        self._hdul = fits.open(path, memmap=False)

    def hdu(self, i):
        return self._hdul[i]

    def close(self):
        self._hdul.close()


def _classify(fx, path):
    """Raise InputError unless ``fx`` is a Stage 2 per-exposure product with slits."""
    names = {e.name for e in fx.entries}
    primary = fx.hdu(0).header
    model = str(primary.get("DATAMODL", "")).strip()
    if names & {"EXTRACT1D", "COMBINE1D"}:
        raise InputError(path, f"a spectrum table ({model or 'x1d/c1d'}), not a Stage 2 _cal product")
    if "SCI" not in names:
        raise InputError(path, "no SCI extension: not a Stage 2 _cal product")
    if model and model not in STAGE2_MODELS:
        raise InputError(path, f"DATAMODL {model} is not a Stage 2 per-exposure product "
                               f"({', '.join(STAGE2_MODELS)})")
    if "WMAP" in names or str(primary.get("S_IFUCUB", "")).upper() == "COMPLETE":
        raise InputError(path, "an IFU cube (_s3d) product, not a Stage 2 _cal product")
    if "WHT" in names or str(primary.get("S_RESAMP", "")).upper() == "COMPLETE":
        raise InputError(path, "a resampled (_s2d) product, not a Stage 2 _cal product")
    return model


def _is_ours(fx):
    names = {e.name for e in fx.entries}
    return "XI" in names and "ETA" in names


def _groups(fx):
    """``{extver: {EXTNAME: HDU index}}`` of the image extensions with data."""
    groups = {}
    for i, e in enumerate(fx.entries[1:], start=1):
        if e.kind == "IMAGE" and e.naxis > 0:
            groups.setdefault(e.ver, {})[e.name] = i
    return dict(sorted(groups.items()))


def _clean(header):
    return datamodels._clean_ext_header(header)


def list_slits(path):
    """Slit metadata from the FITS headers only (no gwcs): ``[{EXTVER, SLTNAME, SOURCEID, SRCNAME,
    SRCTYPE, SRCRA, SRCDEC, ...}]``. Cheap: used to plan the per-source jobs."""
    path = str(path)
    with _fits_open(path) as fx:
        _classify(fx, path)
        out = []
        for e in fx.entries[1:]:
            if e.name != "SCI":
                continue
            h = e.slit_header()
            row = {"EXTVER": int(e.ver)}
            for key in SLIT_KEYS:
                if key in h:
                    row[key] = h[key]
            out.append(row)
        return out


# ---------------------------------------------------------------- gwcs


def _load_tree(fx, path, only=None):
    """The open ASDF file of the extension, its WCS objects (one per slit, or per slit index of
    ``only``) and the number of slits in the tree.

    Arrays inside the gwcs (e.g. tabular models) load lazily from the ASDF blocks: keep the
    returned file open until every WCS has been evaluated (the fits: data references of the
    tree are never resolved).
    """
    at = [i for i, e in enumerate(fx.entries) if e.name == "ASDF"]
    if not at:
        raise InputError(path, "no ASDF extension: the gwcs of the exposure is missing")
    try:
        raw = fx.hdu(at[0]).data["ASDF_METADATA"][0].tobytes()
        af, tree, total = open_shared(raw, only, wcs_only=True)   # each distinct transform built once
        # touch the WCS objects now so a broken tree fails here, with the file named
        if total:
            wcs = [s.get("meta", {}).get("wcs") for s in tree["slits"]]
        else:   # a single-slit or image product: one WCS for the whole file
            wcs, total = [tree.get("meta", {}).get("wcs")], 1
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"ASDF extension cannot be deserialized ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return af, wcs, total


def slit_coordinates(wcs, shape):
    """(RA, Dec [deg], lambda [um]) of every pixel centre of a cutout of ``shape`` (float64)."""
    ny, nx = shape[-2:]
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ra, dec, lam = _evaluate(wcs, x, y)
    ra, dec, lam = (np.asarray(a, float) for a in (ra, dec, lam))
    if np.nanmedian(lam) < 1e-3:   # some transforms return metres although the frame says um
        lam = lam * 1e6
    return ra, dec, lam


def _evaluate(wcs, x, y):
    """``wcs(x, y)`` without the compound model gwcs builds on every call (a third of the gwcs
    time): the pixels inside the bounding box go through the step transforms one after the
    other, as the compound would evaluate them; the others are NaN, as gwcs fills them."""
    steps = [step.transform for step in wcs.pipeline[:-1]]
    if not steps or any(t is None or t.uses_quantity for t in steps) or wcs.output_frame is None:
        return wcs(x, y)   # units to add or strip, or no transform: let gwcs do it

    def run(inputs):
        for t in steps:
            out = t(*inputs)
            inputs = out if isinstance(out, tuple) else (out,)
        return inputs

    bbox = wcs.bounding_box   # the first step's, which gwcs puts on its compound
    return tuple(run((x, y)) if bbox is None else bbox.evaluate(run, [x, y], np.nan))


def reference_of(header, ra, dec):
    """The coordinate reference of a slit: SRCRA/SRCDEC if finite, else the centre of the slit."""
    sra, sdec = header.get("SRCRA"), header.get("SRCDEC")
    try:
        sra, sdec = float(sra), float(sdec)
    except (TypeError, ValueError):
        sra = sdec = np.nan
    if np.isfinite(sra) and np.isfinite(sdec):
        return sra, sdec
    good = np.isfinite(ra) & np.isfinite(dec)
    if not good.any():
        return np.nan, np.nan
    # centre of the on-sky footprint (unwrap RA around its first finite value)
    r = ra[good]
    r = r[0] + (r - r[0] + 180.0) % 360.0 - 180.0
    return float(0.5 * (r.min() + r.max()) % 360.0), float(0.5 * (dec[good].min() + dec[good].max()))


# ---------------------------------------------------------------- full read


def read_stage2(path, *, coords=True, keep=None):
    """Read a Stage 2 `_cal` into a :class:`Model` whose slits carry WAVELENGTH/XI/ETA.

    Official products: the gwcs of each slit is evaluated on its cutout (one ASDF
    deserialization for the whole exposure); WSREFRA/WSREFDE = the slit's SRCRA/SRCDEC if
    finite, else the slit centre. Our own products (XI/ETA extensions present) are read as they
    are. ``coords=False`` skips the gwcs (arrays and keywords only). ``keep(index, header)``
    (index from 1; ``header`` holds the SLIT_KEYS keywords of the slit's SCI header) selects the
    slits to read; the others' arrays and gwcs are never read.
    """
    with Stage2Reader(path, coords=coords, keep=keep) as r:
        slits = [r.slit(j) for j in range(len(r.headers))]
        multi = len(slits) > 1 or r.primary.get("DATAMODL") == "MultiSlitModel"
        return Model(r.primary, slits, "multi" if multi else "single", r.tables, None, r.path)


class Stage2Reader:
    """A Stage 2 `_cal` opened to be read one slit at a time (:meth:`slit`), as exp_to_source
    streams an exposure: only the slit being split holds arrays in memory.

    Opening checks the product, indexes its HDUs and deserializes the gwcs of the kept slits
    (arguments as :func:`read_stage2`). ``primary`` (PRIMARY header), ``headers`` (the
    SLIT_KEYS keywords of each kept slit, in file order), ``tables`` (binary tables but ASDF).
    """

    def __init__(self, path, *, coords=True, keep=None):
        self.path = path = str(path)
        self._fx = fx = _fits_open(path)
        self._af = None
        try:
            datamodl = _classify(fx, path)
            self.primary = fx.hdu(0).header.copy()
            groups = _groups(fx)
            if not datamodl:
                self.primary["DATAMODL"] = "MultiSlitModel" if len(groups) > 1 else "SlitModel"
            self._ours = _is_ours(fx)
            if coords and not self._ours and str(self.primary.get("S_WCS", "")).upper() != "COMPLETE":
                raise InputError(path, "assign_wcs has not run (S_WCS not COMPLETE): not a Stage 2 "
                                       "_cal product (a _rate?)")
            self._hdus, self.headers, kept = [], [], []
            for index, (ver, hdus) in enumerate(groups.items(), start=1):
                if "SCI" not in hdus:
                    raise InputError(path, f"slit group EXTVER={ver} has no SCI")
                header = fx.entries[hdus["SCI"]].slit_header()
                if keep is not None and not keep(index, header):
                    continue
                kept.append(index - 1)
                self._hdus.append(hdus)
                self.headers.append(header)
            self.tables = {e.name: fx.hdu(i).data for i, e in enumerate(fx.entries) if i
                           and e.kind == "BINTABLE" and e.name != "ASDF"}
            self._wcs = None
            if coords and not self._ours and kept:
                only = None if len(kept) == len(groups) else kept
                self._af, self._wcs, total = _load_tree(fx, path, only)
                if total != len(groups):
                    raise InputError(path, f"ASDF tree has {total} slit WCS for {len(groups)} slits")
        except BaseException:
            self.close()
            raise

    def slit(self, j):
        """Kept slit ``j`` (from 0) with its arrays, and its coordinates evaluated from the gwcs
        (InputError naming the file and slit if they cannot be)."""
        hdus = self._hdus[j]
        header = _clean(self._fx.header(hdus["SCI"]))
        arrays = {name: self._fx.array(i) for name, i in hdus.items()
                  if name in _ARRAYS or (self._ours and name in datamodels.COORD_EXTS)}
        slit = Slit(header, arrays)
        if self._wcs is not None:
            _attach_coordinates(slit, self._wcs[j], self.path)
        return slit

    def reopen(self):
        """Open the file again, for a forked process (a file offset is shared across a fork)."""
        self._fx.reopen(self.path)

    def close(self):
        if self._af is not None:
            self._af.close()
        self._fx.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _attach_coordinates(slit, wcs, path):
    # an image-like product (ImageModel, IFUImageModel) has no slit name: the file alone
    where = f"{path}[slit {slit.name}]" if slit.name else path
    if wcs is None:
        raise InputError(where, "no gwcs for this slit in the ASDF extension")
    try:
        ra, dec, lam = slit_coordinates(wcs, slit.shape)
    except Exception as exc:
        raise InputError(where, f"gwcs evaluation failed ({type(exc).__name__}: {exc})") from None
    ra0, dec0 = reference_of(slit.header, ra, dec)
    if not np.isfinite(ra0):
        raise InputError(where, "gwcs gives no finite sky position on the slit")
    xi, eta = radec_to_xieta(ra, dec, ra0, dec0)
    slit["WAVELENGTH"] = lam.astype(np.float32)
    slit["XI"] = xi.astype(np.float32)
    slit["ETA"] = eta.astype(np.float32)
    slit.header["WSREFRA"] = (float(ra0), "[deg] RA of the XI/ETA reference")
    slit.header["WSREFDE"] = (float(dec0), "[deg] Dec of the XI/ETA reference")


def read_product(path):
    """Any product (`_cal`, `_s2d`, `_crf`, `_x1d`, `_c1d`) as :mod:`webbspec.io.datamodels` reads it."""
    return datamodels.read(path)
