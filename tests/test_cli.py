"""The webbspec command: bad input is one line on stderr and exit status 2; run/config wiring."""

import os
import subprocess
import sys

import pytest
import yaml

from webbspec import cli
from webbspec.pipeline import params

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workflow"))
import fakeprog  # noqa: E402


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "webbspec", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def _one_line_error(r, *words):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("webbspec: "), r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0]


def _bad_input_named(r, *words):
    """A bad input file is named on one line when the run is planned (its own jobs fail later)."""
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("webbspec: error: ")]
    assert len(lines) == 1 and all(w in lines[0] for w in words) and "Traceback" not in r.stderr, r.stderr


def test_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec3: {extract_1d: {foo: 1}}\n")
    _one_line_error(_cli("config", "export", "--configfile", bad), "bad.yaml", "'foo'", "spec3.extract_1d")
    _one_line_error(_cli("run", tmp_path / "nope"), "nope", "does not exist")
    _one_line_error(_cli("bestrefs", tmp_path / "missing_rate.fits"), "missing_rate.fits")
    _one_line_error(_cli("step", "no_such_step", tmp_path / "x.fits"), "no_such_step", "unknown step")
    trunc = tmp_path / "jw1_rate.fits"
    trunc.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    _bad_input_named(_cli("run", tmp_path, "-n"), "jw1_rate.fits", "not a readable FITS file")
    asn = tmp_path / "a_asn.json"
    asn.unlink(missing_ok=True)
    trunc.unlink()
    asn.write_text("{broken")
    _bad_input_named(_cli("run", tmp_path, "-n"), "a_asn.json", "malformed")
    r = _cli("run", tmp_path, "--cores", "1")          # only its own job fails, and the run with it
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert any("a_asn.json" in ln and "malformed" in ln and "log:" in ln for ln in r.stderr.splitlines()), r.stderr
    _one_line_error(_cli("asn-from-list", "-o", tmp_path / "o.json", "--product-name", "p",
                         "--exptype", "nonsense", "a_cal.fits"), "nonsense")


def test_run_command_line(tmp_path):
    cmd = cli.run_command(tmp_path, 4, ["-n", "--config", "context=webbspec_0001"])
    assert cmd[1:3] == ["--snakefile", os.path.join(params.workflow_root(), "Snakefile")]
    assert cmd[3:5] == ["--cores", "4"]
    i = cmd.index("--config")
    assert cmd[i + 1] == f"program={tmp_path}" and cmd[i + 2] == "context=webbspec_0001"
    assert cmd.count("--config") == 1


def test_local_runs_subsample_the_ready_jobs(tmp_path):
    """A run on this machine's cores gives the scheduler 2 x cores ready jobs to choose from (at
    least 4); a cluster profile or executor, or the user's own choice, is left alone."""
    def subsample(cmd):
        return cmd[cmd.index("--scheduler-subsample") + 1] if "--scheduler-subsample" in cmd else None

    assert subsample(cli.run_command(tmp_path, 2)) == "4"
    assert subsample(cli.run_command(tmp_path, 8)) == "16"
    assert subsample(cli.run_command(tmp_path, "all")) == str(max(4, 2 * (os.cpu_count() or 1)))
    assert subsample(cli.run_command(tmp_path, None, ["--profile", "p"])) is None
    assert subsample(cli.run_command(tmp_path, 2, ["--executor", "slurm"])) is None
    assert cli.run_command(tmp_path, 2, ["--scheduler-subsample", "9"]).count("--scheduler-subsample") == 1


def test_run_dry_run_from_any_cwd(tmp_path):
    prog = tmp_path / "prog"
    fakeprog.make_program(prog, nexp=2, suffix="cal")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = _cli("run", prog, "--cores", "1", "-n", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert "spec3_batch" in r.stdout
    assert not os.path.exists(elsewhere / ".snakemake")


def test_config_export_round_trip(tmp_path):
    r = _cli("config", "export", "--mode", "nrs_fs")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "params.yaml"
    out.write_text(r.stdout)
    exported = yaml.safe_load(r.stdout)
    assert exported["spec3"]["resample_spec"]["pixfrac"] == 1.0
    cfg = params.load([str(out)])
    assert cfg["spec2"]["extract_1d"] == exported["spec2"]["extract_1d"]
    r2 = _cli("config", "export", "--configfile", out)
    assert r2.returncode == 0 and yaml.safe_load(r2.stdout)["workflow"]["batches"] == 8


def test_step_param_parsing():
    assert cli._step_args(["--pixfrac", "0.5", "--kernel=point", "--override-flat", "f.fits"]) == {
        "pixfrac": "0.5", "kernel": "point", "override_flat": "f.fits"}
    # the values, as `webbspec step` parses them (params.step_value; cli._yaml_value did it before)
    assert params.step_value("resample_spec", "output_shape", "null") is None
    assert params.step_value("resample_spec", "output_shape", "[1, 2]") == [1, 2]
    assert params.step_value("outlier_detection", "snr", "5.0 4.0") == "5.0 4.0"


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["step", "--help"]])
def test_help(argv):
    r = _cli(*argv)
    assert r.returncode == 0 and "usage" in r.stdout


