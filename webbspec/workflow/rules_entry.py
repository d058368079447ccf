"""The small command the workflow's jobs run: ``python -m webbspec.workflow.rules_entry <job> ...``.

One process per job; imports stay lazy so a job pays only for what it runs. Each job logs to
its ``--log`` file; bad input prints ``webbspec: <file>: <problem>`` on one line to stderr (and
to the log) and exits 2, leaving no output behind (every write is atomic).

exp-to-source does not fail on a bad exposure or slit: it writes error slices for the sources
concerned (see :mod:`webbspec.pipeline.exp_to_source`), so the product's other sources go on. A Stage 3
batch runs every source of the batch, writes its manifest with one row per source (status
``error`` and the message for failed ones), prints one ``webbspec:`` line per failed source and
exits 2 (Snakemake then removes the manifest, so the batch re-runs next time; the sources that
were made are skipped as unchanged).

Jobs:
  step NAME INPUT OUTPUT     one Stage 2 step (webbspec.pipeline.steprun.run_step)
  product INPUT OUTPUT       publish a Stage 2 intermediate as a product (_cal, _s2d, _x1d, ...)
  exp-to-source CAL TSV      split one exposure into per-source slices (writes TSV's directory)
  gather-sources OUT TSV...  one source table for a product (the Stage 3 checkpoint)
  spec3-batch MANIFEST       all Stage 3 steps for the sources of one batch
  spec3-cubes prep|cube|extract   a cube product's Stage 3 jobs (webbspec.pipeline.stage3_cubes):
                             prep (_cal -> _crf), cube (_crf -> one _s3d), extract (_s3d -> _x1d)
"""

import argparse
import json
import logging
import os
import sys

log = logging.getLogger("webbspec")


def _setup_logging(path):
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fh = logging.FileHandler(path, mode="w")
        fh.setFormatter(fmt)
        root.addHandler(fh)
    sh = logging.StreamHandler(sys.stderr)
    sh.setLevel(logging.WARNING)
    sh.setFormatter(fmt)
    root.addHandler(sh)
    progress = logging.StreamHandler(sys.stderr)   # a long job's progress (e.g. sources in a batch)
    progress.setFormatter(logging.Formatter("webbspec progress: %(message)s"))
    progress.addFilter(lambda rec: rec.levelno < logging.WARNING)   # warnings: the handler above
    logging.getLogger("webbspec.progress").addHandler(progress)


def _step(a):
    from ..io import datamodels  # noqa: F401  (imported before the step runs: benchmarks time the step alone)
    from ..pipeline.steprun import run_step
    from ..steps import load

    load(a.name)
    run_step(a.name, a.input, a.output, refs=json.loads(a.refs), params=json.loads(a.params),
             extra_inputs=json.loads(a.extra), context=_context(a))


def _context(a):
    """The reference context name the products record (None: none)."""
    from .planning import run_context

    return (a.context if a.context is not None else run_context()) or None


def _product(a):
    from ..pipeline.stage2chain import write_product

    write_product(a.input, a.output)


def _chain(a):
    """An exposure's whole Stage 2 chain in this process (workflow.spec2_jobs: exposure)."""
    from ..io import datamodels  # noqa: F401  (imported before the steps run: benchmarks time them alone)
    from ..pipeline.stage2chain import run_chain
    from ..steps import load

    spec = json.loads(a.spec)
    for s in spec["steps"]:
        load(s["name"])
    ran = run_chain(spec, _context(a), save_steps=spec.get("save_steps", True))
    log.info("ran %d of %d steps: %s", len(ran), len(spec["steps"]), ", ".join(ran) or "none")


def _exp_to_source(a):
    from ..pipeline.exp_to_source import split_exposure

    outdir = os.path.dirname(a.tsv)
    pairs = split_exposure(a.cal, outdir, defer_errors=True, part=(a.part, a.nparts), table=a.tsv,
                           workers=a.workers)
    log.info("%s: %d sources (part %d of %d)", a.cal, len(pairs), a.part + 1, a.nparts)


def _write_tsv(path, rows):
    from ..io.atomicfile import replacing

    with replacing(path) as tmp, open(tmp, "w") as f:
        for row in rows:
            f.write("\t".join(str(x) for x in row) + "\n")


def batch_sources(tables, batch, nbatches):
    """``{source_key: [slice paths, one per exposure holding it]}`` for one batch, sorted by key."""
    from ..pipeline.program import batch_of, read_sources

    out = {}
    for table in tables:
        for key, path in read_sources(table):
            if batch_of(key, nbatches) == batch:
                out.setdefault(key, []).append(path)
    return dict(sorted(out.items()))


def _gather_sources(a):
    """One table (source, slice path relative to the table) for a product."""
    from ..pipeline.program import read_sources

    rows, here = [("source", "path")], os.path.dirname(os.path.abspath(a.output))
    for tsv in a.tables:
        rows += [(k, os.path.relpath(os.path.abspath(p), here)) for k, p in read_sources(tsv)]
    _write_tsv(a.output, rows)
    log.info("%d slices from %d exposures", len(rows) - 1, len(a.tables))


def _spec3_batch(a):
    from ..pipeline import stage3

    sources = batch_sources([t for t in a.sources if t], int(a.batch), a.nbatches)
    products = stage3.run_batch(sources=sources, outdir=a.outdir, product=a.product, mode=a.mode,
                                params=json.loads(a.params), refs=json.loads(a.refs),
                                backgrounds=[b for b in a.backgrounds if b], context=_context(a))
    rows = getattr(products, "rows", None)
    if rows is None:   # a plain {source: [products]} mapping
        rows = [{"source": k, "source_id": "", "status": "written", "message": "",
                 "products": [v] if isinstance(v, str) else list(v)} for k, v in (products or {}).items()]
    stage3.write_manifest(rows, a.manifest)
    failed = [r for r in rows if r["status"] == "error"]
    log.info("batch %s: %d sources, %d failed", a.batch, len(rows), len(failed))
    for r in failed:
        _report(a, r["message"])
    if failed:
        a.failure = f"{len(failed)} of {len(rows)} sources failed; first: {failed[0]['message']}"
    return 2 if failed else 0


