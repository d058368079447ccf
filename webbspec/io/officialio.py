"""Writing products that the official data models, specutils and the official steps accept.

:func:`to_official` returns a copy of a model ready to write as the class the official pipeline
writes for that product (PRIMARY ``DATAMODL``; keywords with valid enum values; per-kind
structure), and :func:`write` writes it atomically. For an `_s2d` it adds the ASDF extension with
a gwcs built from the S2D* grid keywords (docs/internals.md "Rectified 2-D spectra"):

    detector Frame2D (x, y) -> CompositeFrame[CelestialFrame(ICRS), SpectralFrame(um)]
    (x, y) -> Mapping(y, y, x) -> (xi(y), eta(y)) [deg, linear in the row] -> TAN about
    (S2DRA0, S2DDEC0) ; lambda(x) = tabular(WAVELENGTH[0])

with a bounding box in (x, y) order. No slit_frame is provided. `_x1d`/`_c1d` get an empty ASDF
tree so specutils auto-identifies them (TELESCOP JWST + an ASDF HDU).

kinds: ``cal`` and ``crf`` (``source_based`` -> MultiExposureModel, else MultiSlitModel /
SlitModel / ImageModel by layout), ``s2d`` (SlitModel or MultiSlitModel), ``x1d``
(MultiSpecModel), ``c1d`` (MultiCombinedSpecModel: what Combine1dStep writes), ``s3d``
(IFUCubeModel).
"""

import numpy as np

from . import asdfwrite, datamodels
from .datamodels import Model, SpecModel
from ..errors import InputError

__all__ = ["to_official", "write", "s2d_grid", "KINDS", "SRCTYPES"]

KINDS = ("cal", "crf", "s2d", "x1d", "c1d", "s3d")
SRCTYPES = ("POINT", "EXTENDED", "UNKNOWN")
# Per-kind extensions the official schema knows for slit groups (others are dropped on write:
# our coordinate arrays XI/ETA would otherwise land in extra_fits, which is harmless but noisy).
_SLIT_ARRAYS = {
    "cal": ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT", "WAVELENGTH", "BARSHADOW",
            "FLATFIELD_PS", "FLATFIELD_UN", "PATHLOSS_PS", "PATHLOSS_UN", "PHOTOM_PS", "PHOTOM_UN",
            "AREA"),
    "s2d": ("SCI", "ERR", "WAVELENGTH", "WHT", "CON", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"),
}
_SLIT_ARRAYS["crf"] = _SLIT_ARRAYS["cal"]


def _fix_slit_header(h):
    st = str(h.get("SRCTYPE", "") or "").strip().upper()
    if "SRCTYPE" in h and st not in SRCTYPES:
        h["SRCTYPE"] = "UNKNOWN"
    for key in ("SOURCEID", "SLITID", "DISPAXIS", "SPORDER"):
        if key in h:
            try:
                h[key] = int(h[key])
            except (TypeError, ValueError):
                del h[key]
    return h


def _fix_primary(p, datamodl):
    p = datamodels.copy_header(p)
    p["DATAMODL"] = datamodl
    p["TELESCOP"] = "JWST"
    for key in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND"):
        p.remove(key, ignore_missing=True)
    if "SRCTYPE" in p and str(p["SRCTYPE"]).strip().upper() not in SRCTYPES:
        del p["SRCTYPE"]
    return p


