"""The official Extract1dStep on IFU cubes, offline, in its own process (tests and benchmarks only).

    python cube_extract_official.py make S3D [NZ NY NX]     an official-layout MRS channel-4-like cube
                                                           (stdatamodels IFUCubeModel + the official
                                                           gwcs from jwst's create_fitswcs)
    python cube_extract_official.py ref REF [R IN OUT]     an Extract1dIFUModel (arrays inline)
    python cube_extract_official.py run S3D REF SRCTYPES AUTOCEN PREFIX [REPEAT]
                                                           Extract1dStep per source type (SRCTYPES
                                                           "EXTENDED,POINT": ifu_set_srctype, with
                                                           ifu_autocen, no residual-fringe fit) ->
                                                           PREFIX_<SRCTYPE>.npz: x1d columns, times [s]
"""

import os
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def make_cube(path, nz=600, ny=27, nx=27, seed=7):
    """A cube like a channel-4 MRS one: 0.35" spaxels, 17.7-21 um, a point source (Gaussian, FWHM
    growing with wavelength) off the centre, a sloped background, noise, uncovered corners."""
    from jwst.assign_wcs import pointing
    from stdatamodels.jwst import datamodels as dm

    rng = np.random.default_rng(seed)
    wave = 17.7 + 0.006 * (np.arange(nz) + 0.5)
    yy, xx = np.mgrid[:ny, :nx]
    x0, y0 = nx / 2 + 1.37, ny / 2 - 0.81
    sig = (0.033 * wave + 0.106) / 2.3548 / 0.35                 # PSF sigma in spaxels
    psf = np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2)[None] / sig[:, None, None] ** 2)
    psf /= 2 * np.pi * sig[:, None, None] ** 2
    flux = 3000.0 * psf + 20.0 + 0.2 * (xx - nx / 2)[None] + rng.normal(0, 1.5, (nz, ny, nx))
    wmap = np.full((nz, ny, nx), 3.0, np.float32)
    cornered = (np.hypot(xx - nx / 2, yy - ny / 2) > 0.62 * nx)[None].repeat(nz, 0)
    wmap[cornered] = 0
    flux[cornered] = np.nan
    dq = np.where(cornered, 513, 0).astype(np.uint32)
    table = np.array([(wave.astype(np.float32)[None].T,)], dtype=[("wavelength", "<f4", (nz, 1))])
    m = dm.IFUCubeModel(data=flux.astype(np.float32), dq=dq, err=np.full((nz, ny, nx), 1.5, np.float32),
                        weightmap=wmap, wavetable=table)
    m.meta.instrument.name, m.meta.instrument.detector = "MIRI", "MIRIFULONG"
    m.meta.instrument.channel, m.meta.instrument.band = "4", "SHORT"
    m.meta.exposure.type = "MIR_MRS"
    m.meta.target.ra, m.meta.target.dec = 83.8221, -5.3911
    m.meta.target.source_type = "POINT"
    w = m.meta.wcsinfo
    w.crval1, w.crval2, w.crpix1, w.crpix2 = 83.8221, -5.3911, nx // 2 + 1.0, ny // 2 + 1.0
    w.cdelt1 = w.cdelt2 = 0.35 / 3600
    w.crval3, w.cdelt3, w.crpix3, w.ctype3, w.cunit3 = float(wave[0]), 0.006, 1.0, "WAVE", "um"
    w.ctype1, w.ctype2, w.cunit1, w.cunit2 = "RA---TAN", "DEC--TAN", "deg", "deg"
    w.pc1_1, w.pc1_2, w.pc2_1, w.pc2_2 = -1.0, 0.0, 0.0, 1.0
    w.wcsaxes = 3
    w.dispersion_direction = 2
    m.meta.photometry.pixelarea_arcsecsq = 0.35 ** 2
    m.meta.photometry.pixelarea_steradians = 0.35 ** 2 * 2.3504e-11
    m.meta.bunit_data = m.meta.bunit_err = "MJy/sr"
    m.meta.ifu.flux_extension, m.meta.ifu.error_extension, m.meta.ifu.error_type = "SCI", "ERR", "ERR"
    m.meta.ifu.dq_extension = "DQ"
    m.meta.ifu.weighting, m.meta.ifu.roi_spatial, m.meta.ifu.roi_wave, m.meta.ifu.weight_power = "drizzle", 0, 0, 0
    m.meta.wcs = pointing.create_fitswcs(m)
    m.meta.wcs.bounding_box = ((0, nx - 1), (0, ny - 1), (0, nz - 1))
    m.meta.cal_step.cube_build = "COMPLETE"
    m.save(path)
    return path


def make_ref(path, radius=1.0, inner=1.5, outer=2.0, subtract=True):
    from stdatamodels.jwst import datamodels as dm

    wl = np.array([4.5, 8.0, 15.0, 29.0], np.float32)
    e = dm.Extract1dIFUModel()
    e.meta.instrument.name, e.meta.exposure.type, e.meta.reftype = "MIRI", "MIR_MRS", "EXTRACT1D"
    e.meta.author, e.meta.pedigree, e.meta.useafter = "webbspec tests", "DUMMY", "2022-01-01T00:00:00"
    e.meta.description = "test IFU extraction apertures"
    e.meta.region_type, e.meta.subtract_background, e.meta.method, e.meta.subpixels = "target", subtract, "exact", 10
    one = np.ones_like(wl)
    e.data = {"wavelength": wl, "wavelength_units": "micron", "radius": radius * one, "radius_units": "arcsec",
              "inner_bkg": inner * one, "inner_bkg_units": "arcsec", "outer_bkg": outer * one,
              "outer_bkg_units": "arcsec", "axis_ratio": one, "axis_pa": 0 * one, "axis_pa_units": "deg"}
    e.save(path, all_array_storage="inline")      # a lazily loaded block fails inside the step
    return path


def run(s3d, ref, srctypes, autocen, out_prefix, repeat=1):
    """Extract1dStep on ``s3d`` for each of ``srctypes`` ("EXTENDED,POINT"); one jwst import."""
    from official_jwst import no_references, offline

    offline()
    from jwst.extract_1d import Extract1dStep
    from stdatamodels.jwst import datamodels as dm

    for srctype in srctypes.split(","):
        times, cpu, res = [], [], None
        for _ in range(int(repeat)):
            model = dm.open(s3d)
            step = no_references(Extract1dStep())
            step.override_extract1d = ref
            step.apply_apcorr, step.ifu_rfcorr = False, False
            step.ifu_autocen = str(autocen).lower() in ("1", "true", "yes")
            step.ifu_set_srctype = srctype
            t, c = time.perf_counter(), time.process_time()
            res = step.run(model)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        spec = res[0].spec[0] if not hasattr(res, "spec") else res.spec[0]
        tab = spec.spec_table
        cols = {n.upper(): np.asarray(tab[n]) for n in tab.dtype.names}
        np.savez(f"{out_prefix}_{srctype}.npz", times=np.array(times), cpu=np.array(cpu),
                 extr_x=spec.extraction_x if spec.extraction_x is not None else np.nan,
                 extr_y=spec.extraction_y if spec.extraction_y is not None else np.nan, **cols)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    what, args = sys.argv[1], sys.argv[2:]
    if what == "make":
        make_cube(args[0], *(int(a) for a in args[1:4]))
    elif what == "ref":
        make_ref(args[0], *(float(a) for a in args[1:4]))
    elif what == "run":
        run(*args)
    else:
        raise SystemExit(__doc__)
