"""webbspec.io.asdftree: slit-by-slit parsing and shared conversion give the same transforms as asdf."""

import io

import numpy as np
import pytest

asdf = pytest.importorskip("asdf")
from astropy.modeling import models  # noqa: E402

from webbspec.io import asdftree  # noqa: E402


def _serialize(tree):
    buf = io.BytesIO()
    asdf.AsdfFile(tree).write_to(buf)
    return buf.getvalue()


def _slit_model(shift, coeffs):
    poly = models.Polynomial2D(2, **{f"c{i}_{j}": c for (i, j), c in coeffs.items()})
    return (models.Shift(shift) & models.Identity(1)) | poly


COEFFS = {(0, 0): 1.0, (1, 0): 0.5, (0, 1): -0.25, (2, 0): 1e-3, (1, 1): 2e-3, (0, 2): 3e-3}


def _slits(models_per_slit):
    return {"meta": {"exposure": "x"},
            "slits": [{"name": f"S{k}", "meta": {"wcs": m}} for k, m in enumerate(models_per_slit)]}


def _evaluate(tree):
    x, y = np.meshgrid(np.linspace(-2, 3, 7), np.linspace(-1, 1, 5))
    return [np.asarray(s["meta"]["wcs"](x, y)) for s in tree["slits"]]


def _plain(raw):
    with asdf.open(io.BytesIO(raw), lazy_load=False) as af:
        return _evaluate(af.tree)


def test_slits_parsed_apart_and_equal_transforms_shared():
    # slits 0 and 2 are equal (their polynomials separate objects, so separate blocks with the
    # same bytes); slit 1 has another shift. The polynomials share astropy's default domain
    # objects, which asdf anchors in slit 0 and aliases in the others.
    raw = _serialize(_slits([_slit_model(1.0, COEFFS), _slit_model(2.0, COEFFS),
                             _slit_model(1.0, dict(COEFFS))]))
    assert b"*id" in raw   # the cross-slit aliases this test is about
    parts = asdftree._split_slits(raw)
    assert parts is not None and len(parts[1]) == 3 and parts[2] == 3
    some = asdftree._split_slits(raw, [2])    # only the kept slits' documents are made
    assert some[1] == [parts[1][2]] and some[2] == 3
    af, tree, total = asdftree.open_shared(raw)
    with af:
        got = _evaluate(tree)
        wcs = [s["meta"]["wcs"] for s in tree["slits"]]
        assert wcs[0] is wcs[2]            # equal slits: one model
        assert wcs[1] is not wcs[0]        # different shift: its own
        assert wcs[1][1] is wcs[0][1]      # ... but the equal polynomial is shared
        assert [s["name"] for s in tree["slits"]] == ["S0", "S1", "S2"]
        assert tree["meta"]["exposure"] == "x"
    for a, b in zip(got, _plain(raw)):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(got[0], got[1])
    assert total == 3


@pytest.mark.parametrize("shared_object", [False, True])   # slits parsed apart / one parse
def test_only_some_slits(shared_object):
    first = _slit_model(1.0, COEFFS)
    models_ = [first, _slit_model(2.0, COEFFS), first if shared_object else _slit_model(3.0, COEFFS)]
    raw = _serialize(_slits(models_))
    af, tree, total = asdftree.open_shared(raw, only=[2, 1])
    with af:
        assert total == 3 and [s["name"] for s in tree["slits"]] == ["S2", "S1"]
        got = _evaluate(tree)
    plain = _plain(raw)
    np.testing.assert_array_equal(got[0], plain[2])
    np.testing.assert_array_equal(got[1], plain[1])


def test_different_coefficients_are_not_shared():
    other = dict(COEFFS)
    other[(1, 1)] = 2.0000001e-3
    raw = _serialize(_slits([_slit_model(1.0, COEFFS), _slit_model(1.0, other)]))
    af, tree, total = asdftree.open_shared(raw)
    with af:
        wcs = [s["meta"]["wcs"] for s in tree["slits"]]
        assert wcs[0] is not wcs[1]
        for a, b in zip(_evaluate(tree), _plain(raw)):
            np.testing.assert_array_equal(a, b)


def test_alias_of_a_whole_transform_across_slits_falls_back_to_one_parse():
    shared = _slit_model(1.0, COEFFS)   # the same object in two slits: asdf anchors a block node
    raw = _serialize(_slits([shared, _slit_model(3.0, COEFFS), shared]))
    assert asdftree._split_slits(raw) is None
    af, tree, total = asdftree.open_shared(raw)
    with af:
        for a, b in zip(_evaluate(tree), _plain(raw)):
            np.testing.assert_array_equal(a, b)


def test_tree_without_slits_list():
    raw = _serialize({"meta": {"wcs": _slit_model(0.5, COEFFS)}})
    assert asdftree._split_slits(raw) is None
    af, tree, total = asdftree.open_shared(raw)
    with af:
        x = np.arange(4.0)
        np.testing.assert_array_equal(tree["meta"]["wcs"](x, x), _slit_model(0.5, COEFFS)(x, x))


