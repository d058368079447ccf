"""The cube Stage 3 path (Mode.stage3_kind "cubes": NIRSpec IFU, MIRI MRS), as calwebb_spec3 runs it.

One association product = every science `_cal` exposure of the association together (no per-source
split), in three kinds of job (the workflow's rules, rules/spec3.smk; :func:`run_product` runs them
all in one process):

    prepare (per product)   master_background (when the association has background `_x1d` members:
                            one 1-D master spectrum, interpolated at every pixel's wavelength and
                            subtracted), mrs_imatch (MRS: sky levels matched and recorded, subtracted
                            only when asked), outlier_detection (IFU)
                            -> <exposure>_<asn_id>_crf.fits per science exposure (IFUImageModel,
                               with the per-pixel coordinates cube_build reads)
    cube (per cube)         cube_build over the `_crf` of every exposure holding the cube's bands
                            -> <product>_<cube>_s3d.fits
    extract (per cube)      extract_1d of that cube -> <product>_<cube>_x1d.fits

``<cube>`` is the official cube suffix (``ch1-short``, ``ch1-shortmediumlong``, ``g395h-f290lp``);
which cubes a product has follows from its exposures' PRIMARY headers (MRS CHANNEL / BAND, NIRSpec
GRATING / FILTER) and the cube_build parameters (output_type, channel, band, grating, filter):
:func:`plan_cubes`, so the workflow knows every target before anything runs. Names: the official
cube name is the product name with a trailing bare grating removed (the official NRS IFU
association names end with the grating) plus ``_<cube>``; a product name already ending with the
cube's own grating-filter is not repeated (``..._nirspec_g395h-f290lp`` -> ``..._nirspec_g395h-f290lp_s3d``,
where the official step would write ``..._g395h-f290lp_g395h-f290lp_s3d``).
"""

import inspect
import logging
import os
from dataclasses import dataclass, field
from types import SimpleNamespace

from ..errors import InputError

__all__ = ["CubePlan", "plan_cubes", "program_cube_plans", "cube_product_name", "crf_name", "prepare", "prepare_models",
           "write_crf", "build_cube", "build_cube_models", "extract", "run_product", "PREP_STEPS", "bands_of"]

log = logging.getLogger(__name__)

PREP_STEPS = ("master_background", "mrs_imatch", "outlier_detection")
_GRATINGS = ("g140m", "g235m", "g395m", "g140h", "g235h", "g395h", "prism")
_SELECT = ("channel", "band", "grating", "filter")


@dataclass
class CubePlan:
    suffix: str                   # official cube suffix, e.g. ch1-short
    bands: list                   # [(channel, band)] or [(grating, filter)]
    exposures: list               # the exposures holding them, in association order
    selection: dict = field(default_factory=dict)   # cube_build's channel/band/grating/filter for this cube


def _shim(name, header):
    return SimpleNamespace(primary=header, path=name)


def bands_of(header):
    """The bands of an exposure from its PRIMARY header: MRS [(channel, band)], NIRSpec [(grating, filter)]."""
    from ..steps import cube_build

    return cube_build._bands_of(_shim("", header))


def plan_cubes(headers, cube_params=None, where="cube_build"):
    """The cubes of a product: [:class:`CubePlan`] from ``headers`` ({exposure: PRIMARY header},
    association order) and the cube_build parameters, as cube_build groups them. A selection that
    matches no band of the exposures: InputError naming ``where``, the selection and the bands held."""
    from ..steps import cube_build

    p = dict(cube_params or {})
    selection = {k: p.get(k, "all") for k in _SELECT}
    output_type = str(p.get("output_type", "band")).lower()
    shims = [_shim(n, h) for n, h in headers.items()]
    if not shims:
        raise InputError(where, "no science exposures")
    try:
        groups = cube_build._cube_groups(shims, output_type, selection)
    except InputError as exc:
        raise InputError(where, exc.problem) from None
    miri = cube_build._is_miri(shims[0])
    plans = []
    for bands in groups:
        exps = [n for n, h in headers.items() if any(b in bands for b in bands_of(h))]
        if output_type == "multi" and not any(str(v).lower() != "all" for v in selection.values()):
            sel = dict(selection)
        elif miri:
            sel = {"channel": ",".join(dict.fromkeys(b[0] for b in bands)),
                   "band": ",".join(dict.fromkeys(b[1] for b in bands)), "grating": "all", "filter": "all"}
        else:
            sel = {"channel": "all", "band": "all", "grating": ",".join(dict.fromkeys(b[0] for b in bands)),
                   "filter": ",".join(dict.fromkeys(b[1] for b in bands))}
        plans.append(CubePlan(cube_build._suffix(bands, miri), list(bands), exps, sel))
    return plans


