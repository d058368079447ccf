"""extract_1d's references: the extract1d JSON apertures and the NIRSpec FS aperture correction.

* ``extract1d`` (official JSON): {"apertures": [{"id": slit name or "ANY", "region_type":
  "target", "dispaxis", "spectral_order", "extract_width", "xstart", "xstop", "ystart", "ystop",
  "bkg_coeff", "bkg_fit", "bkg_order", "smoothing_length", "independent_var",
  "use_source_posn"}, ...]}; a top-level "reftype", when present, must be EXTRACT1D.
* ``apcorr`` (NrsFsApcorrModel FITS, or NrsMosApcorrModel without the slit column, table APCORR: filter,
  grating, slit, wavelength (nwave),
  nelem_wl, size (nsize, nwave), nelem_size, pixphase, apcorr (nsize, nwave, npixphase) in numpy
  order; header SIZEUNIT). As the official ApCorrPhase: the row of the exposure's filter, grating
  (and slit), apcorr interpolated to pixel phase 0.5, then bilinear in (wavelength, size =
  NPIXELS); no correction (1) outside the wavelength range; sizes clamped to the table.
"""

import json

import numpy as np

from ..errors import InputError
from . import _correction as corr

__all__ = ["read_extract1d", "aperture_for", "read_apcorr", "apcorr_for", "apcorr_factor", "PIXEL_PHASE"]

PIXEL_PHASE = 0.5


def read_extract1d(path):
    """The apertures list of an extract1d JSON reference."""
    try:
        with open(path) as fh:
            data = json.load(fh)
        apertures = data["apertures"]
        if not isinstance(apertures, list):
            raise TypeError("apertures is not a list")
    except FileNotFoundError:
        raise InputError(path, "extract1d reference file does not exist") from None
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not an extract1d JSON reference ({type(exc).__name__}: {exc})") from None
    reftype = str(data.get("reftype", "EXTRACT1D")).strip().upper()
    if reftype != "EXTRACT1D":
        raise InputError(path, f"reftype is {reftype!r}, not an extract1d reference file")
    return apertures


def aperture_for(apertures, slit_name, sporder=1):
    """The first "target" aperture for ``slit_name`` (else "ANY") of the spectral order."""
    targets = [a for a in apertures if str(a.get("region_type", "target")).lower() == "target"]
    match = [a for a in targets if str(a.get("id", "")).strip().upper() == slit_name.upper()]
    match = match or [a for a in targets if str(a.get("id", "")).strip().upper() == "ANY"]
    match = [a for a in match if a.get("spectral_order", sporder) in (sporder, None, "ANY")] or match
    return match[0] if match else None


def read_apcorr(path):
    """{(FILTER, GRATING, SLIT): (wavelength (nw,), size (ns, nw), apcorr at PIXEL_PHASE (ns, nw))}."""
    hdul = corr.open_reference(path, "apcorr", ("NrsFsApcorrModel", "NrsMosApcorrModel"), ("APCORR",))
    tab = hdul["APCORR"]
    unit = str(tab.header.get("SIZEUNIT", "pixels")).strip().lower()
    cols = {n.lower(): n for n in tab.data.columns.names}
    need = ("filter", "grating", "wavelength", "size", "pixphase", "apcorr")
    missing = [c for c in need if c not in cols]
    if missing:
        raise InputError(path, f"APCORR table has no column(s) {', '.join(missing)}")
    out = {}
    for row in tab.data:
        wave = np.asarray(row[cols["wavelength"]], float).ravel()
        size = np.asarray(row[cols["size"]], float)
        phase = np.asarray(row[cols["pixphase"]], float).ravel()
        table = np.asarray(row[cols["apcorr"]], float)
        nw = int(row[cols["nelem_wl"]]) if "nelem_wl" in cols else wave.size
        ns = int(row[cols["nelem_size"]]) if "nelem_size" in cols else size.shape[0]
        if size.ndim != 2 or table.ndim != 3 or table.shape[:2] != size.shape or table.shape[2] != phase.size:
            raise InputError(path, f"APCORR size {size.shape} / apcorr {table.shape} are not (nsize, nwave) / "
                                   "(nsize, nwave, npixphase)")
        if not phase.min() <= PIXEL_PHASE <= phase.max():
            continue          # the official interpolation fails and applies no correction
        order = np.argsort(phase)
        phase, table = phase[order], table[:ns, :nw][..., order]
        k = int(np.clip(np.searchsorted(phase, PIXEL_PHASE, side="right") - 1, 0, max(phase.size - 2, 0)))
        k1 = min(k + 1, phase.size - 1)
        w = (PIXEL_PHASE - phase[k]) / (phase[k1] - phase[k]) if phase[k1] > phase[k] else 0.0
        at_phase = (1 - w) * table[..., k] + w * table[..., k1]
        key = tuple(str(row[cols[k]]).strip().upper() if k in cols else "" for k in ("filter", "grating", "slit"))
        out[key] = (wave[:nw], size[:ns, :nw], at_phase, unit)
    return out


