"""The NIRSpec IFU optical-model references (official CRDS formats) of the simulated instrument.

The IFU adds four files to the NIRSpec optical set of ``nirspec_optics_refs`` (fpa, camera,
collimator, disperser, fore, msa, ote, wavelengthrange: written unchanged, G395H): ifuslicer,
ifupost, ifufore and chromcorr, the stdatamodels models the official assign_wcs reads for NRS_IFU.

Design (linear, achromatic IFU optics; the official code supplies the frame chain):

* slicer plane [m]: 30 slices side by side in x, slice k (0-based; official slice number k + 1)
  centred at XC_k = (p_k - 14.5) * SLICER_W, SLICER_W wide and SLICER_L long, p_k its place
  (interleaved: 28 ... 2 0 1 3 ... 29, :func:`slicer_centre`). The official slice map
  identifies a slice by its mean slicer x with a tolerance of 1e-4, so the pitch is >= 2e-4.
  ifuslicer: data row k = (k, XC_k, 0, SLICER_W, SLICER_L), model Identity(2).
* ifupost (spectrograph side), slice k: slicer -> MSA plane pseudo-slit
  x = A * (x - XC_k) + STAGGER_k, y = Y_k + A * y (A: slicer -> MSA scale, 0.1" per slice width;
  the slices' images stacked along the MSA y at PITCH, staggered in x by STAGGER_k so their
  wavelength zero points differ by a few pixels, as the real slices' do); no wavelength terms.
* ifufore (sky side): slicer -> MSA entrance, (x, y, lam) -> (FIELD_X + A x, FIELD_Y + A y), three
  inputs and two outputs with an explicit inverse of the same shape (official convention); the
  field is 3.0" x 3.0" (30 slices of 0.1" x 3.0"), centred FIELD_X/FIELD_Y off the MSA origin.
  The FORE model's chromatic scale then moves the field with wavelength (0.2% per um about the
  MSA origin).
* chromcorr: identity (x, y, lam) -> (x, y, lam) as a Mapping with a separate Mapping inverse (an
  Identity(3) makes a `_cal` the official code cannot reopen).

Traps of the official code these files avoid: ``../shared/docs/official-refs.md`` (IFU section).
"""

import os

import numpy as np

from ..instruments.nirspec.ifu import EXP_TYPE
from . import nirspec_optics_refs as design

__all__ = ["N_SLICES", "SLICER_W", "SLICER_L", "A", "PITCH", "STAGGER", "FIELD", "GRATING", "FILTER",
           "EXP_TYPE", "IFU_REFTYPES", "IFU_REF_FILES", "slice_msa_offsets", "build_ifu_models",
           "write_ifu_optical_refs"]

GRATING, FILTER = "G395H", "F290LP"
N_SLICES = 30
SLICER_W, SLICER_L = 2.0e-4, 6.0e-3            # m, slicer-plane slice width / length
A = 0.1 * design.MSA_ARCSEC / SLICER_W          # slicer metres -> MSA metres (0.1" per slice width)
PITCH = 3.6 * design.MSA_ARCSEC                 # m, slice images along the MSA y (3.0" long + gap)
STAGGER = 0.25 * design.MSA_ARCSEC              # m, x stagger of the slice images (2.5 pixels)
FIELD = (-6.0 * design.MSA_ARCSEC, 2.5 * design.MSA_ARCSEC)   # m, field centre at the MSA entrance

IFU_REFTYPES = ("ifuslicer", "ifupost", "ifufore", "chromcorr")
IFU_REF_FILES = {"ifuslicer": "nirspec_ifuslicer_0001.asdf", "ifupost": "nirspec_ifupost_0001.asdf",
                 "ifufore": "nirspec_ifufore_0001.asdf", "chromcorr": "nirspec_chromcorr_f290lp_0001.asdf"}


