"""The MSA of the simulated NIRSpec and the optical-model set a MOS program is rendered through.

The set is the fixed-slit design (``nirspec_optics_refs``: same fpa, camera, collimator,
disperser, ote, wavelengthrange files) with two files of its own:

* msa: the four quadrants Q1-Q4 as full shutter tables (365 rows along the dispersion x 171
  columns along the slit; table index (row - 1) + (column - 1) * 365, the official numbering),
  pitch PITCH and open area OPEN [arcsec at the MSA], in quadrant-local metres; each quadrant
  model a shift to the MSA plane (Q1 x < 0, y > 0; Q2 x < 0, y < 0; Q3 x > 0, y > 0; Q4 x > 0,
  y < 0). The fixed slits (Q5) are the design's, in the GAP_Y band between the quadrants.
* fore: achromatic (the scale does not change with wavelength; still 3 inputs, as the official
  code needs). The FS design's 0.2 %/um chromatic scale would move a source 100" from the MSA
  centre by 0.2" (a shutter width) per micron; NIRSpec's reflective FORE has no such colour.

With these, 1" at the MSA is 10 pixels, MSA y maps to detector rows (MSA y = 0 near row 1031),
and a quadrant's 365 rows shift the spectra by ~985 pixels along the dispersion.
"""

import os

import numpy as np

from ..instruments.nirspec.mos import EXP_TYPE
from . import nirspec_optics_refs as design

__all__ = ["write_optical_refs", "REF_FILES", "PITCH", "OPEN", "N_ROWS", "N_COLUMNS", "QUADRANT_ORIGIN",
           "shutter_msa", "pitch_over_open"]

PITCH = (0.27, 0.53)          # arcsec: shutter pitch along x (rows) and y (columns)
OPEN = (0.20, 0.46)           # arcsec: open area of a shutter
N_ROWS, N_COLUMNS = 365, 171
GAP_X, GAP_Y = 1.5, 12.0      # arcsec: half gaps between the quadrants (the fixed slits sit in GAP_Y)
# MSA position [arcsec] of shutter (row 1, column 1) of each quadrant
QUADRANT_ORIGIN = {1: (-GAP_X - (N_ROWS - 1) * PITCH[0], GAP_Y),
                   2: (-GAP_X - (N_ROWS - 1) * PITCH[0], -GAP_Y - (N_COLUMNS - 1) * PITCH[1]),
                   3: (GAP_X, GAP_Y),
                   4: (GAP_X, -GAP_Y - (N_COLUMNS - 1) * PITCH[1])}
REF_FILES = dict(design.REF_FILES, msa="nirspec_mos_msa_0001.asdf", fore="nirspec_mos_fore_f290lp_0001.asdf")


def shutter_msa(quadrant, row, column):
    """MSA-plane centre (x, y) [arcsec] of a shutter (1-based row, column)."""
    x0, y0 = QUADRANT_ORIGIN[int(quadrant)]
    return x0 + (np.asarray(row) - 1) * PITCH[0], y0 + (np.asarray(column) - 1) * PITCH[1]


def pitch_over_open():
    """Shutter pitch over open height along the slit (the slit-frame distance between shutter
    centres; the official SLTYSCL from the table, YC[365] / SIZEY[0])."""
    return PITCH[1] / OPEN[1]


def _quadrant_table():
    a = design.MSA_ARCSEC
    k = np.arange(N_ROWS * N_COLUMNS)
    t = np.zeros(k.size, [("NO", "<i4"), ("XC", "<f8"), ("YC", "<f8"), ("SIZEX", "<f8"), ("SIZEY", "<f8")])
    t["NO"] = k + 1
    t["XC"] = (k % N_ROWS) * PITCH[0] * a
    t["YC"] = (k // N_ROWS) * PITCH[1] * a
    t["SIZEX"], t["SIZEY"] = OPEN[0] * a, OPEN[1] * a
    return t


def build_models():
    """{reftype: stdatamodels reference model} of the MOS optical set (not saved)."""
    from astropy.modeling import models as am
    from stdatamodels.jwst import datamodels as dm

    out = design.build_models()
    a = design.MSA_ARCSEC
    fs_msa = out["msa"]
    table = _quadrant_table()
    data = {f"Q{q}": table for q in QUADRANT_ORIGIN}
    data["Q5"] = fs_msa.Q5.data
    models = {f"Q{q}": am.Shift(x * a) & am.Shift(y * a) for q, (x, y) in QUADRANT_ORIGIN.items()}
    models["Q5"] = am.Identity(2)
    msa = dm.MSAModel(models=models, data=data)
    msa.meta = fs_msa.meta
    msa.meta.description = "Simulated NIRSpec MSA: Q1-Q4 full 365 x 171 shutter tables; Q5 the fixed slits"
    out["msa"] = msa
    fore = dm.FOREModel(model=design._fore_model(chromatic=0.0))
    fore.meta = out["fore"].meta
    fore.meta.description = "Simulated NIRSpec FORE (achromatic): MSA metres, wavelength [m] -> OTEIP degrees"
    out["fore"] = fore
    for reftype in ("msa", "fore"):          # MOS files: selected for (and labelled with) MOS exposures
        out[reftype].meta.exposure.type = EXP_TYPE
    return out


def write_optical_refs(refdir):
    """Write the MOS optical-model set into ``refdir``; returns {reftype: file name}."""
    os.makedirs(refdir, exist_ok=True)
    out = {}
    for reftype, model in build_models().items():
        design.save_reproducibly(model, os.path.join(refdir, REF_FILES[reftype]))
        out[reftype] = REF_FILES[reftype]
    return out
