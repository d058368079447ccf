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

Public: :func:`read_stage2` (full read + coordinates), :func:`list_slits` (cheap, headers only),
:func:`read_product` (any product via :func:`webbspec.datamodels.read`), :func:`slit_coordinates`.
"""

import logging
import os
import warnings

import numpy as np
from astropy.io import fits

from . import datamodels
from .asdftree import open_shared
from .datamodels import Model, Slit
from .errors import InputError
from .skycoords import radec_to_xieta

__all__ = ["read_stage2", "list_slits", "read_product", "slit_coordinates", "reference_of",
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
        return fits.open(path, memmap=False)
    except Exception as exc:
        raise InputError(path, f"not a readable FITS file ({type(exc).__name__}: {exc})") from None


def _classify(hdul, path):
    """Raise InputError unless ``hdul`` is a Stage 2 per-exposure product with slits."""
    names = {h.name.upper() for h in hdul}
    model = str(hdul[0].header.get("DATAMODL", "")).strip()
    if names & {"EXTRACT1D", "COMBINE1D"}:
        raise InputError(path, f"a spectrum table ({model or 'x1d/c1d'}), not a Stage 2 _cal product")
    if "SCI" not in names:
        raise InputError(path, "no SCI extension: not a Stage 2 _cal product")
    if model and model not in STAGE2_MODELS:
        raise InputError(path, f"DATAMODL {model} is not a Stage 2 per-exposure product "
                               f"({', '.join(STAGE2_MODELS)})")
    if "WMAP" in names or str(hdul[0].header.get("S_IFUCUB", "")).upper() == "COMPLETE":
        raise InputError(path, "an IFU cube (_s3d) product, not a Stage 2 _cal product")
    if "WHT" in names or str(hdul[0].header.get("S_RESAMP", "")).upper() == "COMPLETE":
        raise InputError(path, "a resampled (_s2d) product, not a Stage 2 _cal product")
    return model


def _is_ours(hdul):
    return "XI" in hdul and "ETA" in hdul


def _groups(hdul):
    """``{extver: {EXTNAME: hdu}}`` of the image extensions."""
    groups = {}
    for hdu in hdul[1:]:
        # NAXIS from the header: testing hdu.data would read every array of the file
        if isinstance(hdu, fits.ImageHDU) and hdu.header.get("NAXIS", 0) > 0:
            groups.setdefault(hdu.header.get("EXTVER", 1), {})[hdu.name.upper()] = hdu
    return dict(sorted(groups.items()))


def _clean(header):
    return datamodels._clean_ext_header(header)


def list_slits(path):
    """Slit metadata from the FITS headers only (no gwcs): ``[{EXTVER, SLTNAME, SOURCEID, SRCNAME,
    SRCTYPE, SRCRA, SRCDEC, ...}]``. Cheap: used to plan the per-source jobs."""
    path = str(path)
    with _fits_open(path) as hdul:
        _classify(hdul, path)
        out = []
        for hdu in hdul[1:]:
            if hdu.name.upper() != "SCI":
                continue
            h = hdu.header
            row = {"EXTVER": int(h.get("EXTVER", 1))}
            for key in SLIT_KEYS:
                if key in h:
                    row[key] = h[key]
            out.append(row)
        return out


# ---------------------------------------------------------------- gwcs


def _load_tree(hdul, path, only=None):
    """The open ASDF file of the extension, its WCS objects (one per slit, or per slit index of
    ``only``) and the number of slits in the tree.

    Arrays inside the gwcs (e.g. tabular models) load lazily from the ASDF blocks: keep the
    returned file open until every WCS has been evaluated (the fits: data references of the
    tree are never resolved).
    """
    if "ASDF" not in hdul:
        raise InputError(path, "no ASDF extension: the gwcs of the exposure is missing")
    try:
        raw = hdul["ASDF"].data["ASDF_METADATA"][0].tobytes()
        af, tree, total = open_shared(raw, only)   # each distinct transform built once
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
        ra, dec, lam = wcs(x, y)
    ra, dec, lam = (np.asarray(a, float) for a in (ra, dec, lam))
    if np.nanmedian(lam) < 1e-3:   # some transforms return metres although the frame says um
        lam = lam * 1e6
    return ra, dec, lam


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
    (index from 1) selects the slits to read; the others' arrays and gwcs are never read.
    """
    path = str(path)
    with _fits_open(path) as hdul:
        datamodl = _classify(hdul, path)
        primary = hdul[0].header.copy()
        if not datamodl:
            primary["DATAMODL"] = "MultiSlitModel" if len(_groups(hdul)) > 1 else "SlitModel"
        ours = _is_ours(hdul)
        if coords and not ours and str(primary.get("S_WCS", "")).upper() != "COMPLETE":
            raise InputError(path, "assign_wcs has not run (S_WCS not COMPLETE): not a Stage 2 "
                                   "_cal product (a _rate?)")
        groups = _groups(hdul)
        slits, kept = [], []
        for index, (ver, hdus) in enumerate(groups.items(), start=1):
            if "SCI" not in hdus:
                raise InputError(path, f"slit group EXTVER={ver} has no SCI")
            if keep is not None and not keep(index, hdus["SCI"].header):
                continue
            kept.append(index - 1)
            header = _clean(hdus["SCI"].header)
            arrays = {name: np.array(h.data) for name, h in hdus.items()
                      if name in _ARRAYS or (ours and name in datamodels.COORD_EXTS)}
            slits.append(Slit(header, arrays))
        tables = {h.name.upper(): h.data for h in hdul[1:]
                  if isinstance(h, fits.BinTableHDU) and h.name.upper() != "ASDF"}
        if coords and not ours and slits:
            only = None if len(kept) == len(groups) else kept
            af, wcs, total = _load_tree(hdul, path, only)
            with af:
                if total != len(groups):
                    raise InputError(path, f"ASDF tree has {total} slit WCS for {len(groups)} slits")
                for slit, w in zip(slits, wcs):
                    _attach_coordinates(slit, w, path)
    layout = "multi" if (len(slits) > 1 or primary.get("DATAMODL") == "MultiSlitModel") else "single"
    return Model(primary, slits, layout, tables, None, path)


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
    """Any product (`_cal`, `_s2d`, `_crf`, `_x1d`, `_c1d`) as :mod:`webbspec.datamodels` reads it."""
    return datamodels.read(path)
