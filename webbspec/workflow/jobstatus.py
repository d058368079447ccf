"""Which jobs failed: each job records its failure next to its log, and clears it on success.

The run summary (:mod:`webbspec.workflow.summary`) reads these records rather than Snakemake's
own log, whose layout depends on its options (``--quiet`` leaves out the error blocks).
A record is ``<log>.failed``: the job's one-line error.
"""

import os

__all__ = ["record", "failed"]

SUFFIX = ".failed"


def record(log, message):
    """After a job: ``message`` None -> success (clear the record), else its one-line error."""
    if not log:
        return
    path = log + SUFFIX
    if message is None:
        if os.path.exists(path):
            os.remove(path)
        return
    with open(path, "w") as f:
        f.write(" ".join(str(message).split()) + "\n")


def failed(logs_dir, since=0.0):
    """``[(log path, message)]`` of the jobs under ``logs_dir`` that failed at or after ``since``."""
    out = []
    for here, _, files in os.walk(logs_dir):
        for name in sorted(files):
            path = os.path.join(here, name)
            if name.endswith(SUFFIX) and os.path.getmtime(path) >= since:
                with open(path) as f:
                    out.append((path[: -len(SUFFIX)], f.read().strip()))
    return sorted(out)
