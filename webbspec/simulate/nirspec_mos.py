"""A simulated NIRSpec MOS program: MSA plan and files, `_rate` exposures, imprints, associations,
references, truth.

Per MSA configuration c (``mos_plan``; one configuration holds ~80 slitlets on full frames):
``jw01234002001_<cc>_msa.fits`` (MSAMETID c), the 3-point nod on NRS1 and NRS2
``jw01234002001_031<cc>_0000<k>_<det>_rate.fits`` (PATT_NUM k) and one imprint (leakcal: every
shutter closed, IS_IMPRT) per detector ``jw01234002001_021<cc>_00001_<det>_rate.fits``. Frames:
"small" a 2048 x 640 band of rows (SUBSTRT2 713: both halves of the MSA next to the fixed
slits) on both detectors, 12 sources by default; "full" 2048 x 2048 frames, one configuration
filled by default, ``nsources`` any number (more configurations).

A science exposure = its slitlets (sky in every open shutter, the sources, ``mos_render``) +
the failed-open shutters' sky + the MSA leakage, then noise, cosmic rays and bad pixels
(``noise``); the imprint = the failed-open shutters + the leakage, with noise and no rays.
Associations: a spec2 per science exposure (the science and its imprint member; backgrounds come
from the background slitlets, master_background_mos) and one spec3 over every `_cal` (product
name with ``{source_id}``, as MAST's MOS products). References: the MOS optical set and the MOS
calibration references (official formats) in ``refs/``, a CRDS cache whose context selects them
for NRS_MSASPEC exposures. Truth under ``truth/`` in the FS layout (``truth.py``) plus the MOS
columns of ``sources.ecsv``. Same seed -> same bytes.
"""

import os

import numpy as np
from astropy.io import fits

from ..errors import InputError
from ..instruments.nirspec.mos import EXP_TYPE, MODE
from ..instruments.nirspec.msa import write_msa_file
from ..instruments.nirspec.optics import Optics
from ..io import datamodels
from ..io.datamodels import Model, Slit
from . import mos_calrefs, mos_optics_refs, mos_plan, mos_render, noise, refstore, truth
from . import mos_scene as scene
from . import nirspec_fs as fs
from .fs_geometry import Detector
from .fs_program import PA_APER, ROLL_REF, association, pointing, sci_header, write_json
from .mos_optics_refs import PITCH
from .nirspec_optics_refs import GWA_TILT_READINGS

__all__ = ["simulate_nrs_mos", "plan_program", "exposure_root", "imprint_root", "msa_name", "frames",
           "FRAMES", "TARG_RA", "TARG_DEC", "PROGRAM", "DEFAULT_NSOURCES"]

PROGRAM, OBS, VISIT = "01234", "002", "001"
TARG_RA, TARG_DEC = 53.1420, -27.8050       # the MSA centre at the first dither point
# (detector, SUBARRAY, SUBSTRT1, SUBSTRT2, SUBSIZE1, SUBSIZE2) per scale
FRAMES = {"small": (("NRS1", "GENERIC", 1, 713, 2048, 640), ("NRS2", "GENERIC", 1, 713, 2048, 640)),
          "full": (("NRS1", "FULL", 1, 1, 2048, 2048), ("NRS2", "FULL", 1, 1, 2048, 2048))}
DEFAULT_NSOURCES = {"small": 12, "full": None}       # None: one configuration filled
N_CR = {"small": 40, "full": 80}
N_BAD = {"small": (10, 10), "full": (150, 150)}
_SEED_KEY = 7013


def msa_name(config):
    return f"jw{PROGRAM}{OBS}{VISIT}_{config:02d}_msa.fits"


def exposure_root(config, nod, det):
    return f"jw{PROGRAM}{OBS}{VISIT}_031{config:02d}_{nod:05d}_{det.lower()}"


def imprint_root(config, det):
    return f"jw{PROGRAM}{OBS}{VISIT}_021{config:02d}_00001_{det.lower()}"


def _optics_header(det, ra_ref=None, dec_ref=None):
    h = {"DETECTOR": det, "FILTER": fs.FILTER, "GRATING": fs.GRATING, "GWA_XTIL": GWA_TILT_READINGS[0],
         "GWA_YTIL": GWA_TILT_READINGS[1]}
    if ra_ref is not None:
        h.update(dict(sci_header(ra_ref, dec_ref)))
    return h


