"""Association JSON: round trip, asn_from_list, and every error case names the file."""

import json

import pytest

from webbspec.io import associations as asn
from webbspec.cli import main as cli_main
from webbspec.errors import InputError


def _touch(d, *names):
    for n in names:
        (d / n).write_text("")


def _write(d, tree, name="x_asn.json"):
    p = d / name
    p.write_text(json.dumps(tree) if not isinstance(tree, str) else tree)
    return p


def _spec2(members):
    return {"asn_type": "spec2", "asn_rule": "candidate_Asn_Lv2NRSFSS", "asn_id": "o001",
            "program": "01234", "asn_pool": "pool",
            "products": [{"name": "jw01234001001_03101_00001_nrs1",
                          "members": [{"expname": e, "exptype": t} for e, t in members]}]}


def test_round_trip(tmp_path):
    _touch(tmp_path, "a_rate.fits", "b_rate.fits")
    p = _write(tmp_path, _spec2([("a_rate.fits", "science"), ("b_rate.fits", "background")]))
    a = asn.read(p)
    assert a.asn_type == "spec2" and a.level == 2 and a.asn_rule == "candidate_Asn_Lv2NRSFSS"
    prod = a.products[0]
    assert [m.exptype for m in prod.members] == ["science", "background"]
    assert prod.of("background")[0].path == str(tmp_path / "b_rate.fits")
    out = asn.write(a, tmp_path / "copy_asn.json")
    b = asn.read(out)
    assert asn.to_dict(b) == asn.to_dict(a)
    tree = json.loads(open(out).read())
    assert tree["program"] == "01234" and tree["asn_pool"] == "pool"
    assert tree["products"][0]["members"][1] == {"expname": "b_rate.fits", "exptype": "background"}


@pytest.mark.parametrize("tree, problem", [
    ("{not json", "malformed association JSON"),
    ({"asn_type": "spec3", "products": []}, "no products"),
    ({"asn_type": "spec3", "products": [{"name": "p", "members": []}]}, "product p has no members"),
    ({"asn_type": "spec3", "products": [{"name": "p", "members": [
        {"expname": "a_cal.fits", "exptype": "background"}]}]}, "product p has no science member"),
    ({"asn_type": "spec3", "products": [{"name": "p", "members": [
        {"expname": "a_cal.fits", "exptype": "science"},
        {"expname": "a_cal.fits", "exptype": "sky"}]}]}, "member a_cal.fits: unknown exptype 'sky'"),
    ({"asn_type": "spec3", "products": [{"name": "p", "members": [
        {"expname": "missing_cal.fits", "exptype": "science"}]}]}, "member missing_cal.fits does not exist"),
])
def test_errors_name_the_file(tmp_path, tree, problem):
    _touch(tmp_path, "a_cal.fits")
    p = _write(tmp_path, tree)
    with pytest.raises(InputError) as err:
        asn.read(p)
    msg = str(err.value)
    assert msg.startswith(str(p)) and problem in msg and "\n" not in msg


def test_missing_members_allowed_without_check(tmp_path):
    tree = {"asn_type": "spec3", "products": [{"name": "p", "members": [
        {"expname": "later_cal.fits", "exptype": "science"}]}]}
    a = asn.read(_write(tmp_path, tree), check_files=False)
    assert a.level == 3 and a.products[0].science[0].expname == "later_cal.fits"


def test_asn_from_list(tmp_path):
    a = asn.asn_from_list(["a_cal.fits", "b_x1d.fits"], "jw01234-o001_t001_nirspec_g395m",
                          exptypes=["science", "background"])
    assert a.asn_type == "spec3" and a.products[0].name == "jw01234-o001_t001_nirspec_g395m"
    assert [m.exptype for m in a.products[0].members] == ["science", "background"]
    with pytest.raises(InputError):
        asn.asn_from_list(["a_cal.fits"], "p", exptypes=["bogus"])
    with pytest.raises(InputError):
        asn.asn_from_list(["a_cal.fits"], "p", exptypes=["background"])


def test_cli_asn_from_list(tmp_path, capsys):
    _touch(tmp_path, "a_cal.fits", "b_cal.fits", "c_x1d.fits")
    out = tmp_path / "l3_asn.json"
    files = [str(tmp_path / n) for n in ("a_cal.fits", "b_cal.fits", "c_x1d.fits")]
    rc = cli_main(["asn-from-list", "-o", str(out), "--product-name", "prod",
                   "--exptype", "science", "--exptype", "science", "--exptype", "background", *files])
    assert rc == 0
    a = asn.read(out)
    assert [m.exptype for m in a.products[0].members] == ["science", "science", "background"]
