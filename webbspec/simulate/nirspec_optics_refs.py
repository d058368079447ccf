"""The NIRSpec optical-model reference files (official CRDS formats) of the simulated instrument.

A made-up but self-consistent NIRSpec with F290LP / G395M, written as the stdatamodels reference
models (ASDF) the official assign_wcs reads: fpa, camera, collimator, disperser, fore, msa, ote,
wavelengthrange. The design (all linear optics; the official code supplies the 3-D grating
equation and the GWA rotations):

* FPA: 18 um pixels; NRS1 and NRS2 side by side along x with a GAP_PIX gap; NRS2's model takes
  SCA pixels (the official detector frame flips NRS2 by 180 deg), so in DMS pixels both
  detectors disperse towards +x.
* camera / collimator: tangent = -x/F (camera) and x = F * tangent (collimator), F_CAM/F_COL =
  180/387 so that 1 arcsec at the MSA (MSA_ARCSEC metres) is 10 pixels in both axes.
* grating: G395M at GROOVES lines/m; the grating is tilted by TILT_Y (near Littrow for LAM_C, so
  the dispersion is nearly uniform and the slit image is not anamorphic) and misaligned by small
  THETA_X/Y/Z; GWA tilt sensor readings shift theta_x/theta_y as the official code does.
* MSA: the quadrant models are identities; Q5 rows 0-4 are the fixed slits at their real sizes
  (S200: 0.2" x 3.2", S400A1 0.4" x 3.8", S1600A1 1.6" x 1.6") at different MSA positions, so
  their spectra differ in row and in wavelength zero point. Q1-Q4 hold a few placeholder shutters.
* fore: MSA metres -> OTEIP degrees with a small chromatic scale (1 + FORE_CHROM*(lam - 4 um));
  ote: OTEIP degrees -> V2/V3 arcsec with a small rotation.

With these constants G395M covers 2.87-4.1 um on NRS1 and the rest on NRS2, S200A1 near row 1020.

PRISM / CLEAR (``write_optical_refs(..., grating="PRISM")``): the same optics with a CaF2-like
double-pass prism at the GWA instead of the grating (Sellmeier coefficients of CaF2 near room
temperature, Zemax thermal coefficients of a CaF2-like glass, prism angle PRISM_ANGLE, GWA tilt
PRISM_TILT_Y so that 0.6-5.3 um falls on NRS1 columns ~830-1210 for S200A1) and a FORE file for
FILTER CLEAR; the exposures' GWA temperature GWA_TILT = PRISM_GWA_TEMPERATURE (less than 20 K
above PRISM_TREF: the official code then uses the plain Sellmeier index).
"""

import os

import numpy as np

from ..instruments.nirspec.fs import EXP_TYPE
from ..instruments.nirspec.optics import OPTICAL_REF_EXP_TYPES

__all__ = ["write_optical_refs", "ref_files", "OPTICAL_REFTYPES", "PRISM_LAM_RANGE", "PRISM_GWA_TEMPERATURE",
           "PRISM_GWA_TILT_READINGS", "PRISM_REF_FILES", "LAM_RANGE", "FS_SLITS", "SLIT_SIZES",
           "V2V3_S200A1", "GWA_TILT_READINGS", "SUBARRAYS", "REF_FILES", "save_reproducibly"]

OPTICAL_REFTYPES = ("camera", "collimator", "disperser", "fore", "fpa", "msa", "ote", "wavelengthrange")
REF_FILES = {rt: f"nirspec_{rt}_0001.asdf" for rt in OPTICAL_REFTYPES}
REF_FILES["disperser"] = "nirspec_disperser_g395m_0001.asdf"
REF_FILES["fore"] = "nirspec_fore_f290lp_0001.asdf"
# the PRISM set differs in the disperser and the FORE (FILTER CLEAR)
PRISM_REF_FILES = dict(REF_FILES, disperser="nirspec_disperser_prism_0001.asdf",
                       fore="nirspec_fore_clear_0001.asdf")
