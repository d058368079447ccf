"""`webbspec simulate mir_mrs`: the whole small program (4 dithers + 2 dedicated backgrounds x 2
detectors, SHORT), its headers, associations, noise, cosmic rays and truth; the same seed writes the
same bytes."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from webbspec.io import datamodels
from webbspec.simulate import mir_mrs_design as design
from webbspec.simulate import mir_mrs_scene as scene
from webbspec.simulate.mir_mrs import DITHERS_AB, plan, render_exposure, wcs_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    out = tmp_path_factory.mktemp("mrs") / "prog"
    run = subprocess.run([sys.executable, "-m", "webbspec", "simulate", "mir_mrs", str(out), "--seed", "3"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return str(out)


def _rates(prog):
    return sorted(f for f in os.listdir(prog) if f.endswith("_rate.fits"))


def test_exposures_and_headers(prog):
    rates = _rates(prog)
    assert len(rates) == 12
    store = os.path.join(prog, "refs")
    exposures = {e["root"]: e for e in plan(store, "small")}
    for name in rates:
        with fits.open(os.path.join(prog, name)) as h:
            p, s = h[0].header, h["SCI"].header
            assert h["SCI"].data.shape == (1024, 1032)
            assert p["EXP_TYPE"] == "MIR_MRS" and p["BAND"] == "SHORT"
            assert p["CHANNEL"] == design.DETECTOR_CHANNELS[p["DETECTOR"]]
            e = exposures[name[:-len("_rate.fits")]]
            assert p["PATT_NUM"] == e["number"] and p["NUMDTHPT"] == (4 if e["kind"] == "science" else 2)
            assert p["BKGDTARG"] == (e["kind"] == "background") and p["DITHOPFR"] == "POINT-SOURCE"
            for k in ("RA_REF", "DEC_REF", "ROLL_REF", "V2_REF", "V3_REF", "VA_SCALE", "V3I_YANG", "VPARITY"):
                assert k in s, k
    # the pointing puts the target at the dither's channel-1 (alpha, beta), through our WCS
    for e in exposures.values():
        if e["kind"] == "science" and e["detector"] == "MIRIFUSHORT":
            w = wcs_for(store, "MIRIFUSHORT", "SHORT", e["ra_ref"], e["dec_ref"])
            a, b = w.v2v3_to_ab(*w.sky_to_v2v3(scene.TARG_RA, scene.TARG_DEC), "1")
            assert np.hypot(a - DITHERS_AB[e["number"] - 1][0], b - DITHERS_AB[e["number"] - 1][1]) < 1e-6


def test_the_official_model_reads_a_rate(prog):
    from stdatamodels.jwst import datamodels as dm

    with dm.IFUImageModel(os.path.join(prog, _rates(prog)[0]), strict_validation=True) as m:
        assert m.meta.exposure.type == "MIR_MRS" and m.meta.instrument.channel in ("12", "34")
        assert m.meta.wcsinfo.v2_ref == design.V2_CEN and m.meta.dither.position_number in (1, 2, 3, 4)


def test_associations(prog):
    asns = [json.load(open(os.path.join(prog, f))) for f in sorted(os.listdir(prog)) if f.endswith("_asn.json")]
    spec2 = [a for a in asns if a["asn_type"] == "spec2"]
    spec3 = [a for a in asns if a["asn_type"] == "spec3"]
    assert len(spec2) == 12 and len(spec3) == 1
    for a in spec2:
        members = a["products"][0]["members"]
        sci = [m for m in members if m["exptype"] == "science"]
        assert len(sci) == 1 and os.path.exists(os.path.join(prog, sci[0]["expname"]))
        det = sci[0]["expname"].split("_")[3]
        bkg = [m["expname"] for m in members if m["exptype"] == "background"]
        assert all(det in b and "jw01234002" in b for b in bkg)
        assert len(bkg) == (2 if "jw01234001" in sci[0]["expname"] else 0)
    members = spec3[0]["products"][0]["members"]
    assert sum(m["exptype"] == "science" for m in members) == 8
    assert sum(m["exptype"] == "background" for m in members) == 4


def test_noise_and_cosmic_rays_against_the_truth(prog):
    store = os.path.join(prog, "refs")
    e = next(e for e in plan(store, "small") if e["kind"] == "science" and e["detector"] == "MIRIFULONG")
    model = datamodels.read(os.path.join(prog, f"{e['root']}_rate.fits"))
    img = model.slits[0]
    true_rate = render_exposure(store, e)[0]
    with fits.open(os.path.join(prog, "truth", "outliers", f"{e['root']}_rate_crmask.fits")) as h:
        cr = h[0].data.astype(bool)
        snr = h["SNR"].data
    assert 40 <= cr.sum() <= 80
    good = np.isfinite(img["SCI"]) & ~cr
    z = (img["SCI"][good] - true_rate[good]) / img["ERR"][good]
    assert abs(np.mean(z)) < 0.01 and abs(np.std(z) - 1) < 0.01          # ERR is the scatter
    assert np.allclose(img["ERR"][good] ** 2, img["VAR_POISSON"][good] + img["VAR_RNOISE"][good], rtol=1e-5)
    hit = cr & np.isfinite(img["SCI"])
    z_cr = (img["SCI"][hit] - true_rate[hit]) / img["ERR"][hit]
    assert np.all(z_cr > snr[hit] - 6)                    # each ray's excess is its recorded SNR (+ noise)


def test_truth_files(prog):
    t = Table.read(os.path.join(prog, "truth", "sources.ecsv"))
    assert list(t["source_id"]) == [1, 2, 3] and list(t["srctype"]) == ["POINT", "EXTENDED", "EXTENDED"]
    s1 = Table.read(os.path.join(prog, "truth", "spectra", "s000000001.ecsv"))
    assert s1["flux"].unit == "Jy" and np.allclose(s1["flux"], scene.point_flux_jy(s1["wavelength"]))
    s3 = Table.read(os.path.join(prog, "truth", "spectra", "s000000003.ecsv"))
    assert s3["surf_bright"].unit == "MJy/sr"
    for c in "1234":
        with fits.open(os.path.join(prog, "truth", "cubes", f"ch{c}-short_truth.fits")) as h:
            assert h["SCI"].data.ndim == 3 and h["SCI"].header["BUNIT"] == "MJy/sr"


def test_same_seed_same_bytes(prog, tmp_path):
    """A second run of the same seed writes identical rates (checked on two files)."""
    from webbspec.simulate import simulate

    again = simulate("mir_mrs", str(tmp_path / "again"), seed=3)
    for name in _rates(prog)[:2]:
        a = hashlib.sha1(open(os.path.join(prog, name), "rb").read()).hexdigest()
        b = hashlib.sha1(open(os.path.join(again["outdir"], name), "rb").read()).hexdigest()
        assert a == b, name


def test_our_stage2_calibrations_recover_the_surface_brightness(prog):
    """assign_wcs, straylight, flat_field, fringe, photom on a noisy science rate (references from
    the program's store): the calibrated SCI over the truth SB on bright slice pixels has a median of
    1 within 2e-3, and no fringe left: the slope of cal/truth against the fringe (F - 1) is < 0.1
    (1 before the fringe step), i.e. residual fringes < 0.1 x 8% = 0.8% of the signal."""
    from webbspec.io import refs
    from webbspec.simulate.mir_mrs_calrefs import fringe_truth
    from webbspec.steps import assign_wcs, flat_field, fringe, photom, straylight

    store = os.path.join(prog, "refs")
    e = next(e for e in plan(store, "small") if e["kind"] == "science" and e["detector"] == "MIRIFUSHORT")
    model = datamodels.read(os.path.join(prog, f"{e['root']}_rate.fits"))
    types = assign_wcs.REFTYPES + straylight.REFTYPES + flat_field.REFTYPES + fringe.REFTYPES + photom.REFTYPES
    r = refs.bestrefs(model.primary, tuple(dict.fromkeys(types)), store)
    m = assign_wcs.run(model, r)
    m = straylight.run(m, r)
    m = flat_field.run(m, r)
    before = photom.run(m, r).slits[0]["SCI"].astype(float)
    cal = photom.run(fringe.run(m, r), r).slits[0]["SCI"].astype(float)
    sb, sl = render_exposure(store, e)[2:]
    on = (sl > 0) & np.isfinite(cal) & (sb > np.percentile(sb[sl > 0], 90))
    f1 = fringe_truth("MIRIFUSHORT", "SHORT")[on] - 1.0
    slope = np.polyfit(f1, cal[on] / sb[on] - 1.0, 1)[0]
    slope_before = np.polyfit(f1, before[on] / sb[on] - 1.0, 1)[0]
    med = np.median(cal[on] / sb[on])
    print(f"cal/truth median {med:.5f} over {on.sum()} pixels; fringe slope {slope:.3f} (before fringe {slope_before:.3f})")
    assert abs(med - 1) < 2e-3
    assert abs(slope) < 0.1 and abs(slope_before - 1) < 0.1
