"""NIRSpec MSA metadata files (``*_msa.fits``): the MOS slitlets of an exposure and their sources.

Official layout (MAST files; jwst's assign_wcs test data):

* PRIMARY: PROGRAM, VISIT, OBSERVTN, VISIT_ID, MSACFG10, ...
* SHUTTER_INFO: one row per open shutter, per MSA configuration (``msa_metadata_id``) and dither
  point (``dither_point_index``): slitlet_id, shutter_quadrant, shutter_row, shutter_column,
  source_id, background (Y/N), shutter_state, estimated_source_in_shutter_x/_y (0..1 within the
  shutter, NaN when unknown), primary_source (Y/N) and, in newer files, fixed_slit (NONE or a
  fixed slit's name).
* SOURCE_INFO: one row per source: program, source_id, source_name, alias, catalog_id, ra, dec,
  preimage_id, stellarity.

An exposure reads the rows of its MSAMETID and PATT_NUM, one slitlet per slitlet_id (in the
order they first appear), with the official rules (jwst ``get_open_msa_slits``):

* No shutter marked primary: a background slitlet, source_id = slitlet_id, source name
  ``<program>_BKG<slitlet_id>`` (alias ``BKG<slitlet_id>``; master background finds them by "BKG"),
  source at the shutter centre, stellarity 0, RA/Dec 0. Its reference shutter is the first row's
  shutter row and the middle column of the slitlet, ``jmin + (jmax - jmin) // 2``.
* One shutter marked primary: the source_id is that row's; the reference shutter (quadrant, row,
  column) and the source position come from the first row with background = "N" (the official
  choice; normally the same row). A source id SOURCE_INFO lacks is kept as a virtual source
  named ``<program>_VRT<slitlet_id>`` (alias ``VRT<slitlet_id>``, stellarity 0, RA/Dec 0), with a
  warning; empty slitlets come from the planning tool with negative source ids.
* The source position in the slit frame is estimated_source_in_shutter - 0.5 (NaN -> 0).
* <program> is the exposure's PROGRAM without leading zeros.

Departures: rows of fixed slits (fixed_slit not NONE) are skipped with a warning (the official
reader turns a primary one into a slit of quadrant 5); a slitlet with more than one primary
shutter is dropped with a warning (the official reader fails the whole exposure). Problems that
concern the whole file are :class:`~webbspec.errors.InputError` (naming the file, and the exposure
whose MSAMETFL it is when read for one); those of one slitlet are logged warnings naming the file
and the slitlet (a source id SOURCE_INFO lacks: a warning for a positive id, which should be there,
an info line for the planning tool's negative ones). :func:`check_exposure` is the planning-time
check of an exposure's MSA metadata, so that a missing file is reported before any job runs.
"""

import functools
import logging
import os
import warnings
from dataclasses import dataclass

import numpy as np

from ...errors import InputError
from .optics import FS_ROWS

__all__ = ["Slitlet", "read_slitlets", "exposure_slitlets", "check_exposure", "msa_file_path", "write_msa_file",
           "SHUTTERS_PER_COLUMN", "FIXED_SLIT_NAMES", "is_background_name"]

log = logging.getLogger(__name__)

SHUTTERS_PER_COLUMN = 365          # rows per quadrant: shutter id = row + (column - 1) * 365
FIXED_SLIT_NAMES = tuple(FS_ROWS)
# official slit-frame extent of a slitlet: the slit_y_range of one shutter, plus this margin at
# each end, plus this many primary-shutter heights per shutter beyond the reference one (the
# official pitch/height ratio, hard-coded there as here)
Y_MARGIN = 0.5
SHUTTER_PITCH_Y = 1.15

_SHUTTER_COLUMNS = ("slitlet_id", "msa_metadata_id", "shutter_quadrant", "shutter_row", "shutter_column",
                    "source_id", "background", "estimated_source_in_shutter_x",
                    "estimated_source_in_shutter_y", "dither_point_index", "primary_source")
