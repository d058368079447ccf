# Helpers for the rules: program discovery, reference selection, parameters, targets.
# Each is a few lines over webbspec.* (tested there); this is the only .smk file with `def`.

import glob
import json
import os
import re
import sys
from functools import lru_cache

from snakemake.settings.types import DeploymentMethod

from webbspec.pipeline import params as wsparams
from webbspec.pipeline import program as wsprogram
from webbspec.workflow import planning as wsplanning
from webbspec.modes import MODES

PROGRAM = wsplanning.plan(config)   # a bad parameter, a step a mode lacks, no input: one line, exit 2
CHAINS = {name: wsprogram.spec2_chain(exp, config) for name, exp in PROGRAM.stage2.items()}
# workflow.spec2_jobs: exposure -> {exposure: (rule name, chain)} of the one-job-per-exposure rules
CHAIN_RULES = (wsprogram.spec2_chain_rules(PROGRAM.stage2, config)
               if config["workflow"]["spec2_jobs"] == "exposure" else {})
NBATCHES = config["workflow"]["batches"]
if workflow.is_main_process:   # once per run, not in every cluster job
    wsplanning.report_bad_inputs(PROGRAM)
    for _line in wsparams.unused_report({
            "spec2": [s for c in CHAINS.values() for s in c],
            "spec3": [s for p in PROGRAM.products.values() for s in MODES[p.mode].spec3]}):
        print(_line, file=sys.stderr)
# the reference store (a CRDS cache): config `refs`, else the program's refs/, else $CRDS_PATH
REFS_DIR = config["refs"] or ("refs" if os.path.isdir("refs") else os.environ.get("CRDS_PATH") or "refs")
# inside a conda env `python` is the env's; otherwise the interpreter running Snakemake.
# Jobs run `python -P` so the output directory DIR/webbspec cannot shadow the package.
PYTHON = ("python" if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
          else sys.executable)
SPEC2_KINDS = ("cal", "s2d", "s3d", "x1d", "bsub", "calints", "x1dints", "bsubints")
# glibc malloc for the Stage 3 slit jobs (exp_to_source, spec3_batch), which allocate and free
# the same few MB arrays source after source: by default each one above 128 kB-32 MB is a fresh
# mmap whose pages fault in again (a third of a MOS batch's CPU time in the kernel); kept on the heap
# (mmap only above 256 MB, the heap trimmed only beyond 512 MB free) a 13-source MOS batch took
# 0.4 s of system time instead of 1.9-2.8, peak RSS 370 MB either way. Ignored off glibc.
MALLOC_ENV = "MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=536870912 MALLOC_TOP_PAD_=67108864"


def chain_malloc_env(wildcards, threads):
    """The same for a Stage 2 chain job in one process (a full-size MOS exposure: 7.3 CPU s instead
    of 8.2, system 1.7 s instead of 2.4), not for one splitting its slitlets among forked workers,
    which then spent more system time (3.4 s instead of 1.6)."""
    return MALLOC_ENV if int(threads) <= 1 else ""


wildcard_constraints:
    exposure=r"[^/]+",
    product=r"[^/]+",
    batch=r"\d+",
    part=r"\d+",
    nparts=r"\d+",
    kind="|".join(SPEC2_KINDS),


def context_name():
    """The reference context in use: config `context`, else the newest one in the store."""
    if config["context"]:
        return config["context"]
    from webbspec.io.crdsmap import newest_context   # the highest-numbered mappings/jwst/*.pmap

    return newest_context(REFS_DIR) or ""


CONTEXT = context_name()
if workflow.is_main_process:
    wsplanning.record_context(CONTEXT)   # what the jobs record as CRDS_CTX (not a rule parameter)


@lru_cache(maxsize=None)
def bestrefs_for(exposure, stage, steps):
    """{reftype: path or "N/A"} for the steps' reference types, chosen on the exposure's header."""
    if not os.path.isdir(REFS_DIR):
        return {}  # no store (e.g. a MAST delivery): every reference is "N/A"
    from webbspec.io.refs import bestrefs
    from webbspec.steps import reftypes

    types = tuple(dict.fromkeys(rt for s in steps for rt in reftypes(s)))

    return bestrefs(PROGRAM.exposures[exposure].header, types, REFS_DIR, config["context"])