def to_official(model, kind, *, source_based=None, keep_coords=False):
    """A copy of ``model`` shaped as the official product ``kind`` (see module docstring)."""
    kind = str(kind).lower()
    if kind not in KINDS:
        raise InputError(str(kind), f"unknown product kind; known: {', '.join(KINDS)}")
    if kind in ("x1d", "c1d"):
        if not isinstance(model, SpecModel):
            raise InputError(getattr(model, "path", None) or kind, f"{kind} needs a spectrum model")
        want = "EXTRACT1D" if kind == "x1d" else "COMBINE1D"
        if model.kind != want:
            raise InputError(model.path or kind, f"{kind} needs {want} tables, got {model.kind}")
        datamodl = "MultiSpecModel" if kind == "x1d" else "MultiCombinedSpecModel"
        spectra = []
        for sp in model.spectra:
            h = _fix_slit_header(datamodels.copy_header(sp.header))
            h.setdefault("SRCTYPE", "UNKNOWN")
            h.setdefault("SPORDER", 1)
            h.setdefault("DISPAXIS", 1)
            spectra.append(datamodels.Spectrum(h, sp.table))
        return SpecModel(_fix_primary(model.primary, datamodl), spectra, model.kind,
                         model.asdf_tree if model.asdf_tree else asdfwrite.asdf_file(), model.path)
    if not isinstance(model, Model):
        raise InputError(getattr(model, "path", None) or kind, f"{kind} needs an image/slit model")
    if kind == "s3d":
        return Model(_fix_primary(model.primary, "IFUCubeModel"), [s.copy() for s in model.slits[:1]],
                     "single", dict(model.tables), model.asdf_tree, model.path)
    if source_based is None:
        source_based = str(model.primary.get("DATAMODL", "")) == "MultiExposureModel"
    keep = _SLIT_ARRAYS[kind] + (datamodels.COORD_EXTS if keep_coords else ())
    slits = []
    for s in model.slits:
        arrays = {k: v for k, v in s.arrays.items() if k in keep}
        slits.append(datamodels.Slit(_fix_slit_header(datamodels.copy_header(s.header)), arrays))
    if kind == "s2d":
        layout = "single" if len(slits) == 1 and model.layout == "single" else "multi"
        datamodl = "SlitModel" if layout == "single" else "MultiSlitModel"
        tree = _s2d_tree(slits, layout)
        return Model(_fix_primary(model.primary, datamodl), slits, layout, {}, tree, model.path)
    if source_based:
        datamodl, layout = "MultiExposureModel", "multi"
    elif model.layout == "multi":
        datamodl, layout = "MultiSlitModel", "multi"
    else:
        datamodl, layout = ("SlitModel" if "SLTNAME" in slits[0].header else "ImageModel"), "single"
    tables = {k: v for k, v in model.tables.items() if k == "INT_TIMES"}
    return Model(_fix_primary(model.primary, datamodl), slits, layout, tables, None, model.path)


def write(model, path, kind, filename=None, **kw):
    """:func:`to_official` then an atomic write; returns ``path`` (``filename``: the FILENAME
    keyword of a file written under a temporary name first)."""
    return datamodels.write(to_official(model, kind, **kw), path, filename)


# ---------------------------------------------------------------- s2d gwcs


def _s2d_tree(slits, layout):
    """The ASDF file (bytes, webbspec.io.asdfwrite) with each rectified slit's gwcs."""
    return asdfwrite.s2d_tree([s2d_grid(s) for s in slits], single=layout == "single")


def s2d_grid(slit):
    """The parameters of a rectified slit's gwcs from its S2D* keywords and WAVELENGTH (see the
    module docstring): keyword arguments of asdfwrite.s2d_wcs_yaml plus ``wave``."""
    h = slit.header
    missing = [k for k in ("S2DRA0", "S2DDEC0", "S2DCRPX2", "S2DCDLT2", "S2DPA") if k not in h]
    if missing or "WAVELENGTH" not in slit:
        raise InputError(slit.name or "s2d", f"rectified slit lacks {', '.join(missing) or 'WAVELENGTH'}")
    ny, nx = np.shape(slit["SCI"])[-2:]
    wave = np.asarray(slit["WAVELENGTH"], float)
    wave = wave if wave.ndim == 1 else np.nanmedian(wave, axis=0)
    if not np.all(np.isfinite(wave)):   # fill gaps so the tabular model is defined everywhere
        good = np.isfinite(wave)
        if not good.any():
            raise InputError(slit.name or "s2d", "no finite wavelength")
        wave = np.interp(np.arange(nx), np.flatnonzero(good), wave[good])
    pa = np.radians(float(h["S2DPA"]))
    step = float(h["S2DCDLT2"]) / 3600.0            # deg per row
    return {"nx": nx, "ny": ny, "crpix": float(h["S2DCRPX2"]), "xi_step": step * np.sin(pa),
            "eta_step": step * np.cos(pa), "ra0": float(h["S2DRA0"]), "dec0": float(h["S2DDEC0"]),
            "wave": wave}
