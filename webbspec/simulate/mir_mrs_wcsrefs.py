"""The simulated MIRI MRS WCS references in the official CRDS formats (from mir_mrs_design).

Per (detector, band): ``distortion`` (DistortionMRSModel: per slice alpha_model (inputs y, x),
beta_model (Const1D), x_model / y_model (inputs lambda, alpha: the exact inverse), bzero / bdel per
``<channel><band>``, abv2v3_model per ``<channel><band>`` with an explicit inverse), ``specwcs``
(SpecwcsModel: per slice (y, x) -> lambda [um]) and ``regions`` (RegionsModel: int16 (9, 1024,
1032) slice map, the same in every throughput plane; plane 7 is the one read; zlib-compressed).
One ``wavelengthrange`` (WavelengthrangeModel, micron, one key per ``<channel><band>``).
"""

import os
import warnings
from unittest import mock

import numpy as np

from ..instruments.miri import MRS_EXP_TYPE
from . import mir_mrs_design as design

__all__ = ["write_wcs_refs", "save_reproducibly", "USEAFTER", "ref_meta", "wcs_file"]

USEAFTER = "2022-01-01T00:00:00"
WCS_REFTYPES = ("distortion", "specwcs", "regions")


def save_reproducibly(model, path, **kwargs):
    """``model.save`` with meta.date = USEAFTER (the JWST datamodels stamp the clock on save), so
    the same design gives the same bytes; ``kwargs`` go to the ASDF writer."""
    from stdatamodels.jwst.datamodels.model_base import JwstDataModel
    from stdatamodels.model_base import DataModel

    model.meta.date = USEAFTER
    with warnings.catch_warnings(), mock.patch.object(JwstDataModel, "on_save", DataModel.on_save):
        warnings.simplefilter("ignore")
        model.save(path, **kwargs)
    return os.path.basename(path)


def ref_meta(model, description, reftype=None, detector=None, band=None):
    m = model.meta
    m.description, m.author, m.pedigree, m.useafter = description, "webbspec simulator", "DUMMY", USEAFTER
    m.telescope, m.instrument.name = "JWST", "MIRI"
    try:
        m.exposure.type = MRS_EXP_TYPE
    except AttributeError:          # some reference schemas (fringe) have no exposure section
        pass
    if reftype:
        m.reftype = reftype
    m.instrument.detector = detector or "N/A"
    if detector:
        m.instrument.channel = design.DETECTOR_CHANNELS[detector]
        m.instrument.band = band
    return model


def wcs_file(reftype, detector, band):
    return f"miri_mrs_{detector.lower()}_{band.lower()}_{reftype}_0001.asdf"


def _alpha_model(ch, xc):
    from astropy.modeling import models as m

    # alpha = s_a (x - xc) - s_a tilt (y - YC); inputs (y, x)
    poly = m.Polynomial2D(1, c0_0=ch.s_a * ch.tilt * design.YC, c1_0=-ch.s_a * ch.tilt, c0_1=ch.s_a, name="det2local")
    return (m.Identity(1) & m.Shift(-xc)) | poly


def _lambda_model(ch, band, xc, lamc):
    from astropy.modeling import models as m

    d = design.dispersion(ch.name, band)
    a = ch.sign * d - ch.g * d * ch.tilt
    poly = m.Polynomial2D(1, c0_0=lamc - a * design.YC, c1_0=a, c0_1=ch.g * d, name="det2local")
    return (m.Identity(1) & m.Shift(-xc)) | poly


def _xy_models(ch, band, xc, lamc):
    """inputs (lam, alpha) -> x and -> y (0-based): the exact inverse of the forward models."""
    from astropy.modeling import models as m

    d = design.dispersion(ch.name, band)
    sd = ch.sign * d
    cy_l, cy_a = 1.0 / sd, -ch.g * d / (ch.s_a * sd)
    ymod = m.Shift(-lamc, name="shift_y") & m.Identity(1) | m.Polynomial2D(
        1, c0_0=design.YC, c1_0=cy_l, c0_1=cy_a, name="polynomial_y")
    xmod = m.Shift(-lamc, name="shift_x") & m.Identity(1) | m.Polynomial2D(
        1, c0_0=xc, c1_0=ch.tilt * cy_l, c0_1=1.0 / ch.s_a + ch.tilt * cy_a, name="polynomial_x")
    return xmod, ymod


def _abv2v3_model(ch):
    from astropy.modeling import models as m

    t = np.radians(design.THETA)
    ct, st = np.cos(t), np.sin(t)
    v20, v30 = design.V2_CEN + ch.dv2, design.V3_CEN + ch.dv3
    fwd = m.Mapping((0, 1, 0, 1)) | (m.Polynomial2D(1, c0_0=v20, c1_0=ct, c0_1=-st, name="ab_v2")
                                     & m.Polynomial2D(1, c0_0=v30, c1_0=st, c0_1=ct, name="ab_v3"))
    fwd.inverse = m.Mapping((0, 1, 0, 1)) | (
        m.Polynomial2D(1, c0_0=-(ct * v20 + st * v30), c1_0=ct, c0_1=st, name="v23_alpha")
        & m.Polynomial2D(1, c0_0=(st * v20 - ct * v30), c1_0=-st, c0_1=ct, name="v23_beta"))
    return fwd


