"""Our NIRSpec IFU assign_wcs against the official one, on a simulated `_rate` (rendered through our
WCS) and the same references picked from the program's store: the same slice map pixel for pixel,
and per pixel (RA, Dec, lambda) within 1e-3 pixel (sky differences over the 0.1" pixel, wavelength
differences over the pixel's DWAVE), on every 8th column of every slice row (the whole-frame
official evaluation costs GBs). NRS2: the same rate with DETECTOR = NRS2 (the WCS reads no data).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from webbspec.instruments.nirspec import ifu
from webbspec.io import datamodels, refs
from webbspec.io.skycoords import radec_to_xieta
from webbspec.steps import assign_wcs

from nrs_ifu_program import nrs_ifu_program

pytestmark = pytest.mark.official

HERE = os.path.dirname(__file__)
PIXEL_ARCSEC = 0.1


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    prog, info = nrs_ifu_program()
    return tmp_path_factory.mktemp("nrs_ifu"), prog, info


def _official(rate, selection, tmp):
    (tmp / "refs.json").write_text(json.dumps(selection))
    out = tmp / f"{os.path.basename(rate)}.npz"
    run = subprocess.run([sys.executable, os.path.join(HERE, "nrs_ifu_wcs_official.py"), rate, str(tmp / "refs.json"),
                          "8", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    print(" / ".join(line for line in run.stdout.splitlines() if line.startswith("official")))
    return np.load(out)


def _compare(rate, root, prog):
    model = datamodels.read(rate)
    sel = refs.bestrefs(model.primary, assign_wcs.REFTYPES, os.path.join(prog, "refs"))
    assert all(os.path.isfile(sel[rt]) for rt in ifu.REFTYPES), sel
    ours = assign_wcs.run(model, sel)
    off = _official(rate, {rt: sel[rt] for rt in ifu.REFTYPES}, root)
    img, h = ours.slits[0], ours.slits[0].header
    assert np.array_equal(img["SLICE"], off["regions"]), f"{(img['SLICE'] != off['regions']).sum()} pixels differ"
    x, y = off["x"].astype(int), off["y"].astype(int)
    assert np.isfinite(off["lam"]).all() and np.isfinite(img["WAVELENGTH"][y, x]).all()
    # our WAVELENGTH is float32: compare the official value rounded the same way
    dlam = np.abs(img["WAVELENGTH"][y, x] - off["lam"].astype(np.float32)) / img["DWAVE"][y, x]
    xi, eta = radec_to_xieta(off["ra"], off["dec"], h["WSREFRA"], h["WSREFDE"])
    dsky = np.hypot(xi - img["XI"][y, x], eta - img["ETA"][y, x]) / PIXEL_ARCSEC
    print(f"{os.path.basename(rate)}: {x.size} pixels, 30 slices; max |dlam| {dlam.max():.2e} pixel, "
          f"max sky {dsky.max():.2e} pixel")
    assert dlam.max() < 1e-3
    assert dsky.max() < 1e-3
    return ours


def test_nrs1_slice_map_and_coordinates_match_the_official_wcs(program):
    root, prog, info = program
    ours = _compare(info["rates"][0], root, prog)
    assert len(ours.tables["SLICES"]) == 30


def test_nrs2_matches_the_official_wcs(program, tmp_path):
    root, prog, info = program
    rate = str(tmp_path / "jw01234001001_03101_00003_nrs2_rate.fits")
    with fits.open(info["rates"][2]) as hdul:
        hdul[0].header["DETECTOR"] = "NRS2"
        hdul.writeto(rate)
    _compare(rate, root, prog)
