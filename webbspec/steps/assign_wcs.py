"""assign_wcs: evaluate the NIRSpec fixed-slit instrument model once, as per-pixel arrays.

Reference ``specwcs`` (docs/internals.md): BinTable SLITS, one row per slit with the trace
y_c(x) = YCEN + TILT*(x-XREF) + CURV*(x-XREF)**2, the along-slit scale PSCALE, the line tilt
LTILT and the dispersion lam = polyval((x + LTILT*(y - y_c) - DISP_X0)/DISP_XN, DISP_C).
For every pixel of a slit (slit_y_low <= ya/LENGTH <= slit_y_high, LMIN <= lam <= LMAX) the
full-frame image gets WAVELENGTH [um] and XI/ETA [arcsec]: the tangent-plane offsets of the slit
centre line at that along-slit position, (xa, ya) = (XA, YA + ya) in the aperture frame rotated by
PA_APER, from WSREFRA/WSREFDE = RA_REF/DEC_REF (written to the SCI header). Elsewhere NaN.
``model.tables["SLITS"]`` lists each slit's bounding box (0-based inclusive XSTART..XSTOP,
YSTART..YSTOP in the image) with its name, source id, size and aperture position for extract_2d.
"""

import os

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ._call import accepts_files

REFTYPES = ("specwcs",)

SLIT_EXP_TYPES = ("NRS_FIXEDSLIT", "NRS_BRIGHTOBJ", "NRS_AUTOWAVE", "NRS_LAMP")
_COLS = ("SLIT_NAME", "WIDTH", "LENGTH", "XA", "YA", "PSCALE", "XREF", "YCEN", "TILT", "CURV", "LTILT",
         "DISP_X0", "DISP_XN", "DISP_C", "LMIN", "LMAX")


@accepts_files
def run(model, refs, *, slit_y_low=-0.55, slit_y_high=0.55):
    """Attach WAVELENGTH/XI/ETA and the SLITS table to a copy of the rate image ``model``.

    The copy shares the input's arrays (the step adds arrays, it changes none).
    (The official imaging/IFU parameters sip_* and nrs_ifu_slice_wcs have no use here.)
    """
    path = refs.get("specwcs", "N/A") if refs else "N/A"
    if path is None or str(path).upper() in ("", "N/A", "NONE"):
        raise InputError(model.path or "assign_wcs", "no specwcs reference file: cannot assign a WCS")
    if model.exp_type not in SLIT_EXP_TYPES:
        raise InputError(model.path or "assign_wcs", f"assign_wcs has no model for EXP_TYPE {model.exp_type!r}")
    if model.layout != "single" or len(model.slits) != 1:
        raise InputError(model.path or "assign_wcs", "expected a single full-frame image")
    table = read_specwcs(path)
    out = model.copy(arrays=False)
    img = out.slits[0]
    ny, nx = img.shape[-2:]
    p = out.primary
    missing = [k for k in ("RA_REF", "DEC_REF", "PA_APER") if k not in p]
    if missing:
        raise InputError(model.path or "assign_wcs", f"missing pointing keyword(s) {', '.join(missing)}")
    # pixel (x, y) of this image in detector coordinates (subarray offset)
    sx, sy = int(p.get("SUBSTRT1", 1)) - 1, int(p.get("SUBSTRT2", 1)) - 1
    lam_all = np.full((ny, nx), np.nan, np.float32)
    xi_all = np.full((ny, nx), np.nan, np.float32)
    eta_all = np.full((ny, nx), np.nan, np.float32)
    pa = np.radians(float(p["PA_APER"]))
    boxes = []
    for row in table:
        res = _slit_pixels(row, nx, ny, sx, sy, slit_y_low, slit_y_high)
        if res is None:
            continue
        (y0, x0), lam, ya, inside = res
        ys, xs = np.nonzero(inside)
        xa, yal = float(row["XA"]), float(row["YA"]) + ya[inside]
        sub = (slice(y0, y0 + inside.shape[0]), slice(x0, x0 + inside.shape[1]))
        if np.isfinite(lam_all[sub][inside]).any():
            raise InputError(path, f"slit {text(row['SLIT_NAME'])} overlaps another slit on the detector")
        lam_all[sub][inside] = lam[inside]
        xi_all[sub][inside] = xa * np.cos(pa) + yal * np.sin(pa)
        eta_all[sub][inside] = -xa * np.sin(pa) + yal * np.cos(pa)
        boxes.append((text(row["SLIT_NAME"]), x0 + xs.min(), x0 + xs.max(), y0 + ys.min(), y0 + ys.max(),
                      float(row["WIDTH"]), float(row["LENGTH"]), xa, float(row["YA"])))
    if not boxes:
        raise InputError(path, "no slit of the specwcs model falls on this image")
    img["WAVELENGTH"], img["XI"], img["ETA"] = lam_all, xi_all, eta_all
    img.header["WSREFRA"] = (float(p["RA_REF"]), "[deg] RA of the XI/ETA reference")
    img.header["WSREFDE"] = (float(p["DEC_REF"]), "[deg] Dec of the XI/ETA reference")
    img.header["DISPAXIS"] = (1, "dispersion direction")
    img.header["SPECSYS"] = "BARYCENT"
    out.tables = dict(out.tables)
    out.tables["SLITS"] = _box_table(boxes)
    p["S_WCS"] = "COMPLETE"
    p["R_SPCWCS"] = os.path.basename(str(path))
    return out


