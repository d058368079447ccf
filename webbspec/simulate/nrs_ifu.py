"""A simulated NIRSpec IFU program: 4-point dither, dedicated background, imprint, `_rate` files,
associations, references, truth.

Exposures (full frame 2048 x 2048, G395H / F290LP, one per detector each):
``jw01234001001_03101_0000<n>_<det>_rate.fits`` the science dithers n = 1..4 (XOFFSET/YOFFSET
DITHERS [arcsec] in the IFU aperture frame), ``jw01234002001_03101_00001_<det>`` the dedicated
background (the target BKG_OFFSET away: sky only, BKGDTARG), ``jw01234001001_03102_00001_<det>``
the imprint (leakcal: IS_IMPRT, the MSA imprint pattern alone). Scale "small" is NRS1 alone (the
detector of 2.87-4.1 um: all 30 slices, 4 dithers, the background and the imprint, so a cube can
be made; NRS2 adds only the red half of the band), "full" is NRS1 + NRS2.

Rendering goes through OUR WCS (``instruments.nirspec.ifu`` on the references written first into
``refs/``): every slice pixel sees the scene (``nrs_ifu_scene``) at its own wavelength integrated
over its footprint on the sky (the segment between its two along-slice edges, widened by the
slice width, cut at the slice ends y_slit = +-0.5), and counts
rate [DN/s] = MJy / (PHOTMJ * RELRESPONSE(lam)) + imprint, then noise, cosmic rays (truth in
``truth/outliers/``) and bad pixels (``noise``). The official WCS on the same files gives the
same coordinates (tests/official/test_nrs_ifu_wcs_official.py), which checks this rendering too.
The light (not the imprint) is multiplied by the flat field of ``nrs_ifu_calrefs.flat`` (a 2%
random pixel flat per detector, the spectrograph image, three wavelength factors), which the fflat /
sflat / dflat references hold. Known simplifications: light from across a slice lands at the
wavelength of the slice centre line (x_slit = 0, the official WCS convention; the real instrument
shifts it by up to half a pixel); no slit losses; the PSF is a mixture of two circular Gaussians.
"""

import os

import numpy as np
from astropy.io import fits

from ..instruments.nirspec import ifu
from ..instruments.nirspec.optics import v2v3_to_sky
from ..io.skycoords import radec_to_xieta, xieta_to_radec
from . import nirspec_fs as fs
from . import noise, nrs_ifu_calrefs, refstore
from . import nrs_ifu_optics_refs as design
from . import nrs_ifu_scene as scene
from .fs_geometry import ideal_to_v2v3
from .ratefile import write_rate
from .fs_program import association, write_json

__all__ = ["simulate_nrs_ifu", "exposure_plan", "exposure_header", "render_exposure", "footprint_light",
           "ifu_aperture", "pointing", "imprint_pattern",
           "DITHERS", "PHOTMJ", "EFFEXPTM"]

MODE = ifu.MODE
PROGRAM = "01234"
DITHERS = ((0.0, 0.0), (0.25, 0.15), (-0.15, 0.25), (0.10, -0.30))
BKG_OFFSET = (0.0, 60.0)              # arcsec: the background pointing puts the target this far away
DETECTORS = {"small": ("NRS1",), "full": ("NRS1", "NRS2")}
PHOTMJ = 2.0e-12                      # MJy per DN/s at RELRESPONSE = 1 (sky ~2.5 sigma per pixel)
EFFEXPTM = 1000.0                     # s
GAIN, VAR_RNOISE = 1.0, 1.0e-5
N_CR = 120                            # cosmic-ray events per exposure
N_BAD = (40, 40)                      # dead, hot pixels per detector
PA_APER = 138.2
VA_SCALE = 1.0000257
IMPRINT_DNS = 0.002                   # DN/s, mean MSA imprint level on the slice pixels (~30% of the sky)
WAVE_TRUTH = np.linspace(2.80, 5.20, 12001)


def _optics(refdir, detector):
    refs = {rt: os.path.join(refdir, f) for rt, f in _ref_files().items()}
    header = {"DETECTOR": detector, "FILTER": design.FILTER, "GRATING": design.GRATING,
              "GWA_XTIL": design.design.GWA_TILT_READINGS[0], "GWA_YTIL": design.design.GWA_TILT_READINGS[1]}
    return ifu.IFUOptics(refs, header, where="simulator"), refs


def _ref_files():
    return dict(design.design.ref_files(design.GRATING), **design.IFU_REF_FILES)


