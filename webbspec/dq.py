"""JWST data-quality bit values (uint32), the same numbers the official pipeline writes."""

__all__ = ["FLAGS", "DO_NOT_USE", "OUTLIER", "NON_SCIENCE", "NO_FLAT_FIELD", "GOOD", "flag"]

FLAGS = {
    "GOOD": 0,
    "DO_NOT_USE": 1 << 0,
    "SATURATED": 1 << 1,
    "JUMP_DET": 1 << 2,
    "DROPOUT": 1 << 3,
    "OUTLIER": 1 << 4,
    "PERSISTENCE": 1 << 5,
    "AD_FLOOR": 1 << 6,
    "CHARGELOSS": 1 << 7,
    "RESERVED": 1 << 8,
    "NON_SCIENCE": 1 << 9,
    "DEAD": 1 << 10,
    "HOT": 1 << 11,
    "WARM": 1 << 12,
    "LOW_QE": 1 << 13,
    "RC": 1 << 14,
    "TELEGRAPH": 1 << 15,
    "NONLINEAR": 1 << 16,
    "BAD_REF_PIXEL": 1 << 17,
    "NO_FLAT_FIELD": 1 << 18,
    "NO_GAIN_VALUE": 1 << 19,
    "NO_LIN_CORR": 1 << 20,
    "NO_SAT_CHECK": 1 << 21,
    "UNRELIABLE_BIAS": 1 << 22,
    "UNRELIABLE_DARK": 1 << 23,
    "UNRELIABLE_SLOPE": 1 << 24,
    "UNRELIABLE_FLAT": 1 << 25,
    "OPEN": 1 << 26,
    "ADJ_OPEN": 1 << 27,
    "FLUX_ESTIMATED": 1 << 28,
    "MSA_FAILED_OPEN": 1 << 29,
    "OTHER_BAD_PIXEL": 1 << 30,
    "REFERENCE_PIXEL": 1 << 31,
}

GOOD = FLAGS["GOOD"]
DO_NOT_USE = FLAGS["DO_NOT_USE"]
OUTLIER = FLAGS["OUTLIER"]
NON_SCIENCE = FLAGS["NON_SCIENCE"]
NO_FLAT_FIELD = FLAGS["NO_FLAT_FIELD"]


def flag(*names):
    """OR of the named flags, e.g. ``flag("DO_NOT_USE", "OUTLIER") == 17``."""
    value = 0
    for name in names:
        value |= FLAGS[name]
    return value
