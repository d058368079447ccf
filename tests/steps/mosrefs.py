"""Small synthetic NIRSpec MOS reference files in the official layouts (astropy only) and MOS
slitlets with known arrays, for step tests.

Layouts as stdatamodels writes them: NirspecQuadFlatModel (per quadrant EXTVER: SCI / ERR / DQ
(planes, 171, 365), WAVELENGTH, FAST_VARIATION), PathlossModel with SHUTTERS per aperture,
BarshadowModel (DATA1X1 / VAR1X1 / DATA1X3 / VAR1X3, CRVAL/CDELT on DATA1X1), NrsMosPhotomModel
(PHOTOM without a slit column), NirspecMosAreaModel (AREA: quadrant, shutter_x, shutter_y,
pixarea), msaoper JSON.
"""

import json

import numpy as np
from astropy.io import fits

from officialrefs import primary
from webbspec.io.datamodels import Model, Slit

NCOL, NROW = 171, 365


def mos_primary(reftype, datamodl, **extra):
    return primary(reftype, datamodl, EXP_TYPE="NRS_MSASPEC", P_EXP_TY="NRS_MSASPEC|", **extra)


def _fast(wl, data, err):
    n = len(wl)
    cols = [fits.Column("slit_name", "15A", array=["ANY"]), fits.Column("nelem", "J", array=[n])]
    cols += [fits.Column(k, f"{n}E", array=np.asarray(v, np.float32)[None]) for k, v in
             (("wavelength", wl), ("data", data), ("error", err))]
    return cols


def write_quad_fflat(path, quadrants):
    """quadrants: {q: (plane_wl [um], sci (nz, 171, 365), err (same), (wl, data, error) fast row)}."""
    hdus = [mos_primary("fflat", "NirspecQuadFlatModel")]
    for q, (plane_wl, sci, err, fast) in sorted(quadrants.items()):
        hdus += [fits.ImageHDU(np.asarray(sci, np.float32), name="SCI", ver=q),
                 fits.ImageHDU(np.zeros(np.shape(sci), np.uint32), name="DQ", ver=q),
                 fits.ImageHDU(np.asarray(err, np.float32), name="ERR", ver=q),
                 fits.BinTableHDU.from_columns([fits.Column("wavelength", "E", array=np.asarray(plane_wl, np.float32))],
                                               name="WAVELENGTH", ver=q),
                 fits.BinTableHDU.from_columns(_fast(*fast), name="FAST_VARIATION", ver=q)]
    fits.HDUList(hdus).writeto(path)
    return str(path)


def write_mos_pathloss(path, apertures):
    """apertures: {name: (shutters, ps (nwave, ny, nx), (crval1, cdelt1, crval2, cdelt2, crval3 [m],
    cdelt3 [m]), uni (nwave,), (crval1 [m], cdelt1 [m]))}."""
    hdus = [mos_primary("pathloss", "PathlossModel")]
    for k, (name, (shutters, ps, w3, uni, w1)) in enumerate(apertures.items(), start=1):
        h = fits.ImageHDU(np.asarray(ps, np.float32), name="PS", ver=k)
        for key, val in zip(("CRVAL1", "CDELT1", "CRVAL2", "CDELT2", "CRVAL3", "CDELT3"), w3):
            h.header[key] = val
        for key in ("CRPIX1", "CRPIX2", "CRPIX3"):
            h.header[key] = 1.0
        h.header["APERTURE"], h.header["SHUTTERS"] = name, shutters
        u = fits.ImageHDU(np.asarray(uni, np.float32), name="UNI", ver=k)
        u.header["CRPIX1"], u.header["CRVAL1"], u.header["CDELT1"] = 1.0, *w1
        hdus += [h, fits.ImageHDU(np.zeros_like(ps, np.float32), name="PSVAR", ver=k), u,
                 fits.ImageHDU(np.zeros_like(uni, np.float32), name="UNIVAR", ver=k)]
    fits.HDUList(hdus).writeto(path)
    return str(path)


def write_barshadow(path, data1x1, data1x3, crval1, cdelt1):
    """(1001, nwave) shadows; crval1 / cdelt1 in metres, CRVAL2 = -1, CDELT2 = 0.002."""
    d1 = fits.ImageHDU(np.asarray(data1x1, np.float32), name="DATA1X1")
    for key, val in (("CRVAL1", crval1), ("CDELT1", cdelt1), ("CRVAL2", -1.0), ("CDELT2", 0.002)):
        d1.header[key] = val
    hdus = [mos_primary("barshadow", "BarshadowModel", GRATING="G395M"), d1,
            fits.ImageHDU(np.zeros_like(data1x1, np.float32), name="VAR1X1"),
            fits.ImageHDU(np.asarray(data1x3, np.float32), name="DATA1X3"),
            fits.ImageHDU(np.zeros_like(data1x3, np.float32), name="VAR1X3")]
    fits.HDUList(hdus).writeto(path)
    return str(path)


