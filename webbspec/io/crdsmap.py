"""CRDS mapping files: the reference store is a CRDS cache.

A store (a program's ``refs/``, or a real CRDS cache such as ``$CRDS_PATH``) is laid out as CRDS
lays out its cache::

    <store>/mappings/jwst/webbspec_0002.pmap                 instrument -> imap
    <store>/mappings/jwst/webbspec_nirspec_0002.imap         reftype -> rmap, or N/A
    <store>/mappings/jwst/webbspec_nirspec_fflat_0002.rmap   header selectors -> reference file
    <store>/references/jwst/nirspec/<file>                   the reference files
                                                             (a flat cache: references/jwst/<file>)

An rmap is the real CRDS syntax: ``header = {...}`` (``parkey`` names the selectors as JWST
datamodel paths, e.g. ``(('META.INSTRUMENT.DETECTOR', 'META.EXPOSURE.TYPE'),
('META.OBSERVATION.DATE', 'META.OBSERVATION.TIME'))``) and ``selector = Match({(values...) :
UseAfter({'date time' : 'file'})})``, a value being one string, ``'A|B'`` (any of) or ``'N/A'``
(any value, even a missing keyword). CRDS picks the most specific Match row, then the newest
USEAFTER not after the exposure's DATE-OBS TIME-OBS.

Reading goes through the ``crds`` package, offline: ``crds.core.rmap.load_mapping(name,
path=dir)`` parses and checks a mapping (syntax, sha1sum) from the directory given, and loads the
imaps / rmaps it names on demand, from the same directory. No server is asked and no CRDS
configuration is read on this path (CRDS_MODE, CRDS_SERVER_URL, CRDS_OBSERVATORY matter only to
crds' client and sync functions, which are never called; the observatory comes from the pmap's
header). crds is imported on first use (measured: ~0.25 s on top of numpy + astropy.io.fits,
which the workflow has loaded anyway); a loaded context is cached per process (path + mtime), a
selection then costs ~0.05 ms per reference type.

Two things are ours, not crds':
- the FITS keyword of a datamodel path (:data:`FITS_KEYWORDS`): crds derives it from the jwst
  datamodel schemas (``crds.jwst.schema.dm_to_fits``), which costs ~1.7 s per process; it is
  used only for a parkey not in the table;
- writing mappings (:func:`write_context`, :func:`derive_context`): crds writes mappings only as
  edits of existing ones on its server side; new contexts here are written as text, with the
  ``sha1sum`` CRDS checks (SHA-1 of the text without the sha1sum line).
"""

import hashlib
import os
import re

from ..errors import InputError

__all__ = ["OBSERVATORY", "MAPPING_SUFFIXES", "FITS_KEYWORDS", "mappings_dir", "references_dir",
           "reference_path", "list_pmaps", "load_pmap", "select", "select_in_rmap", "is_mapping",
           "write_context", "derive_context", "rmap_rows", "context_name", "child_mapping", "load_rmap",
           "dataset_values", "diff_rmaps",
           "newest_context", "default_store"]

OBSERVATORY = "jwst"
MAPPING_SUFFIXES = (".pmap", ".imap", ".rmap")
USEAFTER_KEYS = ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")
NA = "N/A"

# JWST datamodel path -> FITS keyword, for the selectors JWST rmaps use (jwst core schema)
FITS_KEYWORDS = {
    "META.INSTRUMENT.NAME": "INSTRUME", "META.INSTRUMENT.DETECTOR": "DETECTOR",
    "META.INSTRUMENT.FILTER": "FILTER", "META.INSTRUMENT.GRATING": "GRATING",
    "META.INSTRUMENT.PUPIL": "PUPIL", "META.INSTRUMENT.CHANNEL": "CHANNEL",
    "META.INSTRUMENT.BAND": "BAND", "META.INSTRUMENT.MODULE": "MODULE",
    "META.INSTRUMENT.LAMP_STATE": "LAMP", "META.INSTRUMENT.LAMP_MODE": "OPMODE",
    "META.INSTRUMENT.FIXED_SLIT": "FXD_SLIT", "META.INSTRUMENT.CORONAGRAPH": "CORONMSK",
    "META.EXPOSURE.TYPE": "EXP_TYPE", "META.EXPOSURE.READPATT": "READPATT",
    "META.EXPOSURE.NGROUPS": "NGROUPS", "META.EXPOSURE.NINTS": "NINTS",
    "META.SUBARRAY.NAME": "SUBARRAY", "META.SUBARRAY.XSTART": "SUBSTRT1",
    "META.SUBARRAY.YSTART": "SUBSTRT2", "META.SUBARRAY.XSIZE": "SUBSIZE1",
    "META.SUBARRAY.YSIZE": "SUBSIZE2", "META.OBSERVATION.DATE": "DATE-OBS",
    "META.OBSERVATION.TIME": "TIME-OBS", "META.VISIT.TSOVISIT": "TSOVISIT",
    "META.TELESCOPE": "TELESCOP",
}
_DM_OF = {v: k for k, v in FITS_KEYWORDS.items()}
# crds' own type specs name EXP_TYPE twice; the real rmaps use META.EXPOSURE.TYPE
_SPEC_ALIASES = {"META.INSTRUMENT.EXP_TYPE": "META.EXPOSURE.TYPE"}
_NUM = re.compile(r"(\d+)$")


