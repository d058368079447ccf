"""The shared NIRSpec MOS recipe (../shared/recipes/official-nrs-mos/) run as scripts in a test
directory: optical and calibration references in the official formats, an MSA metadata file
and a simulated `_rate` (their official pipeline renders it). Tests skip when it is absent."""

import os
import subprocess
import sys

import pytest

RECIPE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                       "shared", "recipes", "official-nrs-mos"))
OPTICAL = ("fpa", "camera", "collimator", "disperser", "wavelengthrange", "msa", "fore", "ote")
MSA_NAME = "jw09999001001_01_msa.fits"
RATE_NAME = "jw09999001001_03101_00001_nrs1_rate.fits"


def run(script, *args, cwd):
    """Run recipe ``script`` in ``cwd`` (where it writes); fail the test with its stderr tail."""
    if not os.path.isdir(RECIPE):
        pytest.skip(f"the MOS recipe is not here: {RECIPE}")
    env = dict(os.environ, CRDS_PATH=os.path.join(str(cwd), "crds_empty"))
    res = subprocess.run([sys.executable, os.path.join(RECIPE, script), *map(str, args)], cwd=str(cwd),
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, f"{script}: {res.stderr[-3000:]}"
    return res.stdout
