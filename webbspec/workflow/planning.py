"""What the Snakefile checks before it plans a job, for ``snakemake`` and ``webbspec run`` alike.

A mistake that stops the whole run (no program directory, nothing to calibrate, a bad parameter,
a step a mode lacks) is one line ``webbspec: <file or key>: <problem>`` and exit status 2, before
Snakemake plans anything. A bad input file or association stops only its own jobs: it is named
here, once, and its job fails with the same line while everything else is built.
"""

import os
import sys

from ..errors import InputError
from ..pipeline.stage3_cubes import program_cube_plans as cube_plans  # noqa: F401 (rules/common.smk)

__all__ = ["fail", "check_program_dir", "plan", "report_bad_inputs", "record_context", "run_context"]

CONTEXT_FILE = "webbspec/context"


def fail(exc):
    """End the planning with the one-line error ``exc`` (no traceback) and exit status 2."""
    print(f"webbspec: {exc}", file=sys.stderr)
    sys.exit(2)


def check_program_dir(path):
    """The program directory must exist: Snakemake's ``workdir:`` would create a misspelt one."""
    if not path:
        fail(InputError("config", "program: no program directory given (--config program=DIR)"))
    if not os.path.isdir(path):
        fail(InputError(os.path.abspath(path), "program directory does not exist"))


def plan(config):
    """The checked configuration and program (:class:`~webbspec.pipeline.program.Program`)."""
    from ..pipeline import params, program

    try:
        params.validate(config)
        _check_saved_steps(config["workflow"]["save_intermediates"])
        return program.check_plan(program.discover("."), config)
    except InputError as exc:
        fail(exc)


def _check_saved_steps(save):
    from ..modes import SPEC2_STEPS

    unknown = [s for s in (save if isinstance(save, list) else ()) if s not in SPEC2_STEPS]
    if unknown:
        raise InputError("config", f"workflow.save_intermediates: {', '.join(map(str, unknown))} is not a "
                                   f"Stage 2 step (one of {', '.join(dict.fromkeys(SPEC2_STEPS))})")


def report_bad_inputs(prog, out=sys.stderr):
    for err in prog.errors:
        print(f"webbspec: error: {err} (its jobs will fail; everything else is built)", file=out)
    for note in prog.warnings:
        print(f"webbspec: warning: {note}", file=out)


def record_context(name):
    """Note the run's reference context for its jobs (they record it in their products as
    CRDS_CTX). Not a rule input or parameter: a new context re-runs only the jobs whose selected
    references change, not every job."""
    from ..io.atomicfile import replacing

    if run_context() != name:
        os.makedirs(os.path.dirname(CONTEXT_FILE), exist_ok=True)
        with replacing(CONTEXT_FILE) as tmp, open(tmp, "w") as f:
            f.write(name + "\n")


def run_context():
    """The context noted by :func:`record_context` (run from the program directory), or ''."""
    try:
        with open(CONTEXT_FILE) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""
