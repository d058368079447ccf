"""Atomic file writes: every file is written to a temporary sibling that replaces it only when
complete, so a killed job never leaves a truncated file under a real name."""

import contextlib
import os

__all__ = ["replacing"]


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary sibling of ``path`` (same directory, hidden, per process) to write; it
    replaces ``path`` when the block ends without an exception and is removed otherwise."""
    d, base = os.path.split(os.path.abspath(str(path)))
    tmp = os.path.join(d, f".{base}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
