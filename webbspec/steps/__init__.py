"""The step library: one module per official step alias, loaded on first use.

Each ``webbspec.steps.<alias>`` module has ``REFTYPES`` and ``run(model, refs, **params)``
(see docs/internals.md). :func:`run_step` is the file-to-file wrapper the workflow and
``webbspec step`` use: read, call, stamp provenance, write atomically.
"""

import importlib
import inspect
import os

from ..errors import InputError
from ..modes import SPEC2_STEPS, SPEC3_STEPS, mode_for

__all__ = ["STEPS", "load", "reftypes", "parameters", "run_step", "available"]

# alias -> module; exp_to_source is a Stage 3 function (webbspec.exp_to_source), not a step.
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


def _read_extra(value):
    from .. import datamodels

    if isinstance(value, (list, tuple)):
        return [datamodels.read(v) for v in value]
    return datamodels.read(value)


def _science_input(path):
    """An association as input (as strun takes one): its first product's science member.

    The association is read with every member checked, so a bad one fails here naming it.
    """
    if not str(path).endswith(".json"):
        return path
    from .. import associations
    from ..program import input_error

    err = input_error(path)   # what workflow discovery found wrong with it (a program's view)
    if err is not None:
        raise err
    asn = associations.read(path, check_files=True)
    return asn.products[0].science[0].path


def _check_refs(refs, header):
    """A selection the workflow got as the context file itself (the context names a reference
    file missing from the store; see :func:`webbspec.refs.bestrefs`) fails here, naming both."""
    if any(str(p).endswith(".context.yaml") for p in refs.values()):
        from ..refs import check_selection

        check_selection(refs, header)


def run_step(name, input_path, output_path, refs=None, params=None, extra_inputs=None, context=None,
             cards=None):
    """Run step ``name`` on one file and write the result atomically; returns ``output_path``.

    ``refs``: {reftype: path or "N/A"} (missing reftypes are "N/A"); ``params``: official
    parameter names; ``extra_inputs``: {keyword: path or [paths]} read into models (e.g.
    ``backgrounds`` for bkg_subtract); ``context``: the reference context name stamped as REFCTX;
    ``cards``: more PRIMARY keywords to write ({keyword: value or (value, comment)}).
    """
    from .. import __version__, datamodels

    module = load(name)
    params = dict(params or {})
    accepted = inspect.signature(module.run).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [] if takes_any else sorted(set(params) - set(accepted))
    if unknown:
        known = ", ".join(parameters(name))
        raise InputError(name, f"step does not take parameter(s) {', '.join(unknown)}; known: {known}")
    refs = {rt: (refs or {}).get(rt, "N/A") for rt in getattr(module, "REFTYPES", ())}
    input_path = _science_input(input_path)
    model = datamodels.read(input_path)
    mode_for(model.primary, input_path)        # unknown EXP_TYPE: one line naming the file
    _check_refs(refs, model.primary)
    extras = {k: _read_extra(v) for k, v in (extra_inputs or {}).items()}
    result = module.run(model, refs, **extras, **params)
    result.primary["WSVERS"] = (__version__, "webbspec version")
    from ..provenance import reference_cards

    for key, card in {**reference_cards(refs, context), **(cards or {})}.items():   # R_<REFTYPE>, REFCTX
        result.primary[key] = card
    datamodels.write(result, output_path)
    return output_path
