"""The reference store of a simulated NIRSpec FS program: the optical model
(nirspec_optics_refs), wavecorr from it, the calibration references (fs_calrefs), and the CRDS
context selecting them (formats: docs/internals.md).
"""

import os

import numpy as np

from ..instruments.nirspec.fs import EXP_TYPE, REF_EXP_TYPES
from . import fs_calrefs
from . import nirspec_fs as fs

__all__ = ["write_store", "write_selections", "write_wavecorr"]

_USEAFTER = "2022-01-01T00:00:00"


def write_wavecorr(path, optics):
    """The official WaveCorrModel (ASDF) from the forward optical model: per fixed slit, the pixel
    offset that brings the light of a point source at across-slit position xpos back to where the
    slit centre's light of the same wavelength lands, -(x(xpos, lam) - x(0, lam)) [pixels], on a
    grid of wavelength [m] x xpos [slit units]."""
    from astropy.modeling.models import Tabular2D
    from stdatamodels.jwst import datamodels as dm

    from . import nirspec_optics_refs as design

    lam = np.linspace(2.70e-6, 5.30e-6, 53)
    xpos = np.linspace(-0.5, 0.5, 21)
    grid_l, grid_x = np.meshgrid(lam, xpos, indexing="ij")
    apertures = []
    for name in design.FS_SLITS:
        x1, _ = optics.slit_to_detector(name, grid_x, 0.0, grid_l)
        x0, _ = optics.slit_to_detector(name, 0.0, 0.0, grid_l)
        table = Tabular2D(points=(lam, xpos), lookup_table=-(x1 - x0), bounds_error=False,
                          fill_value=None, name=f"zero_point_{name}")
        apertures.append({"aperture_name": name, "width": design.SLIT_SIZES[name][0] * design.MSA_ARCSEC,
                          "zero_point_offset": table, "variance": np.zeros(table.lookup_table.shape, np.float32)})
    wc = dm.WaveCorrModel(apertures=apertures)
    m = wc.meta
    m.reftype, m.author, m.pedigree, m.useafter = "WAVECORR", "webbspec simulator", "DUMMY", _USEAFTER
    m.description = "Simulated NIRSpec wavelength zero-point offsets from the optical model"
    m.telescope, m.instrument.name = "JWST", "NIRSPEC"
    m.exposure.type, m.exposure.p_exptype = EXP_TYPE, REF_EXP_TYPES
    design.save_reproducibly(wc, path)
    return os.path.basename(path)


def write_store(refdir, detectors, pixel_flats, optical=None):
    """Write all reference files and the context ``mappings/jwst/webbspec_0001.pmap``; returns its path.

    ``optical``: {reftype: file name} of the optical-model set already written into ``refdir``
    (nirspec_optics_refs; written here when None)."""
    from . import nirspec_optics_refs

    os.makedirs(refdir, exist_ok=True)
    sel = {"INSTRUME": "NIRSPEC", "EXP_TYPE": EXP_TYPE, "GRATING": fs.GRATING, "FILTER": fs.FILTER}
    if optical is None:
        optical = nirspec_optics_refs.write_optical_refs(refdir)
    refs = {}
    one = dict(optical)
    one["wavecorr"] = write_wavecorr(os.path.join(refdir, "nirspec_fs_wavecorr_0001.asdf"), detectors[0].optics)
    det_any = {"DETECTOR": [d.name for d in detectors]}
    for rt, fname in one.items():
        match = dict(sel) if rt in ("disperser", "fore") else {"INSTRUME": "NIRSPEC", "EXP_TYPE": EXP_TYPE}
        match.update(det_any)
        refs[rt] = [{"match": match, "file": fname}]
    # flats, pathloss, photom, area, apcorr, extract1d in the official formats (fs_calrefs)
    refs.update(fs_calrefs.write_all(refdir, detectors, pixel_flats))
    return write_selections(refdir, refs)


def write_selections(refdir, refs):
    """The context ``mappings/jwst/webbspec_0001.pmap`` (-> imap -> rmaps) selecting the NIRSpec
    reference files ``refs`` = {reftype: [{"match": {keyword: value}, "file": name}]} written in
    ``refdir``; the files move to references/jwst/nirspec/, where a CRDS cache keeps them.
    Returns the pmap path."""
    from ..io.crdsmap import write_context

    return write_context(refdir, [{"reftype": rt, "match": rule["match"], "file": rule["file"],
                                   "instrument": "NIRSPEC", "useafter": _USEAFTER}
                                  for rt, rules in refs.items() for rule in rules],
                         number=1, derived_from="webbspec simulator")