def ref_files(refs):
    return sorted({p for p in refs.values() if p and p != "N/A"})


# ------------------------------------------------------------------ Stage 2


def spec2_path(exposure, step):
    return f"webbspec/spec2/{exposure}/{exposure}_{step}.fits"


def spec2_step_input(step):
    """Input function of a Stage 2 step: previous step's output, reference files, extra files."""

    def inputs(wildcards):
        exp = PROGRAM.exposures[wildcards.exposure]
        chain = CHAINS[wildcards.exposure]
        i = chain.index(step)
        out = {"data": exp.path if i == 0 else spec2_path(exp.name, chain[i - 1]),
               "refs": ref_files(bestrefs_for(exp.name, "spec2", (step,)))}
        out.update({k: v for k, v in spec2_extra(exp, step).items()})
        out.update(spec2_metadata(exp, step))
        return out

    return inputs


def spec2_extra(exp, step):
    """Files a step takes besides its input: the association's background/imprint members."""
    if step == "bkg_subtract" and exp.backgrounds:
        # the imprint members too: the official pipeline subtracts each background's imprint first
        return {"backgrounds": exp.backgrounds, **({"imprints": exp.imprints} if exp.imprints else {})}
    if step == "imprint_subtract" and exp.imprints:
        return {"imprints": exp.imprints}
    return {}


def spec2_metadata(exp, step):
    """Files a step reads that the input's header names (the MSA metadata file, MSAMETFL, beside
    the exposure): inputs, so a new one re-runs the step; a missing one is the step's own error."""
    name = exp.header.get("MSAMETFL") if exp.mode and MODES[exp.mode].msa and step == "assign_wcs" else None
    path = os.path.join(os.path.dirname(exp.path), name) if name else None
    return {"msa_metadata": path} if path and os.path.exists(path) else {}


def spec2_step_params(step):
    def value(wildcards):
        exp = PROGRAM.exposures[wildcards.exposure]
        return json.dumps(wsparams.step_params(config, "spec2", step, exp.mode), sort_keys=True)

    return value


def spec2_step_refs(step):
    def value(wildcards):
        return json.dumps(bestrefs_for(wildcards.exposure, "spec2", (step,)), sort_keys=True)

    return value


def spec2_step_extra(step):
    def value(wildcards):
        return json.dumps(spec2_extra(PROGRAM.exposures[wildcards.exposure], step))

    return value


def spec2_chain_input(wildcards):
    """Inputs of an exposure's whole Stage 2 chain: the exposure, every step's references and extra files."""
    exp = PROGRAM.exposures[wildcards.exposure]
    chain = CHAINS[exp.name]
    out = {"data": exp.path, "refs": ref_files(bestrefs_for(exp.name, "spec2", tuple(chain)))}
    for step in chain:
        out.update(spec2_extra(exp, step))
        out.update(spec2_metadata(exp, step))
    return out


def spec2_chain_spec(wildcards):
    """What `rules_entry chain` runs (JSON): each step with its output, references, parameters and
    extra files, then the products; a changed reference or parameter changes it (a re-run)."""
    exp = PROGRAM.exposures[wildcards.exposure]
    chain = CHAINS[exp.name]
    steps = [{"name": s, "output": spec2_path(exp.name, s), "refs": bestrefs_for(exp.name, "spec2", (s,)),
              "params": wsparams.step_params(config, "spec2", s, exp.mode), "extra": spec2_extra(exp, s)}
             for s in chain]
    products = [{"input": spec2_path(exp.name, step), "output": spec2_staged(exp.name, kind)}
                for kind, step in wsprogram.spec2_published(chain, exp.ints, config["workflow"]["save_bsub"]).items()]
    return json.dumps({"input": exp.path, "steps": steps, "products": products,
                       "save_steps": config["workflow"]["save_intermediates"]}, sort_keys=True)


def spec2_staged(exposure, kind):
    """Where a job writes a Stage 2 product; rule spec2_publish hard-links it to its public name."""
    return f"webbspec/spec2/{exposure}/{exposure}_{kind}.fits"


def spec2_product_input(wildcards):
    """The intermediate a Stage 2 product (_cal, _s2d, _x1d, _bsub) is published from."""
    products = wsprogram.spec2_products(CHAINS[wildcards.exposure],
                                        PROGRAM.exposures[wildcards.exposure].ints)
    return spec2_path(wildcards.exposure, products[wildcards.kind])


