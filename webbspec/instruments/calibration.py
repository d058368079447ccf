"""Mode knowledge of the Stage 2 calibration steps (flat_field, pathloss, photom, extract_1d).

The exposure types each official rule applies to; the steps ask here instead of naming modes.
"""

__all__ = ["NIRSPEC_FIXED_SLIT", "FLAT_ROW_BY_SLIT", "SOURCE_POSITION_EXTRACTION",
           "PHOTOM_PER_SLIT", "is_fixed_slit"]

NIRSPEC_FIXED_SLIT = "NRS_FIXEDSLIT"

# NIRSpec exposure types whose FAST_VARIATION rows (fflat/sflat/dflat) are chosen by slit name
# (the official FIXED_SLIT_TYPES); any other type takes the first row.
FLAT_ROW_BY_SLIT = ("NRS_LAMP", "NRS_AUTOWAVE", "NRS_BRIGHTOBJ", "NRS_FIXEDSLIT")

# extract_1d: use_source_posn defaults to True for point sources in these types (official).
SOURCE_POSITION_EXTRACTION = ("MIR_LRS-FIXEDSLIT", "NRS_FIXEDSLIT", "NRS_MSASPEC", "NRS_BRIGHTOBJ")

# photom / area / apcorr: rows matched on filter + grating + slit name (else filter + grating).
PHOTOM_PER_SLIT = ("NRS_FIXEDSLIT", "NRS_BRIGHTOBJ", "NRS_LAMP")


def is_fixed_slit(exp_type):
    return str(exp_type or "").strip().upper() in FLAT_ROW_BY_SLIT