# ------------------------------------------------------------------ layout


def mappings_dir(store):
    return os.path.join(str(store), "mappings", OBSERVATORY)


def references_dir(store, instrument):
    return os.path.join(str(store), "references", OBSERVATORY, str(instrument).lower())


def reference_path(store, instrument, name):
    """Where a reference file named in a mapping lives: ``references/jwst/<instrument>/<name>``,
    else the flat cache layout ``references/jwst/<name>``; the first when neither exists."""
    path = os.path.join(references_dir(store, instrument), name)
    if os.path.isfile(path):
        return path
    flat = os.path.join(str(store), "references", OBSERVATORY, name)
    return flat if os.path.isfile(flat) else path


def is_mapping(path):
    return str(path).endswith(MAPPING_SUFFIXES)


def context_name(path):
    """``.../webbspec_0002.pmap`` -> ``webbspec_0002``."""
    base = os.path.basename(str(path))
    return base[:-5] if base.endswith(".pmap") else base


def list_pmaps(store):
    """Pipeline mappings of the store, oldest first (by trailing number, then name)."""
    d = mappings_dir(store)
    names = [n for n in os.listdir(d) if n.endswith(".pmap")] if os.path.isdir(d) else []

    def key(name):
        m = _NUM.search(name[:-5])
        return (int(m.group(1)) if m else -1, name)
    return [os.path.join(d, n) for n in sorted(names, key=key)]


def newest_context(store):
    """The newest context's name (highest-numbered pmap), or None (no store, no pmap)."""
    paths = list_pmaps(store) if store and os.path.isdir(str(store)) else []
    return context_name(paths[-1]) if paths else None


def default_store(near=None):
    """The store for files in directory ``near``: its ``refs/`` when there is one, else
    ``$CRDS_PATH`` when set (a CRDS cache), else None."""
    if near is not None:
        cand = os.path.join(str(near), "refs")
        if os.path.isdir(cand):
            return cand
    return os.environ.get("CRDS_PATH") or None


# ------------------------------------------------------------------ reading (crds)


_LOADED = {}     # pmap path -> ((pmap, directory mtime_ns), crds PipelineContext)
_DM_FITS = {}    # parkey -> FITS keyword resolved through crds' schema (slow path)


def _crds():
    import crds.core.rmap as crmap   # imported here: ~0.25 s, only where a selection is made

    return crmap


def _reason(exc):
    text = " ".join(str(exc).split())
    return (type(exc).__name__ + (": " + text if text else ""))[:200]


def load_pmap(path):
    """The crds ``PipelineContext`` of pmap ``path``, cached on (path, its and its directory's
    mtime; mappings are immutable once written, as in CRDS); InputError when the file is not a
    CRDS pipeline mapping."""
    path = os.path.abspath(str(path))
    try:       # a mapping added or removed beside it changes the directory's time: reload
        stamp = (os.stat(path).st_mtime_ns, os.stat(os.path.dirname(path)).st_mtime_ns)
    except OSError:
        raise InputError(path, "reference context does not exist") from None
    hit = _LOADED.get(path)
    if hit and hit[0] == stamp:
        return hit[1]
    crmap = _crds()
    try:
        ctx = crmap.load_mapping(os.path.basename(path), path=os.path.dirname(path))
    except Exception as exc:     # crds raises its own MappingError, ChecksumError, SyntaxError ...
        raise InputError(path, f"not a readable CRDS mapping ({_reason(exc)})") from None
    if getattr(ctx, "mapping_type", None) != "pipeline":
        raise InputError(path, "not a CRDS pipeline mapping (.pmap)")
    _LOADED[path] = (stamp, ctx)
    return ctx


