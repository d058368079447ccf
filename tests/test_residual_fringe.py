"""residual_fringe (MIRI MRS): the fit of one column against an analytic answer, the step on a
full-frame image built from the simulator's slice design and its references, the skip rules, and
the step's place in the MRS Stage 2 chain (skipped by default, after photom when asked).

Tolerances: a column of 1000 pixels at per-pixel noise 0.5% fits its 4 fringe coefficients (a
sin and cos of the reference period times a linear amplitude) to ~0.5% x sqrt(2 / 1000) ~ 2e-4
each; the recovered fringe must be within 1e-3 rms of the true one (10% of a 1% fringe).
"""


import numpy as np
import pytest
from astropy.io import fits

from webbspec import dq as dqbits
from webbspec.errors import InputError
from webbspec.io.datamodels import Model, Slit
from webbspec.simulate import mir_mrs_calrefs as cal
from webbspec.simulate import mir_mrs_design as design
from webbspec.steps import residual_fringe as rf

DET, BAND = "MIRIFUSHORT", "SHORT"
MAX_AMP = (np.array([4.0, 30.0]), np.array([0.05, 0.05]))


def _column(amp=0.01, noise=0.005, seed=1, line=True):
    """(sigma, data, err, truth without fringe, fringe) of a channel-1 column: a rising continuum,
    a broad bump, an emission line (sigma lam / 2500) and a sinusoid in wavenumber."""
    lam = np.linspace(4.9, 5.74, 1000)
    sig = 1e4 / lam
    cont = 100 * (lam / 5) ** 0.5 * (1 + 0.3 * np.exp(-0.5 * ((lam - 5.3) / 0.2) ** 2))
    if line:
        cont = cont + 300 * np.exp(-0.5 * ((lam - 5.34) / (5.34 / 2500)) ** 2)
    fringe = 1 + amp * np.sin(2 * np.pi * sig / 2.9 + 0.4)
    err = noise * cont
    data = cont * fringe + np.random.default_rng(seed).normal(0, 1, lam.size) * err
    return lam, sig, data, err, cont, fringe


def test_one_column_fringe_is_recovered():
    lam, sig, data, err, cont, fringe = _column()
    f = rf.fit_column(sig, data, err, [(2.9, 0.3, 10.0)], MAX_AMP, lam)
    assert f is not None
    print(f"recovered fringe rms error {np.std(f - fringe):.1e} (fringe rms {np.std(fringe - 1):.1e})")
    assert np.sqrt(np.mean((f - fringe) ** 2)) < 1e-3
    # the corrected column is the continuum within the noise: residual rms about its noise, not the fringe's
    z = (data / f - cont) / err
    assert np.std(z) < 1.1


def test_period_is_refined_within_the_reference_range():
    """A fringe at 2.98 cm-1 with the reference saying 2.9 +- 0.15: found all the same."""
    lam = np.linspace(4.9, 5.74, 1000)
    sig = 1e4 / lam
    cont = 50 * (lam / 5) ** 2
    fringe = 1 + 0.01 * np.sin(2 * np.pi * sig / 2.98 + 1.0)
    err = 0.003 * cont
    data = cont * fringe + np.random.default_rng(2).normal(0, 1, lam.size) * err
    f = rf.fit_column(sig, data, err, [(2.9, 0.15, 10.0)], MAX_AMP, lam)
    assert f is not None and np.sqrt(np.mean((f - fringe) ** 2)) < 1e-3


