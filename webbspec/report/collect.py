"""Find what a program directory holds: products per source, the exposures' spectra, the truth.

Only file names and headers are read here (the arrays are read when plotted). Sources are the
Level 3 products (``webbspec/spec3/<name>_<kind>.fits``, one ``<name>`` per source) and, where
Stage 3 has not run, the sources of the Stage 2 ``_x1d`` spectra. A file that cannot be read is
recorded as a problem of the program or the source, never raised.
"""

import glob
import os
import re
from dataclasses import dataclass, field

from astropy.io import fits

__all__ = ["Source", "Program", "collect", "LEVEL3_KINDS"]

LEVEL3_KINDS = ("x1d", "c1d", "s2d", "crf", "cal")
_LEVEL3 = re.compile(r"^(?P<name>.+)_(?P<kind>" + "|".join(LEVEL3_KINDS) + r")\.fits$")
_SOURCE_IN_NAME = re.compile(r"[_-]s(\d{9})(?:[_-]|$)")
# Stage 2 products shown in the products table (intermediates live in per-exposure folders)
_STAGE2 = re.compile(r"^(?P<exposure>.+)_(?P<kind>cal|s2d|x1d|calints|x1dints|bsub|bsubints)\.fits$")


@dataclass
class Source:
    key: str                                   # the Level 3 name, or s<id> for a Stage 2-only source
    source_id: int | None = None
    label: str = ""                            # SRCNAME / slit name, for the reader
    srctype: str = ""
    level3: dict = field(default_factory=dict)     # kind -> path
    exposures: list = field(default_factory=list)  # (exposure, x1d path, EXTVER) of Stage 2 spectra
    truth: str | None = None                       # truth spectrum (.ecsv)
    problems: list = field(default_factory=list)


@dataclass
class Program:
    root: str
    sources: list = field(default_factory=list)
    products: list = field(default_factory=list)   # (stage, path) of every product
    truth_dir: str | None = None
    problems: list = field(default_factory=list)


def _headers(path, problems):
    """The headers of ``path`` (FITS), or None with the reason added to ``problems``."""
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
            return [(h.name, h.ver, h.header.copy()) for h in hdul]
    except (OSError, ValueError) as exc:
        problems.append(f"{os.path.basename(path)}: cannot read ({exc})")
        return None


def _source_id(headers, name):
    """SOURCEID of the product (primary, else the first extension carrying it), else the
    9-digit id in its name."""
    for _, _, h in headers or ():
        if "SOURCEID" in h:
            try:
                return int(h["SOURCEID"])
            except (TypeError, ValueError):
                break
    m = _SOURCE_IN_NAME.search(name)
    return int(m.group(1)) if m else None


def _describe(source, headers):
    for _, _, h in headers or ():
        source.label = source.label or " ".join(str(h.get(k, "")).strip() for k in ("SRCNAME", "SLTNAME")).strip()
        source.srctype = source.srctype or str(h.get("SRCTYPE", "")).strip().upper()


def _level3_sources(spec3, problems):
    sources = {}
    for path in sorted(glob.glob(os.path.join(spec3, "*.fits"))):
        m = _LEVEL3.match(os.path.basename(path))
        if not m:
            continue
        src = sources.setdefault(m["name"], Source(m["name"]))
        src.level3[m["kind"]] = path
    for src in sources.values():
        # the 1-D product names the source best; any product will do
        path = next(src.level3[k] for k in LEVEL3_KINDS if k in src.level3)
        headers = _headers(path, src.problems)
        src.source_id = _source_id(headers, src.key)
        _describe(src, headers)
    return list(sources.values())


def _stage2_spectra(spec2, problems):
    """``{source_id: [(exposure, path, extver, headers)]}`` of every Stage 2 ``_x1d`` spectrum."""
    out = {}
    for path in sorted(glob.glob(os.path.join(spec2, "*_x1d.fits"))):
        headers = _headers(path, problems)
        exposure = os.path.basename(path)[:-len("_x1d.fits")]
        for name, ver, h in headers or ():
            if name == "EXTRACT1D" and "SOURCEID" in h:
                out.setdefault(int(h["SOURCEID"]), []).append((exposure, path, ver, h))
    return out


def _truth(root):
    """``{source_id: spectrum path}`` from truth/sources.ecsv (simulated programs), or {}."""
    tdir = os.path.join(root, "truth")
    table = os.path.join(tdir, "sources.ecsv")
    if not os.path.isfile(table):
        return None, {}
    out = {}
    for path in glob.glob(os.path.join(tdir, "spectra", "s*.ecsv")):
        m = re.match(r"^s(\d+)\.ecsv$", os.path.basename(path))
        if m:
            out[int(m.group(1))] = path
    return tdir, out


def collect(root):
    """The :class:`Program` of the program directory ``root``."""
    root = os.path.abspath(root)
    prog = Program(root)
    out = os.path.join(root, "webbspec")
    spec2, spec3 = os.path.join(out, "spec2"), os.path.join(out, "spec3")
    if not os.path.isdir(out):
        prog.problems.append("no webbspec/ products: the workflow has not run on this directory")
    sources = _level3_sources(spec3, prog.problems)
    stage2 = _stage2_spectra(spec2, prog.problems)
    known = {s.source_id for s in sources}
    for sid in sorted(set(stage2) - known):        # Stage 2 only (Stage 3 not run or failed)
        src = Source(f"s{sid:09d}", sid)
        _describe(src, [(None, None, h) for *_, h in stage2[sid]])
        sources.append(src)
    prog.truth_dir, truth = _truth(root)
    for src in sources:
        src.exposures = [(e, p, v) for e, p, v, _ in stage2.get(src.source_id, [])]
        src.truth = truth.get(src.source_id)
    prog.sources = sorted(sources, key=lambda s: (s.source_id is None, s.source_id or 0, s.key))
    for path in sorted(glob.glob(os.path.join(spec2, "*.fits"))):
        if _STAGE2.match(os.path.basename(path)):
            prog.products.append(("2", path))
    for path in sorted(glob.glob(os.path.join(spec3, "*.fits"))):
        if _LEVEL3.match(os.path.basename(path)):
            prog.products.append(("3", path))
    return prog
