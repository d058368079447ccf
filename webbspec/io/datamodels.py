"""Reading and writing JWST product layouts with astropy.io.fits.

Two in-memory shapes cover every product we read or write:

* :class:`Model` -- image-like and slit-like data: a PRIMARY header plus one or more
  :class:`Slit` groups (SCI, ERR, DQ, VAR_*, WAVELENGTH, ... with the slit keywords in the SCI
  header). ``layout`` says how the groups sit on disk: ``"single"`` (one group: `_rate`, MIRI
  `_cal`, a SlitModel `_s2d`) or ``"multi"`` (EXTVER 1..N: MultiSlitModel `_cal`, source-based
  MultiExposureModel `_cal`/`_crf`).
* :class:`SpecModel` -- tables of spectra: EXTRACT1D (`_x1d`) or COMBINE1D (`_c1d`) BinTables with the
  official column names, order, dtypes and units.

IFU cubes (`_s3d`) are their own type, :class:`webbspec.io.cubes.Cube`: :func:`read` of an
IFUCubeModel file returns one and :func:`write` of one writes it (through ``io.cubes``), so a
cube travels through the step plumbing like any product.

Per-pixel coordinates (see ``docs/internals.md``) travel as extra image extensions of a slit:
WAVELENGTH [um] and XI/ETA [arcsec, float32], the tangent-plane offsets from the slit header's
WSREFRA/WSREFDE [deg]. Writes are atomic (temporary file + rename), so a killed job never leaves a
truncated product that a later job would read.
"""

import io
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from . import fitswrite
from .atomicfile import replacing
from ..errors import InputError
from ..modes import mode_for

__all__ = [
    "Slit", "Model", "SpecModel", "Spectrum", "read", "write", "read_header",
    "ARRAY_EXTS", "COORD_EXTS", "X1D_COLUMNS", "C1D_COLUMNS", "new_spec_table", "asdf_hdu_bytes", "copy_header",
    "recorded", "as_written",
]

# Image extensions with their on-disk dtype, in the order the official products use.
ARRAY_EXTS = {
    "SCI": np.float32,
    "ERR": np.float32,
    "DQ": np.uint32,
    "VAR_POISSON": np.float32,
    "VAR_RNOISE": np.float32,
    "VAR_FLAT": np.float32,
}
# Coordinate and auxiliary per-pixel arrays we carry (all float32 on disk).
COORD_EXTS = ("WAVELENGTH", "XI", "ETA")
AUX_EXTS = ("WHT", "CON", "BARSHADOW", "FLATFIELD_PS", "FLATFIELD_UN", "PATHLOSS_PS", "PATHLOSS_UN",
            "PHOTOM_PS", "PHOTOM_UN", "AREA")
_SINGLE_MODELS = {"ImageModel", "SlitModel", "CubeModel", "IFUImageModel", "IFUCubeModel"}
_MULTI_MODELS = {"MultiSlitModel", "MultiExposureModel"}

# (name, dtype, unit) in the order stdatamodels copies them (by position): never reorder.
X1D_COLUMNS = [
    ("WAVELENGTH", "f8", "um"), ("FLUX", "f8", "Jy"), ("FLUX_ERROR", "f8", "Jy"),
    ("FLUX_VAR_POISSON", "f8", "Jy^2"), ("FLUX_VAR_RNOISE", "f8", "Jy^2"), ("FLUX_VAR_FLAT", "f8", "Jy^2"),
    ("SURF_BRIGHT", "f8", "MJy/sr"), ("SB_ERROR", "f8", "MJy/sr"),
    ("SB_VAR_POISSON", "f8", "MJy^2 / sr^2"), ("SB_VAR_RNOISE", "f8", "MJy^2 / sr^2"),
    ("SB_VAR_FLAT", "f8", "MJy^2 / sr^2"), ("DQ", "u4", None),
    ("BACKGROUND", "f8", "MJy/sr"), ("BKGD_ERROR", "f8", "MJy/sr"),
    ("BKGD_VAR_POISSON", "f8", "MJy^2 / sr^2"), ("BKGD_VAR_RNOISE", "f8", "MJy^2 / sr^2"),
    ("BKGD_VAR_FLAT", "f8", "MJy^2 / sr^2"), ("NPIXELS", "f8", None),
]
C1D_COLUMNS = [
    ("WAVELENGTH", "f8", "um"), ("FLUX", "f8", "Jy"), ("ERROR", "f8", "Jy"),
    ("SURF_BRIGHT", "f8", "MJy/sr"), ("SB_ERROR", "f8", "MJy/sr"), ("DQ", "u4", None),
    ("WEIGHT", "f8", None), ("N_INPUT", "f8", None),
]
_SPEC_KINDS = {"EXTRACT1D": X1D_COLUMNS, "COMBINE1D": C1D_COLUMNS}


