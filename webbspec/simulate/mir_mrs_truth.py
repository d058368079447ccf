"""The truth of a simulated MIRI MRS program (nrs_fs layout plus cubes) under ``<program>/truth/``.

* ``sources.ecsv``: source_id, srctype, slit (the channels it is seen in, "ALL"), ra, dec [deg],
  fwhm [arcsec] (0 for the point source and the uniform sky).
* ``spectra/s<id 9 digits>.ecsv``: 1 = the point source, flux [Jy]; 2 = the extended source's
  peak surface brightness, 3 = the sky, surf_bright [MJy/sr].
* ``cubes/ch<c>-<band>_truth.fits``: the scene WITHOUT the sky (what the pipeline gives after
  background subtraction) on the official band cube grid (cubepar spaxel size and spectral step,
  RA/Dec-aligned, east to the left, centred on the target): SCI (nwave, ny, nx) [MJy/sr], the
  PSF-convolved point and extended sources averaged over each spaxel and sampled at the plane's
  wavelength; header RA---TAN / DEC--TAN / WAVE keywords (CRPIX 1-based), WAVELENGTH table-free.
* ``outliers/<rate root>_crmask.fits`` (written by the program): injected cosmic rays.
"""

import os

import numpy as np
from astropy.io import fits

from ..io.skycoords import xieta_to_radec
from . import mir_mrs_design as design
from . import mir_mrs_scene as scene
from . import truth
from .mir_mrs_calrefs import CUBEPARS
from .mir_mrs_render import gaussian_fraction

__all__ = ["write_truth", "truth_cube"]

_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))
_ARCSEC2_SR = (np.pi / 180.0 / 3600.0) ** 2


def truth_cube(channel, band):
    """(sci [MJy/sr] (nw, ny, nx), wavelength [um] (nw,), header) of the sky-free scene."""
    spax, step, w0, w1 = CUBEPARS[(str(channel), band)][:4]
    ch = design.CHANNELS[str(channel)]
    fov = max(ch.width * ch.s_a, ch.nslice * ch.bdel) + 2.0
    n = int(np.ceil(fov / spax)) | 1                         # odd: the target at a spaxel centre
    nw = int(np.floor((w1 - w0) / step)) + 1
    lam = w0 + step * np.arange(nw)
    c = (n - 1) / 2.0
    edges = (np.arange(n + 1) - 0.5 - c) * spax                # spaxel edges [arcsec]
    # xi grows to the east = to the left on the cube (i -> -xi)
    xi_lo, xi_hi = -edges[1:], -edges[:-1]
    eta_lo, eta_hi = edges[:-1], edges[1:]
    sig = (design.psf_fwhm(lam) / _FWHM)[:, None]
    fx = gaussian_fraction(xi_lo[None], xi_hi[None], 0.0, sig)
    fy = gaussian_fraction(eta_lo[None], eta_hi[None], 0.0, sig)
    omega = spax * spax
    sci = (scene.point_flux_jy(lam) * 1e-6 / (omega * _ARCSEC2_SR))[:, None, None] * fy[:, :, None] * fx[:, None, :]
    bx, by = scene.BLOB_OFFSET
    sb = scene.BLOB_FWHM / _FWHM
    tot = np.hypot(sb, sig)
    fx = gaussian_fraction(xi_lo[None], xi_hi[None], bx, tot)
    fy = gaussian_fraction(eta_lo[None], eta_hi[None], by, tot)
    sci += (scene.blob_peak_mjysr(lam) * 2 * np.pi * sb**2 / omega)[:, None, None] * fy[:, :, None] * fx[:, None, :]
    h = fits.Header()
    for key, val in (("CHANNEL", str(channel)), ("BAND", band), ("BUNIT", "MJy/sr"),
                     ("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CTYPE3", "WAVE"),
                     ("CUNIT1", "deg"), ("CUNIT2", "deg"), ("CUNIT3", "um"),
                     ("CRPIX1", c + 1), ("CRPIX2", c + 1), ("CRPIX3", 1.0),
                     ("CRVAL1", scene.TARG_RA), ("CRVAL2", scene.TARG_DEC), ("CRVAL3", float(w0)),
                     ("CDELT1", -spax / 3600.0), ("CDELT2", spax / 3600.0), ("CDELT3", float(step)),
                     ("SKYINCL", (False, "the uniform sky (source 3) is not in the cube"))):
        h[key] = val
    return sci.astype(np.float32), lam, h


def write_truth(outdir, exposures, seed, scale):
    tdir = os.path.join(outdir, "truth")
    wave = scene.truth_wavelengths()
    bra, bdec = xieta_to_radec(*scene.BLOB_OFFSET, scene.TARG_RA, scene.TARG_DEC)
    first = next(e for e in exposures if e["kind"] == "science")
    sra, sdec = first["ra_ref"], first["dec_ref"]          # the sky: the first science pointing
    rows = [{"source_id": 1, "srctype": "POINT", "slit": "ALL", "ra": scene.TARG_RA, "dec": scene.TARG_DEC, "fwhm": 0.0},
            {"source_id": 2, "srctype": "EXTENDED", "slit": "ALL", "ra": float(bra), "dec": float(bdec),
             "fwhm": scene.BLOB_FWHM},
            {"source_id": 3, "srctype": "EXTENDED", "slit": "ALL", "ra": sra, "dec": sdec, "fwhm": 0.0}]
    truth.write_sources(rows, os.path.join(tdir, "sources.ecsv"), extra=(("fwhm", "f8", "arcsec"),))
    sdir = os.path.join(tdir, "spectra")
    truth.write_spectrum(1, wave, scene.point_flux_jy(wave), "POINT", sdir)
    truth.write_spectrum(2, wave, scene.blob_peak_mjysr(wave), "EXTENDED", sdir)
    truth.write_spectrum(3, wave, scene.sky_mjysr(wave), "EXTENDED", sdir)
    cdir = os.path.join(tdir, "cubes")
    os.makedirs(cdir, exist_ok=True)
    for band in dict.fromkeys(e["band"] for e in exposures):
        for c in "1234":
            sci, _, h = truth_cube(c, band)
            fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(sci, h, name="SCI")]).writeto(
                os.path.join(cdir, f"ch{c}-{band.lower()}_truth.fits"), overwrite=True)
    with open(os.path.join(tdir, "README.md"), "w") as fh:
        fh.write(README.format(seed=seed, scale=scale))
    return tdir


README = """# Simulator truth (mir_mrs, seed {seed}, scale {scale})

- `sources.ecsv`: 1 = POINT source at the target; 2 = EXTENDED Gaussian (column fwhm [arcsec], its
  peak surface brightness in `spectra/s000000002.ecsv`); 3 = the uniform sky (EXTENDED, in the
  science and the dedicated background exposures; ra/dec: the first science pointing).
- `spectra/s<id>.ecsv`: wavelength [um]; flux [Jy] (POINT) or surf_bright [MJy/sr] (EXTENDED).
- `cubes/ch<c>-<band>_truth.fits`: SCI [MJy/sr] of sources 1 + 2 (no sky), PSF-convolved,
  spaxel-averaged, sampled at each plane's wavelength, on the cubepar grid (spaxel, step),
  RA/Dec-aligned and centred on the target; FITS WCS keywords in the SCI header.
- `outliers/<rate root>_crmask.fits`: injected cosmic rays (PRIMARY uint8 mask, SNR extension).
- Instrument model (the references invert it): rate = S + cross-artifact(S), S = SB * flat *
  fringe / photom; the scene is integrated over each pixel's footprint through our WCS.
"""
