"""The simulator's FS calibration references open as their official stdatamodels classes (strict
validation), and our readers see what the official models hold."""

import os
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from webbspec.simulate import fs_calrefs
from webbspec.steps import _extract_refs, pathloss, photom
from webbspec.steps._flatref import open_flat

pytestmark = pytest.mark.official

CLASSES = {"fflat": "NirspecFlatModel", "sflat": "NirspecFlatModel", "dflat": "NirspecFlatModel",
           "pathloss": "PathlossModel", "photom": "NrsFsPhotomModel", "area": "NirspecSlitAreaModel",
           "apcorr": "NrsFsApcorrModel"}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    d = tmp_path_factory.mktemp("calrefs")
    det = SimpleNamespace(name="NRS1", y0=896, x0=0)
    flat = np.full((16, 32), 1.02, np.float32)
    out = fs_calrefs.write_all(str(d), [det], {"NRS1": flat})
    return {rt: os.path.join(d, entries[0]["file"]) for rt, entries in out.items()}


@pytest.mark.parametrize("reftype", sorted(CLASSES))
def test_opens_as_official_class_with_strict_validation(written, reftype):
    from stdatamodels.jwst import datamodels as dm

    with warnings.catch_warnings():
        warnings.simplefilter("error")            # a validation warning is a failure
        with dm.open(written[reftype], strict_validation=True) as m:
            assert type(m).__name__ == CLASSES[reftype]
            m.validate()
            assert m.meta.reftype == reftype.upper() and m.meta.instrument.name == "NIRSPEC"
            for key in ("author", "pedigree", "useafter", "description"):
                assert getattr(m.meta, key)


def test_official_models_hold_what_our_readers_read(written):
    from stdatamodels.jwst import datamodels as dm

    with dm.open(written["dflat"]) as m:
        assert m.data.shape == (1, 2048, 2048) and m.data[0, 896, 5] == pytest.approx(1.02)
        ref = open_flat(written["dflat"], "dflat")
        sci, dq, err = ref.region(890, 0, 12, 4)
        np.testing.assert_array_equal(sci[0], m.data[0, 890:902, 0:4])
        np.testing.assert_array_equal(err, m.err[890:902, 0:4])
        ref.close()
    with dm.open(written["sflat"]) as m:
        ref = open_flat(written["sflat"], "sflat")
        wl, val, err = ref.fast("S400A1", True)
        row = list(np.char.strip(m.flat_table["slit_name"])).index("S400A1")
        np.testing.assert_array_equal(val, m.flat_table["data"][row][:m.flat_table["nelem"][row]])
        ref.close()
    with dm.open(written["pathloss"]) as m:
        ours = pathloss.read_pathloss(written["pathloss"])
        assert sorted(ours) == sorted(a.name for a in m.apertures)
        ap = m.apertures[0]
        np.testing.assert_array_equal(ours[ap.name]["ps"], ap.pointsource_data)
        assert ours[ap.name]["ps_wcs"]["CRVAL3"] == pytest.approx(ap.pointsource_wcs.crval3)
    with dm.open(written["area"]) as m:
        areas = photom.read_area(written["area"])
        assert areas == {str(s).strip(): pytest.approx(float(a)) for s, a in m.area_table}
    with dm.open(written["apcorr"]) as m:
        tabs = _extract_refs.read_apcorr(written["apcorr"])
        row = m.apcorr_table[0]
        wave, size, corr, unit = tabs[("F290LP", "G395M", str(row["slit"]).strip())]
        assert row["apcorr"].shape == (size.shape[0], wave.size, 2) and m.sizeunit == unit == "pixels"
        np.testing.assert_allclose(corr, row["apcorr"][..., 1])           # pixel phase 0.5
