"""A simulated MIRI MRS program: 4-point dithers, dedicated backgrounds, `_rate` files, associations,
references, truth.

Exposures ``jw01234<obs>001_<act>_<n:05d>_<detector>_rate.fits``: observation 001 the science target
(4-point dither, PATT_NUM 1-4), 002 the dedicated background (2-point dither on a blank field,
BKGDTARG T); one file per detector (both detectors observe at once: same pointing), activity
03102 / 03104 / 03106 for SHORT / MEDIUM / LONG. Scales: "small" = SHORT only (1SHORT/2SHORT on
MIRIFUSHORT, 3SHORT/4SHORT on MIRIFULONG); "full" = the three sub-bands (4 dithers x 2 detectors x
3 sub-bands). Full frame (1024 x 1032).

Pointing: (V2_REF, V3_REF) = the channel-1 field centre; RA_REF/DEC_REF put the target at the
dither position's channel-1 (alpha, beta) (:data:`DITHERS_AB`), found through OUR WCS's sky <-> V2/V3
(webbspec.instruments.miri.mrs, the official attitude rotation). Rendering: mir_mrs_render (scene
integrated over every pixel's footprint through our WCS, then flat, fringe, the residual fringe,
photom and the stray light of the references), noise and cosmic rays: noise.observe.
"""

import os

import numpy as np
from astropy.io import fits

from ..instruments.miri import MRS_EXP_TYPE, MRS_MODE
from ..instruments.miri.mrs import MrsWcs
from ..io.crdsmap import reference_path
from ..io.skycoords import radec_to_xieta, xieta_to_radec
from . import mir_mrs_design as design
from . import mir_mrs_scene as scene
from . import noise
from .fs_program import PROGRAM, association, write_json
from .mir_mrs_calrefs import write_cal_refs
from .mir_mrs_render import COMPONENTS, instrument_rate, sky_brightness
from .mir_mrs_truth import write_truth
from .mir_mrs_wcsrefs import USEAFTER, wcs_file, write_wcs_refs
from .ratefile import write_rate

__all__ = ["simulate_mir_mrs", "BANDS_OF_SCALE", "DITHERS_AB", "exposure_header", "plan", "pointing",
           "render_exposure", "wcs_for"]

MODE = MRS_MODE
BANDS_OF_SCALE = {"small": ("SHORT",), "full": design.BANDS}
DETECTORS = ("MIRIFUSHORT", "MIRIFULONG")
ACTIVITY = {"SHORT": "03102", "MEDIUM": "03104", "LONG": "03106"}
DITHERS_AB = ((0.30, 0.44), (-0.30, -0.44), (0.20, -0.35), (-0.20, 0.35))   # channel-1 alpha/beta of the target
BKG_OFFSET = (60.0, 45.0)                 # arcsec (xi, eta): the blank background field
BKG_DITHERS_AB = ((0.25, 0.30), (-0.25, -0.30))
ROLL_REF, V3I_YANG, VPARITY, VA_SCALE = 20.0, -8.4, -1, 1.0000213
EFFEXPTM, GAIN, VAR_RNOISE = 277.5, 5.5, 4.0e-4
N_CR = 60
N_BAD = (8, 8)
_SEED_KEY = 7019


def _ideal_offsets(v2, v3):
    """Ideal-frame (XOFFSET, YOFFSET) [arcsec] of V2/V3 relative to the reference point."""
    t = np.radians(V3I_YANG)
    dv2, dv3 = v2 - design.V2_CEN, v3 - design.V3_CEN
    return float(VPARITY * (dv2 * np.cos(t) - dv3 * np.sin(t))), float(dv2 * np.sin(t) + dv3 * np.cos(t))


def _pointing_header(ra_ref, dec_ref):
    return {"RA_REF": ra_ref, "DEC_REF": dec_ref, "ROLL_REF": ROLL_REF, "V2_REF": design.V2_CEN,
            "V3_REF": design.V3_CEN, "V3I_YANG": V3I_YANG, "VPARITY": VPARITY, "VA_SCALE": VA_SCALE,
            "RA_V1": ra_ref, "DEC_V1": dec_ref, "PA_V3": ROLL_REF, "PA_APER": ROLL_REF + V3I_YANG}


def _ref(refdir, name):
    """A reference written into ``refdir``, or moved from there into the store's CRDS cache layout."""
    path = os.path.join(refdir, name)
    return path if os.path.exists(path) else reference_path(refdir, "MIRI", name)


def wcs_for(refdir, detector, band, ra_ref, dec_ref):
    """Our WCS of an exposure of ``detector`` / ``band`` pointed at (RA_REF, DEC_REF)."""
    refs = {rt: _ref(refdir, wcs_file(rt, detector, band)) for rt in ("distortion", "specwcs", "regions")}
    refs["wavelengthrange"] = _ref(refdir, "miri_mrs_wavelengthrange_0001.asdf")
    hdr = dict(_pointing_header(ra_ref, dec_ref), CHANNEL=design.DETECTOR_CHANNELS[detector], BAND=band)
    return MrsWcs(refs, hdr, "simulator")


