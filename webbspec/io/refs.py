"""The reference store: a CRDS cache whose numbered pmaps select reference files per exposure.

A store (a program's ``refs/``, or a real CRDS cache: ``$CRDS_PATH``) holds
``mappings/jwst/*.pmap|imap|rmap`` and ``references/jwst/<instrument>/<file>``; the formats and
how they are read (the ``crds`` package, offline) are in :mod:`webbspec.io.crdsmap`. A context
is a pmap, named by its name (``webbspec_0002``), its file name or its path; the newest (highest
number) is used unless one is named.

Selection is CRDS': the instrument's imap gives the reftype's rmap, whose Match rows match the
exposure's PRIMARY keywords (EXP_TYPE, DETECTOR, FILTER, GRATING, ... as the rmap's parkeys
name them; N/A matches anything) and whose UseAfter picks the newest file not after DATE-OBS
TIME-OBS. No rmap, an N/A rmap, no matching row -> "N/A".

A selected file missing from the store is an :class:`InputError` naming the rmap and the file,
raised when that file is selected (``strict=True``) -- or, by default, deferred: the selection
comes back as the rmap's path (an existing file, so the workflow's job for that exposure depends
on it and is planned), and the step that gets it raises the error (:func:`check_selection`, from
:func:`webbspec.pipeline.steprun.run_step` and :mod:`webbspec.pipeline.stage3`). Exposures that
select only files that exist are not affected.
"""

import os

from ..errors import InputError
from . import crdsmap
from .provenance import REF_KEYWORDS, reference_cards, reference_keyword  # noqa: F401

__all__ = ["bestrefs", "list_contexts", "load_context", "context_path", "diff_contexts",
           "CONTEXT_SUFFIX", "check_selection", "is_deferred", "default_store", "newest_context",
           "derive_context", "write_context"]

CONTEXT_SUFFIX = ".pmap"
write_context = crdsmap.write_context
newest_context = crdsmap.newest_context
default_store = crdsmap.default_store


def list_contexts(store_dir):
    """Context names in the store, oldest first (sorted by their number, then name)."""
    return [crdsmap.context_name(p) for p in crdsmap.list_pmaps(store_dir)]


def context_path(store_dir, context=None):
    """Path of pmap ``context`` (name, file name or path); the newest when None."""
    store_dir = str(store_dir)
    if context:
        context = str(context)
        if os.path.isfile(context):
            return context
        name = context if context.endswith(CONTEXT_SUFFIX) else context + CONTEXT_SUFFIX
        path = os.path.join(crdsmap.mappings_dir(store_dir), os.path.basename(name))
        if not os.path.isfile(path):
            raise InputError(path, "reference context does not exist")
        return path
    if not os.path.isdir(store_dir):
        raise InputError(store_dir, "reference store directory does not exist")
    paths = crdsmap.list_pmaps(store_dir)
    if not paths:
        raise InputError(store_dir, f"no mappings/{crdsmap.OBSERVATORY}/*{CONTEXT_SUFFIX} context in the reference store")
    return paths[-1]


def load_context(store_dir, context=None, strict=True):
    """(pmap path, crds PipelineContext) of the context, read and checked (syntax, sha1sum).

    ``strict``: every imap / rmap it names must load and every reference file its rmaps name must
    be in the store (else InputError naming the mapping and the file). The imaps and rmaps are
    otherwise read on demand, as selections need them.
    """
    path = context_path(store_dir, context)
    ctx = crdsmap.load_pmap(path)
    if strict:
        for instrument in dict(ctx.selector):
            imap = crdsmap.child_mapping(ctx, instrument, ctx.get_imap)
            if imap is None:
                continue
            for rt in dict(imap.selector):
                rmap = crdsmap.child_mapping(imap, rt, imap.get_rmap)
                if rmap is None:
                    continue
                for name in rmap.reference_names():
                    if not os.path.isfile(crdsmap.reference_path(store_dir, instrument, name)):
                        raise InputError(rmap.filename, f"{str(rt).lower()} selection names missing file {name}")
    return path, ctx


def _store_of(pmap_path):
    """The store (cache root) of a pmap: <store>/mappings/jwst/x.pmap (relative stays relative,
    so that the workflow's inputs and parameters do not change when a program is moved)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(str(pmap_path)))) or "."


def bestrefs(header, reftypes, store_dir, context=None, strict=False):
    """{reftype: path or "N/A"} for the PRIMARY ``header``.

    A selected file missing from the store: ``strict`` raises InputError naming the rmap and the
    file; otherwise the value is the rmap's path (see the module docstring and
    :func:`check_selection`).
    """
    pmap = context_path(store_dir, context)
    store = _store_of(pmap)
    instrument = str(header.get("INSTRUME", "") or "").strip()
    out = {}
    for rt, (name, rmap) in crdsmap.select(pmap, header, tuple(reftypes)).items():
        if name is None:
            out[rt] = "N/A"
            continue
        path = crdsmap.reference_path(store, instrument, name)
        if not os.path.isfile(path):
            rmap = os.path.join(os.path.dirname(pmap), os.path.basename(rmap))   # beside the pmap
            if strict:
                raise InputError(rmap, f"{str(rt).lower()} selection names missing file {name}")
            path = rmap
        out[rt] = path
    return out


def is_deferred(path):
    """True for a selection that came back as a mapping (a missing file, see :func:`bestrefs`)."""
    return crdsmap.is_mapping(path)


def check_selection(refs, header):
    """Raise the deferred error of a selection that came back as an rmap path (``refs``:
    {reftype: path}); ``header`` is the PRIMARY header the selection was made for."""
    for rt, path in (refs or {}).items():
        if not is_deferred(path):
            continue
        path = str(path)
        rmap = crdsmap.load_rmap(path)
        name = crdsmap.select_in_rmap(rmap, header)
        if name is not None:
            store = _store_of(path)
            if not os.path.isfile(crdsmap.reference_path(store, str(header.get("INSTRUME", "")), name)):
                raise InputError(path, f"{str(rt).lower()} selection names missing file {name}")
        raise InputError(path, f"the context gives no usable {rt} reference")


def derive_context(store_dir, old, number, replace=None, add=()):
    """A new context (pmap) from context ``old`` with reference files replaced ({old name: new
    name}) and / or selections added (see :func:`webbspec.io.crdsmap.derive_context`); returns
    its name."""
    path = crdsmap.derive_context(store_dir, context_path(store_dir, old), number, replace=replace, add=add)
    return crdsmap.context_name(path)


def diff_contexts(store_dir, old, new, headers, reftypes=None):
    """Selections that change between contexts ``old`` and ``new``.

    ``headers``: {name: PRIMARY header}. Returns a list of (name, reftype, old path or "N/A",
    new path or "N/A"), for ``reftypes`` (default: every reftype of either context's imaps for
    the headers' instruments).
    """
    if reftypes is None:
        types = set()
        for c in (old, new):
            ctx = crdsmap.load_pmap(context_path(store_dir, c))
            for ins in {str(h.get("INSTRUME", "")).upper() for h in headers.values()}:
                imap = crdsmap.child_mapping(ctx, ins, ctx.get_imap) if ins else None
                types |= {str(k).lower() for k in dict(imap.selector)} if imap is not None else set()
        reftypes = sorted(types)
    types = tuple(reftypes)
    changes = []
    for name, hdr in sorted(headers.items()):
        a = bestrefs(hdr, types, store_dir, old)
        b = bestrefs(hdr, types, store_dir, new)
        changes += [(name, rt, a[rt], b[rt]) for rt in types if a[rt] != b[rt]]
    return changes
