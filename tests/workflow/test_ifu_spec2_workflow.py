"""Stage 2 of the IFU modes through the workflow: NIRSpec IFU and MIRI MRS `_rate` -> `_cal`,
`_s3d`, `_x1d`, checked as an astronomer would (official classes, specutils, the simulator's truth),
with one job per step and with one job per exposure (the same products), and bad input.

The programs are the simulators' small ones (seed 1), cut to one science exposure with its
association members (NIRSpec: the dedicated background and the imprint exposure; MRS: the SHORT
detector's two dedicated backgrounds); the background exposures have their own Stage 2
associations and are calibrated too, as the official pipeline does. The Stage 3 associations are
removed: this is Stage 2 alone (workflow.stage3 false).
"""

import glob
import json
import os
import shutil
import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

sys.path.insert(0, os.path.dirname(__file__))
from test_workflow import snakemake  # noqa: E402

from webbspec.simulate import mir_mrs, nrs_ifu  # noqa: E402

pytestmark = pytest.mark.slow

SCIENCE = {"nrs_ifu": "jw01234001001_03101_00001_nrs1", "mir_mrs": "jw01234001001_03102_00001_mirifushort"}
STAGE2 = ("--configfile", "stage2.yaml")


def _keep_only(root, science):
    """Cut a simulated program to the Stage 2 associations of ``science`` and of its background
    members, and the files they name; the Stage 3 associations go."""
    asns = {p: json.load(open(p)) for p in glob.glob(os.path.join(root, "*_asn.json"))}
    keep_asn, files = [], set()
    wanted = {science}
    for p, a in asns.items():
        if a["asn_type"] == "spec2" and a["products"][0]["name"] == science:
            wanted |= {m["expname"].removesuffix("_rate.fits") for m in a["products"][0]["members"]
                       if m["exptype"] == "background"}
    for p, a in asns.items():
        if a["asn_type"] == "spec2" and a["products"][0]["name"] in wanted:
            keep_asn.append(p)
            files |= {m["expname"] for m in a["products"][0]["members"]}
    for p in asns:
        if p not in keep_asn:
            os.remove(p)
    for p in glob.glob(os.path.join(root, "*_rate.fits")):
        if os.path.basename(p) not in files:
            os.remove(p)
    with open(os.path.join(root, "stage2.yaml"), "w") as f:
        f.write("workflow:\n  stage3: false\n  save_bsub: true\n")


def _linked_copy(src, dst):
    """A copy of a program's inputs whose files are hard links (no data copied)."""
    shutil.copytree(src, dst, copy_function=os.link, ignore=shutil.ignore_patterns("webbspec"))
    return dst


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    out = {}
    for mode, simulate in (("nrs_ifu", nrs_ifu.simulate_nrs_ifu), ("mir_mrs", mir_mrs.simulate_mir_mrs)):
        root = str(tmp_path_factory.mktemp(mode) / "prog")
        simulate(root, seed=1)
        _keep_only(root, SCIENCE[mode])
        out[mode] = root
    return out


@pytest.fixture(scope="module")
def step_runs(programs):
    """One job per step (the default)."""
    for root in programs.values():
        r = snakemake(root, *STAGE2, fakes=False)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return programs


def _spec2(root, name, kind):
    return os.path.join(root, "webbspec", "spec2", f"{name}_{kind}.fits")


@pytest.mark.parametrize("mode", ["nrs_ifu", "mir_mrs"])
def test_products_open_as_the_official_classes(step_runs, mode):
    from specutils import Spectrum
    from stdatamodels.jwst import datamodels as dm

    root = step_runs[mode]
    names = [os.path.basename(p).removesuffix("_rate.fits") for p in glob.glob(os.path.join(root, "*_rate.fits"))]
    names = [n for n in names if "03102" not in n or mode == "mir_mrs"]      # the NIRSpec imprint is a member only
    assert SCIENCE[mode] in names and len(names) == (2 if mode == "nrs_ifu" else 3)
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with dm.open(_spec2(root, name, "s3d"), strict_validation=True) as m:
                assert type(m).__name__ == "IFUCubeModel" and m.data.ndim == 3
                assert m.meta.cal_step.cube_build == "COMPLETE"
            with dm.open(_spec2(root, name, "cal"), strict_validation=True) as m:
                assert type(m).__name__ == "IFUImageModel"
                steps = m.meta.cal_step.instance
            spec = Spectrum.read(_spec2(root, name, "x1d"))
        assert np.isfinite(spec.flux.value).mean() > 0.9
        # the steps calwebb_spec2 records on an IFU `_cal` (pathloss: no IFU reference -> SKIPPED)
        want = {"assign_wcs", "srctype", "flat_field", "photom"} | (
            {"msa_flagging", "imprint", "pathloss"} if mode == "nrs_ifu" else {"straylight", "fringe"})
        assert want <= set(steps) and all(steps[s] == "COMPLETE" for s in want - {"pathloss"})
        if mode == "nrs_ifu":
            assert steps["pathloss"] == "SKIPPED"
        if name == SCIENCE[mode]:
            assert steps["bkg_subtract"] == "COMPLETE"
            with warnings.catch_warnings():          # the background-subtracted image (save_bsub)
                warnings.simplefilter("ignore")
                with dm.open(_spec2(root, name, "bsub"), strict_validation=True) as m:
                    assert type(m).__name__ == "IFUImageModel" and "photom" not in m.meta.cal_step.instance
        # the `_cal` keeps the per-pixel coordinates cube_build (Stage 3) reads
        with fits.open(_spec2(root, name, "cal")) as h:
            assert {"WAVELENGTH", "XI", "ETA", "SLICE", "XI1", "ETA2"} <= {x.name for x in h}
            assert h["SLICE"].data.dtype.kind == "i"


