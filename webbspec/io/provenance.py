"""Provenance keywords a product records: the reference files and the context that made it.

``R_<REFTYPE>``: the official keyword names (jwst core schema ``meta.ref_file``) where one exists,
else ``R_`` + the reference type (8 characters at most); the value is the file's name in the
reference store, or ``N/A``. ``REFCTX``: the reference context's name (``webbspec_0002``, or a
real CRDS context's ``jwst_1234``); ``CRDS_CTX``: its pmap file name, as official products
record the CRDS context they were calibrated with (the contexts are CRDS pmaps).
"""

import os
import re

__all__ = ["REF_KEYWORDS", "reference_keyword", "reference_cards"]


REF_KEYWORDS = {
    "apcorr": "R_APCORR", "area": "R_AREA", "barshadow": "R_BARSHA", "bkg": "R_BKG",
    "camera": "R_CAMERA", "collimator": "R_COLLIM", "cubepar": "R_CUBPAR", "dflat": "R_DFLAT",
    "disperser": "R_DISPER", "distortion": "R_DISTOR", "extract1d": "R_EXTR1D", "fflat": "R_FFLAT",
    "flat": "R_FLAT", "fore": "R_FORE", "fpa": "R_FPA", "fringe": "R_FRINGE", "fringefreq": "R_FRIFRQ", "ifufore": "R_IFUFOR",
    "ifupost": "R_IFUPOS", "ifuslicer": "R_IFUSLI", "msa": "R_MSA", "msaoper": "R_MSAOPE",
    "ote": "R_OTE", "pathloss": "R_PTHLOS", "photom": "R_PHOTOM", "regions": "R_REGION",
    "resol": "R_RESOL", "sflat": "R_SFLAT", "specwcs": "R_SPCWCS", "wavecorr": "R_WAVCOR",
    "wavelengthrange": "R_WAVRAN",
}


def reference_keyword(reftype):
    """The PRIMARY keyword recording the ``reftype`` reference file (``flat`` -> ``R_FLAT``)."""
    rt = str(reftype).lower()
    return REF_KEYWORDS.get(rt) or ("R_" + re.sub(r"[^A-Z0-9]", "", rt.upper()))[:8]


def reference_cards(refs, context=None):
    """``{keyword: (value, comment)}`` recording ``refs`` ({reftype: path or "N/A"}) and the context:
    ``R_<REFTYPE>`` = the reference file's name in the store (or N/A), ``REFCTX`` = the context,
    ``CRDS_CTX`` = its pmap."""
    out = {reference_keyword(rt): (os.path.basename(str(p)) if p and str(p).upper() != "N/A" else "N/A",
                                   f"{str(rt).lower()} reference file")
           for rt, p in sorted((refs or {}).items())}
    if context:
        name = os.path.basename(str(context))
        name = name[:-len(".pmap")] if name.endswith(".pmap") else name
        out["REFCTX"] = (name, "reference context")
        out["CRDS_CTX"] = (name + ".pmap", "CRDS context (pmap) of the reference selection")
    return out

