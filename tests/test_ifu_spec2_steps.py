"""NIRSpec IFU Stage 2 steps on the simulated IFU exposure: msa_flagging (failed-open MSA shutters
over the IFU image), pathloss without an IFU reference, and the references the chain picks."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from nrs_ifu_setup import ifu_assigned, ifu_refs  # noqa: E402

from webbspec import dq as dqbits  # noqa: E402
from webbspec.simulate import nrs_ifu_calrefs  # noqa: E402
from webbspec.steps import msa_flagging, pathloss  # noqa: E402

FAILED_OPEN = dqbits.FLAGS["MSA_FAILED_OPEN"]


@pytest.fixture(scope="module")
def msaoper(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("msaoper") / "nirspec_ifu_msaoper_0001.json")
    nrs_ifu_calrefs.write_msaoper(path)
    return path


def test_msa_flagging_flags_the_failed_open_shutters_on_the_ifu_image(msaoper):
    """The simulated msaoper's two failed-open shutters (Q1 and Q3) disperse across NRS1 in two
    bands of rows ~800 pixels apart (their MSA y positions differ by the quadrant gap): only DQ
    changes, only the MSA_FAILED_OPEN bit, in exactly two bands each a slit's height (<= 12 rows)
    wide; the failed-closed shutter flags nothing."""
    model = ifu_assigned()
    refs = dict(ifu_refs()[1], msaoper=msaoper)
    out = msa_flagging.run(model, refs)
    assert out.primary["S_MSAFLG"] == "COMPLETE"
    dq = out.slits[0]["DQ"]
    flagged = (dq & FAILED_OPEN) != 0
    assert np.array_equal(dq & ~np.uint32(FAILED_OPEN), model.slits[0].get("DQ", np.zeros_like(dq)) & ~np.uint32(FAILED_OPEN))
    rows = np.flatnonzero(flagged.any(axis=1))
    bands = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    assert len(bands) == 2, [(b[0], b[-1]) for b in bands]
    assert all(b.size <= 12 for b in bands) and 700 < bands[1][0] - bands[0][-1] < 900
    assert flagged.any(axis=0).sum() > 1500                      # a whole spectrum long on the detector
    # the failed-closed shutter alone: nothing flagged
    closed = str(msaoper).replace(".json", "_closed.json")
    nrs_ifu_calrefs.write_msaoper(closed, failed_open=(), failed_closed=nrs_ifu_calrefs.FAILED_CLOSED)
    none = msa_flagging.run(model, dict(refs, msaoper=closed))
    assert not ((none.slits[0]["DQ"] & FAILED_OPEN) != 0).any()


def test_msa_flagging_without_msaoper_is_skipped():
    model = ifu_assigned()
    out = msa_flagging.run(model, dict(ifu_refs()[1], msaoper="N/A"))
    assert out.primary["S_MSAFLG"] == "SKIPPED"


def test_pathloss_without_an_ifu_reference_is_skipped():
    """No IFU pathloss reference (the simulated forward model has no slit losses): N/A skips the
    step and records SKIPPED, as the official step with override_pathloss N/A; data unchanged."""
    model = ifu_assigned()
    out = pathloss.run(model, {"pathloss": "N/A"})
    assert out.primary["S_PTHLOS"] == "SKIPPED"
    np.testing.assert_array_equal(out.slits[0]["SCI"], model.slits[0]["SCI"])
