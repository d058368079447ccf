"""What a change of reference context re-makes in a program (``webbspec refs diff OLD NEW --program``).

Lives in the pipeline layer: it needs the reference selection (io), the steps' reference types and
the program's plan, which the reference store itself must not import.
"""

import glob
import os

from ..io.refs import bestrefs
from ..modes import MODES
from ..steps import reftypes as step_reftypes
from . import params as wsparams
from . import program as wsprogram
from .stage3_cubes import crf_name, cube_product_name, program_cube_plans

__all__ = ["remake_plan", "format_plan"]


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
    cfg = config if config is not None else wsparams.load([])
    nbatches, save_bsub = int(cfg["workflow"]["batches"]), bool(cfg["workflow"]["save_bsub"])
    p = wsprogram.discover(program_dir)
    root, out = p.root, wsprogram.OUT
    plan = {"changes": [], "spec2": {}, "products": [], "jobs": {}, "batches_run": 0}
    jobs = plan["jobs"]

    def count(rule, n=1):
        if n:
            jobs[rule] = jobs.get(rule, 0) + n

    remade = set()          # Stage 2 product paths (relative to the program) re-made
    chain_rules = (wsprogram.spec2_chain_rules(p.stage2, cfg)
                   if cfg["workflow"].get("spec2_jobs", "step") == "exposure" else {})
    for name, exp in sorted(p.stage2.items()):
        chain = wsprogram.spec2_chain(exp, cfg)
        first = None
        for i, step in enumerate(chain):
            types = step_reftypes(step)
            if not types:
                continue
            a = bestrefs(exp.header, types, store_dir, old)
            b = bestrefs(exp.header, types, store_dir, new)
            for rt in types:
                if a[rt] != b[rt]:
                    plan["changes"].append((name, step, rt, _name(a[rt]), _name(b[rt])))
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
                count("spec2_publish")   # the staged product linked to its public name
    plan["products"] += sorted(remade)

    if cfg["workflow"]["stage3"]:
        cubes = program_cube_plans(p, cfg)     # as the workflow plans them
        prep_rules = wsprogram.cube_prep_rules(cubes)
        for key, prod in sorted(p.products.items()):
            if key in cubes:
                _replan_cubes(plan, count, remade, (store_dir, old, new), p, key, cubes[key], prep_rules[key])
                continue
            types = tuple(dict.fromkeys(rt for s in MODES[prod.mode].spec3 for rt in step_reftypes(s)))
            hdr = p.exposures[prod.science[0]].header
            a, b = bestrefs(hdr, types, store_dir, old), bestrefs(hdr, types, store_dir, new)
            plan["changes"] += [(key, "spec3", rt, _name(a[rt]), _name(b[rt])) for rt in types if a[rt] != b[rt]]
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


def _replan_cubes(plan, count, remade, contexts, p, key, cube_plans, prep_rule):
    """A cube product's share of :func:`remake_plan` (rules/spec3.smk): its prepare job when one of
    its `_cal` or background products is re-made (then every cube follows); a cube (and its x1d)
    when cube_build's references on the cube's first exposure change; a cube's x1d when
    extract_1d's do. Each re-made product is published again."""
    store_dir, old, new = contexts
    prod = p.products[key]
    spec3 = f"{wsprogram.OUT}/spec3"
    prep = any(prod.cal[e] in remade for e in prod.science) or any(b in remade for b in prod.backgrounds)
    if prep:
        count(prep_rule)
        for e in prod.science:
            plan["products"].append(f"{spec3}/{crf_name(e, prod.asn_id)}")
            count("spec3_cube_publish")
    for cp in cube_plans:
        hdr = p.exposures[cp.exposures[0]].header
        redo = {"cube_build": prep, "extract_1d": prep}
        for step in redo:
            types = step_reftypes(step)
            a, b = bestrefs(hdr, types, store_dir, old), bestrefs(hdr, types, store_dir, new)
            changed = [rt for rt in types if a[rt] != b[rt]]
            plan["changes"] += [(f"{key} {cp.suffix}", step, rt, _name(a[rt]), _name(b[rt])) for rt in changed]
            redo[step] = redo[step] or bool(changed)
        redo["extract_1d"] = redo["extract_1d"] or redo["cube_build"]
        for step, rule, kind in (("cube_build", "spec3_cube", "s3d"), ("extract_1d", "spec3_cube_x1d", "x1d")):
            if redo[step]:
                count(rule)
                count("spec3_cube_publish")
                plan["products"].append(f"{spec3}/{cube_product_name(prod.name, cp.suffix)}_{kind}.fits")


def _name(path):
    return os.path.basename(str(path)) if str(path).upper() != "N/A" else "N/A"


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
