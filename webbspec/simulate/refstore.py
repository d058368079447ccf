"""Reference files and the context of a simulated NIRSpec FS program (formats: docs/internals.md).

Every table tabulates the simulator's analytic calibration (nirspec_fs) on a fine wavelength
grid (NGRID points over 2.80-5.20 um, linear-interpolation error < 1e-5 relative), so the
pipeline's corrections invert the forward model exactly up to noise.
"""

import json
import os

import numpy as np
import yaml
from astropy.io import fits

from . import nirspec_fs as fs

__all__ = ["write_store", "NGRID"]

NGRID = 2401
_WAVE = np.linspace(2.80, 5.20, NGRID)
_USEAFTER = "2022-01-01T00:00:00"


def _primary(reftype, detector="ANY", **extra):
    h = fits.Header()
    h["REFTYPE"] = reftype.upper()
    h["TELESCOP"] = "JWST"
    h["INSTRUME"] = "NIRSPEC"
    h["EXP_TYPE"] = "NRS_FIXEDSLIT"
    h["DETECTOR"] = detector
    h["FILTER"] = fs.FILTER
    h["GRATING"] = fs.GRATING
    h["PEDIGREE"] = "SIMULATION"
    h["USEAFTER"] = _USEAFTER
    h["AUTHOR"] = "webbspec simulator"
    h["DESCRIP"] = f"simulated NIRSpec FS {reftype} reference"
    for k, v in extra.items():
        h[k] = v
    return fits.PrimaryHDU(header=h)


def _write(hdus, path):
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return os.path.basename(path)


def _array_col(name, rows, fmt="D", unit=None):
    rows = [np.asarray(r, float) for r in rows]
    return fits.Column(name=name, format=f"{rows[0].size}{fmt}", unit=unit, array=np.vstack(rows))


def _names():
    return [s.name for s in fs.SLITS]


def write_specwcs(det, path):
    s = det.slits
    cols = [
        fits.Column(name="SLIT_NAME", format="8A", array=[g.name for g in s]),
        fits.Column(name="SOURCEID", format="J", array=[fs.source_id(g.name) for g in s]),
    ]
    for key, unit in (("width", "arcsec"), ("length", "arcsec"), ("xa", "arcsec"), ("ya", "arcsec"),
                      ("pscale", "arcsec/pixel"), ("xref", "pixel"), ("ycen", "pixel"), ("tilt", None),
                      ("curv", "1/pixel"), ("ltilt", None), ("disp_x0", "pixel"), ("disp_xn", "pixel"),
                      ("lmin", "um"), ("lmax", "um")):
        cols.append(fits.Column(name=key.upper(), format="D", unit=unit, array=[getattr(g, key) for g in s]))
    cols.append(_array_col("DISP_C", [g.disp_c for g in s], unit="um"))
    tab = fits.BinTableHDU.from_columns(cols, name="SLITS")
    prim = _primary("specwcs", det.name, DETSIZE1=det.nx, DETSIZE2=det.ny)
    prim.header["COMMENT"] = "pixel (x,y) 0-based; see docs/internals.md (specwcs)"
    return _write([prim, tab], path)


def write_wavecorr(path):
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="APERTURE", format="8A", array=_names()),
        fits.Column(name="SLOPE", format="D", unit="pixel", array=[-s.width / fs.PSCALE for s in fs.SLITS]),
    ], name="APERTURES")
    return _write([_primary("wavecorr"), tab], path)


def write_flat(det, pixel_flat, path):
    sci = fits.ImageHDU(pixel_flat.astype(np.float32), name="SCI")
    dq = fits.ImageHDU(np.zeros(pixel_flat.shape, np.uint32), name="DQ")
    fast = fits.BinTableHDU.from_columns([
        fits.Column(name="SLIT_NAME", format="8A", array=_names()),
        _array_col("WAVELENGTH", [_WAVE] * len(fs.SLITS), unit="um"),
        _array_col("DATA", [fs.fast_variation(n, _WAVE) for n in _names()]),
    ], name="FAST_VARIATION")
    return _write([_primary("flat", det.name), sci, dq, fast], path)


def write_pathloss(path):
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="SLIT_NAME", format="8A", array=_names()),
        _array_col("WAVELENGTH", [_WAVE] * len(fs.SLITS), unit="um"),
        _array_col("PS", [fs.point_throughput(s.width, _WAVE) for s in fs.SLITS]),
        _array_col("UN", [fs.uniform_throughput(s.name, _WAVE) for s in fs.SLITS]),
    ], name="PATHLOSS")
    # the point-source throughput as a function of the across-slit source position SRCXPOS
    # (fraction of the slit width from its centre), as the official 2-D pathloss files tabulate it
    xpos = np.round(np.arange(-0.5, 0.5001, 0.05), 3)
    rows = [(sl, x) for sl in fs.SLITS for x in xpos]
    bypos = fits.BinTableHDU.from_columns([
        fits.Column(name="SLIT_NAME", format="8A", array=[sl.name for sl, _ in rows]),
        fits.Column(name="SRCXPOS", format="D", array=[x for _, x in rows]),
        _array_col("WAVELENGTH", [_WAVE] * len(rows), unit="um"),
        _array_col("PS", [fs.point_throughput(sl.width, _WAVE, x * sl.width) for sl, x in rows]),
    ], name="PS_XPOS")
    return _write([_primary("pathloss"), tab, bypos], path)


