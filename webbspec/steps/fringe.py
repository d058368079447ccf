"""fringe: divide a MIRI MRS exposure by the fringe flat (the official FringeStep).

Reference: ``fringe`` (official FringeModel FITS: SCI full frame, per DETECTOR / CHANNEL / BAND).
SCI /= F, ERR /= F, VAR_* /= F^2 (float64 math); NaN in F counts as 1; the reference's DQ is not
used (as officially). No reference: S_FRINGE = SKIPPED. Other exposure types: SKIPPED.
"""

import numpy as np

from ..instruments.miri import is_mrs
from . import _correction as corr
from ._call import accepts_files

REFTYPES = ("fringe",)
NEEDS = ("assign_wcs",)


@accepts_files
def run(model, refs):
    """Fringe-correct a copy of ``model`` (one full-frame MRS image)."""
    out = model.copy(arrays=False)
    path = corr.ref_path(refs, "fringe")
    if path is None or not is_mrs(out.exp_type):
        corr.mark(out, "FRINGE", "SKIPPED")
        return out
    hdul = corr.open_reference(path, "fringe", models=("FringeModel",), hdus=("SCI",))
    fringe = np.asarray(hdul["SCI"].data, np.float64)
    for slit in out.slits:
        if slit.shape[-2:] != fringe.shape:
            from ..errors import InputError
            raise InputError(str(path), f"fringe flat {fringe.shape} does not match the image {slit.shape[-2:]}")
        corr.apply_correction(slit, np.where(np.isnan(fringe), 1.0, fringe))
        corr.match_nans_and_flags(slit)
    corr.record_ref(out, "fringe", path)
    corr.mark(out, "FRINGE", "COMPLETE")
    return out
