"""Our NIRSpec FS assign_wcs against the official one on the same simulated `_rate` and the same
optical-model reference files: wavelength within 1e-3 pixel-equivalent, sky within 1 mas."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from webbspec.io import datamodels, refs
from webbspec.io.skycoords import xieta_to_radec
from webbspec.simulate import simulate
from webbspec.steps import assign_wcs, wavecorr

pytestmark = pytest.mark.official

HERE = os.path.dirname(__file__)


def test_wavelengths_and_sky_match_the_official_gwcs(tmp_path):
    info = simulate("nrs_fs", str(tmp_path / "prog"), seed=1)
    rate = info["rates"][0]
    model = datamodels.read(rate)
    r = refs.bestrefs(model.primary, assign_wcs.REFTYPES, str(tmp_path / "prog" / "refs"))
    ours = assign_wcs.run(model, r)
    boxes = {str(row["SLIT_NAME"]).strip(): [int(row[k]) for k in ("XSTART", "XSTOP", "YSTART", "YSTOP")]
             for row in ours.tables["SLITS"]}
    (tmp_path / "refs.json").write_text(json.dumps(r))
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    out = tmp_path / "official.npz"
    run = subprocess.run([sys.executable, os.path.join(HERE, "nrs_fs_wcs_official.py"), rate,
                          str(tmp_path / "refs.json"), str(tmp_path / "boxes.json"), str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    off = np.load(out)
    img, h = ours.slits[0], ours.slits[0].header
    worst_lam = worst_sky = 0.0
    for slit, (x0, x1, y0, y1) in boxes.items():
        box = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        lam = img["WAVELENGTH"][box].astype(float)
        ok = np.isfinite(lam)
        assert np.isfinite(off[f"{slit}_lam"][ok]).all(), slit
        disp = np.abs(wavecorr.dispersion(off[f"{slit}_lam"]))
        # our WAVELENGTH is float32: compare the official value rounded the same way
        dlam = np.abs(lam - off[f"{slit}_lam"].astype(np.float32))[ok] / disp[ok]
        ra, dec = xieta_to_radec(img["XI"][box][ok].astype(float), img["ETA"][box][ok].astype(float),
                                 h["WSREFRA"], h["WSREFDE"])
        dsky = np.hypot((ra - off[f"{slit}_ra"][ok]) * np.cos(np.radians(dec)), dec - off[f"{slit}_dec"][ok])
        worst_lam, worst_sky = max(worst_lam, dlam.max()), max(worst_sky, dsky.max() * 3.6e6)
        print(f"{slit}: {ok.sum()} pixels, max |dlam| {dlam.max():.2e} pixel, max sky {dsky.max() * 3.6e6:.3f} mas")
    print(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else "")
    assert worst_lam < 1e-3
    assert worst_sky < 1.0