def frames(scale, refdir):
    """The detector frames of ``scale`` (``fs_geometry.Detector``; no fixed slits) with the
    forward optics of the MOS set written in ``refdir``."""
    refs = {rt: os.path.join(refdir, f) for rt, f in mos_optics_refs.REF_FILES.items()}
    return [Detector(name, nx, ny, sx - 1, sy - 1, sub, optics=Optics(refs, _optics_header(name), "simulator"))
            for name, sub, sx, sy, nx, ny in FRAMES[scale]]


def nod_pointings():
    """(RA_REF, DEC_REF, YOFFSET) per dither point: the sky moves by NOD_SHIFTS shutter pitches
    along the slitlets (ideal Y is the MSA's column direction)."""
    out = []
    for shift in mos_plan.NOD_SHIFTS:
        yoff = shift * PITCH[1]
        out.append((*pointing(0.0, yoff, TARG_RA, TARG_DEC), yoff))
    return out


def plan_program(scale, nsources, seed, refdir, per_slot=1):
    """(frames, plan, sky positions {slitlet_id: (ra, dec)}) without rendering anything
    (``per_slot``: ``mos_plan.make_plan``'s, slitlets per slot, > 1 overlapping spectra)."""
    dets = frames(scale, refdir)
    n = DEFAULT_NSOURCES[scale] if nsources is None else int(nsources)
    plan = mos_plan.make_plan(scale, n if n is not None else 0, seed, [d.optics for d in dets],
                              [(d.y0, d.ny) for d in dets], fill=n is None, per_slot=per_slot)
    ra1, dec1, _ = nod_pointings()[0]
    refs = dets[0].optics.refs
    sky_optics = Optics(refs, _optics_header(dets[0].name, ra1, dec1), "simulator")
    sky = {}
    for s in plan.slitlets:
        x, y = (s.source.xpos, s.source.ypos) if s.kind == "source" else (0.0, 0.0)
        _, (ra, dec) = sky_optics.slit_to_sky((s.quadrant, s.row, s.column), x, y, 4.0e-6)
        sky[s.slitlet_id] = (float(ra), float(dec))
    return dets, plan, sky


def _primary(det, config, nod, ra_ref, dec_ref, yoff, imprint=False):
    t = (config - 1) * 4 + nod                          # 20-minute slots: imprint, then the nods
    h = fits.Header()
    for key, val in (
            ("TELESCOP", "JWST"), ("INSTRUME", "NIRSPEC"), ("EXP_TYPE", EXP_TYPE),
            ("DETECTOR", det.name), ("FILTER", fs.FILTER), ("GRATING", fs.GRATING), ("FXD_SLIT", "NONE"),
            ("OPMODE", "MSASPEC"), ("LAMP", "NONE"), ("SUBARRAY", det.subarray),
            ("SUBSTRT1", det.x0 + 1), ("SUBSTRT2", det.y0 + 1), ("SUBSIZE1", det.nx), ("SUBSIZE2", det.ny),
            ("PROGRAM", PROGRAM), ("OBSERVTN", OBS), ("VISIT", VISIT), ("VISITGRP", "02" if imprint else "03"),
            ("SEQ_ID", "1"), ("ACT_ID", f"{config:02d}"), ("EXPOSURE", f"{max(nod, 1):05d}"),
            ("DATE-OBS", "2024-02-03"), ("TIME-OBS", f"{t // 3:02d}:{20 * (t % 3):02d}:00.000"),
            ("EXPSTART", 60343.0 + t / 72.0), ("EXPMID", 60343.0 + t / 72.0 + 0.0058),
            ("EXPEND", 60343.0 + t / 72.0 + 0.0116),
            ("NINTS", 1), ("EFFEXPTM", fs.EFFEXPTM), ("EFFINTTM", fs.EFFEXPTM), ("TMEASURE", fs.EFFEXPTM),
            ("PATTTYPE", "3-SHUTTER-SLITLET"), ("NUMDTHPT", 3), ("PATT_NUM", max(nod, 1)),
            ("XOFFSET", 0.0), ("YOFFSET", yoff),
            ("MSAMETFL", msa_name(config)), ("MSAMETID", config), ("MSACONID", config),
            ("MSASTATE", "PRIMARYPARK_ALLCLOSED" if imprint else "PRIMARYPARK_CONFIGURED"),
            ("IS_IMPRT", bool(imprint)), ("BKGDTARG", False), ("TSOVISIT", False),
            ("TARGNAME", "SIMMOS-1"), ("TARGPROP", "SIMMOS-1"), ("TARG_RA", TARG_RA), ("TARG_DEC", TARG_DEC),
            ("TARGTYPE", "FIXED"), ("RA_REF", ra_ref), ("DEC_REF", dec_ref), ("PA_APER", PA_APER),
            ("ROLL_REF", ROLL_REF), ("GWA_XTIL", GWA_TILT_READINGS[0]), ("GWA_YTIL", GWA_TILT_READINGS[1]),
            ("BUNIT", "DN/s"), ("DATAMODL", "ImageModel"), ("ORIGIN", "webbspec simulator")):
        h[key] = val
    return h