def _write_detector_band(refdir, detector, band):
    from astropy import units as u
    from astropy.modeling import models as m
    from stdatamodels.jwst import datamodels as dm

    channels = design.DETECTOR_CHANNELS[detector]
    slices, amods, bmods, xmods, ymods, lmods = [], [], [], [], [], []
    for c in channels:
        ch = design.CHANNELS[c]
        for s, (xc, lamc, b) in sorted(design.slice_geometry(c, band).items()):
            slices.append(s)
            amods.append(_alpha_model(ch, xc))
            bmods.append(m.Const1D(b, name="det2local"))
            xm, ym = _xy_models(ch, band, xc, lamc)
            xmods.append(xm)
            ymods.append(ym)
            lmods.append(_lambda_model(ch, band, xc, lamc))
    cb = [c + band for c in channels]
    tag = f"{channels}{band}"
    out = {}

    dist = ref_meta(dm.DistortionMRSModel(), f"Simulated MRS distortion {tag}: detector <-> alpha/beta <-> V2/V3",
                    "DISTORTION", detector, band)
    dist.meta.input_units, dist.meta.output_units = u.pix, u.arcsec
    dist.slices = slices
    dist.alpha_model, dist.beta_model, dist.x_model, dist.y_model = amods, bmods, xmods, ymods
    dist.bzero = {"channel_band": cb, "beta_zero": [design.CHANNELS[c].bzero for c in channels]}
    dist.bdel = {"channel_band": cb, "delta_beta": [design.CHANNELS[c].bdel for c in channels]}
    dist.abv2v3_model = {"channel_band": cb, "model": [_abv2v3_model(design.CHANNELS[c]) for c in channels]}
    out["distortion"] = save_reproducibly(dist, os.path.join(refdir, wcs_file("distortion", detector, band)))

    spec = ref_meta(dm.SpecwcsModel(), f"Simulated MRS wavelength solution {tag}: (y, x) -> lambda [um] per slice",
                    "SPECWCS", detector, band)
    spec.meta.subarray.name = "N/A"
    spec.meta.input_units, spec.meta.output_units = u.pix, u.micron
    spec.slices, spec.model = slices, lmods
    out["specwcs"] = save_reproducibly(spec, os.path.join(refdir, wcs_file("specwcs", detector, band)))

    yy, xx = np.mgrid[0:design.NY, 0:design.NX]
    sl = design.truth_det2abl(xx, yy, channels, band)[0]
    reg = ref_meta(dm.RegionsModel(), f"Simulated MRS slice map {tag} (9 identical throughput planes)",
                   "REGIONS", detector, band)
    reg.regions = np.repeat(sl[None].astype(np.int16), 9, axis=0)
    out["regions"] = save_reproducibly(reg, os.path.join(refdir, wcs_file("regions", detector, band)),
                                       all_array_compression="zlib")
    return out


def _write_wavelengthrange(refdir):
    from stdatamodels.jwst import datamodels as dm

    sel = [f"{c}{b}" for c in "1234" for b in design.BANDS]
    wr = [list(design.wavelength_range(s[0], s[1:])) for s in sel]
    model = ref_meta(dm.WavelengthrangeModel(wrange_selector=sel, wrange=wr, wunits="micron"),
                     "Simulated MRS wavelength ranges per <channel><band> [micron]", "WAVELENGTHRANGE")
    model.meta.instrument.channel = model.meta.instrument.band = "N/A"
    return save_reproducibly(model, os.path.join(refdir, "miri_mrs_wavelengthrange_0001.asdf"))


def write_wcs_refs(refdir, detectors, bands):
    """Write the WCS references of ``detectors`` x ``bands`` into ``refdir``; returns the selections
    {reftype: [{"match": {...}, "file": name}]} for the CRDS context."""
    os.makedirs(refdir, exist_ok=True)
    sel = {rt: [] for rt in WCS_REFTYPES}
    for det in detectors:
        for band in bands:
            files = _write_detector_band(refdir, det, band)
            match = {"INSTRUME": "MIRI", "EXP_TYPE": MRS_EXP_TYPE, "DETECTOR": det,
                     "CHANNEL": design.DETECTOR_CHANNELS[det], "BAND": band}
            for rt, name in files.items():
                sel[rt].append({"match": match, "file": name})
    sel["wavelengthrange"] = [{"match": {"INSTRUME": "MIRI", "EXP_TYPE": MRS_EXP_TYPE},
                               "file": _write_wavelengthrange(refdir)}]
    return sel
