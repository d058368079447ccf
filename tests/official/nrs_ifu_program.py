"""One simulated NIRSpec IFU program per test process (shared by the official NIRSpec IFU tests)."""

import atexit
import functools
import os
import shutil
import tempfile

from webbspec.simulate import simulate


@functools.lru_cache(maxsize=None)
def nrs_ifu_program():
    """(program directory, simulate() summary) of ``webbspec simulate nrs_ifu DIR --seed 2``."""
    top = tempfile.mkdtemp(prefix="webbspec_nrs_ifu_")
    atexit.register(shutil.rmtree, top, ignore_errors=True)       # ~0.6 GB of full-frame exposures
    root = os.path.join(top, "prog")
    return root, simulate("nrs_ifu", root, seed=2)
