"""The cubepar reference of cube_build.

* ``cubepar`` (MiriIFUCubeParsModel / NirspecIFUCubeParsModel FITS): CUBEPAR one row per band
  (MIRI channel + band, NIRSpec disperser + filter: spaxelsize [arcsec], spectralstep, wavemin,
  wavemax [um]), CUBEPAR_MSM (roispatial, roispectral, power, softrad), CUBEPAR_EMSM (roispatial,
  roispectral, scalerad) and the multi-band wavelength tables (MIRI MULTICHANNEL_MSM / _EMSM /
  _DRIZ; NIRSpec MULTICHAN_{PRISM,MED,HIGH}_{MSM,EMSM,DRIZZLE}).
"""

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from . import _correction as corr

__all__ = ["CubePars", "read_cubepar", "nirspec_table_kind"]

_MODELS = ("MiriIFUCubeParsModel", "NirspecIFUCubeParsModel")
_NRS_KINDS = {"prism": "PRISM", "g140m": "MED", "g235m": "MED", "g395m": "MED",
              "g140h": "HIGH", "g235h": "HIGH", "g395h": "HIGH"}


def nirspec_table_kind(grating):
    return _NRS_KINDS.get(str(grating).strip().lower(), "MED")


@dataclass
class CubePars:
    path: str
    bands: dict = field(default_factory=dict)     # (par1, par2) upper -> parameters
    tables: dict = field(default_factory=dict)    # "MULTI" | "PRISM" | "MED" | "HIGH" -> columns

    def band(self, par1, par2, where=""):
        key = (str(par1).strip().upper(), str(par2).strip().upper())
        if key not in self.bands:
            raise InputError(self.path, f"cubepar has no row for band {'/'.join(key)}{where}")
        return self.bands[key]


def _col(tab, name):
    return np.asarray(tab[name]) if name in tab.columns.names else None


def _strings(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def read_cubepar(path):
    """The cube parameters of a cubepar reference (InputError naming the file when it is not one)."""
    hdul = corr.open_reference(path, "cubepar", _MODELS, ("CUBEPAR",))
    miri = "channel" in hdul["CUBEPAR"].columns.names
    k1, k2 = ("channel", "band") if miri else ("disperser", "filter")
    out = CubePars(str(path))
    try:
        main = hdul["CUBEPAR"].data
        for i, (a, b) in enumerate(zip(_strings(main[k1]), _strings(main[k2]))):
            out.bands[(a.strip().upper(), b.strip().upper())] = {
                "spaxel": float(main["spaxelsize"][i]), "step": float(main["spectralstep"][i]),
                "wavemin": float(main["wavemin"][i]), "wavemax": float(main["wavemax"][i])}
        for ext, names in (("CUBEPAR_MSM", ("roispatial", "roispectral", "power", "softrad")),
                           ("CUBEPAR_EMSM", ("roispatial", "roispectral", "scalerad"))):
            if ext not in hdul:
                continue
            tab = hdul[ext].data
            for i, (a, b) in enumerate(zip(_strings(tab[k1]), _strings(tab[k2]))):
                row = out.bands.setdefault((a.strip().upper(), b.strip().upper()), {})
                for n in names:
                    key = {"roispatial": "rois", "roispectral": "roiw"}.get(n, n)
                    row.setdefault(key, float(tab[n][i]))
        groups = {"MULTI": ("MULTICHANNEL_MSM", "MULTICHANNEL_EMSM", "MULTICHANNEL_DRIZ")} if miri else {
            kind: (f"MULTICHAN_{kind}_MSM", f"MULTICHAN_{kind}_EMSM", f"MULTICHAN_{kind}_DRIZZLE")
            for kind in ("PRISM", "MED", "HIGH")}
        for kind, exts in groups.items():
            cols = {}
            for ext in exts:
                if ext in hdul:
                    tab = hdul[ext].data
                    for n in ("wavelength", "roispatial", "roispectral", "power", "softrad", "scalerad"):
                        v = _col(tab, n)
                        if v is not None:
                            cols.setdefault({"roispatial": "rois", "roispectral": "roiw"}.get(n, n), v.astype(float))
            if "wavelength" in cols:
                out.tables[kind] = cols
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(path, f"not a cubepar reference file ({type(exc).__name__}: {exc})") from None
    return out