def _write_rate(path, primary, ra_ref, dec_ref, true_rate, lit, dq_bad, rng, n_cr):
    sci, err, vp, vr, mask, snr = noise.observe(true_rate, rng, lit, dq_bad, n_cr, fs.EFFEXPTM, fs.GAIN,
                                                fs.VAR_RNOISE)
    arrays = {"SCI": sci.astype(np.float32), "ERR": err.astype(np.float32), "DQ": dq_bad.copy(),
              "VAR_POISSON": vp.astype(np.float32), "VAR_RNOISE": vr.astype(np.float32)}
    datamodels.write(Model(primary, [Slit(sci_header(ra_ref, dec_ref), arrays)], "single"), path)
    return mask, snr


def _write_msa_files(outdir, plan, sky, chosen):
    paths = []
    for c, cfg in enumerate(plan.configs, start=1):
        if c not in chosen:
            continue
        rows = mos_plan.msa_slitlets(cfg, PROGRAM, lambda s: sky[s.slitlet_id])
        path = os.path.join(outdir, msa_name(c))
        write_msa_file(path, rows, PROGRAM, {"VISIT": VISIT, "OBSERVTN": OBS, "VISIT_ID": f"{PROGRAM}{OBS}{VISIT}",
                                             "MSACONID": c, "DATE": "2024-02-01T00:00:00"})
        paths.append(path)
    return paths


def simulate_nrs_mos(outdir, seed=0, scale="small", nsources=None, per_slot=1, configurations=None):
    """Write the program directory; returns a summary dict (paths, counts). ``per_slot`` > 1:
    up to that many slitlets per slot of the MSA plan, their spectra overlapping on the detector
    (``mos_plan``; e.g. one full-frame exposure with 200 slitlets for the Stage 2 benchmark).
    ``configurations``: write the exposures, MSA files and associations of these MSA
    configurations (1-based) only, the same bytes as in the whole program (references and truth
    are the whole program's): a 1000-source program is 13 configurations, 104 `_rate` files of
    84 MB, which a benchmark can run one configuration at a time."""
    outdir = str(outdir)
    if nsources is not None and int(nsources) < 1:
        raise InputError(outdir, f"--nsources must be at least 1 (got {nsources})")
    if int(per_slot) < 1:
        raise InputError(outdir, f"per_slot must be at least 1 (got {per_slot})")
    refdir = os.path.join(outdir, "refs")
    optical = mos_optics_refs.write_optical_refs(refdir)
    dets, plan, sky = plan_program(scale, nsources, seed, refdir, int(per_slot))
    chosen = set(range(1, len(plan.configs) + 1)) if configurations is None else {int(c) for c in configurations}
    if not chosen or not chosen <= set(range(1, len(plan.configs) + 1)):
        raise InputError(outdir, f"configurations {sorted(chosen)} not among the plan's 1-{len(plan.configs)}")
    msa_paths = _write_msa_files(outdir, plan, sky, chosen)
    nods = nod_pointings()
    ss = np.random.SeedSequence([int(seed), _SEED_KEY])
    flats, rates, imprints, crmasks = {}, [], {}, []
    jobs = [(outdir, det, plan, nods, dseed, scale, chosen) for det, dseed in zip(dets, ss.spawn(len(dets)))]
    for det, (flat, r, i, c) in zip(dets, _detectors(jobs, scale)):
        flats[det.name] = flat
        rates += r
        imprints.update(i)
        crmasks += c
    asns = _write_asns(outdir, plan, dets, imprints, chosen)
    refs = {rt: [{"match": _optical_match(rt, dets), "file": f}] for rt, f in optical.items()}
    refs.update(mos_calrefs.write_all(refdir, dets, flats, dets[0].optics, plan.failed_open, plan.failed_closed))
    context = refstore.write_selections(refdir, refs)
    _write_truth(outdir, plan, sky, seed, scale)
    return {"mode": MODE, "outdir": outdir, "rates": rates, "imprints": sorted(imprints.values()),
            "msa": msa_paths, "asns": asns, "context": context, "crmasks": crmasks,
            "configurations": len(plan.configs), "written_configurations": sorted(chosen),
            "slitlets": len(plan.slitlets), "sources": len(plan.sources)}


