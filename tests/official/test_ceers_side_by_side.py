"""Issue 9: side by side with the official pipeline on real data, and products its tools accept.

The three real CEERS NIRSpec MOS PRISM nods of source 933 (tests/data/ceers, see ORIGIN.md) are
wrapped as a program directory as MAST delivers it (one MultiSlitModel ``*_cal.fits`` per nod plus
a spec3 association). Our Stage 3 runs through the workflow (``webbspec run DIR --cores 2``) and
the official calwebb_spec3 runs offline on the same files (tests/official/official_jwst.py, its
own process); each runs once per module. Figures come from :mod:`webbspec.pipeline.compare` (A = ours,
B = official), on A's wavelengths with B interpolated, medians over the central 80% of the
common wavelength range:

* ``_s2d``: median-down-the-slit surface brightness and sum of SCI x PIXAR_SR over the stretch of
  sky both cover, within 1%; wavelength grids within 0.1 pixel.
* ``_x1d`` with the same aperture on the sky: the official step (no EXTRACT1D reference) extracts
  the whole height of its s2d; ours is re-extracted from our s2d (``webbspec step extract_1d``)
  over the rows that height covers on the sky. FLUX within 1%, wavelengths within 0.1 pixel,
  FLUX_ERROR within 10%.
* ``_crf``: OUTLIER flags per exposure side by side (printed; asserted loosely).
* The official Extract1dStep on our ``_s2d`` and Combine1dStep on our ``_x1d`` run and agree
  with ours; every product we write opens strictly as the class the official one opens as.

Run: ``pytest -m official tests/official -s`` (prints the figures; about 3 minutes).
"""

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from test_realdata import CEERS, multislit_cal  # noqa: E402

from webbspec.io import associations, datamodels  # noqa: E402
from webbspec.pipeline import compare  # noqa: E402
from webbspec.algorithms import drizzle as dz  # noqa: E402
from webbspec import dq as dqbits  # noqa: E402

pytestmark = pytest.mark.official

BIN = Path(sys.executable).parent
TEMPLATE = "jw01345-o062_{source_id}_nirspec_clear-prism"
NAME = "jw01345-o062_s000000933_nirspec_clear-prism"
KINDS = ("cal", "crf", "s2d", "x1d")          # what we write for a MOS source (no _c1d)
FIGURES = {}                                  # printed at the end of the module


def mast_program(root):
    """The CEERS nods as MAST delivers a program: ``<exposure>_cal.fits`` + a spec3 association.

    The msaexp files are SlitModels calibrated through photom with the uniform-illumination
    conversion (BUNIT MJy/sr; POINT would have given MJy) and without the srctype/photom status
    keywords: each becomes a MultiSlitModel with the source's slit (its own gwcs), SRCTYPE
    EXTENDED (what those numbers are) and the Stage 2 step status a delivered _cal carries.
    """
    root.mkdir(parents=True, exist_ok=True)
    cals = []
    for src in CEERS:
        name = os.path.basename(src).split("_phot")[0] + "_cal.fits"
        path = multislit_cal(root / name, 1, src=src)
        with fits.open(path, mode="update") as h:
            for key in ("S_EXTR2D", "S_SRCTYP", "S_FLAT", "S_PATHLO", "S_BARSHA", "S_PHOTOM"):
                h[0].header[key] = "COMPLETE"
            h["SCI"].header["SRCTYPE"] = "EXTENDED"
        cals.append(name)
    asn = associations.asn_from_list(cals, TEMPLATE, program="01345")
    return associations.write(asn, root / "jw01345-o062_20240101t000000_spec3_00001_asn.json")


def _run(cmd, what):
    t0 = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    FIGURES[f"time {what} [s]"] = round(time.perf_counter() - t0, 1)
    assert proc.returncode == 0, f"{what} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    root = tmp_path_factory.mktemp("ceers") / "prog"
    asn = mast_program(root)
    return root, asn


@pytest.fixture(scope="module")
def ours(program):
    root, _ = program
    _run([BIN / "webbspec", "run", root, "--cores", "2"], "webbspec run (ours)")
    out = {k: root / "webbspec" / "spec3" / f"{NAME}_{k}.fits" for k in KINDS}
    missing = [str(p) for p in out.values() if not p.exists()]
    assert not missing, missing
    return out


@pytest.fixture(scope="module")
def official(program, tmp_path_factory):
    _, asn = program
    outdir = tmp_path_factory.mktemp("official")
    _run([sys.executable, HERE / "official_jwst.py", "spec3", asn, outdir], "calwebb_spec3 (official)")
    out = {k: outdir / f"{NAME}_{k}.fits" for k in KINDS}
    missing = [str(p) for p in out.values() if not p.exists()]
    assert not missing, missing
    return out


