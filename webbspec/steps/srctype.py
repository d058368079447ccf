"""srctype: decide POINT or EXTENDED per slit (official rules, no reference files).

Single-source modes (MIR_LRS-FIXEDSLIT/SLITLESS, MIR_MRS, NRC_TSGRISM, NIS_SOSS, NRS_FIXEDSLIT,
NRS_BRIGHTOBJ, NRS_IFU): the first rule that applies wins -- ``source_type`` (user) -> BKGDTARG
true: EXTENDED -> TSO (TSOVISIT, or a TSO EXP_TYPE with NINTS >= 2): POINT -> SRCTYAPT (else
SRCTYPE) when POINT/EXTENDED -> PATTTYPE (DITHOPFR for MIR_MRS) containing "NOD" or
"POINT-SOURCE": POINT -> EXTENDED for MIR_MRS/NRS_IFU, else POINT. NRS_FIXEDSLIT: only the FXD_SLIT
slit gets that value (its SRCXPOS/SRCYPOS zeroed if EXTENDED); other slits EXTENDED.
NRS_MSASPEC: per slit, STLARITY < 0 or > 0.75 -> POINT, else EXTENDED. WFSS: per slit from IS_EXTND
(T -> EXTENDED) when present, else POINT. Sets SRCTYPE in each slit header
(and in PRIMARY for a single-slit layout); S_SRCTYP = COMPLETE. Which rule applies is the mode's
``source_rule`` (webbspec.modes); TSO and the dither keyword are mode properties too.
"""

from ..errors import InputError
from ._call import accepts_files

REFTYPES = ()
# steps that must have run on the input first, where its mode runs them (pipeline.steprun
# .check_needs): per-slit decisions (FS primary slit, MOS stellarity, WFSS catalogue)
NEEDS = ("extract_2d",)

_VALID = ("POINT", "EXTENDED")


def _true(value):
    return value is True or str(value).strip().upper() in ("T", "TRUE", "1")


def exposure_source_type(primary, mode, user=None):
    """The single-source decision for an exposure of ``mode`` (see module docstring)."""
    if user is not None:
        value = str(user).strip().upper()
        if value not in _VALID:
            raise InputError("srctype", f"source_type must be POINT or EXTENDED, not {user!r}")
        return value
    if _true(primary.get("BKGDTARG", False)):
        return "EXTENDED"
    nints = int(primary.get("NINTS", 1) or 1)
    if _true(primary.get("TSOVISIT", False)) or (mode.tso and nints >= 2):
        return "POINT"
    for key in ("SRCTYAPT", "SRCTYPE"):
        value = str(primary.get(key, "") or "").strip().upper()
        if value in _VALID:
            return value
    pattern = str(primary.get(mode.pattern_keyword, "") or "").upper()
    if "NOD" in pattern or "POINT-SOURCE" in pattern:
        return "POINT"
    return "EXTENDED" if mode.source_rule == "single_extended" else "POINT"


def _per_slit(out, source_type, decide):
    for slit in out.slits:
        if source_type is not None:
            slit.header["SRCTYPE"] = exposure_source_type(out.primary, out.mode, source_type)
        else:
            slit.header["SRCTYPE"] = decide(slit.header)


def _stellarity(header):
    st = header.get("STLARITY")
    s = float(st) if st is not None else -1.0
    return "POINT" if (s < 0 or s > 0.75) else "EXTENDED"


def _catalog(header):
    return "EXTENDED" if _true(header.get("IS_EXTND", False)) else "POINT"


@accepts_files
def run(model, refs=None, *, source_type=None):
    """Set SRCTYPE on a copy of ``model`` (headers only: the arrays are shared)."""
    out = model.copy(arrays=False)
    mode, p = out.mode, out.primary
    if mode.source_rule in ("single", "single_extended"):
        value = exposure_source_type(p, mode, source_type)
        if mode.fixed_slits and out.layout == "multi":
            primary_slit = str(p.get("FXD_SLIT", "")).strip().upper()
            for slit in out.slits:
                if slit.name.upper() == primary_slit:
                    slit.header["SRCTYPE"] = value
                    if value == "EXTENDED":
                        slit.header["SRCXPOS"], slit.header["SRCYPOS"] = 0.0, 0.0
                else:
                    slit.header["SRCTYPE"] = "EXTENDED"
        else:
            for slit in out.slits:
                slit.header["SRCTYPE"] = value
            p["SRCTYPE"] = value
    elif mode.source_rule == "stellarity":
        _per_slit(out, source_type, _stellarity)
        p.remove("SRCTYPE", ignore_missing=True)
    else:
        _per_slit(out, source_type, _catalog)
    p["S_SRCTYP"] = "COMPLETE"
    return out
