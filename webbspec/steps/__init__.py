"""The step library: one module per official step alias, loaded on first use.

Each ``webbspec.steps.<alias>`` module has ``REFTYPES`` and ``run(model, refs, **params)``
(see docs/internals.md). The file-to-file wrapper the workflow and ``webbspec step`` use is
:func:`webbspec.pipeline.steprun.run_step`.
"""

import ast
import importlib
import inspect
import os
import textwrap
from functools import lru_cache

from ..errors import InputError
from ..modes import SPEC2_STEPS, SPEC3_STEPS

__all__ = ["STEPS", "EXTRA_KEYWORDS", "load", "reftypes", "parameters", "unused_parameters", "available"]

# alias -> module; exp_to_source is a Stage 3 function (webbspec.pipeline.exp_to_source), not a step.
STEPS = {alias: f"{__name__}.{alias}" for alias in dict.fromkeys(SPEC2_STEPS + SPEC3_STEPS)
         if alias != "exp_to_source"}


# Keyword arguments of run() that carry models from other files, not parameters.
EXTRA_KEYWORDS = {"backgrounds", "imprints", "background_x1d"}


def load(name):
    """The module of step ``name`` (imported lazily: heavy imports only for steps that run)."""
    if name not in STEPS:
        raise InputError(name, f"unknown step; known: {', '.join(sorted(STEPS))}")
    try:
        return importlib.import_module(STEPS[name])
    except ModuleNotFoundError as exc:
        if exc.name == STEPS[name]:
            raise InputError(name, "step is not implemented yet") from None
        raise


def available():
    """Aliases whose module exists (without importing them)."""
    here = os.path.dirname(__file__)
    return [a for a in STEPS if os.path.exists(os.path.join(here, f"{a}.py"))]


def reftypes(name):
    return tuple(getattr(load(name), "REFTYPES", ()))


def parameters(name):
    """``{param: default}`` of the step's keyword-only parameters (extra-input keywords excluded)."""
    sig = inspect.signature(load(name).run)
    extra = set(getattr(load(name), "EXTRA_INPUTS", ())) | EXTRA_KEYWORDS
    return {p.name: p.default for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in extra}


@lru_cache(maxsize=None)
def unused_parameters(name):
    """Official parameters ``run`` accepts (a configuration written for the official step works
    unchanged) but never reads: options of other modes or of the official implementation we
    replace. Read off the source of ``run`` itself, so the list cannot go stale."""
    run = inspect.unwrap(load(name).run)
    fn = ast.parse(textwrap.dedent(inspect.getsource(run))).body[0]
    used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
    return tuple(p for p in parameters(name) if p not in used)
