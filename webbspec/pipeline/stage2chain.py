"""Stage 2 outside the per-step jobs: an exposure's products, and its whole chain in one process
(``workflow.spec2_jobs: exposure``).

:func:`write_product` writes a step's output as an official Stage 2 product (the `product` jobs
and the chain both call it): an IFU exposure's `_cal` / `_bsub` as an IFUImageModel keeping its
per-pixel coordinates (:func:`ifu_cal`), its cube as the `_s3d`.

The steps run in memory, one after the other (``call_step``: each step takes the previous one's
model), and the products are written from the models of the steps that make them; each step's
file is written too when ``save_steps`` (``workflow.save_intermediates``). Every step has a
signature ``WSSTPSIG`` chained from the input file's size and time and, step by step, its
references by name, its extra input files, its parameters and the webbspec version. The chain
resumes after the last step whose file records its signature: when a changed reference or
parameter re-runs the job, only the changed step and the steps after it run again, and the files
before it keep their bytes and times, as with one job per step. (The step files are therefore not
outputs of the Snakemake rule, which deletes a job's outputs before it runs; every file is written
atomically, so a killed job leaves each one whole with its signature, or absent.) Without the
step files a re-run runs the whole chain: it is one job either way.

Two cores (a 200-slitlet MOS exposure in < 20 s): each file is written while the next steps run
(:class:`_Writes`: by a forked child, or a thread where the job has one core; a 200-slitlet
`_cal` is 0.5 GB), and a MOS exposure's
slitlets are split between two forked processes from extract_2d on (:func:`_run_split`: the
same products as one process), unless the job has one core (``OMP_NUM_THREADS``, which
Snakemake sets to a job's threads) or ``WEBBSPEC_CHAIN_WORKERS=1``.
"""

import contextlib
import hashlib
import json
import logging
import os

from .. import __version__

__all__ = ["run_chain", "write_product", "link_product", "SIGKEY"]

log = logging.getLogger("webbspec")
SIGKEY = "WSSTPSIG"


def _stat(path):
    st = os.stat(path)
    return [os.path.basename(str(path)), st.st_size, st.st_mtime_ns]


def _signature(**parts):
    blob = json.dumps(dict(parts, version=__version__), sort_keys=True, default=str)
    return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()


def step_signature(step, previous):
    """The signature of one step of the chain spec (``step``) after the signature ``previous``."""
    extra = {k: [_stat(p) for p in (v if isinstance(v, (list, tuple)) else [v])]
             for k, v in (step.get("extra") or {}).items()}
    refs = {k: os.path.basename(str(v)) for k, v in (step.get("refs") or {}).items()}
    return _signature(step=step["name"], previous=previous, refs=refs, params=step.get("params") or {},
                      extra=extra)


def chain_signatures(spec):
    """The signature of every step of ``spec``, each chained on the one before it."""
    sigs, prev = [], _signature(input=_stat(spec["input"]))
    for step in spec["steps"]:
        prev = step_signature(step, prev)
        sigs.append(prev)
    return sigs


def run_chain(spec, context=None, save_steps=True):
    """Run the chain ``spec`` (JSON of rules/common.smk ``spec2_chain_spec``: input, steps
    [{name, output, refs, params, extra}], products [{input, output}]) in memory; returns the
    names of the steps that ran. ``save_steps``: write every step's file (True), none (False) or
    those of the steps named (a list, like the official per-step ``save_results``)."""
    with _small_pages():
        return _run_chain(spec, context, save_steps)


@contextlib.contextmanager
def _small_pages():
    """numpy's arrays in 4 kB pages while the chain runs, unless NUMPY_MADVISE_HUGEPAGE says.

    numpy asks for transparent huge pages for every array of 4 MB or more (the full-frame
    arrays), and the kernel then compacts memory to find free 2 MB blocks: on the 2-core machine
    a first touch of such memory cost 5-7 ms of system time per MB (4 kB pages: 0.4 ms), the
    source of the chain job's system time swinging between 1 and 4 s."""
    import numpy as np

    core = getattr(np, "_core", None) or getattr(np, "core", None)
    setter = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if setter is None or os.environ.get("NUMPY_MADVISE_HUGEPAGE", "").strip():
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


