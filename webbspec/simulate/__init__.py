"""The simulator: writes complete program directories that serve as the pipeline's test oracle.

``simulate(mode, outdir, seed=0, scale="small")`` writes `_rate` files, associations, the
reference store (``refs/``, a CRDS cache: ``mappings/jwst/webbspec_0001.pmap`` and its imap / rmaps,
``references/jwst/nirspec/``) and the truth (``truth/``). The
instrument effects are applied forward by the simulator's own code (``nirspec_fs``), never by the
pipeline's steps. Same seed -> identical bytes.
"""

import importlib
import inspect

from ..errors import InputError
from ..modes import MODES, mode_by_name

__all__ = ["simulate", "simulated_modes"]


def simulated_modes():
    """Names of the modes whose row names a simulator (Mode.simulator)."""
    return [m.name for m in MODES.values() if m.simulator]


def simulate(mode, outdir, seed=0, scale="small", **options):
    """Write a simulated program for ``mode`` (name or EXP_TYPE) into ``outdir``; returns a dict.
    ``options`` (e.g. ``nsources``): passed to the mode's simulator when not None; one it does
    not take is an InputError."""
    try:
        m = mode_by_name(mode)
    except KeyError:
        raise InputError(mode, f"unknown mode; known: {', '.join(MODES)}") from None
    if not m.simulator:
        raise InputError(m.name, f"mode is not simulated yet; simulated: {', '.join(simulated_modes())}")
    if scale not in ("small", "full"):
        raise InputError(scale, "unknown scale; use 'small' or 'full'")
    module, _, func = m.simulator.partition(":")
    simulator = getattr(importlib.import_module(module), func)
    options = {k: v for k, v in options.items() if v is not None}
    taken = inspect.signature(simulator).parameters
    for key in options:
        if key not in taken:
            raise InputError(m.name, f"the {m.name} simulator takes no --{key}")
    return simulator(str(outdir), seed=int(seed), scale=scale, **options)
