"""Stage 2 outside the per-step jobs: an exposure's products, and its whole chain in one process
(``workflow.spec2_jobs: exposure``).

:func:`write_product` writes a step's output as an official Stage 2 product (the `product` jobs
and the chain both call it).

The steps run in memory, one after the other (``call_step``: each step takes the previous one's
model), and the products are written from the models of the steps that make them; each step's
file is written too when ``save_steps`` (``workflow.save_intermediates``). Every step has a
signature ``WSSTPSIG`` chained from the input file's size and time and, step by step, its
references by name, its extra input files, its parameters and the webbspec version. The chain
resumes after the last step whose file records its signature: when a changed reference or
parameter re-runs the job, only the changed step and the steps after it run again, and the files
before it keep their bytes and times, as with one job per step. (The step files are therefore not
outputs of the Snakemake rule, which deletes a job's outputs before it runs; every file is written
atomically, so a killed job leaves each one whole with its signature, or absent.) Without the
step files a re-run runs the whole chain: it is one job either way.
"""

import hashlib
import json
import logging
import os

from .. import __version__

__all__ = ["run_chain", "write_product", "link_product", "SIGKEY"]

log = logging.getLogger("webbspec")
SIGKEY = "WSSTPSIG"


def _stat(path):
    st = os.stat(path)
    return [os.path.basename(str(path)), st.st_size, st.st_mtime_ns]


def _signature(**parts):
    blob = json.dumps(dict(parts, version=__version__), sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()


def step_signature(step, previous):
    """The signature of one step of the chain spec (``step``) after the signature ``previous``."""
    extra = {k: [_stat(p) for p in (v if isinstance(v, (list, tuple)) else [v])]
             for k, v in (step.get("extra") or {}).items()}
    refs = {k: os.path.basename(str(v)) for k, v in (step.get("refs") or {}).items()}
    return _signature(step=step["name"], previous=previous, refs=refs, params=step.get("params") or {},
                      extra=extra)


def chain_signatures(spec):
    """The signature of every step of ``spec``, each chained on the one before it."""
    sigs, prev = [], _signature(input=_stat(spec["input"]))
    for step in spec["steps"]:
        prev = step_signature(step, prev)
        sigs.append(prev)
    return sigs


def run_chain(spec, context=None, save_steps=True):
    """Run the chain ``spec`` (JSON of rules/common.smk ``spec2_chain_spec``: input, steps
    [{name, output, refs, params, extra}], products [{input, output}]) in memory; returns the
    names of the steps that ran. ``save_steps``: write every step's file (True), none (False) or
    those of the steps named (a list, like the official per-step ``save_results``)."""
    from ..io import datamodels
    from .steprun import call_step, read_input

    steps, sigs = spec["steps"], chain_signatures(spec)
    start = next((k + 1 for k in reversed(range(len(steps)))
                  if datamodels.recorded(steps[k]["output"], SIGKEY) == sigs[k]), 0)
    for step in steps[:start]:
        log.info("%s: %s is up to date", step["name"], step["output"])
    published = {p["input"] for p in spec["products"]}
    made, ran = {}, []        # made: the models of the steps a product is written from, only
    if start < len(steps):
        model, where = read_input(spec["input"]) if start == 0 else \
            (datamodels.read(steps[start - 1]["output"]), steps[start - 1]["output"])
        for step, sig in zip(steps[start:], sigs[start:]):
            model = datamodels.as_written(call_step(step["name"], model, step["refs"], step["params"],
                                                    step["extra"], context, {SIGKEY: (sig, "step signature")}, where))
            where = step["output"]
            if save_steps is True or step["name"] in (save_steps or ()):   # all, or the steps named
                datamodels.write(model, step["output"])
            if step["output"] in published:
                made[step["output"]] = model
            ran.append(step["name"])
            log.info("%s: done", step["name"])
    for product in spec["products"]:
        write_product(made.get(product["input"], product["input"]), product["output"])
    return ran


def write_product(src, dst):
    """Write a step's output ``src`` (its file, or its model) as the official Stage 2 product
    ``dst``'s suffix names (_cal, _s2d, ...), shaped so stdatamodels opens it as the official class;
    our per-pixel coordinate arrays stay in `_cal` (Stage 3 reads them instead of evaluating a WCS).
    A suffix without an official class is published as it is (a hard link, else a copy)."""
    from ..io import datamodels, officialio
    from ..errors import InputError

    kind = os.path.basename(dst).rsplit("_", 1)[-1].removesuffix(".fits")
    kind = {"bsub": "cal", "calints": "cal", "bsubints": "cal", "x1dints": "x1d"}.get(kind, kind)
    if isinstance(src, (str, os.PathLike)):
        if not os.path.exists(src):
            raise InputError(src, "file does not exist")
        if kind not in officialio.KINDS:
            link_product(src, dst)
            return
        src = datamodels.read(src)
    if kind not in officialio.KINDS:
        datamodels.write(src, dst)
    else:
        officialio.write(src, dst, kind, **({"keep_coords": True} if kind in ("cal", "crf") else {}))


def link_product(src, dst):
    """Publish ``src`` as ``dst``: a hard link, else a copy (atomically)."""
    import shutil

    from ..io.atomicfile import replacing

    with replacing(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
