"""The ``webbspec`` command.

  webbspec simulate MODE OUTDIR [--seed N] [--scale small|full]
  webbspec run DIR [--cores N|all] [any snakemake option ...]      (--cores default: all)
  webbspec step NAME INPUT [-o OUTPUT] [--refs-dir DIR] [--context C] [--override_<reftype> FILE]
                [--<param> VALUE ...]
  webbspec bestrefs FILE [--refs-dir DIR] [--context C]
  webbspec asn-from-list -o OUT --product-name NAME [--exptype science|background ...] FILES...
  webbspec config export [--mode MODE] [--configfile FILE ...]
  webbspec refs diff OLD NEW [--program DIR] [--refs-dir DIR] [--configfile FILE]
  webbspec compare A B [...]
  webbspec report DIR [-o OUTPUT]

Bad input prints ``webbspec: <file>: <problem>`` on one line to stderr and exits 2; Ctrl-C prints
``webbspec: interrupted`` and exits 130.
"""

import argparse
import os
import re
import shutil
import sys

from .errors import InputError

__all__ = ["main"]


# ------------------------------------------------------------------ simulate


def _simulate(a):
    from .simulate import simulate

    out = simulate(a.mode, a.outdir, seed=a.seed, scale=a.scale, nsources=getattr(a, "nsources", None))
    print(out if out else a.outdir)


# ------------------------------------------------------------------ run


def _snakemake_exe():
    exe = os.path.join(os.path.dirname(sys.executable), "snakemake")
    return exe if os.path.exists(exe) else (shutil.which("snakemake") or "snakemake")


_CONFIGFILE = ("--configfile", "--configfiles")


def _configfiles(extra):
    """The files after ``--configfile``/``--configfiles`` (or ``--configfile=F``) in snakemake arguments."""
    files, take = [], False
    for arg in extra:
        opt, eq, value = arg.partition("=")
        if eq and opt in _CONFIGFILE:
            files.append(value)
            take = False
        elif arg in _CONFIGFILE:
            take = True
        elif arg.startswith("-"):
            take = False
        elif take:
            files.append(arg)
    return files


def _snakemake_args(extra):
    """Snakemake's arguments as ``webbspec run`` passes them on: ``--configfile=F`` as
    ``--configfile F``, config files and other existing files as absolute paths (Snakemake runs
    in the program directory)."""
    out, take = [], False
    for arg in extra:
        opt, eq, value = arg.partition("=")
        if eq and opt in _CONFIGFILE:
            out += [opt, os.path.abspath(value) if value else value]
            take = False
        elif arg in _CONFIGFILE:
            out.append(arg)
            take = True
        elif arg.startswith("-"):
            out.append(arg)
            take = False
        else:
            out.append(os.path.abspath(arg) if take or os.path.isfile(arg) else arg)
    return out


def _has_option(extra, names):
    """Whether one of the options ``names`` is among the arguments (``--opt V``, ``--opt=V`` or ``-jN``)."""
    return any(a.split("=")[0] in names or ("-j" in names and re.fullmatch(r"-j\d+", a)) for a in extra)


def _default_cores(extra):
    """``all`` (as ``snakemake --cores all``), or None when --jobs or a profile sets the cores."""
    if _has_option(extra, ("-j", "--jobs", "--profile", "--workflow-profile")):
        return None
    return None if os.environ.get("SNAKEMAKE_PROFILE") else "all"


# Flags that hand the jobs to something other than this machine's cores (a cluster executor, a
# profile that may name one): the scheduler's subsample is then left to them.
_NOT_LOCAL = ("--executor", "-e", "--profile", "--scheduler-subsample", "--jobs", "-j")


def _scheduler_subsample(cores, extra):
    """``--scheduler-subsample K`` for a run on this machine's cores, else ``[]``.

    Every time a job ends, Snakemake's scheduler stats every input of every ready job (to weigh
    them by input size) before it picks the jobs to start. With tens of Stage 2 jobs ready, each
    with its ~20 reference files, that was half of the Snakemake process's CPU in a 4-configuration
    MOS run (py-spy); choosing among K = 2 x cores random ready jobs fills the free cores all the
    same (every job fits an idle machine) and cut that process's CPU from 25.9 to 12.2 s. Cluster
    runs keep the full choice: there each scheduling round submits up to --jobs jobs."""
    if cores is None or os.environ.get("SNAKEMAKE_PROFILE"):
        return []
    if _has_option(extra, _NOT_LOCAL):
        return []
    n = (os.cpu_count() or 1) if str(cores) == "all" else int(cores)
    return ["--scheduler-subsample", str(max(4, 2 * n))]