_MISSING = "MSA metadata file (MSAMETFL) does not exist"
_SOURCE_COLUMNS = ("source_id", "source_name", "alias", "ra", "dec", "stellarity")


def is_background_name(source_name):
    """Whether a slitlet's source name marks a background slitlet (official rule: "BKG" or
    "BACKGROUND" in it, as the background slitlets are named ``<program>_BKG<slitlet_id>``)."""
    name = str(source_name or "").upper()
    return "BKG" in name or "BACKGROUND" in name


@dataclass(frozen=True)
class Slitlet:
    """One MOS slitlet of one exposure (MSA configuration and dither point)."""

    slitlet_id: int
    quadrant: int
    xcen: int                   # reference (primary) shutter: row (along the dispersion)
    ycen: int                   # and column (along the slitlet)
    shutters: tuple             # ((quadrant, row, column), ...) open shutters, file order
    source_id: int
    source_name: str
    source_alias: str
    stellarity: float
    source_xpos: float          # source in the reference shutter, slit-frame units (-0.5..0.5)
    source_ypos: float
    source_ra: float            # deg (0 for background and virtual sources)
    source_dec: float
    background: bool            # no primary shutter
    virtual: bool               # the source is not in SOURCE_INFO
    msa_metadata_id: int
    dither_position: int

    @property
    def name(self):
        """The official slit name (SLTNAME): the slitlet id as text."""
        return str(self.slitlet_id)

    @property
    def shutter_id(self):
        """1-based index of the reference shutter in its quadrant's table of the msa reference."""
        return self.xcen + (self.ycen - 1) * SHUTTERS_PER_COLUMN

    @property
    def shutter_state(self):
        """Official SHUTSTA: one character per column from the lowest to the highest open one,
        "1" open, "0" closed, "x" the reference shutter."""
        cols = {c for _, _, c in self.shutters}
        return "".join("x" if c == self.ycen else ("1" if c in cols else "0")
                       for c in range(min(cols | {self.ycen}), max(cols | {self.ycen}) + 1))

    def slit_y_limits(self, slit_y_range=(-0.55, 0.55)):
        """(ymin, ymax) of the slitlet in the slit frame (units of the reference shutter's
        height, 0 at its centre): the official extent, which covers every open shutter."""
        cols = [c for _, _, c in self.shutters]
        lo, hi = slit_y_range
        return (lo - Y_MARGIN + (min(cols) - self.ycen) * SHUTTER_PITCH_Y,
                hi + Y_MARGIN + (max(cols) - self.ycen) * SHUTTER_PITCH_Y)


def _text(value):
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip()


def _table(hdul, name, columns, path):
    if name not in hdul:
        found = ", ".join(h.name for h in hdul[1:]) or "none"
        raise InputError(path, f"not an MSA metadata file: no {name} table (extensions: {found})")
    data = hdul[name].data
    have = set(hdul[name].columns.names) if data is not None else set()
    missing = [c for c in columns if c not in have]
    if missing:
        raise InputError(path, f"MSA metadata {name} table lacks {', '.join(missing)}")
    return data


def _open(path):
    from astropy.io import fits

    if not os.path.isfile(path):
        raise InputError(path, _MISSING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=False)
            len(hdul)                                   # reads every header
    except Exception as exc:
        raise InputError(path, f"not a readable FITS MSA metadata file ({type(exc).__name__}: {exc})") from None
    if any("truncated" in str(w.message) or "corrupt" in str(w.message) for w in caught):
        hdul.close()
        raise InputError(path, "truncated or corrupt FITS file (MSA metadata)")
    return hdul


