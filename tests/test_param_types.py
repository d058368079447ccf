"""Step parameters: every one has a type (and a range where it has one) in the schema; a bad
value is one InputError naming the key and what was expected, from a config file, a per-mode
override, `webbspec run` and Snakemake, before any job runs."""

import os
import subprocess
import sys

import pytest
import yaml

from webbspec.errors import InputError
from webbspec.pipeline import params

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workflow"))
import fakeprog  # noqa: E402

TYPE_KEYWORDS = ("type", "enum", "x-numbers")


def _load_error(tmp_path, override):
    path = tmp_path / "overrides.yaml"
    path.write_text(yaml.safe_dump(override))
    with pytest.raises(InputError) as err:
        params.load([str(path)])
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    return msg[len(f"{path}: "):]


def _od(**kw):
    return {"spec3": {"outlier_detection": kw}}


def _s(stage, step, **kw):
    return {stage: {step: kw}}


@pytest.mark.parametrize("override, expected", [
    (_od(snr="abc"), """spec3.outlier_detection.snr: 'abc' is not two positive numbers ("5.0 4.0")"""),
    (_od(snr="5.0"), """spec3.outlier_detection.snr: '5.0' is not two positive numbers ("5.0 4.0")"""),
    (_od(snr="-5 4"), """spec3.outlier_detection.snr: '-5 4' is not two positive numbers ("5.0 4.0")"""),
    (_od(snr=5.0), """spec3.outlier_detection.snr: 5.0 is not two positive numbers ("5.0 4.0")"""),
    (_s("spec2", "bkg_subtract", sigma=-3), "spec2.bkg_subtract.sigma: -3 is not greater than 0"),
    (_od(scale="1.2"), "spec3.outlier_detection.scale: '1.2' is not two positive numbers"),
    (_od(kernel_size="7.5 7"), "spec3.outlier_detection.kernel_size: '7.5 7' is not two positive integers"),
    (_od(pixfrac=0), "spec3.outlier_detection.pixfrac: 0 is not greater than 0"),
    (_od(kernel="gaussian"), "spec3.outlier_detection.kernel: 'gaussian' is not one of"),
    (_od(fillval="zero"), "spec3.outlier_detection.fillval: 'zero' is not NaN, INDEF or a number"),
    (_od(good_bits="~DO_NOT_US"), "spec3.outlier_detection.good_bits: '~DO_NOT_US' is not DQ flag names"),
    (_od(threshold_percent=101), "spec3.outlier_detection.threshold_percent: 101 is not at most 100"),
    (_od(pixmap_order=2), "spec3.outlier_detection.pixmap_order: 2 is not one of [1, 3]"),
    (_s("spec2", "resample_spec", pixfrac=1.5), "spec2.resample_spec.pixfrac: 1.5 is not at most 1"),
    (_s("spec2", "resample_spec", output_shape=[0, 5]),
     "spec2.resample_spec.output_shape.0: 0 is not at least 1"),
    (_s("spec2", "photom", source_type="point"), "spec2.photom.source_type: 'point' is not one of"),
    (_s("spec2", "extract_2d", source_ids=["a"]), "spec2.extract_2d.source_ids.0: 'a' is not of type 'integer'"),
    (_s("spec2", "straylight", shower_low_reject=-1), "spec2.straylight.shower_low_reject: -1 is not at least 0"),
    (_s("spec3", "master_background", median_kernel=0), "spec3.master_background.median_kernel: 0 is not at least 1"),
    (_s("spec3", "extract_1d", extract_width="wide"), "spec3.extract_1d.extract_width: 'wide' is not of type"),
    (_s("spec3", "combine_1d", exptime_key="exptime"), "spec3.combine_1d.exptime_key: 'exptime' is not one of"),
    (_s("spec3", "cube_build", dec_center=91), "spec3.cube_build.dec_center: 91 is not at most 90"),
    ({"modes": {"nrs_fs": _s("spec3", "outlier_detection", snr="abc")}},
     "modes.nrs_fs.spec3.outlier_detection.snr: 'abc' is not two positive numbers"),
    ({"modes": {"nrs_fs": _s("spec2", "bkg_subtract", sigma=0)}},
     "modes.nrs_fs.spec2.bkg_subtract.sigma: 0 is not greater than 0"),
])
def test_bad_value_is_one_line_naming_the_key(tmp_path, override, expected):
    assert _load_error(tmp_path, override).startswith(expected)


def test_exponent_without_a_dot_is_explained(tmp_path):
    """YAML 1.1 (PyYAML, Snakemake) reads 1e-3 as text: say so rather than 'not of type number'."""
    path = tmp_path / "o.yaml"
    path.write_text("spec2: {resample_spec: {pixfrac: 1e-3}}\n")
    with pytest.raises(InputError) as err:
        params.load([str(path)])
    assert str(err.value) == (f"{path}: spec2.resample_spec.pixfrac: '1e-3' is text, not a number "
                              "(YAML reads 1e-3 as text: write 1.0e-3)")