def cube_product_name(product, suffix):
    """``<product>_<suffix>`` as the official cube_build names it (see the module docstring)."""
    base = str(product)
    last = base.rsplit("_", 1)[-1].lower() if "_" in base else ""
    own = {suffix.lower(), "-".join(reversed(suffix.lower().split("-")))} if suffix.count("-") == 1 else {suffix.lower()}
    if last in _GRATINGS or last in own:
        base = base.rsplit("_", 1)[0]
    return f"{base}_{suffix}".lower()


def program_cube_plans(prog, config, out=None):
    """``{product key: [CubePlan]}`` of the cube products (Mode.stage3_kind "cubes") of ``prog``:
    their cubes follow from the science members' PRIMARY headers (MRS CHANNEL / BAND, NIRSpec
    GRATING / FILTER) and the cube_build parameters, so every target is known when the run is
    planned. A product whose cube_build selection matches none of its bands has no cubes: one
    warning line naming its association, the selection and the bands it holds (``out``: where to
    print it; None: not printed); its other Stage 3 products (`_crf`) are still made."""
    from ..modes import MODES
    from . import params

    plans = {}
    for key, prod in sorted(prog.products.items()):
        if MODES[prod.mode].stage3_kind != "cubes":
            continue
        headers = {n: prog.exposures[n].header for n in prod.science}
        cube_params = params.step_params(config, "spec3", "cube_build", prod.mode)
        try:
            plans[key] = plan_cubes(headers, cube_params, where=prod.asn)
        except InputError as exc:
            plans[key] = []
            if out is not None:
                print(f"webbspec: warning: {exc} (product {prod.name}: no cube made)", file=out)
    return plans


def crf_name(exposure, asn_id):
    """The official Stage 3 name of an IFU exposure after outlier detection: ``<exposure>_<asn_id>_crf.fits``."""
    return f"{exposure}_{asn_id}_crf.fits" if asn_id else f"{exposure}_crf.fits"


# ---------------------------------------------------------------- the jobs


def _stamp(m, refs, context):
    """Provenance of a product: the webbspec version, R_<REFTYPE> and the context."""
    from .. import __version__
    from ..io.provenance import reference_cards

    m.primary["WSVERS"] = (__version__, "webbspec version")
    for k, card in reference_cards(refs or {}, context).items():
        m.primary[k] = card
    return m


def _steps_of(mode, steps):
    from ..modes import MODES, mode_by_name

    if steps is not None:
        return tuple(steps)
    m = MODES.get(mode) or mode_by_name(mode)
    return tuple(s for s in m.spec3 if s in PREP_STEPS)


def prepare_models(models, backgrounds=(), *, mode=None, steps=None, params=None):
    """The prepare job in memory: ``models`` (the science exposures) through master_background,
    mrs_imatch and outlier_detection (those of ``steps``, default the mode's); returns new models."""
    from .. import steps as steplib
    from ..io import datamodels

    params = dict(params or {})
    mode = mode or (models[0].mode.name if models else None)
    steps = _steps_of(mode, steps)
    current = list(models)
    for step in steps:
        p = dict(params.get(step) or {})
        module = steplib.load(step)
        if step == "master_background":
            bkgs = [datamodels.read(b) if isinstance(b, (str, os.PathLike)) else b for b in backgrounds]
            current = _master_background(module, current, bkgs, p)
        elif step == "mrs_imatch":
            current = module.run(current, {}, **p)
        elif step == "outlier_detection":
            current = module.run(current, {}, **p)
            current = list(current) if isinstance(current, (list, tuple)) else [current]
        else:
            raise InputError(step, "not a step of the cube Stage 3 prepare job")
    return current


