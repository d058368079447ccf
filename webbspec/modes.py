"""The one table of modes: which steps run, in which order, for which EXP_TYPE.

The Snakefile derives each exposure's Stage 2 rule chain and each association's Stage 3 steps
from :data:`MODES`; adding a mode means adding a row here and an instrument model, not rules.
"""

from dataclasses import dataclass

from .errors import InputError

__all__ = ["Mode", "MODES", "mode_for", "mode_by_name", "SPEC2_STEPS", "SPEC3_STEPS"]


@dataclass(frozen=True)
class Mode:
    name: str                # command-line name (webbspec simulate NAME)
    exp_types: tuple         # EXP_TYPE values of the mode's science exposures
    instrument: str
    spec2: tuple             # Stage 2 steps in order (official aliases)
    spec3: tuple             # Stage 3 per-source steps in order
    simulated: bool = False  # the simulator and instrument model exist for it
    detectors: tuple = ()    # detectors of a full-size exposure


_SLIT_S3 = ("master_background", "outlier_detection", "resample_spec", "extract_1d")

MODES = {
    m.name: m for m in (
        Mode("nrs_fs", ("NRS_FIXEDSLIT",), "NIRSPEC",
             ("assign_wcs", "bkg_subtract", "extract_2d", "srctype", "wavecorr", "flat_field",
              "pathloss", "photom", "resample_spec", "extract_1d"),
             _SLIT_S3, simulated=True, detectors=("NRS1", "NRS2")),
        Mode("nrs_mos", ("NRS_MSASPEC",), "NIRSPEC",
             ("assign_wcs", "msa_flagging", "imprint_subtract", "bkg_subtract", "extract_2d", "srctype",
              "master_background_mos", "wavecorr", "flat_field", "pathloss", "barshadow", "photom",
              "resample_spec", "extract_1d"),
             _SLIT_S3, detectors=("NRS1", "NRS2")),
        Mode("nrs_ifu", ("NRS_IFU",), "NIRSPEC",
             ("assign_wcs", "msa_flagging", "imprint_subtract", "bkg_subtract", "srctype", "flat_field",
              "pathloss", "photom", "cube_build", "extract_1d"),
             ("master_background", "outlier_detection", "cube_build", "extract_1d"), detectors=("NRS1", "NRS2")),
        Mode("mir_lrs_fs", ("MIR_LRS-FIXEDSLIT",), "MIRI",
             ("assign_wcs", "bkg_subtract", "srctype", "flat_field", "pathloss", "photom", "resample_spec",
              "extract_1d"),
             _SLIT_S3, detectors=("MIRIMAGE",)),
        Mode("mir_lrs_sl", ("MIR_LRS-SLITLESS",), "MIRI",
             ("assign_wcs", "bkg_subtract", "srctype", "flat_field", "photom", "extract_1d"),
             ("extract_1d", "combine_1d"), detectors=("MIRIMAGE",)),
        Mode("mir_mrs", ("MIR_MRS",), "MIRI",
             ("assign_wcs", "bkg_subtract", "srctype", "straylight", "flat_field", "fringe", "photom",
              "cube_build", "extract_1d"),
             ("master_background", "outlier_detection", "cube_build", "extract_1d"),
             detectors=("MIRIFUSHORT", "MIRIFULONG")),
        Mode("nis_soss", ("NIS_SOSS",), "NIRISS",
             ("assign_wcs", "bkg_subtract", "srctype", "flat_field", "extract_1d", "photom"),
             ("extract_1d", "combine_1d"), detectors=("NIS",)),
        Mode("nis_wfss", ("NIS_WFSS",), "NIRISS",
             ("assign_wcs", "bkg_subtract", "flat_field", "extract_2d", "srctype", "photom", "extract_1d"),
             ("extract_1d", "combine_1d"), detectors=("NIS",)),
        Mode("nrc_wfss", ("NRC_WFSS", "NRC_GRISM"), "NIRCAM",
             ("assign_wcs", "bkg_subtract", "flat_field", "extract_2d", "srctype", "photom", "extract_1d"),
             ("extract_1d", "combine_1d"), detectors=("NRCALONG", "NRCBLONG")),
    )
}

SPEC2_STEPS = tuple(dict.fromkeys(s for m in MODES.values() for s in m.spec2))
SPEC3_STEPS = tuple(dict.fromkeys(("assign_mtwcs", "exp_to_source") + tuple(
    s for m in MODES.values() for s in m.spec3)))


def mode_by_name(name):
    """Look a mode up by its command-line name or by one of its EXP_TYPEs."""
    key = str(name).strip()
    if key.lower() in MODES:
        return MODES[key.lower()]
    for mode in MODES.values():
        if key.upper() in mode.exp_types:
            return mode
    raise KeyError(f"unknown mode {name!r}; known: {', '.join(MODES)} (or their EXP_TYPEs)")


def mode_for(header, path="<header>"):
    """The mode of a product from its PRIMARY header's EXP_TYPE; unknown EXP_TYPE is an InputError."""
    exp_type = str(header.get("EXP_TYPE", "")).strip().upper()
    for mode in MODES.values():
        if exp_type in mode.exp_types:
            return mode
    raise InputError(path, f"unknown EXP_TYPE {exp_type or '(missing)'!r}")