def run_command(program, cores=None, extra=()):
    """The snakemake command line ``webbspec run`` executes (inside the program directory)."""
    from .pipeline.params import workflow_root

    root = workflow_root()
    program = os.path.abspath(program)
    extra = list(extra)
    cmd = [_snakemake_exe(), "--snakefile", os.path.join(root, "Snakefile")]
    if cores is not None:
        cmd += ["--cores", str(cores)]
    cmd += _scheduler_subsample(cores, extra)
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
    from .pipeline import params

    if not os.path.isdir(a.program):
        raise InputError(a.program, "program directory does not exist")
    extra = _snakemake_args(extra)
    # fail fast with one line: configuration and inputs are checked before Snakemake starts
    params.load(_configfiles(extra))
    # bad inputs are named when the Snakefile plans the run (webbspec.workflow.planning): only
    # their own jobs fail, the rest is built (--keep-going is in the workflow profile)
    cmd = run_command(a.program, a.cores if a.cores is not None else _default_cores(extra), extra)
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(os.path.abspath(a.program))
    if "--verbose" in extra:
        argv = cmd          # Snakemake's own output, unfiltered
    else:
        os.environ[RUN_ENV] = "1"
        # a fresh interpreter runs Snakemake and filters its output: 14 MB RSS (8 MB PSS) for the
        # whole run, where this process holds the imports of the checks above (~50 MB)
        argv = [sys.executable, "-P", "-c",
                "import sys; from webbspec.cli import supervise; sys.exit(supervise(sys.argv[1:]))", *cmd]
    try:
        os.execvp(argv[0], argv)   # replaces this process, as `exec` in a shell
    except OSError as exc:
        raise InputError(argv[0], f"cannot start ({exc.strerror})") from None


# ------------------------------------------------------------------ run: Snakemake's output

# set by `webbspec run` for Snakemake and its jobs: a job writes its one-line error to its log only,
# and `webbspec run` prints it from there with the log's path
RUN_ENV = "WEBBSPEC_RUN"

_TIMESTAMP = re.compile(r"\s*\[\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\]$")
_JOB_ERROR = re.compile(r"(\s*)Error in rule (\w+):$")
_GROUP_ERROR = re.compile(r"\s+(message|log|jobs):")     # an "Error in group" block (after its timestamp)
_EXCEPTION = re.compile(r'([A-Z]\w*(?:Exception|Error))((?: in rule \w+)?(?: in file ".*", line \d+)?)[:.]$')
# the start of Snakemake's next message, which ends an exception's text
_NEXT = re.compile(r"\s*(\[\w{3} |Error in rule |Select jobs |Execute \d+ jobs|\d+ of \d+ steps|Finished jobid|"
                   r"Complete log|Shutting down|Exiting because|Removing output files|Terminating processes)")
_DROP = ("Shutting down, this might take some time.",
         "Exiting because a job execution failed. Look above for error messages")
_DROP_START = ("Using workflow specific profile ",   # ours (profiles/default), every run
               "Config file ")                       # "... is extended by additional config ..."


def _logged_errors(path):
    """The ``webbspec: <file>: <problem>`` lines a job wrote to its log."""
    try:
        with open(path, errors="replace") as f:
            return [ln.rstrip("\n") for ln in f
                    if ln.startswith("webbspec: ") and not ln.startswith("webbspec: warning")]
    except OSError:
        return []


def _job_error(lines):
    """A failed job's ``Error in rule`` block as one line per error its log holds, with the log's path."""
    rule = _JOB_ERROR.match(lines[0]).group(2)
    logs = []
    for ln in lines[1:]:
        if ln.strip().startswith("log: "):
            logs = ln.strip()[5:].split(" (check log file")[0].split(", ")
            break
    errors = [e for p in logs for e in _logged_errors(p)] or [f"webbspec: {rule} job failed"]
    where = f" (log: {', '.join(os.path.abspath(p) for p in logs)})" if logs else ""
    return [e + where for e in errors]