# G395H (the NIRSpec IFU programs: the official IFU WCS puts no M-grating light on NRS2): the
# same grating as G395M in this design, under its own name and file
G395H_REF_FILES = dict(REF_FILES, disperser="nirspec_disperser_g395h_0001.asdf")

PIX = 18e-6                 # m
XC = 1023.5                 # 0-based centre of a 2048 array
GAP_PIX = 160.0             # NRS1-NRS2 gap [pixels]
NRS2_DY = 3.0e-6            # m, NRS2 offset in y against NRS1 (traces step at the gap)
MSA_ARCSEC = 3.87e-4        # m per arcsec at the MSA
F_CAM = 0.1600              # m
F_COL = F_CAM * MSA_ARCSEC / (10 * PIX)   # 10 pixels per arcsec
GROOVES = 1.80e5            # lines / m (G395M)
LAM_C = 4.10e-6             # m, Littrow wavelength: on the camera axis (the detector gap)
TILT_Y = float(np.degrees(np.arcsin(GROOVES * LAM_C / 2)))   # deg
THETA_X, THETA_Y, THETA_Z = 0.021, -0.034, 0.027             # deg, small misalignments
CAM_TY0 = 2.0e-4            # camera tangent offset in y (slit images ~ row 1020, not 1023.5)
LAM_RANGE = (2.87e-6, 5.10e-6)   # m, F290LP_G395M
FORE_CHROM = 2.0e3          # 1/m: fore scale changes by 0.2 % per micron
OTE_ROT = 0.35              # deg
V2V3_S200A1 = (321.3, -478.6)    # arcsec: V2/V3 of the MSA origin (S200A1 centre)
GWA_ZERO = (0.3316, 0.1260)      # tilt sensor zero readings (x, y)
GWA_TILT_READINGS = (0.3527, 0.1321)   # the simulated exposures' GWA_XTIL, GWA_YTIL

# PRISM (CLEAR): CaF2 Sellmeier coefficients (B1..B3; C1..C3 in um^2), CaF2-like Zemax thermal
# coefficients (D0, D1, D2, E0, E1, lambda_tk [um]) about PRISM_TREF [K] and PRISM_PREF [atm]
PRISM_KCOEF = (0.5675888, 0.4710914, 3.8484723)
PRISM_LCOEF = (0.050263605 ** 2, 0.1003909 ** 2, 34.649040 ** 2)
PRISM_TCOEF = (-2.2e-5, 1.3e-8, -2.0e-11, 6.0e-7, 3.0e-10, 0.21)
PRISM_TREF, PRISM_PREF = 40.0, 1.0
PRISM_ANGLE = 25.0               # deg between the front and the (reflecting) back face
PRISM_TILT_Y = -33.2             # deg: 1.5 um from S200A1 near NRS1 column 900
PRISM_THETA = (0.017, -0.029, 0.031)     # deg, small misalignments (x, y, z)
PRISM_GWA_ZERO = (0.2841, 0.1875)        # tilt sensor zero readings (x, y)
PRISM_GWA_TILT_READINGS = (0.2902, 0.1809)   # GWA_XTIL, GWA_YTIL of PRISM exposures
PRISM_GWA_TEMPERATURE = 38.4     # K, GWA_TILT of PRISM exposures
PRISM_LAM_RANGE = (0.6e-6, 5.3e-6)      # m, CLEAR_PRISM

FS_SLITS = ("S200A1", "S200A2", "S400A1", "S1600A1", "S200B1")
# (width, length) arcsec and the slit centre at the MSA (x across = dispersion, y along) arcsec
SLIT_SIZES = {"S200A1": (0.2, 3.2), "S200A2": (0.2, 3.2), "S400A1": (0.4, 3.8),
              "S1600A1": (1.6, 1.6), "S200B1": (0.2, 3.2)}
SLIT_CENTRES = {"S200A1": (0.0, 0.0), "S200A2": (-14.0, 4.2), "S400A1": (9.0, -4.4),
                "S1600A1": (-5.0, 8.0), "S200B1": (21.0, -9.0)}

