"""Small synthetic reference files in the official CRDS layouts (astropy only), for step tests.

Layouts as stdatamodels writes them: NirspecFlatModel (SCI [DQ, ERR], WAVELENGTH, FAST_VARIATION),
PathlossModel (PS / PSVAR / UNI / UNIVAR per aperture EXTVER), NrsFsPhotomModel (PHOTOM),
NirspecSlitAreaModel (AREA), NrsFsApcorrModel (APCORR, numpy-order size / apcorr).
"""

import numpy as np
from astropy.io import fits


def primary(reftype, datamodl, **extra):
    h = fits.Header()
    for k, v in (("DATAMODL", datamodl), ("TELESCOP", "JWST"), ("REFTYPE", reftype.upper()),
                 ("INSTRUME", "NIRSPEC"), ("EXP_TYPE", "NRS_FIXEDSLIT"), ("P_EXP_TY", "NRS_FIXEDSLIT|"),
                 ("PEDIGREE", "DUMMY"), ("AUTHOR", "test"), ("DESCRIP", "test"),
                 ("USEAFTER", "2000-01-01T00:00:00"), *extra.items()):
        h[k] = v
    return fits.PrimaryHDU(header=h)


def write_nrs_flat(path, reftype, fast, *, sci=None, dq=None, err=None, plane_wl=None,
                   datamodl="NirspecFlatModel"):
    """fast: {slit_name: (wavelength [um], data, error)} (zero-padded rows, NELEM set)."""
    hdus = [primary(reftype, datamodl)]
    if sci is not None:
        hdus.append(fits.ImageHDU(np.asarray(sci, np.float32), name="SCI"))
    if dq is not None:
        hdus.append(fits.ImageHDU(np.asarray(dq, np.uint32), name="DQ"))
    if err is not None:
        hdus.append(fits.ImageHDU(np.asarray(err, np.float32), name="ERR"))
    if plane_wl is not None:
        hdus.append(fits.BinTableHDU.from_columns(
            [fits.Column("wavelength", "E", array=np.asarray(plane_wl, np.float32))], name="WAVELENGTH"))
    names = list(fast)
    n = max(len(v[0]) for v in fast.values()) + 3          # padding beyond NELEM
    arr = {k: np.zeros((len(names), n), np.float32) for k in ("wavelength", "data", "error")}
    for i, name in enumerate(names):
        for k, v in zip(("wavelength", "data", "error"), fast[name]):
            arr[k][i, :len(v)] = v
    cols = [fits.Column("slit_name", "15A", array=names),
            fits.Column("nelem", "J", array=[len(fast[nm][0]) for nm in names])]
    cols += [fits.Column(k, f"{n}E", array=v) for k, v in arr.items()]
    hdus.append(fits.BinTableHDU.from_columns(cols, name="FAST_VARIATION"))
    fits.HDUList(hdus).writeto(path)
    return str(path)


def write_pathloss(path, apertures):
    """apertures: {name: (ps (nwave, ny, nx), (crval1, cdelt1, crval2, cdelt2, crval3 [m], cdelt3 [m]),
    uni (nwave,), (crval1 [m], cdelt1 [m]))}."""
    hdus = [primary("pathloss", "PathlossModel")]
    for k, (name, (ps, w3, uni, w1)) in enumerate(apertures.items(), start=1):
        h = fits.ImageHDU(np.asarray(ps, np.float32), name="PS", ver=k)
        for key, val in zip(("CRVAL1", "CDELT1", "CRVAL2", "CDELT2", "CRVAL3", "CDELT3"), w3):
            h.header[key] = val
        for key in ("CRPIX1", "CRPIX2", "CRPIX3"):
            h.header[key] = 1.0
        h.header["APERTURE"], h.header["SHUTTERS"] = name, 1
        u = fits.ImageHDU(np.asarray(uni, np.float32), name="UNI", ver=k)
        u.header["CRPIX1"], u.header["CRVAL1"], u.header["CDELT1"] = 1.0, *w1
        hdus += [h, fits.ImageHDU(np.zeros_like(ps, np.float32), name="PSVAR", ver=k), u,
                 fits.ImageHDU(np.zeros_like(uni, np.float32), name="UNIVAR", ver=k)]
    fits.HDUList(hdus).writeto(path)
    return str(path)