def write_photom(path):
    n = len(fs.SLITS)
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="FILTER", format="12A", array=[fs.FILTER] * n),
        fits.Column(name="GRATING", format="12A", array=[fs.GRATING] * n),
        fits.Column(name="SLIT_NAME", format="8A", array=_names()),
        fits.Column(name="PHOTMJ", format="D", unit="MJy/(DN/s)", array=[fs.PHOTMJ] * n),
        _array_col("WAVELENGTH", [_WAVE] * n, unit="um"),
        _array_col("RELRESPONSE", [fs.relresponse(_WAVE)] * n),
    ], name="PHOTOM")
    tab.header["PIXAR_SR"] = fs.PIXAR_SR
    tab.header["PIXAR_A2"] = fs.PIXAR_A2
    return _write([_primary("photom", PIXAR_SR=fs.PIXAR_SR, PIXAR_A2=fs.PIXAR_A2), tab], path)


def write_apcorr(path):
    wave = np.linspace(2.80, 5.20, 241)
    size = np.arange(1.0, 41.01, 0.25)
    rows = [1.0 / fs.enclosed_fraction(s.width, wave[None, :], size[:, None]) for s in fs.SLITS]
    tab = fits.BinTableHDU.from_columns([
        fits.Column(name="SLIT_NAME", format="8A", array=_names()),
        _array_col("WAVELENGTH", [wave] * len(rows), unit="um"),
        _array_col("SIZE", [size] * len(rows), unit="pixel"),
        fits.Column(name="APCORR", format=f"{size.size * wave.size}D", dim=f"({wave.size},{size.size})",
                    array=np.stack(rows)),
    ], name="APCORR")
    return _write([_primary("apcorr"), tab], path)


def write_extract1d(path):
    width = {"S200A1": 7, "S200A2": 25, "S400A1": 29, "S1600A1": 11}
    aps = [{"id": s.name, "region_type": "target", "disp_axis": 1, "spectral_order": 1,
            "extract_width": width[s.name], "bkg_coeff": None, "use_source_posn": s.name == fs.PRIMARY}
           for s in fs.SLITS]
    aps.append({"id": "ANY", "region_type": "target", "disp_axis": 1, "spectral_order": 1,
                "extract_width": 7, "bkg_coeff": None, "use_source_posn": True})
    tree = {"reftype": "EXTRACT1D", "instrument": "NIRSPEC", "exp_type": "NRS_FIXEDSLIT",
            "pedigree": "SIMULATION", "useafter": _USEAFTER, "apertures": aps}
    with open(path, "w") as fh:
        json.dump(tree, fh, indent=1, sort_keys=True)
        fh.write("\n")
    return os.path.basename(path)


def write_store(refdir, detectors, pixel_flats):
    """Write all reference files and ``webbspec_0001.context.yaml``; returns the context path."""
    os.makedirs(refdir, exist_ok=True)
    grating = fs.GRATING.lower()
    sel = {"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "GRATING": fs.GRATING, "FILTER": fs.FILTER}
    refs = {"specwcs": [], "flat": []}
    for det in detectors:
        d = det.name.lower()
        m = dict(sel, DETECTOR=det.name)
        refs["specwcs"].append({"match": m, "file": write_specwcs(
            det, os.path.join(refdir, f"nirspec_fs_specwcs_{grating}_{d}_0001.fits"))})
        refs["flat"].append({"match": m, "file": write_flat(
            det, pixel_flats[det.name], os.path.join(refdir, f"nirspec_fs_flat_{grating}_{d}_0001.fits"))})
    one = {
        "wavecorr": write_wavecorr(os.path.join(refdir, "nirspec_fs_wavecorr_0001.fits")),
        "pathloss": write_pathloss(os.path.join(refdir, f"nirspec_fs_pathloss_{grating}_0001.fits")),
        "photom": write_photom(os.path.join(refdir, f"nirspec_fs_photom_{grating}_0001.fits")),
        "apcorr": write_apcorr(os.path.join(refdir, f"nirspec_fs_apcorr_{grating}_0001.fits")),
        "extract1d": write_extract1d(os.path.join(refdir, "nirspec_fs_extract1d_0001.json")),
    }
    det_any = {"DETECTOR": [d.name for d in detectors]}
    for rt, fname in one.items():
        match = {"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT"} if rt in ("wavecorr", "extract1d") \
            else dict(sel)
        match.update(det_any)
        refs[rt] = [{"match": match, "file": fname}]
    ctx = json.loads(json.dumps({"context": "webbspec_0001", "references": refs}))   # no YAML aliases
    path = os.path.join(refdir, "webbspec_0001.context.yaml")
    with open(path, "w") as fh:
        fh.write("# webbspec reference context (simulated NIRSpec FS); first matching rule wins\n")
        yaml.safe_dump(ctx, fh, sort_keys=False, default_flow_style=None)
    return path
