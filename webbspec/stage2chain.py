"""An exposure's whole Stage 2 chain in one process (``workflow.spec2_jobs: exposure``).

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

from . import __version__

__all__ = ["run_chain", "SIGKEY"]

log = logging.getLogger("webbspec")
SIGKEY = "WSSTPSIG"


def _stat(path):
    st = os.stat(path)
    return [os.path.basename(str(path)), st.st_size, st.st_mtime_ns]


def _signature(**parts):
    blob = json.dumps(dict(parts, version=__version__), sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()


def _done(path, signature):
    """True when ``path`` exists and records ``signature``."""
    from .datamodels import read_header
    from .errors import InputError

    if not os.path.exists(path):
        return False
    try:
        return read_header(path).get(SIGKEY) == signature
    except InputError:
        return False


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
    from .rules_entry import make_product
    from .steps import run_step

    ran = []
    data = spec["input"]
    for step in spec["steps"]:
        sig = step_signature(step, data)
        if _done(step["output"], sig):
            log.info("%s: %s is up to date", step["name"], step["output"])
        else:
            run_step(step["name"], data, step["output"], refs=step["refs"], params=step["params"],
                     extra_inputs=step["extra"], context=context, cards={SIGKEY: (sig, "step signature")})
            log.info("%s: %s -> %s", step["name"], data, step["output"])
            ran.append(step["name"])
        data = step["output"]
    for product in spec["products"]:
        make_product(product["input"], product["output"])
    return ran
