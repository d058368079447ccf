"""The cube Stage 3 path in the workflow (rules/spec3.smk): jobs planned from the members' headers,
a real run on a tiny MRS delivery (`_cal` files of the analytic IFU of tests/ifu_builders), re-runs
of exactly what a parameter or reference change touches, and a band that cannot be made."""

import io
import json
import os
import sys

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from test_workflow import planned, snakemake  # noqa: E402

from webbspec.pipeline import params as wsparams  # noqa: E402
from webbspec.pipeline import program as wsprogram  # noqa: E402
from webbspec.workflow import planning  # noqa: E402

PRODUCT = "jw09999-o001_t001_miri"


def _exposures(n=2):
    from ifu_builders import DITHERS, Exposure, ifu_exposure

    out = []
    for i in range(n):
        e = ifu_exposure(Exposure(designs=("1", "2"), dither=DITHERS[i]), patt_num=i + 1)
        e.primary["SRCTYPE"] = "EXTENDED"          # whole-field extraction: no extract1d reference needed
        e.slits[0].header["SRCTYPE"] = "EXTENDED"
        out.append(e)
    return out


def _store(root, cubepars, number=1):
    """A reference store whose context ``number`` selects a cubepar with the ``cubepars`` rows."""
    from ifu_builders import write_cubepar

    from webbspec.io.crdsmap import write_context

    tmp = root / f"cubepar_{number:04d}.fits"
    write_cubepar(tmp, cubepars)
    write_context(str(root / "refs"), [{"reftype": "cubepar", "file": str(tmp), "instrument": "MIRI",
                                       "match": {"EXP_TYPE": "MIR_MRS"}}], number=number)


def make_delivery(root, with_refs=True):
    """Two dithered MRS exposures (channels 1 and 2, SHORT) as delivered `_cal` files and their
    spec3 association; a reference store with a cubepar."""
    from ifu_builders import CUBEPARS

    from webbspec.io import datamodels

    os.makedirs(root, exist_ok=True)
    names = []
    for i, e in enumerate(_exposures()):
        name = f"jw09999001001_03102_{i + 1:05d}_mirifushort"
        datamodels.write(e, str(root / f"{name}_cal.fits"))
        names.append(name)
    asn = {"asn_type": "spec3", "asn_rule": "candidate_Asn_Lv3MIRMRS", "asn_id": "o001", "program": "09999",
           "asn_pool": "none", "products": [{"name": PRODUCT, "members": [
               {"expname": f"{n}_cal.fits", "exptype": "science"} for n in names]}]}
    (root / "jw09999-o001_spec3_00001_asn.json").write_text(json.dumps(asn))
    if with_refs:
        _store(root, CUBEPARS)
    return names


@pytest.fixture(scope="module")
def delivery(tmp_path_factory):
    root = tmp_path_factory.mktemp("ifu") / "prog"
    names = make_delivery(root, with_refs=False)      # planning needs no reference files
    return root, names


def test_cubes_planned_from_headers(delivery, tmp_path):
    root, names = delivery
    prog = wsprogram.check_plan(wsprogram.discover(str(root)))
    cfg = wsparams.defaults()
    plans = planning.cube_plans(prog, cfg)
    assert [p.suffix for p in plans[PRODUCT]] == ["ch1-short", "ch2-short"]
    assert all(p.exposures == names for p in plans[PRODUCT])
    cfg["spec3"]["cube_build"]["output_type"] = "multi"
    assert [p.suffix for p in planning.cube_plans(prog, cfg)[PRODUCT]] == ["ch1-2-short"]
    cfg["spec3"]["cube_build"].update(output_type="band", channel="3")
    err = io.StringIO()
    assert planning.cube_plans(prog, cfg, err)[PRODUCT] == []
    line = err.getvalue().strip()
    assert "\n" not in line and "jw09999-o001_spec3_00001_asn.json" in line and "channel=3" in line
    assert "1/SHORT" in line and "2/SHORT" in line

    jobs = planned(snakemake(root, "-n", fakes=False))
    assert jobs["spec3_cube_prep_1"] == 1 and jobs["spec3_cube"] == 2 and jobs["spec3_cube_x1d"] == 2
    assert jobs["spec3_cube_publish"] == 2 + 2 * 2           # the _crf, the _s3d and _x1d of each cube
    assert not any(k.startswith("spec3_batch") or k == "exp_to_source" for k in jobs)


