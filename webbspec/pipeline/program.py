"""Discover what a program directory holds and what the workflow must build for it.

Inputs as MAST delivers them: ``*_rate.fits`` (Stage 2 to run), ``*_cal.fits`` / ``*_x1d.fits``
(Stage 2 already done: no Stage 2 for that exposure), ``*_asn.json`` (Level 2 ``spec2`` and
Level 3 ``spec3`` associations). A directory mixing both gets what each exposure needs. Only
PRIMARY headers are read (the Snakefile calls this on every invocation), and each MOS MSA metadata
file's list of configurations, once.

Bad input does not stop discovery (unless ``strict``): an exposure whose header cannot be read or
whose EXP_TYPE is unknown, and an association that is malformed or names a member that does not
exist, and a MOS exposure whose MSA metadata file is missing or lacks its MSAMETID, become an
:class:`Exposure` with ``error`` set. Its Stage 2 chain is the single step
``assign_wcs`` run on the bad file itself (the association file, for a bad association), so the
workflow has one job that fails with the one-line error in its log while ``--keep-going`` builds
everything else. A Level 3 product of a bad association is left out; one whose science members
include bad inputs is made from the others (``Program.warnings`` names them).

All paths are relative to the program directory (the workflow's working directory).
"""

import glob
import hashlib
import math
import os
import re
from dataclasses import dataclass, field

from ..io import associations
from ..io.datamodels import read_header
from ..errors import InputError
from ..modes import MODES, check_implemented, mode_for

__all__ = ["input_error", "Exposure", "Spec3Product", "Program", "discover", "spec2_chain", "spec2_products",
           "spec2_published", "spec2_chain_rules", "OUT", "exposure_root", "product_key", "batch_of", "read_sources"]

OUT = "webbspec"                       # all outputs under <program>/webbspec/
_SUFFIXES = ("_rate", "_rateints", "_cal", "_calints", "_x1d")
_STAGE2_INPUTS = ("_rate.fits", "_rateints.fits")


def exposure_root(path):
    """``jw..._nrs1_rate.fits`` -> ``jw..._nrs1``."""
    base = os.path.basename(str(path))
    stem = base[:-5] if base.endswith(".fits") else base
    for suf in _SUFFIXES:
        if stem.endswith(suf):
            return stem[: -len(suf)]
    return stem


@dataclass
class Exposure:
    name: str                 # exposure root, e.g. jw01234001001_03101_00001_nrs1
    path: str                 # the input file (_rate, or the delivered _cal)
    mode: str                 # webbspec.modes name
    stage2: bool              # True: we run Stage 2 from the _rate file
    header: object = None     # PRIMARY header of the input (for bestrefs)
    backgrounds: list = field(default_factory=list)   # background _rate paths (spec2 asn)
    imprints: list = field(default_factory=list)      # imprint _rate paths (spec2 asn)
    asn: str | None = None    # the spec2 association naming it, if any
    error: str | None = None  # bad input: the one-line InputError its first job raises again

    @property
    def ints(self):
        """A 3-D per-integration input (``_rateints``): Stage 2 writes `_calints` / `_x1dints`."""
        return str(self.path).endswith("_rateints.fits")


@dataclass
class Spec3Product:
    name: str                 # product name from the spec3 association (may hold {source_id})
    asn: str
    mode: str
    science: list             # exposure names, in association order
    cal: dict                 # exposure name -> _cal path (delivered, or our Stage 2 product)
    backgrounds: list         # background _x1d paths (delivered, or our Stage 2 products)
    left_out: list = field(default_factory=list)      # science members that are bad inputs
    asn_id: str = ""          # the association's asn_id (IFU `_crf` names: <exposure>_<asn_id>_crf.fits)

    @property
    def key(self):
        """The product name without literal ``{...}`` placeholders: safe as a directory name."""
        return product_key(self.name)


@dataclass
class Program:
    root: str
    exposures: dict           # name -> Exposure
    products: dict            # spec3 product name -> Spec3Product

    @property
    def stage2(self):
        return {n: e for n, e in self.exposures.items() if e.stage2}

    @property
    def errors(self):
        """The one-line errors of the bad inputs found (each also fails its exposure's first job)."""
        return [e.error for e in self.exposures.values() if e.error]

    @property
    def warnings(self):
        """One line per Level 3 product built without some of its science members (bad inputs)."""
        return [f"{p.asn}: product {p.name} is made without {', '.join(p.left_out)} (bad input)"
                for p in self.products.values() if p.left_out]