def read_slitlets(path, msa_metadata_id, dither_position, program=None):
    """The slitlets of MSA configuration ``msa_metadata_id`` (MSAMETID) at dither point
    ``dither_position`` (PATT_NUM) in the MSA metadata file ``path``, official rules (module
    docstring). ``program``: the exposure's PROGRAM (default: the file's own PROGRAM keyword),
    which names background and virtual sources."""
    path = str(path)
    with _open(path) as hdul:
        shutters = _table(hdul, "SHUTTER_INFO", _SHUTTER_COLUMNS, path)
        sources = _table(hdul, "SOURCE_INFO", _SOURCE_COLUMNS, path)
        if program is None:
            program = hdul[0].header.get("PROGRAM", "")
        rows = _rows_of(shutters, path, int(msa_metadata_id), int(dither_position))
        catalog = {}
        for s in sources:                       # the first row of a source id wins (official)
            catalog.setdefault(int(s["source_id"]), s)
        prog = str(program).strip().lstrip("0")
        out = []
        for sid, group in _by_slitlet(rows, path):
            slit = _slitlet(sid, group, catalog, prog, path, int(msa_metadata_id), int(dither_position))
            if slit is not None:
                out.append(slit)
    if not out:
        raise InputError(path, f"no usable slitlet for MSAMETID {msa_metadata_id}, PATT_NUM {dither_position}")
    return out


def _configurations(shutters):
    """{msa_metadata_id: sorted dither_point_index values} of a SHUTTER_INFO table."""
    mid = np.asarray(shutters["msa_metadata_id"]).astype(int)
    dpi = np.asarray(shutters["dither_point_index"]).astype(int)
    return {int(m): sorted(set(dpi[mid == m].tolist())) for m in np.unique(mid)}


def _check_configuration(configs, path, metadata_id, dither):
    """InputError unless SHUTTER_INFO (``configs``, :func:`_configurations`) holds shutters of
    MSA configuration ``metadata_id`` at dither point ``dither``."""
    if metadata_id not in configs:
        ids = ", ".join(str(v) for v in sorted(configs))
        raise InputError(path, f"MSAMETID {metadata_id} is not in SHUTTER_INFO (configurations: {ids})")
    if dither not in configs[metadata_id]:
        pts = ", ".join(str(v) for v in configs[metadata_id])
        raise InputError(path, f"MSAMETID {metadata_id} has no shutters at PATT_NUM {dither} "
                               f"(dither points: {pts})")


def _rows_of(shutters, path, metadata_id, dither):
    _check_configuration(_configurations(shutters), path, metadata_id, dither)
    sel = (np.asarray(shutters["msa_metadata_id"]) == metadata_id) & \
        (np.asarray(shutters["dither_point_index"]) == dither)
    return shutters[sel]


def _by_slitlet(rows, path):
    """[(slitlet_id, [rows])] in order of first appearance; fixed-slit rows are left out."""
    groups = {}
    fixed = "fixed_slit" in rows.columns.names
    skipped = []
    for r in rows:
        fs = _text(r["fixed_slit"]).upper() if fixed else "NONE"
        if fs in FIXED_SLIT_NAMES:
            skipped.append(f"{fs} (source {int(r['source_id'])})")
            continue
        groups.setdefault(int(r["slitlet_id"]), []).append(r)
    if skipped:
        log.warning("%s: fixed slit rows skipped, fixed slits are not processed as MOS slitlets: %s",
                    path, ", ".join(skipped))
    return list(groups.items())


def _position(value):
    v = float(value)
    return (0.5 if np.isnan(v) else v) - 0.5


