"""Deserialize an exposure's ASDF tree slit by slit, converting each distinct subtree once.

The slits of one official multi-slit `_cal` each carry a complete gwcs, and most of it is the same
from slit to slit: every NIRSpec slit repeats the detector->sca->gwa transforms and the
msa->oteip->v2v3->world ones (polynomials of hundreds of coefficients, each slit with its own
copy of the coefficient blocks), and only the slit-selection pieces differ. Read naively, a
100-slit exposure costs 30 s and 530 MB in one process: 8 MB of YAML become 10^6 Python objects
and every transform is built again for every slit. Here:

- the YAML is parsed one slit at a time (:func:`_split_slits`), with Python's cyclic GC paused
  (it would re-scan the growing heap again and again: 2.5x slower parsing); only the slits
  asked for, and of each only its ``meta.wcs`` when the caller needs no more;
- a ``transform:`` block whose text was seen in an earlier slit is not parsed again
  (:class:`_BlockCache`): the slit's document holds a placeholder for the parsed one;
- after each slit, :class:`Sharer` replaces every tagged subtree equal to one seen before by
  that one (arrays in binary blocks compared by content), so the duplicates are freed at once
  and only distinct content stays in memory;
- asdf converts a node object that appears twice only once (as for YAML anchors), so each
  distinct transform is built once and shared by the slits that have it. The converted models
  are only evaluated, never modified, so sharing them is safe.

A tree whose slits cannot be parsed apart (no top-level ``slits:`` list, or an anchor used across
slits) is parsed whole, with the same sharing.
"""

import collections
import contextlib
import gc
import hashlib
import io
import re
import warnings

__all__ = ["open_shared", "Sharer"]

_SCALARS = (str, int, float, bool, type(None))
_BLOCK_MAGIC = b"\xd3BLK"
_END = b"\n...\n"


class Sharer:
    """Makes structurally equal tagged dicts/lists one object, across every tree it is given.

    Post-order: each container gets a small integer id from its (tag, children ids), so equal
    subtrees get equal ids without deep comparisons. An ndarray stored in a binary block
    (``source: <block index>``) is compared by ``block_digest(index)`` (its content) when given,
    else by index.
    """

    def __init__(self, block_digest=None):
        self.block_digest = block_digest
        self.ids = {}       # shallow structural key -> id
        self.first = {}     # id -> the tagged container kept for it
        self.replaced = 0
        self.blocks = []    # (id, container) of the blocks parsed beforehand (_BlockCache)

    def share(self, node):
        """The canonical object for ``node`` (itself if new); its subtrees are shared in place."""
        if not isinstance(node, (dict, list)):
            return node
        return self._visit(node)[1]

    @staticmethod
    def _leaf(value):
        if isinstance(value, str):    # asdf's tagged strings are not hashable; keep their tag
            return (str, getattr(value, "_tag", None), str(value))
        if isinstance(value, _SCALARS):
            return (type(value), value)  # type kept apart: 1, 1.0 and True must not merge
        return ("obj", id(value))

    def _child(self, container, index, value):
        cid, canon = self._visit(value)
        if canon is not value:
            container[index] = canon
            self.replaced += 1
        return cid

    def _visit(self, node):
        tag = getattr(node, "_tag", None)
        if isinstance(node, dict):
            array = self.block_digest is not None and "/ndarray-" in (tag or "")
            parts = []
            for k, v in node.items():
                if isinstance(v, (dict, list)):
                    parts.append((k, self._child(node, k, v)))
                elif array and k == "source" and type(v) is int:
                    parts.append((k, ("block", self.block_digest(v))))
                elif self.blocks and getattr(v, "_tag", None) == _PLACEHOLDER:
                    cid, node[k] = self.blocks[int(v)]
                    parts.append((k, cid))
                else:
                    parts.append((k, self._leaf(v)))
            key = ("d", tag, tuple(parts))
        else:
            parts = [self._child(node, i, v) if isinstance(v, (dict, list)) else self._leaf(v)
                     for i, v in enumerate(node)]
            key = ("l", tag, tuple(parts))
        cid = self.ids.setdefault(key, len(self.ids))
        if tag is None:
            return cid, node    # untagged containers stay where they are
        return cid, self.first.setdefault(cid, node)


