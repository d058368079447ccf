"""Workflow configuration: defaults, overrides, schema validation and per-step parameters.

``config/config.yaml`` holds every default (official step aliases, parameter names and
defaults under ``spec2:``/``spec3:``, plus workflow keys); ``config/config.schema.yaml`` checks it
with ``additionalProperties: false`` at every level, so a misspelt step or parameter is an
:class:`~webbspec.errors.InputError` naming the key. Overrides (``--configfile``) have the same
structure and are deep-merged; ``modes: {<mode>: {spec2|spec3: ...}}`` overrides per mode.
"""

import copy
import difflib
import os
from functools import lru_cache

from ..errors import InputError

__all__ = ["workflow_root", "defaults", "schema", "merge", "validate", "load", "step_params",
           "stage_params", "export", "unused_report", "CONFIG_PATH", "SCHEMA_PATH"]


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


def validate(config, source="config"):
    """Check ``config`` against the schema; the first problem is an InputError naming the key."""
    import jsonschema

    sch = schema()
    validator = jsonschema.Draft202012Validator(sch)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if not errors:
        return config
    err = errors[0]
    path = list(err.path)
    if err.validator == "additionalProperties":
        known = set((err.schema.get("properties") or {}))
        extra = sorted(set(err.instance) - known)
        key = extra[0] if extra else "?"
        what = _kind_of_key(path)
        hint = difflib.get_close_matches(key, sorted(known), n=1)
        where = f" in {_dotted(path)}" if path else ""
        msg = f"unknown {what} {key!r}{where}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        raise InputError(source, msg)
    raise InputError(source, f"{_dotted(path)}: {err.message}")


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