def test_sharer_keeps_types_and_tags_apart():
    from asdf.tagged import TaggedDict

    a = TaggedDict({"v": 1}, "tag:x/a-1.0.0")
    b = TaggedDict({"v": 1.0}, "tag:x/a-1.0.0")     # 1 and 1.0 must not merge
    c = TaggedDict({"v": 1}, "tag:x/b-1.0.0")       # other tag
    d = TaggedDict({"v": 1}, "tag:x/a-1.0.0")       # equal to a
    tree = {"l": [a, b, c, d]}
    sharer = asdftree.Sharer()
    sharer.share(tree)
    assert tree["l"][3] is a and tree["l"][1] is b and tree["l"][2] is c
    assert sharer.replaced == 1


def _gwcs(transform):
    gwcs = pytest.importorskip("gwcs")
    cf = gwcs.coordinate_frames
    return gwcs.WCS([(cf.Frame2D(name="detector"), transform), (cf.Frame2D(name="out"), None)])


def test_equal_transform_blocks_parsed_once():
    """gwcs steps: each distinct ``transform:`` block is parsed once (equal coefficients in other
    binary blocks included); a block tied to the rest of its slit by an anchor stays in place."""
    other = dict(COEFFS)
    other[(1, 1)] = 2.0000001e-3
    tied = _slit_model(5.0, COEFFS)
    slits = _slits([_gwcs(_slit_model(1.0, COEFFS)), _gwcs(_slit_model(2.0, COEFFS)),
                    _gwcs(_slit_model(1.0, dict(COEFFS))), _gwcs(_slit_model(1.0, other)), _gwcs(tied)])
    slits["slits"][4]["meta"]["again"] = tied       # asdf anchors the transform, aliases it here
    raw = _serialize(slits)
    head, docs, total, blocks = asdftree._split_slits(raw)
    with asdf.open(io.BytesIO(blocks), lazy_load=True, lazy_tree=True) as af:
        sharer = asdftree.Sharer(asdftree._block_digest(af))
        cache = asdftree._BlockCache(sharer)
        reduced = [cache.reduce(d) for d in docs]
    assert [d.count(asdftree._PLACEHOLDER.encode()) for d in reduced] == [1, 1, 1, 1, 0]
    assert len(sharer.blocks) == 3                   # slit 2 = slit 0: no parse
    af, tree, total = asdftree.open_shared(raw)
    with af:
        steps = [s["meta"]["wcs"].pipeline[0].transform for s in tree["slits"]]
        assert steps[0] is steps[2] and steps[0] is not steps[3] and steps[0] is not steps[1]
        assert tree["slits"][4]["meta"]["again"] is steps[4]
        _assert_evaluates_as_plain(tree["slits"], raw)


def _assert_evaluates_as_plain(slits, raw):
    """Each slit's gwcs gives exactly what the same slit of a plain asdf read gives."""
    x, y = np.meshgrid(np.linspace(-2, 3, 7), np.linspace(-1, 1, 5))
    got = [np.asarray(s["meta"]["wcs"](x, y)) for s in slits]
    with asdf.open(io.BytesIO(raw), lazy_load=False) as plain:
        want = [np.asarray(s["meta"]["wcs"](x, y)) for s in plain.tree["slits"]]
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_wcs_only():
    """Only meta.wcs of each slit is parsed, unless it aliases an anchor of the rest of the slit."""
    tied = _slit_model(5.0, COEFFS)
    tree = _slits([_gwcs(_slit_model(1.0, COEFFS)), _gwcs(tied)])
    tree["slits"][1] = {"a_first": tied, **tree["slits"][1]}   # the anchor comes before meta
    tree["slits"][0]["meta"]["other"] = "not parsed"
    raw = _serialize(tree)
    af, got, total = asdftree.open_shared(raw, wcs_only=True)
    with af:
        assert got["slits"][0] == {"meta": {"wcs": got["slits"][0]["meta"]["wcs"]}}
        assert got["slits"][1]["a_first"] is got["slits"][1]["meta"]["wcs"].pipeline[0].transform
        _assert_evaluates_as_plain(got["slits"], raw)


def test_a_gwcs_is_read_with_its_own_plugins_only(tmp_path):
    """Reading an official `_cal`'s gwcs imports only the asdf plugins of asdftree._PLUGINS (not
    specutils, ndcube, stpipe or the datamodel schemas, ~50 MB and 1 s per process), and leaves
    asdf's own configuration as it was (validation on read, every installed plugin)."""
    import subprocess
    import sys

    from test_realdata import CEERS

    code = ("import sys; from webbspec.io import realdata; m = realdata.read_stage2(sys.argv[1]); "
            "assert 'WAVELENGTH' in m.slits[0]; print(sorted(p for p in ('specutils', 'ndcube', "
            "'stpipe', 'stdatamodels.jwst.datamodels') if p in sys.modules))")
    out = subprocess.run([sys.executable, "-P", "-c", code, CEERS[0]], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    from webbspec.io import realdata

    realdata.read_stage2(CEERS[0])
    assert asdf.get_config().validate_on_read is True
    packages = {e.package_name for e in asdf.get_config().extensions}
    assert "asdf-astropy" in packages and len(packages) > 1