def open_shared(raw, only=None, wcs_only=False):
    """``(asdf file, converted tree, number of slits in the file)`` of the ASDF bytes ``raw``,
    identical subtrees shared.

    ``only``: indices of the slits to keep in ``tree["slits"]`` (in that order); the others are
    not converted and, when the slits can be parsed apart, not even parsed (an exp_to_source
    job that handles part of an exposure's sources). ``wcs_only``: of a slit parsed apart, only
    ``meta.wcs`` is parsed (the slit's tree is ``{"meta": {"wcs": ...}}``) when that block stands
    on its own. Keep the file open while the tree is used (arrays inside load lazily from its
    blocks).
    """
    import asdf
    import yaml
    from asdf import yamlutil

    with _gwcs_config(), warnings.catch_warnings(), _gc_paused():
        warnings.simplefilter("ignore")
        parts = _split_slits(raw, only)
        tagged = None
        if parts is not None:
            head, slit_docs, total, blocks_file = parts
            # the blocks alone, behind an empty tree: the arrays of the slits' trees load from it
            af = asdf.open(io.BytesIO(blocks_file), memmap=False, lazy_load=True, lazy_tree=True)
            sharer = Sharer(_block_digest(af))
            cache = _BlockCache(sharer)
            try:
                tagged = yaml.load(head, Loader=yamlutil.AsdfLoader)  # noqa: S506 (safe loader)
                tagged["slits"] = []
                for doc in slit_docs:
                    doc = cache.reduce(_wcs_alone(doc) if wcs_only else doc)
                    tagged["slits"].append(sharer.share(yaml.load(doc, Loader=yamlutil.AsdfLoader)))  # noqa: S506
                    # the parser leaves reference cycles: collect this slit's young objects
                    # (only they are scanned; the kept ones move to an older generation)
                    gc.collect(0)
            except yaml.YAMLError:   # e.g. an anchor defined in one slit, used in another
                af.close()
                tagged = None
        if tagged is None:
            # lazy_tree: the tagged tree as parsed (no converting, no copying walk) under the root
            af = asdf.open(io.BytesIO(raw), memmap=False, lazy_load=True, lazy_tree=True)
            tagged = af.tree.data.data
            total = len(tagged.get("slits", []))
            if only is not None and total:
                tagged["slits"] = [tagged["slits"][i] for i in only]
            Sharer(_block_digest(af)).share(tagged)
        tree = yamlutil.tagged_tree_to_custom_tree(tagged, af)
    return af, tree, total


# The asdf plugins (by distribution) a JWST product's gwcs tree needs: the core and standard
# schemas, astropy's converters, gwcs and the JWST transforms (stdatamodels' transforms, not its
# datamodel schemas).
_PLUGINS = {"asdf", "asdf_standard", "asdf_astropy", "asdf_transform_schemas", "asdf_wcs_schemas",
            "asdf_coordinates_schemas", "gwcs", "stdatamodels"}
_loaded = {}   # frozenset of distributions -> (resource mapping proxies, extension proxies)


@contextlib.contextmanager
def plugins_only(distributions):
    """An asdf configuration that reads without schema validation (half the read time) and with
    the plugins of ``distributions`` only (each set loaded once per process). asdf otherwise
    imports every installed package's plugins the first time it needs one (specutils, ndcube,
    stpipe, the datamodel schemas): 1 s and ~50 MB more in a process that only reads a gwcs. An
    asdf whose configuration does not keep its plugin lists where we expect gets the default ones."""
    import asdf

    key = frozenset(distributions)
    with asdf.config_context() as cfg:
        cfg.validate_on_read = False
        if all(hasattr(cfg, a) for a in ("_resource_mappings", "_extensions", "_resource_manager")):
            if key not in _loaded:
                from asdf.extension import ExtensionProxy
                from asdf.resource import ResourceMappingProxy

                mappings = _load_plugins("asdf.resource_mappings", ResourceMappingProxy, key)
                # set first: loading the extensions reads their manifests through them
                cfg._resource_mappings, cfg._resource_manager = mappings, None
                _loaded[key] = (mappings, _load_plugins("asdf.extensions", ExtensionProxy, key))
            cfg._resource_mappings, cfg._extensions = _loaded[key]
            cfg._resource_manager = None
        yield


def _gwcs_config():
    return plugins_only(_PLUGINS)


def _load_plugins(group, proxy, distributions):
    """The plugins of entry point ``group`` from ``distributions``, in asdf's order (by package,
    asdf's own last)."""
    from importlib.metadata import entry_points

    points = [p for p in entry_points(group=group) if p.dist is not None
              and ".datamodels." not in p.value and p.dist.name.lower().replace("-", "_") in distributions]
    out = []
    for p in sorted(points, key=lambda p: (p.dist.name == "asdf", p.dist.name)):
        try:
            elements = p.load()()
        except Exception as exc:   # as asdf does: a broken plugin is skipped with a warning
            warnings.warn(f"asdf plugin {p.value} of {p.dist.name} failed to load: {exc}")
            continue
        for e in elements if isinstance(elements, list) else [elements]:
            out.append(proxy(e, package_name=p.dist.name, package_version=p.dist.version))
    return out


