"""A simulated NIRSpec fixed-slit program: 3-point nod, `_rate` files, associations, refs, truth.

Exposures ``jw01234001001_03101_0000<n>_<det>_rate.fits`` (n = nod 1..3, YOFFSET -0.9, 0, +0.9
arcsec along the slit; XOFFSET 0.01 arcsec, i.e. SRCXPOS -0.05 of S200A1 through the optics'
ideal-frame parity). Frames: "small" = the NRS1 ALLSLITS subarray (2048 x 256, SUBSTRT2 897),
"full" = NRS1 + NRS2 full frame. Pointing: (V2_REF, V3_REF) is the S200A1 centre; RA_REF/DEC_REF
put the target (TARG_RA/TARG_DEC) at ideal (XOFFSET, YOFFSET) through the official V2/V3 -> sky
rotation with ROLL_REF and VA_SCALE (SCI header keywords, as in official products). Everything is
rendered through the optical-model references written first into ``refs/``
(``nirspec_optics_refs``; geometry in ``fs_geometry``).
"""

import json
import os

import numpy as np
from astropy.io import fits

from ..instruments.nirspec.fs import EXP_TYPE, MODE
from ..io import datamodels
from ..io.datamodels import Model, Slit
from ..instruments.nirspec.optics import v2v3_to_sky
from ..io.skycoords import radec_to_xieta, xieta_to_radec
from . import nirspec_optics_refs as optics_refs
from .fs_geometry import APERTURE, ideal_to_v2v3
from . import nirspec_fs as fs
from . import noise, refstore, truth

__all__ = ["simulate_nrs_fs", "TARG_RA", "TARG_DEC", "PA_APER", "NODS", "XOFFSET", "aperture_to_sky",
           "pointing", "sci_header"]

PROGRAM, OBS, VISIT = "01234", "001", "001"
TARG_RA, TARG_DEC, PA_APER = 53.1625, -27.7914, 138.2
NODS = (-0.9, 0.0, 0.9)
XOFFSET = 0.01
N_CR = {"small": 40, "full": 60}
N_BAD = {"small": (6, 6), "full": (150, 150)}
GWA = optics_refs.GWA_TILT_READINGS


def aperture_to_sky(xa, ya, pa_deg=PA_APER):
    """(xi, eta) [arcsec] of aperture-frame offsets (xa across, ya along the slit), flat-sky
    approximation with the slit axis at position angle ``pa_deg``."""
    pa = np.radians(pa_deg)
    return xa * np.cos(pa) + ya * np.sin(pa), -xa * np.sin(pa) + ya * np.cos(pa)


ROLL_REF = PA_APER - APERTURE["V3I_YANG"]   # V3 position angle giving the slit axis PA_APER
VA_SCALE = 1.0000257                        # velocity-aberration plate-scale factor


def _sky(v2, v3, ra_ref, dec_ref):
    return v2v3_to_sky(v2, v3, ra_ref, dec_ref, ROLL_REF, APERTURE["V2_REF"], APERTURE["V3_REF"], VA_SCALE)


def pointing(xoffset, yoffset, targ_ra=TARG_RA, targ_dec=TARG_DEC):
    """(RA_REF, DEC_REF) of (V2_REF, V3_REF) putting the target (``targ_ra``, ``targ_dec``) at
    ideal (xoffset, yoffset)."""
    v2, v3 = ideal_to_v2v3(xoffset, yoffset)
    ra, dec = targ_ra, targ_dec
    for _ in range(6):          # the attitude is nearly a translation on the sky: converges fast
        got = _sky(v2, v3, ra, dec)
        dxi, deta = radec_to_xieta(targ_ra, targ_dec, float(got[0]), float(got[1]))
        ra, dec = xieta_to_radec(dxi, deta, ra, dec)
    return float(ra), float(dec)


def exposure_root(nod, det):
    return f"jw{PROGRAM}{OBS}{VISIT}_03101_{nod:05d}_{det.lower()}"