def _run_chain(spec, context, save_steps):
    """:func:`run_chain`'s work."""
    from ..io import datamodels
    from .steprun import call_step, read_input

    steps, sigs = spec["steps"], chain_signatures(spec)
    start = next((k + 1 for k in reversed(range(len(steps)))
                  if datamodels.recorded(steps[k]["output"], SIGKEY) == sigs[k]), 0)
    for step in steps[:start]:
        log.info("%s: %s is up to date", step["name"], step["output"])
    ran, pending = [], list(spec["products"])
    with _Writes() as writes:
        if start < len(steps):
            model, where = read_input(spec["input"]) if start == 0 else \
                (datamodels.read(steps[start - 1]["output"]), steps[start - 1]["output"])
            split = _split_point(steps, start, save_steps)
            k = start
            while k < len(steps):
                if k == split:
                    wanted = [st["output"] for st in steps[k:] if any(p["input"] == st["output"] for p in pending)]
                    handed = []

                    def written(output, merged, wanted=wanted, handed=handed):   # each as soon as merged
                        made = [p for p in pending if p["input"] == output]
                        writes.limit = chain_workers()            # products side by side
                        for product in made:
                            writes.submit(write_product, merged, product["output"],
                                          here=output == wanted[-1] and product is made[-1])
                            pending.remove(product)
                            handed.append(product)

                    writes.join_threads()            # no writer thread across the workers' fork
                    names = _run_split(steps[k:], sigs[k:], model, where, context, wanted, written)
                    if names is not None:             # every remaining step ran, in the workers
                        ran += names
                        break
                    pending += handed                 # the serial run below writes them again
                step, sig = steps[k], sigs[k]
                model = datamodels.as_written(call_step(step["name"], model, step["refs"], step["params"], step["extra"],
                                                        context, {SIGKEY: (sig, "step signature")}, where))
                where = step["output"]
                last = k == len(steps) - 1         # nothing left to overlap a write with
                if save_steps is True or step["name"] in (save_steps or ()):   # all, or the steps named
                    writes.submit(datamodels.write, model, step["output"], here=last)
                for product in [p for p in pending if p["input"] == step["output"]]:
                    writes.submit(write_product, model, product["output"], here=last)
                    pending.remove(product)
                ran.append(step["name"])
                log.info("%s: done", step["name"])
                k += 1
        for product in pending:                  # from the files of steps that were up to date
            writes.submit(write_product, product["input"], product["output"], here=True)
    return ran


# ------------------------------------------------------------------ MOS slitlets in two processes
MIN_SPLIT_SLITLETS = 40       # fewer: one process (the split's own cost is ~0.5 s)


def chain_workers():
    """Processes a chain job splits a MOS exposure's slitlets among: ``WEBBSPEC_CHAIN_WORKERS``
    if set (1: never split), else 2 where there are two cores, no more than ``OMP_NUM_THREADS``
    when that is set (Snakemake sets it to a job's ``threads``: a job given one core stays in one
    process, so jobs running side by side do not oversubscribe the cores); 1 without ``os.fork``."""
    value = os.environ.get("WEBBSPEC_CHAIN_WORKERS", "")
    try:
        if value.strip():
            n = int(value)
        else:
            n = min(2, os.cpu_count() or 1)
            threads = os.environ.get("OMP_NUM_THREADS", "").strip()
            if threads:
                n = min(n, int(threads))
    except ValueError:
        n = 1
    return max(n, 1) if hasattr(os, "fork") else 1


def _split_point(steps, start, save_steps):
    """The index of extract_2d when the chain may run it and every step after it per group of
    slitlets in parallel processes (:func:`_run_split`): all of them still to run, none of their
    files to write (a step file would have to be merged), extract_2d cutting every slitlet."""
    names = [s["name"] for s in steps]
    if chain_workers() < 2 or "extract_2d" not in names[start:]:
        return None
    k = names.index("extract_2d", start)
    saved = names if save_steps is True else list(save_steps or ())
    params = steps[k].get("params") or {}
    if any(n in saved for n in names[k:]) or params.get("slit_names") is not None \
            or params.get("source_ids") is not None:
        return None
    return k