def write_mos_photom(path, rows, **extra):
    """rows: [(filter, grating, photmj, wavelength [um], relresponse)]."""
    n = max(len(r[3]) for r in rows) + 2
    wave, rel = np.zeros((len(rows), n), np.float32), np.zeros((len(rows), n), np.float32)
    for i, r in enumerate(rows):
        wave[i, :len(r[3])], rel[i, :len(r[4])] = r[3], r[4]
    cols = [fits.Column("filter", "12A", array=[r[0] for r in rows]),
            fits.Column("grating", "15A", array=[r[1] for r in rows]),
            fits.Column("photmj", "E", array=[r[2] for r in rows]),
            fits.Column("uncertainty", "E", array=np.zeros(len(rows))),
            fits.Column("nelem", "I", array=[len(r[3]) for r in rows]),
            fits.Column("wavelength", f"{n}E", array=wave), fits.Column("relresponse", f"{n}E", array=rel),
            fits.Column("reluncertainty", f"{n}E", array=np.zeros_like(rel))]
    fits.HDUList([mos_primary("photom", "NrsMosPhotomModel", **extra),
                  fits.BinTableHDU.from_columns(cols, name="PHOTOM")]).writeto(path)
    return str(path)


def write_mos_area(path, areas):
    """areas: {(quadrant, shutter_x = row, shutter_y = column): pixarea [arcsec^2]}."""
    keys = list(areas)
    cols = [fits.Column("quadrant", "I", array=[k[0] for k in keys]),
            fits.Column("shutter_x", "I", array=[k[1] for k in keys]),
            fits.Column("shutter_y", "I", array=[k[2] for k in keys]),
            fits.Column("pixarea", "E", array=[areas[k] for k in keys])]
    fits.HDUList([mos_primary("area", "NirspecMosAreaModel", FILTER="F290LP", GRATING="G395M"),
                  fits.BinTableHDU.from_columns(cols, name="AREA")]).writeto(path)
    return str(path)


def write_msaoper(path, shutters):
    """shutters: [(Q, x, y, state)] ('open' / 'closed'), written in all three state columns but
    "Internal state" / "TA state" left 'closed' when the tuple has a 5th element 'state-only'."""
    entries = []
    for q, x, y, state, *only in shutters:
        other = "closed" if only else state
        entries.append({"Q": q, "x": x, "y": y, "state": state, "TA state": other, "Internal state": other,
                        "Vignetted": "no"})
    with open(path, "w") as f:
        json.dump({"reftype": "MSAOPER", "instrument": "NIRSPEC", "msaoper": entries}, f)
    return str(path)


def mos_slitlet(name, *, state="1x1", quadrant=3, xcen=100, ycen=50, srctype="EXTENDED", shape=(12, 40),
                lam=(1.1, 1.9), slit_y=None, sci=10.0, vp=4.0, vr=1.0, srcname=None, source_id=None,
                xpos=0.0, ypos=0.0, keywords=True):
    """A MOS slitlet cutout with linear wavelengths along x and SLIT_Y (open-shutter heights) along
    y; ``keywords=False``: no XCEN/YCEN (the reference shutter from SHUTTRID, as official files)."""
    ny, nx = shape
    wave = np.broadcast_to(np.linspace(*lam, nx), shape).astype(np.float32)
    ys = np.broadcast_to((np.linspace(-1.6, 1.6, ny) if slit_y is None else np.asarray(slit_y))[:, None],
                         shape).astype(np.float32)
    sid = int(name) + 1000 if source_id is None else source_id
    h = fits.Header({"SLTNAME": str(name), "SLITID": int(name), "SOURCEID": sid,
                     "SRCNAME": srcname or f"1234_{sid}", "SRCTYPE": srctype, "SHUTSTA": state,
                     "MSAQUAD": quadrant, "SHUTTRID": xcen + (ycen - 1) * 365, "SRCXPOS": xpos, "SRCYPOS": ypos,
                     "SLTYSCL": 1.15, "SLTSTRT1": 1, "SLTSTRT2": 1, "SLTSIZE1": nx, "SLTSIZE2": ny,
                     "DISPAXIS": 1, "SPORDER": 1})
    if keywords:
        h["XCEN"], h["YCEN"] = xcen, ycen
    return Slit(h, {"SCI": np.full(shape, sci, np.float32), "ERR": np.full(shape, np.sqrt(vp + vr), np.float32),
                    "DQ": np.zeros(shape, np.uint32), "VAR_POISSON": np.full(shape, vp, np.float32),
                    "VAR_RNOISE": np.full(shape, vr, np.float32), "WAVELENGTH": wave.copy(), "SLIT_Y": ys.copy()})


