"""Steps run from Python on a file as on a model (references from the store beside the file)."""

import numpy as np

from webbspec.io import datamodels
from webbspec.io.refs import bestrefs
from webbspec.simulate import simulate
from webbspec.steps import assign_wcs, srctype


def test_run_on_a_file_equals_run_on_a_model(tmp_path):
    info = simulate("nrs_fs", str(tmp_path / "prog"))
    rate = info["rates"][0]
    from_file = assign_wcs.run(rate)
    refs = bestrefs(datamodels.read_header(rate), assign_wcs.REFTYPES, str(tmp_path / "prog" / "refs"), None)
    from_model = assign_wcs.run(datamodels.read(rate), refs)
    assert from_file.primary["S_WCS"] == "COMPLETE"
    for a, b in zip(from_file.slits, from_model.slits):
        for name in b.arrays:
            np.testing.assert_array_equal(a[name], b[name])
    # a step without references runs on a file too
    assert srctype.run(rate).slits[0].header["SRCTYPE"] in ("POINT", "EXTENDED")
