"""IFU Stage 3: ours against the official pipeline on the same `_cal` inputs (MIRI MRS, NIRSpec IFU).

Per mode: ``webbspec simulate <mode> DIR --scale <scale>`` (MRS full: 4 dithers x 2 detectors x
3 sub-bands = 24 exposures, 12 band cubes; NIRSpec IFU full: 4 dithers x NRS1 + NRS2, G395H, one
cube; small: MRS SHORT only / NRS1 only). The `_cal` inputs are made in this process by our Stage 2
steps (``steprun.call_step`` on each science `_rate`, references by ``refs.bestrefs`` on the
program's store; the steps that need other exposures -- msa_flagging, imprint_subtract,
bkg_subtract -- are left out, as are a chain's own cube_build / extract_1d). Then, side by side:

* official (own process, offline): the official AssignWcsStep on each `_rate` gives the gwcs the
  official steps need; its SCI / ERR / DQ are replaced by our `_cal` arrays (so both sides see
  the same pixels), then OutlierDetectionStep (ifu), CubeBuildStep (output_type band) and
  Extract1dStep per cube -- the official Spec3Pipeline's cube path without master_background
  (which needs background `_x1d` products) and mrs_imatch (off in the official default);
* ours (own process): outlier_detection (webbspec.algorithms.ifu_outliers) on the `_cal` models,
  cube_build (band cubes) and extract_1d per cube, with the same references.

CPU seconds (process time), wall seconds and peak RSS (VmHWM: Linux carries the parent's RSS at
the fork over into a child's ru_maxrss) of each side's process; the official
assign_wcs is reported apart (our `_cal` files already carry the coordinates). The scratch
directory is deleted at the end unless ``--keep``.

    python bench/ifu_stage3_speed.py [--modes mrs,nrs] [--scale small|full] [--weighting drizzle] [--keep]
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from _common import machine, write_results  # noqa: E402

_SKIP = ("msa_flagging", "imprint_subtract", "bkg_subtract", "cube_build", "extract_1d")
_MODES = {"mrs": "mir_mrs", "nrs": "nrs_ifu"}


def _usage():
    """CPU, wall and peak RSS [MB] of this process: VmHWM, the high-water mark of its own memory
    (Linux keeps the parent's RSS at the fork in ru_maxrss across exec)."""
    hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")] if os.path.exists("/proc/self/status") else []
    rss = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"cpu": time.process_time(), "wall": time.perf_counter(), "rss_mb": rss}


# ---------------------------------------------------------------- inputs (this process)


def make_program(mode, top, scale):
    from webbspec.simulate import simulate

    prog = os.path.join(top, "prog")
    t = time.perf_counter()
    simulate(_MODES[mode], prog, seed=0, scale=scale)
    asn = sorted(f for f in os.listdir(prog) if f.endswith("spec3_00001_asn.json"))[0]
    spec = json.load(open(os.path.join(prog, asn)))
    product = spec["products"][0]
    names = [m["expname"].replace("_cal.fits", "") for m in product["members"] if m["exptype"] == "science"]
    print(f"{mode}: simulated {len(names)} science exposures ({scale}) in {time.perf_counter() - t:.0f} s", flush=True)
    return prog, names, product["name"]


def make_cals(prog, names, outdir):
    """Our Stage 2 on each science rate -> <name>_cal.fits in ``outdir``; returns (paths, Stage 3
    references (cubepar, extract1d) of the first exposure, each exposure's WCS references for the
    official assign_wcs, steps run, CPU seconds)."""
    from webbspec import steps as steplib
    from webbspec.errors import InputError
    from webbspec.io import datamodels, refs
    from webbspec.pipeline import params
    from webbspec.pipeline.steprun import call_step

    from webbspec.instruments.nirspec import ifu

    store = os.path.join(prog, "refs")
    cals, ran, c = [], [], time.process_time()
    stage3_refs, wcs_refs = None, []
    for name in names:
        rate = os.path.join(prog, name + "_rate.fits")
        model = datamodels.read(rate)
        types = tuple(dict.fromkeys(steplib.load("assign_wcs").REFTYPES + ifu.REFTYPES))
        wcs_refs.append({k: v for k, v in refs.bestrefs(model.primary, types, store).items() if os.path.isfile(str(v))})
        done = []
        skipped = params.skipped_steps(None, "spec2", model.mode.name)     # off by default (residual_fringe)
        for step in model.mode.spec2:
            if step in _SKIP or step in skipped:
                continue
            module = steplib.load(step)
            sel = refs.bestrefs(model.primary, getattr(module, "REFTYPES", ()), store)
            try:
                model = call_step(step, model, sel, where=rate)
                done.append(step)
            except InputError as exc:
                print(f"  {name}: {step} not run ({exc})", flush=True)
        model.primary["DATAMODL"] = "IFUImageModel"
        cals.append(datamodels.write(model, os.path.join(outdir, name + "_cal.fits")))
        if stage3_refs is None:
            from webbspec.steps import cube_build, extract_1d

            stage3_refs = {k: v for k, v in refs.bestrefs(model.primary, cube_build.REFTYPES + extract_1d.REFTYPES,
                                                          store).items() if os.path.isfile(str(v))}
        ran = done
    return cals, stage3_refs, wcs_refs, ran, time.process_time() - c