def apcorr_for(apcorr, primary, slit_name):
    """The table of the exposure's filter / grating / slit (a table without slits serves all)."""
    filt, grat = (str(primary.get(k, "")).strip().upper() for k in ("FILTER", "GRATING"))
    name = str(slit_name or "").strip().upper()
    return apcorr.get((filt, grat, name)) or apcorr.get((filt, grat, ""))


def apcorr_factor(table, wavelength, npixels, pixel_scale=None):
    """Bilinear (wavelength, size) interpolation of a table from :func:`read_apcorr` at each
    (wavelength, NPIXELS); 1 outside the wavelength range. Sizes in arcsec need ``pixel_scale``
    (arcsec per pixel)."""
    wave, size, corr_ws, unit = table
    if unit.startswith("arcsec"):
        if not pixel_scale:
            raise InputError("apcorr", "SIZEUNIT arcsec needs the spectrum's pixel scale")
        size = size / pixel_scale
    order = np.argsort(wave)
    wave, size, corr_ws = wave[order], size[:, order], corr_ws[:, order]
    lam = np.atleast_1d(np.asarray(wavelength, float))
    n = np.broadcast_to(np.asarray(npixels, float), lam.shape)
    inside = np.isfinite(lam) & (lam >= wave[0]) & (lam <= wave[-1])
    fx = np.interp(np.where(inside, lam, wave[0]), wave, np.arange(wave.size, dtype=float))
    i = np.minimum(fx.astype(int), max(wave.size - 2, 0))
    t = fx - i
    i1 = np.minimum(i + 1, wave.size - 1)
    s = (1 - t) * size[:, i] + t * size[:, i1]             # (nsize, npts) sizes at each wavelength
    a = (1 - t) * corr_ws[:, i] + t * corr_ws[:, i1]
    return interp_in_size(s, a, n, inside)


def interp_in_size(size, corr, n, inside):
    """The correction at each point's own size ``n`` (npts,): linear in size between the rows of
    ``size`` / ``corr`` (nsize, npts: the table at each point's wavelength, sizes ascending),
    clipped to the table's sizes; 1 where not ``inside`` the table's wavelengths."""
    n = np.clip(n, size[0], size[-1])
    j = np.clip((size <= n).sum(axis=0) - 1, 0, max(size.shape[0] - 2, 0))
    j1 = np.minimum(j + 1, size.shape[0] - 1)
    cols = np.arange(n.size)
    s0, s1 = size[j, cols], size[j1, cols]
    u = np.where(s1 > s0, (n - s0) / np.where(s1 > s0, s1 - s0, 1.0), 0.0)
    c = (1 - u) * corr[j, cols] + u * corr[j1, cols]
    return np.where(inside, c, 1.0)