@dataclass
class Slit:
    """One group of per-pixel arrays with its keywords (the SCI header of the group)."""

    header: fits.Header = field(default_factory=fits.Header)
    arrays: dict = field(default_factory=dict)

    def __getitem__(self, name):
        return self.arrays[name]

    def __setitem__(self, name, value):
        self.arrays[name] = value

    def __contains__(self, name):
        return name in self.arrays

    def get(self, name, default=None):
        return self.arrays.get(name, default)

    @property
    def name(self):
        return str(self.header.get("SLTNAME", ""))

    @property
    def shape(self):
        return self.arrays["SCI"].shape

    def copy(self, arrays=True):
        """A copy; ``arrays=False``: the arrays are shared (for a step that replaces some and
        changes none in place)."""
        return Slit(copy_header(self.header),
                    {k: np.array(v, copy=True) if arrays else v for k, v in self.arrays.items()})


class _Product:
    """What every product knows of its PRIMARY header: its EXP_TYPE and mode."""

    @property
    def exp_type(self):
        return str(self.primary.get("EXP_TYPE", "")).strip().upper()

    @property
    def mode(self):
        """The :class:`webbspec.modes.Mode` of this product's EXP_TYPE (unknown: InputError)."""
        return mode_for(self.primary, self.path or "<model>")


@dataclass
class Model(_Product):
    """A product made of one or more slit groups under a PRIMARY header."""

    primary: fits.Header = field(default_factory=fits.Header)
    slits: list = field(default_factory=list)
    layout: str = "single"
    tables: dict = field(default_factory=dict)   # other BinTables by EXTNAME (e.g. INT_TIMES)
    asdf_tree: dict | bytes | None = None   # the ASDF extension when set (bytes: a whole ASDF file)
    path: str | None = None


    def copy(self, arrays=True):
        """A copy; ``arrays=False``: the slits' arrays are shared (see :meth:`Slit.copy`)."""
        return Model(copy_header(self.primary), [s.copy(arrays) for s in self.slits], self.layout,
                     dict(self.tables), self.asdf_tree, self.path)

    def slit(self, name):
        for s in self.slits:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass
class Spectrum:
    """One EXTRACT1D or COMBINE1D table with its header keywords."""

    header: fits.Header
    table: np.ndarray   # structured array with the official columns


@dataclass
class SpecModel(_Product):
    """An `_x1d` (``kind="EXTRACT1D"``) or `_c1d` (``kind="COMBINE1D"``) product."""

    primary: fits.Header = field(default_factory=fits.Header)
    spectra: list = field(default_factory=list)
    kind: str = "EXTRACT1D"
    asdf_tree: dict | bytes | None = None
    path: str | None = None



def new_spec_table(n, kind="EXTRACT1D"):
    """A zero-filled table of ``n`` rows with the official columns of ``kind``."""
    cols = _SPEC_KINDS[kind]
    return np.zeros(n, dtype=[(name, dt) for name, dt, _ in cols])


# ---------------------------------------------------------------- reading


