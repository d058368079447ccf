"""The simulated NIRSpec MOS program (webbspec simulate nrs_mos) in the official formats: every
reference opens with strict validation as its official stdatamodels class, the official readers
see our msaoper and MSA files as we wrote them, and the official AssignWcsStep + Extract2dStep
(offline, tests/official/nrs_mos_wcs_official.py) on our `_msa.fits` + `_rate` give the slitlets
msa.read_slitlets gives, with the cutouts and wavelengths of mos.exposure_slitlets."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits

from webbspec.instruments.nirspec import mos, msa
from webbspec.io.refs import bestrefs
from webbspec.simulate import simulate
from webbspec.simulate import nirspec_mos as nm

pytestmark = pytest.mark.official
pytest.importorskip("jwst")

HERE = os.path.dirname(os.path.abspath(__file__))
OPTICAL = ("fpa", "camera", "collimator", "disperser", "fore", "msa", "ote", "wavelengthrange")
CLASSES = {"fpa": "FPAModel", "camera": "CameraModel", "collimator": "CollimatorModel",
           "disperser": "DisperserModel", "fore": "FOREModel", "msa": "MSAModel", "ote": "OTEModel",
           "wavelengthrange": "WavelengthrangeModel", "fflat": "NirspecQuadFlatModel", "sflat": "NirspecFlatModel",
           "dflat": "NirspecFlatModel", "wavecorr": "WaveCorrModel", "pathloss": "PathlossModel",
           "barshadow": "BarshadowModel", "photom": "NrsMosPhotomModel", "area": "NirspecMosAreaModel",
           "apcorr": "NrsMosApcorrModel"}


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    root = tmp_path_factory.mktemp("mos_official") / "p"
    info = simulate("nrs_mos", str(root), seed=1)
    refs = bestrefs(fits.getheader(info["rates"][0]), tuple(CLASSES) + ("msaoper", "extract1d"),
                    os.path.join(root, "refs"))
    return root, info, refs


@pytest.mark.parametrize("reftype", sorted(CLASSES))
def test_reference_opens_as_official_class_with_strict_validation(prog, reftype):
    from stdatamodels.jwst import datamodels as dm

    _, _, refs = prog
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # a validation warning is a failure
        with dm.open(refs[reftype], strict_validation=True) as m:
            assert type(m).__name__ == CLASSES[reftype]
            m.validate()
            assert m.meta.instrument.name == "NIRSPEC" and str(m.meta.reftype).upper() == reftype.upper()
            for key in ("author", "pedigree", "useafter", "description"):
                assert getattr(m.meta, key)


def test_official_readers_of_the_json_references_and_the_msa_file(prog):
    from jwst.assign_wcs.nirspec import get_open_msa_slits
    from jwst.msaflagopen.msaflag_open import get_failed_open_shutters

    root, info, refs = prog
    dets, plan, _ = nm.plan_program("small", None, 1, os.path.dirname(refs["msa"]))
    got = [(s["Q"], s["x"], s["y"]) for s in get_failed_open_shutters(refs["msaoper"])]
    assert got == [tuple(k) for k in plan.failed_open]
    with open(refs["extract1d"]) as fh:
        (ap,) = json.load(fh)["apertures"]
    assert ap["id"] == "ANY" and ap["region_type"] == "target"
    path = os.path.join(root, nm.msa_name(1))
    for dither in (1, 2, 3):
        theirs = get_open_msa_slits("1234", path, 1, dither, slit_y_range=(-0.55, 0.55))
        ours = msa.read_slitlets(path, 1, dither, nm.PROGRAM)
        assert [(t.name, t.source_id, t.source_name, t.shutter_state, t.xcen, t.ycen, t.quadrant) for t in theirs] == \
            [(o.slitlet_id, o.source_id, o.source_name, o.shutter_state, o.xcen, o.ycen, o.quadrant) for o in ours]
        assert np.allclose([t.source_ypos for t in theirs], [o.source_ypos for o in ours], atol=1e-7)


@pytest.mark.parametrize("which", [1, 5])          # NRS1 dither point 2, NRS2 dither point 3
def test_official_assign_wcs_gives_our_slitlets(prog, which, tmp_path):
    root, info, refs = prog
    rate = info["rates"][which]
    optical = {k: refs[k] for k in OPTICAL}
    (tmp_path / "refs.json").write_text(json.dumps(optical))
    res = subprocess.run([sys.executable, os.path.join(HERE, "nrs_mos_wcs_official.py"), rate,
                          str(tmp_path / "refs.json"), str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    theirs = json.loads((tmp_path / "slits.json").read_text())
    off = np.load(tmp_path / "wcs.npz")
    header = {**dict(fits.getheader(rate)), **dict(fits.getheader(rate, 1))}
    expected = {s.slitlet_id: s for s in msa.exposure_slitlets(header, rate)}
    assert sorted(int(t["name"]) for t in theirs) == sorted(expected)
    for t in theirs:
        s = expected[int(t["name"])]
        assert (t["source_id"], t["source_name"], t["source_alias"], t["shutter_state"], t["quadrant"], t["xcen"],
                t["ycen"]) == (s.source_id, s.source_name, s.source_alias, s.shutter_state, s.quadrant, s.xcen, s.ycen)
        assert np.allclose([t["source_xpos"], t["source_ypos"], t["stellarity"]],
                           [s.source_xpos, s.source_ypos, s.stellarity], atol=1e-7)
    boxes = mos.exposure_slitlets(header, fits.getdata(rate, "SCI").shape, refs, rate)
    assert [b.name for b in boxes] == [str(t["name"]) for t in theirs]
    for b, t in zip(boxes, theirs):
        assert (b.xstart + 1, b.ystart + 1, b.shape[1], b.shape[0]) == \
            (t["xstart"], t["ystart"], t["xsize"], t["ysize"])
        lam = b.arrays["WAVELENGTH"]
        ok = np.isfinite(lam)
        assert np.abs(lam[ok] - off[f"{b.name}_lam"][ok].astype(np.float32)).max() < 1e-6    # um