def _exception(lines):
    """Snakemake's report of an exception as one ``webbspec:`` line; None for a failed job's
    (its own line says it)."""
    name, where = _EXCEPTION.match(lines[0]).groups()
    body = [ln.strip() for ln in lines[1:]]
    if name == "RuleException" or body[:1] == ["At least one job did not complete successfully."]:
        return None
    for s in body:
        if s.startswith("InputError: "):     # ours, raised in the Snakefile (an input function)
            return "webbspec: " + s[len("InputError: "):]
    text = []
    for s in body:
        if s.startswith('File "') or s in ("Wildcards:", "Traceback:"):
            break
        if s and s != "Error:":
            text.append(s)
    text = " ".join(text)
    if name == "InputError":
        return f"webbspec: {text}"
    text = text[len("Error: "):] if text.startswith("Error: ") else text
    return f"webbspec: snakemake: {name}{where}" + (f": {text}" if text else "")


class _Output:
    """One of Snakemake's output streams, line by line, with its errors on one line each: a failed
    job's ``Error in rule`` block (and the RuleException before it) becomes the job's
    ``webbspec: <file>: <problem>`` line from its log plus the log's path; an exception that
    stops Snakemake, or its usage error, one ``webbspec:`` line. Everything else passes unchanged.
    ``write`` takes a line of the stream, ``report`` a ``webbspec:`` line."""

    def __init__(self, write, report):
        self.write, self.report = write, report
        self.block = None       # [kind, indent, lines] of the error block being read
        self.held = None        # a timestamp line: dropped when an error block follows it
        self.logfile = 0        # in a job block: 1 after "Logfile X:", 2 inside its ==== rules

    def feed(self, line):
        if self.block is not None:
            if self._more(line):
                self.block[2].append(line)
                return
            self._end()
        held, self.held = self.held, None
        m = _JOB_ERROR.match(line)
        if m or (held is not None and _GROUP_ERROR.match(line)):
            self.block = ["job" if m else "group", len(m.group(1)) if m else 0, [line]]
            return
        if held is not None:
            self.write(held)
        if _TIMESTAMP.match(line):
            self.held = line
        elif _EXCEPTION.match(line):
            self.block = ["exception", 0, [line]]
        elif line.startswith("usage: snakemake"):
            self.block = ["usage", 0, [line]]
        elif line.startswith("snakemake: error: "):
            self.report("webbspec: " + line)
        elif line not in _DROP and not line.startswith(_DROP_START):
            self.write(line)

    def close(self):
        if self.block is not None:
            self._end()
        if self.held is not None:
            self.write(self.held)
            self.held = None

    def _more(self, line):
        kind, indent, lines = self.block
        s = line.strip()
        if kind == "job":
            if self.logfile:         # the job's log, shown by --show-failed-logs
                if s and set(s) == {"="}:
                    self.logfile = 2 if self.logfile == 1 else 0
                return True
            if s.startswith("Logfile "):
                self.logfile = 1 if s.endswith(":") else 0
                return True
            return bool(s) and len(line) - len(line.lstrip()) > indent
        if kind == "group":
            return line.startswith(" ") and not (_TIMESTAMP.match(line) or _JOB_ERROR.match(line))
        if kind == "usage":
            return line.startswith(" ")
        if lines[0] == "RuleException:" and lines[-1].startswith("Command '"):
            return False             # "CalledProcessError in ...:" and "Command '...' returned ..."
        return not _NEXT.match(line)

    def _end(self):
        kind, _, lines = self.block
        self.block, self.logfile = None, 0
        if kind == "job":
            for out in _job_error(lines):
                self.report(out)
        elif kind == "exception":
            out = _exception(lines)
            if out:
                self.report(out)