_JOBS = []


def _detector_job(k):
    rates, imprints, crmasks = [], {}, []
    flat = _write_detector(*_JOBS[k], rates, imprints, crmasks)
    return flat, rates, imprints, crmasks


def _detectors(jobs, scale):
    """[(pixel flat, rates, imprints, crmasks)] of each detector's ``_write_detector``: on full
    frames the detectors in parallel processes (forked: they inherit the optics and the plan;
    each detector has its own random streams, so the bytes are those of a serial run)."""
    workers = min(len(jobs), os.cpu_count() or 1)
    _JOBS[:] = jobs
    try:
        if scale != "full" or workers < 2:
            return [_detector_job(k) for k in range(len(jobs))]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_detector_job, range(len(jobs))))
    finally:
        _JOBS.clear()


def _write_detector(outdir, det, plan, nods, seed_seq, scale, chosen, rates, imprints, crmasks):
    """Every science and imprint `_rate` of one detector of the configurations ``chosen``
    (appending their paths to ``rates``, ``imprints`` {(configuration, detector): path},
    ``crmasks``); returns its pixel flat."""
    det_seq, *cfg_seqs = seed_seq.spawn(1 + len(plan.configs))
    rng_det = np.random.default_rng(det_seq)
    shape = (det.ny, det.nx)
    flat = np.clip(1.0 + 0.02 * rng_det.standard_normal(shape), 0.9, 1.1).astype(np.float32)
    pixel_flat = flat.astype(np.float64)
    failed = [mos_render.shutter_image(det.optics, det, key, 1) for key in plan.failed_open]
    imprint_rate, imprint_lit = mos_render.failed_open_rate(failed, shape, pixel_flat)
    imprint_rate += mos_render.leak_pattern(det.optics, det)
    dq_bad = None
    for c, (cfg, cfg_seq) in enumerate(zip(plan.configs, cfg_seqs), start=1):
        if c not in chosen and dq_bad is not None:
            continue
        images = {s.slitlet_id: mos_render.shutter_image(det.optics, det, (s.quadrant, s.row, s.column), 3)
                  for s in cfg}
        if c not in chosen:           # the bad pixels lie where the first configuration's light is
            _, lit = mos_render.render_exposure(images, cfg, 1, shape, pixel_flat)
            dq_bad = noise.bad_pixels(shape, rng_det, lit, *N_BAD[scale])
            continue
        rngs = [np.random.default_rng(s) for s in cfg_seq.spawn(1 + len(nods))]
        for k, (ra_ref, dec_ref, yoff) in enumerate(nods, start=1):
            true_rate, lit = mos_render.render_exposure(images, cfg, k, shape, pixel_flat)
            if dq_bad is None:        # bad pixels: the detector's, a third on the first slitlets
                dq_bad = noise.bad_pixels(shape, rng_det, lit, *N_BAD[scale])
            root = exposure_root(c, k, det.name)
            path = os.path.join(outdir, f"{root}_rate.fits")
            mask = _write_rate(path, _primary(det, c, k, ra_ref, dec_ref, yoff), ra_ref, dec_ref,
                               true_rate + imprint_rate, lit | imprint_lit, dq_bad, rngs[k], N_CR[scale])
            rates.append(path)
            crmasks.append(truth.write_crmask(*mask, os.path.join(outdir, "truth", "outliers",
                                                                 f"{root}_rate_crmask.fits")))
        ra_ref, dec_ref, yoff = nods[0]              # the imprint: at the first dither point, no rays
        path = os.path.join(outdir, f"{imprint_root(c, det.name)}_rate.fits")
        _write_rate(path, _primary(det, c, 0, ra_ref, dec_ref, yoff, imprint=True), ra_ref, dec_ref,
                    imprint_rate, imprint_lit, dq_bad, rngs[0], 0)
        imprints[(c, det.name)] = path
    return flat