def child_mapping(parent, key, getter):
    """``getter(key)`` on a crds context mapping, its errors as InputError naming the file:
    the parent when the child mapping is missing, the child when it cannot be read."""
    raw = {str(k).upper(): v for k, v in dict(parent.selector).items()}.get(str(key).upper())
    try:
        return getter(key)
    except Exception as exc:
        crexc = _crds().crexc
        if isinstance(exc, (crexc.IrrelevantReferenceTypeError, crexc.OmitReferenceTypeError,
                            crexc.CrdsUnknownReftypeError, crexc.CrdsUnknownInstrumentError)):
            return None
        if raw is None or not isinstance(raw, str):
            return None
        here = os.path.dirname(parent.filename)
        child = os.path.join(here, raw)
        if not os.path.isfile(child):
            raise InputError(parent.filename, f"names missing mapping {raw}") from None
        raise InputError(child, f"not a readable CRDS mapping ({_reason(exc)})") from None


def _fits_keyword(parkey):
    kw = FITS_KEYWORDS.get(parkey)
    if kw is None:
        if parkey not in _DM_FITS:
            try:
                from crds.jwst import schema     # reads the jwst datamodel schemas: ~1.7 s, once
                _DM_FITS[parkey] = schema.dm_to_fits(parkey)
            except Exception:
                _DM_FITS[parkey] = None
        kw = _DM_FITS[parkey] or parkey.rsplit(".", 1)[-1]
    return kw


def dataset_values(header, parkeys):
    """{parkey: value as CRDS matches it} for a FITS header (or a dict keyed by FITS keywords or
    datamodel paths); a missing keyword is ``UNDEFINED``, as crds' own bestrefs gives it."""
    cond = _crds().utils.condition_value
    out = {}
    for pk in parkeys:
        value = header.get(pk) if pk in header else header.get(_fits_keyword(pk))
        out[pk] = "UNDEFINED" if value is None else cond(value)
    return out


def select_in_rmap(rmap, header):
    """The file name the crds ReferenceMapping ``rmap`` gives for ``header``, or None (no match,
    N/A, not relevant)."""
    values = dataset_values(header, rmap.get_required_parkeys())
    try:
        got = rmap.get_best_ref(values)
    except Exception:
        return None
    if not got or str(got).upper().startswith("NOT FOUND") or str(got).upper() == NA:
        return None
    return str(got)


def select(pmap_path, header, reftypes):
    """{reftype: (file name or None, rmap path or None)} for ``header`` under pmap ``pmap_path``."""
    ctx = load_pmap(pmap_path)
    instrument = str(header.get("INSTRUME", header.get("META.INSTRUMENT.NAME", "")) or "").strip().upper()
    imap = child_mapping(ctx, instrument, ctx.get_imap) if instrument else None
    out = {}
    for rt in reftypes:
        rt_l = str(rt).lower()
        rmap = child_mapping(imap, rt_l, imap.get_rmap) if imap is not None else None
        out[rt] = (select_in_rmap(rmap, header), rmap.filename) if rmap is not None else (None, None)
    return out


def load_rmap(path):
    """A crds ReferenceMapping read from ``path`` (InputError when unreadable)."""
    try:
        return _crds().load_mapping(os.path.basename(str(path)), path=os.path.dirname(os.path.abspath(str(path))))
    except Exception as exc:
        raise InputError(str(path), f"not a readable CRDS mapping ({_reason(exc)})") from None


def rmap_rows(path):
    """The selections of rmap ``path``: [{parkey: value, ..., "USEAFTER": date, "file": name}]
    (values as written, alternatives joined by ``|``), with (parkeys, header)."""
    rmap = load_rmap(path)
    flat = rmap.todict()
    params = list(flat["parameters"])
    rows = []
    for sel in flat["selections"]:
        row = {}
        for p, v in zip(params, sel):
            v = "|".join(x.strip() for x in str(v).split(",")) if p not in ("USEAFTER", "REFERENCE") else v
            row["file" if p == "REFERENCE" else p] = v
        rows.append(row)
    return rows, rmap