def pointing(refdir, alpha, beta, ra_t, dec_t):
    """(RA_REF, DEC_REF) putting (ra_t, dec_t) at channel-1 (alpha, beta) [arcsec]."""
    v2t, v3t = design.ab_to_v2v3("1", alpha, beta)
    ra, dec = ra_t, dec_t
    for _ in range(6):       # the attitude is nearly a translation on the sky: converges fast
        w = wcs_for(refdir, "MIRIFUSHORT", "SHORT", ra, dec)
        got = w.v2v3_to_sky(v2t, v3t)
        dxi, deta = radec_to_xieta(ra_t, dec_t, float(got[0]), float(got[1]))
        ra, dec = xieta_to_radec(dxi, deta, ra, dec)
    return float(ra), float(dec), _ideal_offsets(v2t, v3t)


def plan(refdir, scale):
    """The exposures: dicts with root, detector, band, kind (science|background), number, ra_ref,
    dec_ref, xoffset, yoffset."""
    bra, bdec = xieta_to_radec(*BKG_OFFSET, scene.TARG_RA, scene.TARG_DEC)
    out = []
    for obs, kind, dithers, (ra_t, dec_t) in (("001", "science", DITHERS_AB, (scene.TARG_RA, scene.TARG_DEC)),
                                              ("002", "background", BKG_DITHERS_AB, (float(bra), float(bdec)))):
        for n, (a, b) in enumerate(dithers, start=1):
            ra, dec, (xo, yo) = pointing(refdir, a, b, ra_t, dec_t)
            for band in BANDS_OF_SCALE[scale]:
                for det in DETECTORS:
                    out.append({"root": f"jw{PROGRAM}{obs}001_{ACTIVITY[band]}_{n:05d}_{det.lower()}",
                                "detector": det, "band": band, "kind": kind, "obs": obs, "number": n,
                                "ndither": len(dithers), "ra_ref": ra, "dec_ref": dec, "xoffset": xo,
                                "yoffset": yo})
    return out


def exposure_header(e):
    """(PRIMARY, SCI) headers of the `_rate` of exposure ``e`` (official keywords)."""
    h = fits.Header()
    band, n = e["band"], e["number"]
    t0 = 60311.0 + (0 if e["kind"] == "science" else 0.2) + design.BANDS.index(band) * 0.05 + n * 0.005
    for key, val in (
            ("TELESCOP", "JWST"), ("INSTRUME", "MIRI"), ("EXP_TYPE", MRS_EXP_TYPE), ("DETECTOR", e["detector"]),
            ("CHANNEL", design.DETECTOR_CHANNELS[e["detector"]]), ("BAND", band), ("SUBARRAY", "FULL"),
            ("SUBSTRT1", 1), ("SUBSTRT2", 1), ("SUBSIZE1", design.NX), ("SUBSIZE2", design.NY),
            ("PROGRAM", PROGRAM), ("OBSERVTN", e["obs"]), ("VISIT", "001"), ("VISITGRP", "03"),
            ("SEQ_ID", "1"), ("ACT_ID", ACTIVITY[band][3:]), ("EXPOSURE", f"{n:05d}"),
            ("DATE-OBS", "2024-01-02"), ("TIME-OBS", "01:00:00.000"),
            ("EXPSTART", t0), ("EXPMID", t0 + 0.0017), ("EXPEND", t0 + 0.0034),
            ("READPATT", "FASTR1"), ("NINTS", 1), ("NGROUPS", 100), ("NFRAMES", 1), ("GROUPGAP", 0),
            ("EFFEXPTM", EFFEXPTM), ("EFFINTTM", EFFEXPTM), ("TMEASURE", EFFEXPTM),
            ("PATTTYPE", "4-POINT" if e["ndither"] == 4 else "2-POINT"), ("DITHOPFR", "POINT-SOURCE"),
            ("DITHDIRC", "NEGATIVE"), ("NUMDTHPT", e["ndither"]), ("PATTSTRT", 1), ("PATT_NUM", n),
            ("XOFFSET", e["xoffset"]), ("YOFFSET", e["yoffset"]), ("MRSPRCHN", "ALL"),
            ("TARGNAME", "SIMMRS-1"), ("TARGPROP", "SIMMRS-1"), ("TARG_RA", scene.TARG_RA),
            ("TARG_DEC", scene.TARG_DEC), ("TARGTYPE", "FIXED"), ("SRCTYAPT", "POINT"),
            ("BKGDTARG", e["kind"] == "background"), ("TSOVISIT", False), ("BUNIT", "DN/s"),
            ("DATAMODL", "IFUImageModel"), ("ORIGIN", "webbspec simulator")):
        h[key] = val
    s = fits.Header()
    s["BUNIT"] = "DN/s"
    for key, val in _pointing_header(e["ra_ref"], e["dec_ref"]).items():
        s[key] = val
    return h, s