@pytest.fixture(scope="module")
def official_on_ours(ours, tmp_path_factory):
    """The official Extract1dStep on our _s2d and Combine1dStep on our _x1d (one process)."""
    outdir = tmp_path_factory.mktemp("official_on_ours")
    _run([sys.executable, HERE / "official_jwst.py", "on_products", ours["s2d"], ours["x1d"], outdir],
         "official extract_1d + combine_1d on ours")
    return {"x1d": outdir / "extract_1d_x1d.fits", "c1d": outdir / "combine_1d_c1d.fits"}


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    if FIGURES:
        print("\nCEERS 1345 source 933, ours (A) vs official jwst 3.0 calwebb_spec3 (B):")
        for key, value in FIGURES.items():
            print(f"  {key}: {value}")


def _open_strict(path):
    from stdatamodels.jwst import datamodels as dm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dm.open(str(path), strict_validation=True)


def _item(a, b, label):
    """compare(a, b) for a one-spectrum / one-slit product: its one item (also kept for the report)."""
    result = compare.compare(str(a), str(b))
    print("\n" + compare.report(result))
    assert len(result["items"]) == 1, result
    item = result["items"][0]
    FIGURES[label] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in item.items()}
    return item


# ---------------------------------------------------------------- side by side


def test_s2d_surface_brightness_and_sum_agree(ours, official):
    item = _item(ours["s2d"], official["s2d"], "s2d")
    assert abs(item["sb_median_ratio"] - 1) < 0.01, item
    assert abs(item["sum_ratio"] - 1) < 0.01, item
    assert abs(item["wave_offset_pix"]) < 0.1, item
    assert item["common_rows_a"] >= 25 and item["common_rows_b"] >= 25, item


def _same_sky_rows(our_s2d, official_s2d):
    """(lower, upper) edges, in our s2d's rows, of the sky the official s2d's rows span."""
    from stdatamodels.jwst import datamodels as dm

    with dm.open(str(official_s2d)) as m:
        ny, nx = m.data.shape
        rows = np.arange(ny, dtype=float)
        ra, dec, _ = m.meta.wcs(np.full(ny, (nx - 1) / 2.0), rows, with_bounding_box=False)
    hdr = fits.getheader(our_s2d, "SCI")
    ours = np.array([dz.source_row(hdr, r, d) for r, d in zip(ra, dec)])
    assert np.all(np.isfinite(ours))
    step = abs(ours[-1] - ours[0]) / (ny - 1)          # our rows per official row
    assert step == pytest.approx(1.0, abs=0.02)          # same along-slit pixel scale
    return ours.min() - 0.5 * step, ours.max() + 0.5 * step


@pytest.fixture(scope="module")
def ours_same_aperture(ours, official, tmp_path_factory):
    """Our extract_1d on our s2d over the sky rows of the official s2d's whole height."""
    lower, upper = _same_sky_rows(ours["s2d"], official["s2d"])
    ny = fits.getval(ours["s2d"], "NAXIS2", extname="SCI")
    width, centre = upper - lower, 0.5 * (lower + upper)
    FIGURES["x1d aperture on our s2d [row edges]"] = (round(float(lower), 3), round(float(upper), 3),
                                                      f"s2d rows 0..{ny - 1}")
    out = tmp_path_factory.mktemp("same_aperture") / f"{NAME}_x1d.fits"
    _run([BIN / "webbspec", "step", "extract_1d", ours["s2d"], "-o", out,
          "--extract_width", f"{width:.6f}", "--position_offset", f"{centre - (ny - 1) / 2:.6f}",
          "--use_source_posn", "false"], "webbspec step extract_1d (same aperture)")
    return out


def test_x1d_same_aperture_agrees(ours, official, ours_same_aperture):
    item = _item(ours_same_aperture, official["x1d"], "x1d same aperture")
    assert abs(item["flux_ratio"] - 1) < 0.01, item
    assert abs(item["wave_offset_pix"]) < 0.1, item
    assert abs(item["error_ratio"] - 1) < 0.10, item
    # the workflow's own x1d (whole height of our s2d, no EXTRACT1D reference), for the record
    whole = _item(ours["x1d"], official["x1d"], "x1d workflow (whole height)")
    assert np.isfinite(whole["flux_ratio"])