# ------------------------------------------------------------------ writing


def _checksum(text):
    body = "".join(line for line in text.splitlines(True) if "sha1sum" not in line)
    return hashlib.sha1(body.encode("utf-8")).hexdigest()


def _format(header, selector_text, comment=None):
    lines = ["header = {"]
    for key in sorted(header):
        lines.append(f"    {key!r} : {header[key]!r},")
    lines.append("}")
    text = "\n".join(lines) + "\n\n"
    if comment:
        text += f'comment = """\n{comment}\n"""\n\n'
    text += f"selector = {selector_text}\n"
    return text.replace("'sha1sum' : None", f"'sha1sum' : {_checksum(text)!r}")


def _write_mapping(path, header, selector_text, comment=None):
    header = dict(header, sha1sum=None)
    text = _format(header, selector_text, comment)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def _dict_selector(items):
    lines = ["{"] + [f"    {k!r} : {v!r}," for k, v in sorted(items.items())] + ["}"]
    return "\n".join(lines)


def _spec_parkeys(instrument, reftype):
    """The Match parkeys crds' own type specs give (instrument, reftype), or None."""
    try:
        from crds.core import reftypes
        spec = reftypes.get_types_object(OBSERVATORY).get_item(instrument.lower(), reftype.lower(), "parkey")
    except Exception:
        return None
    keys = [_SPEC_ALIASES.get(k.upper(), k.upper()) for k in (spec[0] if spec else ())]
    return [k for k in dict.fromkeys(keys) if k not in USEAFTER_KEYS]


def _dm(key):
    key = str(key).upper()
    return key if key.startswith("META.") else _DM_OF.get(key, key)


def _value(v):
    if v is None:
        return NA
    if isinstance(v, (list, tuple, set)):
        vals = sorted({str(x).strip().upper() for x in v})
        return NA if not vals or "N/A" in vals or "*" in vals or "ANY" in vals else "|".join(vals)
    v = str(v).strip().upper()
    return NA if v in ("*", "ANY", "") else v


def _useafter(text):
    t = str(text or "1900-01-01T00:00:00").strip().replace("T", " ")
    return t if " " in t else t + " 00:00:00"


def _rmap_text(instrument, reftype, name, rows, parkeys, derived_from):
    match = {}
    for row in rows:
        key = tuple(_value(row["match"].get(pk)) for pk in parkeys)
        dates = match.setdefault(key, {})
        ua = _useafter(row.get("useafter"))
        if ua in dates and dates[ua] != row["file"]:
            raise ValueError(f"{name}: two files for {key} at USEAFTER {ua}: {dates[ua]}, {row['file']}")
        dates[ua] = row["file"]
    lines = ["Match({"]
    for key in sorted(match):
        lines.append(f"    {key!r} : UseAfter({{")
        lines += [f"        {ua!r} : {f!r}," for ua, f in sorted(match[key].items())]
        lines.append("    }),")
    lines.append("})")
    header = {"classes": ("Match", "UseAfter"), "derived_from": derived_from, "filekind": reftype.upper(),
              "instrument": instrument.upper(), "mapping": "REFERENCE", "name": name,
              "observatory": OBSERVATORY.upper(), "parkey": (tuple(parkeys), USEAFTER_KEYS),
              "suffix": reftype.lower()}
    return header, "\n".join(lines)