def test_columns_without_a_fit_are_left_alone():
    lam, sig, data, err, cont, fringe = _column()
    # below the reference's min_snr (median SCI/ERR 200 here)
    assert rf.fit_column(sig, data, err, [(2.9, 0.3, 500.0)], MAX_AMP, lam) is None
    # no fringe in the data: the fringe terms do not lower chi^2 enough
    lam, sig, data, err, cont, _ = _column(amp=0.0, line=False)
    assert rf.fit_column(sig, data, err, [(2.9, 0.3, 10.0)], MAX_AMP, lam) is None
    # a "fringe" above twice MAX_AMP is spectral structure, not corrected
    lam, sig, data, err, cont, _ = _column(amp=0.2)
    assert rf.fit_column(sig, data, err, [(2.9, 0.3, 10.0)], MAX_AMP, lam) is None
    # fewer than 5 periods
    assert rf.fit_column(sig[:40], data[:40], err[:40], [(2.9, 0.3, 10.0)], MAX_AMP, lam[:40]) is None


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    """fringefreq and regions references in the official layouts (the simulator's fringefreq rows,
    written with astropy and asdf alone: stdatamodels' first model costs ~5-10 s here; the
    simulator's own files are opened strictly in tests/official/test_residual_fringe_official.py)."""
    import asdf

    d = tmp_path_factory.mktemp("rfrefs")
    slices = [100 * int(c) + k for c in "12" for k in range(1, design.CHANNELS[c].nslice + 1)]
    cols = [fits.Column("slice", "D", array=np.array(slices, float)),
            fits.Column("ffreq", "2D", array=[(cal.RESIDUAL_PERIOD[str(s // 100)], 0.0) for s in slices]),
            fits.Column("dffreq", "2D", array=[(0.3, 0.0)] * len(slices)),
            fits.Column("min_nfringes", "2K", array=[(1, 0)] * len(slices)),
            fits.Column("max_nfringes", "2K", array=[(3, 0)] * len(slices)),
            fits.Column("min_snr", "2D", array=[(10.0, 10.0)] * len(slices)),
            fits.Column("pgram_res", "2D", array=[(0.001, 0.001)] * len(slices))]
    hdus = [fits.PrimaryHDU(header=fits.Header({"REFTYPE": "FRINGEFREQ", "DATAMODL": "FringeFreqModel"}))]
    hdus += [fits.BinTableHDU.from_columns(cols, name=f"RFC_FREQ_{b}") for b in ("SHORT", "MEDIUM", "LONG")]
    hdus.append(fits.BinTableHDU.from_columns([fits.Column("wavelength", "D", array=[4.5, 29.0]),
                                               fits.Column("amplitude", "D", array=[0.05, 0.05])], name="MAX_AMP"))
    out = {"fringefreq": str(d / "miri_mrs_fringefreq_0001.fits")}
    fits.HDUList(hdus).writeto(out["fringefreq"])
    yy, xx = np.mgrid[0:design.NY, 0:design.NX]
    sl = design.truth_det2abl(xx, yy, "12", BAND)[0]
    out["regions"] = str(d / "regions.asdf")
    tree = {"meta": {"reftype": "REGIONS", "model_type": "RegionsModel"},
            "regions": np.repeat(sl[None].astype(np.int16), 9, axis=0)}
    asdf.AsdfFile(tree).write_to(out["regions"], all_array_compression="zlib")
    return out


BRIGHT = (101, 203)     # slices with signal; the others hold a faint sky (below min_snr)


@pytest.fixture(scope="module")
def image():
    """A full-frame MIRIFUSHORT `_cal`: the continuum x the simulator's residual fringe on BRIGHT
    slices (S/N 200), faint elsewhere (S/N 3); a NaN / DO_NOT_USE pixel and a flagged-only one.
    Returns (model, truth without fringe, slice map)."""
    yy, xx = np.mgrid[0:design.NY, 0:design.NX].astype(float)
    sl, alpha, beta, lam = design.truth_det2abl(xx, yy, "12", BAND)
    on = sl > 0
    cont = np.where(on, 10.0 * (np.nan_to_num(lam) / 5.0) ** 0.5 * (1 + 0.2 * np.cos(np.nan_to_num(alpha))), np.nan)
    bright = np.isin(sl, BRIGHT)
    err = np.where(bright, 0.005, 0.3) * cont
    sci = cont * cal.residual_fringe_truth(DET, BAND) + np.random.default_rng(3).normal(0, 1, sl.shape) * np.nan_to_num(err)
    sci = np.where(on, sci, np.nan)
    dq = np.where(on, 0, dqbits.DO_NOT_USE | dqbits.NON_SCIENCE).astype(np.uint32)
    ys, xs = np.nonzero(sl == BRIGHT[0])
    sci[ys[500], xs[500]] = np.nan
    dq[ys[500], xs[500]] |= dqbits.DO_NOT_USE
    dq[ys[700], xs[700]] |= dqbits.DO_NOT_USE             # flagged, finite: not used, NaN after (official)
    arrays = {"SCI": sci.astype(np.float32), "ERR": np.where(on, err, np.nan).astype(np.float32), "DQ": dq,
              "WAVELENGTH": lam.astype(np.float32)}
    for v in ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
        arrays[v] = (arrays["ERR"].astype(float) ** 2 / 3).astype(np.float32)
    primary = fits.Header({"INSTRUME": "MIRI", "EXP_TYPE": "MIR_MRS", "DETECTOR": DET, "CHANNEL": "12", "BAND": BAND,
                           "S_FRINGE": "COMPLETE", "S_PHOTOM": "COMPLETE"})
    return Model(primary, [Slit(fits.Header(), arrays)], "single"), cont, sl


def test_step_removes_the_fringe_on_signal_and_leaves_the_rest(image, refs):
    model, cont, sl = image
    out = rf.run(model, refs)
    assert out.primary["S_RESFRI"] == "COMPLETE"
    assert out.primary["R_FRIFRQ"] == "miri_mrs_fringefreq_0001.fits" and out.primary["R_REGION"] == "regions.asdf"
    a, b = model.slits[0], out.slits[0]
    before, after = a["SCI"].astype(float), b["SCI"].astype(float)
    changed = after != before
    # signal: the fringe (1%) removed to the fit noise on the columns fitted (nearly all of them)
    for s in BRIGHT:
        k = (sl == s) & np.isfinite(before) & ((a["DQ"] & dqbits.DO_NOT_USE) == 0)
        resid_before = np.std(before[k] / cont[k] - 1)
        resid_after = np.std(after[k] / cont[k] - 1)
        print(f"slice {s}: {changed[k].mean():.3f} of pixels corrected; rms of SCI / truth - 1 {resid_before:.4f} "
              f"-> {resid_after:.4f} (noise 0.005)")
        assert changed[k].mean() > 0.9
        assert resid_before > 0.0085 and resid_after < 0.0056
    # no signal (faint slices), off the slices, NaN and DO_NOT_USE pixels: unchanged
    faint = (sl > 0) & ~np.isin(sl, BRIGHT)
    assert not changed[faint].any()
    assert np.isnan(after[sl == 0]).all()
    bad = (a["DQ"] & dqbits.DO_NOT_USE) != 0
    assert np.isnan(after[bad]).all() and np.isnan(b["ERR"][bad]).all() and np.isfinite(before[bad]).sum() == 1
    assert np.isnan(after[np.isnan(before)]).all() and np.array_equal(a["DQ"], b["DQ"])
    # ERR and the variances follow SCI (f and f^2)
    k = changed & np.isfinite(before) & np.isfinite(after)
    f = before[k] / after[k]
    assert np.allclose(a["ERR"][k] / b["ERR"][k], f, rtol=1e-5)
    assert np.allclose(a["VAR_POISSON"][k] / b["VAR_POISSON"][k], f**2, rtol=1e-5)


def test_skip_and_missing_references_mark_skipped(image, refs):
    model = image[0]
    for out in (rf.run(model, refs, skip=True), rf.run(model, {"fringefreq": refs["fringefreq"], "regions": "N/A"}),
                rf.run(model, {})):
        assert out.primary["S_RESFRI"] == "SKIPPED"
        assert out.slits[0]["SCI"] is model.slits[0]["SCI"]


def test_bad_input_is_one_line(image, refs, tmp_path):
    model = image[0].copy(arrays=False)
    del model.primary["S_FRINGE"]
    with pytest.raises(InputError, match="S_FRINGE"):
        rf.run(model, refs)
    with pytest.raises(InputError, match="ignore_region_min has 2 values"):
        rf.run(image[0], refs, ignore_region_min=[5.0, 5.2], ignore_region_max=[5.1])
    bad = tmp_path / "bad_fringefreq.fits"
    bad.write_text("not a fits file")
    with pytest.raises(InputError, match="bad_fringefreq.fits"):
        rf.run(image[0], dict(refs, fringefreq=str(bad)))


def test_ignored_regions_are_not_fitted_but_corrected(image, refs):
    """A wavelength range the fit ignores (e.g. a strong line) is still divided by the fringe."""
    model, cont, sl = image
    out = rf.run(model, refs, ignore_region_min=[5.2], ignore_region_max=[5.3])
    lam = model.slits[0]["WAVELENGTH"]
    k = (sl == BRIGHT[0]) & (lam > 5.2) & (lam < 5.3) & np.isfinite(model.slits[0]["SCI"])
    after = out.slits[0]["SCI"][k].astype(float)
    assert np.std(after / cont[k] - 1) < 0.0056


def test_chain_skips_it_by_default_and_runs_it_after_photom_when_asked():
    from webbspec.modes import MODES
    from webbspec.pipeline import params, program

    exp = program.Exposure("jw01234001001_03102_00001_mirifushort", "x_rate.fits", "mir_mrs", True, fits.Header(),
                           backgrounds=["b_rate.fits"])
    assert "residual_fringe" in MODES["mir_mrs"].spec2
    default = program.spec2_chain(exp)
    assert "residual_fringe" not in default
    on = params.load(overrides={"spec2": {"residual_fringe": {"skip": False}}})
    chain = program.spec2_chain(exp, on)
    assert chain[chain.index("photom") + 1] == "residual_fringe" and chain == [
        s for s in MODES["mir_mrs"].spec2]
    assert program.spec2_products(chain)["cal"] == "residual_fringe"
    assert program.spec2_products(default)["cal"] == "photom"
    with pytest.raises(InputError, match="residual_fringe.skip"):
        params.load(overrides={"spec2": {"residual_fringe": {"skip": "maybe"}}})
