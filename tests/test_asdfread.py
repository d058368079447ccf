"""webbspec.io.asdfread against the asdf library on the optical-model references we write (every
transform tag, array and structured MSA table the same), and its refusals (left to asdf)."""

import warnings

import numpy as np
import pytest

from webbspec.instruments import transforms
from webbspec.io import asdfread


def _same(a, b, path=""):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert np.array_equal(np.asarray(a), np.asarray(b)), path
        return
    if isinstance(b, dict):
        ta, tb = getattr(a, "_tag", ""), getattr(b, "_tag", "")
        assert ta == tb or "/core/" in ta, (path, ta, tb)       # asdf itself converts core/* nodes
        assert set(a) == set(b), path
        for k in b:
            _same(a[k], b[k], f"{path}/{k}")
    elif isinstance(b, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    from webbspec.simulate.nirspec_optics_refs import write_optical_refs

    d = tmp_path_factory.mktemp("optics")
    return {rt: str(d / name) for rt, name in write_optical_refs(str(d), "small").items()}


def test_trees_equal_asdfs(refs):
    import asdf

    for rt, path in refs.items():
        mine = asdfread.read_tree(path)
        with transforms._core_only(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with asdf.open(path, memmap=False, lazy_load=False) as af:
                theirs = transforms._materialize(af.tree)
        _same(mine, theirs, rt)
    msa = asdfread.read_tree(refs["msa"])
    q5 = next(v for k, v in msa.items() if k == "Q5")["data"]
    assert q5.dtype.names[:3] == ("NO", "XC", "YC") and len(q5) >= 5


def test_what_it_leaves_to_asdf(tmp_path):
    p = tmp_path / "x.fits"
    p.write_bytes(b"SIMPLE  =                    T")
    with pytest.raises(asdfread.Unsupported, match="not an ASDF file"):
        asdfread.read_tree(str(p))
