"""exp_to_source: split ONE Stage 2 exposure into one small file per source.

Input: an official `_cal` (its gwcs deserialized once, by :mod:`webbspec.io.realdata`) or our own
Stage 2 `_cal` (which already carries WAVELENGTH/XI/ETA). The exposure is read one source at a
time (:class:`realdata.Stage2Reader`): each slit's arrays are read, its gwcs evaluated on its
pixels and its slice written before the next source's are read, optionally by several forked
workers that share the deserialized gwcs (``workers``). Output: ``outdir/<source_key>.fits``
per source (a ``layout="single"`` Model: the slit arrays incl. WAVELENGTH/XI/ETA; the slit header
holds the slit keywords merged with the exposure's PRIMARY keywords, as the official
exp_to_source merges exposure metadata into each slit) and ``outdir/sources.tsv``.

Source key as official: SRCNAME if non-empty, else str(SOURCEID). Stage 3 id string
``s{SOURCEID:09d}``; NRS_MSASPEC background slits ("BKG" in the slit name) ``b...``, virtual
slits (SOURCEID < 0) ``v...`` with the sign dropped. Every slit of a source is re-referenced to
the source's SRCRA/SRCDEC (WSREFRA/WSREFDE), so all exposures of the source share the reference;
without a finite source position the slit centre is kept (Stage 3 then aligns the exposures to
the first one's reference).

Bad input (``defer_errors=True``, as the workflow runs it): an exposure that cannot be split (no
or broken ASDF extension, not a Stage 2 product, unknown EXP_TYPE) or a slit that cannot (no
SOURCEID, no coordinates) does not fail the job, which would stop Stage 3 for every source of
the product. Instead an *error slice* ``<key>.error`` (a one-line JSON ``{"path", "problem"}``)
takes the place of the slice: per source of the exposure when the slit headers still name the
sources, else one for the exposure (or the slit). Stage 3 raises it again as the
:class:`InputError` of that source (:func:`read_error_slice`), so the source fails with the
one-line message and the batch manifest records it, while the other sources are made.
"""

import json
import logging
import os
import re
import warnings

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from ..io import datamodels, realdata
from ..io.atomicfile import replacing
from ..io.datamodels import Model, Slit
from ..errors import InputError
from ..modes import known_mode, mode_for
from .program import batch_of
from ..io.skycoords import retangent

__all__ = ["split_exposure", "source_key", "source_id_string", "rereference", "retangent", "slice_filename",
           "TSV_HEADER", "ERROR_SUFFIX", "read_error_slice", "write_error_slice"]

log = logging.getLogger(__name__)

TSV_HEADER = ("source_key", "path", "source_id")
ERROR_SUFFIX = ".error"
# PRIMARY keywords not copied into the slit headers (structure, file identity)
_NO_MERGE = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "FILENAME", "DATAMODL", "COMMENT", "HISTORY", ""}


def source_key(header):
    """SRCNAME if non-empty, else str(SOURCEID) (official grouping key)."""
    name = str(header.get("SRCNAME", "") or "").strip()
    if name:
        return name
    return str(int(header["SOURCEID"]))


def source_id_string(header, exp_type=""):
    """The Stage 3 id ``s000000933`` (``b``/``v`` for MOS background/virtual slits)."""
    sid = int(header["SOURCEID"])
    prefix = "s"
    if getattr(known_mode(exp_type), "msa", False):
        if "BKG" in str(header.get("SLTNAME", "")).upper():
            prefix = "b"
        elif sid < 0:
            prefix = "v"
    return f"{prefix}{abs(sid):09d}"


def slice_filename(key):
    """A file name for a source key (characters unsafe in paths replaced by '_')."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", key) + ".fits"


def rereference(slit, ra0, dec0):
    """Re-express the slit's XI/ETA around (ra0, dec0) [deg] in place (float64 math)."""
    old = (float(slit.header["WSREFRA"]), float(slit.header["WSREFDE"]))
    if np.allclose(old, (ra0, dec0), rtol=0, atol=1e-12):
        return slit
    xi, eta = retangent(np.asarray(slit["XI"], float), np.asarray(slit["ETA"], float), old, (ra0, dec0))
    slit["XI"], slit["ETA"] = xi.astype(np.float32), eta.astype(np.float32)
    slit.header["WSREFRA"] = (float(ra0), "[deg] RA of the XI/ETA reference")
    slit.header["WSREFDE"] = (float(dec0), "[deg] Dec of the XI/ETA reference")
    return slit


def _source_position(header):
    """The source's (SRCRA, SRCDEC), or None: the official products write 0, 0 for a slit without
    a catalogued source (MOS background and virtual slitlets), which is no position at all."""
    try:
        ra, dec = float(header.get("SRCRA")), float(header.get("SRCDEC"))
    except (TypeError, ValueError):
        return None
    return (ra, dec) if np.isfinite(ra) and np.isfinite(dec) and (ra, dec) != (0.0, 0.0) else None