def _run_split(tail, sigs, model, where, context, wanted, written):
    """Run the chain's ``tail`` (extract_2d and the steps after it) on a MOS exposure's slitlets
    in ``chain_workers()`` forked processes, and merge what they make.

    Every step from extract_2d on treats each slitlet alone, except master_background_mos, whose
    master spectrum comes from the background slitlets: each process gets its share of the other
    slitlets (round robin in the SLITS table's order, a source's slitlets together) and every
    background slitlet, so each computes the same master; the background slitlets' results are
    taken from the first process. Each output in ``wanted`` (the products' steps, in chain order)
    comes back pickled as soon as a process has it, while the processes go on; the parts are
    merged in the table's order -- the same slits, arrays and keywords as one process makes (a
    step's status keyword is COMPLETE if it was in any process; a keyword one process lacks is
    taken from the other) -- and handed to ``written(output, model)``. Returns the step names,
    or None (too few slitlets, not MOS, a process failed or the outputs do not merge): the
    caller then runs the steps itself, as without workers, so errors and warnings are the
    serial run's (a product already handed over is written again)."""
    import glob
    import pickle
    import signal
    import time

    from ..instruments.nirspec import mos_table
    from ..instruments.nirspec.msa import is_background_name

    table = getattr(model, "tables", {}).get("SLITS")
    if table is None or not mos_table.is_mos_table(table) or len(table) < MIN_SPLIT_SLITLETS:
        return None
    rows = mos_table.rows(table)
    workers = chain_workers()
    owner, by_source, turn = {}, {}, 0
    for r in rows:
        if is_background_name(r["SOURCE_NAME"]):
            owner[r["SLIT_NAME"]] = 0
            continue
        sid = r["SOURCE_ID"]
        if sid not in by_source:
            by_source[sid], turn = turn % workers, turn + 1
        owner[r["SLIT_NAME"]] = by_source[sid]
    background = [r["SLIT_NAME"] for r in rows if is_background_name(r["SOURCE_NAME"])]
    groups = [background + [r["SLIT_NAME"] for r in rows if owner[r["SLIT_NAME"]] == g
                            and r["SLIT_NAME"] not in background] for g in range(workers)]
    if any(len(g) == len(background) for g in groups):
        return None
    order = [r["SLIT_NAME"] for r in rows]
    children = []
    for names in groups:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:                                        # a worker: its slitlets, every step
            os.close(read)
            for _, other in children:
                other.close()
            _worker(tail, sigs, model, where, context, set(wanted), names, write)
        os.close(write)
        children.append((pid, os.fdopen(read, "rb")))
    busy, failure, times = 0.0, None, None
    try:
        for output in wanted + [None]:                      # None: the end (each process's step times)
            parts = []
            for _, fh in children:
                try:
                    msg = pickle.load(fh)
                except Exception:                           # noqa: BLE001 (a worker died)
                    msg = ("error", "a process ended without its results")
                if msg[0] == "error":
                    raise _SplitFailed(msg[1])
                if msg[0] != ("done" if output is None else "output") or (output and msg[1] != output):
                    raise _SplitFailed(f"unexpected message {msg[0]!r}")
                parts.append(msg[-1] if output is None else _unpack(msg[-1]))
            t = time.time()
            if output is None:
                times = parts
                break
            try:
                merged = _merge(parts, owner, order)
            except ValueError as exc:
                raise _SplitFailed(f"the outputs do not merge: {exc}") from None
            del parts
            written(output, merged)
            busy += time.time() - t
    except _SplitFailed as exc:
        failure = str(exc)
    finally:
        for pid, fh in children:
            if failure is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            fh.close()
            os.waitpid(pid, 0)
            for left in glob.glob(os.path.join(_SHM, f"webbspec-chain-{pid}-*")):   # a failed run's
                os.remove(left)
    if failure is not None:
        log.warning("%s: the slitlets in %d processes failed (%s); running the steps in this one", where,
                    workers, failure)
        return None
    for k, step in enumerate(tail):
        log.info("%s: done (%d processes: %s s)", step["name"], workers, ", ".join(f"{t[k]:.2f}" for t in times))
    log.info("slitlets in %d processes: %s; merging their outputs (while they ran on) and handing them "
             "to the writers: %.2f s", workers, " + ".join(str(len(g)) for g in groups), busy)
    return [s["name"] for s in tail]


class _SplitFailed(Exception):
    pass


_SHM = "/dev/shm"


def _pack(model, label):
    """``model`` for the parent: its arrays written once into a file in shared memory (``/dev/shm``)
    that the parent maps (:func:`_unpack`), the rest pickled (pickle protocol 5's out-of-band
    buffers); without ``/dev/shm``, the model itself (pickled whole through the pipe)."""
    import pickle
    import tempfile

    if not (os.path.isdir(_SHM) and os.access(_SHM, os.W_OK)):
        return ("inline", model)
    buffers = []
    data = pickle.dumps(model, protocol=5, buffer_callback=buffers.append)
    fd, path = tempfile.mkstemp(prefix=f"webbspec-chain-{os.getpid()}-", suffix=".bin", dir=_SHM)
    spans, offset = [], 0
    try:
        with os.fdopen(fd, "wb") as fh:
            for b in buffers:
                raw = b.raw()
                pad = -offset % 64                      # aligned arrays
                fh.write(b"\0" * pad)
                offset += pad
                fh.write(raw)
                spans.append((offset, raw.nbytes))
                offset += raw.nbytes
    except BaseException:
        os.remove(path)
        raise
    return ("shared", data, path, spans)