def _open(path):
    path = str(path)
    if not os.path.exists(path):
        raise InputError(path, "file does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
            for hdu in hdul:
                _ = hdu.data    # force the read: a truncated file fails here, not later
    except InputError:
        raise
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError or warnings
        raise InputError(path, f"not a readable FITS file ({type(exc).__name__}: {exc})") from None
    return hdul


def read_header(path):
    """The PRIMARY header only (cheap: used for discovery and reference selection)."""
    path = str(path)
    if not os.path.exists(path):
        raise InputError(path, "file does not exist")
    try:
        with warnings.catch_warnings():   # a truncated header is an error here, not a warning
            warnings.simplefilter("error", AstropyUserWarning)
            return fits.getheader(path, 0)
    except Exception as exc:
        raise InputError(path, f"not a readable FITS file ({type(exc).__name__}: {exc})") from None


def recorded(path, key):
    """The PRIMARY keyword ``key`` of the file ``path``; None when the file is missing,
    unreadable or lacks it (a product's recorded signature, for skipping up-to-date work)."""
    try:
        return read_header(path).get(key)
    except InputError:
        return None


def read(path):
    """Read a product into a :class:`Model` or :class:`SpecModel`, or an IFU cube (`_s3d`,
    DATAMODL IFUCubeModel) into a :class:`webbspec.io.cubes.Cube`."""
    path = str(path)
    if str(read_header(path).get("DATAMODL", "")).strip() == "IFUCubeModel":
        from . import cubes                # (cubes imports this module)

        return cubes.read(path)
    with _open(path) as hdul:
        primary = hdul[0].header           # the file's own header object: nothing else holds it
        for kind in _SPEC_KINDS:
            if kind in hdul:
                return _read_spec(hdul, primary, kind, path)
        return _read_model(hdul, primary, path)


def _read_model(hdul, primary, path):
    groups, tables = {}, {}
    for hdu in hdul[1:]:
        name = hdu.name.upper()
        if name == "ASDF":
            continue
        if isinstance(hdu, fits.BinTableHDU):
            tables[name] = hdu.data
            continue
        if hdu.data is None:
            continue
        ver = hdu.header.get("EXTVER", 1)
        group = groups.setdefault(ver, Slit())
        group.arrays[name] = np.asarray(hdu.data)
        if name in _INT_ARRAYS and group.arrays[name].dtype.kind == "f":   # written as float by older versions
            group.arrays[name] = np.nan_to_num(group.arrays[name]).astype(np.int32)
        if name == "SCI":
            group.header = _clean_ext_header(hdu.header)
    if not groups or any("SCI" not in g.arrays for g in groups.values()):
        raise InputError(path, "no SCI extension")
    slits = [groups[v] for v in sorted(groups)]
    datamodl = str(primary.get("DATAMODL", ""))
    layout = "multi" if (datamodl in _MULTI_MODELS or len(slits) > 1) else "single"
    return Model(primary, slits, layout, tables, None, path)


def _read_spec(hdul, primary, kind, path):
    spectra = []
    for hdu in hdul[1:]:
        if hdu.name.upper() != kind:
            continue
        have = hdu.columns.names
        table = new_spec_table(len(hdu.data), kind)
        for name in table.dtype.names:
            if name in have:
                table[name] = hdu.data[name]
        spectra.append(Spectrum(_clean_ext_header(hdu.header, table=True), table))
    return SpecModel(primary, spectra, kind, None, path)


_STRUCTURAL = {"XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "PCOUNT", "GCOUNT",
               "EXTNAME", "EXTVER", "BZERO", "BSCALE", "TFIELDS", "CHECKSUM", "DATASUM"}


def _clean_ext_header(header, table=False):
    """The extension's own keywords (structure, table columns and commentary dropped).

    The new header takes the read cards themselves (17x faster than building new cards, which
    parses and re-formats every value: the largest part of a Stage 3 source's reading); the
    header they came from is discarded with its file."""
    def keep(key):
        if key in _STRUCTURAL or key in ("COMMENT", "HISTORY", ""):
            return False
        return not (table and key[:5] in ("TTYPE", "TFORM", "TUNIT", "TDIM", "TZERO", "TNULL"))

    return header_of_cards([c for c in header.cards if keep(c.keyword)])


def header_of_cards(cards):
    """A header holding ``cards`` themselves (not copies). astropy's constructor appends them one
    by one with checks meant for new cards, 4x slower; its private ``_fromcards`` is what astropy
    itself uses for cards read from a file."""
    fromcards = getattr(fits.Header, "_fromcards", None)
    return fromcards(cards) if fromcards is not None else fits.Header(cards)


def copy_header(header):
    """A copy of ``header``: new cards with the same images, and the keyword index copied rather
    than rebuilt. 8x faster than ``Header.copy``, which copies each card through the pickle
    protocol and re-indexes it (a Stage 3 source copies ~30 headers of ~240 cards). Uses astropy's
    private header layout; anything unexpected falls back to ``Header.copy``."""
    try:
        cards, kw, rv = header._cards, header._keyword_indices, header._rvkc_indices
    except AttributeError:
        return header.copy()
    new = fits.Header()
    copies, card_class, make = new._cards, fits.Card, object.__new__
    for c in cards:
        if type(c) is not card_class:
            return header.copy()
        n = make(card_class)
        n.__dict__ = c.__dict__.copy()   # a new dict in one step: 3.5x faster than updating an empty one
        copies.append(n)
    new._keyword_indices.update((k, list(v)) for k, v in kw.items())
    new._rvkc_indices.update((k, list(v)) for k, v in rv.items())
    new._modified = False
    return new


# ---------------------------------------------------------------- writing


def write(model, path, filename=None):
    """Write a :class:`Model` or :class:`SpecModel` atomically; returns ``path``. ``filename``:
    the FILENAME keyword when the file is written under another name first (default its own).

    Extensions are formatted by :mod:`webbspec.io.fitswrite` (no astropy HDU objects: 6x faster)
    and the arrays written from their own memory, not copied into one buffer first."""
    path = str(path)
    if _is_cube(model):
        from . import cubes

        return cubes.write(model, path, filename)
    parts = [fitswrite.primary_bytes(_primary_header(model, filename or path))]
    if isinstance(model, SpecModel):
        parts += _spec_bytes(model)
    else:
        parts += _model_image_parts(model)
    for name, data in getattr(model, "tables", {}).items():
        parts.append(fitswrite.bintable_bytes(fitswrite.fits_rec_columns(data), name=name))
    if model.asdf_tree is not None:
        parts.append(asdf_hdu_bytes(model.asdf_tree))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with replacing(path) as tmp, open(tmp, "wb") as f:
        for part in parts:
            f.write(part)
    return path


def as_written(model):
    """``model`` with every slit array in the dtype :func:`write` stores it in (float32 for the
    science and coordinate arrays): what reading the written file back gives, so a chain of steps
    run in memory computes what the same chain through files does. Arrays already in that dtype
    are kept (not copied); a SpecModel is returned as it is."""
    if isinstance(model, SpecModel):
        return model
    if _is_cube(model):
        from .cubes import as_written as cube_as_written

        return cube_as_written(model)
    for slit in model.slits:
        for name, data in list(slit.arrays.items()):
            dtype = _disk_dtype(name)
            if np.asarray(data).dtype.newbyteorder("=") != dtype:
                slit.arrays[name] = np.asarray(data).astype(dtype)
    return model


def _is_cube(model):
    from .cubes import Cube

    return isinstance(model, Cube)


# Integer per-pixel arrays: CON (drizzle contexts) and SLICE (an IFU pixel's slice number, an
# index into per-slice tables: a float would not index).
_INT_ARRAYS = ("CON", "SLICE")


def _disk_dtype(name):
    return np.dtype(ARRAY_EXTS.get(name, np.int32 if name in _INT_ARRAYS else np.float32))


def _primary_header(model, path):
    hdr = copy_header(model.primary)
    hdr["TELESCOP"] = hdr.get("TELESCOP", "JWST")
    hdr["FILENAME"] = os.path.basename(path)
    return hdr


def _model_image_parts(model):
    """The image extensions of every slit: arrays in the official order, SCI carrying the slit
    header, EXTVER = slit number for a multi-slit layout."""
    parts = []
    multi = model.layout == "multi"
    for ver, slit in enumerate(model.slits, start=1):
        for name in dict.fromkeys(list(ARRAY_EXTS) + list(COORD_EXTS) + list(AUX_EXTS) + sorted(slit.arrays)):
            if name not in slit.arrays:
                continue
            data = np.asarray(slit.arrays[name])
            dtype = _disk_dtype(name)
            if data.dtype.newbyteorder("=") != dtype:     # either byte order is written as it is
                data = data.astype(dtype)
            parts += fitswrite.image_hdu_parts(data, slit.header if name == "SCI" else None, name,
                                               ver if multi else 1)
    return parts


def _spec_bytes(model):
    cols_def = _SPEC_KINDS[model.kind]
    return [fitswrite.bintable_bytes([(name, np.asarray(spec.table[name], dtype=dt), unit)
                                      for name, dt, unit in cols_def], spec.header, model.kind, ver)
            for ver, spec in enumerate(model.spectra, start=1)]


def asdf_hdu_bytes(tree):
    """The ASDF extension (one row, one byte column) holding ``tree``: the bytes of an ASDF file
    (webbspec.io.asdfwrite) or a tree the asdf library serializes."""
    if isinstance(tree, bytes):
        raw = np.frombuffer(tree, dtype=np.uint8)
    else:
        import asdf  # imported here: only trees not formatted by webbspec.io.asdfwrite need it

        buf = io.BytesIO()
        asdf.AsdfFile(tree).write_to(buf)
        raw = np.frombuffer(buf.getvalue(), dtype=np.uint8)
    return fitswrite.bintable_bytes([("ASDF_METADATA", raw[None, :], None)], name="ASDF")