# simulated frames: (SUBARRAY, SUBSTRT1, SUBSTRT2, SUBSIZE1, SUBSIZE2) per scale, NRS1 first
SUBARRAYS = {"small": (("NRS1", "ALLSLITS", 1, 897, 2048, 256),),
             "full": (("NRS1", "FULL", 1, 1, 2048, 2048), ("NRS2", "FULL", 1, 1, 2048, 2048))}

_USEAFTER = "2022-01-01T00:00:00"


def _meta(model, reftype, description, **instrument):
    m = model.meta
    m.reftype = reftype.upper()
    m.description = description
    m.author = "webbspec simulator"
    m.pedigree = "DUMMY"
    m.useafter = _USEAFTER
    m.telescope = "JWST"
    m.instrument.name = "NIRSPEC"
    for k, v in instrument.items():
        setattr(m.instrument, k, v)
    m.exposure.type = EXP_TYPE
    m.exposure.p_exptype = OPTICAL_REF_EXP_TYPES
    return model


def _fpa_models():
    from astropy.modeling import models as am

    dx = (1024.0 + GAP_PIX / 2) * PIX
    nrs1 = ((am.Shift(-XC) | am.Scale(PIX) | am.Shift(-dx))
            & (am.Shift(-XC) | am.Scale(PIX)))
    # NRS2 in SCA pixels: x_sca = 2047 - x_dms, so the scale is negative
    nrs2 = ((am.Shift(-XC) | am.Scale(-PIX) | am.Shift(dx))
            & (am.Shift(-XC) | am.Scale(-PIX) | am.Shift(NRS2_DY)))
    return nrs1, nrs2


def _fore_model(chromatic=FORE_CHROM):
    """(x, y, lam [m]) -> OTEIP degrees, with the explicit inverse of the same shape; the scale
    changes by ``chromatic`` [1/m] times (lam - 4 um) (0: an achromatic FORE, still 3 inputs)."""
    from astropy.modeling import models as am

    s = 1.0 / 3600.0 / MSA_ARCSEC          # deg per metre at the MSA
    chrom = am.Mapping((2,), n_inputs=3) | am.Shift(-4.0e-6) | am.Scale(chromatic) | am.Shift(1.0)

    def axis(i, factor):
        return (am.Mapping((i,), n_inputs=3) | am.Scale(factor))

    fwd = am.Mapping((0, 1, 2, 0, 1, 2)) | (axis(0, s) * chrom) & (axis(1, s) * chrom)
    inv = am.Mapping((0, 1, 2, 0, 1, 2)) | (axis(0, 1 / s) / chrom) & (axis(1, 1 / s) / chrom)
    fwd.inverse = inv
    return fwd