_PLACEHOLDER = "tag:webbspec/parsed-block"
# a ``transform:`` key whose value is a tagged block mapping (its keys on the following lines)
_TRANSFORM = re.compile(rb"(?m)^( *)transform: (![^\s{\[]+)\n")
_ANCHORS = re.compile(rb"[&*](\w+)")
_SOURCE = re.compile(rb"(?m)(/ndarray-[\d.]+>?\n +source: )(\d+)$")   # asdf writes source first


class _BlockCache:
    """Each distinct ``transform:`` block of the slit documents is parsed (and shared) once.

    Most of a slit's YAML is its gwcs transforms, and slits repeat the same ones (the detector,
    grating and telescope transforms). Before a slit document is parsed, every transform block
    equal to one seen before is replaced by a placeholder that :class:`Sharer` turns into the
    shared object; a new block is parsed on its own, then cached. Equal means: same text once
    anchor names are numbered in order and block indices replaced by the block content key. A
    block with an anchor or alias reaching outside it stays in the document.
    """

    def __init__(self, sharer):
        self.sharer = sharer
        self.seen = {}      # canonical text digest -> index in sharer.blocks
        self.ends = {}      # indentation -> pattern of the first line after a block

    def reduce(self, doc):
        import yaml
        from asdf import yamlutil

        directives = doc[:doc.find(b"\n---") + 1]
        uses = None
        out, pos = [], 0
        for m in _TRANSFORM.finditer(doc):
            if m.start() < pos:
                continue   # inside a block already replaced
            ind = len(m.group(1))
            end_re = self.ends.get(ind) or self.ends.setdefault(
                ind, re.compile(rb"(?m)^ {0,%d}[^ \n]" % ind))
            e = end_re.search(doc, m.end())
            end = e.start() if e else len(doc)
            body = doc[m.end():end]
            if not body.startswith(b" " * (ind + 2)) or body[ind + 2:ind + 3] in (b" ", b"-"):
                continue   # not a block mapping at the next indentation
            names = _ANCHORS.findall(body)
            if names:
                if uses is None:
                    uses = collections.Counter(re.findall(rb"\*(\w+)", doc))
                inside = collections.Counter(re.findall(rb"\*(\w+)", body))
                defined = set(re.findall(rb"&(\w+)", body))
                if any(n not in defined for n in inside) or any(uses.get(n, 0) != inside.get(n, 0)
                                                                  for n in defined):
                    continue   # tied to the rest of the document
            key = hashlib.blake2b(self._canonical(body, names), digest_size=16).digest()
            index = self.seen.get(key)
            if index is None:
                sub = directives + b"--- " + m.group(2) + b"\n" + \
                    re.sub(rb"(?m)^ {%d}" % (ind + 2), b"", body) + b"...\n"
                self.sharer.blocks.append(self.sharer._visit(yaml.load(sub, Loader=yamlutil.AsdfLoader)))  # noqa: S506
                index = self.seen[key] = len(self.sharer.blocks) - 1
            out += [doc[pos:m.start()], m.group(1), b"transform: !<%s> '%d'\n" % (_PLACEHOLDER.encode(), index)]
            pos = end
        return b"".join(out) + doc[pos:] if out else doc

    def _canonical(self, body, names):
        if names:   # a one-line value anchored in one slit is written out in the next ones
            flows = {m.group(1): m.group(2) for m in _ANCHOR.finditer(body)
                     if m.group(2).count(b"[") == m.group(2).count(b"]")
                     and m.group(2).count(b"{") == m.group(2).count(b"}")}
            if flows:
                body = _ALIAS.sub(lambda a: flows.get(a.group(1), a.group(0)), body)
                body = re.sub(rb"&(\w+) ", lambda a: b"" if a.group(1) in flows else a.group(0), body)
                names = _ANCHORS.findall(body)
        order = {n: b"a%d" % i for i, n in enumerate(dict.fromkeys(names))}
        if order:
            body = _ANCHORS.sub(lambda a: a.group(0)[:1] + order[a.group(1)], body)
        digest = self.sharer.block_digest
        if digest is not None:
            body = _SOURCE.sub(lambda s: s.group(1) + repr(digest(int(s.group(2)))).encode(), body)
        return body


_META_WCS = re.compile(rb"(?m)^(?:--- )?meta:\n(?:  [^\n]*\n)*?(  wcs: ![^\s{\[]+\n)")
_AFTER_WCS = re.compile(rb"(?m)^ {0,2}[^ \n]")


def _wcs_alone(doc):
    """The slit document reduced to ``meta: {wcs: ...}`` (the rest of the slit's metadata is a
    third of its YAML), or ``doc`` if the wcs block is not found or uses an anchor outside it."""
    m = _META_WCS.search(doc)
    if m is None:
        return doc
    e = _AFTER_WCS.search(doc, m.end())
    block = doc[m.start(1):e.start() if e else len(doc)]
    if not set(re.findall(rb"\*(\w+)", block)) <= set(re.findall(rb"&(\w+)", block)):
        return doc
    return doc[:doc.find(b"\n---") + 1] + b"---\nmeta:\n" + block + b"...\n"


