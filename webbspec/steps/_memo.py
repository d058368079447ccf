"""A per-process memo of per-slit correction arrays (barshadow, pathloss, flat_field).

master_background_mos calibrates a copy of every slitlet as an extended source, un-calibrates
its background with the same corrections (``inverse``), and the chain then calibrates the slitlets
again: for every slitlet whose inputs did not change (all but the point sources, whose
wavelengths wavecorr moves and whose pathloss differs) two of those three computations are the
same. A key holds everything a correction depends on: the reference files (path, size, time),
the slit's parameters and a digest of its arrays' bytes. At most ``limit`` bytes are kept, the
oldest out first; stored arrays are made read-only (the steps replace arrays, never edit them).
"""

import functools
import hashlib
import os
import weakref

import numpy as np

__all__ = ["Memo", "digest", "file_key", "freeze", "read_once"]


def digest(array):
    """(dtype, shape, SHA-256 of the bytes) of an array (SHA-256: twice blake2b's speed where
    the CPU has SHA instructions, and a chain job hashes ~900 slit arrays).

    A read-only array owning its data cannot change, so its digest is kept while it lives
    (:data:`_DIGESTS`): a MOS slitlet's WAVELENGTH and SLIT_Y (made read-only by extract_2d and
    wavecorr) are digested once, not by every flat_field, pathloss and barshadow run on them."""
    fixed = isinstance(array, np.ndarray) and array.base is None and not array.flags.writeable
    if fixed:
        known = _DIGESTS.get(id(array))
        if known is not None and known[0]() is array:
            return known[1]
    a = np.ascontiguousarray(array)
    value = a.dtype.str, a.shape, hashlib.sha256(a.view(np.uint8)).hexdigest()
    if fixed:
        key = id(array)
        _DIGESTS[key] = (weakref.ref(array, lambda _, key=key: _DIGESTS.pop(key, None)), value)
    return value


_DIGESTS = {}       # id(array): (weak reference to it, digest) of the read-only arrays digested


def freeze(array):
    """``array`` made read-only (returned): for arrays a step makes and no step edits in place
    (a step replaces arrays, never edits them), whose digests :func:`digest` may then keep."""
    array.setflags(write=False)
    return array


def file_key(path):
    """(path, size, mtime) of a reference file."""
    st = os.stat(path)
    return str(path), st.st_size, st.st_mtime_ns


def read_once(read, path):
    """``read(path)`` kept per process by the file's (path, size, mtime): master_background_mos
    reads a step's reference twice and the chain a third time (``read``'s result must not be
    edited by its callers). A file that cannot be stat-ed is read each time (``read`` reports it)."""
    try:
        key = file_key(path)
    except OSError:
        return read(path)
    return _read_kept(read, *key)


@functools.lru_cache(maxsize=16)
def _read_kept(read, path, size, mtime_ns):
    return read(path)


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
