"""The NIRSpec IFU simulator: the rendering through our WCS conserves the light of the scene
(footprints tile the 3" x 3" field), the truth cube holds the sources' flux, the calibration
references open as their official models, and (slow) a whole program is written as documented."""

import glob
import json
import os

import numpy as np
import pytest
from astropy.io import fits

from webbspec.instruments.nirspec import ifu
from webbspec.io import cubes
from webbspec.io.skycoords import radec_to_xieta
from webbspec.simulate import nrs_ifu, nrs_ifu_calrefs, nrs_ifu_scene, nrs_ifu_truth

from nrs_ifu_setup import ifu_coordinates

BAND = (3.1, 3.9)     # um, on NRS1


@pytest.fixture(scope="module")
def exposures():
    """{kind: (header keys, coordinates with slit edges, slice width)} of the background and the
    first science exposure."""
    return {kind: ifu_coordinates(kind) for kind in ("background", "science")}


def _band_integral(exposures, kind):
    """(sum over the band's pixels of the light [MJy] x DWAVE [um], light, coordinates, mask, keys)."""
    keys, c, width = exposures[kind]
    lam = c["WAVELENGTH"]
    sel = (c["SLICE"] > 0) & (lam >= BAND[0]) & (lam <= BAND[1])
    mjy = nrs_ifu.footprint_light(c, width, keys, sel)
    return float(np.sum(mjy * c["DWAVE"][sel])), mjy, c, sel, keys


def _integral(f):
    w = np.linspace(*BAND, 400001)          # 2e-6 um: resolves the 0.0025 um lines
    return float(np.trapezoid(f(w), w))


def test_sky_light_of_the_field_is_conserved(exposures):
    """The background exposure sees the uniform sky over the 30 x 0.1" x 3.0" field: the pixels'
    footprints tile it (the band's edges cut rows at pixel centres: < 1e-3)."""
    got = _band_integral(exposures, "background")[0]
    field = 30 * 0.1 * 3.0 * nrs_ifu_scene.SR_PER_ARCSEC2
    assert abs(got / (_integral(nrs_ifu_scene.sky_mjysr) * field) - 1) < 2e-3


def test_point_source_light_and_position(exposures, monkeypatch):
    """With the sky and the extended source off, the field holds the whole point source, centred
    on the target."""
    monkeypatch.setattr(nrs_ifu_scene, "sky_mjysr", lambda lam: 0.0 * np.asarray(lam))
    monkeypatch.setattr(nrs_ifu_scene, "extended_jy", lambda lam: 0.0 * np.asarray(lam))
    got, mjy, c, sel, keys = _band_integral(exposures, "science")
    want = _integral(lambda w: nrs_ifu_scene.point_source_jy(w) * 1e-6)
    assert abs(got / want - 1) < 2e-3, got / want
    xi, eta = (np.sum(c[k][sel] * mjy) / np.sum(mjy) for k in ("XI", "ETA"))
    txi, teta = radec_to_xieta(nrs_ifu_scene.TARG_RA, nrs_ifu_scene.TARG_DEC, keys["RA_REF"], keys["DEC_REF"])
    assert np.hypot(xi - txi, eta - teta) < 0.01            # arcsec: a tenth of a pixel


def test_truth_cube_holds_the_sources_flux():
    sci, wave, wcs = nrs_ifu_truth.truth_cube((3.30, 3.36))
    flux = sci.sum(axis=(1, 2)) * (0.1 ** 2 * nrs_ifu_scene.SR_PER_ARCSEC2) * 1e6          # Jy
    want = nrs_ifu_scene.point_source_jy(wave) + nrs_ifu_scene.extended_jy(wave)
    assert np.allclose(flux, want, rtol=5e-3)
    # the point source sits at the reference pixel (the target)
    plane = sci[np.argmax(nrs_ifu_scene.point_source_jy(wave))]
    assert np.unravel_index(np.argmax(plane), plane.shape) == (20, 20)
    assert wcs.crval1 == nrs_ifu_scene.TARG_RA and wcs.cdelt1 < 0