def _slitlet(sid, rows, catalog, prog, path, metadata_id, dither):
    cols = [int(r["shutter_column"]) for r in rows]
    shutters = tuple((int(r["shutter_quadrant"]), int(r["shutter_row"]), int(r["shutter_column"])) for r in rows)
    primary = [r for r in rows if _text(r["primary_source"]).upper() == "Y"]
    common = dict(slitlet_id=sid, shutters=shutters, msa_metadata_id=metadata_id, dither_position=dither)
    if not primary:
        first = rows[0]
        return Slitlet(quadrant=int(first["shutter_quadrant"]), xcen=int(first["shutter_row"]),
                       ycen=min(cols) + (max(cols) - min(cols)) // 2, source_id=sid,
                       source_name=f"{prog}_BKG{sid}", source_alias=f"BKG{sid}", stellarity=0.0,
                       source_xpos=0.0, source_ypos=0.0, source_ra=0.0, source_dec=0.0,
                       background=True, virtual=False, **common)
    if len(primary) > 1:
        log.warning("%s: slitlet %d has %d shutters marked primary_source; slitlet dropped",
                    path, sid, len(primary))
        return None
    source_id = int(primary[0]["source_id"])
    # the reference shutter: the first row with a source in it (official), else the primary row
    ref = next((r for r in rows if _text(r["background"]).upper() == "N"), primary[0])
    src = catalog.get(source_id)
    if src is None:
        # negative ids are the planning tool's virtual sources (empty slitlets): expected there
        log.log(logging.INFO if source_id < 0 else logging.WARNING,
                "%s: slitlet %d: source %d is not in SOURCE_INFO; kept as virtual source %s_VRT%d",
                path, sid, source_id, prog, sid)
        name, alias, stellarity, ra, dec = f"{prog}_VRT{sid}", f"VRT{sid}", 0.0, 0.0, 0.0
    else:
        name, alias = _text(src["source_name"]), _text(src["alias"])
        stellarity, ra, dec = float(src["stellarity"]), float(src["ra"]), float(src["dec"])
    return Slitlet(quadrant=int(ref["shutter_quadrant"]), xcen=int(ref["shutter_row"]),
                   ycen=int(ref["shutter_column"]), source_id=source_id, source_name=name,
                   source_alias=alias, stellarity=stellarity,
                   source_xpos=_position(ref["estimated_source_in_shutter_x"]),
                   source_ypos=_position(ref["estimated_source_in_shutter_y"]),
                   source_ra=ra, source_dec=dec, background=False, virtual=src is None, **common)


def msa_file_path(header, exposure_path):
    """The MSA metadata file an exposure names (MSAMETFL, relative to the exposure's directory)."""
    name = str(header.get("MSAMETFL") or "").strip()
    if not name or name.upper() == "N/A":
        raise InputError(exposure_path, "no MSA metadata file (keyword MSAMETFL)")
    return os.path.join(os.path.dirname(os.path.abspath(str(exposure_path))), name)


def _exposure_keys(header, exposure_path):
    """(MSA metadata file path, MSAMETID, PATT_NUM) an exposure's keywords name."""
    for key in ("MSAMETID", "PATT_NUM"):
        if header.get(key) is None:
            raise InputError(exposure_path, f"missing keyword {key} (needed to read the MSA metadata file)")
    return msa_file_path(header, exposure_path), int(header["MSAMETID"]), int(header["PATT_NUM"])


def _for_exposure(exc, exposure_path):
    """``exc`` (about the MSA metadata file) naming the exposure whose MSAMETFL it is, too."""
    return InputError(exc.path, f"{exc.problem} (MSAMETFL of {os.path.basename(str(exposure_path))})")


def exposure_slitlets(header, exposure_path):
    """The slitlets of an exposure: its MSAMETFL file, MSAMETID, PATT_NUM and PROGRAM keywords.
    Errors about the MSA metadata file name it and the exposure."""
    path, metadata_id, dither = _exposure_keys(header, exposure_path)
    try:
        return read_slitlets(path, metadata_id, dither, header.get("PROGRAM", ""))
    except InputError as exc:
        raise (_for_exposure(exc, exposure_path) if exc.path == path else exc) from None