def _optical_match(reftype, dets):
    match = {"INSTRUME": "NIRSPEC", "EXP_TYPE": EXP_TYPE, "DETECTOR": [d.name for d in dets]}
    if reftype in ("disperser", "fore"):
        match.update(FILTER=fs.FILTER, GRATING=fs.GRATING)
    return match


def _asn(asn_type, rule, products):
    return association(asn_type, rule, products, obs=OBS, version="20240203t000000")


def _write_asns(outdir, plan, dets, imprints, chosen):
    """A spec2 per science exposure (science + its configuration's imprint of the detector) and
    the spec3 over every `_cal` (of the configurations ``chosen``)."""
    asns, cal, number = [], [], 0
    for c in range(1, len(plan.configs) + 1):
        for det in dets:
            for k in range(1, len(mos_plan.NOD_SHIFTS) + 1):
                number += 1                      # the whole program's numbering
                if c not in chosen:
                    continue
                root = exposure_root(c, k, det.name)
                members = [{"expname": f"{root}_rate.fits", "exptype": "science"},
                           {"expname": os.path.basename(imprints[(c, det.name)]), "exptype": "imprint"}]
                path = os.path.join(outdir, f"jw{PROGRAM}-o{OBS}_20240203t000000_spec2_{number:05d}_asn.json")
                asns.append(write_json(_asn("spec2", "candidate_Asn_Lv2NRSMSA", [{"name": root, "members": members}]),
                                        path))
                cal.append({"expname": f"{root}_cal.fits", "exptype": "science"})
    product = f"jw{PROGRAM}-o{OBS}_{{source_id}}_nirspec_{fs.FILTER.lower()}-{fs.GRATING.lower()}"
    path3 = os.path.join(outdir, f"jw{PROGRAM}-o{OBS}_spec3_00001_asn.json")
    asns.append(write_json(_asn("spec3", "candidate_Asn_Lv3SpectralSource", [{"name": product, "members": cal}]),
                            path3))
    return asns


# ---------------------------------------------------------------------------------------- truth
_EXTRA = (("kind", "U10", None), ("stellarity", "f8", None), ("msametid", "i4", None), ("slitlet_id", "i4", None),
          ("quadrant", "i4", None), ("shutter_row", "i4", None), ("shutter_column", "i4", None),
          ("xpos", "f8", None), ("ypos", "f8", None), ("size", "f8", "arcsec"), ("redshift", "f8", None))


def _write_truth(outdir, plan, sky, seed, scale):
    tdir = os.path.join(outdir, "truth")
    wave = np.linspace(2.80, 5.20, 12001)        # 0.2 nm, as the FS truth
    rows = []
    for s in plan.slitlets:
        src = s.source
        ra, dec = sky[s.slitlet_id]
        rows.append({"source_id": s.source_id, "srctype": src.srctype if src else "EXTENDED", "slit": str(s.slitlet_id),
                     "ra": ra, "dec": dec, "kind": src.kind if src else s.kind,
                     "stellarity": src.stellarity if src else 0.0, "msametid": s.config, "slitlet_id": s.slitlet_id,
                     "quadrant": s.quadrant, "shutter_row": s.row, "shutter_column": s.column,
                     "xpos": src.xpos if src else 0.0, "ypos": src.ypos if src else 0.0,
                     "size": src.size if src else 0.0, "redshift": src.redshift if src else 0.0})
        if src is not None:
            values = scene.spectrum(src, wave)
        else:                     # background and virtual slitlets hold the sky
            values = scene.sky_mjysr(wave)
        _write_spectrum(s.source_id, wave, values, src.srctype if src else "EXTENDED",
                        os.path.join(tdir, "spectra"), {"background": "b", "virtual": "v"}.get(s.kind, "s"))
    truth.write_sources(rows, os.path.join(tdir, "sources.ecsv"), _EXTRA)
    with open(os.path.join(tdir, "README.md"), "w") as fh:
        fh.write(README.format(mode=MODE, seed=seed, scale=scale, nconf=len(plan.configs),
                               nslit=len(plan.slitlets), nsrc=len(plan.sources)))


