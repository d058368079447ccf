"""Program discovery: what needs Stage 2, which spec3 products exist, errors name the file."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workflow"))
import fakeprog  # noqa: E402

from webbspec.pipeline import program  # noqa: E402
from webbspec.errors import InputError  # noqa: E402


def test_rate_program(tmp_path):
    names = fakeprog.make_program(tmp_path, nexp=3)
    p = program.discover(tmp_path)
    assert sorted(p.stage2) == names
    e = p.exposures[names[0]]
    assert e.mode == "nrs_fs" and e.path == f"{names[0]}_rate.fits"
    assert e.backgrounds == [f"{n}_rate.fits" for n in names[1:]]
    chain = program.spec2_chain(e)
    assert chain[0] == "assign_wcs" and "bkg_subtract" in chain and chain[-1] == "extract_1d"
    prods = program.spec2_products(chain)
    assert prods == {"cal": "photom", "s2d": "resample_spec", "x1d": "extract_1d", "bsub": "bkg_subtract"}
    (key, prod), = p.products.items()
    assert key == "jw01234-o001_t001-source_id_nirspec_f290lp-g395m-s200a1"
    assert prod.name == fakeprog.SPEC3_NAME and prod.mode == "nrs_fs"
    assert prod.cal[names[1]] == f"webbspec/spec2/{names[1]}_cal.fits"


def test_no_background_members_drops_bkg_subtract(tmp_path):
    names = fakeprog.make_program(tmp_path, nexp=2, spec2_asn=False)
    e = program.discover(tmp_path).exposures[names[0]]
    assert "bkg_subtract" not in program.spec2_chain(e)


def test_an_imprint_member_is_not_calibrated_on_its_own(tmp_path):
    names = fakeprog.make_program(tmp_path, nexp=2, spec2_asn=False, spec3_asn=False)
    imprint = fakeprog.exposure_name(9)
    fakeprog.write_fits(tmp_path / f"{imprint}_rate.fits")
    for n in names:
        fakeprog.write_asn(tmp_path / f"{n}_spec2_asn.json", "spec2",
                           [(n, [(f"{n}_rate.fits", "science"), (f"{imprint}_rate.fits", "imprint")])])
    p = program.discover(tmp_path)
    assert sorted(p.stage2) == names
    assert all(p.exposures[n].imprints == [f"{imprint}_rate.fits"] for n in names)


def test_delivered_cal_needs_no_stage2(tmp_path):
    names = fakeprog.make_program(tmp_path, nexp=2, suffix="cal")
    p = program.discover(tmp_path)
    assert not p.stage2
    prod = next(iter(p.products.values()))
    assert prod.cal == {n: f"{n}_cal.fits" for n in names}


def test_mixed_directory(tmp_path):
    fakeprog.make_program(tmp_path, nexp=2, suffix="cal", spec3_asn=False)
    fakeprog.write_fits(tmp_path / f"{fakeprog.exposure_name(7)}_rate.fits")
    p = program.discover(tmp_path)
    assert list(p.stage2) == [fakeprog.exposure_name(7)]
    assert len(p.exposures) == 3


def test_unknown_exp_type_names_file(tmp_path):
    bad = fakeprog.write_fits(tmp_path / "jw01234001001_03101_00001_nrs1_rate.fits", EXP_TYPE="NRS_FOO")
    with pytest.raises(InputError) as err:
        program.discover(tmp_path, strict=True)
    assert "NRS_FOO" in str(err.value) and os.path.basename(bad) in str(err.value)
    # tolerant (the workflow): the exposure runs one job, assign_wcs, that fails on the file
    p = program.discover(tmp_path)
    exp = p.exposures[fakeprog.exposure_name(1)]
    assert exp.error == str(err.value) and program.spec2_chain(exp) == ["assign_wcs"]
    assert p.errors == [str(err.value)]


def test_spec3_member_that_cannot_be_made(tmp_path):
    fakeprog.write_asn(tmp_path / "l3_asn.json", "spec3", [("p", [("jw9_cal.fits", "science")])])
    with pytest.raises(InputError) as err:
        program.discover(tmp_path, strict=True)
    assert "l3_asn.json" in str(err.value) and "jw9_cal.fits" in str(err.value)
    # tolerant: no product; the association itself is the input of one failing job
    p = program.discover(tmp_path)
    assert p.products == {} and p.errors == [str(err.value)]
    assert p.exposures["l3_asn"].path == "l3_asn.json" and p.exposures["l3_asn"].stage2


def test_spec2_missing_background_member(tmp_path):
    fakeprog.make_program(tmp_path, nexp=1, spec2_asn=False, spec3_asn=False)
    n = fakeprog.exposure_name(1)
    fakeprog.write_asn(tmp_path / "l2_asn.json", "spec2",
                       [(n, [(f"{n}_rate.fits", "science"), ("gone_rate.fits", "background")])])
    with pytest.raises(InputError) as err:
        program.discover(tmp_path, strict=True)
    assert "l2_asn.json" in str(err.value) and "gone_rate.fits" in str(err.value)
    # tolerant: the exposure does not run without its background; its input is the association
    exp = program.discover(tmp_path).exposures[n]
    assert exp.path == "l2_asn.json" and exp.error == str(err.value)
    assert program.spec2_chain(exp) == ["assign_wcs"]


@pytest.mark.parametrize("text", ["{not json", "", "{}", '{"products": []}'])
def test_malformed_association_is_one_failing_input(tmp_path, text):
    names = fakeprog.make_program(tmp_path, nexp=2, spec3_asn=False)
    (tmp_path / "bad_spec3_asn.json").write_text(text)
    with pytest.raises(InputError) as err:
        program.discover(tmp_path, strict=True)
    assert str(err.value).startswith(str(tmp_path / "bad_spec3_asn.json") + ": ") or \
        str(err.value).startswith("bad_spec3_asn.json: ")
    p = program.discover(tmp_path)
    bad = p.exposures["bad_spec3_asn"]
    assert bad.path == "bad_spec3_asn.json" and "\n" not in bad.error and "bad_spec3_asn.json" in bad.error
    assert sorted(n for n, e in p.stage2.items() if not e.error) == names   # the others go on


def test_batches_are_stable():
    keys = [f"s{i:09d}" for i in range(2000)]
    before = {k: program.batch_of(k, 8) for k in keys}
    assert set(before.values()) == set(range(8))
    counts = [list(before.values()).count(b) for b in range(8)]
    assert min(counts) > 180            # roughly even (expected 250 each)
    assert program.batch_of("s000000001", 8) == before["s000000001"]   # pure function of the key


def test_read_sources(tmp_path):
    d = tmp_path / "e"
    d.mkdir()
    (d / "sources.tsv").write_text("source\tpath\ns1\ts1.fits\n# note\ns2\t/abs/s2.fits\n")
    assert program.read_sources(d / "sources.tsv") == [("s1", str(d / "s1.fits")), ("s2", "/abs/s2.fits")]


def test_spec2_chain_rules_one_rule_per_distinct_chain():
    """workflow.spec2_jobs: exposure -> exposures with the same chain share a rule (fixed outputs)."""
    from types import SimpleNamespace

    def exp(backgrounds=(), ints=False):
        return SimpleNamespace(error=None, mode="nrs_fs", backgrounds=list(backgrounds), imprints=[],
                               ints=ints)

    stage2 = {"a": exp(["b.fits"]), "b": exp(), "c": exp(["a.fits"]), "d": exp(["a.fits"], ints=True)}
    rules = program.spec2_chain_rules(stage2)
    assert rules["a"] == rules["c"] and len({rules[k][0] for k in "abd"}) == 3
    assert "bkg_subtract" in rules["a"][1] and "bkg_subtract" not in rules["b"][1]
    assert "resample_spec" not in rules["d"][1]
    assert {r for r, _ in rules.values()} == {"spec2_chain_1", "spec2_chain_2", "spec2_chain_3"}
    assert rules == program.spec2_chain_rules(dict(reversed(stage2.items())))     # stable names
    pub = program.spec2_published(rules["a"][1])
    assert set(pub) == {"cal", "s2d", "x1d"} and "bsub" in program.spec2_published(rules["a"][1], save_bsub=True)


def test_spec3_product_is_made_without_a_bad_member(tmp_path):
    """A science member found bad when the run is planned fails its own job; the Level 3 product
    is made from the other members, and the planning says which were left out."""
    names = fakeprog.make_program(tmp_path, nexp=3)
    fakeprog.write_fits(tmp_path / f"{names[0]}_rate.fits", EXP_TYPE="NRS_FOO")
    p = program.discover(tmp_path)
    (prod,) = p.products.values()
    assert prod.science == names[1:] and sorted(prod.cal) == names[1:] and prod.left_out == [names[0]]
    assert p.warnings == [f"{prod.asn}: product {prod.name} is made without {names[0]} (bad input)"]
    assert len(p.errors) == 1 and names[0] in p.errors[0]


def test_stage3_false_does_not_check_stage3_steps(tmp_path):
    """A spec3 association of a mode whose Stage 3 is not written fails the plan, naming the
    association, unless the run asks for no Stage 3 (workflow.stage3: false)."""
    fakeprog.make_program(tmp_path, nexp=2, suffix="cal", EXP_TYPE="NIS_WFSS")
    p = program.discover(tmp_path)
    with pytest.raises(InputError, match=r"spec3_00001_asn.json: mode nis_wfss: step"):
        program.check_plan(p, {"workflow": {"stage3": True}})
    assert program.check_plan(p, {"workflow": {"stage3": False}}) is p