def spec2_targets():
    """Every Stage 2 output: the products and the files the jobs stage or step through. Snakemake
    does not re-make a missing file a present, newer product was made from, so a job that failed
    (its output deleted) would not be tried again while an older product remains: as targets,
    they are."""
    out = []
    for name, chain in CHAINS.items():
        kinds = wsprogram.spec2_published(chain, PROGRAM.exposures[name].ints, config["workflow"]["save_bsub"])
        out += [f"webbspec/spec2/{name}_{kind}.fits" for kind in kinds]
        out += [spec2_staged(name, kind) for kind in kinds]
        out += [] if CHAIN_RULES else [spec2_path(name, step) for step in chain]
    return out


# ------------------------------------------------------------------ Stage 3


def spec3_cal(wildcards):
    return PROGRAM.products[wildcards.product].cal[wildcards.exposure]


def exp_to_source_threads(wildcards):
    """Processes of an exp_to_source job: ``workflow.split_workers`` for a delivered `_cal`, whose
    gwcs the forked workers share once it is deserialized; 1 for the `_cal` our Stage 2 makes, which
    carries per-pixel coordinates: the fork saves nothing there, and the job held a second core
    idle (12 MOS exposures: 53.8 core-seconds held for 14.1 CPU s)."""
    return 1 if wildcards.exposure in PROGRAM.stage2 else config["workflow"]["split_workers"]


def spec3_exposure_tables(wildcards):
    """The exp_to_source tables of every science exposure of a product (one per job)."""
    return product_tables(wildcards.product)


def product_tables(key):
    prod = PROGRAM.products[key]
    return [t for e in prod.science for t in wsprogram.exp_to_source_tables(
        f"webbspec/spec3/{key}", e, prod.cal[e], config["workflow"]["split_mb"])]


def spec3_batch_input(wildcards):
    """Batch inputs: this batch's slices, the background x1d files and the reference files.

    Reading the product's source table (a checkpoint) raises until it has run; Snakemake then
    re-plans. The table itself is not an input: a new source re-runs only its batch.
    """
    from webbspec.workflow.rules_entry import batch_sources

    prod = PROGRAM.products[wildcards.product]
    table = checkpoints.spec3_sources.get(product=wildcards.product).output[0]
    sources = batch_sources([table], int(wildcards.batch), NBATCHES)
    return {"slices": [p for paths in sources.values() for p in paths],
            "backgrounds": prod.backgrounds,
            "refs": ref_files(spec3_refs_of(wildcards.product))}


def spec3_backgrounds(wildcards):
    return PROGRAM.products[wildcards.product].backgrounds


def spec3_refs_of(product):
    prod = PROGRAM.products[product]
    steps = tuple(wsprogram.MODES[prod.mode].spec3)
    return bestrefs_for(prod.science[0], "spec3", steps)


def spec3_batch_params(wildcards):
    prod = PROGRAM.products[wildcards.product]
    steps = wsprogram.MODES[prod.mode].spec3
    return json.dumps(wsparams.stage_params(config, "spec3", steps, prod.mode), sort_keys=True)


def spec3_batch_refs(wildcards):
    return json.dumps(spec3_refs_of(wildcards.product), sort_keys=True)


def spec3_mode(wildcards):
    return PROGRAM.products[wildcards.product].mode


def spec3_name(wildcards):
    return PROGRAM.products[wildcards.product].name


def spec3_targets():
    if not config["workflow"]["stage3"]:
        return []
    return [t for key, prod in PROGRAM.products.items()
            for t in SPEC3_PATHS[MODES[prod.mode].stage3_kind](key)]


def slit_targets(key):
    """The per-source slits path (exp_to_source + batches of sources): one manifest per batch, and
    (so that a failed job is tried again, see spec2_targets) the source tables."""
    return product_tables(key) + [f"webbspec/spec3/{key}/sources.tsv"] + \
        [f"webbspec/spec3/{key}/batches/{b:03d}.tsv" for b in range(NBATCHES)]


# ------------------------------------------------------------------ Stage 3, cubes (NIRSpec IFU, MIRI MRS)

CUBE_PLANS = wsplanning.cube_plans(PROGRAM, config, sys.stderr if workflow.is_main_process else None)


