"""nanmedian along one short axis, bit for bit numpy's, without its masked-array path.

numpy's ``nanmedian`` handles lanes shorter than 600 values through ``numpy.ma`` (mask, argsort,
masked take): on the exposures of one source, the rows of a slitlet or a running window that
was most of the time of the call (a third of a MOS source's Stage 3 CPU seconds).

Lanes of up to :data:`_NETWORK_MAX` values (the exposures of one source: 2-12) are sorted by a
sorting network of whole-array minimum/maximum passes, NaN counted and put last as +inf: numpy
sorts each short lane on its own, which cost twice as much on a MOS source's (6, 124, 2937)
stack of drizzled exposures.
"""

from functools import lru_cache

import numpy as np

__all__ = ["nanmedian"]

_NETWORK_MAX = 16     # longest lane sorted by the network
_NETWORK_MIN_LANES = 256   # fewer lanes: numpy's sort (the passes' call overhead would dominate)


@lru_cache(maxsize=None)
def _network(m):
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for ``m`` values: the network
    of the next power of two, without the comparators that reach past ``m`` (padding values
    +inf would never move). Checked for every m <= 16 on all 0/1 inputs in tests/test_nanmedian.py
    (the 0-1 principle: a network that sorts those sorts everything)."""
    p = 1
    while p < m:
        p *= 2
    pairs = []
    t = 1
    while t < p:
        k = t
        while k >= 1:
            for j in range(k % t, p - k, 2 * k):
                for i in range(k):
                    if (i + j) // (2 * t) == (i + j + k) // (2 * t) and i + j + k < m:
                        pairs.append((i + j, i + j + k))
            k //= 2
        t *= 2
    return tuple(pairs)


def _sorted_lanes(s):
    """``s`` (m, ...) sorted along axis 0 in place by the network; NaN must be replaced already."""
    tmp = np.empty(s.shape[1:], s.dtype)
    for i, j in _network(s.shape[0]):
        np.minimum(s[i], s[j], out=tmp)
        np.maximum(s[i], s[j], out=s[j])
        s[i] = tmp
    return s


def nanmedian(a, axis=0):
    """``np.nanmedian(a, axis)``, the same values bit for bit and dtype (NaN where a lane is all
    NaN, without numpy's warning; a median of +0.0 and -0.0 may differ in sign). Sorting puts NaN
    last; the median of a lane's n non-NaN values is (s[(n-1)//2] + s[n//2]) / 2, the sum and
    halving numpy does."""
    a = np.asarray(a)
    moved = np.moveaxis(a if a.dtype.kind == "f" else a.astype(float), axis, 0)
    m = moved.shape[0]
    if 1 < m <= _NETWORK_MAX and moved.size >= m * _NETWORK_MIN_LANES:
        s = np.empty(moved.shape, moved.dtype)    # contiguous lanes' planes
        np.copyto(s, moved)
        nan = np.isnan(s)
        n = (m - nan.sum(axis=0))[None]
        s[nan] = np.inf      # NaN last; the first n of a sorted lane are its values, inf included
        s = _sorted_lanes(s)
        lo = np.take_along_axis(s, np.maximum(n - 1, 0) // 2, axis=0)[0]
        hi = np.take_along_axis(s, n // 2, axis=0)[0]
        with np.errstate(invalid="ignore"):
            out = (lo + hi) / 2
        out[n[0] == 0] = np.nan
        return out
    s = np.sort(moved, axis=0)
    n = (~np.isnan(s)).sum(axis=0)[None]
    lo = np.take_along_axis(s, np.maximum(n - 1, 0) // 2, axis=0)[0]
    hi = np.take_along_axis(s, n // 2, axis=0)[0]
    with np.errstate(invalid="ignore"):     # -inf + inf: NaN, as numpy's
        return (lo + hi) / 2