def _unpack(packed):
    """The model :func:`_pack` sent: its arrays views of the shared-memory file (read-only, mapped,
    the file itself removed at once: the mapping lives as long as the arrays)."""
    import mmap
    import pickle

    if packed[0] == "inline":
        return packed[1]
    _, data, path, spans = packed
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            mm = mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ) if size else b""
    finally:
        os.remove(path)
    view = memoryview(mm)
    return pickle.loads(data, buffers=[view[o:o + n] for o, n in spans])


def _worker(tail, sigs, model, where, context, wanted, names, fd):
    """(In a forked process.) The ``tail`` steps on the slitlets ``names``; pickles to ``fd``
    ("output", output, model) for each output in ``wanted`` as it is made, then ("done", [seconds
    per step]) -- or ("error", message) -- and exits."""
    import pickle
    import time

    code = 0
    fh = os.fdopen(fd, "wb")
    try:
        from ..io import datamodels
        from .steprun import call_step

        times = []
        for step, sig in zip(tail, sigs):
            params = dict(step["params"] or {}, slit_names=names) if step["name"] == "extract_2d" else step["params"]
            t = time.time()
            model = datamodels.as_written(call_step(step["name"], model, step["refs"], params, step["extra"], context,
                                                    {SIGKEY: (sig, "step signature")}, where))
            times.append(time.time() - t)
            where = step["output"]
            if step["output"] in wanted:
                pickle.dump(("output", step["output"], _pack(model, step["output"])), fh,
                            protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
        message = ("done", times)
    except BaseException as exc:                            # noqa: BLE001 (reported to the parent)
        message, code = ("error", f"{type(exc).__name__}: {exc}"), 1
    try:
        pickle.dump(message, fh, protocol=pickle.HIGHEST_PROTOCOL)
        fh.close()
    except BaseException:                                   # noqa: BLE001 (the parent is gone)
        code = 1
    finally:
        os._exit(code)


_STATUS = {"COMPLETE", "SKIPPED"}


def _merge(models, owner, order):
    """One model of the per-process ``models`` (their slits, or spectra, by SLTNAME: the table
    ``order``, each from its ``owner`` process); ValueError when they do not fit together."""
    from ..io.datamodels import SpecModel

    first = models[0]
    spec = isinstance(first, SpecModel)
    if any(isinstance(m, SpecModel) != spec for m in models):
        raise ValueError("mixed product kinds")
    found = {}
    for g, m in enumerate(models):
        if not spec and (m.layout != first.layout or set(m.tables) != set(first.tables)
                         or (m.asdf_tree is None) != (first.asdf_tree is None)):
            raise ValueError("layouts or tables differ")
        if spec and m.kind != first.kind:
            raise ValueError("spectrum kinds differ")
        for item in (m.spectra if spec else m.slits):
            name = str(item.header.get("SLTNAME", "")).strip()
            if owner.get(name) is None:
                raise ValueError(f"slit {name!r} is not in the SLITS table")
            if owner[name] == g:
                if name in found:
                    raise ValueError(f"slit {name!r} twice")
                found[name] = item
    items = [found[n] for n in order if n in found]
    primary = _merge_primary([m.primary for m in models])
    if spec:
        return SpecModel(primary, items, first.kind, first.asdf_tree, first.path)
    if first.asdf_tree is not None and any(m.asdf_tree != first.asdf_tree for m in models):
        raise ValueError("ASDF trees differ")
    from ..io.datamodels import Model

    return Model(primary, items, first.layout, dict(first.tables), first.asdf_tree, first.path)


def _merge_primary(headers):
    """The first header, with a keyword only another has added and a step status (S_*) that is
    COMPLETE in any of them; another differing keyword raises ValueError."""
    from ..io.datamodels import copy_header

    out = copy_header(headers[0])
    for h in headers[1:]:
        for card in h.cards:
            key = card.keyword
            if key in ("", "COMMENT", "HISTORY"):
                continue
            if key not in out:
                out[key] = (card.value, card.comment)
            elif out[key] != card.value:
                if key.startswith("S_") and {str(out[key]), str(card.value)} <= _STATUS:
                    out[key] = "COMPLETE"
                else:
                    raise ValueError(f"keyword {key} differs ({out[key]!r}, {card.value!r})")
    return out


class _Writes:
    """The chain's file writes (step files, products), each overlapping the next steps, in one
    of three ways (``WEBBSPEC_CHAIN_WRITES`` names one; by default ``fork``, and ``serial`` in a
    job with one core, :func:`chain_workers` 1):

    * ``fork``: a forked child writes the model: a finished model is never changed by the steps
      after it (each works on a copy), so the child writes what a write at that point would have.
    * ``thread``: a thread writes a snapshot of the model (:func:`_snapshot`: every array copied,
      the float ones straight into the big-endian bytes the file stores, the copy the writer
      would make anyway). For a job with one core (every job of a ``--cores 2`` run: two run side
      by side): a forked writer costs the parent copy-on-write page faults for as long as it
      lives (a 90-slitlet MOS exposure: 440,000 minor faults instead of 180,000, 0.5-1 s of
      system time), and writing in the job's own thread stops the steps whenever the kernel holds
      the writer back to the disk's pace (~250 MB/s here; a 90-slitlet exposure's products are
      370 MB), where a thread waits alone (the GIL is free while the kernel writes). Not the
      default: Python's warning filters are process-wide, and a step reading a file turns
      astropy's warnings into errors for that moment (io.datamodels._open), which then failed a
      writer thread's harmless VerifyWarning (a long header comment) in an MRS chain job.
    * ``serial``: written here, then the steps go on (also where ``os.fork`` is missing). The
      one-core default: there a writer overlaps nothing (the other core runs another job) and a
      forked one cost a 45-slitlet MOS chain job 0.5 s more CPU (5.9 s instead of 5.4, user +
      system, medians of 4; the wall time about the same): the fork, the parent's copy-on-write
      faults, the child's exit. The pace of the disk is no concern at the scale's ~100 MB/s of
      products from two jobs (the kernel holds writers back only past ~3 GB of unwritten pages).

    At most ``limit`` writers at a time (1: the chain and one writer); ``here=True`` writes in
    this process (the last step's files: nothing left to overlap). Leaving the ``with`` block
    waits for every writer; a failed write raises its error there (InputError with its
    message), whichever way it was written."""

    def __init__(self):
        how = os.environ.get("WEBBSPEC_CHAIN_WRITES", "").strip().lower()
        if how not in ("fork", "thread", "serial"):
            how = "fork" if chain_workers() > 1 else "serial"
        self.how = "serial" if how == "fork" and not hasattr(os, "fork") else how
        self.fork = self.how == "fork"
        self.children = []           # (pid, read end of its error pipe, path)
        self.threads = []
        self.errors = []
        self.limit = 1               # writers at a time

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        while self.children:
            self._reap()
        self.join_threads()
        if self.errors and exc[0] is None:
            raise self.errors[0]

    def join_threads(self):
        while self.threads:
            self.threads.pop(0).join()

    def _failed(self, exc, path):
        self.errors.append(exc if isinstance(exc, _input_error()) else
                           _input_error()(path, f"{type(exc).__name__}: {exc}"))

    def submit(self, write, model, path, here=False):
        if here:
            write(model, path)
            return
        snap = _snapshot(model) if self.how == "thread" else None
        if self.how == "serial" or (self.how == "thread" and snap is None):
            try:                                           # its error raised at the end, as a writer's
                write(model, path)
            except Exception as exc:                       # noqa: BLE001
                self._failed(exc, path)
            return
        if snap is not None:
            import threading

            while len(self.threads) >= self.limit:
                self.threads.pop(0).join()

            def run():
                try:
                    write(snap, path)
                except BaseException as exc:               # noqa: BLE001 (raised at the end)
                    self._failed(exc, path)

            t = threading.Thread(target=run, name=f"write {os.path.basename(str(path))}")
            t.start()
            self.threads.append(t)
            return
        while len(self.children) >= self.limit:
            self._reap()
        read, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:                                       # the child: write, report, leave
            code = 0
            try:
                os.close(read)
                write(model, path)
            except BaseException as exc:                   # noqa: BLE001 (reported to the parent)
                code = 1
                where, msg = (exc.path, exc.problem) if isinstance(exc, _input_error()) else \
                    (path, f"{type(exc).__name__}: {exc}")
                try:
                    os.write(wfd, json.dumps([str(where), str(msg)]).encode())
                except BaseException:                      # noqa: BLE001
                    pass
            finally:
                os._exit(code)
        os.close(wfd)
        self.children.append((pid, read, path))

    def _reap(self):
        pid, read, path = self.children.pop(0)
        with os.fdopen(read, "rb") as fh:
            report = fh.read()
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            where, msg = json.loads(report) if report else (path, f"writing it failed (status {status})")
            self.errors.append(_input_error()(where, msg))


def _snapshot(model):
    """A copy of ``model`` (a Model or SpecModel) owning its arrays, for a writer thread: float and
    signed-integer arrays copied big-endian (the bytes FITS stores: the writer then writes them as
    they are), the others copied as they are; headers copied; the tables (read-only: the MSA
    table, INT_TIMES) and the ASDF tree shared. A path is its own snapshot; anything else None."""
    import numpy as np

    from ..io.datamodels import Model, Slit, SpecModel, Spectrum, copy_header

    def own(a):
        a = np.asarray(a)
        if a.dtype.kind in "fi":
            return a.astype(a.dtype.newbyteorder(">"), order="C", copy=True)
        return np.array(a, copy=True)

    if isinstance(model, (str, os.PathLike)):
        return model
    if type(model) is Model:
        return Model(copy_header(model.primary),
                     [Slit(copy_header(s.header), {k: own(v) for k, v in s.arrays.items()}) for s in model.slits],
                     model.layout, dict(model.tables), model.asdf_tree, model.path)
    if type(model) is SpecModel:
        return SpecModel(copy_header(model.primary), [Spectrum(copy_header(sp.header), np.array(sp.table, copy=True))
                                                      for sp in model.spectra], model.kind, model.asdf_tree, model.path)
    return None


def _input_error():
    from ..errors import InputError

    return InputError


def write_product(src, dst):
    """Write a step's output ``src`` (its file, or its model) as the official Stage 2 product
    ``dst``'s suffix names (_cal, _s2d, ...), shaped so stdatamodels opens it as the official class;
    our per-pixel coordinate arrays stay in `_cal` (Stage 3 reads them instead of evaluating a WCS).
    A suffix without an official class is published as it is (a hard link, else a copy)."""
    from ..io import cubes, datamodels, officialio
    from ..errors import InputError

    kind = os.path.basename(dst).rsplit("_", 1)[-1].removesuffix(".fits")
    kind = {"bsub": "cal", "calints": "cal", "bsubints": "cal", "x1dints": "x1d"}.get(kind, kind)
    if isinstance(src, (str, os.PathLike)):
        if not os.path.exists(src):
            raise InputError(src, "file does not exist")
        if kind not in officialio.KINDS or (kind == "s3d" and cubes.is_cube_file(src)):
            link_product(src, dst)          # (a cube_build file is an official `_s3d` already)
            return
        src = datamodels.read(src)
    if isinstance(src, cubes.Cube):
        if kind != "s3d":
            raise InputError(src.path or dst, f"a cube cannot be published as a _{kind} product")
        cubes.write(src, dst)
    elif kind == "cal" and _is_ifu(src):
        datamodels.write(ifu_cal(src), dst)
    elif kind not in officialio.KINDS:
        datamodels.write(src, dst)
    else:
        officialio.write(src, dst, kind, **({"keep_coords": True} if kind in ("cal", "crf") else {}))


def _is_ifu(model):
    from ..modes import known_mode

    mode = known_mode(getattr(model, "exp_type", ""))
    return mode is not None and mode.stage3_kind == "cubes" and getattr(model, "slits", None) is not None


def ifu_cal(model):
    """An IFU exposure as its `_cal` (the official IFUImageModel): every array kept, the per-pixel
    coordinates (WAVELENGTH, XI/ETA, the slice edges XI1..ETA2, DWAVE, SLICE) and the SLICES table
    included: cube_build (Stage 3) reads them instead of evaluating a WCS."""
    from ..io.datamodels import Model, copy_header

    primary = copy_header(model.primary)
    primary["DATAMODL"] = "IFUImageModel"
    return Model(primary, model.slits, "single", dict(model.tables), model.asdf_tree, model.path)


def link_product(src, dst):
    """Publish ``src`` as ``dst``: a hard link, else a copy (atomically)."""
    import shutil

    from ..io.atomicfile import replacing

    with replacing(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