def _split_slits(raw, only=None):
    """``(head YAML, [one YAML document per slit of only], number of slits, blocks-only ASDF
    bytes)``, or ``None``.

    The tree's YAML is block style: a top-level ``slits:`` key followed by its items, each
    starting with ``- `` in column 0. An item becomes a document of its own (same directives,
    indentation removed; only the items of ``only``, default all); the head is the tree with
    ``slits: []``.
    """
    end = raw.find(_END)
    start = raw.find(b"\n---")
    if end < 0 or start < 0:
        return None
    directives = raw[:start + 1]
    body = raw[start + 1:end + 1]
    m = re.search(rb"(?m)^slits:[ \t]*\n", body)
    if m is None:
        return None
    at = m.end()
    if body[at:at + 2] != b"- ":
        return None
    # the next top-level line after the items, and the items, found as "\n" + line start (no
    # per-line regex anchors, no copies of the text: the items are most of a tree of ~100 MB)
    stop = _TOP_LEVEL.search(body, at)
    stop = stop.start() + 1 if stop else len(body)
    after = body[stop:]
    items = body[at + 2:stop].split(b"\n- ")
    docs = []
    for i in (range(len(items)) if only is None else only):
        # each item but the last lost its final newline to the split
        item = items[i] if i == len(items) - 1 else items[i] + b"\n"
        first, _, others = item.partition(b"\n")
        # every line of an item is indented by 2 (the stop pattern ended the items otherwise)
        lines = [ln[2:] for ln in others.split(b"\n")]
        # a node property (tag, anchor) or flow value may follow "--- ", a mapping key may not
        start = b"--- " if first[:1] in (b"!", b"&", b"{", b"[") else b"---\n"
        docs.append(directives + start + first + b"\n" + b"\n".join(lines) + b"\n...\n")
    head = directives + body[:m.start()] + b"slits: []\n" + after + b"...\n"
    try:
        head, *docs = _resolve_cross_aliases([head] + docs, body)
    except KeyError:
        return None
    blocks_at = raw.find(_BLOCK_MAGIC, end)
    blocks = raw[blocks_at:] if blocks_at >= 0 else b""
    index_at = blocks.rfind(b"#ASDF BLOCK INDEX")
    if index_at >= 0:   # the index holds offsets into the original file: drop it
        blocks = blocks[:index_at]
    blocks_file = directives + b"--- !core/asdf-1.1.0 {}\n...\n" + blocks
    return head, docs, len(items), blocks_file


_TOP_LEVEL = re.compile(rb"\n(?:[^ \n-]|-[^ ]| [^ ])")   # a line not in the slits list
_ANCHOR = re.compile(rb"(?m)&(id\d+) ([\[{][^\n]*)$")
_ALIAS = re.compile(rb"\*(id\d+)\b")


def _resolve_cross_aliases(docs, body):
    """``docs`` with every alias to an anchor of another document replaced by the anchored text.

    asdf anchors objects its writer saw twice, and the small default ones are shared between
    slits (a polynomial's ``domain: &id003 [-1, 1]`` in slit 1, ``*id003`` in slit 2). Only
    one-line flow values can be copied so; any other cross-document alias raises KeyError.
    """
    inline = {}
    for m in _ANCHOR.finditer(body):
        text = m.group(2)
        if text.count(b"[") == text.count(b"]") and text.count(b"{") == text.count(b"}"):
            inline[m.group(1)] = text
    out = []
    for doc in docs:
        own = set(re.findall(rb"&(id\d+)\b", doc))

        def value(a):
            name = a.group(1)
            return a.group(0) if name in own else inline[name]

        out.append(_ALIAS.sub(value, doc))
    return out


@contextlib.contextmanager
def _gc_paused():
    """Cyclic GC off while ~10^6 objects are built (none of them garbage); afterwards the
    survivors are frozen so later collections do not scan them again (refcounting still frees
    them)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _block_digest(af):
    """``index -> content key`` of the file's binary blocks: the MD5 asdf stores in each block
    header, or a hash of the bytes where the writer left it empty. ``None`` (compare by index)
    if this asdf version keeps its blocks elsewhere."""
    try:
        blocks = af._blocks.blocks   # private in asdf 5; guarded here and per block below
        len(blocks)
    except Exception:
        return None
    cache = {}

    def digest(index):
        if index not in cache:
            try:
                blk = blocks[index]
                head = blk.header
                check = bytes(head.get("checksum", b""))
                if not check.strip(b"\0"):
                    check = hashlib.blake2b(blk.data.tobytes(), digest_size=16).digest()
                cache[index] = (check, head.get("data_size"), bytes(head.get("compression", b"")))
            except Exception:
                cache[index] = ("index", index)
        return cache[index]

    return digest
