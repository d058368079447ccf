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
(:func:`webbspec.steps.run_step`, :mod:`webbspec.stage3`). Exposures that select only files that
exist are not affected.
"""

import glob
import os
import re

import yaml

from .errors import InputError
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


def remake_plan(program_dir, store_dir, old, new, config=None):
    """What the workflow re-makes in ``program_dir`` when the context goes from ``old`` to ``new``.

    Mirrors the workflow's selection (rules/common.smk: a Stage 2 step's references on its
    exposure's header, a Stage 3 product's on its first science exposure's). Returns a dict:
    ``changes`` [(exposure or product, step, reftype, old file, new file)], ``spec2``
    {exposure: [steps re-run]}, ``products`` [paths re-made, as far as the program directory
    shows them: Stage 3 products are read from the batch manifests of an earlier run], ``jobs``
    {rule: count} as ``snakemake -n`` plans them (``spec3_batch``: every batch of a product whose
    source table or references change), ``batches_run``: the batches among them holding affected
    sources, which are the ones that run once the source table is re-made.
    """
    from . import params as wsparams
    from . import program as wsprogram
    from . import steps as wssteps
    from .modes import MODES

    cfg = config if config is not None else wsparams.load([])
    nbatches, save_bsub = int(cfg["workflow"]["batches"]), bool(cfg["workflow"]["save_bsub"])
    p = wsprogram.discover(program_dir)
    root, out = p.root, wsprogram.OUT
    plan = {"changes": [], "spec2": {}, "products": [], "jobs": {}, "batches_run": 0}
    jobs = plan["jobs"]

    def count(rule, n=1):
        if n:
            jobs[rule] = jobs.get(rule, 0) + n

    def name_of(path):
        return os.path.basename(str(path)) if str(path).upper() != "N/A" else "N/A"

    remade = set()          # Stage 2 product paths (relative to the program) re-made
    chain_rules = (wsprogram.spec2_chain_rules(p.stage2)
                   if cfg["workflow"].get("spec2_jobs", "step") == "exposure" else {})
    for name, exp in sorted(p.stage2.items()):
        chain = wsprogram.spec2_chain(exp)
        first = None
        for i, step in enumerate(chain):
            types = wssteps.reftypes(step)
            if not types:
                continue
            a = bestrefs(exp.header, types, store_dir, old)
            b = bestrefs(exp.header, types, store_dir, new)
            for rt in types:
                if a[rt] != b[rt]:
                    plan["changes"].append((name, step, rt, name_of(a[rt]), name_of(b[rt])))
                    first = i if first is None else first
        if first is None:
            continue
        plan["spec2"][name] = chain[first:]
        if name in chain_rules:      # one job re-runs the exposure's whole chain
            count(chain_rules[name][0])
        for step in chain[first:] if name not in chain_rules else ():
            count(step)
        for kind, step in wsprogram.spec2_published(chain, exp.ints, save_bsub).items():
            if chain.index(step) >= first or name in chain_rules:
                remade.add(f"{out}/spec2/{name}_{kind}.fits")
                if name not in chain_rules:
                    count("spec2_product")
    plan["products"] += sorted(remade)

    if cfg["workflow"]["stage3"]:
        for key, prod in sorted(p.products.items()):
            types = tuple(dict.fromkeys(rt for s in MODES[prod.mode].spec3 for rt in wssteps.reftypes(s)))
            hdr = p.exposures[prod.science[0]].header
            a, b = bestrefs(hdr, types, store_dir, old), bestrefs(hdr, types, store_dir, new)
            plan["changes"] += [(key, "spec3", rt, name_of(a[rt]), name_of(b[rt])) for rt in types if a[rt] != b[rt]]
            exps = [e for e in prod.science if prod.cal[e] in remade]
            here = os.path.join(root, out, "spec3", key)
            tables = {e: wsprogram.exp_to_source_tables(here, e, os.path.join(root, prod.cal[e]),
                                                        cfg["workflow"]["split_mb"]) for e in prod.science}
            count("exp_to_source", sum(len(tables[e]) for e in exps))
            count("spec3_sources", 1 if exps else 0)
            every = a != b or any(bk in remade for bk in prod.backgrounds)
            if not (exps or every):
                continue
            count("spec3_batch", nbatches)
            affected = set()
            for e in (prod.science if every else exps):
                for tsv in tables[e]:
                    if os.path.exists(tsv):
                        affected.update(k for k, _ in wsprogram.read_sources(tsv))
            batches = range(nbatches) if a != b else sorted({wsprogram.batch_of(k, nbatches) for k in affected})
            plan["batches_run"] += len(batches)
            for m in sorted(glob.glob(os.path.join(here, "batches", "*.tsv"))):
                plan["products"] += [os.path.relpath(os.path.join(root, prd), root) if not os.path.isabs(prd)
                                     else prd for src, prd in _manifest_rows(m) if src in affected]
    if jobs:
        jobs["all"] = 1
    return plan


def _manifest_rows(path):
    """(source, product path) of a Stage 3 batch manifest (its ``source`` and ``product`` columns)."""
    with open(path) as f:
        lines = [ln.rstrip("\n").split("\t") for ln in f if ln.strip()]
    if not lines:
        return []
    head = [h.lower() for h in lines[0]]
    s, q = head.index("source") if "source" in head else 0, head.index("product") if "product" in head else 1
    return [(r[s], r[q]) for r in lines[1:] if len(r) > max(s, q) and r[q]]


def format_plan(plan):
    """The text ``webbspec refs diff OLD NEW --program DIR`` prints for :func:`remake_plan`."""
    lines = ["selections that change:" if plan["changes"] else "no selection of this program changes"]
    lines += [f"  {who} {step}.{rt}: {a} -> {b}" for who, step, rt, a, b in plan["changes"]]
    if not plan["jobs"]:
        lines.append("nothing to re-make")
        return "\n".join(lines)
    lines.append("will re-run:")
    lines += [f"  {name}: {', '.join(steps)}" for name, steps in sorted(plan["spec2"].items())]
    lines.append("will re-make:")
    lines += [f"  {path}" for path in plan["products"]]
    lines.append("jobs (as snakemake -n plans them):")
    lines += [f"  {rule} {n}" for rule, n in plan["jobs"].items()]
    if "spec3_batch" in plan["jobs"]:
        lines.append(f"  (of the spec3_batch jobs, {plan['batches_run']} hold affected sources and run)")
    return "\n".join(lines)