def write_context(store, selections, number=1, prefix="webbspec", derived_from="written by webbspec",
                  move=True):
    """Write pmap ``<prefix>_<NNNN>.pmap``, one imap per instrument and one rmap per reference type
    into ``<store>/mappings/jwst/``; returns the pmap path.

    ``selections``: [{"reftype", "file", "match": {selector: value}, "instrument"?, "useafter"?}].
    ``match`` keys are FITS keywords (EXP_TYPE, DETECTOR, ...) or datamodel paths; a value is a
    string, a list (any of: ``'A|B'``) or "*"/None (``N/A``); ``instrument`` defaults to the match's
    INSTRUME. ``useafter``: the file's USEAFTER (default 1900-01-01). The rmap matches on the
    parkeys crds' type specs give the (instrument, reftype) -- the real JWST selectors -- plus
    any other key the matches use; a spec parkey a match does not give is N/A there.
    ``file``: a name in ``references/jwst/<instrument>/`` or a path; with ``move`` a file outside
    that directory is moved into it (the simulator writes its files first, then the context).
    """
    num = f"{int(number):04d}" if str(number).isdigit() else str(number)
    mdir = mappings_dir(store)
    os.makedirs(mdir, exist_ok=True)
    groups = {}
    for sel in selections:
        match = {_dm(k): v for k, v in (sel.get("match") or {}).items()}
        instrument = str(sel.get("instrument") or match.pop("META.INSTRUMENT.NAME", "") or "").upper()
        match.pop("META.INSTRUMENT.NAME", None)
        match.pop("META.TELESCOPE", None)
        if not instrument:
            raise ValueError(f"selection of {sel.get('file')} names no instrument")
        fname = _place(store, instrument, str(sel["file"]), move)
        groups.setdefault((instrument, str(sel["reftype"]).lower()), []).append(
            {"match": match, "file": fname, "useafter": sel.get("useafter")})
    imaps = {}
    for (instrument, rt), rows in sorted(groups.items()):
        used = [k for row in rows for k in row["match"]]
        parkeys = list(dict.fromkeys((_spec_parkeys(instrument, rt) or []) + used)) or ["META.EXPOSURE.TYPE"]
        name = f"{prefix}_{instrument.lower()}_{rt}_{num}.rmap"
        header, text = _rmap_text(instrument, rt, name, rows, parkeys, derived_from)
        _write_mapping(os.path.join(mdir, name), header, text)
        imaps.setdefault(instrument, {})[rt] = name
    return _write_contexts(store, imaps, num, prefix, derived_from)


def _write_contexts(store, imaps, num, prefix, derived_from):
    mdir = mappings_dir(store)
    pmap_sel = {}
    for instrument, rmaps in sorted(imaps.items()):
        name = f"{prefix}_{instrument.lower()}_{num}.imap"
        header = {"derived_from": derived_from, "instrument": instrument, "mapping": "INSTRUMENT",
                  "name": name, "observatory": OBSERVATORY.upper(), "parkey": ("REFTYPE",)}
        _write_mapping(os.path.join(mdir, name), header, _dict_selector(rmaps))
        pmap_sel[instrument] = name
    name = f"{prefix}_{num}.pmap"
    header = {"derived_from": derived_from, "mapping": "PIPELINE", "name": name,
              "observatory": OBSERVATORY.upper(), "parkey": ("META.INSTRUMENT.NAME",)}
    return _write_mapping(os.path.join(mdir, name), header, _dict_selector(pmap_sel))


def _place(store, instrument, fname, move):
    """The name of reference ``fname`` in ``references/jwst/<instrument>/`` (moved there)."""
    if fname.strip().upper() == NA:
        return NA
    rdir = references_dir(store, instrument)
    base = os.path.basename(fname)
    src = fname if os.path.isabs(fname) else os.path.join(str(store), fname)
    dst = os.path.join(rdir, base)
    if move and os.path.isfile(src) and os.path.abspath(src) != os.path.abspath(dst):
        os.makedirs(rdir, exist_ok=True)
        os.replace(src, dst)
    return base


