"""Workflow configuration: defaults, overrides, schema validation and per-step parameters.

``config/config.yaml`` holds every default (official step aliases, parameter names and
defaults under ``spec2:``/``spec3:``, plus workflow keys); ``config/config.schema.yaml`` checks it
with ``additionalProperties: false`` at every level, so a misspelt step or parameter is an
:class:`~webbspec.errors.InputError` naming the key. Overrides (``--configfile``) have the same
structure and are deep-merged; ``modes: {<mode>: {spec2|spec3: ...}}`` overrides per mode.
Every step parameter has a type and, where it has one, a range in the schema; the schema's own
keywords ``x-numbers``, ``x-dqflags`` and ``x-expect`` (see its header) are checked here, so a bad
value is one InputError naming its key and what was expected, before anything runs.
"""

import copy
import difflib
import math
import os
from functools import lru_cache

from ..errors import InputError

__all__ = ["workflow_root", "defaults", "schema", "merge", "validate", "validate_step", "step_value", "load",
           "step_params", "stage_params", "skipped_steps", "export", "unused_report", "CONFIG_PATH", "SCHEMA_PATH"]


def workflow_root():
    """The directory holding ``Snakefile``, ``rules/`` and ``config/``.

    In a source checkout (or editable install) that is the repository root next to the package;
    an installed wheel carries a copy as package data under ``webbspec/workflow``.
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the webbspec package
    for cand in (os.path.dirname(here), os.path.join(here, "workflow")):
        if os.path.exists(os.path.join(cand, "Snakefile")) and os.path.isdir(os.path.join(cand, "config")):
            return cand
    raise InputError(here, "cannot find the workflow (Snakefile, config/) next to the webbspec package")


CONFIG_PATH = os.path.join("config", "config.yaml")
SCHEMA_PATH = os.path.join("config", "config.schema.yaml")


def _yaml_load(path):
    import yaml
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise InputError(path, "config file does not exist") from None
    except yaml.YAMLError as exc:
        raise InputError(path, f"malformed YAML ({' '.join(str(exc).split())})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(path, "config must be a mapping of keys to values")
    return data


@lru_cache(maxsize=1)
def _defaults_cached():
    return _yaml_load(os.path.join(workflow_root(), CONFIG_PATH))


def defaults():
    """A fresh copy of config/config.yaml."""
    return copy.deepcopy(_defaults_cached())


@lru_cache(maxsize=1)
def schema():
    return _yaml_load(os.path.join(workflow_root(), SCHEMA_PATH))


def merge(base, override):
    """Deep-merge ``override`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _dotted(path):
    return ".".join(str(p) for p in path) or "(top level)"


def _kind_of_key(path):
    """What an unexpected key at ``path`` would be: step, parameter, mode, stage or key."""
    if path and path[0] == "modes":
        return ("mode", "stage", "step", "parameter")[min(len(path) - 1, 3)]
    if path and path[0] in ("spec2", "spec3"):
        return "step" if len(path) == 1 else "parameter"
    return "key"


_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}


def _positive_numbers(value, count, integer):
    """Whether ``value`` is a string of ``count`` positive (whole, with ``integer``) numbers."""
    if not isinstance(value, str):
        return False
    try:
        vals = [(int if integer else float)(v) for v in value.split()]
    except ValueError:
        return False
    return len(vals) == count and all(math.isfinite(v) and v > 0 for v in vals)


def _check_numbers(validator, spec, value, schema):
    """``x-numbers: {count: N, type: number|integer}``: the official "string of N numbers"."""
    from jsonschema.exceptions import ValidationError

    integer = spec.get("type") == "integer"
    if not _positive_numbers(value, spec["count"], integer):
        what = f"{_COUNT_WORDS.get(spec['count'], spec['count'])} positive {'integers' if integer else 'numbers'}"
        example = f' ("{schema["examples"][0]}")' if schema.get("examples") else ""
        yield ValidationError(f"{value!r} is not {what}{example}")


def _dq_expression(text):
    """Whether ``text`` is DQ flags as good_bits takes them: '~DO_NOT_USE', 'OUTLIER+4', '0'."""
    from ..dq import FLAGS

    tokens = text.strip().removeprefix("~").replace("+", ",").split(",")
    return all(t.strip().upper() in FLAGS or t.strip().isdigit() for t in tokens)


def _check_dqflags(validator, enabled, value, schema):
    from jsonschema.exceptions import ValidationError

    if enabled and isinstance(value, str) and not _dq_expression(value):
        yield ValidationError(f"{value!r} is not DQ flag names or numbers joined by ',' or '+', "
                              f"optionally after '~' (\"~DO_NOT_USE\")")


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator,
                                       {"x-numbers": _check_numbers, "x-dqflags": _check_dqflags})
    return cls(schema())


def _first_error(config):
    errors = _validator().iter_errors(config)
    return min(errors, key=lambda e: (len(e.path), list(map(str, e.path))), default=None)


_RANGE_WORDS = {"minimum": "at least", "exclusiveMinimum": "greater than", "maximum": "at most",
                "exclusiveMaximum": "less than"}


def _number(text):
    """A finite number written as text (``1e-3``, which YAML 1.1 reads as a string), else None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _problem(err):
    """What is wrong with the value ``err`` is about, saying what was expected."""
    if "x-expect" in err.schema:
        return f"{err.instance!r} is not {err.schema['x-expect']}"
    if err.validator == "type" and isinstance(err.instance, str) and _number(err.instance) is not None:
        return f"{err.instance!r} is text, not a number (YAML reads 1e-3 as text: write 1.0e-3)"
    if err.validator in _RANGE_WORDS:
        return f"{err.instance!r} is not {_RANGE_WORDS[err.validator]} {err.validator_value}"
    return err.message


def _unknown_key(err):
    """(the first unknown key, the nearest known one or None) of an additionalProperties error."""
    known = sorted(err.schema.get("properties") or {})
    extra = sorted(set(err.instance) - set(known))
    key = extra[0] if extra else "?"
    hint = difflib.get_close_matches(key, known, n=1)
    return key, (hint[0] if hint else None)


def validate(config, source="config"):
    """Check ``config`` against the schema (names, types, ranges); the first problem is an
    InputError naming the key."""
    err = _first_error(config)
    if err is None:
        return config
    path = list(err.path)
    if err.validator == "additionalProperties":
        key, hint = _unknown_key(err)
        where = f" in {_dotted(path)}" if path else ""
        msg = f"unknown {_kind_of_key(path)} {key!r}{where}" + (f" (did you mean {hint!r}?)" if hint else "")
        raise InputError(source, msg)
    raise InputError(source, f"{_dotted(path)}: {_problem(err)}")


def _stage_of(step):
    """The stage whose schema has ``step`` (spec2 first: steps in both have the same entry)."""
    defs = schema()["$defs"]
    return next((st for st in ("spec2", "spec3") if step in defs[st]["properties"]), None)


def validate_step(step, values):
    """Check one step's parameters (``webbspec step NAME ... --KEY VALUE``) with the same schema;
    the first problem is an InputError naming ``NAME --KEY``."""
    stage = _stage_of(step)
    if stage is None:
        return values
    err = _first_error({stage: {step: values}})
    if err is None:
        return values
    path = list(err.path)[2:]
    if err.validator == "additionalProperties":
        key, hint = _unknown_key(err)
        raise InputError(step, f"unknown parameter --{key}" + (f" (did you mean --{hint}?)" if hint else ""))
    raise InputError(f"{step} --{_dotted(path)}", _problem(err))


def step_value(step, key, text):
    """A command-line value of a step parameter: YAML (``5`` -> 5, ``null`` -> None, ``[1, 2]``),
    but the text itself where the parameter is a string (``--snr 5`` is '5', ``--fillval 0``
    is '0', ``--channel 1`` is '1'), as the official strun reads it."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    stage = _stage_of(step)
    spec = schema()["$defs"][stage]["properties"][step]["properties"].get(key, {}) if stage else {}
    types = spec.get("type", [])
    types = [types] if isinstance(types, str) else types
    if isinstance(value, str) and "number" in types and _number(text) is not None:
        return _number(text)
    if value is None or isinstance(value, str):
        return value
    takes_text = ("string" in types or "x-numbers" in spec
                  or any(isinstance(v, str) for v in spec.get("enum", [])))
    return text if takes_text else value


def load(configfiles=(), overrides=None):
    """Defaults, then each YAML file in ``configfiles``, then ``overrides`` (a dict); validated."""
    cfg = defaults()
    for path in configfiles:
        data = _yaml_load(path)
        validate(data, source=path)
        cfg = merge(cfg, data)
    if overrides:
        validate(overrides, source="--config")
        cfg = merge(cfg, overrides)
    return validate(cfg)


def step_params(config, stage, step, mode=None):
    """Parameters of one step (official names) with the mode's overrides applied."""
    params = dict((config.get(stage) or {}).get(step) or {})
    if mode:
        over = ((config.get("modes") or {}).get(mode) or {}).get(stage, {}).get(step) or {}
        params.update(over)
    return params


def skipped_steps(config, stage, mode=None):
    """Steps whose parameters say ``skip: true`` (the official switch; only steps skipped by
    default have it, e.g. spec2.residual_fringe): the run leaves them out of the chain, no job, no
    file. ``config`` None: the defaults."""
    cfg = _defaults_cached() if config is None else config
    return {s for s in (cfg.get(stage) or {}) if step_params(cfg, stage, s, mode).get("skip") is True}


def stage_params(config, stage, steps, mode=None):
    """``{step: params}`` for the listed steps."""
    return {s: step_params(config, stage, s, mode) for s in steps}


def export(config, mode=None):
    """The full parameter set as a config mapping that ``--configfile`` accepts.

    With ``mode``, the spec2/spec3 sections hold only that mode's steps, with its overrides
    applied.
    """
    from ..modes import mode_by_name

    out = {k: copy.deepcopy(v) for k, v in config.items() if k not in ("spec2", "spec3", "modes")}
    if mode is None:
        out["spec2"] = copy.deepcopy(config.get("spec2", {}))
        out["spec3"] = copy.deepcopy(config.get("spec3", {}))
        out["modes"] = copy.deepcopy(config.get("modes", {}))
        return out
    m = mode_by_name(mode)
    out["spec2"] = stage_params(config, "spec2", m.spec2, m.name)
    s3 = [s for s in m.spec3 if s in (config.get("spec3") or {})]
    out["spec3"] = stage_params(config, "spec3", s3, m.name)
    return out


def unused_report(stage_steps):
    """One warning line per step that accepts official parameters it does not use, for the
    ``{stage: steps}`` a run executes (printed once per run, when the workflow is planned)."""
    from ..steps import unused_parameters

    lines = []
    for stage, names in stage_steps.items():
        for name in dict.fromkeys(names):
            unused = unused_parameters(name)
            if unused:
                lines.append(f"webbspec: warning: {stage}.{name} accepts but does not use the official "
                             f"parameter(s) {', '.join(unused)}")
    return lines