def _master_background(module, models, backgrounds, p):
    """master_background over the exposures of the product, as the official step decides: skipped
    when there is no background, or when every exposure had its background subtracted in Stage 2
    (a mixture: skipped with a warning) unless force_subtract."""
    if _master_background_skips([m.primary for m in models], backgrounds, p):
        return [_status(m, "SKIPPED") for m in models]
    return [module.run(m, {}, backgrounds=backgrounds, **p) for m in models]


def _master_background_skips(headers, backgrounds, p):
    """True when master_background skips the product, from its exposures' primary ``headers``."""
    if not backgrounds and p.get("user_background") is None:
        return True
    done = [any(str(h.get(k, "")).upper() == "COMPLETE" for k in ("S_BKDSUB", "S_MSBSUB")) for h in headers]
    if any(done) and not bool(p.get("force_subtract", False)):
        if not all(done):
            log.warning("master_background: some exposures had their background subtracted in Stage 2 and "
                        "some not; skipped (force_subtract to subtract anyway)")
        return True
    return False


def _status(m, status):
    out = m.copy(arrays=False)
    out.primary["S_MSBSUB"] = status
    return out


def prepare(cals, crfs, *, backgrounds=(), mode=None, steps=None, params=None, context=None):
    """The prepare job: read the `_cal` files ``cals``, run :func:`prepare_models`, write each result
    to the matching path of ``crfs`` (official `_crf`, IFUImageModel keeping the coordinates)."""
    from ..io import datamodels

    if len(cals) != len(crfs):
        raise InputError("stage3_cubes", "one _crf path per _cal is needed")

    def read(i):
        m = datamodels.read(cals[i])
        if m.mode.stage3_kind != "cubes":
            raise InputError(cals[i], f"not an IFU exposure ({m.exp_type or 'EXP_TYPE unknown'})")
        return m

    outs = _streamed(read, cals, backgrounds, mode, steps, params)
    if outs is None:
        models = [read(i) for i in range(len(cals))]
        outs = prepare_models(models, backgrounds, mode=mode, steps=steps, params=params)
    for m, path in zip(outs, crfs):
        write_crf(_stamp(m, {}, context), path)
    return list(crfs)


def _streamed(read, cals, backgrounds, mode, steps, params):
    """The prepared exposures one at a time (a generator) when the job's only work is our IFU outlier
    detection (master_background skipped, no mrs_imatch): each `_cal` is read twice and one exposure
    is in memory at a time (ifu_outliers.flag_stream). None otherwise."""
    from ..algorithms import ifu_outliers
    from ..io.datamodels import read_header
    from ..steps import outlier_detection as od

    count = len(cals)
    params = dict(params or {})
    p = dict(params.get("outlier_detection") or {})
    mb = dict(params.get("master_background") or {})
    if mode is None or count < 2 or str(p.get("ifu_method", "webbspec")).strip().lower() != "webbspec":
        return None
    todo = _steps_of(mode, steps)
    if "outlier_detection" not in todo or set(todo) - {"master_background", "outlier_detection"} \
            or set(p) - set(inspect.signature(od.run).parameters):
        return None
    if "master_background" in todo and not _master_background_skips([read_header(c) for c in cals], backgrounds, mb):
        return None
    snr = od._pair(p.get("snr", "5.0 4.0"), "outlier_detection.snr")
    od._pair(p.get("kernel_size", "7 7"), "outlier_detection.kernel_size")     # checked as the step does
    good_bits = p.get("good_bits", "~DO_NOT_USE")
    gen = ifu_outliers.flag_stream(read, count, lambda s: od._good_mask(s, good_bits), snr)
    if gen is None or "master_background" not in todo:
        return gen
    return (_status(m, "SKIPPED") for m in gen)


def write_crf(model, path):
    from ..io import datamodels

    model.primary["DATAMODL"] = "IFUImageModel"
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    return datamodels.write(model, path)


