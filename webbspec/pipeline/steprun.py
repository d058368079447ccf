"""run_step: one step on one file, as a workflow job and ``webbspec step`` run it.

Read the input (an association: its first science member), check the reference selection and
that the steps the input needs have run (a step module's ``NEEDS``), call the step's pure ``run``,
stamp provenance (WSVERS, R_<REFTYPE>, REFCTX) and write atomically. A step's output may be an
IFU cube (cube_build: one cube, the Stage 2 `_s3d`; datamodels reads and writes it as
:class:`webbspec.io.cubes.Cube`).
"""

import inspect
import os
import re

from .. import __version__
from ..errors import InputError
from ..io import datamodels
from ..io.cubes import Cube
from ..io.provenance import reference_cards
from ..io.refs import check_selection
from ..modes import mode_for
from ..steps import STEPS, load, parameters

__all__ = ["run_step", "call_step", "read_input", "science_input", "check_needs", "output_name"]

# The official status keyword (cal_step) of each step a step module can name in NEEDS.
STATUS = {"assign_wcs": "S_WCS", "extract_2d": "S_EXTR2D", "srctype": "S_SRCTYP", "extract_1d": "S_EXTR1D",
          "cube_build": "S_IFUCUB"}

# Product suffixes the official strun drops from an input name (with the step aliases) before
# adding the step's own: x_rate.fits, x_assign_wcs.fits -> x_flat_field.fits.
PRODUCT_SUFFIXES = ("uncal", "rate", "rateints", "cal", "calints", "bsub", "bsubints", "s2d", "s3d",
                    "x1d", "x1dints", "c1d", "crf", "crfints", "mbsub", "i2d")


def _read_extra(value):
    if isinstance(value, (list, tuple)):
        return [datamodels.read(v) for v in value]
    return datamodels.read(value)


def science_input(path):
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


def call_step(name, model, refs=None, params=None, extra_inputs=None, context=None, cards=None, where=None,
              several=False):
    """Run step ``name`` on the in-memory ``model`` (read from ``where``) and stamp provenance;
    returns the new model. Arguments as :func:`run_step`; ``several``: a cube_build that makes
    several cubes returns them all (a list), else that is an error (a chain's step file holds one)."""
    module = load(name)
    params = dict(params or {})
    accepted = inspect.signature(module.run).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = [] if takes_any else sorted(set(params) - set(accepted))
    if unknown:
        known = ", ".join(parameters(name))
        raise InputError(name, f"step does not take parameter(s) {', '.join(unknown)}; known: {known}")
    refs = {rt: (refs or {}).get(rt, "N/A") for rt in getattr(module, "REFTYPES", ())}
    mode = mode_for(model.primary, where or model.path or name)   # unknown EXP_TYPE: one line naming the file
    check_selection(refs, model.primary)   # a selection deferred as its rmap fails here, naming both
    check_needs(name, model, mode, where or model.path or name)
    extras = {k: _read_extra(v) for k, v in (extra_inputs or {}).items()}
    result = module.run(model, refs, **extras, **params)
    if isinstance(result, list) and not (several and len(result) > 1):    # cube_build: the exposure's cubes
        result = _one_cube(result, where or model.path or name)
    stamps = {"WSVERS": (__version__, "webbspec version"), **reference_cards(refs, context), **(cards or {})}
    for one in result if isinstance(result, list) else [result]:
        for key, card in stamps.items():     # WSVERS, R_<REFTYPE>, REFCTX
            one.primary[key] = card
    return result


def _one_cube(cubes, where):
    """The cube of a Stage 2 cube_build (one file per step: the official calwebb_spec2 runs it with
    output_type "multi", one `_s3d` per exposure); several cubes are an InputError naming them."""
    if len(cubes) != 1:
        names = ", ".join(c.name or "?" for c in cubes)
        raise InputError(where, f"cube_build made {len(cubes)} cubes ({names}); one step file holds one: "
                                "set cube_build output_type to multi (the calwebb_spec2 value)")
    return cubes[0]


def _has_run(step, model):
    """Whether ``step`` has run on ``model`` (its status keyword is COMPLETE); slits that all have
    a name (SLTNAME) were cut by extract_2d, whatever the keywords say, and extract_2d runs only
    after assign_wcs."""
    slits = getattr(model, "slits", None)
    if step == "cube_build" and isinstance(model, Cube):
        return True                         # a cube, whatever made it
    if step == "extract_2d" and slits and all(s.name for s in slits):
        return True
    if step == "assign_wcs" and _has_run("extract_2d", model):
        return True
    return str(model.primary.get(STATUS[step], "")).strip().upper() == "COMPLETE"


def check_needs(name, model, mode, where):
    """InputError naming ``where`` unless the steps that step ``name`` needs (its module's
    ``NEEDS``, those its mode runs before it) have run on ``model``: e.g. resample_spec on a
    NIRSpec full-frame image that extract_2d never split into slits."""
    chain = list(mode.spec2)
    before = chain[:chain.index(name)] if name in chain else chain
    missing = [n for n in getattr(load(name), "NEEDS", ()) if n in before and not _has_run(n, model)]
    if missing:
        states = ", ".join(f"{STATUS[n]} {model.primary.get(STATUS[n]) or 'missing'}" for n in missing)
        raise InputError(where, f"{name} needs {' and '.join(missing)} to have run on its input first "
                                f"({states}): run `webbspec step {missing[0]}` on it")


def output_name(name, input_path):
    """The file ``webbspec step NAME INPUT`` writes, named as the official strun does:
    ``<input without its product or step suffix>_<NAME>.fits`` in the current directory (an
    association: its first science member's name)."""
    stem = os.path.basename(science_input(input_path)).removesuffix(".fits")
    known = "|".join(PRODUCT_SUFFIXES + tuple(STEPS))
    root = re.match(rf"^(.+?)(_({known}))?$", stem).group(1)
    return f"{root}_{name}.fits"


def read_input(path):
    """The model a step reads from ``path`` (an association: its first science member)."""
    path = science_input(path)
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
    result = call_step(name, model, refs, params, extra_inputs, context, cards, where, several=True)
    if isinstance(result, list):     # cube_build with output_type band / channel: one file per cube
        return [datamodels.write(cube, cube_path(output_path, cube)) for cube in result]
    datamodels.write(result, output_path)
    return output_path


def cube_path(output_path, cube):
    """Where :func:`run_step` writes one of several cubes: ``<root>_<cube name>_s3d.fits`` beside
    ``output_path`` (``<root>_cube_build.fits`` or ``<root>_s3d.fits``), as the official strun names them."""
    root = re.sub(r"(_cube_build|_s3d)?\.fits$", "", str(output_path))
    return f"{root}_{cube.name}_s3d.fits"
