"""The one table of modes: which steps run, in which order, for which EXP_TYPE.

The Snakefile derives each exposure's Stage 2 rule chain and each association's Stage 3 steps
from :data:`MODES`; adding a mode means adding a row here and an instrument model, not rules.
"""

from dataclasses import dataclass

from .errors import InputError

__all__ = ["Mode", "MODES", "mode_for", "mode_by_name", "known_mode", "check_implemented", "SPEC2_STEPS", "SPEC3_STEPS",
           "STAGE3_KINDS", "SOURCE_RULES"]


# Stage 3 paths (Mode.stage3_kind): per-source slits (exp_to_source + batches of sources), cubes
# (all exposures into one cube per band), slitless spectra (per-source cutouts of the grism images).
STAGE3_KINDS = ("slits", "cubes", "slitless")
STAGE3_WRITTEN = ("slits", "cubes")   # the Stage 3 paths the workflow has (slitless: to come)
# How srctype decides (Mode.source_rule): one source per exposure (the exposure's decision; IFU
# modes default to EXTENDED), per-slit MSA stellarity, per-slit catalogue IS_EXTND.
SOURCE_RULES = ("single", "single_extended", "stellarity", "catalog")


@dataclass(frozen=True)
class Mode:
    name: str                # command-line name (webbspec simulate NAME)
    exp_types: tuple         # EXP_TYPE values of the mode's science exposures
    instrument: str
    spec2: tuple             # Stage 2 steps in order (official aliases)
    spec3: tuple             # Stage 3 per-source steps in order
    simulated: bool = False  # the simulator and instrument model exist for it
    detectors: tuple = ()    # detectors of a full-size exposure
    stage3_kind: str = "slits"
    source_rule: str = "single"
    fixed_slits: bool = False      # named fixed slits, one of them (FXD_SLIT) holds the target
    msa: bool = False              # MSA shutters: background ("BKG") and virtual (< 0) source ids
    tso: bool = False              # time series: POINT whenever NINTS >= 2
    point_extraction: bool = False  # extract_1d centres a POINT source's aperture on its position
    ref_background: bool = False   # bkg_subtract uses a reference background (no background members)
    pattern_keyword: str = "PATTTYPE"  # the dither-pattern keyword srctype reads
    simulator: str = ""            # "module:function" of `webbspec simulate` for this mode
    implemented: tuple = ()        # steps written for this mode (planning errors on the others)


_SLIT_S3 = ("master_background", "outlier_detection", "resample_spec", "extract_1d")
_FS_STEPS = ("assign_wcs", "bkg_subtract", "extract_2d", "srctype", "wavecorr", "flat_field", "pathloss",
             "photom", "resample_spec", "extract_1d") + _SLIT_S3

_MOS_STEPS = ("assign_wcs", "msa_flagging", "imprint_subtract", "bkg_subtract", "extract_2d", "srctype",
              "master_background_mos", "wavecorr", "flat_field", "pathloss", "barshadow", "photom",
              "resample_spec", "extract_1d") + _SLIT_S3

# IFU modes: the Stage 2 steps written for them, and their Stage 3 (cubes) steps (pipeline.stage3_cubes).
_IFU_S3 = ("master_background", "outlier_detection", "cube_build", "extract_1d")
_MRS_S3 = ("master_background", "mrs_imatch", "outlier_detection", "cube_build", "extract_1d")
_NRS_IFU_STEPS = ("assign_wcs", "msa_flagging", "imprint_subtract", "bkg_subtract", "srctype", "flat_field",
                  "pathloss", "photom", "cube_build", "extract_1d")
_MIR_MRS_STEPS = ("assign_wcs", "bkg_subtract", "srctype", "straylight", "flat_field", "fringe", "photom",
                  "residual_fringe", "cube_build", "extract_1d")

