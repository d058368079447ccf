"""Evaluate the transforms of an ASDF reference file with numpy, without astropy.modeling.

Reading an optical-model reference file the usual way (asdf + asdf-astropy) builds astropy
models, and importing astropy.modeling costs ~0.9 s per process, more than computing a whole
exposure's coordinates. Here the file is opened with asdf's core plugins only: every
``!transform/...`` node stays a tagged dict, and :func:`build` turns it into a :class:`Transform`
(a numpy function with its inverse). Supported: the transform schema's compose, concatenate,
remap_axes, identity, shift, scale, multiply/divide/add/subtract, rotate2d, affine, polynomial
(1-D and 2-D, with domain/window), constant, tabular (linear, 1-D and 2-D); an explicit ``inverse`` is used when present.
An unsupported tag raises :class:`UnsupportedTransform` (the caller names the file).
"""

import os
import warnings

import numpy as np

__all__ = ["Transform", "build", "open_tree", "UnsupportedTransform"]


class UnsupportedTransform(ValueError):
    pass


class Transform:
    """``n_in`` arrays -> tuple of ``n_out`` arrays; ``inverse`` built on demand."""

    def __init__(self, n_in, n_out, func, inverse=None, name=""):
        self.n_in, self.n_out, self._func, self._inverse, self.name = n_in, n_out, func, inverse, name

    def __call__(self, *args):
        if len(args) != self.n_in:
            raise ValueError(f"{self.name or 'transform'} takes {self.n_in} inputs, got {len(args)}")
        return self._func(*(np.asarray(a, float) for a in args))

    @property
    def inverse(self):
        inv = self._inverse if isinstance(self._inverse, Transform) or self._inverse is None else self._inverse()
        if inv is None:
            raise UnsupportedTransform(f"{self.name or 'transform'} has no inverse")
        self._inverse = inv
        return inv


def _kind(node):
    tag = getattr(node, "_tag", None) or ""
    return tag.rsplit("/", 1)[-1].rsplit("-", 1)[0]


def _value(v):
    """A plain float from a number or a quantity node."""
    if isinstance(v, dict) and "value" in v:
        return float(np.asarray(v["value"]))
    return float(np.asarray(v))


def build(node):
    """The :class:`Transform` of a tagged ``!transform/...`` node."""
    kind = _kind(node)
    maker = _MAKERS.get(kind)
    if maker is None:
        raise UnsupportedTransform(f"transform {getattr(node, '_tag', type(node).__name__)!r} is not supported")
    t = maker(node)
    t.name = str(node.get("name", "") or kind)
    if "inverse" in node:
        explicit = node["inverse"]
        t._inverse = lambda: build(explicit)
    return t


def _unary(f, finv):
    return Transform(1, 1, lambda x: (f(x),), lambda: Transform(1, 1, lambda y: (finv(y),), None))


def _shift(node):
    off = _value(node["offset"])
    return _unary(lambda x: x + off, lambda y: y - off)


def _scale(node):
    fac = _value(node["factor"])
    return _unary(lambda x: x * fac, lambda y: y / fac)


def _identity(node):
    n = int(node.get("n_dims", 1))
    return Transform(n, n, lambda *a: tuple(a), lambda: _identity(node))


def _mapping_transform(mapping, n_in):
    def inverse():
        try:
            back = tuple(mapping.index(i) for i in range(n_in))
        except ValueError:
            return None
        return _mapping_transform(back, len(mapping))
    return Transform(n_in, len(mapping), lambda *a: tuple(a[i] for i in mapping), inverse)


def _remap(node):
    mapping = tuple(int(i) for i in node["mapping"])
    return _mapping_transform(mapping, int(node.get("n_inputs", max(mapping) + 1)))


def _compose(node):
    a, b = (build(n) for n in node["forward"])
    return _chain(a, b)


def _chain(a, b):
    if a.n_out != b.n_in:
        raise UnsupportedTransform(f"compose: {a.n_out} outputs into {b.n_in} inputs")
    return Transform(a.n_in, b.n_out, lambda *x: b(*a(*x)), lambda: _chain(b.inverse, a.inverse))


def _concatenate(node):
    a, b = (build(n) for n in node["forward"])
    return _side_by_side(a, b)


def _side_by_side(a, b):
    def f(*x):
        return tuple(a(*x[:a.n_in])) + tuple(b(*x[a.n_in:]))
    return Transform(a.n_in + b.n_in, a.n_out + b.n_out, f, lambda: _side_by_side(a.inverse, b.inverse))


def _arith(op):
    def make(node):
        a, b = (build(n) for n in node["forward"])
        return Transform(a.n_in, a.n_out, lambda *x: tuple(op(p, q) for p, q in zip(a(*x), b(*x))), None)
    return make


def _rotate2d(node):
    ang = np.radians(_value(node["angle"]))

    def rot(t):
        c, s = np.cos(t), np.sin(t)
        return Transform(2, 2, lambda x, y: (x * c - y * s, x * s + y * c), lambda: rot(-t))
    return rot(ang)


def _affine(node):
    m = np.asarray(node["matrix"], float)
    t = np.asarray(node["translation"], float)

    def make(m, t):
        def f(x, y):
            return m[0, 0] * x + m[0, 1] * y + t[0], m[1, 0] * x + m[1, 1] * y + t[1]
        return Transform(2, 2, f, lambda: make(np.linalg.inv(m), -np.linalg.inv(m) @ t))
    return make(m, t)


def _map_domain(x, domain, window):
    if domain is None or window is None or domain[0] is None or window[0] is None:
        return x
    d0, d1 = (float(v) for v in domain)
    w0, w1 = (float(v) for v in window)
    return w0 + (x - d0) * (w1 - w0) / (d1 - d0)