def _primary(det, nod, yoff, ra_ref, dec_ref):
    h = fits.Header()
    for key, val in (
            ("TELESCOP", "JWST"), ("INSTRUME", "NIRSPEC"), ("EXP_TYPE", EXP_TYPE),
            ("DETECTOR", det.name), ("FILTER", fs.FILTER), ("GRATING", fs.GRATING),
            ("FXD_SLIT", fs.PRIMARY), ("SUBARRAY", det.subarray),
            ("SUBSTRT1", det.x0 + 1), ("SUBSTRT2", det.y0 + 1), ("SUBSIZE1", det.nx), ("SUBSIZE2", det.ny),
            ("PROGRAM", PROGRAM), ("OBSERVTN", OBS), ("VISIT", VISIT), ("VISITGRP", "03"),
            ("SEQ_ID", "1"), ("ACT_ID", "01"), ("EXPOSURE", f"{nod:05d}"),
            ("DATE-OBS", "2024-01-02"), ("TIME-OBS", f"0{nod}:00:00.000"),
            ("EXPSTART", 60311.0 + nod / 24.0), ("EXPMID", 60311.0 + nod / 24.0 + 0.0058),
            ("EXPEND", 60311.0 + nod / 24.0 + 0.0116),
            ("NINTS", 1), ("EFFEXPTM", fs.EFFEXPTM), ("EFFINTTM", fs.EFFEXPTM), ("TMEASURE", fs.EFFEXPTM),
            ("PATTTYPE", "3-POINT-NOD"), ("NUMDTHPT", 3), ("PATT_NUM", nod),
            ("XOFFSET", XOFFSET), ("YOFFSET", yoff),
            ("TARGNAME", "SIMFS-1"), ("TARGPROP", "SIMFS-1"), ("TARG_RA", TARG_RA), ("TARG_DEC", TARG_DEC),
            ("TARGTYPE", "FIXED"), ("SRCTYAPT", "POINT"), ("BKGDTARG", False), ("TSOVISIT", False),
            ("RA_REF", ra_ref), ("DEC_REF", dec_ref), ("PA_APER", PA_APER), ("ROLL_REF", ROLL_REF),
            ("GWA_XTIL", GWA[0]), ("GWA_YTIL", GWA[1]), ("BUNIT", "DN/s"),
            ("DATAMODL", "ImageModel"), ("ORIGIN", "webbspec simulator")):
        h[key] = val
    return h


def _rate_model(det, nod, yoff, true_rate, onslit, dq_bad, rng, n_cr):
    ra_ref, dec_ref = pointing(XOFFSET, yoff)
    sci, err, vp, vr, mask, snr = noise.observe(true_rate, rng, onslit, dq_bad, n_cr, fs.EFFEXPTM, fs.GAIN,
                                                fs.VAR_RNOISE)
    arrays = {"SCI": sci.astype(np.float32), "ERR": err.astype(np.float32), "DQ": dq_bad.copy(),
              "VAR_POISSON": vp.astype(np.float32), "VAR_RNOISE": vr.astype(np.float32)}
    return Model(_primary(det, nod, yoff, ra_ref, dec_ref), [Slit(sci_header(ra_ref, dec_ref), arrays)],
                 "single"), (mask, snr)


def sci_header(ra_ref, dec_ref):
    """The SCI header of a simulated `_rate`: BUNIT and the pointing (official meta.wcsinfo /
    velocity_aberration keywords live in the SCI header)."""
    hdr = fits.Header()
    hdr["BUNIT"] = "DN/s"
    for key, val in (("RA_REF", ra_ref), ("DEC_REF", dec_ref), ("ROLL_REF", ROLL_REF), ("PA_APER", PA_APER),
                     ("V2_REF", APERTURE["V2_REF"]), ("V3_REF", APERTURE["V3_REF"]),
                     ("V3I_YANG", APERTURE["V3I_YANG"]), ("VPARITY", APERTURE["VPARITY"]),
                     ("VA_SCALE", VA_SCALE)):
        hdr[key] = val
    return hdr


def association(asn_type, rule, products, obs="001", version="20240102t000000"):
    """An association tree as the official generator writes it (the simulators' spec2 / spec3)."""
    tree = {"asn_type": asn_type, "asn_rule": rule, "asn_id": f"o{obs}", "program": PROGRAM,
            "asn_pool": f"jw{PROGRAM}_{version}_pool", "version_id": version,
            "code_version": "webbspec-sim", "degraded_status": "No known degraded exposures in association.",
            "constraints": "simulated", "products": products}
    if asn_type == "spec3":
        tree["target"] = "t001"
    return tree


def write_json(tree, path):
    with open(path, "w") as fh:
        json.dump(tree, fh, indent=2)
        fh.write("\n")
    return path


