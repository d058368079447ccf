"""The simulator: writes complete program directories that serve as the pipeline's test oracle.

``simulate(mode, outdir, seed=0, scale="small")`` writes `_rate` files, associations, the
reference store (``refs/`` with ``webbspec_0001.context.yaml``) and the truth (``truth/``). The
instrument effects are applied forward by the simulator's own code (``nirspec_fs``), never by the
pipeline's steps. Same seed -> identical bytes.
"""

from ..errors import InputError
from ..modes import MODES
from .fs_program import simulate_nrs_fs

__all__ = ["simulate", "SIMULATORS"]

SIMULATORS = {"nrs_fs": simulate_nrs_fs}


def simulate(mode, outdir, seed=0, scale="small"):
    """Write a simulated program for ``mode`` (name or EXP_TYPE) into ``outdir``; returns a dict."""
    key = str(mode).strip()
    name = key.lower() if key.lower() in MODES else next(
        (m.name for m in MODES.values() if key.upper() in m.exp_types), None)
    if name is None:
        raise InputError(mode, f"unknown mode; known: {', '.join(MODES)}")
    if name not in SIMULATORS:
        raise InputError(name, f"mode is not simulated yet; simulated: {', '.join(SIMULATORS)}")
    if scale not in ("small", "full"):
        raise InputError(scale, "unknown scale; use 'small' or 'full'")
    return SIMULATORS[name](str(outdir), seed=int(seed), scale=scale)
