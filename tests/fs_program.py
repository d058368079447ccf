"""One simulated NIRSpec FS program, run through the whole workflow, shared by the test modules
that only read its products (simulate + ``webbspec run --cores 2``, ~35 s, once per session).

    from fs_program import simulated_fs_program

    @pytest.fixture(scope="module")
    def program(tmp_path_factory):
        return simulated_fs_program(tmp_path_factory)

Tests that change the program's products must copy it first.
"""

import os
import subprocess
import sys

_RUN = {}    # seed -> program directory, for the whole pytest session


def webbspec_exe():
    return os.path.join(os.path.dirname(sys.executable), "webbspec")


def simulated_fs_program(tmp_path_factory, seed=0):
    if seed not in _RUN:
        # "session_": kept past the module that made it (tests/conftest.py)
        root = tmp_path_factory.mktemp(f"session_fs_seed{seed}") / "prog"
        subprocess.run([webbspec_exe(), "simulate", "nrs_fs", str(root), "--seed", str(seed)], check=True,
                       capture_output=True)
        run = subprocess.run([webbspec_exe(), "run", str(root), "--cores", "2"], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        _RUN[seed] = root
    return _RUN[seed]
