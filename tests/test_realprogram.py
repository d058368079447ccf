"""The real-slit MOS program builder (webbspec.realprogram): files, ids, scales, hot-pixel truth."""

import json
import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from webbspec.io import realdata
import realprogram


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    out = tmp_path_factory.mktemp("rp")
    return out, realprogram.build_mos_program(out, 3, seed=1, inject_hot=True)


def test_files_open_as_official_multislit(program):
    from stdatamodels.jwst import datamodels as dm

    out, info = program
    assert len(info["cal"]) == 3
    for path in info["cal"]:
        with dm.open(path) as m:
            assert isinstance(m, dm.MultiSlitModel) and len(m.slits) == 3
            assert [s.source_id for s in m.slits] == [933, 934, 935]
            assert len({s.name for s in m.slits}) == 3 and len({s.source_name for s in m.slits}) == 3
            assert all(s.meta.wcs is not None for s in m.slits)
    with open(info["asn"]) as f:
        asn = json.load(f)
    assert asn["asn_type"] == "spec3" and "{source_id}" in asn["products"][0]["name"]
    assert [m["expname"] for m in asn["products"][0]["members"]] == [os.path.basename(p) for p in info["cal"]]
    # our reader sees the same slits
    rows = realdata.list_slits(info["cal"][0])
    assert [r["SOURCEID"] for r in rows] == [933, 934, 935]
    assert [r["SLTNAME"] for r in rows] == ["138", "139", "140"]


def test_scaled_data_and_hot_truth(program):
    out, info = program
    truth = Table.read(info["truth"], format="ascii.ecsv")
    assert len(truth) == 9 == info["hot"]
    # one nod per source, 3 pixels each
    for sid in info["sources"]:
        rows = truth[truth["source_id"] == sid]
        assert len(rows) == 3 and len(set(rows["nod"])) == 1
    assert len(set(zip(truth["file"], truth["extver"], truth["y"], truth["x"]))) == 9
    src = realprogram.ceers_files()
    for nod, path in enumerate(info["cal"]):
        with fits.open(src[nod]) as o, fits.open(path) as h:
            for k, scale in enumerate(info["scales"]):
                ver = k + 1
                sci = h["SCI", ver].data.astype(float)
                exp = o["SCI"].data.astype(float) * scale
                hot = truth[(truth["file"] == os.path.basename(path)) & (truth["extver"] == ver)]
                for r in hot:   # injected: + 100 x ERR (of the scaled pixel)
                    assert sci[r["y"], r["x"]] - exp[r["y"], r["x"]] == pytest.approx(100 * r["err"], rel=1e-5)
                    sci[r["y"], r["x"]] = exp[r["y"], r["x"]]
                np.testing.assert_allclose(sci, exp, rtol=1e-6, equal_nan=True)
                np.testing.assert_allclose(h["ERR", ver].data, o["ERR"].data * scale, rtol=1e-6, equal_nan=True)
                np.testing.assert_allclose(h["VAR_RNOISE", ver].data, o["VAR_RNOISE"].data * scale ** 2,
                                           rtol=1e-5, equal_nan=True)
                assert h["SCI", ver].header["SOURCEID"] == 933 + k


def test_fast_build_is_the_same_program(tmp_path, program):
    """Same seed, the fast path (serialized slit repeated): same ids, data, truth and gwcs."""
    from stdatamodels.jwst import datamodels as dm

    _, info = program
    again = realprogram.build_mos_program(tmp_path, 3, seed=1, inject_hot=True, fast=True)
    assert again["scales"] == info["scales"]
    a, b = Table.read(again["truth"]), Table.read(info["truth"])
    assert list(a["x"]) == list(b["x"]) and list(a["added"]) == list(b["added"])
    y, x = np.mgrid[0:25, 0:341]
    with dm.open(again["cal"][1]) as fast, dm.open(info["cal"][1]) as slow:
        assert fast.slits[0].meta.wcs is not fast.slits[1].meta.wcs   # one gwcs per slit
        for f, s in zip(fast.slits, slow.slits):
            assert (f.source_id, f.name, f.source_name) == (s.source_id, s.name, s.source_name)
            np.testing.assert_array_equal(f.data, s.data)
            np.testing.assert_array_equal(np.array(f.meta.wcs(x, y)), np.array(s.meta.wcs(x, y)))