def product_key(name):
    """``jw1-o001_t001-{source_id}_nirspec_g395h-{slit_name}`` -> ``jw1-o001_t001-source_id_...``."""
    return re.sub(r"\{(\w+)\}", r"\1", name)


def batch_of(source_key, nbatches):
    """The Stage 3 batch of a source: a stable hash, so adding a source moves no other source."""
    digest = hashlib.blake2b(str(source_key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % int(nbatches)


def exp_to_source_parts(cal, split_mb):
    """exp_to_source jobs of one exposure: one per ``split_mb`` MB of its `_cal` (1 while Stage 2
    has not made it)."""
    try:
        size = os.path.getsize(cal)
    except OSError:
        return 1
    return max(1, math.ceil(size / (float(split_mb) * 2**20)))


def exp_to_source_tables(outdir, exposure, cal, split_mb):
    """The source tables exp_to_source writes for one exposure (one per part) under ``outdir``
    (``.../spec3/<product>``)."""
    n = exp_to_source_parts(cal, split_mb)
    return [os.path.join(outdir, "exp_to_source", exposure, f"sources.{k}-{n}.tsv") for k in range(n)]


def read_sources(tsv):
    """``[(source_key, slice_path)]`` from an exp_to_source ``sources.tsv`` (tab-separated).

    A header line (first field ``source``/``source_key``) and ``#`` comments are skipped; a
    relative slice path is relative to the TSV's own directory.
    """
    out, base = [], os.path.dirname(str(tsv))
    with open(tsv) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if not fields[0] or fields[0].startswith("#") or fields[0].lower() in ("source", "source_key"):
                continue
            if len(fields) < 2:
                raise InputError(tsv, f"line without a slice path: {line.strip()!r}")
            path = fields[1]
            if not os.path.isabs(path):
                path = os.path.normpath(os.path.join(base, path))
            out.append((fields[0], path))
    return out


def spec2_chain(exp, config=None):
    """The Stage 2 steps this exposure runs, in order (the mode's chain minus inapplicable steps
    and the steps ``config`` skips, ``skip: true``; None: the defaults').

    A bad input (``exp.error``) runs ``assign_wcs`` only: that job reads the file again and fails.
    """
    from .params import skipped_steps

    if exp.error or exp.mode not in MODES:
        return ["assign_wcs"]
    skipped = skipped_steps(config, "spec2", exp.mode)
    steps = [s for s in MODES[exp.mode].spec2 if s not in skipped]
    if not exp.backgrounds and not MODES[exp.mode].ref_background and "bkg_subtract" in steps:
        steps.remove("bkg_subtract")
    if not exp.imprints and "imprint_subtract" in steps:
        steps.remove("imprint_subtract")
    if exp.ints:   # official: no resampling of per-integration data; extract_1d runs on the _calints
        steps = [s for s in steps if s not in ("resample_spec", "cube_build")]
    return steps


def spec2_products(chain, ints=False):
    """``{suffix: step}``: which step's output each Stage 2 product is (``ints``: the per-integration
    names `calints` / `x1dints`)."""
    out = {}
    ends = [i for i, s in enumerate(chain) if s in ("resample_spec", "cube_build", "extract_1d")]
    cal_at = (ends[0] - 1) if ends else len(chain) - 1
    if cal_at >= 0:
        out["cal"] = chain[cal_at]
    if "resample_spec" in chain:
        out["s2d"] = "resample_spec"
    if "cube_build" in chain:
        out["s3d"] = "cube_build"
    if "extract_1d" in chain:
        out["x1d"] = chain[-1]      # a mode may apply photom after extract_1d (SOSS)
    if "bkg_subtract" in chain:
        out["bsub"] = "bkg_subtract"
    if ints:
        out = {{"cal": "calints", "x1d": "x1dints", "bsub": "bsubints"}.get(k, k): v for k, v in out.items()}
    return out


def spec2_published(chain, ints=False, save_bsub=False):
    """``{suffix: step}`` of the Stage 2 products the workflow writes (``_bsub`` only on request)."""
    return {k: v for k, v in spec2_products(chain, ints).items() if not k.startswith("bsub") or save_bsub}


def spec2_chain_rules(stage2, config=None):
    """``{exposure: (rule name, chain)}`` when each exposure's Stage 2 is one job
    (``workflow.spec2_jobs: exposure``). A Snakemake rule has a fixed set of outputs, so there is
    one rule per distinct chain (and per-integration naming): ``spec2_chain_<k>``, numbered in the
    sorted order of the distinct chains; the rules and ``refs diff`` both name jobs with this."""
    keys = {name: (tuple(spec2_chain(exp, config)), bool(exp.ints)) for name, exp in stage2.items()}
    number = {key: k for k, key in enumerate(sorted(set(keys.values())), start=1)}
    return {name: (f"spec2_chain_{number[key]}", list(key[0])) for name, key in keys.items()}


def cube_prep_rules(cube_products):
    """``{product key: rule name}`` of the cube products' prepare jobs (rules/spec3.smk): a rule
    each, since a product's exposures are its outputs; ``spec3_cube_prep_<n>``, numbered in the
    sorted order of the keys. The rules and ``refs diff`` both name jobs with this."""
    return {key: f"spec3_cube_prep_{n}" for n, key in enumerate(sorted(cube_products), start=1)}


def _rel(path, root):
    path = os.path.abspath(path)
    rel = os.path.relpath(path, root)
    return path if rel.startswith("..") else rel


def _header_mode(path, root):
    hdr = read_header(os.path.join(root, path))
    return hdr, mode_for(hdr, path).name


def _bad_exposure(name, path, error, stage2=True, header=None):
    """An exposure whose first job re-reads ``path`` and fails with ``error``."""
    from astropy.io import fits

    return Exposure(name, path, None, stage2, header if header is not None else fits.Header(),
                    error=str(error))


def _exposure(name, path, root, stage2, strict):
    try:
        hdr, mode = _header_mode(path, root)
    except InputError as exc:
        if strict:
            raise
        return _bad_exposure(name, path, exc)   # stage2: one job reports it, even for a _cal
    error = _metadata_error(hdr, mode, path, root) if stage2 else None
    if error is not None and strict:
        raise error
    return Exposure(name, path, mode, stage2, hdr, error=None if error is None else str(error))


def _metadata_error(hdr, mode, path, root):
    """What is wrong with the file a MOS exposure's header names (its MSA metadata file: missing,
    or without its MSAMETID / PATT_NUM), or None. Found here, when the run is planned; the
    exposure's assign_wcs job then fails with the same line."""
    if not MODES[mode].msa:
        return None
    from ..instruments.nirspec import msa

    try:
        msa.check_exposure(hdr, os.path.join(root, path))
    except InputError as exc:
        return exc
    return None


def _asn_name(path):
    """A pseudo exposure name for a bad association: its file name without ``.json``."""
    base = os.path.basename(str(path))
    return base[:-5] if base.endswith(".json") else base


def discover(root=".", strict=False):
    """Scan ``root`` and return a :class:`Program`.

    ``strict``: raise the first :class:`InputError` (naming the bad file); otherwise bad inputs
    are recorded as exposures with ``error`` set (see the module docstring).
    """
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise InputError(root, "program directory does not exist")

    def files(pattern):
        return sorted(_rel(p, root) for p in glob.glob(os.path.join(root, pattern)))

    rates = {exposure_root(p): p for p in files("*_rate.fits") + files("*_rateints.fits")}
    cals = {exposure_root(p): p for p in files("*_cal.fits")}
    x1ds = {exposure_root(p): p for p in files("*_x1d.fits")}
    exposures, asns = {}, []
    for p in files("*_asn.json"):
        try:
            asns.append(associations.read(os.path.join(root, p), check_files=False))
        except InputError as exc:
            if strict:
                raise
            exposures[_asn_name(p)] = _bad_exposure(_asn_name(p), p, InputError(p, exc.problem))

    # a delivered _cal means Stage 2 is done for that exposure (MAST delivery)
    for name, path in cals.items():
        exposures[name] = _exposure(name, path, root, False, strict)
    for name, path in rates.items():
        if name in exposures:
            continue
        exposures[name] = _exposure(name, path, root, True, strict)

    def guarded(fn, asn, *args):
        try:
            return fn(asn, *args)
        except InputError as exc:
            if strict:
                raise
            where = _rel(asn.path, root)
            exposures[_asn_name(where)] = _bad_exposure(_asn_name(where), where, exc)
            return None

    for asn in (a for a in asns if a.level == 2):
        for prod in asn.products:
            guarded(_apply_spec2, asn, prod, exposures, root, strict)
    # an imprint (leakcal) exposure is another exposure's member, not calibrated on its own
    for name in {exposure_root(p) for e in exposures.values() for p in e.imprints}:
        if name in exposures and exposures[name].asn is None:
            del exposures[name]

    products = {}
    for asn in (a for a in asns if a.level == 3):
        for prod in asn.products:
            p = guarded(_spec3_product, asn, prod, exposures, x1ds, root, strict)
            if p is not None:
                products[product_key(prod.name)] = p
    return Program(root, exposures, products)


def check_plan(program, config=None):
    """The planning-time check: every step an exposure or a product will run is written for its
    mode (InputError naming the file, the mode and the step; see modes.check_implemented), and
    there is something to calibrate at all."""
    if not program.exposures and not program.products:
        raise InputError(program.root, "no *_rate.fits, *_rateints.fits, *_cal.fits or *_asn.json "
                                       "found: nothing to calibrate")
    for _, exp in sorted(program.stage2.items()):
        if exp.error is None and exp.mode in MODES:
            check_implemented(MODES[exp.mode], spec2_chain(exp, config), exp.path, stage=2)
    if config is None or config.get("workflow", {}).get("stage3", True):   # stage3: false plans no Stage 3 job
        for _, prod in sorted(program.products.items()):
            check_implemented(MODES[prod.mode], MODES[prod.mode].spec3, prod.asn)
    return program


def input_error(path):
    """The :class:`InputError` discovery records for the input file ``path`` (e.g. an association
    naming a member that does not exist and cannot be made), or None. The failing job of a bad
    input raises it, so its log holds the same one line as discovery reported."""
    full = os.path.abspath(str(path))
    root = os.path.dirname(full)
    for exp in discover(root).exposures.values():
        if exp.error and os.path.abspath(os.path.join(root, exp.path)) == full:
            where, _, problem = exp.error.partition(": ")
            return InputError(where, problem)
    return None


def _check_member(asn, m, root):
    if not os.path.exists(m.path):
        raise InputError(_rel(asn.path, root), f"member {m.expname} does not exist")
    return _rel(m.path, root)


def _apply_spec2(asn, prod, exposures, root, strict=True):
    sci = prod.science[0]
    path = _check_member(asn, sci, root)
    name = exposure_root(path)
    exp = exposures.get(name)
    if exp is None:   # a science member outside the directory scan (e.g. a subdirectory)
        exp = exposures[name] = _exposure(name, path, root, path.endswith(_STAGE2_INPUTS), strict)
    where = _rel(asn.path, root)
    try:
        backgrounds = [_check_member(asn, m, root) for m in prod.of("background")]
        imprints = [_check_member(asn, m, root) for m in prod.of("imprint")]
    except InputError as exc:
        if strict:
            raise
        # the exposure cannot run without its members: its first job reads the association
        exp.path, exp.mode, exp.error = where, None, str(exc)
        exp.asn = where
        return
    exp.asn = where
    exp.backgrounds, exp.imprints = backgrounds, imprints


def _spec3_product(asn, prod, exposures, x1ds, root, strict=True):
    where = _rel(asn.path, root)
    cal, science, left_out = {}, [], []
    for m in prod.science:
        name = exposure_root(m.expname)
        exp = exposures.get(name)
        if exp is not None and exp.error:
            # a bad input found now (its own job fails): the product is made from the others
            left_out.append(name)
            continue
        if os.path.exists(m.path):
            cal[name] = _rel(m.path, root)
            if exp is None:
                exp = exposures[name] = _exposure(name, cal[name], root, False, strict)
        elif exp is not None and exp.stage2:
            cal[name] = f"{OUT}/spec2/{name}_cal.fits"
        else:
            raise InputError(where, f"member {m.expname} does not exist and no {name}_rate.fits to make it from")
        science.append(name)
    # a bad member (unknown EXP_TYPE, unreadable) fails in its own job; the mode is the others'
    modes = {exposures[n].mode for n in science if exposures[n].mode}
    if len(modes) > 1:
        raise InputError(where, f"product {prod.name} mixes modes {sorted(modes)}")
    if not modes:
        raise InputError(where, f"product {prod.name}: no science member with a known EXP_TYPE"
                         + (" and no member left that is not a bad input" if left_out else ""))
    backgrounds = []
    for m in prod.of("background"):
        name = exposure_root(m.expname)
        if os.path.exists(m.path):
            backgrounds.append(_rel(m.path, root))
        elif name in exposures and exposures[name].stage2:
            backgrounds.append(f"{OUT}/spec2/{name}_x1d.fits")
        elif name in x1ds:
            backgrounds.append(x1ds[name])
        else:
            raise InputError(where, f"member {m.expname} does not exist and no {name}_rate.fits to make it from")
    return Spec3Product(prod.name, where, modes.pop(), science, cal, backgrounds, left_out, str(asn.asn_id or ""))
