"""Stage 2 outside the per-step jobs: an exposure's products, and its whole chain in one process
(``workflow.spec2_jobs: exposure``).

:func:`write_product` writes a step's output as an official Stage 2 product (the `product` jobs
and the chain both call it).

Each step runs as its own job would (``run_step``: the previous step's file in, its file out),
then the products are written. A step whose output already exists and records the same step
signature ``WSSTPSIG`` (its input file's size and time, its references by name, its extra input
files, its parameters, the webbspec version) is skipped: when a changed reference or parameter
re-runs the job, only the changed step and the steps after it run again, and the files before it
keep their bytes and times, as with one job per step. (The step files are therefore not outputs
of the Snakemake rule, which deletes a job's outputs before it runs; every file is written
atomically, so a killed job leaves each one whole with its signature, or absent.)
"""

import hashlib
import json
import logging
import os

from .. import __version__

__all__ = ["run_chain", "write_product", "SIGKEY"]

log = logging.getLogger("webbspec")
SIGKEY = "WSSTPSIG"


def _stat(path):
    st = os.stat(path)
    return [os.path.basename(str(path)), st.st_size, st.st_mtime_ns]


def _signature(**parts):
    blob = json.dumps(dict(parts, version=__version__), sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()


def step_signature(step, data):
    """The signature of one step of the chain spec (``step``) run on the file ``data``."""
    extra = {k: [_stat(p) for p in (v if isinstance(v, (list, tuple)) else [v])]
             for k, v in (step.get("extra") or {}).items()}
    refs = {k: os.path.basename(str(v)) for k, v in (step.get("refs") or {}).items()}
    return _signature(step=step["name"], input=_stat(data), refs=refs, params=step.get("params") or {},
                      extra=extra)


def run_chain(spec, context=None):
    """Run the chain ``spec`` (JSON of rules/common.smk ``spec2_chain_spec``: input, steps
    [{name, output, refs, params, extra}], products [{input, output}]); returns the names of the
    steps that ran."""
    from ..io.datamodels import recorded
    from .steprun import run_step

    ran = []
    data = spec["input"]
    for step in spec["steps"]:
        sig = step_signature(step, data)
        if recorded(step["output"], SIGKEY) == sig:
            log.info("%s: %s is up to date", step["name"], step["output"])
        else:
            run_step(step["name"], data, step["output"], refs=step["refs"], params=step["params"],
                     extra_inputs=step["extra"], context=context, cards={SIGKEY: (sig, "step signature")})
            log.info("%s: %s -> %s", step["name"], data, step["output"])
            ran.append(step["name"])
        data = step["output"]
    for product in spec["products"]:
        write_product(product["input"], product["output"])
    return ran


def write_product(src, dst):
    """Write a step's output ``src`` as the official Stage 2 product ``dst``'s suffix names (_cal,
    _s2d, ...), shaped so stdatamodels opens it as the official class; our per-pixel coordinate
    arrays stay in `_cal` (Stage 3 reads them instead of evaluating a WCS). A suffix without an
    official class is published as it is (a hard link, else a copy)."""
    from ..io import datamodels, officialio
    from ..errors import InputError

    if not os.path.exists(src):
        raise InputError(src, "file does not exist")
    kind = os.path.basename(dst).rsplit("_", 1)[-1].removesuffix(".fits")
    kind = {"bsub": "cal", "calints": "cal", "bsubints": "cal", "x1dints": "x1d"}.get(kind, kind)
    if kind in officialio.KINDS:
        model = datamodels.read(src)
        extra = {"keep_coords": True} if kind in ("cal", "crf") else {}
        officialio.write(model, dst, kind, **extra)
        return
    import shutil

    from ..io.atomicfile import replacing

    with replacing(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
