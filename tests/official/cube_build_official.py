"""Official MRS `_cal` files (with their gwcs) as our IFU exposures, for side-by-side runs of
cube_build (tests and benchmarks only: this evaluates the official gwcs with gwcs/jwst).

The per-pixel arrays of docs/internals.md "IFU exposures and cubes" from the official WCS:
detector -> alpha_beta -> world at the pixel centre, at its two edges along the slice (x -/+ 0.4999,
same beta and wavelength), the wavelengths at y -/+ 0.4999 (DWAVE), as the official cube_build, SLICE from the regions map,
SLICEWID from the spacing of the slices' beta (channel of the first slices; cube_build measures the
other channel itself).
"""

import numpy as np
from astropy.io import fits

from webbspec.io.datamodels import Model, Slit
from webbspec.io.skycoords import radec_to_xieta


def exposure_from_cal(path):
    from stdatamodels.jwst import datamodels as dm

    with dm.open(str(path)) as m:
        w = m.meta.wcs
        ny, nx = m.data.shape
        y, x = np.mgrid[:ny, :nx].astype(float)
        d2ab = w.get_transform("detector", "alpha_beta")
        ab2w = w.get_transform("alpha_beta", "world")
        alpha, beta, lam = d2ab(x, y)
        ra, dec, _ = ab2w(alpha, beta, lam)
        # +-0.4999, as the official cube_build: the regions label of x +- 0.5 is the neighbour's
        a1, _, _ = d2ab(x - 0.4999, y)
        a2, _, _ = d2ab(x + 0.4999, y)
        ra1, dec1, _ = ab2w(a1, beta, lam)
        ra2, dec2, _ = ab2w(a2, beta, lam)
        _, _, l1 = d2ab(x, y - 0.4999)
        _, _, l2 = d2ab(x, y + 0.4999)
        slices = np.asarray(d2ab.label_mapper.mapper, dtype=np.int16)
        ref = (float(m.meta.wcsinfo.ra_ref), float(m.meta.wcsinfo.dec_ref))
        arrays = {"SCI": m.data.astype(np.float32), "ERR": m.err.astype(np.float32), "DQ": m.dq.astype(np.uint32)}
        ch1 = slices // 100 == slices[slices > 0].min() // 100
        betas = np.unique(np.round(beta[ch1 & np.isfinite(beta)], 6))
        slicewid = float(np.median(np.diff(betas)))
        srctype = m.meta.target.source_type or "EXTENDED"
    with fits.open(str(path)) as hdul:
        primary = hdul[0].header.copy()
    for name, (r, d) in (("", (ra, dec)), ("1", (ra1, dec1)), ("2", (ra2, dec2))):
        xi, eta = radec_to_xieta(r, d, *ref)
        arrays[f"XI{name}"], arrays[f"ETA{name}"] = xi.astype(np.float32), eta.astype(np.float32)
    arrays["WAVELENGTH"] = lam.astype(np.float32)
    arrays["DWAVE"] = np.abs(l2 - l1).astype(np.float32)
    arrays["SLICE"] = np.where(np.isfinite(lam), slices, 0).astype(np.int16)
    head = fits.Header([("BUNIT", "MJy/sr"), ("SRCTYPE", srctype), ("SLICEWID", slicewid),
                        ("WSREFRA", ref[0]), ("WSREFDE", ref[1])])
    return Model(primary, [Slit(head, arrays)], "single", path=str(path))


# ---------------------------------------------------------------- the official run (own process)

def compare_cubes(cube, off):
    """The side-by-side checks of one of our cubes against the official cube ``off`` (same grid,
    same weighting): shape, WCS reference point, wavelengths, at least 95% of the official's
    covered spaxels covered, median per-spaxel ratio over the bright spaxels and the plane sums
    within 1%. Returns (spaxels both cover, median |ours / official - 1|, bright spaxels)."""
    import pytest

    assert cube.shape == off.shape
    assert cube.wcs.crval1 == pytest.approx(off.wcs.crval1, abs=1e-9)
    assert cube.wcs.crval2 == pytest.approx(off.wcs.crval2, abs=1e-9)
    assert np.allclose(cube.wavelength, off.wavelength, atol=1e-6)
    both = np.isfinite(cube.sci) & np.isfinite(off.sci)
    assert both.sum() > 0.95 * np.isfinite(off.sci).sum()
    bright = both & (off.sci > 0.01 * np.nanmax(off.sci))
    rel = float(np.median(np.abs(cube.sci[bright] / off.sci[bright] - 1)))
    assert rel < 0.01, (cube.name, rel)
    with np.errstate(invalid="ignore", divide="ignore"):
        sums = np.nansum(cube.sci, axis=(1, 2)) / np.nansum(off.sci, axis=(1, 2))
    assert np.nanmedian(np.abs(sums - 1)) < 0.01
    return both, rel, int(bright.sum())


