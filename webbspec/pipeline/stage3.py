"""The per-source Stage 3 driver: one batch of sources in one job, memory bounded by one source.

For each source: read its per-exposure slices (written by :mod:`webbspec.pipeline.exp_to_source`) into a
``layout="multi"`` Model (one slit per exposure, DATAMODL MultiExposureModel; assign_mtwcs puts a
moving target's exposures on its mean position), run the Stage 3 steps in order, and write the
official Level 3 products through :mod:`webbspec.io.officialio`:

    master_background -> <name>_cal.fits   (source-based MultiExposureModel)
    outlier_detection -> <name>_crf.fits   (MultiExposureModel with the outlier flags)
    resample_spec     -> <name>_s2d.fits   (SlitModel with its gwcs)
    extract_1d        -> <name>_x1d.fits   (MultiSpecModel)

Without resample_spec (slitless modes) extract_1d runs on every exposure and combine_1d writes
<name>_c1d.fits. ``<name>`` is the association product name with ``{source_id}`` (and, for FS,
``{slit_name}``) filled in. A source whose input is bad (InputError) is reported in the manifest
and the others go on. Every product header records the source's input signature ``WSINSIG`` (a
hash of the slice files' bytes, the background files, step parameters, reference file names and
the webbspec version): with ``skip_unchanged`` a source whose products all carry the current
signature is not re-run.
"""

import gc
import hashlib
import json
import logging
import os

from .. import __version__
from ..io import datamodels, officialio
from ..io.onceread import read_hashed
from ..io.atomicfile import replacing
from ..io.datamodels import Model
from ..io.refs import check_selection
from ..errors import InputError
from .exp_to_source import ERROR_SUFFIX, read_error_slice, rereference, source_id_string
from ..modes import MODES, mode_by_name
from ..steps import assign_mtwcs

__all__ = ["run_batch", "run_source", "product_name", "input_signature", "write_manifest",
           "Manifest", "DEFAULT_STEPS", "PRODUCT_OF"]

log = logging.getLogger(__name__)
progress = logging.getLogger("webbspec.progress")   # shown on the terminal by the workflow's jobs

DEFAULT_STEPS = ("master_background", "outlier_detection", "resample_spec", "extract_1d")
# which product each step's output is (the source-based _cal is written after master_background)
PRODUCT_OF = {"master_background": "cal", "outlier_detection": "crf", "resample_spec": "s2d",
              "extract_1d": "x1d", "combine_1d": "c1d"}


class Manifest(dict):
    """``{source_key: [product paths]}`` (what the workflow's batch rule records) plus ``rows``:
    one dict per source with source, source_id, status (written|unchanged|error), products,
    message."""

    def __init__(self):
        super().__init__()
        self.rows = []


def product_name(template, source_id, slit_names=()):
    """The association product name with the source filled in.

    MOS ``jw01345-o062_{source_id}_nirspec_clear-prism`` -> ``..._s000000933_...``; FS
    ``jw01234-o001_t001-{source_id}_nirspec_f290lp-g395m-{slit_name}`` -> ``..._t001-s000000001_
    nirspec_f290lp-g395m-s200a1``. A template without ``{source_id}`` gets ``_<source_id>``
    appended (so sources never share a name).
    """
    name = str(template)
    slit = "-".join(dict.fromkeys(str(s).strip().lower() for s in slit_names if str(s).strip()))
    if "{source_id}" not in name:
        name = f"{name}_{source_id}"
    return name.replace("{source_id}", source_id).replace("{slit_name}", slit).lower()


def _file_digest(path):
    # sha256: twice blake2b's speed here (CPU SHA instructions); every slice is read once more for it
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def input_signature(slice_paths, params, refs, backgrounds=(), steps=(), digests=None):
    """A hash of everything a source's products depend on (contents, not file times).
    ``digests``: ``{slice path: sha256 hex}`` already made from the bytes read (not read again)."""
    h = hashlib.sha256()
    digests = digests or {}
    for p in sorted(slice_paths, key=os.path.abspath):
        h.update((digests.get(p) or _file_digest(p)).encode())
    for p in backgrounds:
        h.update(_file_digest(p).encode())
    blob = json.dumps({"params": params, "refs": {k: os.path.basename(str(v)) for k, v in refs.items()},
                       "steps": list(steps), "version": __version__}, sort_keys=True, default=str)
    h.update(blob.encode())
    return h.hexdigest()[:32]


def _unchanged(paths, signature):
    return all(datamodels.recorded(p, "WSINSIG") == signature for p in paths)