def render_exposure(refdir, e):
    """(true rate [DN/s], stray light [DN/s], SB [MJy/sr], slice map) of exposure ``e``."""
    w = wcs_for(refdir, e["detector"], e["band"], e["ra_ref"], e["dec_ref"])
    sb, sl = sky_brightness(w, (design.NY, design.NX), COMPONENTS if e["kind"] == "science" else ("sky",))
    rate, stray = instrument_rate(sb, e["detector"], e["band"])
    return rate, stray, sb, sl


def simulate_mir_mrs(outdir, seed=0, scale="small"):
    """Write the program directory; returns a summary dict (paths)."""
    refdir = os.path.join(outdir, "refs")
    bands = BANDS_OF_SCALE[scale]
    sel = write_wcs_refs(refdir, DETECTORS, bands)
    sel.update(write_cal_refs(refdir, DETECTORS, bands))
    exposures = plan(refdir, scale)
    ss = np.random.SeedSequence([int(seed), _SEED_KEY])
    det_rng = {d: np.random.default_rng(s) for d, s in zip(DETECTORS, ss.spawn(len(DETECTORS)))}
    exp_seeds = ss.spawn(len(DETECTORS) + len(exposures))[len(DETECTORS):]
    dq_bad = {}
    rates, crmasks = [], []
    for e, es in zip(exposures, exp_seeds):
        rate, _, _, sl = render_exposure(refdir, e)
        if e["detector"] not in dq_bad:          # a property of the detector: the same in every exposure
            dq_bad[e["detector"]] = noise.bad_pixels(rate.shape, det_rng[e["detector"]], sl > 0, *N_BAD)
        dq = dq_bad[e["detector"]]
        observed = noise.observe(rate, np.random.default_rng(es), sl > 0, dq, N_CR, EFFEXPTM, GAIN, VAR_RNOISE)
        primary, sci_hdr = exposure_header(e)
        path, crmask = write_rate(outdir, e["root"], primary, sci_hdr, observed, dq)
        rates.append(path)
        crmasks.append(crmask)
    asns = _write_asns(outdir, exposures)
    context = _write_context(refdir, sel)
    write_truth(outdir, exposures, seed, scale)
    return {"mode": MODE, "outdir": outdir, "rates": rates, "asns": asns, "context": context, "crmasks": crmasks}


def _write_context(refdir, sel):
    from ..io.crdsmap import write_context

    return write_context(refdir, [{"reftype": rt, "match": rule["match"], "file": rule["file"], "instrument": "MIRI",
                                   "useafter": USEAFTER} for rt, rules in sel.items() for rule in rules],
                         number=1, derived_from="webbspec simulator")


def _write_asns(outdir, exposures):
    """One spec2 association per science exposure (the same detector and band's background
    exposures as background members) and per background exposure (alone), one spec3 of every
    science `_cal` with the backgrounds' `_x1d` as background members."""
    asns = []
    sci = [e for e in exposures if e["kind"] == "science"]
    bkg = [e for e in exposures if e["kind"] == "background"]
    for e in sci:
        members = [{"expname": f"{e['root']}_rate.fits", "exptype": "science"}]
        members += [{"expname": f"{b['root']}_rate.fits", "exptype": "background"} for b in bkg
                    if (b["detector"], b["band"]) == (e["detector"], e["band"])]
        path = os.path.join(outdir, f"jw{PROGRAM}-o001_20240102t000000_spec2_{len(asns) + 1:05d}_asn.json")
        asns.append(write_json(association("spec2", "candidate_Asn_Lv2MIRMRS", [{"name": e["root"], "members": members}]),
                               path))
    for b in bkg:            # the background exposures through Stage 2 too (their x1d feed master_background)
        path = os.path.join(outdir, f"jw{PROGRAM}-o002_20240102t000000_spec2_{len(asns) + 1:05d}_asn.json")
        members = [{"expname": f"{b['root']}_rate.fits", "exptype": "science"}]
        asns.append(write_json(association("spec2", "candidate_Asn_Lv2MIRMRS", [{"name": b["root"], "members": members}],
                                           obs="002"), path))
    members = [{"expname": f"{e['root']}_cal.fits", "exptype": "science"} for e in sci]
    members += [{"expname": f"{b['root']}_x1d.fits", "exptype": "background"} for b in bkg]
    path3 = os.path.join(outdir, f"jw{PROGRAM}-o001_spec3_00001_asn.json")
    asns.append(write_json(association("spec3", "candidate_Asn_Lv3MIRMRS",
                                       [{"name": f"jw{PROGRAM}-o001_t001_miri", "members": members}]), path3))
    return asns