def derive_context(store, old, number, replace=None, add=(), prefix=None):
    """A new context from pmap ``old`` (path): ``replace`` {old file name: new file name} swaps
    a reference file wherever the rmaps name it (the rmap text is kept, only names change);
    ``add``: more selections (as for :func:`write_context`) inserted into their rmaps.
    Unchanged imaps / rmaps are shared with the old context; changed ones get the new number.
    Returns the new pmap path.
    """
    old = os.path.abspath(str(old))
    ctx = load_pmap(old)
    mdir = os.path.dirname(old)
    stem = context_name(old)
    prefix = prefix or (_NUM.sub("", stem).rstrip("_") or stem)
    num = f"{int(number):04d}" if str(number).isdigit() else str(number)
    replace = {os.path.basename(k): (NA if str(v).upper() == NA else os.path.basename(v))
               for k, v in (replace or {}).items()}
    adds = {}
    for sel in add:
        match = {_dm(k): v for k, v in (sel.get("match") or {}).items()}
        instrument = str(sel.get("instrument") or match.get("META.INSTRUMENT.NAME") or "").upper()
        match.pop("META.INSTRUMENT.NAME", None)
        adds.setdefault((instrument, str(sel["reftype"]).lower()), []).append(
            {"match": match, "file": _place(store, instrument, str(sel["file"]), True),
             "useafter": sel.get("useafter")})
    imaps = {}
    changed = set()
    for instrument, imap_name in dict(ctx.selector).items():
        instrument = str(instrument).upper()
        imap = child_mapping(ctx, instrument, ctx.get_imap)
        rmaps = dict(imap.selector)
        for rt, rname in list(rmaps.items()):
            if not isinstance(rname, str) or not rname.endswith(".rmap"):
                continue
            path = os.path.join(mdir, rname)
            new_name = re.sub(r"(_\d+)?\.rmap$", f"_{num}.rmap", rname) if _NUM.search(rname[:-5]) \
                else rname[:-5] + f"_{num}.rmap"
            text = open(path).read()
            if any(f"'{a}'" in text for a in replace):
                for a, b in replace.items():
                    text = text.replace(f"'{a}'", f"'{b}'")
                text = re.sub(r"('name' : )'[^']*'", lambda m: f"{m.group(1)}{new_name!r}", text, count=1)
                text = re.sub(r"('derived_from' : )'[^']*'", lambda m: f"{m.group(1)}{rname!r}", text, count=1)
                text = re.sub(r"('sha1sum' : )'[^']*'", lambda m: f"{m.group(1)}{_checksum(text)!r}", text, count=1)
                with open(os.path.join(mdir, new_name), "w") as fh:
                    fh.write(text)
                rmaps[rt] = new_name
                changed.add(instrument)
        for (ins, rt), rows in adds.items():
            if ins != instrument:
                continue
            old_rows, parkeys = [], None
            if isinstance(rmaps.get(rt), str) and rmaps[rt].endswith(".rmap"):
                got, rmap = rmap_rows(os.path.join(mdir, rmaps[rt]))
                parkeys = [k for k in rmap.parkey[0]]
                old_rows = [{"match": {k: r[k] for k in parkeys}, "file": r["file"], "useafter": r.get("USEAFTER")}
                            for r in got]
            used = [k for row in rows for k in row["match"]]
            parkeys = list(dict.fromkeys((parkeys or _spec_parkeys(instrument, rt) or []) + used)) \
                or ["META.EXPOSURE.TYPE"]
            name = f"{prefix}_{instrument.lower()}_{rt}_{num}.rmap"
            header, text = _rmap_text(instrument, rt, name, old_rows + rows, parkeys, rmaps.get(rt) or "new")
            _write_mapping(os.path.join(mdir, name), header, text)
            rmaps[rt] = name
            changed.add(instrument)
        imaps[instrument] = (rmaps, imap_name)
    out = {}
    for instrument, (rmaps, imap_name) in imaps.items():
        if instrument in changed:
            out[instrument] = rmaps
    pmap_sel = {ins: name for ins, (_, name) in imaps.items()}
    for instrument, rmaps in out.items():
        name = f"{prefix}_{instrument.lower()}_{num}.imap"
        header = {"derived_from": imaps[instrument][1], "instrument": instrument, "mapping": "INSTRUMENT",
                  "name": name, "observatory": OBSERVATORY.upper(), "parkey": ("REFTYPE",)}
        _write_mapping(os.path.join(mdir, name), header, _dict_selector(rmaps))
        pmap_sel[instrument] = name
    name = f"{prefix}_{num}.pmap"
    header = {"derived_from": os.path.basename(old), "mapping": "PIPELINE", "name": name,
              "observatory": OBSERVATORY.upper(), "parkey": ("META.INSTRUMENT.NAME",)}
    return _write_mapping(os.path.join(mdir, name), header, _dict_selector(pmap_sel))


def diff_rmaps(old, new):
    """[(instrument, reftype, old rmap name or None, new rmap name or None)] where pmaps ``old``
    and ``new`` (paths) name different rmaps (or N/A) for a reference type."""
    sides = []
    for path in (old, new):
        ctx = load_pmap(path)
        got = {}
        for ins in dict(ctx.selector):
            imap = child_mapping(ctx, ins, ctx.get_imap)
            for rt, name in (dict(imap.selector).items() if imap is not None else ()):
                got[(str(ins).upper(), str(rt).lower())] = name if isinstance(name, str) and is_mapping(name) else None
        sides.append(got)
    a, b = sides
    return [(ins, rt, a.get((ins, rt)), b.get((ins, rt))) for ins, rt in sorted(set(a) | set(b))
            if a.get((ins, rt)) != b.get((ins, rt))]