def _spec3_cubes(a):
    """One job of the cube Stage 3 path (rules/spec3.smk)."""
    from ..pipeline import stage3_cubes

    spec = json.loads(a.spec) if a.spec else {}
    context = _context(a)
    if a.what == "prep":
        stage3_cubes.prepare(a.inputs, a.outputs, backgrounds=[b for b in a.backgrounds if b], mode=a.mode,
                             params=json.loads(a.params), context=context)
    elif a.what == "cube":
        p = spec["plan"]
        plan = stage3_cubes.CubePlan(p["suffix"], [tuple(b) for b in p["bands"]], p["exposures"], p["selection"])
        stage3_cubes.build_cube(a.inputs, a.outputs[0], plan, params=spec.get("params"), refs=spec.get("refs"),
                                context=context)
    else:
        stage3_cubes.extract(a.inputs[0], a.outputs[0], params=spec.get("params"), refs=spec.get("refs"),
                             context=context)
    log.info("spec3-cubes %s: wrote %s", a.what, ", ".join(a.outputs))


def _report(a, message):
    """One ``webbspec: <file>: <problem>`` line to the job log and stderr; under ``webbspec run``
    (WEBBSPEC_RUN set) to the log only: ``webbspec run`` prints it from there, with the log's path."""
    if a.log:
        with open(a.log, "a") as f:
            f.write(f"webbspec: {message}\n")
    if not (a.log and os.environ.get("WEBBSPEC_RUN")):
        print(f"webbspec: {message}", file=sys.stderr)


def _parser():
    p = argparse.ArgumentParser(prog="python -m webbspec.workflow.rules_entry")
    p.add_argument("--log", default=None)
    sub = p.add_subparsers(dest="job", required=True)
    s = sub.add_parser("step")
    s.add_argument("name")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("--refs", default="{}")
    s.add_argument("--params", default="{}")
    s.add_argument("--extra", default="{}")
    s.add_argument("--context", default=None, help="default: the run's context (webbspec.workflow.planning.run_context)")
    s.set_defaults(func=_step)
    s = sub.add_parser("chain")
    s.add_argument("spec", help="JSON: input, steps [{name, output, refs, params, extra}], products [{input, output}]")
    s.add_argument("--context", default=None, help="default: the run's context (webbspec.workflow.planning.run_context)")
    s.set_defaults(func=_chain)
    s = sub.add_parser("product")
    s.add_argument("input")
    s.add_argument("output")
    s.set_defaults(func=_product)
    s = sub.add_parser("exp-to-source")
    s.add_argument("cal")
    s.add_argument("tsv")
    s.add_argument("--part", type=int, default=0)
    s.add_argument("--nparts", type=int, default=1)
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(func=_exp_to_source)
    s = sub.add_parser("gather-sources")
    s.add_argument("output")
    s.add_argument("tables", nargs="+")
    s.set_defaults(func=_gather_sources)
    s = sub.add_parser("spec3-batch")
    s.add_argument("manifest")
    s.add_argument("--product", required=True)
    s.add_argument("--mode", required=True)
    s.add_argument("--batch", required=True)
    s.add_argument("--nbatches", type=int, required=True)
    s.add_argument("--outdir", required=True)
    s.add_argument("--sources", nargs="*", default=[])
    s.add_argument("--backgrounds", nargs="*", default=[])
    s.add_argument("--refs", default="{}")
    s.add_argument("--params", default="{}")
    s.add_argument("--context", default=None, help="default: the run's context (webbspec.workflow.planning.run_context)")
    s.set_defaults(func=_spec3_batch)
    s = sub.add_parser("spec3-cubes")
    s.add_argument("what", choices=("prep", "cube", "extract"))
    s.add_argument("--inputs", nargs="+", required=True)
    s.add_argument("--outputs", nargs="+", required=True)
    s.add_argument("--backgrounds", nargs="*", default=[])
    s.add_argument("--mode", default=None)
    s.add_argument("--params", default="{}", help="prep: {step: {param: value}}")
    s.add_argument("--spec", default="{}", help="cube / extract: JSON of params, refs (and the cube's plan)")
    s.add_argument("--context", default=None, help="default: the run's context (webbspec.workflow.planning.run_context)")
    s.set_defaults(func=_spec3_cubes)
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    _setup_logging(args.log)
    from ..errors import InputError
    from ..io.fitsconf import freeze_fits_config

    freeze_fits_config()

    from . import jobstatus

    try:
        rc = args.func(args) or 0
    except InputError as exc:
        _report(args, exc)
        jobstatus.record(args.log, exc)
        return 2
    except BaseException as exc:   # a bug, or an interrupt: the traceback goes to the log only
        import traceback

        what = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"unexpected {type(exc).__name__}: {exc}"
        if args.log:
            with open(args.log, "a") as f:
                traceback.print_exc(file=f)
        _report(args, f"{what} (traceback in {args.log})" if args.log else what)
        jobstatus.record(args.log, what)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    jobstatus.record(args.log, (getattr(args, "failure", None) or f"exit status {rc}") if rc else None)
    return rc


if __name__ == "__main__":
    sys.exit(main())
