"""Level 2 associations with imprint and background members, as calwebb_spec2 reads them for MOS:
the science gets its imprint subtracted (imprint_subtract), each background member gets its own
imprint subtracted before the backgrounds are combined (bkg_subtract ``imprints=``), so the
result is science - mean(backgrounds) with every imprint removed exactly once.

Analytic: images are S + I (science) and B_k + I_k (backgrounds), the answer S - mean(B_k)."""

import numpy as np
import pytest
from astropy.io import fits

from webbspec.io.datamodels import Model, Slit
from webbspec.pipeline import program
from webbspec.steps import bkg_subtract, imprint_subtract

SHAPE = (24, 32)
_Y, _X = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]


def image(data, exp_type="NRS_MSASPEC", dq=0, shape=SHAPE, var=(0.10, 0.15), **keys):
    """A `_rate`-like model; ``var`` = (VAR_RNOISE, VAR_POISSON), ERR = sqrt of their sum."""
    hdr = fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": exp_type, "OBSERVTN": "002", **keys})
    data = np.asarray(data, np.float32)
    vr, vp = var
    return Model(hdr, [Slit(fits.Header(), {"SCI": data, "ERR": np.full(shape, np.sqrt(vr + vp), np.float32),
                                            "DQ": np.full(shape, dq, np.uint32),
                                            "VAR_RNOISE": np.full(shape, vr, np.float32),
                                            "VAR_POISSON": np.full(shape, vp, np.float32)})], "single")


# the science and background scenes and an imprint pattern (leakage: a ramp and a few bright spots)
S = 5.0 + 0.02 * _X
B1, B2 = 1.0 + 0.01 * _Y, 1.4 + 0.005 * _X
IMPRINT = 0.3 + 0.01 * _X + 0.02 * _Y
IMPRINT[3:6, 10:14] += 2.0


def _stage(science, backgrounds, imprints):
    """imprint_subtract then bkg_subtract, as the chain runs them."""
    out = imprint_subtract.run(science, None, imprints=imprints)
    return bkg_subtract.run(out, None, backgrounds=backgrounds, imprints=imprints, propagate_error=False)


def test_nods_sharing_one_imprint_subtract_it_once():
    imp = image(IMPRINT, dq=8)
    sci = image(S + IMPRINT, PATT_NUM=1)
    bkgs = [image(B1 + IMPRINT, PATT_NUM=2), image(B2 + IMPRINT, PATT_NUM=3)]
    out = _stage(sci, bkgs, [imp]).slits[0]
    np.testing.assert_allclose(out["SCI"], S - 0.5 * (B1 + B2), atol=2e-6)
    assert np.all(out["DQ"] == 8)
    # without the backgrounds' imprint the imprint would come off twice
    twice = bkg_subtract.run(imprint_subtract.run(sci, None, imprints=[imp]), None, backgrounds=bkgs)
    np.testing.assert_allclose(twice.slits[0]["SCI"], S - 0.5 * (B1 + B2) - IMPRINT, atol=2e-6)
    # the inputs are not changed
    np.testing.assert_allclose(bkgs[0].slits[0]["SCI"], B1 + IMPRINT, atol=1e-6)


def test_dedicated_background_gets_its_own_imprint():
    """Several imprints: each exposure takes the one with its BKGDTARG, OBSERVTN and PATT_NUM."""
    i_sci, i_bkg = IMPRINT, 0.5 * IMPRINT[::-1]
    imprints = [image(i_sci, BKGDTARG=False, PATT_NUM=1), image(i_bkg, BKGDTARG=True, PATT_NUM=1)]
    sci = image(S + i_sci, BKGDTARG=False, PATT_NUM=1)
    bkg = image(B1 + i_bkg, BKGDTARG=True, PATT_NUM=1)
    out = _stage(sci, [bkg], imprints).slits[0]
    np.testing.assert_allclose(out["SCI"], S - B1, atol=2e-6)
    combined = bkg_subtract.combined_background(sci, [bkg], imprints=imprints)
    np.testing.assert_allclose(combined.slits[0]["SCI"], B1, atol=2e-6)