def test_calibration_references_open_as_official_models(tmp_path):
    from stdatamodels.jwst import datamodels as dm

    sel = nrs_ifu_calrefs.write_all(str(tmp_path), {s: 0.01 for s in range(1, 31)}, nrs_ifu.PHOTMJ)
    classes = {"photom": dm.NrsMosPhotomModel, "area": dm.NirspecIfuAreaModel, "extract1d": dm.Extract1dIFUModel,
               "cubepar": dm.NirspecIFUCubeParsModel, "apcorr": dm.NrsIfuApcorrModel}
    for rt, rows in sel.items():
        path = str(tmp_path / rows[0]["file"])
        if rt == "msaoper":                  # the official JSON, no data model
            import json

            shutters = json.load(open(path))["msaoper"]
            assert sorted((s["Q"], s["x"], s["y"]) for s in shutters if s["state"] == "open") == \
                sorted(nrs_ifu_calrefs.FAILED_OPEN)
            continue
        with classes[rt](path, strict_validation=True) as m:
            m.validate()
            if rt == "extract1d":            # read after closing: the official step does
                data = m.data
            if rt == "apcorr":
                table = m.apcorr_table
    assert np.allclose(data.radius, 0.6) and np.allclose(data.outer_bkg, 1.0)
    # apcorr = 1 / enclosed fraction of the PSF: a 0.6" circle at 4 um holds ~99.9% of it
    i, j = list(np.round(table.radius[:, 0], 3)).index(0.6), int(np.argmin(np.abs(table.wavelength - 4.0)))
    assert 1.0 < table.apcorr[i, j] < 1.002
    want = 1.0 / nrs_ifu_calrefs.enclosed_fraction(float(table.radius[0, j]), float(table.wavelength[j]))
    assert abs(table.apcorr[0, j] / want - 1) < 1e-6 and want > 1.4
    with fits.open(tmp_path / sel["area"][0]["file"]) as h:
        assert list(h["AREA"].data["slice_id"]) == list(range(30))


@pytest.mark.slow
def test_program_is_written_as_documented(tmp_path):
    from webbspec.io import datamodels, refs
    from webbspec.simulate import simulate
    from webbspec.steps import assign_wcs

    info = simulate("nrs_ifu", str(tmp_path / "p"), seed=5)
    root = tmp_path / "p"
    assert len(info["rates"]) == 6 and len(info["crmasks"]) == 6
    for rate in info["rates"]:
        h = fits.getheader(rate)
        assert (h["EXP_TYPE"], h["DETECTOR"], h["GRATING"], h["FILTER"]) == ("NRS_IFU", "NRS1", "G395H", "F290LP")
        with fits.open(rate) as hdul:
            assert hdul["SCI"].data.shape == (2048, 2048)
            assert {"ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"} <= {x.name for x in hdul}
    kinds = [(fits.getheader(r)["BKGDTARG"], fits.getheader(r)["IS_IMPRT"]) for r in info["rates"]]
    assert kinds.count((True, False)) == 1 and kinds.count((False, True)) == 1
    asns = [json.load(open(a)) for a in info["asns"]]
    spec2 = [a for a in asns if a["asn_type"] == "spec2"]
    assert len(spec2) == 5
    assert {m["exptype"] for m in spec2[0]["products"][0]["members"]} == {"science", "background", "imprint"}
    sel = refs.bestrefs(datamodels.read_header(info["rates"][0]), assign_wcs.REFTYPES + ("photom", "area", "cubepar",
                                                                                          "extract1d"),
                        str(root / "refs"))
    assert all(os.path.isfile(sel[rt]) for rt in ifu.REFTYPES + ("photom", "area", "cubepar", "extract1d"))
    assert len(glob.glob(str(root / "truth" / "spectra" / "*.ecsv"))) == 3
    cube = cubes.read(glob.glob(str(root / "truth" / "cubes" / "*_s3d.fits"))[0])
    assert cube.sci.shape[1:] == (41, 41)
    crmask = fits.getdata(info["crmasks"][0])
    assert 100 <= crmask.sum() <= 160
    # Stage 2 on the dedicated background, its imprint exposure subtracted: the sky (truth)
    from webbspec.steps import flat_field, photom

    bkg, imprint = (datamodels.read(r) for r in info["rates"][4:6])
    bkg.slits[0]["SCI"] = bkg.slits[0]["SCI"] - imprint.slits[0]["SCI"]
    for step in (assign_wcs, flat_field, photom):
        bkg = step.run(bkg, refs.bestrefs(bkg.primary, step.REFTYPES, str(root / "refs")))
    img = bkg.slits[0]
    inner = np.zeros(img["SCI"].shape, bool)
    for r in bkg.tables["SLICES"]:           # away from the slice ends and the 11-pixel margins
        inner[r["YSTART"] + 3:r["YSTOP"] - 2, r["XSTART"] + 12:r["XSTOP"] - 10] = True
    ok = inner & np.isfinite(img["SCI"]) & (img["WAVELENGTH"] > 2.9) & (img["WAVELENGTH"] < 4.0)
    ratio = img["SCI"][ok] / nrs_ifu_scene.sky_mjysr(img["WAVELENGTH"][ok])
    assert abs(np.median(ratio) - 1) < 0.01, np.median(ratio)     # per-pixel S/N ~2: the median of 1.5 M
