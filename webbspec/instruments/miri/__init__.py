"""MIRI instrument models (the MRS WCS from the official reference files: ``mrs``).

The MRS exposure type and mode name live here (mode knowledge stays in modes.py / instruments/).
"""

MRS_EXP_TYPE = "MIR_MRS"
MRS_MODE = "mir_mrs"


def is_mrs(exp_type):
    """True for a MIRI MRS exposure type."""
    return str(exp_type or "").strip().upper() == MRS_EXP_TYPE