def ifu_aperture(refdir):
    """The IFU aperture frame: V2/V3 [arcsec] of the field centre (slicer origin, band centre)
    and the orientation of the fixed-slit aperture (V3I_YANG, VPARITY)."""
    optics, _ = _optics(refdir, "NRS1")
    v2, v3 = optics.slice_to_v2v3(ifu.N_SLICES // 2, -0.5, 0.0, optics.lam_cen)
    return {"V2_REF": float(v2), "V3_REF": float(v3), "V3I_YANG": -design.design.OTE_ROT, "VPARITY": -1}


def pointing(aperture, xoffset, yoffset):
    """(RA_REF, DEC_REF, ROLL_REF) putting the target at ideal (xoffset, yoffset) [arcsec]."""
    roll = PA_APER - aperture["V3I_YANG"]
    v2, v3 = ideal_to_v2v3(xoffset, yoffset, aperture)
    ra, dec = scene.TARG_RA, scene.TARG_DEC
    for _ in range(6):          # the attitude is nearly a translation on the sky: converges fast
        got = v2v3_to_sky(v2, v3, ra, dec, roll, aperture["V2_REF"], aperture["V3_REF"], VA_SCALE)
        dxi, deta = radec_to_xieta(scene.TARG_RA, scene.TARG_DEC, float(got[0]), float(got[1]))
        ra, dec = xieta_to_radec(dxi, deta, ra, dec)
    return float(ra), float(dec), roll


def exposure_plan(scale):
    """[{kind, detector, root, number, obs, xoffset, yoffset}] of a program of ``scale``."""
    out = []
    for det in DETECTORS[scale]:
        d = det.lower()
        for n, (xo, yo) in enumerate(DITHERS, start=1):
            out.append({"kind": "science", "detector": det, "number": n, "obs": "001", "act": "03101",
                        "xoffset": xo, "yoffset": yo, "root": f"jw{PROGRAM}001001_03101_{n:05d}_{d}"})
        out.append({"kind": "background", "detector": det, "number": 1, "obs": "002", "act": "03101",
                    "xoffset": BKG_OFFSET[0], "yoffset": BKG_OFFSET[1], "root": f"jw{PROGRAM}002001_03101_00001_{d}"})
        out.append({"kind": "imprint", "detector": det, "number": 1, "obs": "001", "act": "03102",
                    "xoffset": 0.0, "yoffset": 0.0, "root": f"jw{PROGRAM}001001_03102_00001_{d}"})
    return out


def exposure_header(e, aperture):
    """(PRIMARY, SCI) headers of the `_rate` of exposure ``e`` (official keywords)."""
    ra_ref, dec_ref, roll = pointing(aperture, e["xoffset"], e["yoffset"])
    n = e["number"]
    t0 = 60311.0 + {"science": 0.0, "background": 0.2, "imprint": 0.1}[e["kind"]] + n * 0.015
    science = e["kind"] == "science"
    h = fits.Header()
    for key, val in (
            ("TELESCOP", "JWST"), ("INSTRUME", "NIRSPEC"), ("EXP_TYPE", ifu.EXP_TYPE), ("DETECTOR", e["detector"]),
            ("FILTER", design.FILTER), ("GRATING", design.GRATING), ("FXD_SLIT", "NONE"), ("SUBARRAY", "FULL"),
            ("SUBSTRT1", 1), ("SUBSTRT2", 1), ("SUBSIZE1", 2048), ("SUBSIZE2", 2048),
            ("PROGRAM", PROGRAM), ("OBSERVTN", e["obs"]), ("VISIT", "001"), ("VISITGRP", "03"),
            ("SEQ_ID", "1"), ("ACT_ID", e["act"][3:]), ("EXPOSURE", f"{n:05d}"),
            ("DATE-OBS", "2024-01-02"), ("TIME-OBS", "01:00:00.000"),
            ("EXPSTART", t0), ("EXPMID", t0 + 0.0058), ("EXPEND", t0 + 0.0116),
            ("NINTS", 1), ("EFFEXPTM", EFFEXPTM), ("EFFINTTM", EFFEXPTM), ("TMEASURE", EFFEXPTM),
            ("PATTTYPE", "4-POINT-DITHER" if science else "NONE"), ("NUMDTHPT", len(DITHERS) if science else 1),
            ("PATT_NUM", n), ("XOFFSET", e["xoffset"]), ("YOFFSET", e["yoffset"]),
            ("TARGNAME", "SIMIFU-1"), ("TARGPROP", "SIMIFU-1"), ("TARG_RA", scene.TARG_RA),
            ("TARG_DEC", scene.TARG_DEC), ("TARGTYPE", "FIXED"), ("SRCTYAPT", "POINT"),
            ("BKGDTARG", e["kind"] == "background"), ("IS_IMPRT", e["kind"] == "imprint"), ("TSOVISIT", False),
            ("RA_REF", ra_ref), ("DEC_REF", dec_ref), ("PA_APER", PA_APER), ("ROLL_REF", roll),
            ("GWA_XTIL", design.design.GWA_TILT_READINGS[0]), ("GWA_YTIL", design.design.GWA_TILT_READINGS[1]),
            ("BUNIT", "DN/s"), ("DATAMODL", "IFUImageModel"), ("ORIGIN", "webbspec simulator")):
        h[key] = val
    s = fits.Header()
    s["BUNIT"] = "DN/s"
    for key, val in (("RA_REF", ra_ref), ("DEC_REF", dec_ref), ("ROLL_REF", roll), ("PA_APER", PA_APER),
                     ("V2_REF", aperture["V2_REF"]), ("V3_REF", aperture["V3_REF"]),
                     ("V3I_YANG", aperture["V3I_YANG"]), ("VPARITY", aperture["VPARITY"]), ("VA_SCALE", VA_SCALE)):
        s[key] = val
    return h, s


def imprint_pattern(shape):
    """The MSA imprint [DN/s] on the slice pixels: the MSA bar grid seen through the IFU (a
    regular pattern of a quarter of its mean level), the same in every exposure."""
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    return IMPRINT_DNS * (1.0 + 0.25 * np.cos(2 * np.pi * x / 37.0) * np.cos(2 * np.pi * y / 11.0))


def render_exposure(refs, primary, sci_header, kind, pixel_flat=None):
    """(true rate [DN/s], coordinates, slice width) of one exposure through our WCS (``refs``:
    {reftype: path}; the coordinates of ``ifu.exposure_coordinates`` with the slit edges); with
    ``pixel_flat`` (the detector's D, full frame) the light is multiplied by the whole flat
    (``nrs_ifu_calrefs.flat``)."""
    keys = {**dict(primary.items()), **dict(sci_header.items())}
    c, _, width = ifu.exposure_coordinates(keys, (2048, 2048), refs, where="simulator", slit_edges=True)
    on = c["SLICE"] > 0
    rate = np.zeros(on.shape)
    if kind != "imprint":
        lam = c["WAVELENGTH"][on].astype(float)
        rate[on] = footprint_light(c, width, keys, on) / (PHOTMJ * fs.relresponse(lam))
        if pixel_flat is not None:
            y, x = np.nonzero(on)
            rate[on] *= nrs_ifu_calrefs.flat(x, y, lam, pixel_flat)
    rate[on] += imprint_pattern(on.shape)[on]
    return rate, c, width


def footprint_light(c, width, keys, sel):
    """Light [MJy] of the scene (sources and sky) in the footprints of the pixels ``sel`` (a mask)
    of coordinates ``c``: the segment between the pixel's along-slice edges, widened by the slice
    ``width``, cut at the slice ends, at the pixel's wavelength."""
    lam = c["WAVELENGTH"][sel].astype(float)
    e1 = np.stack([c["XI1"][sel], c["ETA1"][sel]]).astype(float)
    e2 = np.stack([c["XI2"][sel], c["ETA2"][sel]]).astype(float)
    ys1, ys2 = c["SLIT_Y1"][sel].astype(float), c["SLIT_Y2"][sel].astype(float)
    length = np.hypot(*(e2 - e1))
    u = (e2 - e1) / length
    # the part of the pixel's segment inside the slice (|y_slit| <= 0.5), as fractions of it
    with np.errstate(divide="ignore", invalid="ignore"):
        sa, sb = (-0.5 - ys1) / (ys2 - ys1), (0.5 - ys1) / (ys2 - ys1)
    lo, hi = np.clip(np.minimum(sa, sb), 0.0, 1.0), np.clip(np.maximum(sa, sb), 0.0, 1.0)
    mid = 0.5 * (e1 + e2)
    target = radec_to_xieta(scene.TARG_RA, scene.TARG_DEC, float(keys["RA_REF"]), float(keys["DEC_REF"]))
    mjy = scene.footprint_mjy(lam, mid, u, ((0.5 - lo) * length, (hi - 0.5) * length), width / 2.0, target)
    return mjy + scene.sky_footprint_mjy(lam, (hi - lo) * length, width)


def simulate_nrs_ifu(outdir, seed=0, scale="small"):
    """Write the program directory; returns a summary dict (paths)."""
    refdir = os.path.join(outdir, "refs")
    optical = design.write_ifu_optical_refs(refdir)
    refs = {rt: os.path.join(refdir, f) for rt, f in optical.items()}
    aperture = ifu_aperture(refdir)
    plan = exposure_plan(scale)
    ss = np.random.SeedSequence([int(seed), 7031])
    dets = DETECTORS[scale]
    det_rng = {d: np.random.default_rng(s) for d, s in zip(dets, ss.spawn(len(dets)))}
    exp_seeds = ss.spawn(len(dets) + len(plan))[len(dets):]
    dq_bad, rates, crmasks, areas = {}, [], [], None
    flats = {d: np.clip(1.0 + 0.02 * det_rng[d].standard_normal((2048, 2048)), 0.9, 1.1) for d in dets}
    for e, es in zip(plan, exp_seeds):
        primary, sci_hdr = exposure_header(e, aperture)
        rate, coords, width = render_exposure(refs, primary, sci_hdr, e["kind"], flats[e["detector"]])
        slices = coords["SLICE"]
        areas = areas or pixel_areas(coords, width)
        det = e["detector"]
        if det not in dq_bad:           # a property of the detector: the same in every exposure
            dq_bad[det] = noise.bad_pixels(rate.shape, det_rng[det], slices > 0, *N_BAD)
        observed = noise.observe(rate, np.random.default_rng(es), slices > 0, dq_bad[det], N_CR, EFFEXPTM, GAIN,
                                 VAR_RNOISE)
        path, crmask = write_rate(outdir, e["root"], primary, sci_hdr, observed, dq_bad[det])
        rates.append(path)
        crmasks.append(crmask)
    asns = _write_asns(outdir, plan)
    context = _write_store(refdir, optical, areas, flats)
    _write_truth(outdir, plan, aperture, seed, scale)
    return {"mode": MODE, "outdir": outdir, "rates": rates, "asns": asns, "context": context, "crmasks": crmasks}


def pixel_areas(coords, width):
    """{slice 1-30: median footprint [arcsec^2]} (slice width x along-slice extent of its pixels)."""
    s = coords["SLICE"]
    length = np.hypot(coords["XI2"] - coords["XI1"], coords["ETA2"] - coords["ETA1"])
    return {k: float(np.median(length[s == k])) * width for k in range(1, ifu.N_SLICES + 1) if (s == k).any()}


def _write_store(refdir, optical, areas, flats):
    """The CRDS context selecting the optical and IFU files (and the calibration references)."""
    # both detectors whatever the scale: the same files serve NRS2 (an NRS2 copy of a rate finds them)
    selectors = {"INSTRUME": "NIRSPEC", "EXP_TYPE": ifu.EXP_TYPE, "DETECTOR": ["NRS1", "NRS2"]}
    sel = {}
    for rt, fname in optical.items():
        match = dict(selectors)
        if rt in ("disperser", "fore", "ifufore", "chromcorr"):
            match.update(GRATING=design.GRATING, FILTER=design.FILTER)
        sel[rt] = [{"match": match, "file": fname}]
    sel.update(nrs_ifu_calrefs.write_all(refdir, areas, PHOTMJ, flats))
    return refstore.write_selections(refdir, sel)


def _write_asns(outdir, plan):
    """spec2: one per science exposure (the detector's background as background member, its
    imprint as imprint member) and per background exposure (with the imprint); spec3: every
    science `_cal`, the backgrounds' `_x1d` as background members."""
    asns = []
    by = {(e["kind"], e["detector"]): e for e in plan if e["kind"] != "science"}
    sci = [e for e in plan if e["kind"] == "science"]
    bkg = [e for e in plan if e["kind"] == "background"]
    for e in sci + bkg:
        members = [{"expname": f"{e['root']}_rate.fits", "exptype": "science"}]
        if e["kind"] == "science":
            members.append({"expname": f"{by['background', e['detector']]['root']}_rate.fits", "exptype": "background"})
        members.append({"expname": f"{by['imprint', e['detector']]['root']}_rate.fits", "exptype": "imprint"})
        path = os.path.join(outdir, f"jw{PROGRAM}-o{e['obs']}_20240102t000000_spec2_{len(asns) + 1:05d}_asn.json")
        asns.append(write_json(association("spec2", "candidate_Asn_Lv2NRSIFU", [{"name": e["root"], "members": members}],
                                           obs=e["obs"]), path))
    members = [{"expname": f"{e['root']}_cal.fits", "exptype": "science"} for e in sci]
    members += [{"expname": f"{b['root']}_x1d.fits", "exptype": "background"} for b in bkg]
    path3 = os.path.join(outdir, f"jw{PROGRAM}-o001_spec3_00001_asn.json")
    asns.append(write_json(association("spec3", "candidate_Asn_Lv3NRSIFU", [{"name": product_name(), "members": members}]),
                           path3))
    return asns


def product_name():
    return f"jw{PROGRAM}-o001_t001_nirspec_{design.GRATING.lower()}-{design.FILTER.lower()}"


def _write_truth(outdir, plan, aperture, seed, scale):
    from .nrs_ifu_truth import write_truth

    write_truth(os.path.join(outdir, "truth"), product_name(), [e for e in plan if e["kind"] == "science"],
                seed, scale)