def test_crf_outliers_side_by_side(ours, official):
    result = compare.compare(str(ours["crf"]), str(official["crf"]))
    print("\n" + compare.report(result))
    items = result["items"]
    # the exposures are paired by position: check they are the same nods (pointing)
    for k, (a, b) in enumerate(zip(datamodels.read(str(ours["crf"])).slits,
                                   datamodels.read(str(official["crf"])).slits)):
        assert a.header["RA_REF"] == pytest.approx(b.header["RA_REF"], abs=1e-9), k
    inputs = [int(np.count_nonzero(fits.getdata(p, "DQ") & dqbits.OUTLIER)) for p in CEERS]
    FIGURES["crf outliers per exposure (ours, official, both)"] = [
        (i["outliers_a"], i["outliers_b"], i["outliers_both"]) for i in items]
    assert len(items) == 3
    for i, n_in in zip(items, inputs):
        assert n_in == 0                     # no outlier flags come in: the counts are both pipelines'
        assert 0 < i["outliers_a"] < 8525 and 0 < i["outliers_b"] < 8525
        assert i["outliers_both"] is not None and 0 <= i["outliers_both"] <= min(i["outliers_a"],
                                                                                  i["outliers_b"])


# ---------------------------------------------------------------- official tools on our products


def test_official_extract_1d_on_our_s2d(ours, official_on_ours):
    theirs = fits.getdata(official_on_ours["x1d"], "EXTRACT1D")
    n = len(theirs)
    central = slice(int(0.1 * n), int(0.9 * n))
    assert np.isfinite(theirs["FLUX"][central]).all()
    assert np.isfinite(theirs["FLUX_ERROR"][central]).all()
    assert fits.getheader(official_on_ours["x1d"], "EXTRACT1D")["TUNIT2"] == "Jy"
    item = _item(ours["x1d"], official_on_ours["x1d"], "official extract_1d on our s2d vs our x1d")
    assert abs(item["flux_ratio"] - 1) < 0.01, item
    assert abs(item["error_ratio"] - 1) < 0.10, item
    assert abs(item["wave_offset_pix"]) < 0.1, item


def test_official_combine_1d_on_our_x1d(ours, official_on_ours):
    c1d = fits.getdata(official_on_ours["c1d"], "COMBINE1D")
    x1d = fits.getdata(ours["x1d"], "EXTRACT1D")
    n = len(c1d)
    central = slice(int(0.1 * n), int(0.9 * n))
    assert np.isfinite(c1d["FLUX"][central]).all() and np.isfinite(c1d["ERROR"][central]).all()
    # one input spectrum: the combined spectrum is that spectrum, on its wavelengths
    w, f = np.asarray(x1d["WAVELENGTH"], float), np.asarray(x1d["FLUX"], float)
    ok = np.isfinite(f)
    ratio = np.asarray(c1d["FLUX"], float) / np.interp(np.asarray(c1d["WAVELENGTH"], float), w[ok], f[ok])
    FIGURES["official combine_1d of our x1d / our x1d"] = round(float(np.nanmedian(ratio[central])), 4)
    assert abs(np.nanmedian(ratio[central]) - 1) < 0.01


def test_our_products_open_strictly_as_the_official_classes(ours, official):
    classes = {}
    for kind in KINDS:
        theirs = _open_strict(official[kind])
        ours_m = _open_strict(ours[kind])
        classes[kind] = type(ours_m).__name__
        assert type(ours_m) is type(theirs), (kind, type(ours_m).__name__, type(theirs).__name__)
        if kind in ("cal", "crf"):
            assert len(ours_m.exposures) == len(theirs.exposures) == 3
            for e in ours_m.exposures:
                assert e.data.shape == e.dq.shape == e.wavelength.shape
                assert e.meta.bunit_data == "MJy/sr"
        if kind == "x1d":
            t = ours_m.spec[0].spec_table
            assert np.isfinite(t["FLUX"]).sum() > 0.9 * len(t)
            assert ours_m.spec[0].source_id == theirs.spec[0].source_id == 933
        ours_m.close()
        theirs.close()
    FIGURES["our product classes"] = classes

    s2d = _open_strict(ours["s2d"])
    ny, nx = s2d.data.shape
    assert s2d.wavelength.shape == (ny, nx) and np.isfinite(s2d.wavelength).all()
    assert s2d.meta.photometry.pixelarea_steradians > 0 and s2d.meta.photometry.pixelarea_arcsecsq > 0
    assert s2d.meta.bunit_data == "MJy/sr"
    # the gwcs: a pixel gives its sky position (near the source) and its column's wavelength
    ra, dec, lam = s2d.meta.wcs(nx // 2, ny // 2)
    assert np.isfinite([ra, dec, lam]).all()
    assert lam == pytest.approx(s2d.wavelength[ny // 2, nx // 2], rel=1e-6)
    src = fits.getheader(CEERS[0], "SCI")
    sep = np.hypot((ra - src["SRCRA"]) * np.cos(np.radians(dec)), dec - src["SRCDEC"]) * 3600
    assert sep < 0.5 * ny * 0.11                   # within the slit's half length [arcsec]
    s2d.close()