def official_cubes(workdir, weightings, nexp=1):
    """In ``workdir`` (with refs_mrs/ and the rates of the recipe ../shared/recipes/official-mrs-ifu):
    the official AssignWcsStep on ``nexp`` rates -> *_cal.fits, then CubeBuildStep (output_type
    band) per weighting -> off_<weighting>_<band>_s3d.fits; CPU seconds of each and the process's
    peak RSS [MB] in times.json."""
    import glob
    import json
    import os
    import time

    from official_jwst import no_references, offline

    offline()
    from jwst.assign_wcs import AssignWcsStep
    from jwst.cube_build import CubeBuildStep
    from jwst.datamodels import ModelContainer
    from stdatamodels.jwst import datamodels as dm

    refs = json.load(open(os.path.join(workdir, "refs_mrs", "refs.json")))
    times = {}
    cals = []
    for path in sorted(glob.glob(os.path.join(workdir, "jw*_rate.fits")))[:int(nexp)]:
        step = no_references(AssignWcsStep())
        for k in ("distortion", "specwcs", "regions", "wavelengthrange"):
            setattr(step, f"override_{k}", refs[k])
        c = time.process_time()
        res = step.run(dm.open(path))
        times.setdefault("assign_wcs", []).append(time.process_time() - c)
        for st in ("flat_field", "photom", "straylight", "fringe", "residual_fringe", "bkg_subtract"):
            setattr(res.meta.cal_step, st, "SKIPPED")
        res.meta.cal_step.srctype = "COMPLETE"
        cal = path.replace("_rate.fits", "_cal.fits")
        res.save(cal)
        cals.append(cal)
    for wt in weightings.split(","):
        step = no_references(CubeBuildStep())
        step.override_cubepar, step.weighting, step.output_type = refs["cubepar"], wt, "band"
        c = time.process_time()
        cubes = step.run(ModelContainer([dm.open(p) for p in cals]))
        times[f"cube_build_{wt}"] = time.process_time() - c
        for cube in cubes:
            band = f"ch{cube.meta.instrument.channel}-{cube.meta.instrument.band.lower()}"
            cube.save(os.path.join(workdir, f"off_{wt}_{band}_s3d.fits"))
    times["peak_rss_mb"] = peak_rss_mb()
    with open(os.path.join(workdir, "times.json"), "w") as fh:
        json.dump(times, fh)


def peak_rss_mb():
    """This process's peak RSS [MB]: VmHWM (its own memory; Linux keeps the parent's RSS at the fork
    in ru_maxrss across exec), ru_maxrss where /proc is missing."""
    import resource

    try:
        with open("/proc/self/status") as fh:
            return next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def official_nrs_cubes(workdir, refs_json, weightings, *rates):
    """NIRSpec IFU: the official AssignWcsStep on ``rates`` (references {reftype: path} in
    ``refs_json``, as override_<reftype>), the result marked MJy/sr (cube_build refuses other
    units; the values stay the rate's, as in ours), then CubeBuildStep (output_type band) per
    weighting -> ``workdir``/off_<weighting>_<grating>-<filter>_s3d.fits; CPU seconds in
    ``workdir``/times.json and the process's peak RSS [MB]."""
    import json
    import os
    import time

    from official_jwst import no_references, offline

    offline()
    from jwst.assign_wcs import AssignWcsStep
    from jwst.cube_build import CubeBuildStep
    from jwst.datamodels import ModelContainer
    from stdatamodels.jwst import datamodels as dm

    refs = json.load(open(refs_json))
    times = {"assign_wcs": []}
    models = []
    for path in rates:
        step = no_references(AssignWcsStep())
        for k, v in refs.items():
            if k != "cubepar":
                setattr(step, f"override_{k}", v)
        c = time.process_time()
        res = step.run(dm.IFUImageModel(path))
        times["assign_wcs"].append(time.process_time() - c)
        res.meta.bunit_data, res.meta.bunit_err = "MJy/sr", "MJy/sr"
        res.meta.cal_step.srctype = "COMPLETE"
        models.append(res)
    for wt in weightings.split(","):
        step = no_references(CubeBuildStep())
        step.override_cubepar, step.weighting, step.output_type = refs["cubepar"], wt, "band"
        c = time.process_time()
        cubes = step.run(ModelContainer(models))
        times[f"cube_build_{wt}"] = time.process_time() - c
        for cube in cubes:
            ins = cube.meta.instrument
            cube.save(os.path.join(workdir, f"off_{wt}_{ins.grating.lower()}-{ins.filter.lower()}_s3d.fits"))
        del cubes
    times["peak_rss_mb"] = peak_rss_mb()
    with open(os.path.join(workdir, "times.json"), "w") as fh:
        json.dump(times, fh)


if __name__ == "__main__":
    import os
    import sys
    import warnings

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    warnings.simplefilter("ignore")
    if sys.argv[1] == "official":
        official_cubes(*sys.argv[2:])
    elif sys.argv[1] == "official_nrs":
        official_nrs_cubes(*sys.argv[2:])
