"""assign_wcs for MIRI MRS (called by steps/assign_wcs.py): the per-pixel arrays of the IFU contract.

The `_rate` stays one full-frame slit; it gains WAVELENGTH, DWAVE, XI, ETA, XI1, ETA1, XI2, ETA2
(float32) and SLICE (int16) from :mod:`webbspec.instruments.miri.mrs`, and in the SCI header
WSREFRA/WSREFDE (= RA_REF/DEC_REF), SLICEWID (the first channel's slice width) and SLCWID<c> per
channel of the exposure (the two channels of one exposure have different slice widths), DISPAXIS=2.
"""

import os

from ..errors import InputError
from ..instruments.miri import mrs
from ..io.provenance import reference_keyword

__all__ = ["run_mrs"]


def run_mrs(model, refs):
    where = model.path or "assign_wcs"
    if model.layout != "single" or len(model.slits) != 1:
        raise InputError(where, "expected a single full-frame image")
    refs = {rt: (refs or {}).get(rt, "N/A") for rt in mrs.REFTYPES}
    out = model.copy(arrays=False)
    img = out.slits[0]
    keys = {**dict(out.primary.items()), **dict(img.header.items())}
    wcs = mrs.MrsWcs(refs, keys, where)
    for key, arr in mrs.pixel_coordinates(wcs, img.shape[-2:]).items():
        img[key] = arr
    h = img.header
    h["WSREFRA"] = (wcs.pointing[0], "[deg] RA of the XI/ETA reference")
    h["WSREFDE"] = (wcs.pointing[1], "[deg] Dec of the XI/ETA reference")
    h["SLICEWID"] = (wcs.slice_width(wcs.channels[0]), f"[arcsec] slice width, channel {wcs.channels[0]}")
    for c in wcs.channels:
        h[f"SLCWID{c}"] = (wcs.slice_width(c), f"[arcsec] slice width, channel {c}")
    h["DISPAXIS"] = (2, "dispersion direction")
    h["SPECSYS"] = "BARYCENT"
    out.primary["S_WCS"] = "COMPLETE"
    for rt in mrs.REFTYPES:
        out.primary[reference_keyword(rt)] = os.path.basename(str(refs[rt]))
    return out