def mos_model(*slits, **primary_keys):
    hdr = fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_MSASPEC", "FILTER": "F290LP", "GRATING": "G395M",
                       "DATAMODL": "MultiSlitModel", "SUBSTRT1": 1, "SUBSTRT2": 1, **primary_keys})
    return Model(hdr, list(slits), "multi")


# ---------------------------------------------------------------- optics with a full MSA
PITCH = (0.27, 0.53)                  # arcsec: shutter pitch along x (rows) and y (columns)
OPEN = (0.20, 0.46)                   # arcsec: open area
# MSA position [arcsec] of shutter (row 1, column 1) per quadrant; Q2 is far off the detectors
ORIGIN = {1: (-100.0, 3.0), 2: (-400.0, -400.0), 3: (2.0, 3.0), 4: (2.0, -93.0)}
RATE_HEADER = {"EXP_TYPE": "NRS_MSASPEC", "DETECTOR": "NRS1", "FILTER": "F290LP", "GRATING": "G395M",
               "SUBARRAY": "FULL", "GWA_XTIL": 0.3527, "GWA_YTIL": 0.1321, "RA_REF": 53.16, "DEC_REF": -27.79,
               "ROLL_REF": 138.5, "V2_REF": 321.3, "V3_REF": -478.6, "VA_SCALE": 1.00003, "PROGRAM": "01234",
               "MSAMETFL": "jw01234001001_01_msa.fits", "MSAMETID": 1, "PATT_NUM": 1, "INSTRUME": "NIRSPEC",
               "DATAMODL": "ImageModel"}


def mos_optical_refs(directory):
    """{reftype: path} of the simulator's NIRSpec optical references with a full-size MSA
    reference (four 365 x 171 shutter tables at ORIGIN, pitch PITCH, open OPEN)."""
    from astropy.modeling import models as am
    from stdatamodels.jwst import datamodels as dm

    from webbspec.instruments.nirspec import msa
    from webbspec.simulate import nirspec_optics_refs as design

    arcsec = design.MSA_ARCSEC
    names = design.write_optical_refs(str(directory))
    k = np.arange(msa.SHUTTERS_PER_COLUMN * NCOL)
    t = np.zeros(k.size, [("NO", "<i4"), ("XC", "<f8"), ("YC", "<f8"), ("SIZEX", "<f8"), ("SIZEY", "<f8")])
    t["NO"] = k + 1
    t["XC"] = (k % msa.SHUTTERS_PER_COLUMN) * PITCH[0] * arcsec
    t["YC"] = (k // msa.SHUTTERS_PER_COLUMN) * PITCH[1] * arcsec
    t["SIZEX"], t["SIZEY"] = OPEN[0] * arcsec, OPEN[1] * arcsec
    fs_msa = design.build_models()["msa"]
    data = {f"Q{q}": t.copy() for q in ORIGIN}
    data["Q5"] = fs_msa.Q5.data
    models = {f"Q{q}": am.Shift(x * arcsec) & am.Shift(y * arcsec) for q, (x, y) in ORIGIN.items()}
    models["Q5"] = am.Identity(2)
    m = dm.MSAModel(models=models, data=data)
    m.meta = fs_msa.meta
    design.save_reproducibly(m, str(directory / "mos_msa.asdf"))
    out = {rt: str(directory / f) for rt, f in names.items()}
    out["msa"] = str(directory / "mos_msa.asdf")
    return out


def mos_rate(path, value=1.0):
    """A full-frame `_rate` Model at ``path`` (not written) with RATE_HEADER: SCI = value +
    1e-4 x + 1e-3 y (every pixel distinct), ERR, DQ, VAR_*."""
    y, x = np.mgrid[0:2048, 0:2048]
    sci = (value + 1e-4 * x + 1e-3 * y).astype(np.float32)
    hdr = fits.Header(RATE_HEADER)
    return Model(hdr, [Slit(fits.Header({"BUNIT": "DN/s"}),
                            {"SCI": sci, "ERR": np.full(sci.shape, 0.1, np.float32),
                             "DQ": np.zeros(sci.shape, np.uint32), "VAR_POISSON": np.full(sci.shape, 0.006, np.float32),
                             "VAR_RNOISE": np.full(sci.shape, 0.004, np.float32)})], "single", {}, None, str(path))