def check_exposure(header, exposure_path):
    """The planning-time check of an exposure's MSA metadata (before any job runs): the keywords,
    the file beside the exposure, and shutters of its MSAMETID at its PATT_NUM; the same
    InputError its assign_wcs would raise. Cheap: each file's configurations are read once."""
    path, metadata_id, dither = _exposure_keys(header, exposure_path)
    try:
        if not os.path.isfile(path):
            raise InputError(path, _MISSING)
        st = os.stat(path)
        _check_configuration(_file_configurations(path, st.st_size, st.st_mtime_ns), path, metadata_id, dither)
    except InputError as exc:
        raise (_for_exposure(exc, exposure_path) if exc.path == path else exc) from None


@functools.lru_cache(maxsize=64)
def _file_configurations(path, size, mtime_ns):
    with _open(path) as hdul:
        return _configurations(_table(hdul, "SHUTTER_INFO", _SHUTTER_COLUMNS, path))


# ---------------------------------------------------------------------------------------- writer
def write_msa_file(path, slitlets, program, header=None):
    """Write an MSA metadata file in the official layout holding ``slitlets`` (:class:`Slitlet`,
    any MSA configurations and dither points; each row carries its slitlet's msa_metadata_id and
    dither_position). The reference shutter (quadrant, xcen, ycen) of a source slitlet is its
    primary shutter (background "N", primary_source "Y", the source position); every other
    shutter is background "Y" with NaN positions; background slitlets have source_id 0.
    SOURCE_INFO gets one row per real source (not background, not virtual), first one wins.
    ``header``: extra PRIMARY keywords. The SHUTTER_IMAGE map is not written (no reader uses it).
    Written atomically."""
    from astropy.io import fits

    from ...io.atomicfile import replacing

    rows, sources = [], {}
    for s in slitlets:
        ref = (s.quadrant, s.xcen, s.ycen)
        if not s.background and ref not in s.shutters:
            raise InputError(path, f"slitlet {s.slitlet_id}: its reference shutter {ref} is not one of its shutters")
        for sh in s.shutters:
            prim = not s.background and sh == ref
            ex, ey = (s.source_xpos + 0.5, s.source_ypos + 0.5) if prim else (np.nan, np.nan)
            rows.append((s.slitlet_id, s.msa_metadata_id, *sh, 0 if s.background else s.source_id,
                         "N" if prim else "Y", "OPEN", ex, ey, s.dither_position, "Y" if prim else "N", "NONE"))
        if not (s.background or s.virtual):
            sources.setdefault(s.source_id, s)
    shutter_info = np.array(rows, dtype=[
        ("slitlet_id", ">i2"), ("msa_metadata_id", ">i2"), ("shutter_quadrant", ">i2"), ("shutter_row", ">i2"),
        ("shutter_column", ">i2"), ("source_id", ">i4"), ("background", "S1"), ("shutter_state", "S6"),
        ("estimated_source_in_shutter_x", ">f4"), ("estimated_source_in_shutter_y", ">f4"),
        ("dither_point_index", ">i2"), ("primary_source", "S1"), ("fixed_slit", "S7")])
    prog = int(str(program).strip() or 0)
    source_info = np.array(
        [(prog, sid, s.source_name, s.source_alias, s.source_alias, s.source_ra, s.source_dec, "", s.stellarity)
         for sid, s in sources.items()],
        dtype=[("program", ">i4"), ("source_id", ">i4"), ("source_name", "S31"), ("alias", "S31"),
               ("catalog_id", "S31"), ("ra", ">f8"), ("dec", ">f8"), ("preimage_id", "S30"), ("stellarity", ">f8")])
    primary = fits.PrimaryHDU()
    h = primary.header
    h["TELESCOP"] = "JWST"
    h["INSTRUME"] = "NIRSPEC"
    h["FILENAME"] = os.path.basename(str(path))
    h["PROGRAM"] = (f"{prog:05d}", "program number")
    for key, value in (header or {}).items():
        h[key] = value
    hdul = fits.HDUList([primary, fits.BinTableHDU(shutter_info, name="SHUTTER_INFO"),
                         fits.BinTableHDU(source_info, name="SOURCE_INFO")])
    with replacing(path) as tmp:
        hdul.writeto(tmp)
    return str(path)