def read_specwcs(path):
    """The SLITS table of a specwcs reference (InputError naming the file if unusable)."""
    if not os.path.exists(str(path)):
        raise InputError(path, "specwcs reference file does not exist")
    try:
        with fits.open(path, memmap=False) as hdul:
            data = np.array(hdul["SLITS"].data)
    except Exception as exc:
        raise InputError(path, f"not a valid specwcs reference ({type(exc).__name__}: {exc})") from None
    missing = [c for c in _COLS if c not in data.dtype.names]
    if missing:
        raise InputError(path, f"specwcs SLITS table lacks column(s) {', '.join(missing)}")
    return data


def text(value):
    """A FITS string cell as str (bytes from numpy copies of FITS_rec are decoded)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip()


def _trace(row, x):
    u = x - float(row["XREF"])
    return float(row["YCEN"]) + float(row["TILT"]) * u + float(row["CURV"]) * u * u


def _slit_pixels(row, nx, ny, sx, sy, lo, hi):
    """((y0, x0) of the evaluated block, lam, ya, inside mask) in image pixels, or None."""
    length, ps = float(row["LENGTH"]), float(row["PSCALE"])
    xdet = np.arange(nx, dtype=float) + sx
    yc = _trace(row, xdet)
    y0 = max(int(np.floor(yc.min() + lo * length / ps)) - 1 - sy, 0)
    y1 = min(int(np.ceil(yc.max() + hi * length / ps)) + 1 - sy, ny - 1)
    if y1 < y0:
        return None
    y = np.arange(y0, y1 + 1, dtype=float)[:, None] + sy
    dy = y - yc[None, :]
    ya = dy * ps
    s = (xdet[None, :] + float(row["LTILT"]) * dy - float(row["DISP_X0"])) / float(row["DISP_XN"])
    lam = np.polynomial.polynomial.polyval(s, np.asarray(row["DISP_C"], float).ravel())
    inside = ((ya >= lo * length) & (ya <= hi * length)
              & (lam >= float(row["LMIN"])) & (lam <= float(row["LMAX"])))
    if not inside.any():
        return None
    return (y0, 0), lam, ya, inside


def _box_table(boxes):
    names, x0, x1, y0, y1, w, l, xa, ya = zip(*boxes)
    cols = [fits.Column(name="SLIT_NAME", format="8A", array=list(names)),
            fits.Column(name="XSTART", format="J", array=x0), fits.Column(name="XSTOP", format="J", array=x1),
            fits.Column(name="YSTART", format="J", array=y0), fits.Column(name="YSTOP", format="J", array=y1),
            fits.Column(name="WIDTH", format="D", unit="arcsec", array=w),
            fits.Column(name="LENGTH", format="D", unit="arcsec", array=l),
            fits.Column(name="XA", format="D", unit="arcsec", array=xa),
            fits.Column(name="YA", format="D", unit="arcsec", array=ya)]
    return fits.FITS_rec.from_columns(cols)   # (a BinTableHDU would import astropy.table: 0.4 s)