def slicer_centre(k):
    """Slicer-plane x [m] of slice k (0-based). The slices are interleaved as on the real slicer:
    even ones on one side of the middle, odd ones on the other (28 ... 2 0 1 3 ... 29), so slices
    1 and 3 are neighbours; the official cube_build takes the slice width as their distance."""
    return ((14 - k // 2 if k % 2 == 0 else 15 + k // 2) - 14.5) * SLICER_W


def slice_msa_offsets(k):
    """(x, y) [m] at the MSA plane of slice k's image centre (ifupost)."""
    return STAGGER * ((k % 3) - 1), (k - 14.5) * PITCH


def _ifu_meta(model, reftype, description, **instrument):
    design._meta(model, reftype, description, **instrument)
    model.meta.exposure.type = EXP_TYPE
    model.meta.exposure.p_exptype = f"{EXP_TYPE}|"
    model.meta.input_units, model.meta.output_units = "m", "m"
    return model


def build_ifu_models():
    """{reftype: stdatamodels reference model} of the four IFU files (not saved)."""
    from astropy.modeling import models as am
    from stdatamodels.jwst import datamodels as dm

    out = {}
    data = np.array([(k, slicer_centre(k), 0.0, SLICER_W, SLICER_L) for k in range(N_SLICES)], float)
    out["ifuslicer"] = _ifu_meta(dm.IFUSlicerModel(model=am.Identity(2), data=data), "ifuslicer",
                                 "Simulated NIRSpec IFU slicer: 30 slices side by side in x")
    slices = {}
    for k in range(N_SLICES):
        x0, y0 = slice_msa_offsets(k)
        slices[f"slice_{k}"] = {
            "linear": am.Shift(-slicer_centre(k)) & am.Identity(1),
            "xpoly": am.Polynomial2D(1, c0_0=x0, c1_0=A),
            "xpoly_distortion": am.Polynomial2D(1),
            "ypoly": am.Polynomial2D(1, c0_0=y0, c0_1=A),
            "ypoly_distortion": am.Polynomial2D(1),
        }
    out["ifupost"] = _ifu_meta(dm.IFUPostModel(slice_models=slices), "ifupost",
                               "Simulated NIRSpec IFU post-optics: slicer -> MSA pseudo-slit")
    fwd = am.Mapping((0, 1), n_inputs=3) | ((am.Scale(A) | am.Shift(FIELD[0])) & (am.Scale(A) | am.Shift(FIELD[1])))
    fwd.inverse = am.Mapping((0, 1), n_inputs=3) | ((am.Shift(-FIELD[0]) | am.Scale(1 / A))
                                                    & (am.Shift(-FIELD[1]) | am.Scale(1 / A)))
    out["ifufore"] = _ifu_meta(dm.IFUFOREModel(model=fwd), "ifufore",
                               "Simulated NIRSpec IFU fore: slicer plane -> MSA entrance", filter=FILTER)
    cc = am.Mapping((0, 1, 2), name="chromcorr")
    cc.inverse = am.Mapping((0, 1, 2), name="chromcorr_inverse")
    out["chromcorr"] = _ifu_meta(dm.ChromCorrModel(model=cc), "chromcorr",
                                 "Simulated NIRSpec IFU chromaticity correction (identity)", filter=FILTER)
    out["chromcorr"].meta.input_units = out["chromcorr"].meta.output_units = "deg"
    for rt in ("ifufore", "chromcorr"):
        out[rt].meta.instrument.p_filter = f"{FILTER}|"
    return out


def write_ifu_optical_refs(refdir):
    """Write the NIRSpec optical set (G395H) and the four IFU files into ``refdir``; returns
    {reftype: file name}."""
    out = design.write_optical_refs(refdir, "full", grating=GRATING)
    os.makedirs(refdir, exist_ok=True)
    for reftype, model in build_ifu_models().items():
        design.save_reproducibly(model, os.path.join(refdir, IFU_REF_FILES[reftype]))
        out[reftype] = IFU_REF_FILES[reftype]
    return out
