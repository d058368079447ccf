"""run_step: one step on one file, as a workflow job and ``webbspec step`` run it.

Read the input (an association: its first science member), check the reference selection, call
the step's pure ``run``, stamp provenance (WSVERS, R_<REFTYPE>, REFCTX) and write atomically.
"""

import inspect

from .. import __version__
from ..errors import InputError
from ..io import datamodels
from ..io.provenance import reference_cards
from ..io.refs import check_selection
from ..modes import mode_for
from ..steps import load, parameters

__all__ = ["run_step", "call_step", "read_input"]


def _read_extra(value):
    if isinstance(value, (list, tuple)):
        return [datamodels.read(v) for v in value]
    return datamodels.read(value)


def _science_input(path):
    """An association as input (as strun takes one): its first product's science member.

    The association is read with every member checked, so a bad one fails here naming it.
    """
    if not str(path).endswith(".json"):
        return path
    from ..io import associations
    from .program import input_error

    err = input_error(path)   # what workflow discovery found wrong with it (a program's view)
    if err is not None:
        raise err
    asn = associations.read(path, check_files=True)
    return asn.products[0].science[0].path


def call_step(name, model, refs=None, params=None, extra_inputs=None, context=None, cards=None, where=None):
    """Run step ``name`` on the in-memory ``model`` (read from ``where``) and stamp provenance;
    returns the new model. Arguments as :func:`run_step`."""
    module = load(name)
    params = dict(params or {})
    accepted = inspect.signature(module.run).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [] if takes_any else sorted(set(params) - set(accepted))
    if unknown:
        known = ", ".join(parameters(name))
        raise InputError(name, f"step does not take parameter(s) {', '.join(unknown)}; known: {known}")
    refs = {rt: (refs or {}).get(rt, "N/A") for rt in getattr(module, "REFTYPES", ())}
    mode_for(model.primary, where or model.path or name)     # unknown EXP_TYPE: one line naming the file
    check_selection(refs, model.primary)   # a selection deferred as its rmap fails here, naming both
    extras = {k: _read_extra(v) for k, v in (extra_inputs or {}).items()}
    result = module.run(model, refs, **extras, **params)
    result.primary["WSVERS"] = (__version__, "webbspec version")
    for key, card in {**reference_cards(refs, context), **(cards or {})}.items():   # R_<REFTYPE>, REFCTX
        result.primary[key] = card
    return result


def read_input(path):
    """The model a step reads from ``path`` (an association: its first science member)."""
    path = _science_input(path)
    return datamodels.read(path), path


def run_step(name, input_path, output_path, refs=None, params=None, extra_inputs=None, context=None,
             cards=None):
    """Run step ``name`` on one file and write the result atomically; returns ``output_path``.

    ``refs``: {reftype: path or "N/A"} (missing reftypes are "N/A"); ``params``: official
    parameter names; ``extra_inputs``: {keyword: path or [paths]} read into models (e.g.
    ``backgrounds`` for bkg_subtract); ``context``: the reference context name stamped as REFCTX;
    ``cards``: more PRIMARY keywords to write ({keyword: value or (value, comment)}).
    """
    model, where = read_input(input_path)
    result = call_step(name, model, refs, params, extra_inputs, context, cards, where)
    datamodels.write(result, output_path)
    return output_path
