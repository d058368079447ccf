"""The local reference store: numbered contexts that map header selectors to reference files.

A store directory holds reference files and ``webbspec_NNNN.context.yaml`` files::

    context: webbspec_0002
    references:
      flat:
        - match: {INSTRUME: NIRSPEC, EXP_TYPE: NRS_FIXEDSLIT, DETECTOR: NRS1}
          file: nirspec_fs_flat_g395m_nrs1_0001.fits

For each reference type the first rule whose every key equals the PRIMARY keyword (case-
insensitive; a list means any of; "*" anything, even a missing keyword) wins; no rule -> "N/A".
The newest context (highest number) is used unless one is named. A context that names a file
missing from the store is an :class:`InputError` naming the context file and the missing file,
raised when that file is selected (``strict=True``) -- or, by default, deferred: the selection
comes back as the context file's path (an existing file, so the workflow's job for that exposure
depends on the context and is planned), and the step that gets it raises the error
(:func:`webbspec.pipeline.steprun.run_step`, :mod:`webbspec.pipeline.stage3`). Exposures that select only files that
exist are not affected.
"""

import glob
import os
import re

import yaml

from ..errors import InputError
from .provenance import REF_KEYWORDS, reference_cards, reference_keyword  # noqa: F401

__all__ = ["bestrefs", "list_contexts", "load_context", "context_path", "diff_contexts", "match_rule",
           "CONTEXT_SUFFIX", "check_selection"]

_SUFFIX = CONTEXT_SUFFIX = ".context.yaml"
_CACHE = {}


def list_contexts(store_dir):
    """Context names in the store, oldest first (sorted by their number, then name)."""
    names = [os.path.basename(p)[:-len(_SUFFIX)] for p in glob.glob(os.path.join(str(store_dir), "*" + _SUFFIX))]

    def key(name):
        m = re.search(r"(\d+)$", name)
        return (int(m.group(1)) if m else -1, name)
    return sorted(names, key=key)


def context_path(store_dir, context=None):
    """Path of context ``context`` (name, file name or path); the newest when None."""
    store_dir = str(store_dir)
    if context:
        context = str(context)
        if os.path.isfile(context):
            return context
        name = context if context.endswith(_SUFFIX) else context + _SUFFIX
        path = os.path.join(store_dir, os.path.basename(name))
        if not os.path.isfile(path):
            raise InputError(path, "reference context does not exist")
        return path
    if not os.path.isdir(store_dir):
        raise InputError(store_dir, "reference store directory does not exist")
    names = list_contexts(store_dir)
    if not names:
        raise InputError(store_dir, f"no *{_SUFFIX} context in the reference store")
    return os.path.join(store_dir, names[-1] + _SUFFIX)


def load_context(store_dir, context=None, strict=True):
    """(context path, {reftype: [(match dict, file path)]}) validated.

    ``strict``: every file named must exist (else InputError naming the context and the file);
    otherwise a missing file is kept as ``(match, _Missing(name))`` for :func:`bestrefs`.
    """
    path = context_path(store_dir, context)
    _, rules = _load_rules(path)
    if strict:
        for reftype, entries in rules.items():
            for _, fpath in entries:
                if isinstance(fpath, _Missing):
                    raise InputError(path, f"references.{reftype} names missing file {fpath}")
    return path, rules


class _Missing(str):
    """A file name a context gives that is not in the store."""


def _load_rules(path):
    stamp = os.stat(path).st_mtime_ns
    hit = _CACHE.get(path)
    if hit and hit[0] == stamp:
        return path, hit[1]
    try:
        with open(path) as fh:
            tree = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"unreadable context ({type(exc).__name__})") from None
    if not isinstance(tree, dict) or not isinstance(tree.get("references"), dict):
        raise InputError(path, "context has no 'references' mapping")
    base = os.path.dirname(path)
    rules = {}
    for reftype, entries in tree["references"].items():
        if not isinstance(entries, list):
            raise InputError(path, f"references.{reftype} must be a list of rules")
        out = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "file" not in entry or not isinstance(entry.get("match", {}), dict):
                raise InputError(path, f"references.{reftype}[{i}] needs 'match' (mapping) and 'file'")
            fname = str(entry["file"])
            fpath = fname if os.path.isabs(fname) else os.path.join(base, fname)
            if fname.upper() != "N/A" and not os.path.isfile(fpath):
                fpath = _Missing(fname)
            out.append(({str(k).upper(): v for k, v in (entry.get("match") or {}).items()},
                        "N/A" if fname.upper() == "N/A" else fpath))
        rules[str(reftype).lower()] = out
    _CACHE[path] = (stamp, rules)
    return path, rules


def _norm(value):
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value).strip().upper()


def match_rule(match, header):
    """True when every selector of ``match`` agrees with ``header``."""
    for key, want in match.items():
        wants = want if isinstance(want, (list, tuple)) else [want]
        if any(_norm(w) == "*" for w in wants):
            continue
        if key not in header:
            return False
        if _norm(header[key]) not in {_norm(w) for w in wants}:
            return False
    return True


def bestrefs(header, reftypes, store_dir, context=None, strict=False):
    """{reftype: path (store_dir joined) or "N/A"} for the PRIMARY ``header``.

    A selected file missing from the store: ``strict`` raises InputError naming the context and
    the file; otherwise the value is the context file's path (see the module docstring and
    :func:`check_selection`).
    """
    ctx, rules = load_context(store_dir, context, strict=False)
    out = {}
    for rt in reftypes:
        out[rt] = "N/A"
        for match, path in rules.get(str(rt).lower(), ()):
            if match_rule(match, header):
                if isinstance(path, _Missing):
                    if strict:
                        raise InputError(ctx, f"references.{str(rt).lower()} names missing file {path}")
                    path = ctx
                out[rt] = str(path)
                break
    return out


def check_selection(refs, header):
    """Raise the deferred error of a selection that came back as the context path (``refs``:
    {reftype: path}); ``header`` is the PRIMARY header the selection was made for."""
    for rt, path in (refs or {}).items():
        if str(path).endswith(CONTEXT_SUFFIX):
            bestrefs(header, (rt,), os.path.dirname(os.path.abspath(str(path))), str(path), strict=True)
            raise InputError(path, f"the context gives no usable {rt} reference")


def diff_contexts(store_dir, old, new, headers, reftypes=None):
    """Selections that change between contexts ``old`` and ``new``.

    ``headers``: {name: PRIMARY header}. Returns a list of (name, reftype, old path or "N/A",
    new path or "N/A"), for ``reftypes`` (default: every reftype of either context).
    """
    _, r_old = load_context(store_dir, old)
    _, r_new = load_context(store_dir, new)
    types = tuple(reftypes) if reftypes is not None else tuple(sorted(set(r_old) | set(r_new)))
    changes = []
    for name, hdr in sorted(headers.items()):
        a = bestrefs(hdr, types, store_dir, old)
        b = bestrefs(hdr, types, store_dir, new)
        changes += [(name, rt, a[rt], b[rt]) for rt in types if a[rt] != b[rt]]
    return changes
