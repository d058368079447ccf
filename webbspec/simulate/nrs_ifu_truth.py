"""Truth of a simulated NIRSpec IFU program (``<program>/truth/``), in the nrs_fs layout plus cubes.

* ``sources.ecsv``: source_id, srctype, slit ("IFU"), ra, dec, plus sigma [arcsec] (0 for the point
  source, the Gaussian sigma of the extended one before the PSF).
* ``spectra/s000000001.ecsv``: the point source, flux [Jy]; ``s000000002.ecsv``: the extended
  source's surface brightness at its centre before the PSF, surf_bright [MJy/sr] (its total flux
  density is ``nrs_ifu_scene.extended_jy``); ``b000000001.ecsv``: the uniform sky [MJy/sr]
  (what the dedicated background sees; background subtraction removes it).
* ``cubes/<product>_truth_s3d.fits``: the sources (no sky) through the PSF, the mean surface
  brightness [MJy/sr] of each 0.1" spaxel of a 4.1" x 4.1" north-up grid centred on the target, on
  0.0012 um planes over the band the program's detectors see (official IFUCubeModel layout).
* ``outliers/<rate root>_crmask.fits``: injected cosmic rays (``truth.write_crmask``).
"""

import os

import numpy as np
from astropy.io import fits

from ..io import cubes
from ..io.skycoords import xieta_to_radec
from . import nrs_ifu_optics_refs as design
from . import nrs_ifu_scene as scene
from . import truth
from .nrs_ifu_calrefs import CUBE_SPAXEL, CUBE_STEP

__all__ = ["write_truth", "truth_cube", "BAND"]

BAND = {"small": (2.87, 4.05), "full": (2.87, 5.10)}     # um: NRS1 alone, NRS1 + NRS2
HALF = 20                                               # spaxels each side of the target

README = """# Simulator truth (nrs_ifu, seed {seed}, scale {scale})

- `sources.ecsv`: source 1 POINT at the target; source 2 EXTENDED, a circular Gaussian of sigma
  {sigma}" (column sigma) at ({dx}, {dy})" (east, north) from the target.
- `spectra/s000000001.ecsv` flux [Jy] of source 1; `s000000002.ecsv` surf_bright [MJy/sr] of
  source 2 at its centre before the PSF (total flux = 2 pi sigma^2 x that); `b000000001.ecsv` the
  uniform sky [MJy/sr] (dedicated background exposures see only it).
- `cubes/{product}_truth_s3d.fits`: the sources through the PSF (no sky), mean surface
  brightness per 0.1" spaxel, north up, planes every 0.0012 um over {band} um.
- `outliers/<rate root>_crmask.fits`: injected cosmic rays (uint8 PRIMARY, SNR extension).
- Known simplifications: light across a slice is at the wavelength of its centre line (the
  official WCS convention); no slit losses; the flat field is exactly what the fflat / sflat /
  dflat references hold; the imprint (a cos x cos pattern of {imprint} DN/s mean, not flat-fielded)
  is in every exposure and alone in the imprint exposure.
"""


def truth_cube(band):
    """(cube [MJy/sr] (nz, ny, nx), wavelengths [um], CubeWCS): the sources through the PSF."""
    wave = np.arange(band[0], band[1] + 1e-9, CUBE_STEP)
    idx = np.arange(-HALF, HALF + 1) * CUBE_SPAXEL
    eta, xi = np.meshgrid(idx, -idx, indexing="ij")        # x increases to the west (cdelt1 < 0)
    sci = np.empty((wave.size, idx.size, idx.size), np.float32)
    for i in range(0, wave.size, 200):
        lam = wave[i:i + 200, None, None]
        sci[i:i + 200] = scene.spaxel_mjysr(lam, xi[None], eta[None], CUBE_SPAXEL)
    wcs = cubes.CubeWCS(crval1=scene.TARG_RA, crval2=scene.TARG_DEC, crpix1=HALF + 1.0, crpix2=HALF + 1.0,
                        cdelt1=-CUBE_SPAXEL / 3600.0, cdelt2=CUBE_SPAXEL / 3600.0, pc=np.eye(2), wavelength=wave)
    return sci, wave, wcs


def write_truth(tdir, product, science, seed, scale):
    rows = [{"source_id": 1, "srctype": "POINT", "slit": "IFU", "ra": scene.TARG_RA, "dec": scene.TARG_DEC,
             "sigma": 0.0}]
    ra, dec = xieta_to_radec(*scene.EXT_OFFSET, scene.TARG_RA, scene.TARG_DEC)
    rows.append({"source_id": 2, "srctype": "EXTENDED", "slit": "IFU", "ra": float(ra), "dec": float(dec),
                 "sigma": scene.EXT_SIGMA})
    truth.write_sources(rows, os.path.join(tdir, "sources.ecsv"), extra=(("sigma", "f8", "arcsec"),))
    wave = np.linspace(2.80, 5.20, 12001)        # 0.2 nm: a tenth of a line's sigma
    sdir = os.path.join(tdir, "spectra")
    truth.write_spectrum(1, wave, scene.point_source_jy(wave), "POINT", sdir)
    truth.write_spectrum(2, wave, scene.extended_peak_mjysr(wave), "EXTENDED", sdir)
    truth.write_spectrum(1, wave, scene.sky_mjysr(wave), "EXTENDED", sdir, prefix="b")
    sci, grid, wcs = truth_cube(BAND[scale])
    primary = fits.Header()
    for key, val in (("TELESCOP", "JWST"), ("INSTRUME", "NIRSPEC"), ("EXP_TYPE", design.EXP_TYPE),
                     ("FILTER", design.FILTER), ("GRATING", design.GRATING), ("TARG_RA", scene.TARG_RA),
                     ("TARG_DEC", scene.TARG_DEC), ("ORIGIN", "webbspec simulator truth")):
        primary[key] = val
    head = fits.Header()
    head["BUNIT"] = "MJy/sr"
    head["PIXAR_A2"] = CUBE_SPAXEL ** 2
    head["PIXAR_SR"] = CUBE_SPAXEL ** 2 * scene.SR_PER_ARCSEC2
    zeros = np.zeros(sci.shape, np.float32)
    cube = cubes.Cube(primary, sci, zeros, np.zeros(sci.shape, np.uint32), np.ones(sci.shape, np.float32), grid,
                      wcs, head)
    cubes.write(cube, os.path.join(tdir, "cubes", f"{product}_truth_s3d.fits"))
    from .nrs_ifu import IMPRINT_DNS

    with open(os.path.join(tdir, "README.md"), "w") as fh:
        fh.write(README.format(seed=seed, scale=scale, sigma=scene.EXT_SIGMA, dx=scene.EXT_OFFSET[0],
                               dy=scene.EXT_OFFSET[1], product=product, band=f"{BAND[scale][0]}-{BAND[scale][1]}",
                               imprint=IMPRINT_DNS))