# ---------------------------------------------------------------- the two sides (own processes)


def run_ours(cals_json, refs_json, weighting, outdir, out_json):
    from webbspec.io import cubes, datamodels
    from webbspec.steps import cube_build, extract_1d, outlier_detection

    cals, refs = json.load(open(cals_json)), json.load(open(refs_json))
    u0 = _usage()
    models = [datamodels.read(p) for p in cals]
    u1 = _usage()
    models = outlier_detection.run(models, {})
    u2 = _usage()
    made = cube_build.run(models, {"cubepar": refs["cubepar"]}, weighting=weighting)
    del models
    u3 = _usage()
    # no aperture correction on either side: the apcorr reference is per band
    specs = [extract_1d.run(cb, {rt: refs.get(rt, "N/A") for rt in extract_1d.REFTYPES}, apply_apcorr=False)
             for cb in made]
    u4 = _usage()
    for cb in made:
        cubes.write(cb, os.path.join(outdir, f"ours_{cb.name}_s3d.fits"))
    times = {"read": u1["cpu"] - u0["cpu"], "outlier_detection": u2["cpu"] - u1["cpu"],
             "cube_build": u3["cpu"] - u2["cpu"], "extract_1d": u4["cpu"] - u3["cpu"]}
    json.dump({"cpu": times, "cpu_total": u4["cpu"] - u1["cpu"], "wall_total": u4["wall"] - u1["wall"],
               "peak_rss_mb": u4["rss_mb"], "cubes": [cb.name for cb in made], "spectra": len(specs)},
              open(out_json, "w"))


def run_official(cals_json, rates_json, wcsrefs_json, refs_json, weighting, outdir, out_json):
    sys.path.insert(0, os.path.join(REPO, "tests", "official"))
    import warnings

    from official_jwst import no_references, offline

    warnings.simplefilter("ignore")
    offline()
    import numpy as np
    from astropy.io import fits
    from jwst.assign_wcs import AssignWcsStep
    from jwst.cube_build import CubeBuildStep
    from jwst.datamodels import ModelContainer
    from jwst.extract_1d import Extract1dStep
    from jwst.outlier_detection import OutlierDetectionStep
    from stdatamodels.jwst import datamodels as dm

    cals, rates, refs = json.load(open(cals_json)), json.load(open(rates_json)), json.load(open(refs_json))
    awcs = []
    models = []
    for rate, cal, wrefs in zip(rates, cals, json.load(open(wcsrefs_json))):
        step = no_references(AssignWcsStep())
        for k, v in wrefs.items():
            if k in step.reference_file_types:
                setattr(step, f"override_{k}", v)
        c = time.process_time()
        m = step.run(dm.IFUImageModel(rate))
        awcs.append(time.process_time() - c)
        with fits.open(cal) as h:        # our calibrated pixels on the official model
            m.data = np.asarray(h["SCI"].data, np.float32)
            m.err = np.asarray(h["ERR"].data, np.float32)
            m.dq = np.asarray(h["DQ"].data, np.uint32)
        m.meta.bunit_data, m.meta.bunit_err = "MJy/sr", "MJy/sr"
        m.meta.cal_step.srctype = "COMPLETE"
        m.meta.target.source_type = m.meta.target.source_type or "EXTENDED"
        models.append(m)
    u1 = _usage()
    step = OutlierDetectionStep()
    step.save_results = False
    models = step.run(ModelContainer(models))
    u2 = _usage()
    step = no_references(CubeBuildStep())
    step.override_cubepar, step.weighting, step.output_type = refs["cubepar"], weighting, "band"
    made = step.run(models)
    del models
    u3 = _usage()
    specs = []
    for cube in made:
        step = no_references(Extract1dStep())
        step.override_extract1d = refs.get("extract1d", "N/A")
        step.apply_apcorr = False
        specs.append(step.run(cube))
    u4 = _usage()
    for i, cube in enumerate(made):
        cube.save(os.path.join(outdir, f"official_{i}_s3d.fits"))
    times = {"outlier_detection": u2["cpu"] - u1["cpu"], "cube_build": u3["cpu"] - u2["cpu"],
             "extract_1d": u4["cpu"] - u3["cpu"]}
    json.dump({"cpu": times, "cpu_total": u4["cpu"] - u1["cpu"], "wall_total": u4["wall"] - u1["wall"],
               "peak_rss_mb": u4["rss_mb"], "assign_wcs_cpu": awcs, "cubes": len(made), "spectra": len(specs)},
              open(out_json, "w"))


# ---------------------------------------------------------------- driver