def _gather(slice_paths, key, digests=None):
    """One source's slices as a multi Model (exposures in a stable order, common reference).
    ``digests``: a dict that gets ``{slice path: sha256 hex of its bytes}`` (each file is read once
    for both)."""
    if not slice_paths:
        raise InputError(key, "source has no slices")
    for p in sorted(slice_paths):   # a bad exposure or slit of this source (exp_to_source)
        if str(p).endswith(ERROR_SUFFIX):
            raise read_error_slice(p)
    slices = []
    for p in slice_paths:
        m, digest = read_hashed(p)
        slices.append(m)
        if digests is not None and digest is not None:
            digests[p] = digest
    slices.sort(key=lambda m: (str(m.primary.get("WSEXPOS", "")), str(m.path)))
    slits = []
    for m in slices:
        got = str(m.primary.get("WSSRCKEY", key))
        if got != str(key):
            raise InputError(m.path, f"slice of source {got!r} given for source {key!r}")
        for s in m.slits:
            if any(a not in s for a in ("SCI", "WAVELENGTH", "XI", "ETA")) or "WSREFRA" not in s.header:
                raise InputError(m.path, "slice lacks per-pixel coordinates; run exp_to_source")
            for k in ("MT_RA", "MT_DEC"):      # the moving target's position at this exposure
                if k not in s.header and k in m.primary:
                    s.header[k] = m.primary[k]
            slits.append(s)
    primary = datamodels.copy_header(slices[0].primary)
    primary["DATAMODL"] = "MultiExposureModel"
    for k in ("WSEXPOS", "FILENAME", "MT_RA", "MT_DEC"):
        primary.remove(k, ignore_missing=True)
    model = assign_mtwcs.run(Model(primary, slits, "multi", {}, None, slices[0].path))
    ref = (float(model.slits[0].header["WSREFRA"]), float(model.slits[0].header["WSREFDE"]))
    for s in model.slits:   # exposures without a source position were referenced to their slit centre
        rereference(s, *ref)
    return model


def _step_refs(module, refs):
    return {rt: refs.get(rt, "N/A") for rt in getattr(module, "REFTYPES", ())}


def run_source(key, slice_paths, *, template, outdir, params=None, refs=None, steps=DEFAULT_STEPS,
               backgrounds=(), background_models=None, context=None, skip_unchanged=True):
    """Run the Stage 3 steps for one source; returns a manifest row (dict)."""
    params, refs = dict(params or {}), dict(refs or {})
    steps = tuple(steps)
    digests = {}
    model = _gather(slice_paths, key, digests)
    check_selection(refs, model.primary)    # a selection deferred as its rmap fails here, naming both
    first = model.slits[0].header
    sid = str(model.primary.get("WSSRCID", "")) or source_id_string(first, model.exp_type)
    slit_names = [s.name for s in model.slits] if model.mode.fixed_slits else ()
    name = product_name(template, sid, slit_names)
    kinds = [PRODUCT_OF[s] for s in steps if s in PRODUCT_OF]
    if "master_background" not in steps:
        kinds.insert(0, "cal")
    if "resample_spec" not in steps and "extract_1d" in steps and "combine_1d" not in steps:
        kinds.append("c1d")
    paths = {k: os.path.join(outdir, f"{name}_{k}.fits") for k in dict.fromkeys(kinds)}
    signature = input_signature(slice_paths, params, refs, backgrounds, steps, digests)
    row = {"source": key, "source_id": sid, "products": list(paths.values()), "message": ""}
    if skip_unchanged and _unchanged(paths.values(), signature):
        return dict(row, status="unchanged")

    def stamp(m):
        m.primary["WSINSIG"] = (signature, "input signature")
        m.primary["WSVERS"] = (__version__, "webbspec version")
        m.primary["SOURCEID"] = int(first.get("SOURCEID", 0))
        from ..io.provenance import reference_cards

        for k, card in reference_cards(refs, context).items():   # R_<REFTYPE>, REFCTX
            m.primary[k] = card
        return m

    pending = {}     # kind -> the new product under a hidden name until every step succeeded

    def save(m, kind):
        tmp = os.path.join(os.path.dirname(paths[kind]), f".{os.path.basename(paths[kind])}.new")
        officialio.write(stamp(m), tmp, kind, filename=os.path.basename(paths[kind]),
                         **({"source_based": True} if kind in ("cal", "crf") else {}))
        pending[kind] = tmp

    try:
        _run_steps(model, key, steps, params, refs, paths, save, background_models)
    except Exception:
        # never lose a good product: the products of an earlier run stay in place (their input
        # signature says they are out of date, so the next run re-makes them); the new ones,
        # not all made, are dropped
        for tmp in pending.values():
            if os.path.exists(tmp):
                os.remove(tmp)
        stale = [os.path.basename(p) for p in paths.values() if os.path.exists(p)]
        if stale:
            log.warning("source %s failed; the products of an earlier run are kept, now stale: %s",
                        key, ", ".join(stale))
        raise
    for kind, tmp in pending.items():     # all made: each replaces its predecessor atomically
        os.replace(tmp, paths[kind])
    return dict(row, status="written")


