"""resample_spec and webbspec.algorithms.drizzle against analytic scenes (tests/builders.py)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from builders import make_nods, make_slit  # noqa: E402

from webbspec.algorithms import drizzle as dz  # noqa: E402
from webbspec.io.datamodels import Model  # noqa: E402
from webbspec.errors import InputError  # noqa: E402
from webbspec.steps import resample_spec  # noqa: E402


def bump(lam):
    """A spectrum that vanishes at both ends of the band (no edge losses in totals)."""
    return np.exp(-((lam - 4.06) / 0.35) ** 2)


def input_total(slit):
    """sum SCI * pixel area in (lambda [um], along-slit [arcsec]) from the analytic Jacobian."""
    lam = slit["WAVELENGTH"].astype(float)
    s = dz.slit_axis_coords(slit, _axis_grid(slit), (slit.header["WSREFRA"], slit.header["WSREFDE"]))
    det = np.abs(np.gradient(lam, axis=1) * np.gradient(s, axis=0)
                 - np.gradient(lam, axis=0) * np.gradient(s, axis=1))
    return np.sum(slit["SCI"] * det)


def _axis_grid(slit):
    return dz.build_grid([slit])


def output_total(s2d):
    dlam = np.gradient(s2d["WAVELENGTH"][0].astype(float))
    return np.nansum(s2d["SCI"] * dlam[None, :]) * s2d.header["S2DCDLT2"]


@pytest.mark.parametrize("tilt, curve, pa", [(0.0, 0.0, 0.0), (0.3, 0.05, 30.0), (-0.2, -0.08, 250.0)])
def test_surface_brightness_flux_is_conserved(tilt, curve, pa):
    m = make_nods(nods=(-0.43, 0.0, 0.37), tilt=tilt, curve=curve, pa=pa, bunit="MJy/sr",
                  srctype="EXTENDED", amp=bump, src=0.11, fwhm=0.3, d2=2e-6)
    out = resample_spec.run(m)
    assert out.layout == "single" and len(out.slits) == 1
    s2d = out.slits[0]
    truth = np.mean([input_total(s) for s in m.slits])
    assert output_total(s2d) == pytest.approx(truth, rel=0.005)
    assert s2d.header["PIXAR_SR"] == pytest.approx(m.slits[0].header["PIXAR_SR"])
    for key in ("S2DRA0", "S2DDEC0", "S2DCRPX2", "S2DCDLT2", "S2DPA"):
        assert key in s2d.header
    assert s2d.header["S2DCDLT2"] == pytest.approx(0.1, rel=1e-4)
    assert (s2d.header["S2DPA"] - pa + 180) % 360 - 180 == pytest.approx(0.0, abs=1e-3)
    assert s2d["CON"].dtype == np.int32 and s2d["CON"].max() == 7
    assert out.primary["S_RESAMP"] == "COMPLETE"


@pytest.mark.parametrize("src", [0.13, -0.27])
def test_point_source_row_centroid_at_sky_position(src):
    m = make_nods(nods=(-0.43, 0.0, 0.37), tilt=0.3, curve=0.05, pa=30.0, src=src, fwhm=0.25)
    s2d = resample_spec.run(m).slits[0]
    row = dz.source_row(s2d.header, s2d.header["SRCRA"], s2d.header["SRCDEC"])
    sci = np.nan_to_num(s2d["SCI"].astype(float))
    r = np.arange(sci.shape[0])[:, None]
    cols = slice(20, -20)
    cen = np.sum(r * sci[:, cols], axis=0) / np.sum(sci[:, cols], axis=0)
    assert np.median(cen) == pytest.approx(row, abs=0.05)
    assert np.max(np.abs(cen - row)) < 0.1


def test_flux_density_scaled_with_pixel_scale_ratio():
    """MJy (point-source) data: column sums stay the source flux for pixel_scale_ratio 2."""
    m = make_nods(nods=(-0.4, 0.0, 0.4), tilt=0.2, amp=lambda lam: 2.0 + 0 * lam, fwhm=0.3)
    out1 = resample_spec.run(m).slits[0]
    out2 = resample_spec.run(m, pixel_scale_ratio=2.0).slits[0]
    assert out2.shape[0] == pytest.approx(2 * out1.shape[0], abs=2)
    assert out2.header["PIXAR_SR"] == pytest.approx(out1.header["PIXAR_SR"] / 2)
    for s in (out1, out2):
        col = np.nansum(s["SCI"][:, 10:-10], axis=0)
        assert np.median(col) == pytest.approx(2.0, rel=0.005)
    out3 = resample_spec.run(m, pixel_scale=0.05).slits[0]
    assert out3.header["S2DCDLT2"] == pytest.approx(0.05)


def test_err_matches_scatter_of_aperture_sums():
    """chi^2 of noise realisations: sums over apertures (all rows x 5 columns) and per pixel."""
    nreal, kw = 120, dict(nx=60, tilt=0.3, curve=0.03, amp=lambda lam: 0 * lam, rnoise=0.02, red_ivm=4.0)
    sums, preds, pix = [], [], []
    for k in range(nreal):
        m = make_nods(nods=(-0.43, 0.0, 0.37), seed=1000 + 10 * k, **kw)
        s2d = resample_spec.run(m).slits[0]
        full = np.all(s2d["CON"][0][:, 5:-5] == 7, axis=1)          # rows covered by all exposures
        sci = s2d["SCI"][full, 5:-5].astype(float)
        var = s2d["ERR"][full, 5:-5].astype(float) ** 2
        nb = sci.shape[1] // 5
        sums.append(sci[:, :nb * 5].reshape(sci.shape[0], nb, 5).sum(axis=(0, 2)))
        preds.append(var[:, :nb * 5].reshape(var.shape[0], nb, 5).sum(axis=(0, 2)))
        pix.append(sci / np.sqrt(var))
    sums, preds = np.array(sums), np.array(preds)
    chi2 = np.mean(sums ** 2 / preds)           # the scene is zero: truth of every sum is 0
    print(f"aperture chi2 {chi2:.3f}, per-pixel chi2 {np.mean(np.array(pix) ** 2):.3f}")
    assert 0.8 < chi2 < 1.2, chi2
    # drizzling correlates neighbours, so single output pixels scatter less than ERR says
    assert np.mean(np.array(pix) ** 2) < 1.0


def test_stage2_multislit_gives_one_rectified_slit_per_slit():
    a = make_slit(name="S200A1", source_id=1)
    b = make_slit(name="S200A2", source_id=2, ny=21, pa=45.0, ref=(214.81, 52.91))
    m = Model(primary=make_nods(nods=(0.0,)).primary.copy(), slits=[a, b], layout="multi")
    m.primary["DATAMODL"] = "MultiSlitModel"
    out = resample_spec.run(m)
    assert out.layout == "multi" and [s.name for s in out.slits] == ["S200A1", "S200A2"]
    single = resample_spec.run(Model(m.primary, [a], "single"))
    assert single.layout == "single"
    # single=True keeps every input apart
    assert len(resample_spec.run(make_nods(), single=True).slits) == 3


def test_blot_returns_the_input_scene():
    m = make_nods(nods=(-0.43, 0.0, 0.37), tilt=0.3, curve=0.05, fwhm=0.6, amp=lambda lam: 1 + 0 * lam)
    s2d = resample_spec.run(m).slits[0]
    slit = m.slits[1]
    grid = dz.Grid(wave=s2d["WAVELENGTH"][0].astype(float), ny=s2d.shape[0], ra0=s2d.header["S2DRA0"],
                   dec0=s2d.header["S2DDEC0"], pa=s2d.header["S2DPA"], cdelt2=s2d.header["S2DCDLT2"],
                   crpix2=s2d.header["S2DCRPX2"])
    x, y = dz.pixel_map(slit, grid, (slit.header["WSREFRA"], slit.header["WSREFDE"]))
    back = dz.blot(s2d["SCI"].astype(float), x, y)
    ok = np.isfinite(back)
    assert ok.mean() > 0.9
    peak = slit.truth.max()
    assert np.max(np.abs(back[ok] - slit.truth[ok])) < 0.05 * peak


def test_flagged_pixels_get_no_weight_and_all_flagged_is_an_error():
    m = make_nods(nods=(0.0, 0.3))
    m.slits[0]["DQ"][5:8, 100:110] = 1
    m.slits[0]["SCI"][5:8, 100:110] = 1e6
    s2d = resample_spec.run(m).slits[0]
    assert np.nanmax(s2d["SCI"]) < 10
    for s in m.slits:
        s["DQ"][:] = 1
    with pytest.raises(InputError):
        resample_spec.run(m)


def test_propagate_dq_and_missing_coordinates():
    m = make_nods()
    m.slits[0]["DQ"][10, 50:60] = 4
    s2d = resample_spec.run(m, propagate_dq=True).slits[0]
    assert 10 <= np.count_nonzero(s2d["DQ"] & 4) <= 30
    assert "DQ" not in resample_spec.run(m).slits[0]
    del m.slits[1].arrays["XI"]
    with pytest.raises(InputError, match="XI"):
        resample_spec.run(m)