def simulate_nrs_fs(outdir, seed=0, scale="small"):
    """Write the program directory; returns a summary dict (paths)."""
    refdir = os.path.join(outdir, "refs")
    optical = optics_refs.write_optical_refs(refdir, scale)      # the geometry renders through them
    dets = fs.layout(scale, refdir)
    ss = np.random.SeedSequence([int(seed), 7011])
    det_seeds = ss.spawn(len(dets))
    flats, rates, crmasks = {}, [], []
    for det, dseed in zip(dets, det_seeds):
        rng_det, *rng_exp = [np.random.default_rng(s) for s in dseed.spawn(1 + len(NODS))]
        flat = np.clip(1.0 + 0.02 * rng_det.standard_normal((det.ny, det.nx)), 0.9, 1.1).astype(np.float32)
        flats[det.name] = flat
        _, onslit0 = fs.render(det, {"XOFFSET": XOFFSET, "YOFFSET": 0.0, "PRIMARY": fs.PRIMARY}, flat)
        dq_bad = noise.bad_pixels((det.ny, det.nx), rng_det, onslit0, *N_BAD[scale])
        for k, (yoff, rng) in enumerate(zip(NODS, rng_exp), start=1):
            expo = {"XOFFSET": XOFFSET, "YOFFSET": yoff, "PRIMARY": fs.PRIMARY}
            true_rate, onslit = fs.render(det, expo, flat.astype(np.float64))
            model, mask = _rate_model(det, k, yoff, true_rate, onslit, dq_bad, rng, N_CR[scale])
            root = exposure_root(k, det.name)
            path = os.path.join(outdir, f"{root}_rate.fits")
            datamodels.write(model, path)
            rates.append(path)
            crmasks.append(truth.write_crmask(*mask, os.path.join(outdir, "truth", "outliers",
                                                                 f"{root}_rate_crmask.fits")))

    # associations: one spec2 per science exposure (other nods of the detector as background)
    asns = []
    for det in dets:
        roots = [exposure_root(k, det.name) for k in range(1, len(NODS) + 1)]
        for root in roots:
            members = [{"expname": f"{root}_rate.fits", "exptype": "science"}]
            members += [{"expname": f"{r}_rate.fits", "exptype": "background"} for r in roots if r != root]
            n = len(asns) + 1
            path = os.path.join(outdir, f"jw{PROGRAM}-o001_20240102t000000_spec2_{n:05d}_asn.json")
            write_json(association("spec2", "candidate_Asn_Lv2NRSFSS", [{"name": root, "members": members}]), path)
            asns.append(path)
    cal_members = [{"expname": f"{exposure_root(k, d.name)}_cal.fits", "exptype": "science"}
                   for d in dets for k in range(1, len(NODS) + 1)]
    product = f"jw{PROGRAM}-o001_t001_nirspec_{fs.FILTER.lower()}-{fs.GRATING.lower()}"
    path3 = os.path.join(outdir, f"jw{PROGRAM}-o001_spec3_00001_asn.json")
    write_json(association("spec3", "candidate_Asn_Lv3NRSFSS", [{"name": product, "members": cal_members}]), path3)
    asns.append(path3)

    context = refstore.write_store(refdir, dets, flats, optical=optical)
    _write_truth(outdir, dets, seed, scale)
    return {"mode": MODE, "outdir": outdir, "rates": rates, "asns": asns, "context": context,
            "crmasks": crmasks}


def _write_truth(outdir, dets, seed, scale):
    tdir = os.path.join(outdir, "truth")
    wave = np.linspace(2.80, 5.20, 12001)   # 0.2 nm: a tenth of a line's sigma
    ra_ref, dec_ref = pointing(XOFFSET, NODS[0])
    det = dets[0]
    rows = []
    for sd in fs.SLITS:
        sid = fs.source_id(sd.name)
        if sd.name == fs.PRIMARY:
            rows.append({"source_id": sid, "srctype": "POINT", "slit": sd.name, "ra": TARG_RA, "dec": TARG_DEC})
            truth.write_spectrum(sid, wave, fs.point_source_jy(wave), "POINT", os.path.join(tdir, "spectra"))
        else:       # the slit centre (first nod's pointing)
            ra, dec = _sky(*det.optics.slit_to_v2v3(sd.name, 0.0, 0.0, 2.0e-6), ra_ref, dec_ref)
            rows.append({"source_id": sid, "srctype": "EXTENDED", "slit": sd.name, "ra": float(ra),
                         "dec": float(dec)})
            truth.write_spectrum(sid, wave, fs.sky_mjysr(wave), "EXTENDED", os.path.join(tdir, "spectra"))
    truth.write_sources(rows, os.path.join(tdir, "sources.ecsv"))
    truth.write_readme(os.path.join(tdir, "README.md"), mode=MODE, seed=seed, scale=scale,
                       primary=fs.PRIMARY, xoff=XOFFSET,
                       xpos=det.source_in_slit(fs.PRIMARY, XOFFSET, 0.0)[0])
