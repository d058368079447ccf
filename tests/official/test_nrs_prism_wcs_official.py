"""Our NIRSpec PRISM (CLEAR) assign_wcs against the official one on the same `_rate` and the same
PRISM optical-model references: wavelength within 1e-3 pixel-equivalent, sky within 1 mas; at the
simulated exposures' GWA temperature (plain Sellmeier index) and 25 K above the prism's
reference temperature (the official thermal index)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from webbspec.instruments.nirspec import fs
from webbspec.instruments.nirspec.optics import Optics, Prism
from webbspec.io import datamodels
from webbspec.io.datamodels import Model, Slit
from webbspec.io.skycoords import xieta_to_radec
from webbspec.simulate import nirspec_optics_refs as design
from webbspec.steps import assign_wcs, wavecorr

pytestmark = pytest.mark.official

HERE = os.path.dirname(__file__)
TEMPERATURES = {"cold": design.PRISM_GWA_TEMPERATURE, "warm": design.PRISM_TREF + 25.0}
# the NRS1 ALLSLITS subarray (2048 x 256 from row 897): every fixed slit's PRISM spectrum
SUB = ("ALLSLITS", 1, 897, 2048, 256)


def _rate(path, temperature):
    """A PRISM `_rate` (flat signal) with the keywords the official assign_wcs reads."""
    name, x0, y0, nx, ny = SUB
    h = fits.Header()
    for key, val in (("TELESCOP", "JWST"), ("INSTRUME", "NIRSPEC"), ("EXP_TYPE", fs.EXP_TYPE),
                     ("DETECTOR", "NRS1"), ("FILTER", "CLEAR"), ("GRATING", "PRISM"), ("FXD_SLIT", "S200A1"),
                     ("SUBARRAY", name), ("SUBSTRT1", x0), ("SUBSTRT2", y0), ("SUBSIZE1", nx), ("SUBSIZE2", ny),
                     ("DATE-OBS", "2024-01-02"), ("TIME-OBS", "01:00:00.000"), ("EXPSTART", 60311.04),
                     ("EXPMID", 60311.046), ("EXPEND", 60311.052), ("NINTS", 1), ("EFFEXPTM", 1000.0),
                     ("XOFFSET", 0.01), ("YOFFSET", 0.3), ("SRCTYAPT", "POINT"),
                     ("GWA_XTIL", design.PRISM_GWA_TILT_READINGS[0]), ("GWA_YTIL", design.PRISM_GWA_TILT_READINGS[1]),
                     ("GWA_TILT", temperature), ("BUNIT", "DN/s"), ("DATAMODL", "ImageModel")):
        h[key] = val
    sci = fits.Header()
    for key, val in (("BUNIT", "DN/s"), ("RA_REF", 53.1625), ("DEC_REF", -27.7914), ("ROLL_REF", 138.55),
                     ("PA_APER", 138.2), ("V2_REF", design.V2V3_S200A1[0]), ("V3_REF", design.V2V3_S200A1[1]),
                     ("V3I_YANG", -design.OTE_ROT), ("VPARITY", -1), ("VA_SCALE", 1.0000257)):
        sci[key] = val
    ones = np.ones((ny, nx), np.float32)
    arrays = {"SCI": ones, "ERR": 0.1 * ones, "DQ": np.zeros((ny, nx), np.uint32),
              "VAR_POISSON": 0.005 * ones, "VAR_RNOISE": 0.005 * ones}
    datamodels.write(Model(h, [Slit(sci, arrays)], "single"), path)
    return path


def test_index_and_snell_match_the_official_prism_model():
    """Our Prism against the official Snell model (index at both temperatures, the light path)."""
    from stdatamodels.jwst.transforms.models import Snell

    lam = np.linspace(0.6e-6, 5.3e-6, 501)
    a, b = np.full(lam.shape, 0.41), np.full(lam.shape, -0.013)
    for temp in (*TEMPERATURES.values(), design.PRISM_TREF - 100.0):
        args = (design.PRISM_ANGLE, design.PRISM_KCOEF, design.PRISM_LCOEF, design.PRISM_TCOEF,
                design.PRISM_TREF, design.PRISM_PREF, temp)
        ours = Prism(*args)
        official = Snell(*args, design.PRISM_PREF)
        n_off = Snell.compute_refraction_index(lam, temp, design.PRISM_TREF, design.PRISM_PREF,
                                               design.PRISM_PREF, design.PRISM_KCOEF, design.PRISM_LCOEF,
                                               design.PRISM_TCOEF)
        assert np.abs(ours.index(lam) - n_off).max() < 1e-14, temp
        xo, yo, _ = official.evaluate(lam, a, b, np.sqrt(1 - a * a - b * b))
        xa, ya = ours.deflect(lam, a, b)
        assert np.abs(xa - xo).max() < 1e-14 and np.abs(ya - yo).max() < 1e-14, temp


def test_prism_wavelengths_and_sky_match_the_official_gwcs(tmp_path):
    refdir = tmp_path / "refs"
    names = design.write_optical_refs(str(refdir), grating="PRISM")
    refs = {rt: str(refdir / f) for rt, f in names.items()}
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    jobs, ours = [], {}
    for case, temp in TEMPERATURES.items():
        rate = _rate(str(tmp_path / f"prism_{case}_rate.fits"), temp)
        model = datamodels.read(rate)
        out = assign_wcs.run(model, refs)
        boxes = {str(row["SLIT_NAME"]).strip(): [int(row[k]) for k in ("XSTART", "XSTOP", "YSTART", "YSTOP")]
                 for row in out.tables["SLITS"]}
        assert sorted(boxes) == sorted(fs.SLIT_NAMES), case
        (tmp_path / f"boxes_{case}.json").write_text(json.dumps(boxes))
        ours[case] = (model, out, boxes)
        jobs.append({"rate": rate, "refs_json": str(tmp_path / "refs.json"),
                     "boxes_json": str(tmp_path / f"boxes_{case}.json"), "out": str(tmp_path / f"official_{case}.npz")})
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    run = subprocess.run([sys.executable, os.path.join(HERE, "nrs_prism_wcs_official.py"), str(tmp_path / "jobs.json")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    print(" | ".join(line for line in run.stdout.strip().splitlines() if line.startswith("official")))
    worst_lam = worst_sky = worst_table = 0.0
    for (case, (model, out, boxes)), job in zip(ours.items(), jobs):
        off = np.load(job["out"])
        img, h = out.slits[0], out.slits[0].header
        keys = {**dict(model.primary.items()), **dict(model.slits[0].header.items())}
        exact = Optics(refs, keys, prism_exact=True)
        for slit, (x0, x1, y0, y1) in boxes.items():
            box = (slice(y0, y1 + 1), slice(x0, x1 + 1))
            lam = img["WAVELENGTH"][box].astype(float)
            ok = np.isfinite(lam)
            assert ok.sum() > 1000 and np.isfinite(off[f"{slit}_lam"][ok]).all(), (case, slit)
            disp = np.abs(wavecorr.dispersion(off[f"{slit}_lam"]))
            # our WAVELENGTH is float32: compare the official value rounded the same way
            dlam = np.abs(lam - off[f"{slit}_lam"].astype(np.float32))[ok] / disp[ok]
            ra, dec = xieta_to_radec(img["XI"][box][ok].astype(float), img["ETA"][box][ok].astype(float),
                                     h["WSREFRA"], h["WSREFDE"])
            dsky = np.hypot((ra - off[f"{slit}_ra"][ok]) * np.cos(np.radians(dec)), dec - off[f"{slit}_dec"][ok])
            # the exact inverse of n(lam) against the official table lookup (information)
            yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(float)
            lam_exact = exact.detector_to_slit(slit, xx + SUB[1] - 1, yy + SUB[2] - 1)[1][ok] * 1e6
            dtab = np.abs(lam_exact - off[f"{slit}_lam"][ok]) / disp[ok]
            worst_lam, worst_sky = max(worst_lam, dlam.max()), max(worst_sky, dsky.max() * 3.6e6)
            worst_table = max(worst_table, dtab.max())
            print(f"{case} {slit}: {ok.sum()} pixels, {lam[ok].min():.3f}-{lam[ok].max():.3f} um, max |dlam| "
                  f"{dlam.max():.2e} pixel, max sky {dsky.max() * 3.6e6:.4f} mas; exact inverse vs official "
                  f"{dtab.max():.2e} pixel")
    print(f"worst: dlam {worst_lam:.2e} pixel, sky {worst_sky:.4f} mas; the official n -> lam table's own "
          f"interpolation error {worst_table:.2e} pixel")
    assert worst_lam < 1e-3
    assert worst_sky < 1.0
    assert worst_table < 5e-3