def _run_steps(model, key, steps, params, refs, paths, save, background_models):
    from .. import steps as steplib

    current = model
    if "master_background" not in steps:
        save(current, "cal")
    spectra = None
    for step in steps:
        module = steplib.load(step)
        p = dict(params.get(step) or {})
        srefs = _step_refs(module, refs)
        if step == "master_background":
            current = module.run(current, srefs, backgrounds=list(background_models or []), **p)
            save(current, "cal")
        elif step == "outlier_detection":
            current = module.run(current, srefs, **p)
            save(current, "crf")
        elif step == "resample_spec":
            current = module.run(current, srefs, **p)
            save(current, "s2d")
        elif step == "extract_1d":
            spectra = module.run(current, srefs, **p)
            save(spectra, "x1d")
        elif step == "combine_1d":
            if spectra is None:
                raise InputError(key, "combine_1d needs extract_1d first")
            save(module.run([spectra], srefs, **p), "c1d")
        else:
            raise InputError(step, "not a per-source Stage 3 step of a slit mode")
    if "c1d" in paths and "combine_1d" not in steps:
        save(steplib.load("combine_1d").run([spectra], {}), "c1d")


def _mode_steps(mode):
    if not mode:
        return DEFAULT_STEPS
    m = MODES.get(mode) or mode_by_name(mode)
    unknown = [s for s in m.spec3 if s not in PRODUCT_OF]
    if unknown:    # e.g. cube_build: not a per-source slit step (its mode has another Stage 3 path)
        raise InputError("stage3", f"mode {m.name}: step {unknown[0]} has no per-source slit implementation")
    return m.spec3


def run_batch(product_name_template=None, sources=None, slices=None, outdir=".", params=None,
              refs=None, steps=None, backgrounds=(), *, product=None, mode=None, context=None,
              skip_unchanged=True):
    """Run Stage 3 for a batch of sources; returns a :class:`Manifest`.

    ``sources``: the source keys (or, as the workflow passes it, ``{key: [slice paths]}``);
    ``slices``: ``{key: [per-exposure slice paths]}``; ``params``: ``{step: {param: value}}``;
    ``refs``: ``{reftype: path or "N/A"}``; ``steps``: default the mode's Stage 3 steps (or
    :data:`DEFAULT_STEPS`); ``backgrounds``: background `_x1d` paths for master_background.
    """
    template = product_name_template or product
    if template is None:
        raise InputError("stage3", "no product name template")
    if isinstance(sources, dict):
        slices = dict(sources) if slices is None else slices
        sources = list(sources)
    slices = slices or {}
    sources = list(sources if sources is not None else slices)
    steps = tuple(steps) if steps is not None else _mode_steps(mode)
    backgrounds = [b for b in (backgrounds or ()) if b]
    bkg_models = [datamodels.read(b) for b in backgrounds] if "master_background" in steps else []
    os.makedirs(outdir, exist_ok=True)
    out = Manifest()
    for done, key in enumerate(sources, start=1):
        try:
            row = run_source(key, list(slices.get(key, [])), template=template, outdir=outdir,
                             params=params, refs=refs, steps=steps, backgrounds=backgrounds,
                             background_models=bkg_models, context=context,
                             skip_unchanged=skip_unchanged)
        except InputError as exc:
            log.error("source %s: %s", key, exc)
            row = {"source": key, "source_id": "", "products": [], "status": "error", "message": str(exc)}
        out.rows.append(row)
        out[key] = row["products"] if row["status"] != "error" else []
        log.info("source %s: %s (%d of %d sources)", key, row["status"], done, len(sources))
        if done % max(1, len(sources) // 10) == 0 or done == len(sources):
            progress.info("%s: %d of %d sources of this batch done", template, done, len(sources))
        gc.collect()   # one source's arrays at a time
        gc.freeze()    # ... and the next collection scans only what the next source makes
    return out


def write_manifest(rows, path):
    """Write manifest rows as TSV (source, source_id, status, product, message), atomically."""
    with replacing(path) as tmp, open(tmp, "w") as f:
        f.write("source\tsource_id\tstatus\tproduct\tmessage\n")
        for r in rows:
            for p in (r["products"] or [""]):
                f.write(f"{r['source']}\t{r['source_id']}\t{r['status']}\t{p}\t{r['message']}\n")
    return path