def _msa_tables():
    dtype = [("NO", "<i4"), ("XC", "<f8"), ("YC", "<f8"), ("SIZEX", "<f8"), ("SIZEY", "<f8")]
    a = MSA_ARCSEC
    q5 = np.array([(i + 1, SLIT_CENTRES[n][0] * a, SLIT_CENTRES[n][1] * a,
                    SLIT_SIZES[n][0] * a, SLIT_SIZES[n][1] * a) for i, n in enumerate(FS_SLITS)],
                  dtype=dtype)
    data = {}
    for q, (x0, y0) in enumerate(((-40.0, 40.0), (40.0, 40.0), (-40.0, -40.0), (40.0, -40.0)), 1):
        # a 2 x 2 block of placeholder shutters (0.2" x 0.46" open area, 0.27" x 0.53" pitch)
        rows = [(k + 1, (x0 + 0.27 * (k % 2)) * a, (y0 + 0.53 * (k // 2)) * a, 0.2 * a, 0.46 * a)
                for k in range(4)]
        data[f"Q{q}"] = np.array(rows, dtype=dtype)
    data["Q5"] = q5
    return data


def _camera_model(am):
    """FPA (x, y) [m] -> GWA-side tangents: tx = -x/F, ty = TY0 - (y/F) g(x/F), with g(u) ~
    sqrt(1 + u^2). The grating conserves the along-slit direction cosine, so a plain tangent
    camera would stretch the slit by 1/cos of the dispersion angle (2.4% across NRS1); g keeps
    the along-slit scale within 1e-3 of 0.1"/pixel, as a real spectrograph camera is built to.
    Explicit inverse (exact): x = -F tx, y = -F (ty - TY0) / g(tx)."""
    g = am.Polynomial1D(4, c0=1.0, c2=0.5, c4=-0.125)
    first = am.Mapping((0,), n_inputs=2)
    second = am.Mapping((1,), n_inputs=2)
    fwd = am.Mapping((0, 1, 0, 1)) | ((first | am.Scale(-1.0 / F_CAM))
                                      & (((second | am.Scale(-1.0 / F_CAM)) * (first | am.Scale(1.0 / F_CAM) | g))
                                         | am.Shift(CAM_TY0)))
    inv = am.Mapping((0, 1, 0, 1)) | ((first | am.Scale(-F_CAM))
                                      & ((second | am.Shift(-CAM_TY0) | am.Scale(-F_CAM)) / (first | g)))
    fwd.inverse = inv
    return fwd


def _prism_disperser(dm, tilt):
    """The PRISM DisperserModel (official prism fields: angle, kcoef, lcoef, tcoef, tref, pref)."""
    disp = dm.DisperserModel(angle=PRISM_ANGLE, kcoef=list(PRISM_KCOEF), lcoef=list(PRISM_LCOEF),
                             tcoef=list(PRISM_TCOEF), tref=PRISM_TREF, pref=PRISM_PREF,
                             theta_x=PRISM_THETA[0], theta_y=PRISM_THETA[1], theta_z=PRISM_THETA[2],
                             gwa_tiltx=tilt(PRISM_GWA_ZERO[0]), gwa_tilty=tilt(PRISM_GWA_ZERO[1]))
    return _disperser_meta(disp, "PRISM", PRISM_TILT_Y, PRISM_LAM_RANGE,
                           "Simulated NIRSpec PRISM disperser (CaF2-like double-pass prism)")


def _disperser_meta(disp, grating, tilt_y, wbound, description):
    """The orientation, bounds and official keywords every simulated disperser carries."""
    disp.tilt_y = tilt_y
    disp.tilt_x = 0.0
    disp.wbound = list(wbound)
    _meta(disp, "disperser", description, grating=grating)
    disp.meta.instrument.p_grating = f"{grating}|"
    disp.meta.wavelength_units = "m"
    return disp


def ref_files(grating="G395M"):
    """{reftype: file name} of the optical set for ``grating`` (G395M, G395H or PRISM)."""
    if grating not in ("G395M", "G395H", "PRISM"):
        raise ValueError(f"no simulated optical set for grating {grating!r}")
    return dict({"PRISM": PRISM_REF_FILES, "G395H": G395H_REF_FILES}.get(grating, REF_FILES))


def build_models(grating="G395M"):
    """{reftype: stdatamodels reference model} of the design (not saved); ``grating`` G395M
    (with FORE for F290LP) or PRISM (with FORE for CLEAR)."""
    ref_files(grating)
    from astropy.modeling import models as am
    from stdatamodels.jwst import datamodels as dm

    out = {}
    nrs1, nrs2 = _fpa_models()
    out["fpa"] = _meta(dm.FPAModel(nrs1_model=nrs1, nrs2_model=nrs2), "fpa",
                       "Simulated NIRSpec FPA: 0-based SCA pixel -> FPA metres")
    out["fpa"].meta.input_units, out["fpa"].meta.output_units = "pixel", "m"
    cam = _camera_model(am)
    out["camera"] = _meta(dm.CameraModel(model=cam), "camera",
                          "Simulated NIRSpec camera: FPA metres -> GWA-side tangents")
    out["camera"].meta.input_units, out["camera"].meta.output_units = "m", ""
    col = am.Scale(F_COL) & am.Scale(F_COL)
    out["collimator"] = _meta(dm.CollimatorModel(model=col), "collimator",
                              "Simulated NIRSpec collimator: GWA-side tangents -> MSA metres")
    out["collimator"].meta.input_units, out["collimator"].meta.output_units = "", "m"

    def tilt(zero):
        return {"temperatures": [38.0], "tilt_model": am.Polynomial1D(1, c0=0.0, c1=100.0),
                "unit": "arcsec", "zeroreadings": [zero]}

    if grating == "PRISM":
        out["disperser"] = _prism_disperser(dm, tilt)
    else:
        disp = dm.DisperserModel(groovedensity=GROOVES, theta_x=THETA_X, theta_y=THETA_Y,
                                 theta_z=THETA_Z, gwa_tiltx=tilt(GWA_ZERO[0]), gwa_tilty=tilt(GWA_ZERO[1]))
        out["disperser"] = _disperser_meta(disp, grating, TILT_Y, LAM_RANGE, f"Simulated NIRSpec {grating} disperser")

    sel = ["F290LP_G395M", "F290LP_G395H", "F170LP_G235M", "F100LP_G140M", "CLEAR_PRISM"]
    wr = [list(LAM_RANGE), list(LAM_RANGE), [1.66e-6, 3.07e-6], [0.97e-6, 1.84e-6], [0.6e-6, 5.3e-6]]
    out["wavelengthrange"] = _meta(
        dm.WavelengthrangeModel(wrange_selector=sel, wrange=wr, order=[1, 1, 1, 1, -1], wunits="m"),
        "wavelengthrange", "Simulated NIRSpec wavelength ranges (metres)")

    data = _msa_tables()
    msa = dm.MSAModel(models={f"Q{i}": am.Identity(2) for i in range(1, 6)}, data=data)
    _meta(msa, "msa", "Simulated NIRSpec MSA; Q5 rows 0-4 are the fixed slits")
    msa.meta.input_units, msa.meta.output_units = "m", "m"
    out["msa"] = msa

    filt = "CLEAR" if grating == "PRISM" else "F290LP"
    fore = _meta(dm.FOREModel(model=_fore_model()), "fore",
                 "Simulated NIRSpec FORE: MSA metres, wavelength [m] -> OTEIP degrees", filter=filt)
    fore.meta.instrument.p_filter = f"{filt}|"
    fore.meta.input_units, fore.meta.output_units = "m", "deg"
    out["fore"] = fore

    ote = ((am.Scale(3600.0) & am.Scale(3600.0)) | am.Rotation2D(OTE_ROT)
           | (am.Shift(V2V3_S200A1[0]) & am.Shift(V2V3_S200A1[1])))
    out["ote"] = _meta(dm.OTEModel(model=ote), "ote", "Simulated JWST OTE: OTEIP degrees -> V2/V3 arcsec")
    out["ote"].meta.input_units, out["ote"].meta.output_units = "deg", "arcsec"
    return out


def save_reproducibly(model, path):
    """``model.save(path)`` with meta.date = USEAFTER instead of the time of writing (the JWST
    datamodels stamp the clock on save), so the same design gives the same bytes."""
    import warnings
    from unittest import mock

    from stdatamodels.jwst.datamodels.model_base import JwstDataModel
    from stdatamodels.model_base import DataModel

    model.meta.date = _USEAFTER
    with warnings.catch_warnings(), mock.patch.object(JwstDataModel, "on_save", DataModel.on_save):
        warnings.simplefilter("ignore")
        model.save(path)


def write_optical_refs(refdir, scale="small", grating="G395M"):
    """Write the optical-model set into ``refdir``; returns {reftype: file name}.

    The same optics serve every scale (``scale`` only documents the caller's frame: the small
    scale is an NRS1 subarray of the same instrument). ``grating="PRISM"`` writes the PRISM
    set (:data:`PRISM_REF_FILES`: its own disperser and CLEAR fore files, the others shared)."""
    if scale not in SUBARRAYS:
        raise ValueError(f"unknown scale {scale!r}")
    names = ref_files(grating)
    os.makedirs(refdir, exist_ok=True)
    out = {}
    for reftype, model in build_models(grating).items():
        save_reproducibly(model, os.path.join(refdir, names[reftype]))
        out[reftype] = names[reftype]
    return out