def write_photom(path, rows, **extra):
    """rows: [(filter, grating, slit, photmj, wavelength, relresponse)]."""
    n = max(len(r[4]) for r in rows) + 2
    wave, rel = np.zeros((len(rows), n), np.float32), np.zeros((len(rows), n), np.float32)
    for i, r in enumerate(rows):
        wave[i, :len(r[4])], rel[i, :len(r[5])] = r[4], r[5]
    cols = [fits.Column("filter", "12A", array=[r[0] for r in rows]),
            fits.Column("grating", "15A", array=[r[1] for r in rows]),
            fits.Column("slit", "15A", array=[r[2] for r in rows]),
            fits.Column("photmj", "E", array=[r[3] for r in rows]),
            fits.Column("uncertainty", "E", array=np.zeros(len(rows))),
            fits.Column("nelem", "I", array=[len(r[4]) for r in rows]),
            fits.Column("wavelength", f"{n}E", array=wave), fits.Column("relresponse", f"{n}E", array=rel),
            fits.Column("reluncertainty", f"{n}E", array=np.zeros_like(rel))]
    fits.HDUList([primary("photom", "NrsFsPhotomModel", **extra),
                  fits.BinTableHDU.from_columns(cols, name="PHOTOM")]).writeto(path)
    return str(path)


def write_area(path, areas):
    cols = [fits.Column("slit_id", "15A", array=list(areas)),
            fits.Column("pixarea", "E", array=list(areas.values()))]
    fits.HDUList([primary("area", "NirspecSlitAreaModel", FILTER="F290LP", GRATING="G395M"),
                  fits.BinTableHDU.from_columns(cols, name="AREA")]).writeto(path)
    return str(path)


def write_apcorr(path, rows, sizeunit="pixels"):
    """rows: [(filter, grating, slit, wavelength (nw,), size (ns, nw), pixphase (np,),
    apcorr (ns, nw, np))] -- numpy order, as the official reader takes them."""
    f, g, s, wave, size, phase, corr = rows[0]
    nw, ns, nph = len(wave), size.shape[0], len(phase)
    cols = [fits.Column("filter", "12A", array=[r[0] for r in rows]),
            fits.Column("grating", "15A", array=[r[1] for r in rows]),
            fits.Column("slit", "15A", array=[r[2] for r in rows]),
            fits.Column("wavelength", f"{nw}E", array=np.array([r[3] for r in rows], np.float32)),
            fits.Column("nelem_wl", "I", array=[nw] * len(rows)),
            fits.Column("size", f"{ns * nw}E", dim=f"({nw},{ns})", array=np.array([r[4] for r in rows], np.float32)),
            fits.Column("nelem_size", "I", array=[ns] * len(rows)),
            fits.Column("pixphase", f"{nph}E", array=np.array([r[5] for r in rows], np.float32)),
            fits.Column("apcorr", f"{ns * nw * nph}E", dim=f"({nph},{nw},{ns})",
                        array=np.array([r[6] for r in rows], np.float32)),
            fits.Column("apcorr_err", f"{ns * nw * nph}E", dim=f"({nph},{nw},{ns})",
                        array=np.zeros((len(rows), ns, nw, nph), np.float32))]
    tab = fits.BinTableHDU.from_columns(cols, name="APCORR")
    tab.header["SIZEUNIT"] = sizeunit
    fits.HDUList([primary("apcorr", "NrsFsApcorrModel"), tab]).writeto(path)
    return str(path)
