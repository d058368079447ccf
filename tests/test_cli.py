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


def test_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec3: {extract_1d: {foo: 1}}\n")
    _one_line_error(_cli("config", "export", "--configfile", bad), "bad.yaml", "'foo'", "spec3.extract_1d")
    _one_line_error(_cli("run", tmp_path / "nope"), "nope", "does not exist")
    _one_line_error(_cli("bestrefs", tmp_path / "missing_rate.fits"), "missing_rate.fits")
    _one_line_error(_cli("step", "no_such_step", tmp_path / "x.fits"), "no_such_step", "unknown step")
    trunc = tmp_path / "jw1_rate.fits"
    trunc.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    _one_line_error(_cli("run", tmp_path, "-n"), "jw1_rate.fits")
    asn = tmp_path / "a_asn.json"
    asn.unlink(missing_ok=True)
    trunc.unlink()
    asn.write_text("{broken")
    _one_line_error(_cli("run", tmp_path, "-n"), "a_asn.json", "malformed")
    _one_line_error(_cli("asn-from-list", "-o", tmp_path / "o.json", "--product-name", "p",
                         "--exptype", "nonsense", "a_cal.fits"), "nonsense")


def test_run_command_line(tmp_path):
    cmd = cli.run_command(tmp_path, 4, ["-n", "--config", "context=webbspec_0001"])
    assert cmd[1:3] == ["--snakefile", os.path.join(params.workflow_root(), "Snakefile")]
    assert cmd[3:5] == ["--cores", "4"]
    i = cmd.index("--config")
    assert cmd[i + 1] == f"program={tmp_path}" and cmd[i + 2] == "context=webbspec_0001"
    assert cmd.count("--config") == 1


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
    assert cli._yaml_value("null") is None and cli._yaml_value("[1, 2]") == [1, 2]
    assert cli._yaml_value("5.0 4.0") == "5.0 4.0"


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
