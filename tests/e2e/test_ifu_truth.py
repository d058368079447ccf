"""The IFU modes end to end against the simulator's truth: `webbspec simulate nrs_ifu|mir_mrs` (scale
small), then the workflow (Stage 2 and the cube Stage 3), then the issue's bars on the Stage 3
products: cubes conserve flux, the point source's spectrum, centroid and wavelengths, fringe and
stray-light residuals (MRS), and the outlier flags of the `_crf` against the injected rays.

The scene's extended source is faint (about 1% of the point source's light falls into its
aperture), so the point source's x1d is compared with its own input spectrum as well.

Measured (seed 0; MRS ch1..ch4, NIRSpec G395H): cube sum / truth 0.999, 0.999, 0.998, 0.996; 0.991.
x1d / truth in the same aperture 1.000, 0.999, 0.999, 0.998; 0.9999. x1d / input spectrum 1.002,
1.003, 1.007, 1.019; 1.011 (with the extended source 10x brighter: 1.02-1.20; 1.105). Centroid 0.001, 0.015, 0.063,
0.006; 0.023 spaxel. Line positions within 0.016; 0.026 bin. MRS fringe ripple 0.12, 0.07, 0.09,
0.49% and level residual 0.03, 0.11, 0.09, 0.18% of the signal (with residual_fringe, FAST_RUN). Rays > 10 sigma flagged 507/507;
435/436; clean pixels flagged 27 of 5.9e6; 33 of 7.9e6. Runtime (both modes, simulation + the
whole workflow, on 2 cores shared with other runs, load 4-7): 6.6-9.2 min wall, 2.9-4.2 CPU min.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from webbspec import dq as dqbits
from webbspec.io import cubes, datamodels

pytestmark = pytest.mark.slow

MODES = ("mir_mrs", "nrs_ifu")
# residual_fringe on (calwebb_spec2 skips it): the simulated MRS keeps a 1% residual fringe after the
# fringe flat; skipped, the ch1-4 ripple is 0.12, 0.38, 0.47, 0.93% (seed 0), with it the numbers above
FAST_RUN = "workflow: {spec2_jobs: exposure, save_intermediates: false}\nspec2: {residual_fringe: {skip: false}}\n"


def _run(cmd, cwd=None):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, (r.stdout[-2000:] + r.stderr[-4000:])
    return r


@pytest.fixture(scope="module", params=MODES)
def program(request, tmp_path_factory):
    """A simulated small program run through the whole workflow: (mode, program dir, products)."""
    mode = request.param
    prog = tmp_path_factory.mktemp(mode) / "prog"
    _run([sys.executable, "-m", "webbspec", "simulate", mode, str(prog)])
    over = prog / "fast.yaml"
    over.write_text(FAST_RUN)
    _run([sys.executable, "-m", "webbspec", "run", str(prog), "--cores", "2", "--configfile", str(over)])
    spec3 = prog / "webbspec" / "spec3"
    found = {k: sorted(spec3.glob(f"*_{k}.fits")) for k in ("s3d", "x1d", "crf")}
    return mode, prog, found


def _truth_cube(prog, s3d):
    """The truth cube of a Stage 3 cube (same band), as a Cube (no ERR/WMAP: zeros / ones)."""
    suffix = os.path.basename(str(s3d)).removesuffix("_s3d.fits").rsplit("_", 1)[-1]
    tdir = prog / "truth" / "cubes"
    name = next(f for f in sorted(os.listdir(tdir)) if suffix in f)
    t = cubes.read(str(tdir / name))
    if t.wmap is None:
        t.wmap = np.ones(t.sci.shape, np.float32)
    if t.err is None:
        t.err = np.zeros(t.sci.shape, np.float32)
    return t


def _plane_fluxes(c):
    """Per plane: sum of SCI x spaxel area [MJy/sr arcsec^2] over the covered spaxels."""
    return np.nansum(np.where(np.asarray(c.wmap) > 0, c.sci, np.nan), axis=(1, 2)) * c.wcs.spaxel_arcsec ** 2


def _central(w, frac=0.8, valid=None, within=None):
    """The central ``frac`` of the wavelengths ``w`` where ``valid`` (and inside ``within``: a
    (min, max) range, e.g. the truth's: the small NIRSpec program has NRS1 only, while the G395H
    cube spans both detectors' wavelengths)."""
    w = np.asarray(w, float)
    ok = np.ones(w.shape, bool) if valid is None else np.asarray(valid, bool)
    if within is not None:
        ok &= (w >= within[0]) & (w <= within[1])
    lo, hi = np.quantile(w[ok], [(1 - frac) / 2, (1 + frac) / 2])
    return ok & (w >= lo) & (w <= hi)


def _has_flux(table):
    """x1d rows with a measurement (planes no exposure covers hold 0 or NaN)."""
    f = np.asarray(table["FLUX"], float)
    return np.isfinite(f) & (f != 0) & (np.asarray(table["NPIXELS"], float) > 0)


def _refs(prog, header, reftypes):
    from webbspec.io.refs import bestrefs

    return bestrefs(header, reftypes, str(prog / "refs"))


def _truth_aperture(prog, s3d, x1d):
    """The truth cube extracted through our x1d's aperture (same centre on the sky, same radius
    [arcsec] from the same reference): (wavelength, FLUX [Jy])."""
    from webbspec.algorithms.cube_extract import extract_cube

    ours = cubes.read(str(s3d))
    t = _truth_cube(prog, s3d)
    t.header["SRCTYPE"] = "POINT"
    h = x1d.spectra[0].header
    ra, dec = ours.wcs.pixel_to_sky(float(h["EXTR_X"]), float(h["EXTR_Y"]))
    xc, yc = t.wcs.sky_to_pixel(ra, dec)
    ref = _refs(prog, ours.primary, ("extract1d",))["extract1d"]
    spec = extract_cube(t, ref, center_xy=(float(xc), float(yc)), subtract_background=False)
    tab = spec.spectra[0].table
    return np.asarray(tab["WAVELENGTH"], float), np.asarray(tab["FLUX"], float)


# ---------------------------------------------------------------- bars


def test_products_have_the_official_names(program):
    mode, prog, found = program
    s3d = [p.name for p in found["s3d"]]
    if mode == "mir_mrs":
        assert s3d == [f"jw01234-o001_t001_miri_ch{c}-short_s3d.fits" for c in "1234"]
        assert len(found["crf"]) == 8
    else:
        assert s3d == ["jw01234-o001_t001_nirspec_g395h-f290lp_s3d.fits"]
        assert len(found["crf"]) == 4
    assert [p.name.replace("_x1d", "_s3d") for p in found["x1d"]] == s3d
    assert all(p.name.endswith("_o001_crf.fits") for p in found["crf"])
    from stdatamodels.jwst import datamodels as dm

    with dm.open(str(found["s3d"][0]), strict_validation=True) as m:
        assert type(m).__name__ == "IFUCubeModel"
    with dm.open(str(found["x1d"][0]), strict_validation=True) as m:
        assert type(m).__name__ == "MultiSpecModel"


def cube_flux_ratios(prog, found):
    """Per cube: total of the per-plane sums over the central 80% of the band, ours / truth (truth
    planes interpolated to ours: the truth samples its planes half a bin from the official centres)."""
    out = {}
    for s3d in found["s3d"]:
        c, t = cubes.read(str(s3d)), _truth_cube(prog, s3d)
        ours, truth = _plane_fluxes(c), np.interp(c.wavelength, t.wavelength, _plane_fluxes(t))
        k = _central(c.wavelength, valid=np.any(np.asarray(c.wmap) > 0, axis=(1, 2)),
                     within=(t.wavelength[0], t.wavelength[-1]))
        out[s3d.name] = float(np.sum(ours[k]) / np.sum(truth[k]))
    return out


def test_cubes_conserve_flux(program):
    """Sum over each Stage 3 cube within 2% of the truth cube's (the issue's bar): the truth holds
    the sources only; Stage 2 subtracted the sky (dedicated backgrounds)."""
    _, prog, found = program
    ratios = cube_flux_ratios(prog, found)
    assert ratios and all(abs(r - 1) < 0.02 for r in ratios.values()), ratios


def point_source_ratios(prog, found):
    """Per cube, median over the central 80% of its x1d FLUX over (a) the point source's truth
    spectrum and (b) the truth cube extracted through the same aperture."""
    sp = Table.read(prog / "truth" / "spectra" / "s000000001.ecsv")
    out = {}
    for s3d, x1 in zip(found["s3d"], found["x1d"]):
        x = datamodels.read(str(x1))
        t = x.spectra[0].table
        w, f = np.asarray(t["WAVELENGTH"], float), np.asarray(t["FLUX"], float)
        k = _central(w, valid=_has_flux(t))
        truth = np.interp(w, np.asarray(sp["wavelength"], float), np.asarray(sp["flux"], float))
        tw, tf = _truth_aperture(prog, s3d, x)
        inap = np.interp(w, tw, tf)
        out[s3d.name] = (float(np.median(f[k] / truth[k])), float(np.median(f[k] / inap[k])))
    return out


def test_point_source_spectrum_matches_the_truth_in_its_aperture(program):
    """The x1d of the Stage 3 cube within 3% of the truth cube extracted through the same aperture
    (same centre, radius from the same extract1d reference): what the cube and the extraction
    must preserve, whatever else of the scene falls into the aperture."""
    _, prog, found = program
    ratios = point_source_ratios(prog, found)
    print("x1d / truth in the same aperture:", {k: round(r[1], 4) for k, r in ratios.items()})
    assert all(abs(r[1] - 1) < 0.03 for r in ratios.values()), ratios


def test_point_source_spectrum_matches_its_input_spectrum(program):
    _, prog, found = program
    ratios = point_source_ratios(prog, found)
    print("x1d / input spectrum:", {k: round(r[0], 4) for k, r in ratios.items()})
    assert all(abs(r[0] - 1) < 0.03 for r in ratios.values()), ratios


def _centroid(img, xc, yc, r):
    """Centroid of ``img`` (2-D) within radius ``r`` of (xc, yc), the plane fitted to the ring
    r..1.6r subtracted first (the extended source's slope under the point source)."""
    ny, nx = img.shape
    y, x = np.mgrid[0:ny, 0:nx]
    d = np.hypot(x - xc, y - yc)
    ok = np.isfinite(img)
    ring = ok & (d >= r) & (d < 1.6 * r)
    a = np.c_[np.ones(ring.sum()), x[ring], y[ring]]
    coef = np.linalg.lstsq(a, img[ring], rcond=None)[0]
    sub = img - (coef[0] + coef[1] * x + coef[2] * y)
    w = np.where(ok & (d < r), sub, 0.0)
    return float(np.sum(w * x) / np.sum(w)), float(np.sum(w * y) / np.sum(w))


def centroid_offsets(prog, found):
    """Per cube: distance [spaxels] between the point source's centroid in our cube (median
    image over the central planes) and in the truth cube (same method, mapped through the WCS)."""
    out = {}
    for s3d in found["s3d"]:
        c, t = cubes.read(str(s3d)), _truth_cube(prog, s3d)
        src = Table.read(prog / "truth" / "sources.ecsv")[0]
        span = (t.wavelength[0], t.wavelength[-1])
        k = _central(c.wavelength, 0.5, valid=np.any(np.asarray(c.wmap) > 0, axis=(1, 2)), within=span)
        with np.errstate(all="ignore"):
            img = np.nanmedian(np.where(np.asarray(c.wmap[k]) > 0, c.sci[k], np.nan), axis=0)
            timg = np.nanmedian(t.sci[_central(t.wavelength, 0.5, within=(c.wavelength[k][0], c.wavelength[k][-1]))],
                                axis=0)
        r = max(2.0, 0.5 / c.wcs.spaxel_arcsec)          # ~0.5" (a PSF FWHM or two)
        x0, y0 = c.wcs.sky_to_pixel(float(src["ra"]), float(src["dec"]))
        xo, yo = _centroid(img, float(x0), float(y0), r)
        tx0, ty0 = t.wcs.sky_to_pixel(float(src["ra"]), float(src["dec"]))
        txc, tyc = _centroid(timg, float(tx0), float(ty0), r * c.wcs.spaxel_arcsec / t.wcs.spaxel_arcsec)
        xt, yt = c.wcs.sky_to_pixel(*t.wcs.pixel_to_sky(txc, tyc))
        out[s3d.name] = float(np.hypot(xo - xt, yo - yt))
    return out


def test_point_source_centroid(program):
    """Within 0.1 spaxel of the truth's (the issue's bar)."""
    _, prog, found = program
    offs = centroid_offsets(prog, found)
    assert all(v < 0.1 for v in offs.values()), offs


def line_offsets(prog, found):
    """Per cube: the point source's emission lines in our x1d against the truth spectrum, as
    centroids over the same window (+-5 bins, linear continuum from the window's ends), in units
    of the cube's wavelength bin."""
    sp = Table.read(prog / "truth" / "spectra" / "s000000001.ecsv")
    tw, tf = np.asarray(sp["wavelength"], float), np.asarray(sp["flux"], float)
    out = {}
    for x1 in found["x1d"]:
        t = datamodels.read(str(x1)).spectra[0].table
        w, f = np.asarray(t["WAVELENGTH"], float), np.asarray(t["FLUX"], float)
        step = float(np.median(np.diff(w)))
        have = w[_has_flux(t)]
        inside = (tw > have[0] + 20 * step) & (tw < have[-1] - 20 * step)
        resid = tf - np.convolve(tf, np.ones(301) / 301, mode="same")
        peaks = [i for i in np.nonzero(inside)[0][1:-1] if resid[i] > 0.1 * np.max(resid[inside])
                 and resid[i] >= resid[i - 1] and resid[i] >= resid[i + 1]]
        offs = []
        for i in peaks:
            j = int(np.argmin(np.abs(w - tw[i])))
            win = slice(j - 5, j + 6)
            cont = np.interp(w[win], [w[win][0], w[win][-1]], [f[win][0], f[win][-1]])
            ours = np.sum(w[win] * (f[win] - cont)) / np.sum(f[win] - cont)
            tsel = (tw >= w[win][0]) & (tw <= w[win][-1])
            tcont = np.interp(tw[tsel], [tw[tsel][0], tw[tsel][-1]], [tf[tsel][0], tf[tsel][-1]])
            theirs = np.sum(tw[tsel] * (tf[tsel] - tcont)) / np.sum(tf[tsel] - tcont)
            offs.append((ours - theirs) / step)
        out[x1.name] = offs
    return out


def test_wavelengths(program):
    """Emission-line positions within 0.1 of a spectral bin (the issue's bar)."""
    _, prog, found = program
    offs = line_offsets(prog, found)
    assert sum(len(v) for v in offs.values()) >= 2, offs
    assert all(abs(v) < 0.1 for vs in offs.values() for v in vs), offs


def fringe_residuals(prog, found):
    """Per MRS cube: (rms of the x1d / truth-in-aperture ratio about its 51-bin running median
    [fringes], median |ratio - 1| [a stray-light or level residual]) over the central 80%."""
    from scipy.ndimage import median_filter

    out = {}
    for s3d, x1 in zip(found["s3d"], found["x1d"]):
        x = datamodels.read(str(x1))
        t = x.spectra[0].table
        w, f = np.asarray(t["WAVELENGTH"], float), np.asarray(t["FLUX"], float)
        tw, tf = _truth_aperture(prog, s3d, x)
        ratio = f / np.interp(w, tw, tf)
        k = _central(w, valid=np.isfinite(ratio) & _has_flux(t))
        smooth = median_filter(ratio[k], 51, mode="nearest")
        out[s3d.name] = (float(np.std(ratio[k] - smooth)), float(np.median(np.abs(ratio[k] - 1))))
    return out


def test_fringe_and_stray_light_residuals(program):
    """MRS: fringe (ripple about a running median) and stray-light (level) residuals of the point
    source's x1d below 1% of the signal (the issue's bar)."""
    mode, prog, found = program
    if mode != "mir_mrs":
        pytest.skip("fringes and stray light are MRS effects")
    res = fringe_residuals(prog, found)
    assert all(a < 0.01 and b < 0.01 for a, b in res.values()), res


def outlier_scores(prog, found):
    """(rays > 10 sigma flagged, rays > 10 sigma, clean pixels flagged, clean pixels) over every
    `_crf` against the simulator's ray masks (truth/outliers/<rate root>_crmask.fits; SNR extension):
    pixels usable before outlier detection (a wavelength, not DO_NOT_USE other than the outlier
    flag); clean = no ray within one pixel."""
    from scipy.ndimage import binary_dilation

    hit = n = fp = clean = 0
    for crf in found["crf"]:
        root = crf.name.rsplit("_", 2)[0]
        with fits.open(prog / "truth" / "outliers" / f"{root}_rate_crmask.fits") as h:
            mask = np.asarray(h[0].data) > 0
            snr = np.asarray(h["SNR"].data, float)
        m = datamodels.read(str(crf))
        s = m.slits[0]
        dq = np.asarray(s["DQ"], np.uint32)
        flagged = (dq & dqbits.OUTLIER) != 0
        # outlier detection flags usable pixels only: the others were DO_NOT_USE before it
        usable = np.isfinite(np.asarray(s["WAVELENGTH"], float)) & (((dq & dqbits.DO_NOT_USE) == 0) | flagged)
        big = mask & (snr > 10) & usable
        hit += int(np.sum(flagged & big))
        n += int(np.sum(big))
        quiet = usable & ~binary_dilation(mask, np.ones((3, 3), bool))
        fp += int(np.sum(flagged & quiet))
        clean += int(np.sum(quiet))
    return hit, n, fp, clean


def test_outlier_recall_and_false_flags(program):
    """Rays > 10 sigma: >= 95% flagged; clean pixels flagged < 1e-3 (the issue's bars)."""
    _, prog, found = program
    hit, n, fp, clean = outlier_scores(prog, found)
    assert n > 20 and clean > 0
    assert hit / n >= 0.95 and fp / clean < 1e-3, (hit, n, fp, clean)