def supervise(cmd):
    """Run Snakemake (``cmd``) in a session of its own and show its output through :class:`_Output`.

    SIGINT (Ctrl-C), SIGTERM and SIGHUP are passed on to its process group, which holds Snakemake
    and its local jobs: Snakemake stops its jobs and exits; what it prints meanwhile is dropped and one
    ``webbspec: interrupted`` line ends the run (exit status 128 + the signal: 130 for Ctrl-C).
    Otherwise the exit status is Snakemake's (the Snakefile's onerror prints the run's summary).
    """
    import signal
    import subprocess
    import threading

    got, procs, lock = [], [], threading.Lock()

    def forward(signum, _frame):
        got.append(signum)
        for p in procs:
            try:
                os.killpg(p.pid, signum)
            except ProcessLookupError:
                pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        # its own session: a signal reaches Snakemake once, from here (not also from the terminal)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as exc:
        print(f"webbspec: {cmd[0]}: cannot start snakemake ({exc.strerror})", file=sys.stderr)
        return 2
    procs.append(proc)
    if got:                          # a signal before Snakemake started
        os.killpg(proc.pid, got[0])

    def emit(stream, line):
        if got:
            return
        with lock:
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass                 # our reader is gone (`| head`): keep draining Snakemake's pipes

    def pump(pipe, out):
        for raw in pipe:
            out.feed(raw.decode(errors="replace").rstrip("\r\n"))
        out.close()

    outputs = [_Output(lambda ln, s=s: emit(s, ln), lambda ln: emit(sys.stderr, ln))
               for s in (sys.stdout, sys.stderr)]
    threads = [threading.Thread(target=pump, args=(pipe, out), daemon=True)
               for pipe, out in zip((proc.stdout, proc.stderr), outputs)]
    for t in threads:
        t.start()
    rc = proc.wait()
    for t in threads:
        t.join()
    if got:
        print("webbspec: interrupted", file=sys.stderr)
        return 128 + got[0]
    return rc


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
    from .pipeline import params as wsparams
    from .pipeline.steprun import output_name, run_step, science_input
    from .io.datamodels import read_header
    from .modes import mode_for

    module = steps.load(a.name)
    pairs = _step_args(rest)
    overrides = {k[len("override_"):]: v for k, v in pairs.items() if k.startswith("override_")}
    params = {k: wsparams.step_value(a.name, k, v) for k, v in pairs.items() if not k.startswith("override_")}
    wsparams.validate_step(a.name, params)   # types and ranges of config/config.schema.yaml
    reftypes = tuple(getattr(module, "REFTYPES", ()))
    refs = {rt: "N/A" for rt in reftypes}
    store = a.refs_dir or _default_store(a.input)
    if reftypes and store:
        from .io.refs import bestrefs

        source = science_input(a.input)   # an association: its first science member
        hdr = read_header(source)
        mode_for(hdr, source)
        refs.update(bestrefs(hdr, reftypes, store, a.context))
    refs.update(overrides)
    extra = {}
    for item in a.extra or []:
        key, _, path = item.partition("=")
        extra.setdefault(key, []).append(path)
    output = a.output or output_name(a.name, a.input)
    for key in sorted(set(params) & set(steps.unused_parameters(a.name))):
        print(f"webbspec: warning: {a.name} accepts but does not use the official parameter {key}", file=sys.stderr)
    written = run_step(a.name, a.input, output, refs, params, extra, context=a.context or _context_of(store))
    print("\n".join(written) if isinstance(written, list) else written)


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


# ------------------------------------------------------------------ report


def _report(a):
    from .report import write_report

    if not os.path.isdir(a.program):
        raise InputError(a.program, "program directory does not exist")
    print(write_report(a.program, a.output))


# ------------------------------------------------------------------ main


DESCRIPTION = """\
webbspec runs the JWST spectroscopic calibration pipelines, Stage 2 (calwebb_spec2) and Stage 3
(calwebb_spec3), on a program directory of _rate exposures (or the _cal products MAST delivers) and
their associations, as a Snakemake workflow: products get the official names and suffixes under
DIR/webbspec/, job logs under DIR/webbspec/logs/. Its other commands simulate a program, run one
step on one file, list the reference files a file selects, write associations, export the
parameters, list what a new reference context re-makes and compare two products. Bad input
prints one line, "webbspec: <file>: <problem>", and exits with status 2."""


def _version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("webbspec")
    except PackageNotFoundError:     # a source tree on sys.path, not installed
        from . import __version__

        return __version__


class _Version(argparse.Action):
    """``--version``: the installed package's version (read only when asked)."""

    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, nargs=0, help="print the version of webbspec and exit", **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"webbspec {_version()}")
        parser.exit()


def _sub(sub, name, help, example, **kw):
    """A subcommand with its one-line help and, under its options, an example."""
    return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                          epilog=example, formatter_class=argparse.RawDescriptionHelpFormatter, **kw)


