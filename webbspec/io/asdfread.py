"""Reading an ASDF file's tree without the asdf library: YAML through libyaml, arrays from the
binary blocks.

Why: a reference file of the NIRSpec optical model is a small YAML tree of transforms and a few
arrays, and a Stage 2 job reads eight of them. Through asdf (even with only its core plugins)
that costs ~0.35 s per process: importing asdf, loading its manifests with the pure-Python YAML
parser, and the tree. This reader parses the YAML with libyaml (``yaml.CSafeLoader``), keeps every
tagged node as a dict / list / str carrying its ``_tag`` (the same shape asdf gives for tags it does
not know), and turns ``core/ndarray`` nodes into numpy arrays from the uncompressed blocks.
Anything it does not handle (compressed blocks, streamed blocks, external array files) raises
:class:`Unsupported`, and the caller falls back to asdf.
"""

import struct

import numpy as np
import yaml

__all__ = ["read_tree", "read_reference", "Unsupported", "Tagged", "TaggedList", "TaggedString"]

_BLOCK_MAGIC = b"\xd3BLK"
_DTYPES = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4", "uint32": "u4",
           "int64": "i8", "uint64": "u8", "float32": "f4", "float64": "f8", "bool8": "b1",
           "complex64": "c8", "complex128": "c16"}


class Unsupported(Exception):
    """A feature of the file this reader leaves to asdf."""


class Tagged(dict):
    _tag = ""


class TaggedList(list):
    _tag = ""


class TaggedString(str):
    _tag = ""


class _Loader(yaml.CSafeLoader):
    pass


def _construct_tagged(loader, tag, node):
    if isinstance(node, yaml.MappingNode):
        out = Tagged(loader.construct_mapping(node, deep=True))
    elif isinstance(node, yaml.SequenceNode):
        out = TaggedList(loader.construct_sequence(node, deep=True))
    else:
        out = TaggedString(loader.construct_scalar(node))
    out._tag = tag
    return out


_Loader.add_multi_constructor("tag:", lambda loader, suffix, node: _construct_tagged(loader, "tag:" + suffix, node))
_Loader.add_multi_constructor("asdf:", lambda loader, suffix, node: _construct_tagged(loader, "asdf:" + suffix, node))


def _blocks(data, start):
    """The data of every block from byte ``start`` on (uncompressed only)."""
    out, pos = [], data.find(_BLOCK_MAGIC, start)
    while pos >= 0 and data[pos:pos + 4] == _BLOCK_MAGIC:
        (hsize,) = struct.unpack(">H", data[pos + 4:pos + 6])
        head = data[pos + 6:pos + 6 + hsize]
        flags, compression, allocated, used, size = struct.unpack(">I4sQQQ", head[:32])
        if compression.strip(b"\0") or flags & 1:
            raise Unsupported("compressed or streamed block")
        begin = pos + 6 + hsize
        out.append(data[begin:begin + used])
        pos = begin + allocated
    return out


def _dtype(datatype, byteorder):
    """numpy dtype of an ASDF datatype: a scalar name, [ascii|ucs4, n], or a list of fields."""
    order = ">" if byteorder == "big" else "<"
    if isinstance(datatype, str):
        if datatype not in _DTYPES:
            raise Unsupported(f"datatype {datatype!r}")
        return np.dtype(order + _DTYPES[datatype])
    if len(datatype) == 2 and datatype[0] in ("ascii", "ucs4") and isinstance(datatype[1], int):
        return np.dtype(("S" if datatype[0] == "ascii" else order + "U") + str(datatype[1]))
    fields = []
    for f in datatype:
        if not isinstance(f, dict) or "datatype" not in f:
            raise Unsupported(f"datatype {datatype!r}")
        sub = _dtype(f["datatype"], f.get("byteorder", byteorder))
        fields.append((f.get("name", ""), sub, tuple(f["shape"])) if "shape" in f else (f.get("name", ""), sub))
    return np.dtype(fields)


def _ndarray(node, blocks):
    dtype = _dtype(node.get("datatype"), node.get("byteorder", "little"))
    shape = tuple(node.get("shape", ()))
    if "data" in node:
        if dtype.names:
            raise Unsupported("inline structured array")
        return np.array(node["data"], dtype=dtype).reshape(shape)
    source = node.get("source")
    if not isinstance(source, int) or "strides" in node:
        raise Unsupported("external or strided array")
    arr = np.frombuffer(blocks[source], dtype=dtype, count=int(np.prod(shape, dtype=np.int64)),
                        offset=int(node.get("offset", 0)))
    return arr.reshape(shape).copy()          # owning its memory, outliving the file


def _resolve(node, blocks):
    tag = getattr(node, "_tag", "")
    if isinstance(node, dict) and "/core/ndarray-" in tag:
        return _ndarray(node, blocks)
    if isinstance(node, dict):
        for k, v in node.items():
            node[k] = _resolve(v, blocks)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            node[i] = _resolve(v, blocks)
    return node


def read_tree(path):
    """The tree of the ASDF file ``path`` (tagged nodes keep ``_tag``; arrays read into memory)."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(b"#ASDF"):
        raise Unsupported("not an ASDF file")
    end = data.find(b"\n...", 0)
    if end < 0:
        raise Unsupported("no YAML tree")
    end += 4
    tree = yaml.load(data[:end], Loader=_Loader)
    return _resolve(dict(tree), _blocks(data, end))        # the root as a plain mapping, as asdf gives it


def read_reference(path, what):
    """The tree of the ASDF reference file ``path``; a one-line InputError naming the file and
    ``what`` it should be (e.g. "IFU apcorr") when it is missing or not readable ASDF."""
    from ..errors import InputError

    try:
        return read_tree(path)
    except FileNotFoundError:
        raise InputError(path, f"{what} reference file does not exist") from None
    except Unsupported as exc:
        raise InputError(path, f"not an {what} reference (ASDF) ({exc})") from None
    except Exception as exc:    # YAML or decoding errors
        raise InputError(path, f"not an {what} reference (ASDF) ({type(exc).__name__})") from None
