"""Simulator truth files under ``<program>/truth/``.

* ``sources.ecsv``: source_id, srctype, slit, ra, dec [deg] (extended sources: the slit centre in
  the first exposure).
* ``spectra/s<source_id:09d>.ecsv``: wavelength [um] and flux [Jy] (POINT) or surf_bright
  [MJy/sr] (EXTENDED; the sky, which nodded background subtraction removes).
* ``outliers/<rate root>_crmask.fits``: injected cosmic rays, uint8 image (1 = hit) in the
  PRIMARY HDU, same shape as SCI.
* ``README.md``: these notes and the program's known limitations.
"""

import os

import numpy as np
from astropy.io import fits
from astropy.table import Table

__all__ = ["write_sources", "write_spectrum", "write_crmask", "write_readme"]


def _write_ecsv(table, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    table.write(path, format="ascii.ecsv", overwrite=True)
    return path


def write_sources(rows, path, extra=()):
    """``rows``: list of dicts with source_id, srctype, slit, ra, dec; ``extra``: more columns,
    (name, dtype, unit or None) each, taken from the rows."""
    names = ("source_id", "srctype", "slit", "ra", "dec") + tuple(c[0] for c in extra)
    t = Table(rows=[tuple(r[n] for n in names) for r in rows], names=names,
              dtype=("i8", "U8", "U8", "f8", "f8") + tuple(c[1] for c in extra))
    t["ra"].unit = t["dec"].unit = "deg"
    for name, _, unit in extra:
        if unit:
            t[name].unit = unit
    return _write_ecsv(t, path)


def write_spectrum(source_id, wavelength, values, kind, path_dir, prefix="s"):
    """``<prefix><|source_id| 9 digits>.ecsv`` (prefix: "s"; MOS background slitlets "b", virtual
    ones "v", as the official Stage 3 product names)."""
    col = "flux" if kind == "POINT" else "surf_bright"
    t = Table({"wavelength": np.asarray(wavelength, float), col: np.asarray(values, float)})
    t["wavelength"].unit = "um"
    t[col].unit = "Jy" if kind == "POINT" else "MJy/sr"
    t.meta["source_id"] = int(source_id)
    t.meta["srctype"] = kind
    return _write_ecsv(t, os.path.join(path_dir, f"{prefix}{abs(int(source_id)):09d}.ecsv"))


def write_crmask(mask, snr, path):
    """PRIMARY: the boolean mask (uint8); SNR: each hit's added signal over the pixel's noise."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    hdu = fits.PrimaryHDU(mask.astype(np.uint8))
    hdu.header["CONTENT"] = ("CRMASK", "1 = injected cosmic ray")
    hdu.header["NCR"] = (int(mask.sum()), "pixels hit")
    amp = fits.ImageHDU(np.asarray(snr, np.float32), name="SNR")
    amp.header["BUNIT"] = ("sigma", "added signal / rate noise of the pixel")
    fits.HDUList([hdu, amp]).writeto(path, overwrite=True)
    return path


README = """# Simulator truth ({mode}, seed {seed}, scale {scale})

- `sources.ecsv`: source_id, srctype, slit, ra, dec [deg]. Source 1 is the point source in
  the primary slit {primary}; the other slits (ids 10*1+n, official FS rule) see only sky.
- `spectra/s<id 9 digits>.ecsv`: wavelength [um] and flux [Jy] (POINT) or surf_bright [MJy/sr]
  (EXTENDED). The extended "sources" are the uniform sky, so nodded background subtraction
  removes them (their calibrated value is ~0 after bkg_subtract; the sky value is what the
  pipeline gives without background subtraction).
- `outliers/<rate root>_crmask.fits`: uint8 image in PRIMARY, 1 = injected cosmic ray pixel;
  extension SNR: the ray's added signal over the pixel's noise in the rate (0 elsewhere).
- Known model effects not in the reference files: the point source sits {xoff} arcsec across
  the slit (SRCXPOS {xpos}); the pathloss reference tabulates PS against SRCXPOS (PS_XPOS).
  Slit-end truncation of the PSF wing at the nod positions (+-0.9") is < 0.1%. Pixels at the slit
  ends are partly illuminated (sharp slit ends).
"""


def write_readme(path, **kw):
    with open(path, "w") as fh:
        fh.write(README.format(**kw))
    return path