_ECSV_HEAD = {}


def _write_spectrum(source_id, wavelength, values, kind, path_dir, prefix):
    """``truth.write_spectrum``'s file, byte for byte, in a tenth of its time (astropy's ECSV
    writer formats the 12,001 rows one cell at a time; a 1000-source program has 1000 of them):
    the header is astropy's own for an empty table of the same columns and meta, the rows the
    shortest round-trip repr of each float64, as astropy writes them."""
    import io

    from astropy.table import Table

    col = "flux" if kind == "POINT" else "surf_bright"
    if kind not in _ECSV_HEAD:
        t = Table({"wavelength": np.zeros(0), col: np.zeros(0)})
        t["wavelength"].unit = "um"
        t[col].unit = "Jy" if kind == "POINT" else "MJy/sr"
        t.meta["source_id"] = 0
        t.meta["srctype"] = kind
        buf = io.StringIO()
        t.write(buf, format="ascii.ecsv")
        _ECSV_HEAD[kind] = buf.getvalue()
    head = _ECSV_HEAD[kind].replace("- {source_id: 0}\n", f"- {{source_id: {int(source_id)}}}\n", 1)
    rows = "".join(f"{w!r} {v!r}\n" for w, v in zip(np.asarray(wavelength, float).tolist(),
                                                   np.asarray(values, float).tolist()))
    os.makedirs(path_dir, exist_ok=True)
    path = os.path.join(path_dir, f"{prefix}{abs(int(source_id)):09d}.ecsv")
    with open(path, "w") as fh:
        fh.write(head + rows)
    return path


README = """# Simulator truth ({mode}, seed {seed}, scale {scale})

{nsrc} sources in {nslit} slitlets over {nconf} MSA configuration(s).

- `sources.ecsv`: one row per slitlet: source_id (official: the source's; background slitlets
  their slitlet id; virtual ones minus it), srctype, slit (slitlet id), ra, dec [deg] (the source;
  background / virtual: the middle shutter's centre at the first dither point), kind (point,
  extended, background, virtual), stellarity, msametid (configuration), slitlet_id, quadrant,
  shutter_row, shutter_column (the middle shutter; the source sits there at dither point 1,
  one column up at 2, one down at 3), xpos, ypos (the source in its shutter, slit-frame units
  -0.5..0.5: what the MSA file's estimated_source_in_shutter_x/y - 0.5 says), size (extended:
  Gaussian sigma along the slit [arcsec], uniform across the shutter), redshift.
- `spectra/s<id 9 digits>.ecsv`: wavelength [um] and flux [Jy] (POINT) or surf_bright [MJy/sr]
  (EXTENDED: the surface brightness at the profile peak); background slitlets `b<id>.ecsv`,
  virtual ones `v<-id>.ecsv` (the official product prefixes): the sky, which the master
  background removes.
- `outliers/<rate root>_crmask.fits`: uint8 image in PRIMARY, 1 = injected cosmic ray pixel;
  extension SNR: the ray's signal over the pixel's noise (science exposures; the imprints have none).
- Model (webbspec/simulate/mos_scene.py): a point source is the FS program's two-Gaussian PSF cut
  by the shutter width and by the open shutters along the slit (pathloss PS tabulates the total;
  its y axis is in shutter pitches: the official step moves it by 1 per closed neighbour, and
  reads SRCYPOS, in open heights, on it: a 13 % scale difference on the offset inside the
  shutter); extended light and the sky are uniform across the shutter width, multiplied by the
  bar shadow (barshadow data1x3) and the uniform throughput; the fore flat of a slitlet is its
  row's; every exposure also holds the MSA leakage and the failed-open shutters' sky, which the
  imprint exposure holds too.
"""