def test_background_subarray_and_full_frame_imprint():
    full = (40, 50)
    y, x = np.mgrid[0:full[0], 0:full[1]]
    imp_full = 0.2 + 0.01 * x + 0.03 * y
    sub = {"SUBSTRT1": 11, "SUBSTRT2": 5, "SUBSIZE1": SHAPE[1], "SUBSIZE2": SHAPE[0]}
    imp = image(imp_full, shape=full, SUBSTRT1=1, SUBSTRT2=1, SUBSIZE1=full[1], SUBSIZE2=full[0])
    window = imp_full[4:4 + SHAPE[0], 10:10 + SHAPE[1]]
    sci = image(S + window, PATT_NUM=1, **sub)
    bkg = image(B2 + window, PATT_NUM=2, **sub)
    np.testing.assert_allclose(_stage(sci, [bkg], [imp]).slits[0]["SCI"], S - B2, atol=2e-6)


def _variances(model):
    s = model.slits[0]
    return [float(np.unique(s[k])[0]) if np.unique(s[k]).size == 1 else np.nan
            for k in ("ERR", "VAR_RNOISE", "VAR_POISSON")]


IMP_VAR = (0.05, 0.04)      # the imprint's (VAR_RNOISE, VAR_POISSON); the exposures' are (0.10, 0.15)


@pytest.mark.parametrize("design", ["shared", "dedicated", "mixed"])
def test_propagated_variance_counts_each_imprint_once(design):
    """result = S - I_s - mean(B_k - I_k): each exposure's noise enters with its weight squared;
    an imprint the science and backgrounds share partly cancels (nods sharing one: entirely).
    (Our propagate_error=True departure; imprint_subtract adds the imprint's variance.)"""
    vr, vp = 0.10, 0.15
    i_sci = image(IMPRINT, var=IMP_VAR, BKGDTARG=False, PATT_NUM=1)
    i_bkg = image(0.5 * IMPRINT, var=IMP_VAR, BKGDTARG=True, PATT_NUM=1)
    sci = image(S + IMPRINT, BKGDTARG=False, PATT_NUM=1)
    if design == "shared":           # three nods, one imprint: weights I -1 + 2/2 = 0
        imprints, bkgs = [i_sci], [image(B1 + IMPRINT, PATT_NUM=2), image(B2 + IMPRINT, PATT_NUM=3)]
        weights, scenes = {"I": 0.0}, [B1, B2]
    elif design == "dedicated":      # a background target with its own imprint: I_s -1, I_b +1
        imprints, bkgs = [i_sci, i_bkg], [image(B1 + 0.5 * IMPRINT, BKGDTARG=True, PATT_NUM=1)]
        weights, scenes = {"I_s": -1.0, "I_b": 1.0}, [B1]
    else:                            # two backgrounds with the science's imprint, one with its own
        imprints = [i_sci, i_bkg]
        bkgs = [image(B1 + IMPRINT, BKGDTARG=False, PATT_NUM=2), image(B2 + IMPRINT, BKGDTARG=False, PATT_NUM=3),
                image(B1 + 0.5 * IMPRINT, BKGDTARG=True, PATT_NUM=1)]
        weights, scenes = {"I_s": -1 + 2 / 3, "I_b": 1 / 3}, [B1, B2, B1]
    n = len(bkgs)
    out = bkg_subtract.run(imprint_subtract.run(sci, None, imprints=imprints), None, backgrounds=bkgs,
                           imprints=imprints)
    np.testing.assert_allclose(out.slits[0]["SCI"], S - np.mean(scenes, axis=0), atol=3e-6)
    w2 = sum(w * w for w in weights.values())
    want_rn = vr + n * vr / n**2 + w2 * IMP_VAR[0]
    want_p = vp + n * vp / n**2 + w2 * IMP_VAR[1]
    err, got_rn, got_p = _variances(out)
    assert (got_rn, got_p) == pytest.approx((want_rn, want_p), rel=1e-5)
    assert err == pytest.approx(np.sqrt(want_rn + want_p), rel=1e-5)