def _parser():
    p = argparse.ArgumentParser(prog="webbspec", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""\
Example:
  webbspec simulate nrs_fs demo      # a small simulated NIRSpec fixed-slit program
  webbspec run demo --cores 2        # Stage 2 + Stage 3; products in demo/webbspec/
  webbspec COMMAND --help            # a command's arguments, with an example""")
    p.add_argument("--version", action=_Version)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of:")

    s = _sub(sub, "simulate", "write a simulated program directory (_rate exposures, associations, "
             "reference store, truth)", """\
Example:
  webbspec simulate nrs_fs demo --seed 3     # then: webbspec run demo
  webbspec simulate nrs_ifu ifu --scale full # NIRSpec IFU: 4 dithers x NRS1+NRS2, background, imprint
  webbspec simulate mir_mrs mrs              # MIRI MRS: 4 dithers x 2 detectors, SHORT (full: x 3 sub-bands)""")
    s.add_argument("mode", help="observing mode: nrs_fs (NIRSpec fixed slit), nrs_mos (NIRSpec MOS), nrs_ifu "
                   "(NIRSpec IFU), mir_mrs (MIRI MRS)")
    s.add_argument("outdir", help="program directory to write (created)")
    s.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same bytes "
                   "(default: 0)")
    s.add_argument("--scale", choices=("small", "full"), default="small",
                   help="small: a subarray (nrs_ifu: NRS1 alone); full: full-frame exposures (nrs_ifu: NRS1 + "
                   "NRS2; mir_mrs: SHORT alone / SHORT, MEDIUM, LONG) (default: small)")
    s.add_argument("--nsources", type=int, default=None, metavar="K",
                   help="nrs_mos: number of sources (default: 12 small, one MSA configuration full)")
    s.set_defaults(func=_simulate)

    s = _sub(sub, "run", "run Stage 2 and Stage 3 on a program directory with Snakemake", """\
Any other option goes to Snakemake: -n (dry run), --keep-going, --configfile FILE (parameter
overrides, see config/README.md), --profile DIR, --unlock (after a killed run), targets...
A failed job is one line, its error and the path of its log (DIR/webbspec/logs/<rule>/); with
--verbose Snakemake's own output is shown unchanged. Ctrl-C stops Snakemake and its jobs.

Example:
  webbspec run demo --cores 2
  webbspec run demo -n --configfile=overrides.yaml     # what would run with these parameters""",
             allow_abbrev=False, usage="webbspec run [-h] [--cores N] program [snakemake option ...]")
    s.add_argument("program", help="program directory: _rate (or _cal) files, _asn.json associations, refs/")
    s.add_argument("--cores", "-c", default=None, metavar="N",
                   help="cores to use, a number or 'all' (default: all, every core of this machine, "
                   "as snakemake --cores all; none is set when --jobs or a --profile is given)")
    s.set_defaults(func=_run, passthrough=True)

    s = _sub(sub, "step", "run one step on one file (like strun); --<param> VALUE pairs follow", """\
Parameters are the official ones (webbspec config export lists them), checked for type and range
before the step runs; the input must have been through the steps this one needs (e.g. extract_2d
before resample_spec). --override_<reftype> FILE replaces a selected reference file.

Example:
  webbspec step extract_2d jw01234001001_03101_00001_nrs1_assign_wcs.fits
  webbspec step resample_spec jw01234001001_03101_00001_nrs1_extract_2d.fits --pixfrac 0.8""",
             allow_abbrev=False)
    s.add_argument("name", help="official step alias, e.g. flat_field, resample_spec, extract_1d")
    s.add_argument("input", help="input file (or an association: its first science member)")
    s.add_argument("-o", "--output", default=None,
                   help="file to write (default: as strun, <input without its suffix>_<name>.fits here)")
    s.add_argument("--refs-dir", default=None, metavar="DIR",
                   help="reference store, a CRDS cache (default: refs/ beside INPUT, else $CRDS_PATH)")
    s.add_argument("--context", default=None, help="context (pmap) name, e.g. webbspec_0002 "
                   "(default: the newest in the store)")
    s.add_argument("--extra", action="append", help="KEY=FILE extra input (e.g. backgrounds=x_rate.fits)")
    s.set_defaults(func=_step, passthrough=True)

    s = _sub(sub, "bestrefs", "the reference files each step would use for FILE", """\
Example:
  webbspec bestrefs demo/jw01234001001_03101_00001_nrs1_rate.fits""")
    s.add_argument("file", help="a _rate, _rateints or _cal file (its PRIMARY header selects)")
    s.add_argument("--refs-dir", default=None, metavar="DIR",
                   help="reference store, a CRDS cache (default: refs/ beside FILE, else $CRDS_PATH)")
    s.add_argument("--context", default=None, help="context (pmap) name, e.g. webbspec_0002 "
                   "(default: the newest in the store)")
    s.set_defaults(func=_bestrefs)

    s = _sub(sub, "asn-from-list", "write an association from a list of files", """\
Example:
  webbspec asn-from-list -o my_spec3_asn.json --product-name jw01234-o001_t001_nirspec_f290lp-g395m \\
      jw01234001001_03101_0000[123]_nrs1_cal.fits""")
    s.add_argument("files", nargs="+", help="member files, in order")
    s.add_argument("-o", "--output", required=True, help="association file to write (_asn.json)")
    s.add_argument("--product-name", required=True, help="the product's name (the stem of its products)")
    s.add_argument("--exptype", action="append", help="one per file, in order (default: science)")
    s.add_argument("--rule", default=None, help="association rule name (default: Asn_Lv2Spec for spec2, "
                   "Asn_Lv3SpectralTarget for spec3)")
    s.add_argument("--asn-type", default="spec3", choices=("spec2", "spec3"),
                   help="association type (default: spec3)")
    s.set_defaults(func=_asn_from_list)

    s = _sub(sub, "config", "configuration tools", """\
Example:
  webbspec config export --mode nrs_fs > params.yaml""")
    cs = s.add_subparsers(dest="config_command", required=True, metavar="TOOL", help="one of:")
    e = _sub(cs, "export", "print the full parameter set as YAML (feed back with --configfile)", """\
Example:
  webbspec config export --mode nrs_fs --configfile overrides.yaml > params.yaml""")
    e.add_argument("--mode", default=None, help="only this mode's steps, with its overrides (e.g. nrs_fs)")
    e.add_argument("--configfile", action="append", metavar="FILE",
                   help="overrides merged over the defaults first (repeatable)")
    e.set_defaults(func=_config_export)

    s = _sub(sub, "refs", "reference store tools", """\
Example:
  webbspec refs diff webbspec_0001 webbspec_0002 --program demo""")
    rs = s.add_subparsers(dest="refs_command", required=True, metavar="TOOL", help="one of:")
    d = _sub(rs, "diff", "what changes between two contexts, and what will be re-made", """\
Example:
  webbspec refs diff webbspec_0001 webbspec_0002 --program demo""")
    d.add_argument("old", help="the context in use (pmap name or path)")
    d.add_argument("new", help="the new context (pmap name or path)")
    d.add_argument("--program", default=None, metavar="DIR",
                   help="program directory: list the selections, products and jobs that change there")
    d.add_argument("--refs-dir", default=None, metavar="DIR",
                   help="reference store (default: the program's refs/, else $CRDS_PATH)")
    d.add_argument("--configfile", action="append", metavar="FILE",
                   help="workflow configuration (batches, stage3, ...)")
    d.set_defaults(func=_refs_diff)

    # its arguments and help are compare's own (webbspec.pipeline.compare.parser)
    s = sub.add_parser("compare", help="compare two products of one kind (A/B ratios, outlier flags)",
                       add_help=False, allow_abbrev=False)
    s.set_defaults(func=_compare, passthrough=True)

    s = _sub(sub, "report", "write a program's report page: per source its spectra, 2-D spectrum and "
             "outlier mask, and the products with the references that made them", """\
One self-contained HTML file (figures inline). The Snakemake rule webbspec_report makes the same
page, and Snakemake's own report can hold it: webbspec run DIR webbspec_report --report report.zip
--report-after-run

Example:
  webbspec report demo          # writes demo/webbspec/report.html""")
    s.add_argument("program", help="program directory (its webbspec/ products and, if simulated, truth/)")
    s.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="page to write (default: DIR/webbspec/report.html)")
    s.set_defaults(func=_report)
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
    except KeyboardInterrupt:
        print("webbspec: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
