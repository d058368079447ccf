"""Our cube_build side by side with the official CubeBuildStep on the same official `_cal` files
(the recipe ../shared/recipes/official-mrs-ifu: toy MRS references, 12SHORT, one dither), our
exposures made from the official gwcs (tests/official/cube_build_official.py): same grid, and
per spaxel within 1% in median for drizzle and emsm (measured on 4 dithers: 4e-5 and 2e-5, plane
sums 1 +- 1e-6, the same covered spaxels)."""

import glob
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.official

HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.environ.get("WEBBSPEC_MRS_RECIPE",
                        os.path.join(HERE, "..", "..", "..", "shared", "recipes", "official-mrs-ifu"))


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    pytest.importorskip("jwst")
    if not os.path.isdir(RECIPE):
        pytest.skip(f"no MRS recipe at {RECIPE}")
    d = tmp_path_factory.mktemp("mrs_cubes")
    for args in (["build_refs_mrs.py"], ["make_rate_mrs.py", "1"]):
        subprocess.run([sys.executable, os.path.join(RECIPE, args[0]), *args[1:]], cwd=d, check=True,
                       capture_output=True, timeout=900)
    subprocess.run([sys.executable, os.path.join(HERE, "cube_build_official.py"), "official", str(d),
                    "drizzle,emsm", "1"], cwd=d, check=True, capture_output=True, timeout=900)
    return d


@pytest.mark.parametrize("weighting", ["drizzle", "emsm"])
def test_cube_build_agrees_with_the_official(official, weighting):
    import json

    sys.path.insert(0, HERE)
    from cube_build_official import compare_cubes, exposure_from_cal
    from webbspec.io import cubes
    from webbspec.steps import cube_build

    exps = [exposure_from_cal(p) for p in sorted(glob.glob(str(official / "jw*_cal.fits")))]
    cubepar = json.load(open(official / "refs_mrs" / "refs.json"))["cubepar"]
    ours = cube_build.run(exps, {"cubepar": cubepar}, weighting=weighting)
    assert {c.name for c in ours} == {"ch1-short", "ch2-short"}
    for cube in ours:
        off = cubes.read(official / f"off_{weighting}_{cube.name}_s3d.fits")
        compare_cubes(cube, off)
