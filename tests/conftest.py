"""Test-wide setup.

* The bench fixtures (bench/realprogram.py builds real-slit MOS programs) are importable by the
  tests without being part of the package.
* An official test's offline CRDS setup (CRDS_PATH to an empty directory) must not outlive it: the
  workflow takes $CRDS_PATH as its reference store when a program has no refs/, so a leftover one
  would fail every later run of a program without references.
* Disk: a simulated program is 0.1-3 GB, and CI's disk is shared, so a test's directories do not
  outlive it. pyproject's tmp_path_retention_policy removes a passing test's tmp_path; the
  directories a module's fixtures made with tmp_path_factory are removed when the module ends,
  unless one of its tests failed (kept for the post-mortem) or their name starts with
  ``session_`` (shared by several modules, e.g. fs_program's simulated program: removed by pytest
  at the end of the session).
"""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

SESSION_PREFIX = "session_"
_CRDS_ENV = {k: os.environ.get(k) for k in ("CRDS_PATH", "CRDS_SERVER_URL")}


@pytest.fixture(autouse=True, scope="module")
def _module_directories_removed(request, tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    before, failed = set(base.iterdir()), request.session.testsfailed
    yield
    if request.session.testsfailed == failed:
        for made in set(base.iterdir()) - before:
            if not made.name.startswith(SESSION_PREFIX):
                shutil.rmtree(made, ignore_errors=True)


@pytest.fixture(autouse=True)
def _crds_environment_restored():
    yield
    for key, value in _CRDS_ENV.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