@pytest.mark.parametrize("exp_type", ["NRS_FIXEDSLIT", "MIR_LRS-FIXEDSLIT"])
def test_modes_without_imprint_subtraction_ignore_imprint_members(exp_type):
    """Officially only NRS_MSASPEC / NRS_IFU subtract imprints (from the science and backgrounds)."""
    sci = image(S, exp_type)
    bkg = image(B1 + IMPRINT, exp_type)
    out = bkg_subtract.run(sci, None, backgrounds=[bkg], imprints=[image(IMPRINT, exp_type)])
    np.testing.assert_allclose(out.slits[0]["SCI"], S - B1 - IMPRINT, atol=2e-6)


def test_imprint_members_read_from_files(tmp_path):
    from webbspec.io import datamodels

    path = str(tmp_path / "jw01234002001_02101_00001_nrs1_rate.fits")
    datamodels.write(image(IMPRINT), path)
    out = bkg_subtract.run(image(S), None, backgrounds=[image(B1 + IMPRINT)], imprints=[path])
    np.testing.assert_allclose(out.slits[0]["SCI"], S - B1, atol=2e-6)


def test_discovery_reads_imprint_and_background_members(tmp_path):
    """A spec2 association's imprint and background members reach the exposure; the imprint
    exposures are not calibrated on their own; the chain keeps imprint_subtract and bkg_subtract."""
    import json

    from webbspec.io import datamodels

    from webbspec.instruments.nirspec import msa

    names = {"sci": "jw01234002001_03101_00001_nrs1", "bkg": "jw01234002001_03101_00002_nrs1",
             "imp": "jw01234002001_02101_00001_nrs1", "ibkg": "jw01234002001_02101_00002_nrs1"}
    shutters = ((3, 5, 9), (3, 5, 10), (3, 5, 11))
    msa.write_msa_file(str(tmp_path / "jw01234002001_01_msa.fits"), [
        msa.Slitlet(1, 3, 5, 10, shutters, 101, "1234_101", "A1", 0.9, 0.0, 0.0, 53.1, -27.8, False, False, 1, k)
        for k in (1, 2)], "01234")
    for key, name in names.items():
        m = image(S, PATT_NUM=2 if key in ("bkg", "ibkg") else 1)
        m.primary.update({"DETECTOR": "NRS1", "FILTER": "F290LP", "GRATING": "G395M", "PROGRAM": "01234",
                          "MSAMETFL": "jw01234002001_01_msa.fits", "MSAMETID": 1})
        datamodels.write(m, str(tmp_path / f"{name}_rate.fits"))
    members = [("sci", "science"), ("bkg", "background"), ("imp", "imprint"), ("ibkg", "imprint")]
    tree = {"asn_type": "spec2", "asn_rule": "candidate_Asn_Lv2NRSMSA", "products": [
        {"name": names["sci"], "members": [{"expname": f"{names[k]}_rate.fits", "exptype": t} for k, t in members]}]}
    (tmp_path / "jw01234-o002_spec2_00001_asn.json").write_text(json.dumps(tree))
    prog = program.discover(str(tmp_path))
    assert prog.errors == []
    exp = prog.exposures[names["sci"]]
    assert exp.backgrounds == [f"{names['bkg']}_rate.fits"]
    assert exp.imprints == [f"{names['imp']}_rate.fits", f"{names['ibkg']}_rate.fits"]
    assert names["imp"] not in prog.exposures and names["ibkg"] not in prog.exposures
    chain = program.spec2_chain(exp)
    assert chain.index("msa_flagging") < chain.index("imprint_subtract") < chain.index("bkg_subtract") \
        < chain.index("extract_2d")
    # the background exposure has no association of its own: no imprint, no background
    assert "imprint_subtract" not in program.spec2_chain(prog.exposures[names["bkg"]])