def build_cube_models(models, plan, *, params=None, refs=None):
    """The cube of ``plan`` from the exposures (models, or paths: cube_build then reads them one
    at a time and keeps only their pixel clouds, 1.4 GB instead of 3.7 GB for 8 NIRSpec exposures)."""
    from ..steps import cube_build

    p = dict(params or {})
    p.update(plan.selection)
    label = ", ".join("/".join(b) for b in plan.bands)
    try:
        cubes = cube_build.run(list(models), {"cubepar": (refs or {}).get("cubepar", "N/A")}, **p)
    except InputError as exc:     # one line naming the file and the band (cube_build's warnings said which part)
        if label in exc.problem:
            raise
        raise InputError(exc.path, f"{exc.problem} (cube {plan.suffix}: band {label})") from None
    found = [c for c in cubes if c.name == plan.suffix]
    if not found:
        first = models[0] if isinstance(models[0], (str, os.PathLike)) else models[0].path
        raise InputError(os.fspath(first or "cube_build"), f"cube_build made {', '.join(c.name for c in cubes)}, "
                         f"not the planned cube {plan.suffix}")
    return found[0]


def build_cube(crfs, out, plan, *, params=None, refs=None, context=None):
    """The cube job: cube_build over the `_crf` files ``crfs`` -> ``out`` (`_s3d`)."""
    from ..io import cubes

    cube = build_cube_models([os.fspath(c) for c in crfs], plan, params=params, refs=refs)
    _stamp(cube, {"cubepar": (refs or {}).get("cubepar", "N/A")}, context)
    return cubes.write(cube, out)


def extract(s3d, out, *, params=None, refs=None, context=None):
    """The extract job: extract_1d of one cube (a path or a Cube) -> ``out`` (`_x1d`)."""
    from ..io import cubes, officialio
    from ..steps import extract_1d

    cube = cubes.read(s3d) if isinstance(s3d, (str, os.PathLike)) else s3d
    r = {rt: (refs or {}).get(rt, "N/A") for rt in extract_1d.REFTYPES}
    spec = extract_1d.run(cube, r, **dict(params or {}))
    _stamp(spec, r, context)
    return officialio.write(spec, out, "x1d")


def run_product(cals, *, product, asn_id, outdir, mode=None, backgrounds=(), params=None, refs=None,
                context=None, write_crfs=True):
    """The whole cube Stage 3 of one product in this process (tests, ``webbspec`` without Snakemake):
    returns ``{"crf": [paths], "s3d": [paths], "x1d": [paths], "failed": {cube: message}}``. A cube
    that cannot be made (a band without data, a cubepar without it) is a one-line warning naming
    the file and band; the other cubes are still made."""
    from ..io import cubes, datamodels
    from ..io.datamodels import read_header

    params = dict(params or {})
    names = [os.path.basename(str(c)).removesuffix(".fits").removesuffix("_cal") for c in cals]
    headers = {n: read_header(c) for n, c in zip(names, cals)}
    plans = plan_cubes(headers, params.get("cube_build"), where=str(cals[0]))
    models = prepare_models([datamodels.read(c) for c in cals], backgrounds, mode=mode, params=params)
    out = {"crf": [], "s3d": [], "x1d": [], "failed": {}}
    os.makedirs(outdir, exist_ok=True)
    if write_crfs:
        for n, m in zip(names, models):
            out["crf"].append(write_crf(_stamp(m, {}, context), os.path.join(outdir, crf_name(n, asn_id))))
    by_name = dict(zip(names, models))
    for plan in plans:
        base = os.path.join(outdir, cube_product_name(product, plan.suffix))
        try:
            cube = build_cube_models([by_name[n] for n in plan.exposures], plan, params=params.get("cube_build"),
                                     refs=refs)
        except InputError as exc:
            import sys

            print(f"webbspec: warning: {exc}", file=sys.stderr)
            out["failed"][plan.suffix] = str(exc)
            continue
        _stamp(cube, {"cubepar": (refs or {}).get("cubepar", "N/A")}, context)
        out["s3d"].append(cubes.write(cube, base + "_s3d.fits"))
        out["x1d"].append(extract(cube, base + "_x1d.fits", params=params.get("extract_1d"), refs=refs,
                                  context=context))
    return out
