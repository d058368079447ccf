"""Configuration: defaults validate, schema errors name the key, overrides merge, steps agree."""

import importlib.util
import inspect

import pytest
import yaml

from webbspec.pipeline import params
from webbspec.errors import InputError
from webbspec.modes import MODES


def test_defaults_validate_and_cover_schema():
    cfg = params.defaults()
    params.validate(cfg)
    sch = params.schema()
    for stage in ("spec2", "spec3"):
        props = sch["$defs"][stage]["properties"]
        assert set(cfg[stage]) == set(props)
        for step, spec in props.items():
            assert set(cfg[stage][step]) == set(spec["properties"]), (stage, step)


def test_every_mode_step_is_configured():
    cfg = params.defaults()
    for mode in MODES.values():
        assert set(mode.spec2) <= set(cfg["spec2"]), mode.name
        assert set(mode.spec3) <= set(cfg["spec3"]), mode.name


def test_official_defaults():
    cfg = params.defaults()
    assert cfg["spec3"]["resample_spec"]["pixfrac"] == 1.0
    assert cfg["spec3"]["outlier_detection"]["snr"] == "5.0 4.0"
    assert cfg["spec3"]["outlier_detection"]["scale"] == "1.2 0.7"
    assert cfg["spec3"]["extract_1d"]["use_source_posn"] is None
    assert cfg["spec2"]["resample_spec"]["weight_type"] == "ivm"
    # Stage 3's departs (ivm smoothed along the dispersion: README, Design); outlier_detection's does not
    assert (cfg["spec3"]["resample_spec"]["weight_type"], cfg["spec3"]["outlier_detection"]["weight_type"]) == \
        ("ivm-smooth", "ivm")


@pytest.mark.parametrize("override, words", [
    ({"spec3": {"extract_1d": {"extract_widht": 3}}}, ["unknown parameter 'extract_widht'", "spec3.extract_1d"]),
    ({"spec2": {"flatfield": {}}}, ["unknown step 'flatfield'", "spec2", "flat_field"]),
    ({"modes": {"nrs_fs": {"spec3": {"resample_spec": {"pixfrak": 1}}}}},
     ["unknown parameter 'pixfrak'", "modes.nrs_fs.spec3.resample_spec", "pixfrac"]),
    ({"modes": {"nrs_xx": {}}}, ["unknown mode 'nrs_xx'"]),
    ({"workflow": {"batches": 0}}, ["workflow.batches"]),
    ({"spec3": {"resample_spec": {"pixfrac": "big"}}}, ["spec3.resample_spec.pixfrac"]),
    ({"bogus": 1}, ["unknown key 'bogus'"]),
])
def test_errors_name_the_key(tmp_path, override, words):
    path = tmp_path / "overrides.yaml"
    path.write_text(yaml.safe_dump(override))
    with pytest.raises(InputError) as err:
        params.load([str(path)])
    msg = str(err.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    for w in words:
        assert w in msg


def test_overrides_and_modes(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text("spec3: {resample_spec: {pixfrac: 0.5}}\n"
                    "modes: {nrs_fs: {spec3: {resample_spec: {kernel: point}}}}\n")
    cfg = params.load([str(path)])
    assert params.step_params(cfg, "spec3", "resample_spec")["kernel"] == "square"
    fs = params.step_params(cfg, "spec3", "resample_spec", "nrs_fs")
    assert fs["kernel"] == "point" and fs["pixfrac"] == 0.5 and fs["weight_type"] == "ivm-smooth"   # ours (README)


def test_export_round_trip(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text("modes: {nrs_fs: {spec2: {extract_1d: {apply_apcorr: false}}}}\n")
    cfg = params.load([str(path)])
    exported = params.export(cfg, "nrs_fs")
    assert set(exported["spec2"]) == set(MODES["nrs_fs"].spec2)
    assert exported["spec2"]["extract_1d"]["apply_apcorr"] is False
    back = tmp_path / "params.yaml"
    back.write_text(yaml.safe_dump(exported))
    again = params.load([str(back)])
    assert params.step_params(again, "spec2", "extract_1d", "nrs_fs") == exported["spec2"]["extract_1d"]
    full = params.export(params.defaults())
    assert params.validate(full) == full


def _step_modules():
    cfg = params.defaults()
    for stage in ("spec2", "spec3"):
        for step in cfg[stage]:
            yield stage, step


# the pipeline's own value where it differs from the step's default (calwebb_spec2 builds one
# multi-band cube per IFU exposure, its `_s3d`; it skips residual_fringe, which runs when called alone;
# our Stage 3 resample_spec smooths the ivm weights along the dispersion: README, Design)
PIPELINE_VALUES = {("spec2", "cube_build", "output_type"): "multi", ("spec2", "residual_fringe", "skip"): True,
                   ("spec3", "resample_spec", "weight_type"): "ivm-smooth"}


@pytest.mark.parametrize("stage, step", list(_step_modules()))
def test_config_matches_step_signature(stage, step):
    """The configured parameters of a step are exactly the keyword parameters of its run()."""
    if importlib.util.find_spec(f"webbspec.steps.{step}") is None:
        pytest.skip(f"webbspec.steps.{step} not written yet")
    from webbspec import steps

    sig = steps.parameters(step)
    conf = params.defaults()[stage][step]
    assert set(conf) == set(sig), f"config only: {set(conf) - set(sig)}; run() only: {set(sig) - set(conf)}"
    for name, default in sig.items():
        assert conf[name] == PIPELINE_VALUES.get((stage, step, name), default), (step, name)
    assert all(p.kind is not inspect.Parameter.VAR_KEYWORD
               for p in inspect.signature(steps.load(step).run).parameters.values())


def test_accepted_but_unused_parameters_are_reported_once_per_step():
    from webbspec import steps

    assert "wfss_mask" in steps.unused_parameters("bkg_subtract")
    assert "sigma" not in steps.unused_parameters("bkg_subtract")
    assert steps.unused_parameters("srctype") == ()
    lines = params.unused_report({"spec2": ["bkg_subtract", "srctype", "bkg_subtract"]})
    assert len(lines) == 1 and lines[0].startswith("webbspec: warning: spec2.bkg_subtract accepts but does not use")
    assert "wfss_mask" in lines[0]