def test_step_command_with_stand_in_step(tmp_path):
    """`webbspec step` reads, picks references from the store, passes parameters, writes."""
    from astropy.io import fits

    rate = fakeprog.write_fits(tmp_path / f"{fakeprog.exposure_name(1)}_rate.fits")
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "flat.fits").write_text("x")
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), "workflow", "fakes"))
    r = subprocess.run([sys.executable, "-m", "webbspec", "step", "flat_field", str(rate), "--inverse", "true"],
                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    out = tmp_path / f"{fakeprog.exposure_name(1)}_flat_field.fits"
    hdr = fits.getheader(out)
    assert hdr["S_FLAT_F"] == "COMPLETE" and hdr["R_FLAT"] == "flat.fits" and hdr["WSVERS"]


def test_bsub_only_on_request(tmp_path):
    """`workflow.save_bsub: true` adds each exposure's `_bsub` product to the plan, and only then."""
    from webbspec.simulate import simulate

    prog = tmp_path / "prog"
    simulate("nrs_fs", str(prog))
    default = _cli("run", prog, "--cores", "1", "-n")
    assert default.returncode == 0, default.stderr
    assert "_bsub.fits" not in default.stdout
    (tmp_path / "bsub.yaml").write_text("workflow: {save_bsub: true}\n")
    asked = _cli("run", prog, "--cores", "1", "-n", "--configfile", tmp_path / "bsub.yaml")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.count("_bsub.fits") >= 3


# ------------------------------------------------------------------ issue 20: help, version, run's arguments


def _subparsers(parser, path=()):
    """(command path, parser) of every (sub)command under ``parser``, ``compare``'s own parser included."""
    import argparse

    from webbspec.pipeline import compare

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name == "compare":
                    sub = compare.parser()
                yield path + (name,), sub
                yield from _subparsers(sub, path + (name,))


def test_every_argument_has_help_and_every_command_an_example():
    import argparse

    top = cli._parser()
    assert "Stage 2" in top.description and "Stage 3" in top.description and len(top.description) > 200
    missing, no_example = [], []
    for path, sub in [((), top), *_subparsers(top)]:
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{' '.join(path)} {c.dest}" for c in action._choices_actions if not c.help]
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{' '.join(path)} {action.dest}")
        if path and "Example" not in sub.format_help():
            no_example.append(" ".join(path))
    assert not missing, f"arguments without help: {missing}"
    assert not no_example, f"commands without an example: {no_example}"


def test_version():
    from importlib.metadata import version

    r = _cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"webbspec {version('webbspec')}"


def test_run_cores_default_is_all(tmp_path):
    assert "default: all" in " ".join(_cli("run", "--help").stdout.split())
    assert cli._default_cores([]) == "all" and cli._default_cores(["-n"]) == "all"
    for extra in (["--profile", "p"], ["-j", "4"], ["--jobs=4"], ["-j4"], ["--workflow-profile", "p"]):
        assert cli._default_cores(extra) is None, extra      # cores set another way


@pytest.mark.parametrize("form", ["space", "equals"])
def test_run_configfile_both_forms(tmp_path, form):
    """``--configfile=F`` is checked and made absolute as ``--configfile F`` is (Snakemake runs in DIR)."""
    def args(name):
        return ["--configfile", name] if form == "space" else [f"--configfile={name}"]

    (tmp_path / "bad.yaml").write_text("spec3: {extract_1d: {foo: 1}}\n")
    (tmp_path / "s2.yaml").write_text("workflow: {stage3: false}\n")
    prog = tmp_path / "prog"
    fakeprog.make_program(prog, nexp=2, suffix="cal")
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert cli._snakemake_args(["-n", *args("s2.yaml")]) == ["-n", "--configfile", str(tmp_path / "s2.yaml")]
    finally:
        os.chdir(old)
    _one_line_error(_cli("run", prog, "-n", *args("bad.yaml"), cwd=tmp_path), "bad.yaml", "'foo'")
    r = _cli("run", prog, "--cores", "1", "-n", *args("s2.yaml"), cwd=tmp_path)      # relative to the cwd
    assert r.returncode == 0, r.stderr
    assert "exp_to_source" not in r.stdout and "assign_wcs" not in r.stdout   # stage3: false; _cal input


# ------------------------------------------------------------------ issue 20: one-line errors, Ctrl-C


def test_interrupted_command_is_one_line(monkeypatch, capsys, tmp_path):
    def interrupted(a):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_simulate", interrupted)
    assert cli.main(["simulate", "nrs_fs", str(tmp_path / "x")]) == 130
    assert capsys.readouterr().err == "webbspec: interrupted\n"


FAKE_SNAKEMAKE = r"""
import os, signal, subprocess, sys, time
# a stand-in for Snakemake: one "job" child in its process group; both note the SIGINT they get
job = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
                        "signal.signal(signal.SIGINT, lambda *a: (open(sys.argv[1], 'w').close(), sys.exit(130)))\n"
                        "time.sleep(60)", sys.argv[1] + ".job"])
def stop(*a):
    open(sys.argv[1] + ".snakemake", "w").close()
    job.wait()
    print("Traceback (most recent call last):\nKeyboardInterrupt", file=sys.stderr, flush=True)
    sys.exit(1)
signal.signal(signal.SIGINT, stop)
print("ready", flush=True)
time.sleep(60)
"""


def test_run_forwards_ctrl_c_to_snakemake_and_its_jobs(tmp_path):
    """SIGINT to ``webbspec run`` (here to its process alone) reaches Snakemake and its jobs; the
    terminal shows one line and the exit status is 130."""
    import signal
    import time

    mark = tmp_path / "got"
    code = "import sys; from webbspec.cli import supervise; sys.exit(supervise(sys.argv[1:]))"
    p = subprocess.Popen([sys.executable, "-P", "-c", code, sys.executable, "-c", FAKE_SNAKEMAKE, str(mark)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    time.sleep(0.5)                                     # the job has started
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130
    assert err == "webbspec: interrupted\n" and out == ""
    assert os.path.exists(f"{mark}.snakemake") and os.path.exists(f"{mark}.job")


SNAKEMAKE_FAILURE = """\
[Sun Dec  6 18:14:01 2026]
localrule assign_wcs:
    input: jw1_rate.fits
    log: webbspec/logs/assign_wcs/jw1.log
    jobid: 9
RuleException:
CalledProcessError in file "/w/rules/spec2.smk", line 31:
Command 'set -euo pipefail;  python -m webbspec.workflow.rules_entry --log webbspec/logs/assign_wcs/jw1.log step' returned non-zero exit status 2.
[Sun Dec  6 18:14:01 2026]
Error in rule assign_wcs:
    message: None
    jobid: 9
    input: jw1_rate.fits
    output: webbspec/spec2/jw1/jw1_assign_wcs.fits
    log: webbspec/logs/assign_wcs/jw1.log (check log file(s) for error details)
    shell:
        python -m webbspec.workflow.rules_entry --log webbspec/logs/assign_wcs/jw1.log step
        (command exited with non-zero exit code)
Logfile webbspec/logs/assign_wcs/jw1.log:
==============
webbspec: jw1_rate.fits: not a readable FITS file
==============
[Sun Dec  6 18:14:02 2026]
Error in rule flat_field:
    message: None
    jobid: 12
    log: webbspec/logs/flat_field/jw2.log (check log file(s) for error details)
[Sun Dec  6 18:14:02 2026]
Finished jobid: 35 (Rule: assign_wcs)
1 of 52 steps (2%) done
Shutting down, this might take some time.
Exiting because a job execution failed. Look above for error messages
Complete log(s): /p/.snakemake/log/x.snakemake.log
WorkflowError:
At least one job did not complete successfully.
"""


def _filtered(text):
    out, said = [], []
    f = cli._Output(out.append, said.append)
    for line in text.splitlines():
        f.feed(line)
    f.close()
    return out, said


def test_failed_jobs_are_one_line_each_with_their_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "webbspec" / "logs" / "assign_wcs" / "jw1.log"
    log.parent.mkdir(parents=True)
    log.write_text("2026-12-06 18:14:01 INFO webbspec: reading\nwebbspec: jw1_rate.fits: not a readable FITS file\n")
    out, said = _filtered(SNAKEMAKE_FAILURE)
    assert said == [f"webbspec: jw1_rate.fits: not a readable FITS file (log: {log})",
                    f"webbspec: flat_field job failed (log: {tmp_path}/webbspec/logs/flat_field/jw2.log)"]
    text = "\n".join(out)
    for noise in ("message: None", "RuleException", "CalledProcessError", "Error in rule", "Logfile",
                  "Look above", "WorkflowError", "did not complete"):
        assert noise not in text
    # the rest passes unchanged (the tests of the runs read Snakemake's job lines)
    assert "localrule assign_wcs:" in out and "    log: webbspec/logs/assign_wcs/jw1.log" in out
    assert "Finished jobid: 35 (Rule: assign_wcs)" in out and "1 of 52 steps (2%) done" in out
    assert out.count("[Sun Dec  6 18:14:01 2026]") == 1 and out.count("[Sun Dec  6 18:14:02 2026]") == 1


@pytest.mark.parametrize("text, line", [
    ('Building DAG of jobs...\nInputError in file "/w/rules/common.smk", line 17:\n'
     "config: workflow.batches: 'x' is not of type 'integer'\n"
     '  File "/w/rules/common.smk", line 17, in <module>\n',
     "webbspec: config: workflow.batches: 'x' is not of type 'integer'"),
    ('InputFunctionException in rule photom in file "/w/rules/spec2.smk", line 11:\nError:\n'
     "  InputError: refs/mappings/jwst/nope.pmap: reference context does not exist\nWildcards:\n"
     '  exposure=jw1\nTraceback:\n  File "/w/rules/common.smk", line 92, in inputs\n',
     "webbspec: refs/mappings/jwst/nope.pmap: reference context does not exist"),
    ("MissingRuleException:\nNo rule to produce nonexistent (if you use input functions make sure that they "
     "don't raise unexpected exceptions).\n",
     "webbspec: snakemake: MissingRuleException: No rule to produce nonexistent (if you use input functions "
     "make sure that they don't raise unexpected exceptions)."),
    ("LockException:\nError: Directory cannot be locked. Please make sure that no other Snakemake process "
     "is trying to create the same files in the following directory:\n/p\nIf you are sure that no other "
     "instances of snakemake are running on this directory, the remaining lock was likely caused by a kill "
     "signal or a power loss. It can be removed with the --unlock argument.\n",
     "webbspec: snakemake: LockException: Directory cannot be locked. Please make sure that no other Snakemake "
     "process is trying to create the same files in the following directory: /p If you are sure that no "
     "other instances of snakemake are running on this directory, the remaining lock was likely caused by "
     "a kill signal or a power loss. It can be removed with the --unlock argument."),
    ("usage: snakemake [-h] [--dry-run]\n                 [targets ...]\n"
     "snakemake: error: unrecognized arguments: --foo\n",
     "webbspec: snakemake: error: unrecognized arguments: --foo"),
])
def test_snakemake_errors_are_one_line(text, line):
    out, said = _filtered(text)
    assert said == [line]
    assert out in ([], ["Building DAG of jobs..."])


@pytest.mark.slow
def test_run_failing_job_shows_one_line_and_log(tmp_path):
    """A real run with a failing job: one line with the job's error and its log; no Snakemake
    error block; the job wrote its line to its log only (webbspec run prints it)."""
    prog = tmp_path / "prog"
    fakeprog.make_program(prog, nexp=3)
    bad = fakeprog.exposure_name(2)
    from astropy.io import fits

    with fits.open(prog / f"{bad}_rate.fits", mode="update") as h:
        h[0].header["FAILME"] = "pathloss"
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), "workflow", "fakes"))
    r = subprocess.run([sys.executable, "-m", "webbspec", "run", str(prog), "--cores", "2", "--keep-going"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1
    log = prog / "webbspec" / "logs" / "pathloss" / f"{bad}.log"
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("webbspec: ") and "fake failure" in ln]
    assert len(errors) == 1, r.stderr               # the job's own stderr line is not there too
    assert bad in errors[0] and "fake failure in pathloss" in errors[0] and errors[0].endswith(f" (log: {log})")
    for noise in ("message: None", "RuleException", "Error in rule", "Traceback"):
        assert noise not in r.stderr + r.stdout
    assert "webbspec: " in log.read_text()