class _InMemory:
    """A :class:`Model` given in memory, read as a :class:`realdata.Stage2Reader` is."""

    def __init__(self, model, keep=None):
        self.path, self.primary = str(model.path or "<model>"), model.primary
        self._slits = [s for k, s in enumerate(model.slits, start=1) if keep is None or keep(k, s.header)]
        self.headers = [s.header for s in self._slits]

    def slit(self, j):
        return self._slits[j]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def _open(cal, keep=None):
    if isinstance(cal, Model):
        return _InMemory(cal, keep)
    return realdata.Stage2Reader(str(cal), keep=keep)


def write_error_slice(path, error):
    """Write an error slice (one-line JSON of the InputError) atomically; returns ``path``."""
    with replacing(path) as tmp, open(tmp, "w") as f:
        f.write(json.dumps({"path": error.path, "problem": error.problem}) + "\n")
    return path


def read_error_slice(path):
    """The :class:`InputError` an error slice holds (to raise)."""
    try:
        with open(path) as f:
            tree = json.loads(f.readline())
        return InputError(tree["path"], tree["problem"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return InputError(path, f"unreadable error slice ({type(exc).__name__})")


def _error_key(exposure, slit=None):
    """Source key of an error slice that no source id can be given to."""
    return f"error-{exposure}" + (f"-slit-{slit}" if slit else "")


def _has_source_id(header):
    return str(header.get("SOURCEID", "")).strip() != ""


def _keys_from_headers(path):
    """[(source key, source id string)] from the slit headers alone, or None."""
    try:
        rows = realdata.list_slits(path)
        exp_type = datamodels.read_header(path).get("EXP_TYPE", "")
    except InputError:
        return None
    if not rows or not all(_has_source_id(r) for r in rows):
        return None
    try:
        return list(dict.fromkeys((source_key(r), source_id_string(r, exp_type)) for r in rows))
    except (TypeError, ValueError):
        return None


def split_exposure(cal_path_or_model, outdir, defer_errors=False, part=(0, 1), table=None,
                   workers=1):
    """Write one file per source of one exposure; returns ``[(source_key, path)]``.

    ``defer_errors``: bad input writes error slices (module docstring) and their
    ``(key, path)`` pairs are returned too; otherwise it raises :class:`InputError`.
    ``part=(k, n)``: only the sources whose stable hash modulo n is k (job k of n splitting one
    exposure; the other slits are not read). ``table``: the source table to write (default
    ``outdir/sources.tsv``). ``workers``: processes splitting the sources, forked once the
    exposure's gwcs is deserialized (they share it, and the imports, with this one).
    """
    where = str(getattr(cal_path_or_model, "path", None) or cal_path_or_model)
    exposure = os.path.basename(where).split(".fits")[0]
    k_part, n_parts = int(part[0]), int(part[1])

    def mine(key):
        return n_parts == 1 or batch_of(key, n_parts) == k_part

    def keep(index, header):
        if not _has_source_id(header):
            return mine(_error_key(exposure, header.get("SLTNAME") or index))
        return mine(source_key(header))

    failed = None   # why the exposure as a whole cannot be split
    try:
        reader = _open(cal_path_or_model, None if n_parts == 1 else keep)
    except InputError as exc:
        reader, failed = None, exc
    os.makedirs(outdir, exist_ok=True)
    errors, results = [], []   # errors: [(order, key, source id string, InputError)]
    if reader is not None:
        with reader:
            try:
                mode_for(reader.primary, where)
            except InputError as exc:
                failed = exc
            else:
                sources, errors = _sources(reader, where, exposure)
                job = _Job(reader, outdir, exposure, _exposure_cards(reader.primary))
                results = _split_all(job, list(sources.items()), workers)
    if failed is not None:
        if not defer_errors:
            raise failed
        keys = None if isinstance(cal_path_or_model, Model) else _keys_from_headers(where)
        errors = [(0, k, sid, failed) for k, sid in (keys or [(_error_key(exposure), "")]) if mine(k)]
    out, rows = [], []
    for order, key, sid, made in results:
        if isinstance(made, tuple):   # (path, problem) of the slit that failed
            errors.append((order, key, sid, InputError(*made)))
        else:
            out.append((key, made))
            rows.append((key, os.path.basename(made), sid))
    if errors and not defer_errors:
        for _, path in out:   # no partial output
            os.remove(path)
        raise min(errors, key=lambda e: e[0])[3]
    errors = list(dict(((e[1], e) for e in sorted(errors, key=lambda e: e[0]))).values())
    for _, key, sid, exc in errors:
        path = os.path.join(outdir, slice_filename(key)[:-len(".fits")] + ERROR_SUFFIX)
        write_error_slice(path, exc)
        log.warning("%s", exc)
        out.append((key, path))
        rows.append((key, os.path.basename(path), sid))
    _write_tsv(table or os.path.join(outdir, "sources.tsv"), rows)
    log.info("%s: %d slits -> %d sources, %d bad", where, len(reader.headers) if reader else 0,
             len(out) - len(errors), len(errors))
    return out


def _sources(reader, where, exposure):
    """``({source key: [kept slit indices]}, [errors of slits without SOURCEID])``, in file order."""
    sources, errors = {}, []
    for j, header in enumerate(reader.headers):
        if not _has_source_id(header):
            name = str(header.get("SLTNAME", "")) or j + 1
            errors.append((j, _error_key(exposure, name), "",
                           InputError(f"{where}[slit {name}]", "slit has no SOURCEID")))
        else:
            sources.setdefault(source_key(header), []).append(j)
    return sources, errors


class _Job:
    """What splitting one source needs: the open exposure and where the slices go."""

    def __init__(self, reader, outdir, exposure, exposure_cards):
        self.reader, self.outdir, self.exposure = reader, outdir, exposure
        self.exp_type = str(reader.primary.get("EXP_TYPE", "")).strip().upper()
        self.exposure_cards = exposure_cards


def _split_all(job, sources, workers):
    """``[(order, key, source id, slice path or (path, problem))]`` per source, in order.

    With ``workers`` > 1 the sources are split by forked processes: the parent has read the
    headers and built the gwcs, which the workers share with it (copy-on-write; Python's cyclic
    GC is frozen so it does not write to every shared object). Two jobs of their own would
    each import and deserialize everything (~240 MB each on a 100-slit MOS exposure)."""
    global _FORKED
    if workers <= 1 or len(sources) <= 1:
        return [_split_source(job, s) for s in sources]
    import gc
    import multiprocessing

    _FORKED = job
    gc.freeze()
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(min(workers, len(sources)), initializer=_worker_start,
                      initargs=(job, os.getpid())) as pool:
            return pool.map(_split_forked, sources, chunksize=max(1, len(sources) // (8 * workers)))
    finally:
        gc.unfreeze()
        _FORKED = None


_FORKED = None   # the _Job of the forked workers (inherited, not pickled)


def _worker_start(job, parent):
    """A forked worker: dies with the job process (a kill -9 of the job must not leave workers
    writing slices for a run that has ended) and opens the exposure file again."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:   # the job died before prctl took effect
        os._exit(1)
    job.reader.reopen()


def _split_forked(source):
    return _split_source(_FORKED, source)


def _split_source(job, source):
    """Read, check, merge and re-reference the slits of one source and write its slice."""
    key, js = source
    header0 = job.reader.headers[js[0]]
    sid = source_id_string(header0, job.exp_type)
    slits = []
    for j in js:
        try:
            slit = job.reader.slit(j)
            missing = [a for a in ("SCI", "WAVELENGTH", "XI", "ETA") if a not in slit]
            if missing or "WSREFRA" not in slit.header:
                raise InputError(f"{job.reader.path}[slit {slit.name or j + 1}]",
                                 f"no per-pixel coordinates ({', '.join(missing) or 'WSREFRA'})")
        except InputError as exc:   # the source fails as a whole
            return js[0], key, sid, (exc.path, exc.problem)
        slits.append(_merge(slit, job.exposure_cards))
    pos = _source_position(slits[0].header)
    ref = pos or (float(slits[0].header["WSREFRA"]), float(slits[0].header["WSREFDE"]))
    for s in slits:
        rereference(s, *ref)
    primary = datamodels.copy_header(job.reader.primary)   # Header.copy: 8x slower, once per source
    primary["DATAMODL"] = "SlitModel" if len(slits) == 1 else "MultiSlitModel"
    primary["WSSRCKEY"] = key                # source key (SRCNAME or SOURCEID)
    primary["WSSRCID"] = (sid, "Stage 3 source id")
    primary["WSEXPOS"] = job.exposure        # exposure this slice comes from
    path = os.path.join(job.outdir, slice_filename(key))
    datamodels.write(Model(primary, slits, "single" if len(slits) == 1 else "multi"), path)
    return js[0], key, sid, path


def _exposure_cards(primary):
    """``[(keyword, card image)]`` of the exposure keywords merged into every slit header, made
    once per exposure (comments of long values dropped so each card fits in 80 characters)."""
    out = []
    with warnings.catch_warnings():   # long comments are truncated: harmless
        warnings.simplefilter("ignore", VerifyWarning)
        for card in primary.cards:
            if card.keyword not in _NO_MERGE:
                short = len(str(card.value)) + len(card.comment) < 44
                out.append((card.keyword, fits.Card(card.keyword, card.value,
                                                    card.comment if short else "").image))
    return out


def _merge(slit, exposure_cards):
    """A copy of ``slit`` whose header also holds the exposure keywords (slit values win).

    The header is parsed from card images (astropy parses them lazily): building it card by
    card cost more than the rest of splitting the slit."""
    have = set(slit.header.keys())
    text = slit.header.tostring(sep="", endcard=False, padding=False)
    text += "".join(image for key, image in exposure_cards if key not in have)
    return Slit(fits.Header.fromstring(text), dict(slit.arrays))


def _write_tsv(path, rows):
    with replacing(path) as tmp, open(tmp, "w") as f:
        for row in [TSV_HEADER] + rows:
            f.write("\t".join(str(x) for x in row) + "\n")
