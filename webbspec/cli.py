"""The ``webbspec`` command.

  webbspec simulate MODE OUTDIR [--seed N] [--scale small|full]
  webbspec run DIR [--cores N] [any snakemake option ...]
  webbspec step NAME INPUT [-o OUTPUT] [--refs-dir DIR] [--context C] [--override_<reftype> FILE]
                [--<param> VALUE ...]
  webbspec bestrefs FILE [--refs-dir DIR] [--context C]
  webbspec asn-from-list -o OUT --product-name NAME [--exptype science|background ...] FILES...
  webbspec config export [--mode MODE] [--configfile FILE ...]
  webbspec refs diff OLD NEW [--program DIR] [--refs-dir DIR] [--configfile FILE]
  webbspec compare A B [...]

Bad input prints ``webbspec: <file>: <problem>`` on one line to stderr and exits 2.
"""

import argparse
import os
import shutil
import sys

from .errors import InputError

__all__ = ["main"]


def _yaml_value(text):
    """A command-line value as YAML (``5`` -> 5, ``null`` -> None, ``[1, 2]`` -> list)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


# ------------------------------------------------------------------ simulate


def _simulate(a):
    from .simulate import simulate

    out = simulate(a.mode, a.outdir, seed=a.seed, scale=a.scale)
    print(out if out else a.outdir)


# ------------------------------------------------------------------ run


def _snakemake_exe():
    exe = os.path.join(os.path.dirname(sys.executable), "snakemake")
    return exe if os.path.exists(exe) else (shutil.which("snakemake") or "snakemake")


def _configfiles(extra):
    """The files after ``--configfile``/``--configfiles`` in snakemake arguments."""
    files, take = [], False
    for arg in extra:
        if arg in ("--configfile", "--configfiles"):
            take = True
        elif arg.startswith("-"):
            take = False
        elif take:
            files.append(arg)
    return files


def run_command(program, cores=None, extra=()):
    """The snakemake command line ``webbspec run`` executes (inside the program directory)."""
    from .pipeline.params import workflow_root

    root = workflow_root()
    program = os.path.abspath(program)
    extra = list(extra)
    cmd = [_snakemake_exe(), "--snakefile", os.path.join(root, "Snakefile")]
    if cores is not None:
        cmd += ["--cores", str(cores)]
    # after a kill -9 of Snakemake its running jobs' outputs are marked incomplete: re-make them
    # (every writer is atomic, so such a file is whole, but whether its job finished is unknown)
    if "--rerun-incomplete" not in extra and "--ri" not in extra:
        cmd.append("--rerun-incomplete")
    if "--config" in extra:       # one --config list: snakemake keeps only the last one
        extra.insert(extra.index("--config") + 1, f"program={program}")
    else:
        extra += ["--config", f"program={program}"]
    return cmd + extra


def _run(a, extra):
    from .pipeline import params, program

    if not os.path.isdir(a.program):
        raise InputError(a.program, "program directory does not exist")
    # fail fast with one line: configuration and inputs are checked before Snakemake starts
    params.load([os.path.abspath(f) for f in _configfiles(extra)])
    # bad inputs: without --keep-going the first one stops the run here (one line); with it they
    # are reported here and again by the job that fails on each, and everything else is built
    keep_going = any(x in ("--keep-going", "-k") for x in extra)
    for err in program.discover(a.program, strict=not keep_going).errors:
        print(f"webbspec: {err}", file=sys.stderr)
    cmd = run_command(a.program, a.cores, [os.path.abspath(x) if os.path.isfile(x) else x for x in extra])
    # Snakemake replaces this process (as `exec` in a shell): no idle Python process holding its
    # imports (~90 MB) for the whole run; the exit status is Snakemake's
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(os.path.abspath(a.program))
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        raise InputError(cmd[0], f"cannot start snakemake ({exc.strerror})") from None


# ------------------------------------------------------------------ step


def _step_args(rest):
    """``--name value`` pairs after the known options: parameters and reference overrides."""
    out, i = {}, 0
    while i < len(rest):
        key = rest[i]
        if not key.startswith("--"):
            raise InputError(key, "expected --<parameter> VALUE")
        key = key[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(rest):
                raise InputError("--" + key, "missing value")
            value = rest[i + 1]
            i += 2
        out[key.replace("-", "_")] = value
    return out


def _step(a, rest):
    from . import steps
    from .pipeline.steprun import run_step
    from .io.datamodels import read_header
    from .modes import mode_for

    module = steps.load(a.name)
    pairs = _step_args(rest)
    overrides = {k[len("override_"):]: v for k, v in pairs.items() if k.startswith("override_")}
    params = {k: _yaml_value(v) for k, v in pairs.items() if not k.startswith("override_")}
    reftypes = tuple(getattr(module, "REFTYPES", ()))
    refs = {rt: "N/A" for rt in reftypes}
    store = a.refs_dir or _default_store(a.input)
    if reftypes and store:
        from .io.refs import bestrefs

        hdr = read_header(a.input)
        mode_for(hdr, a.input)
        refs.update(bestrefs(hdr, reftypes, store, a.context))
    refs.update(overrides)
    extra = {}
    for item in a.extra or []:
        key, _, path = item.partition("=")
        extra.setdefault(key, []).append(path)
    output = a.output or f"{_root_of(a.input)}_{a.name}.fits"
    for key in sorted(set(params) & set(steps.unused_parameters(a.name))):
        print(f"webbspec: warning: {a.name} accepts but does not use the official parameter {key}", file=sys.stderr)
    run_step(a.name, a.input, output, refs, params, extra, context=a.context or _context_of(store))
    print(output)


def _root_of(path):
    base = os.path.basename(path)
    stem = base[:-5] if base.endswith(".fits") else base
    parts = stem.rsplit("_", 1)
    return parts[0] if len(parts) == 2 else stem


def _default_store(path):
    """``refs/`` beside the file, else $CRDS_PATH (a CRDS cache), else None."""
    from .io.crdsmap import default_store

    return default_store(os.path.dirname(os.path.abspath(path)))


def _context_of(store):
    from .io.crdsmap import newest_context

    return newest_context(store) if store else None


# ------------------------------------------------------------------ bestrefs


def _bestrefs(a):
    from . import steps
    from .io.datamodels import read_header
    from .modes import mode_for

    hdr = read_header(a.file)
    mode = mode_for(hdr, a.file)
    store = a.refs_dir or _default_store(a.file)
    if not store:
        raise InputError(a.file, "no reference store: give --refs-dir (or set CRDS_PATH)")
    from .io.refs import bestrefs

    for stage, chain in (("spec2", mode.spec2), ("spec3", mode.spec3)):
        for step in chain:
            try:
                types = steps.reftypes(step)
            except InputError:
                print(f"{stage}.{step}: (not implemented)")
                continue
            if not types:
                continue
            for rt, path in bestrefs(hdr, types, store, a.context, strict=True).items():
                print(f"{stage}.{step}.{rt}: {path if path == 'N/A' else os.path.basename(path)}")


# ------------------------------------------------------------------ asn-from-list


def _asn_from_list(a):
    from .io import associations

    exptypes = a.exptype
    if exptypes and len(exptypes) == 1 and len(a.files) > 1:
        exptypes = exptypes * len(a.files)
    asn = associations.asn_from_list(a.files, a.product_name, exptypes=exptypes, rule=a.rule,
                                     asn_type=a.asn_type)
    associations.write(asn, a.output)
    print(a.output)


# ------------------------------------------------------------------ config


def _config_export(a):
    import yaml

    from .pipeline import params

    cfg = params.load(a.configfile or [])
    try:
        out = params.export(cfg, a.mode)
    except KeyError as exc:
        raise InputError(a.mode, exc.args[0]) from None
    sys.stdout.write(yaml.safe_dump(out, sort_keys=False, default_flow_style=False))


# ------------------------------------------------------------------ refs diff


def _refs_diff(a):
    from .io import crdsmap
    from .io.crdsmap import default_store
    from .io.refs import context_path
    from .pipeline import params
    from .pipeline.replan import format_plan, remake_plan

    store = a.refs_dir or default_store(a.program or ".") or os.path.join(a.program or ".", "refs")
    old, new = (context_path(store, c) for c in (a.old, a.new))
    if not a.program:
        # without a program: the (instrument, reftype) whose rmap differs between the pmaps
        for ins, rt, r_old, r_new in crdsmap.diff_rmaps(old, new):
            print(f"{ins.lower()}.{rt}: {r_old or 'N/A'} -> {r_new or 'N/A'}")
        return
    if not os.path.isdir(a.program):
        raise InputError(a.program, "program directory does not exist")
    cfg = params.load([os.path.abspath(f) for f in a.configfile or []])
    print(format_plan(remake_plan(a.program, store, old, new, cfg)))


# ------------------------------------------------------------------ compare


def _compare(a, rest):
    from .pipeline import compare

    return compare.main(list(rest))


# ------------------------------------------------------------------ main


def _parser():
    p = argparse.ArgumentParser(prog="webbspec", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write a simulated program directory")
    s.add_argument("mode")
    s.add_argument("outdir")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--scale", choices=("small", "full"), default="small")
    s.set_defaults(func=_simulate)

    s = sub.add_parser("run", help="run the workflow on a program directory (snakemake options pass through)",
                       allow_abbrev=False)
    s.add_argument("program")
    s.add_argument("--cores", "-c", default=None)
    s.set_defaults(func=_run, passthrough=True)

    s = sub.add_parser("step", help="run one step on one file (like strun); --<param> VALUE pairs follow",
                       allow_abbrev=False)
    s.add_argument("name")
    s.add_argument("input")
    s.add_argument("-o", "--output", default=None)
    s.add_argument("--refs-dir", default=None)
    s.add_argument("--context", default=None)
    s.add_argument("--extra", action="append", help="KEY=FILE extra input (e.g. backgrounds=x_rate.fits)")
    s.set_defaults(func=_step, passthrough=True)

    s = sub.add_parser("bestrefs", help="the reference files each step would use for FILE")
    s.add_argument("file")
    s.add_argument("--refs-dir", default=None)
    s.add_argument("--context", default=None)
    s.set_defaults(func=_bestrefs)

    s = sub.add_parser("asn-from-list", help="write an association from a list of files")
    s.add_argument("files", nargs="+")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--product-name", required=True)
    s.add_argument("--exptype", action="append", help="one per file, in order (default: science)")
    s.add_argument("--rule", default=None)
    s.add_argument("--asn-type", default="spec3", choices=("spec2", "spec3"))
    s.set_defaults(func=_asn_from_list)

    s = sub.add_parser("config", help="configuration tools")
    cs = s.add_subparsers(dest="config_command", required=True)
    e = cs.add_parser("export", help="print the full parameter set as YAML (feed back with --configfile)")
    e.add_argument("--mode", default=None)
    e.add_argument("--configfile", action="append")
    e.set_defaults(func=_config_export)

    s = sub.add_parser("refs", help="reference store tools")
    rs = s.add_subparsers(dest="refs_command", required=True)
    d = rs.add_parser("diff", help="what changes between two contexts, and what will be re-made")
    d.add_argument("old")
    d.add_argument("new")
    d.add_argument("--program", default=None)
    d.add_argument("--refs-dir", default=None)
    d.add_argument("--configfile", action="append", help="workflow configuration (batches, stage3, ...)")
    d.set_defaults(func=_refs_diff)

    s = sub.add_parser("compare", help="compare two products (webbspec.pipeline.compare)", add_help=False,
                       allow_abbrev=False)
    s.set_defaults(func=_compare, passthrough=True)
    return p


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    try:
        if getattr(args, "passthrough", False):
            rc = args.func(args, rest)
        else:
            if rest:
                parser.error(f"unrecognized arguments: {' '.join(rest)}")
            rc = args.func(args)
    except InputError as exc:
        print(f"webbspec: {exc}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