def cube_dir(key):
    return f"webbspec/spec3/{key}"


def cube_crf_staged(key, exposure):
    from webbspec.pipeline.stage3_cubes import crf_name

    return f"{cube_dir(key)}/crf/{crf_name(exposure, PROGRAM.products[key].asn_id)}"


def cube_staged(key, suffix, kind):
    return f"{cube_dir(key)}/cubes/{suffix}_{kind}.fits"


def cube_plan(wildcards):
    return next(p for p in CUBE_PLANS[wildcards.product] if p.suffix == wildcards.cube)


def cube_public():
    """{public product path: staged path} of every cube product: `_crf` per exposure, `_s3d` and
    `_x1d` per cube (rule spec3_cube_publish links each)."""
    from webbspec.pipeline.stage3_cubes import crf_name, cube_product_name

    out = {}
    for key, plans in CUBE_PLANS.items():
        prod = PROGRAM.products[key]
        for e in prod.science:
            out[f"webbspec/spec3/{crf_name(e, prod.asn_id)}"] = cube_crf_staged(key, e)
        for plan in plans:
            for kind in ("s3d", "x1d"):
                out[f"webbspec/spec3/{cube_product_name(prod.name, plan.suffix)}_{kind}.fits"] = \
                    cube_staged(key, plan.suffix, kind)
    return out


CUBE_PUBLIC = cube_public()


def cube_prep_params(key):
    prod = PROGRAM.products[key]
    from webbspec.pipeline.stage3_cubes import PREP_STEPS

    steps = [s for s in MODES[prod.mode].spec3 if s in PREP_STEPS]
    return json.dumps(wsparams.stage_params(config, "spec3", steps, prod.mode), sort_keys=True)


def cube_refs(wildcards, steps):
    """References of a cube's job, chosen on the header of the cube's first exposure (NIRSpec
    cubepar / extract1d rows differ per grating)."""
    return bestrefs_for(cube_plan(wildcards).exposures[0], "spec3", steps)


def cube_build_input(wildcards):
    """The published `_crf` (as Stage 3 reads published Stage 2 products: the link shares the
    staged file's inode, and a job reading the staged name could see it touched after it ran)."""
    from webbspec.pipeline.stage3_cubes import crf_name

    plan = cube_plan(wildcards)
    asn_id = PROGRAM.products[wildcards.product].asn_id
    return {"crfs": [f"webbspec/spec3/{crf_name(e, asn_id)}" for e in plan.exposures],
            "refs": ref_files(cube_refs(wildcards, ("cube_build",)))}


def cube_build_spec(wildcards):
    """What the cube job runs (JSON): the cube_build parameters with the cube's band selection,
    the plan and the references; a change to any of them re-runs the cube."""
    plan = cube_plan(wildcards)
    prod = PROGRAM.products[wildcards.product]
    return json.dumps({"params": wsparams.step_params(config, "spec3", "cube_build", prod.mode),
                       "plan": {"suffix": plan.suffix, "bands": [list(b) for b in plan.bands],
                                "exposures": plan.exposures, "selection": plan.selection},
                       "refs": cube_refs(wildcards, ("cube_build",))}, sort_keys=True)


def cube_x1d_input(wildcards):
    from webbspec.pipeline.stage3_cubes import cube_product_name

    name = cube_product_name(PROGRAM.products[wildcards.product].name, wildcards.cube)
    return {"s3d": f"webbspec/spec3/{name}_s3d.fits",          # the published cube (see cube_build_input)
            "refs": ref_files(cube_refs(wildcards, ("extract_1d",)))}


def cube_x1d_spec(wildcards):
    prod = PROGRAM.products[wildcards.product]
    return json.dumps({"params": wsparams.step_params(config, "spec3", "extract_1d", prod.mode),
                       "refs": cube_refs(wildcards, ("extract_1d",))}, sort_keys=True)


def cube_targets(key):
    """The cube path: the public products and (so that a failed job is tried again, see
    spec2_targets) the staged files they are linked from."""
    return [t for pub, staged in CUBE_PUBLIC.items() if staged.startswith(cube_dir(key) + "/")
            for t in (pub, staged)]


SPEC3_PATHS = {"slits": slit_targets, "cubes": cube_targets}   # Mode.stage3_kind -> targets (slitless: to come)
