"""msa_flagging: flag the detector pixels that failed-open MSA shutters illuminate (NIRSpec).

Reference ``msaoper`` (the official JSON: ``{"msaoper": [{"Q", "x", "y", "state", "TA state",
"Internal state", ...}]}``): a shutter is failed open when any of its three states is "open". Each
such shutter is traced through the exposure's optical model as a one-shutter slit (slit-frame y
-0.5..0.5, quadrant Q, row x, column y; :func:`webbspec.instruments.nirspec.mos.shutter_footprint`):
in its official bounding box, every pixel whose light comes from inside the shutter (any wavelength)
gets DQ |= MSA_FAILED_OPEN. Runs on the full-frame image after assign_wcs, before extract_2d; only
DQ changes. No msaoper reference: S_MSAFLG = SKIPPED.
"""

import json
import os

import numpy as np

from .. import dq as dqbits
from ..errors import InputError
from ..instruments.nirspec import mos
from ..instruments.nirspec.optics import OPTICAL_REFTYPES, Optics
from . import _correction as corr
from ._call import accepts_files

REFTYPES = ("msaoper",) + OPTICAL_REFTYPES
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): the image must not be cut into slits yet
NEEDS = ("assign_wcs",)

FAILED_OPEN = np.uint32(dqbits.FLAGS["MSA_FAILED_OPEN"])
_STATES = ("Internal state", "TA state", "state")     # the official states that count


@accepts_files
def run(model, refs):
    """Flag the failed-open shutters' pixels in a copy of the full-frame ``model``."""
    where = model.path or "msa_flagging"
    out = model.copy(arrays=False)
    path = corr.ref_path(refs, "msaoper")
    if path is None:
        corr.mark(out, "MSAFLG", "SKIPPED")
        return out
    if out.layout != "single" or len(out.slits) != 1:
        raise InputError(where, "msa_flagging needs the full-frame image (run it before extract_2d)")
    img = out.slits[0]
    keys = {**dict(out.primary.items()), **dict(img.header.items())}
    optics = Optics({rt: (refs or {}).get(rt, "N/A") for rt in OPTICAL_REFTYPES}, keys, where)
    dq = np.array(img.get("DQ", np.zeros(img.shape, np.uint32)), dtype=np.uint32)
    for quadrant, row, column in failed_open_shutters(path):
        found = mos.shutter_footprint(optics, quadrant, row, column, img.shape[-2:])
        if found is None:
            continue
        (x0, x1, y0, y1), mask = found
        dq[..., y0:y1 + 1, x0:x1 + 1] |= np.where(mask, FAILED_OPEN, np.uint32(0))
    img["DQ"] = dq
    corr.mark(out, "MSAFLG", "COMPLETE")
    corr.record_ref(out, "msaoper", path)
    return out


def failed_open_shutters(path):
    """[(quadrant, row, column)] of the shutters the msaoper file says are failed open."""
    if not os.path.isfile(str(path)):
        raise InputError(path, "msaoper reference file does not exist")
    try:
        with open(path) as f:
            data = json.load(f)
        entries = data["msaoper"]
        return [(int(e["Q"]), int(e["x"]), int(e["y"])) for e in entries
                if any(str(e.get(s, "")).strip().lower() == "open" for s in _STATES)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"not an msaoper reference ({type(exc).__name__}: {exc})") from None
