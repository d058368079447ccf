"""extract_2d: slit cutouts of the assign_wcs output with the fixed-slit keywords."""

import numpy as np
import pytest

from webbspec.io import datamodels, refs
from webbspec.errors import InputError
from webbspec.simulate import simulate
from webbspec.steps import assign_wcs, extract_2d


@pytest.fixture(scope="module")
def wcs(tmp_path_factory):
    root = tmp_path_factory.mktemp("x2d")
    info = simulate("nrs_fs", str(root), seed=4)
    model = datamodels.read(info["rates"][2])
    r = refs.bestrefs(model.primary, assign_wcs.REFTYPES, str(root / "refs"))
    return assign_wcs.run(model, r)


def test_cutouts_and_keywords(wcs):
    out = extract_2d.run(wcs, {})
    assert out.layout == "multi" and out.primary["S_EXTR2D"] == "COMPLETE"
    assert out.primary["DATAMODL"] == "MultiSlitModel" and "SLITS" not in out.tables
    assert [s.name for s in out.slits] == ["S200A1", "S200A2", "S400A1", "S1600A1", "S200B1"]
    assert [s.header["SOURCEID"] for s in out.slits] == [1, 12, 13, 14, 15]
    img = wcs.slits[0]
    for s in out.slits:
        h = s.header
        y0, x0 = h["SLTSTRT2"] - 1, h["SLTSTRT1"] - 1
        assert s.shape == (h["SLTSIZE2"], h["SLTSIZE1"])
        for name in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "WAVELENGTH", "XI", "ETA"):
            np.testing.assert_array_equal(s[name], img[name][y0:y0 + s.shape[0], x0:x0 + s.shape[1]])
        assert (h["DISPAXIS"], h["SPORDER"]) == (1, 1)
        assert (h["WSREFRA"], h["WSREFDE"]) == (wcs.primary["RA_REF"], wcs.primary["DEC_REF"])
    # every slit pixel of the frame is in exactly one cutout
    assert sum(np.isfinite(s["WAVELENGTH"]).sum() for s in out.slits) == np.isfinite(img["WAVELENGTH"]).sum()
    prim = out.slits[0].header
    row = wcs.tables["SLITS"][0]           # the target's slit position that assign_wcs found
    assert (prim["SRCXPOS"], prim["SRCYPOS"]) == (row["SRCXPOS"], row["SRCYPOS"])
    assert abs(prim["SRCXPOS"]) == pytest.approx(0.01 / 0.2, rel=0.02)
    assert prim["SRCYPOS"] == pytest.approx(0.9 / 3.2, rel=0.02)
    assert (prim["SRCRA"], prim["SRCDEC"]) == (wcs.primary["TARG_RA"], wcs.primary["TARG_DEC"])
    assert out.slits[1].header["SRCXPOS"] == 0.0 and "SRCRA" not in out.slits[1].header


def test_selection_and_errors(wcs):
    assert [s.name for s in extract_2d.run(wcs, {}, slit_names=["S400A1"]).slits] == ["S400A1"]
    assert [s.name for s in extract_2d.run(wcs, {}, source_ids=[1, 14]).slits] == ["S200A1", "S1600A1"]
    with pytest.raises(InputError, match="no slit selected"):
        extract_2d.run(wcs, {}, slit_names=["S200B2"])
    raw = wcs.copy()
    raw.tables = {}
    with pytest.raises(InputError, match="assign_wcs"):
        extract_2d.run(raw, {})


def test_round_trip_through_fits(wcs, tmp_path):
    out = extract_2d.run(datamodels.read(datamodels.write(wcs, str(tmp_path / "w.fits"))), {})
    back = datamodels.read(datamodels.write(out, str(tmp_path / "x.fits")))
    assert [s.name for s in back.slits] == [s.name for s in out.slits]
    assert back.slits[0].header["SOURCEID"] == 1