@pytest.mark.parametrize("override", [
    _od(snr="4 3", scale="1 0.5", kernel_size="5 5", fillval="INDEF", good_bits="~DO_NOT_USE+OUTLIER"),
    _od(fillval=0, good_bits=0),
    _od(fillval="-1.5e3", good_bits="DO_NOT_USE,4"),
    _s("spec2", "resample_spec", pixfrac=1, output_shape=[100, 20], pixel_scale=None),
    _s("spec3", "extract_1d", extract_width=5, smoothing_length=0, bkg_order=0),
    {"modes": {"nrs_fs": _s("spec2", "srctype", source_type="EXTENDED")}},
])
def test_good_values_pass(tmp_path, override):
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(override))
    params.load([str(path)])


def _leaves(cfg, sch, path=()):
    """(dotted key, default, schema entry) of every leaf of config.yaml (through the schema's $refs)."""
    defs = params.schema()["$defs"]
    for key, value in cfg.items():
        entry = sch["properties"][key]
        if "$ref" in entry:
            entry = defs[entry["$ref"].rsplit("/", 1)[-1]]
        if isinstance(value, dict) and "properties" in entry:
            yield from _leaves(value, entry, path + (key,))
        else:
            yield ".".join(path + (key,)), value, entry


def test_every_key_has_a_type():
    """A parameter added to config.yaml without a type (and, if its default is None, without
    null allowed) fails here."""
    leaves = list(_leaves(params.defaults(), params.schema()))
    assert len(leaves) > 150
    for key, default, entry in leaves:
        if key == "modes":
            continue
        assert any(k in entry for k in TYPE_KEYWORDS), f"{key}: no type in config/config.schema.yaml"
        if default is None:
            assert "null" in entry.get("type", []) or None in entry.get("enum", []), f"{key}: null not allowed"
    params.validate(params.defaults())


def test_steps_of_both_stages_have_one_definition():
    """resample_spec, cube_build and extract_1d are the same official steps in both stages."""
    defs = params.schema()["$defs"]
    shared = set(defs["spec2"]["properties"]) & set(defs["spec3"]["properties"])
    assert shared == {"resample_spec", "cube_build", "extract_1d"}
    for step in shared:
        assert defs["spec2"]["properties"][step] == defs["spec3"]["properties"][step], step


def test_step_values_from_the_command_line():
    """`webbspec step` values: YAML, but the text where the parameter is a string."""
    assert params.step_value("resample_spec", "pixfrac", "0.5") == 0.5
    assert params.step_value("resample_spec", "fillval", "0") == "0"
    assert params.step_value("outlier_detection", "snr", "5") == "5"
    assert params.step_value("cube_build", "channel", "1") == "1"
    assert params.step_value("resample_spec", "output_shape", "[10, 20]") == [10, 20]
    assert params.step_value("resample_spec", "pixel_scale", "null") is None
    assert params.step_value("resample_spec", "pixfrac", "1e-3") == 0.001     # text to YAML 1.1
    params.validate_step("resample_spec", {"pixfrac": 0.5, "fillval": "0"})
    with pytest.raises(InputError) as err:
        params.validate_step("outlier_detection", {"snr": "5"})
    assert str(err.value) == """outlier_detection --snr: '5' is not two positive numbers ("5.0 4.0")"""
    with pytest.raises(InputError) as err:
        params.validate_step("resample_spec", {"pixfrak": 1})
    assert str(err.value) == "resample_spec: unknown parameter --pixfrak (did you mean --pixfrac?)"


def _run(*args, cwd=None):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("front", ["webbspec", "snakemake"])
def test_run_and_snakemake_report_a_bad_value_before_any_job(tmp_path, front):
    prog = tmp_path / "prog"
    fakeprog.make_program(prog, nexp=2, suffix="cal")
    bad = tmp_path / "bad.yaml"
    bad.write_text('spec3: {outlier_detection: {snr: "5.0"}}\n')
    bindir = os.path.dirname(sys.executable)
    if front == "webbspec":
        r = _run(sys.executable, "-m", "webbspec", "run", prog, "--cores", "1", "--configfile", bad)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [
            f"""webbspec: {bad}: spec3.outlier_detection.snr: '5.0' is not two positive numbers ("5.0 4.0")"""]
    else:
        r = _run(os.path.join(bindir, "snakemake"), "--snakefile", os.path.join(params.workflow_root(), "Snakefile"),
                 "--cores", "1", "--configfile", bad, "--config", f"program={prog}", cwd=tmp_path)
        assert r.returncode != 0
        assert """config: spec3.outlier_detection.snr: '5.0' is not two positive numbers ("5.0 4.0")""" in r.stderr
    assert not (prog / "webbspec").exists()