def _truth_flux(root, x1d_path, s3d_path, truth_cube):
    """The Stage 2 x1d the truth predicts: the simulator's truth cube (the sources through the PSF,
    no sky) summed in the extraction circle (the x1d's centre projected on the sky, the extract1d
    reference's radius), times the aperture correction the reference gives for that radius."""
    from webbspec.algorithms.cube_extract import circle_fractions, read_extract1d_ifu
    from webbspec.io import cubes
    from webbspec.io.refs import bestrefs
    from webbspec.steps._ifu_apcorr import ifu_apcorr_factor, read_ifu_apcorr
    from astropy.wcs import WCS

    t = Table.read(x1d_path, hdu="EXTRACT1D")
    ra, dec = cubes.read(s3d_path).wcs.pixel_to_sky(t.meta["EXTR_X"], t.meta["EXTR_Y"])
    th = fits.getheader(truth_cube, "SCI")
    tc = fits.getdata(truth_cube, "SCI").astype(float)
    lam = th["CRVAL3"] + (np.arange(tc.shape[0]) + 1 - th["CRPIX3"]) * th["CDELT3"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xt, yt = WCS(th).celestial.world_to_pixel_values(ra, dec)
    refs = bestrefs(fits.getheader(s3d_path, 0), ("extract1d", "apcorr"), os.path.join(root, "refs"), None)
    ref = read_extract1d_ifu(refs["extract1d"])
    radius = np.interp(lam, ref["wavelength"], ref["radius"])        # the references cover the planes
    spaxel = abs(th["CDELT1"]) * 3600.0
    aperture = circle_fractions(tc.shape[1], tc.shape[2], float(xt), float(yt), radius / spaxel)
    flux = np.nansum(aperture * tc, axis=(1, 2)) * (spaxel / 206264.806) ** 2 * 1e6
    flux *= ifu_apcorr_factor(read_ifu_apcorr(refs["apcorr"]), lam, radius)
    w, f = np.asarray(t["WAVELENGTH"]), np.asarray(t["FLUX"])
    inside = (w > lam[0]) & (w < lam[-1]) & np.isfinite(f) & (np.asarray(t["NPIXELS"]) > 0)
    return w[inside], f[inside], np.interp(w[inside], lam, flux)


NEEDED = {"nrs_ifu": ("msaoper", "fflat", "sflat", "dflat", "photom", "area", "cubepar", "extract1d", "apcorr",
                      "ifuslicer", "ifupost", "ifufore", "disperser", "fpa", "msa"),
          "mir_mrs": ("distortion", "specwcs", "regions", "mrsxartcorr", "flat", "fringe", "photom", "cubepar",
                      "extract1d", "apcorr")}


@pytest.mark.parametrize("mode", ["nrs_ifu", "mir_mrs"])
def test_every_reference_is_picked_from_the_store(programs, mode):
    """bestrefs picks every reference type the mode's Stage 2 steps use from the simulated store
    (NIRSpec IFU pathloss: none exists, N/A: the step is skipped)."""
    from webbspec.io.datamodels import read_header
    from webbspec.io.refs import bestrefs
    from webbspec.modes import MODES
    from webbspec.steps import reftypes

    root = programs[mode]
    header = read_header(os.path.join(root, f"{SCIENCE[mode]}_rate.fits"))
    types = tuple(dict.fromkeys(rt for s in MODES[mode].spec2 for rt in reftypes(s)))
    refs = bestrefs(header, types, os.path.join(root, "refs"), None)
    assert [rt for rt in NEEDED[mode] if refs.get(rt, "N/A") == "N/A"] == []
    if mode == "nrs_ifu":
        assert refs["pathloss"] == "N/A"


@pytest.mark.parametrize("mode", ["nrs_ifu", "mir_mrs"])
def test_x1d_against_the_truth(step_runs, mode):
    """The science exposure's point source (the extended source's light in the circle included,
    as the truth cube holds it): the median of x1d / truth over the central 90% of each band's
    wavelengths within 1.5%, and 90% of the wavelengths within 3%. One exposure (no dithers): the
    PSF is undersampled by the slices (NIRSpec 0.1" slices, FWHM ~0.14" at 4 um) and the cube's
    drizzle cannot restore it; over a circle of several FWHM that redistributes light across the
    edge by a few 0.1% (measured: medians 0.996-1.000, 5-95% range within 0.9%; seed 1). The
    noise is negligible (median S/N ~700-1800 per plane)."""
    root = step_runs[mode]
    name = SCIENCE[mode]
    with fits.open(_spec2(root, name, "x1d")) as h:
        assert h["EXTRACT1D"].header["SRCTYPE"] == "POINT"         # SRCTYAPT POINT: the official rule
    truths = sorted(glob.glob(os.path.join(root, "truth", "cubes", "*.fits")))
    compared = 0
    for truth in truths:
        w, f, want = _truth_flux(root, _spec2(root, name, "x1d"), _spec2(root, name, "s3d"), truth)
        if w.size < 50:           # a band this detector does not see
            continue
        ratio = (f / want)[int(0.05 * w.size):int(0.95 * w.size)]
        assert abs(np.median(ratio) - 1) < 0.015, (truth, np.median(ratio))
        assert np.mean(np.abs(ratio - 1) < 0.03) > 0.9, (truth, np.percentile(ratio, [5, 95]))
        compared += 1
    assert compared == (1 if mode == "nrs_ifu" else 2)               # NIRSpec G395H/F290LP; MRS ch1 + ch2 SHORT


def test_one_job_per_exposure_makes_the_same_products(step_runs, tmp_path):
    """workflow.spec2_jobs: exposure (the whole chain in one process) writes the same products."""
    from webbspec.io import cubes

    for mode, root in step_runs.items():
        other = _linked_copy(root, str(tmp_path / mode))
        os.remove(os.path.join(other, "stage2.yaml"))                 # (a link to the first run's)
        with open(os.path.join(other, "stage2.yaml"), "w") as f:
            f.write("workflow:\n  stage3: false\n  save_bsub: true\n  spec2_jobs: exposure\n")
        r = snakemake(other, *STAGE2, fakes=False)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        made = sorted(os.path.basename(p) for p in glob.glob(os.path.join(other, "webbspec", "spec2", "*.fits")))
        assert made == sorted(os.path.basename(p) for p in glob.glob(os.path.join(root, "webbspec", "spec2", "*.fits")))
        for base in made:
            a, b = os.path.join(root, "webbspec", "spec2", base), os.path.join(other, "webbspec", "spec2", base)
            if base.endswith("_s3d.fits"):
                ca, cb = cubes.read(a), cubes.read(b)
                np.testing.assert_array_equal(ca.sci, cb.sci)
                np.testing.assert_array_equal(ca.dq, cb.dq)
                np.testing.assert_array_equal(ca.wavelength, cb.wavelength)
            elif base.endswith("_x1d.fits"):
                ta, tb = Table.read(a, hdu="EXTRACT1D"), Table.read(b, hdu="EXTRACT1D")
                np.testing.assert_array_equal(np.asarray(ta["FLUX"]), np.asarray(tb["FLUX"]))
            else:
                with fits.open(a) as ha, fits.open(b) as hb:
                    for ext in ("SCI", "ERR", "DQ"):
                        np.testing.assert_array_equal(ha[ext].data, hb[ext].data)


def test_bad_slice_warns_and_missing_cubepar_band_fails_one_exposure(programs, tmp_path):
    """MRS, both detectors' science exposures in one run: on the SHORT one a slice flagged
    DO_NOT_USE throughout (cube_build warns, one line naming the file and band, in the job's log,
    and the cube is made); the cubepar lacks channel 3 SHORT, so the LONG exposure fails with one
    line naming the file and the band, and the SHORT one completes."""
    from webbspec.steps import assign_wcs

    root = str(tmp_path / "mrs")
    mir_mrs.simulate_mir_mrs(root, seed=2)
    short, long_ = SCIENCE["mir_mrs"], SCIENCE["mir_mrs"].replace("short", "long")
    for p in glob.glob(os.path.join(root, "*_asn.json")):
        a = json.load(open(p))
        name = a["products"][0]["name"]
        if a["asn_type"] != "spec2" or name not in (short, long_):
            os.remove(p)
            continue
        a["products"][0]["members"] = [m for m in a["products"][0]["members"] if m["exptype"] == "science"]
        json.dump(a, open(p, "w"))
    for p in glob.glob(os.path.join(root, "*_rate.fits")):
        if os.path.basename(p).removesuffix("_rate.fits") not in (short, long_):
            os.remove(p)
    # a slice without valid pixels: every pixel of slice 105 (channel 1) DO_NOT_USE in the rate
    rate = os.path.join(root, f"{short}_rate.fits")
    slices = np.asarray(assign_wcs.run(rate).slits[0]["SLICE"])
    with fits.open(rate) as h:
        h["DQ"].data[slices == 105] |= 1
        h.writeto(rate + ".new")
    os.replace(rate + ".new", rate)
    # a cubepar without channel 3 (the LONG detector's first channel)
    cubepar = glob.glob(os.path.join(root, "refs", "references", "jwst", "miri", "*cubepar*.fits"))[0]
    with fits.open(cubepar) as h:
        for ext in ("CUBEPAR", "CUBEPAR_MSM", "CUBEPAR_EMSM"):
            h[ext].data = h[ext].data[np.char.strip(h[ext].data["channel"].astype(str)) != "3"]
        h.writeto(cubepar + ".new")
    os.replace(cubepar + ".new", cubepar)
    with open(os.path.join(root, "stage2.yaml"), "w") as f:
        f.write("workflow:\n  stage3: false\n  spec2_jobs: exposure\n")

    r = snakemake(root, *STAGE2, "-k", fakes=False)
    assert r.returncode != 0
    assert os.path.exists(_spec2(root, short, "s3d")) and os.path.exists(_spec2(root, short, "x1d"))
    assert not os.path.exists(_spec2(root, long_, "s3d"))
    logs = {os.path.basename(p).removesuffix(".log"): open(p).read()
            for p in glob.glob(os.path.join(root, "webbspec", "logs", "spec2_chain_*", "*.log"))}
    warned = [ln for ln in logs[short].splitlines() if "slice" in ln and "without valid pixels" in ln]
    assert len(warned) == 1 and "1/SHORT" in warned[0] and short in warned[0], logs[short][-2000:]
    failed = [ln for ln in logs[long_].splitlines() if ln.startswith("webbspec: ")]
    assert len(failed) == 1 and "band 3/SHORT" in failed[0] and long_ in failed[0], logs[long_][-2000:]


def test_mrs_chain_with_residual_fringe(step_runs, tmp_path):
    """MRS with `residual_fringe: {skip: false}` (one job per exposure): the step runs after photom,
    its output is the `_cal` (S_RESFRI COMPLETE, the fringefreq reference recorded, IFUImageModel),
    which differs from the default run's `_cal` (residual_fringe skipped: no such step) by the
    simulated 1% fringe (|ratio - 1| < 5%) on the fitted pixels and nowhere else."""
    from stdatamodels.jwst import datamodels as dm

    root = step_runs["mir_mrs"]
    other = _linked_copy(root, str(tmp_path / "mrs_rf"))
    os.remove(os.path.join(other, "stage2.yaml"))
    with open(os.path.join(other, "stage2.yaml"), "w") as f:
        f.write("workflow:\n  stage3: false\n  spec2_jobs: exposure\nspec2:\n  residual_fringe:\n    skip: false\n")
    r = snakemake(other, *STAGE2, fakes=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    name = SCIENCE["mir_mrs"]
    assert os.path.exists(os.path.join(other, "webbspec", "spec2", name, f"{name}_residual_fringe.fits"))
    assert not os.path.exists(os.path.join(root, "webbspec", "spec2", name, f"{name}_residual_fringe.fits"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with dm.open(_spec2(other, name, "cal"), strict_validation=True) as m:
            assert type(m).__name__ == "IFUImageModel"
            assert m.meta.cal_step.residual_fringe == "COMPLETE" and m.meta.cal_step.photom == "COMPLETE"
            assert m.meta.ref_file.fringefreq.name == "miri_mrs_fringefreq_0001.fits"
    with fits.open(_spec2(other, name, "cal")) as h, fits.open(_spec2(root, name, "cal")) as h0:
        new, old = h["SCI"].data.astype(float), h0["SCI"].data.astype(float)
        assert "S_RESFRI" not in h0[0].header and np.array_equal(h["DQ"].data, h0["DQ"].data)
    assert (np.isnan(new) == np.isnan(old)).all()
    ok = np.isfinite(new)
    changed = ok & (new != old)
    ratio = new[changed] / old[changed]
    print(f"residual_fringe changed {changed.sum()} of {ok.sum()} pixels; ratio 1st-99th percentile "
          f"{np.percentile(ratio, 1):.4f}-{np.percentile(ratio, 99):.4f}")
    # measured: 36,714 of 804,852 pixels (the columns where the 1% fringe is significant), ratio
    # 0.988-1.013 (1st-99th percentile)
    assert changed.sum() > 0.02 * ok.sum() and np.all(np.abs(ratio - 1) < 0.05)
    assert os.path.exists(_spec2(other, name, "s3d")) and os.path.exists(_spec2(other, name, "x1d"))
