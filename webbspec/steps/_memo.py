"""A per-process memo of per-slit correction arrays (barshadow, pathloss, flat_field).

master_background_mos calibrates a copy of every slitlet as an extended source, un-calibrates
its background with the same corrections (``inverse``), and the chain then calibrates the slitlets
again: for every slitlet whose inputs did not change (all but the point sources, whose
wavelengths wavecorr moves and whose pathloss differs) two of those three computations are the
same. A key holds everything a correction depends on: the reference files (path, size, time),
the slit's parameters and a digest of its arrays' bytes. At most ``limit`` bytes are kept, the
oldest out first; stored arrays are made read-only (the steps replace arrays, never edit them).
"""

import hashlib
import os

import numpy as np

__all__ = ["Memo", "digest", "file_key"]


def digest(array):
    """(dtype, shape, SHA-256 of the bytes) of an array (SHA-256: twice blake2b's speed where
    the CPU has SHA instructions, and a chain job hashes ~900 slit arrays)."""
    a = np.ascontiguousarray(array)
    return a.dtype.str, a.shape, hashlib.sha256(a.view(np.uint8)).hexdigest()


def file_key(path):
    """(path, size, mtime) of a reference file."""
    st = os.stat(path)
    return str(path), st.st_size, st.st_mtime_ns


class Memo:
    def __init__(self, limit):
        self.limit, self.entries, self.size = limit, {}, 0

    def get(self, key):
        return self.entries.get(key)

    def cached(self, key, compute):
        """The value kept under ``key`` (None included), else ``compute()`` kept there."""
        if key in self.entries:
            return self.entries[key]
        return self.put(key, compute())

    def put(self, key, value):
        """Keep ``value`` (an array, a tuple of arrays, or None) under ``key``; returns it."""
        arrays = [a for a in (value if isinstance(value, tuple) else (value,)) if isinstance(a, np.ndarray)]
        size = sum(a.nbytes for a in arrays)
        if size > self.limit:
            return value
        for a in arrays:
            a.setflags(write=False)
        while self.entries and self.size + size > self.limit:
            old = self.entries.pop(next(iter(self.entries)))
            self.size -= sum(a.nbytes for a in (old if isinstance(old, tuple) else (old,)) if isinstance(a, np.ndarray))
        self.entries[key] = value
        self.size += size
        return value
