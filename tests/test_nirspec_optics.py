"""The NIRSpec optical model (instruments/nirspec/optics.py) on the simulated optical references."""

import os
import time

import numpy as np
import pytest

from webbspec.errors import InputError
from webbspec.instruments.nirspec import fs
from webbspec.instruments.nirspec.optics import Optics
from webbspec.simulate import nirspec_optics_refs as design

HEADER = {"EXP_TYPE": "NRS_FIXEDSLIT", "DETECTOR": "NRS1", "FILTER": "F290LP", "GRATING": "G395M",
          "SUBARRAY": "FULL", "GWA_XTIL": 0.3527, "GWA_YTIL": 0.1321, "RA_REF": 53.16, "DEC_REF": -27.79,
          "ROLL_REF": 138.5, "V2_REF": 321.3, "V3_REF": -478.6, "VA_SCALE": 1.00003, "FXD_SLIT": "S200A1",
          "XOFFSET": 0.01, "YOFFSET": 0.3, "V3I_YANG": -0.35, "VPARITY": -1}


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("optics")
    names = design.write_optical_refs(str(d))
    return {rt: str(d / f) for rt, f in names.items()}


def test_files_open_as_the_official_models(refs):
    from stdatamodels.jwst import datamodels as dm

    want = {"fpa": "FPAModel", "camera": "CameraModel", "collimator": "CollimatorModel",
            "disperser": "DisperserModel", "fore": "FOREModel", "msa": "MSAModel", "ote": "OTEModel",
            "wavelengthrange": "WavelengthrangeModel"}
    for rt, path in refs.items():
        with dm.open(path) as m:
            assert type(m).__name__ == want[rt], rt
            assert m.meta.reftype.lower() == rt and m.meta.instrument.name == "NIRSPEC"
            assert m.meta.author and m.meta.pedigree and m.meta.useafter and m.meta.description
    with dm.open(refs["fore"]) as m:          # 3 inputs (x, y, wavelength) -> 2, explicit inverse
        assert (m.model.n_inputs, m.model.n_outputs) == (3, 2)
        assert (m.model.inverse.n_inputs, m.model.inverse.n_outputs) == (3, 2)
    with dm.open(refs["msa"]) as m:
        assert len(m.Q5.data) == 5 and all(len(getattr(m, f"Q{i}").data) > 0 for i in range(1, 5))


@pytest.mark.parametrize("detector", ["NRS1", "NRS2"])
def test_round_trip_slit_detector_slit(refs, detector):
    o = Optics(refs, dict(HEADER, DETECTOR=detector))
    rng = np.random.default_rng(3)
    for slit in fs.SLIT_NAMES:
        ys, lam = rng.uniform(-0.55, 0.55, 2000), rng.uniform(2.9e-6, 5.05e-6, 2000)
        x, y = o.slit_to_detector(slit, 0.0, ys, lam)
        ys2, lam2 = o.detector_to_slit(slit, x, y)
        x2, y2 = o.slit_to_detector(slit, 0.0, ys2, lam2)
        assert np.all(np.isfinite(x2))
        assert np.abs(x2 - x).max() < 1e-6 and np.abs(y2 - y).max() < 1e-6, slit


def test_layout_covers_both_detectors_and_slits_differ(refs):
    x1 = {}
    for det in ("NRS1", "NRS2"):
        o = Optics(refs, dict(HEADER, DETECTOR=det))
        x, y = o.slit_to_detector("S200A1", 0.0, 0.0, np.array([2.87e-6, 5.10e-6]))
        x1[det] = x
    assert 0 < x1["NRS1"][0] < 200 and x1["NRS1"][1] > 2048          # blue end on NRS1
    assert x1["NRS2"][0] < 0 and 1000 < x1["NRS2"][1] < 2048          # red end on NRS2
    o = Optics(refs, HEADER)
    rows = [o.slit_to_detector(s, 0.0, 0.0, 3.5e-6)[1] for s in fs.SLIT_NAMES]
    assert len({int(r) // 20 for r in rows}) == 5                      # five separate traces


def test_sky_and_source_position(refs):
    o = Optics(refs, HEADER)
    v2, v3 = o.slit_to_v2v3("S200A1", 0.0, 0.0, 4e-6)
    assert abs(v2 - 321.3) < 1e-9 and abs(v3 + 478.6) < 1e-9      # the MSA origin is (V2_REF, V3_REF)
    ra, dec = o.v2v3_to_sky(321.3, -478.6)
    assert abs((ra - 53.16) * np.cos(np.radians(dec))) * 3.6e6 < 0.01 * 1e3   # VA scale about the ref point
    xs, ys = o.v2v3_to_slit("S400A1", *o.slit_to_v2v3("S400A1", 0.2, -0.3, 3e-6), 3e-6)
    assert abs(xs - 0.2) < 1e-9 and abs(ys + 0.3) < 1e-9


def test_full_frame_coordinates(refs):
    """Every slit of a full frame gets coordinates (the time is printed; bench/ measures it)."""
    shape = (2048, 2048)
    fs.exposure_coordinates(HEADER, shape, refs)        # first call reads the files
    t = time.perf_counter()
    arrays, boxes = fs.exposure_coordinates(HEADER, shape, refs)
    dt = time.perf_counter() - t
    n = int(np.isfinite(arrays["WAVELENGTH"]).sum())
    print(f"full-frame assign_wcs arrays, 5 slits, {n} pixels: {dt:.3f} s")
    assert [b.name for b in boxes] == list(fs.SLIT_NAMES)
    sub = fs.exposure_coordinates(dict(HEADER, SUBARRAY="SUBS200A1"), shape, refs)[1]
    assert [b.name for b in sub] == ["S200A1"]


def test_source_ids_and_open_slits():
    assert [fs.source_id(s, "S200A1") for s in fs.SLIT_NAMES] == [1, 12, 13, 14, 15]
    assert fs.source_id("S200A1", "S400A1") == 31 and fs.source_id("S400A1", "S400A1") == 1
    assert fs.open_slits("FULL") == fs.open_slits("ALLSLITS") == fs.SLIT_NAMES
    assert fs.open_slits("SUB2048") == ("S1600A1",)


def test_bad_references(refs, tmp_path):
    swapped = dict(refs, camera=refs["collimator"])
    with pytest.raises(InputError, match="not a camera reference") as err:
        Optics(swapped, HEADER)
    assert refs["collimator"] in str(err.value)
    with pytest.raises(InputError, match="does not exist"):
        Optics(dict(refs, fpa=str(tmp_path / "none.asdf")), HEADER)
    junk = tmp_path / "junk.asdf"
    junk.write_text("not asdf")
    with pytest.raises(InputError, match="junk.asdf"):
        Optics(dict(refs, ote=str(junk)), HEADER)
    with pytest.raises(InputError, match="PRISM"):
        Optics(refs, dict(HEADER, GRATING="PRISM"))
    with pytest.raises(InputError, match="msa"):
        Optics(dict(refs, msa="N/A"), HEADER)
    assert os.path.exists(refs["fpa"])