def _polynomial(node):
    c = np.asarray(node["coefficients"], float)
    dom, win = node.get("domain"), node.get("window")
    if node.get("polynomial_type", "polynomial").lower() not in ("polynomial",):
        raise UnsupportedTransform(f"polynomial_type {node.get('polynomial_type')!r} is not supported")
    if c.ndim == 1:
        return Transform(1, 1, lambda x: (np.polynomial.polynomial.polyval(_map_domain(x, dom, win), c),), None)
    (xd, yd), (xw, yw) = (dom or (None, None)), (win or (None, None))
    return Transform(2, 1, lambda x, y: (np.polynomial.polynomial.polyval2d(
        _map_domain(x, xd, xw), _map_domain(y, yd, yw), c),), None)


def _axis_weights(x, pts):
    """Index of the left grid point and the linear weight of the right one (extrapolating)."""
    i = np.clip(np.searchsorted(pts, x) - 1, 0, pts.size - 2)
    return i, (x - pts[i]) / (pts[i + 1] - pts[i])


def _tabular(node):
    """Linear interpolation on a regular grid; outside: fill_value, or linear extrapolation when
    fill_value is null and bounds_error false (the official wavecorr tables)."""
    pts = [np.asarray(p, float) for p in node["points"]]
    table = np.asarray(node["lookup_table"], float)
    if str(node.get("method", "linear")) != "linear" or len(pts) not in (1, 2):
        raise UnsupportedTransform("tabular: only linear 1-D and 2-D tables are supported")
    fill = node.get("fill_value", np.nan)
    extrapolate = fill is None and not node.get("bounds_error", True)

    def f(*x):
        out = 0.0
        idx = [_axis_weights(xi, p) for xi, p in zip(x, pts)]
        if len(pts) == 1:
            (i, w), = idx
            out = table[i] * (1 - w) + table[i + 1] * w
        else:
            (i, wi), (j, wj) = idx
            out = ((table[i, j] * (1 - wj) + table[i, j + 1] * wj) * (1 - wi)
                   + (table[i + 1, j] * (1 - wj) + table[i + 1, j + 1] * wj) * wi)
        if not extrapolate:
            inside = np.logical_and.reduce([(xi >= p[0]) & (xi <= p[-1]) for xi, p in zip(x, pts)])
            out = np.where(inside, out, np.nan if fill is None else float(fill))
        return (out,)
    return Transform(len(pts), 1, f, None)


def _constant(node):
    v = _value(node["value"])
    n = int(node.get("dimensions", 1))
    return Transform(n, 1, lambda *x: (np.full(np.shape(x[0]), v),), None)


_MAKERS = {"shift": _shift, "scale": _scale, "identity": _identity, "remap_axes": _remap,
           "compose": _compose, "concatenate": _concatenate, "rotate2d": _rotate2d, "affine": _affine,
           "polynomial": _polynomial, "constant": _constant, "tabular": _tabular,
           "add": _arith(np.add), "subtract": _arith(np.subtract), "multiply": _arith(np.multiply),
           "divide": _arith(np.divide)}


def _core_only():
    """asdf with only its core plugins: transforms stay tagged dicts, astropy is not imported."""
    from ..io.asdftree import plugins_only

    return plugins_only({"asdf", "asdf_standard"})


def open_tree(path):
    """The whole tree of an ASDF file (arrays read into memory), transforms as tagged dicts: by
    :mod:`webbspec.io.asdfread` (0.03 s for the 8 optical-model files, no asdf import), else
    through asdf with only its core plugins."""
    from ..io import asdfread

    try:
        return asdfread.read_tree(path)
    except asdfread.Unsupported:
        pass
    import asdf

    with _core_only(), warnings.catch_warnings():
        warnings.simplefilter("ignore")          # "tag ... is not recognized": that is the point
        with asdf.open(path, memmap=False, lazy_load=False) as af:
            return _materialize(af.tree)



_TREES = {}


def reference_tree(reftype, path, model_type):
    """The tree of the ASDF reference file ``path`` (cached by path and mtime), checked to be a
    ``reftype`` reference of the stdatamodels class ``model_type``; InputError naming the file."""
    from ..errors import InputError

    path = str(path)
    if not os.path.isfile(path):
        raise InputError(path, f"{reftype} reference file does not exist")
    key = (path, os.stat(path).st_mtime_ns)
    if key not in _TREES:
        try:
            _TREES[key] = open_tree(path)
        except Exception as exc:
            raise InputError(path, f"not a readable ASDF {reftype} reference ({type(exc).__name__}: {exc})") from None
    meta = _TREES[key].get("meta") or {}
    got = str(meta.get("reftype", "")).lower()
    if got != reftype or meta.get("model_type", model_type) != model_type:
        raise InputError(path, f"not a {reftype} reference (REFTYPE {got or 'missing'!r}, "
                               f"model {meta.get('model_type')!r})")
    return _TREES[key]

def _materialize(node):
    """A copy of ``node`` that outlives the file (arrays copied, tags kept)."""
    if isinstance(node, dict):
        out = type(node)() if hasattr(node, "_tag") else {}
        if hasattr(node, "_tag"):
            out._tag = node._tag
        for k, v in node.items():
            out[k] = _materialize(v)
        return out
    if isinstance(node, (list, tuple)):
        out = [_materialize(v) for v in node]
        if hasattr(node, "_tag"):
            tl = type(node)(out)
            tl._tag = node._tag
            return tl
        return out
    if isinstance(node, np.ndarray):
        return np.array(node)
    return node