def _over(root, tree, name="o.yaml"):
    path = root / name
    path.write_text(yaml.safe_dump(tree))
    return path


@pytest.mark.slow
def test_run_reruns_and_a_band_that_cannot_be_made(tmp_path):
    root = tmp_path / "prog"
    names = make_delivery(root)
    r = snakemake(root, "--nolock", fakes=False)
    assert r.returncode == 0, r.stderr[-4000:]
    spec3 = root / "webbspec" / "spec3"
    want = [f"{n}_o001_crf.fits" for n in names] + [f"{PRODUCT}_ch{c}-short_{k}.fits" for c in "12" for k in ("s3d", "x1d")]
    assert sorted(p.name for p in spec3.glob("*.fits")) == sorted(want)
    assert planned(snakemake(root, "-n", fakes=False)) == {}

    jobs = planned(snakemake(root, "-n", "--configfile", _over(root, {"spec3": {"extract_1d": {"bkg_sigma_clip": 2.5}}}),
                             fakes=False))
    assert jobs == {"spec3_cube_x1d": 2, "spec3_cube_publish": 2, "all": 1}, jobs
    jobs = planned(snakemake(root, "-n", "--configfile", _over(root, {"spec3": {"cube_build": {"weighting": "emsm"}}}),
                             fakes=False))
    assert jobs == {"spec3_cube": 2, "spec3_cube_x1d": 2, "spec3_cube_publish": 4, "all": 1}, jobs
    jobs = planned(snakemake(root, "-n", "--configfile",
                             _over(root, {"spec3": {"outlier_detection": {"snr": "6.0 5.0"}}}), fakes=False))
    assert jobs["spec3_cube_prep_1"] == 1 and jobs["spec3_cube"] == 2 and jobs["spec3_cube_x1d"] == 2

    # a new context whose cubepar lacks channel 2: ch1 is re-made, ch2 fails on one line, its old products stay
    from ifu_builders import CUBEPARS

    _store(root, {k: v for k, v in CUBEPARS.items() if k[0] == "1"}, number=2)
    # refs diff predicts the dry run: the cubes and their spectra, not the prepare job
    from webbspec.io.refs import context_path
    from webbspec.pipeline.replan import remake_plan

    store = str(root / "refs")
    plan = remake_plan(str(root), store, context_path(store, "webbspec_0001"), context_path(store, "webbspec_0002"))
    assert plan["jobs"] == planned(snakemake(root, "-n", fakes=False)) == \
        {"spec3_cube": 2, "spec3_cube_x1d": 2, "spec3_cube_publish": 4, "all": 1}, plan["jobs"]
    assert sorted(os.path.basename(p) for p in plan["products"]) == \
        sorted(f"{PRODUCT}_ch{c}-short_{k}.fits" for c in "12" for k in ("s3d", "x1d"))
    before = (spec3 / f"{PRODUCT}_ch2-short_s3d.fits").stat().st_mtime_ns
    r = snakemake(root, "--nolock", "--keep-going", fakes=False)
    assert r.returncode != 0
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("webbspec: ") and "cubepar_0002.fits" in ln]
    assert errors and all("2/SHORT" in ln or "channel 2" in ln for ln in errors), r.stderr[-3000:]
    assert (spec3 / f"{PRODUCT}_ch2-short_s3d.fits").stat().st_mtime_ns == before      # kept, stale
    assert (spec3 / f"{PRODUCT}_ch1-short_x1d.fits").stat().st_mtime_ns > before        # re-made
    stale = next(ln for ln in r.stderr.splitlines() if "now stale" in ln)
    assert f"{PRODUCT}_ch2-short_s3d.fits" in stale and f"{PRODUCT}_ch1-short" not in stale, stale