MODES = {
    m.name: m for m in (
        Mode("nrs_fs", ("NRS_FIXEDSLIT",), "NIRSPEC",
             ("assign_wcs", "bkg_subtract", "extract_2d", "srctype", "wavecorr", "flat_field",
              "pathloss", "photom", "resample_spec", "extract_1d"),
             _SLIT_S3, simulated=True, detectors=("NRS1", "NRS2"), fixed_slits=True, point_extraction=True,
             simulator="webbspec.simulate.fs_program:simulate_nrs_fs", implemented=_FS_STEPS),
        Mode("nrs_mos", ("NRS_MSASPEC",), "NIRSPEC",
             ("assign_wcs", "msa_flagging", "imprint_subtract", "bkg_subtract", "extract_2d", "srctype",
              "master_background_mos", "wavecorr", "flat_field", "pathloss", "barshadow", "photom",
              "resample_spec", "extract_1d"),
             _SLIT_S3, detectors=("NRS1", "NRS2"), source_rule="stellarity", msa=True,
             point_extraction=True, simulator="webbspec.simulate.nirspec_mos:simulate_nrs_mos",
             implemented=_MOS_STEPS),
        Mode("nrs_ifu", ("NRS_IFU",), "NIRSPEC",
             ("assign_wcs", "msa_flagging", "imprint_subtract", "bkg_subtract", "srctype", "flat_field",
              "pathloss", "photom", "cube_build", "extract_1d"),
             _IFU_S3, detectors=("NRS1", "NRS2"),
             stage3_kind="cubes", source_rule="single_extended",
             simulator="webbspec.simulate.nrs_ifu:simulate_nrs_ifu", implemented=_NRS_IFU_STEPS + _IFU_S3),
        Mode("mir_lrs_fs", ("MIR_LRS-FIXEDSLIT",), "MIRI",
             ("assign_wcs", "bkg_subtract", "srctype", "flat_field", "pathloss", "photom", "resample_spec",
              "extract_1d"),
             _SLIT_S3, detectors=("MIRIMAGE",), point_extraction=True),
        Mode("mir_lrs_sl", ("MIR_LRS-SLITLESS",), "MIRI",
             ("assign_wcs", "bkg_subtract", "srctype", "flat_field", "photom", "extract_1d"),
             ("extract_1d", "combine_1d"), detectors=("MIRIMAGE",), tso=True),
        Mode("mir_mrs", ("MIR_MRS",), "MIRI",
             ("assign_wcs", "bkg_subtract", "srctype", "straylight", "flat_field", "fringe", "photom",
              "residual_fringe", "cube_build", "extract_1d"),
             _MRS_S3,
             detectors=("MIRIFUSHORT", "MIRIFULONG"), stage3_kind="cubes", source_rule="single_extended",
             pattern_keyword="DITHOPFR", simulator="webbspec.simulate.mir_mrs:simulate_mir_mrs",
             implemented=_MIR_MRS_STEPS + _MRS_S3),
        Mode("nis_soss", ("NIS_SOSS",), "NIRISS",
             ("assign_wcs", "bkg_subtract", "srctype", "flat_field", "extract_1d", "photom"),
             ("extract_1d", "combine_1d"), detectors=("NIS",), tso=True, ref_background=True),
        Mode("nis_wfss", ("NIS_WFSS",), "NIRISS",
             ("assign_wcs", "bkg_subtract", "flat_field", "extract_2d", "srctype", "photom", "extract_1d"),
             ("extract_1d", "combine_1d"), detectors=("NIS",), stage3_kind="slitless", source_rule="catalog",
             ref_background=True),
        Mode("nrc_wfss", ("NRC_WFSS", "NRC_GRISM"), "NIRCAM",
             ("assign_wcs", "bkg_subtract", "flat_field", "extract_2d", "srctype", "photom", "extract_1d"),
             ("extract_1d", "combine_1d"), detectors=("NRCALONG", "NRCBLONG"), stage3_kind="slitless",
             source_rule="catalog", ref_background=True),
    )
}

SPEC2_STEPS = tuple(dict.fromkeys(s for m in MODES.values() for s in m.spec2))
SPEC3_STEPS = tuple(dict.fromkeys(("assign_mtwcs", "exp_to_source") + tuple(
    s for m in MODES.values() for s in m.spec3)))


def check_implemented(mode, steps, path, stage=3):
    """InputError naming ``path``, the mode and the first of ``steps`` not written for ``mode``
    (called when the workflow is planned: nothing is dropped silently). ``stage`` 2: a Stage 2
    chain (an IFU mode's cube_build and extract_1d there are not its Stage 3 path)."""
    missing = [s for s in steps if s not in mode.implemented]
    if missing:
        raise InputError(path, f"mode {mode.name}: step {missing[0]} is not implemented for this mode"
                         + (f" (nor {', '.join(missing[1:])})" if missing[1:] else ""))
    if stage != 2 and mode.stage3_kind not in STAGE3_WRITTEN and any(s in mode.spec3 for s in steps):
        raise InputError(path, f"mode {mode.name}: the Stage 3 path for {mode.stage3_kind} is not implemented")


def known_mode(exp_type):
    """The mode of an EXP_TYPE (or mode name), or None when it is empty or not one of ours: for
    code that only asks a mode's flags and treats other exposures as the general case."""
    try:
        return mode_by_name(exp_type) if str(exp_type or "").strip() else None
    except KeyError:
        return None


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
