"""Test-wide setup.

* The bench fixtures (bench/realprogram.py builds real-slit MOS programs) are importable by the
  tests without being part of the package.
* An official test's offline CRDS setup (CRDS_PATH to an empty directory) must not outlive it: the
  workflow takes $CRDS_PATH as its reference store when a program has no refs/, so a leftover one
  would fail every later run of a program without references.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

_CRDS_ENV = {k: os.environ.get(k) for k in ("CRDS_PATH", "CRDS_SERVER_URL")}


@pytest.fixture(autouse=True)
def _crds_environment_restored():
    yield
    for key, value in _CRDS_ENV.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