def bench_mode(mode, top, args):
    os.makedirs(top, exist_ok=True)
    prog, names, product = make_program(mode, top, args.scale)
    cal_dir = os.path.join(top, "cal")
    os.makedirs(cal_dir, exist_ok=True)
    t = time.perf_counter()
    cals, refs, wcs_refs, ran, cpu2 = make_cals(prog, names, cal_dir)
    print(f"{mode}: our Stage 2 ({', '.join(ran)}) on {len(cals)} rates: {cpu2:.0f} s CPU, "
          f"{time.perf_counter() - t:.0f} s wall", flush=True)
    files = {"cals": cals, "rates": [os.path.join(prog, n + "_rate.fits") for n in names], "refs": refs,
             "wcsrefs": wcs_refs}
    for k, v in files.items():
        json.dump(v, open(os.path.join(top, k + ".json"), "w"))
    res = {}
    for side in ("ours", "official"):
        out = os.path.join(top, side + ".json")
        cmd = [sys.executable, os.path.abspath(__file__), "_" + side, os.path.join(top, "cals.json")]
        if side == "official":
            cmd += [os.path.join(top, "rates.json"), os.path.join(top, "wcsrefs.json")]
        cmd += [os.path.join(top, "refs.json"), args.weighting, top, out]
        print(f"{mode}: {side} Stage 3 ...", flush=True)
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            res[side] = {"error": (run.stderr.strip().splitlines() or ["?"])[-1][:300]}
            print(f"{mode}: {side} failed: {res[side]['error']}", flush=True)
            continue
        res[side] = json.load(open(out))
        print(f"{mode}: {side}: {res[side]['cpu_total']:.1f} s CPU, {res[side]['wall_total']:.1f} s wall, "
              f"peak {res[side]['peak_rss_mb']:.0f} MB", flush=True)
    return {"mode": _MODES[mode], "scale": args.scale, "exposures": len(cals), "stage2_steps": ran,
            "stage2_cpu_s": cpu2, "ours": res.get("ours"), "official": res.get("official")}


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("_ours", "_official"):
        return (run_ours if sys.argv[1] == "_ours" else run_official)(*sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="mrs,nrs")
    ap.add_argument("--scale", default="full", choices=("small", "full"))
    ap.add_argument("--weighting", default="drizzle")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    top = tempfile.mkdtemp(prefix="ifu_stage3_bench_")
    rows = []
    try:
        for mode in args.modes.split(","):
            rows.append(bench_mode(mode, os.path.join(top, mode), args))
            if not args.keep:
                shutil.rmtree(os.path.join(top, mode), ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)
    out = {"name": "ifu_stage3_speed", "machine": machine(), "load_after": os.getloadavg()[0], "rows": rows}
    tag = f"ifu_stage3_speed_{args.scale}_" + "_".join(args.modes.split(","))
    lines = [f"# IFU Stage 3 ({args.scale}): webbspec vs the official steps on the same `_cal` pixels", "",
             f"outlier_detection (ifu) + cube_build (band cubes, {args.weighting}) + extract_1d per cube; CPU and wall"
             f" seconds of each side's process (2 cores, shared; host load {out['machine']['host_load_1m_at_start']:.1f}"
             f" -> {out['load_after']:.1f}); official assign_wcs (needed for its gwcs) apart.", "",
             "| mode | exposures | side | outlier_detection CPU [s] | cube_build CPU [s] | extract_1d CPU [s] | "
             "total CPU [s] | total wall [s] | peak RSS [MB] |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for side in ("official", "ours"):
            s = r.get(side) or {"error": "not run"}
            if "error" in s:
                lines.append(f"| {r['mode']} | {r['exposures']} | {side} | failed: {s['error']} | | | | | |")
                continue
            c = s["cpu"]
            lines.append(f"| {r['mode']} | {r['exposures']} | {side} | {c['outlier_detection']:.1f} | {c['cube_build']:.1f} | "
                         f"{c['extract_1d']:.1f} | {s['cpu_total']:.1f} | {s['wall_total']:.1f} | {s['peak_rss_mb']:.0f} |")
        o, w = r.get("official") or {}, r.get("ours") or {}
        if "cpu_total" in o and "cpu_total" in w:
            oc, wc = o["cpu"], w["cpu"]
            lines.append(f"| {r['mode']} | | official / ours | {oc['outlier_detection'] / wc['outlier_detection']:.1f}x | "
                         f"{oc['cube_build'] / wc['cube_build']:.1f}x | "
                         f"{o['cpu']['extract_1d'] / max(w['cpu']['extract_1d'], 1e-3):.1f}x | "
                         f"{o['cpu_total'] / w['cpu_total']:.1f}x | {o['wall_total'] / w['wall_total']:.1f}x | "
                         f"{o['peak_rss_mb'] / w['peak_rss_mb']:.1f}x |")
    for r in rows:
        o = r.get("official") or {}
        lines.append("")
        lines.append(f"{r['mode']}: our Stage 2 ({', '.join(r['stage2_steps'])}) {r['stage2_cpu_s']:.0f} s CPU for "
                     f"{r['exposures']} exposures; official assign_wcs "
                     f"{sum(o.get('assign_wcs_cpu') or [0]):.0f} s CPU in all (not in the Stage 3 totals).")
    write_results(tag, out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
