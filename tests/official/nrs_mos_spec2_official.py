"""The official jwst NIRSpec MOS Stage 2 steps, offline, one by one on the shared MOS recipe's exposure,
every intermediate saved: the oracle of tests/official/test_nrs_mos_spec2_official.py.

    python nrs_mos_spec2_official.py WORKDIR OUTDIR

WORKDIR holds what the recipe builds (refs_mos/refs.json, the MSA metadata file, the `_rate`).
Each reference is handed over as ``override_<reftype>`` (master_background_mos gets them for its
inner flat_field / pathloss / barshadow / photom / extract_1d too: without them it silently returns
all-NaN slitlets). Writes to OUTDIR, each step's output as ``<step>.fits`` (assign_wcs is not
saved: its output is the `_rate` plus a gwcs), in the official order

    msa_flagging -> imprint_subtract -> extract_2d -> srctype -> master_background_mos -> wavecorr
    -> flat_field -> pathloss -> barshadow -> photom

where imprint_subtract (``imprint.fits``, its input ``imprint_member.fits``: a synthetic imprint
exposure, 5% of the science plus a ramp, with a few DQ bits) is a side branch: extract_2d runs on
the msa_flagging output, as the recipe's association has no imprint member. Also
``masterbg1d.fits`` (the master background spectrum), ``coords.npz`` (per slitlet ``<name>_slit_y``,
the slit-frame y of every cutout pixel, what barshadow reads, and ``<name>_ra``, ``<name>_dec``
[deg], all from the extract_2d gwcs) and
``times.json`` (seconds per step). CRDS is never contacted.
"""

import json
import os
import sys
import time
import warnings

from nrs_fs_wcs_official import offline  # the script's directory is on sys.path

WCS_TYPES = ("fpa", "camera", "collimator", "disperser", "wavelengthrange", "msa", "fore", "ote")


def main(workdir, outdir):
    offline()
    warnings.simplefilter("ignore")
    import numpy as np
    from jwst.assign_wcs import AssignWcsStep
    from jwst.barshadow import BarShadowStep
    from jwst.extract_2d import Extract2dStep
    from jwst.flatfield import FlatFieldStep
    from jwst.imprint import ImprintStep
    from jwst.master_background import MasterBackgroundMosStep
    from jwst.msaflagopen import MSAFlagOpenStep
    from jwst.pathloss import PathLossStep
    from jwst.photom import PhotomStep
    from jwst.srctype import SourceTypeStep
    from jwst.wavecorr import WavecorrStep
    from stdatamodels.jwst import datamodels as dm

    refs = json.load(open(os.path.join(workdir, "refs_mos", "refs.json")))
    ovr = {
        "assign_wcs": {f"override_{k}": refs[k] for k in WCS_TYPES},
        "msa_flagging": {"override_msaoper": refs["msaoper"]},
        "wavecorr": {"override_wavecorr": refs["wavecorr"]},
        "flat_field": {f"override_{k}": refs[k] for k in ("fflat", "sflat", "dflat")},
        "pathloss": {"override_pathloss": refs["pathloss"]},
        "barshadow": {"override_barshadow": refs["barshadow"]},
        "photom": {"override_photom": refs["photom"], "override_area": refs["area"]},
        "extract_1d": {"override_extract1d": refs["extract1d"], "override_apcorr": refs["apcorr"]},
    }
    inner = {k: dict(ovr[k]) for k in ("flat_field", "pathloss", "barshadow", "photom", "extract_1d")}
    times = {}

    def step(name, fn, *args, save=True, **kw):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        times[name] = round(time.perf_counter() - t0, 2)
        if save:
            out.save(os.path.join(outdir, f"{name}.fits"))
        return out

    rate = dm.ImageModel(os.path.join(workdir, [f for f in os.listdir(workdir) if f.endswith("_rate.fits")][0]))
    m = step("assign_wcs", AssignWcsStep.call, rate, input_dir=workdir, save=False, **ovr["assign_wcs"])
    m = step("msa_flagging", MSAFlagOpenStep.call, m, **ovr["msa_flagging"])

    imp = dm.ImageModel(rate.data.shape)
    yy, xx = np.mgrid[0:rate.data.shape[0], 0:rate.data.shape[1]]
    imp.data = (0.05 * rate.data + 1e-3 * (1 + xx / 2048.0)).astype(np.float32)
    imp.dq = np.zeros(rate.data.shape, np.uint32)
    imp.dq[100:110, 200:260] = 4      # JUMP_DET
    imp.dq[1500, 300:900] = 1         # DO_NOT_USE
    imp.err = np.full(rate.data.shape, 1e-3, np.float32)
    imp.update(rate)
    imp.save(os.path.join(outdir, "imprint_member.fits"))
    step("imprint", ImprintStep.call, m, [os.path.join(outdir, "imprint_member.fits")])

    e = step("extract_2d", Extract2dStep.call, m)
    arrays = {}
    for s in e.slits:
        ny, nx = s.data.shape
        y, x = np.mgrid[0:ny, 0:nx].astype(float)
        _, arrays[f"{s.name}_slit_y"], _ = s.meta.wcs.get_transform("detector", "slit_frame")(x, y)
        arrays[f"{s.name}_ra"], arrays[f"{s.name}_dec"], _ = s.meta.wcs(x, y)
    np.savez(os.path.join(outdir, "coords.npz"), **arrays)
    e = step("srctype", SourceTypeStep.call, e)
    e = step("master_background_mos", MasterBackgroundMosStep.call, e, save_background=True,
             output_dir=outdir, steps=inner)
    for f in os.listdir(outdir):
        if f.endswith("_masterbg1d.fits"):
            os.replace(os.path.join(outdir, f), os.path.join(outdir, "masterbg1d.fits"))
    e = step("wavecorr", WavecorrStep.call, e, **ovr["wavecorr"])
    e = step("flat_field", FlatFieldStep.call, e, **ovr["flat_field"])
    e = step("pathloss", PathLossStep.call, e, **ovr["pathloss"])
    e = step("barshadow", BarShadowStep.call, e, **ovr["barshadow"])
    e = step("photom", PhotomStep.call, e, **ovr["photom"])
    with open(os.path.join(outdir, "times.json"), "w") as f:
        json.dump(times, f, indent=1)
    print("official MOS steps [s]:", json.dumps(times))


if __name__ == "__main__":
    main(*sys.argv[1:])
