"""The simulator: determinism, file layout, truth files, noise model."""

import filecmp
import json
import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from webbspec.io import datamodels
from webbspec.errors import InputError
from webbspec.simulate import simulate, simulated_modes
from webbspec.simulate import nirspec_fs as fs


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "a"
    return out, simulate("nrs_fs", str(out), seed=0)


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs_ in os.walk(root) for f in fs_)


def test_same_seed_same_bytes_other_seed_differs(prog, tmp_path):
    root, _ = prog
    again = tmp_path / "b"
    simulate("nrs_fs", str(again), seed=0)
    assert _files(root) == _files(again)
    for rel in _files(root):
        assert filecmp.cmp(root / rel, again / rel, shallow=False), rel
    other = tmp_path / "c"
    simulate("nrs_fs", str(other), seed=1)
    rate = "jw01234001001_03101_00001_nrs1_rate.fits"
    assert not filecmp.cmp(root / rate, other / rate, shallow=False)


def test_rate_files_and_keywords(prog):
    root, info = prog
    assert len(info["rates"]) == 3
    yoffs = []
    for path in info["rates"]:
        m = datamodels.read(path)
        p = m.primary
        for key in ("TELESCOP", "INSTRUME", "EXP_TYPE", "DETECTOR", "FILTER", "GRATING", "FXD_SLIT",
                    "PATT_NUM", "PATTTYPE", "NUMDTHPT", "XOFFSET", "YOFFSET", "EFFEXPTM", "TARG_RA",
                    "TARG_DEC", "RA_REF", "DEC_REF", "PA_APER", "TARGTYPE", "SRCTYAPT", "SUBARRAY", "BUNIT"):
            assert key in p, key
        assert "DATE" not in p
        assert (p["EXP_TYPE"], p["DATAMODL"], p["BUNIT"]) == ("NRS_FIXEDSLIT", "ImageModel", "DN/s")
        s = m.slits[0]
        assert set(s.arrays) == {"SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"}
        bad = (s["DQ"] & 1) != 0
        assert 0 < bad.sum() < 30 and np.isnan(s["SCI"][bad]).all()
        np.testing.assert_allclose(s["ERR"][~bad] ** 2, s["VAR_POISSON"][~bad] + s["VAR_RNOISE"][~bad], rtol=1e-5)
        yoffs.append(p["YOFFSET"])
    assert yoffs == [-0.9, 0.0, 0.9]


def test_noise_matches_error_model(prog):
    """(SCI - truth)/ERR is unit normal away from cosmic rays and bad pixels."""
    root, info = prog
    m = datamodels.read(info["rates"][1])
    det = fs.layout("small")[0]
    # the detector flat D of the exposure's subarray, from the dflat (full frame, one plane)
    dflat = _ref(root, "nirspec_dflat_nrs1_0001.fits")
    flat = fits.getdata(dflat, "SCI")[0, det.y0:det.y0 + det.ny, det.x0:det.x0 + det.nx].astype(float)
    true, onslit = fs.render(det, {"XOFFSET": m.primary["XOFFSET"], "YOFFSET": m.primary["YOFFSET"],
                                   "PRIMARY": "S200A1"}, flat)
    cr = fits.getdata(info["crmasks"][1]).astype(bool)
    s = m.slits[0]
    ok = ~cr & ((s["DQ"] & 1) == 0)
    z = (s["SCI"] - true)[ok] / s["ERR"][ok]
    assert abs(np.mean(z)) < 0.02 and abs(np.std(z) - 1) < 0.02
    zs = (s["SCI"] - true)[ok & onslit] / s["ERR"][ok & onslit]
    assert abs(np.std(zs) - 1) < 0.03
    # cosmic rays: >= 10 sigma above the truth, some on the slits
    hits = cr & ((s["DQ"] & 1) == 0)
    assert 30 <= cr.sum() <= 80
    assert np.all((s["SCI"] - true)[hits] / s["ERR"][hits] > 2.5)
    assert (hits & onslit).sum() >= 10


def test_truth_files(prog):
    root, info = prog
    src = Table.read(root / "truth" / "sources.ecsv")
    assert list(src["source_id"]) == [1, 12, 13, 14, 15]
    assert list(src["srctype"]) == ["POINT", "EXTENDED", "EXTENDED", "EXTENDED", "EXTENDED"]
    assert src["ra"].unit == "deg"
    for row in src:
        t = Table.read(root / "truth" / "spectra" / f"s{row['source_id']:09d}.ecsv")
        col = "flux" if row["srctype"] == "POINT" else "surf_bright"
        assert t["wavelength"].unit == "um" and t[col].unit == ("Jy" if col == "flux" else "MJy/sr")
        assert np.all(np.diff(t["wavelength"]) > 0) and np.all(t[col] > 0)
        assert t["wavelength"][0] <= fs.LMIN and t["wavelength"][-1] >= fs.LMAX
    for rate, mask in zip(info["rates"], info["crmasks"]):
        assert os.path.basename(mask) == os.path.basename(rate).replace(".fits", "_crmask.fits")
        data = fits.getdata(mask)
        assert data.dtype == np.uint8 and data.shape == fits.getdata(rate, "SCI").shape
    assert (root / "truth" / "README.md").exists()


def test_associations(prog):
    root, info = prog
    spec2 = [json.load(open(p)) for p in info["asns"] if "_spec2_" in p]
    assert len(spec2) == 3
    for asn in spec2:
        assert {"asn_type", "asn_rule", "asn_id", "program", "asn_pool", "products"} <= set(asn)
        assert asn["asn_type"] == "spec2"
        (prod,) = asn["products"]
        kinds = [m["exptype"] for m in prod["members"]]
        assert kinds == ["science", "background", "background"]
        assert prod["members"][0]["expname"] == prod["name"] + "_rate.fits"
        assert all(os.path.exists(root / m["expname"]) for m in prod["members"])
    spec3 = json.load(open(root / "jw01234-o001_spec3_00001_asn.json"))
    assert spec3["asn_type"] == "spec3"
    (prod,) = spec3["products"]
    assert prod["name"] == "jw01234-o001_t001_nirspec_f290lp-g395m"
    assert sorted(m["expname"] for m in prod["members"]) == sorted(
        os.path.basename(r).replace("_rate", "_cal") for r in info["rates"])


def _ref(root, name):
    (path,) = [os.path.join(d, name) for d, _, files in os.walk(root / "refs") if name in files]
    return path


def test_reference_tables_match_the_model(prog):
    """The official-format calibration references tabulate the simulator's own functions."""
    from webbspec.simulate import flat_truth

    root, _ = prog
    lam = np.array([3.0, 4.44, 5.05])
    with fits.open(_ref(root, "nirspec_fs_pathloss_0001.fits")) as h:
        ps, hdr = h["PS", 1].data, h["PS", 1].header
        assert hdr["APERTURE"] == "S200A1" and ps.ndim == 3 and hdr["CDELT3"] < 1e-6      # metres
        wave = (hdr["CRVAL3"] + (np.arange(ps.shape[0]) + 1 - hdr["CRPIX3"]) * hdr["CDELT3"]) * 1e6
        col = int(round(hdr["CRPIX1"] - 1 + (0.05 - hdr["CRVAL1"]) / hdr["CDELT1"]))     # SRCXPOS 0.05
        np.testing.assert_allclose(np.interp(lam, wave, ps[:, 0, col]),
                                   fs.point_throughput(0.2, lam, 0.05 * 0.2), rtol=2e-5)
    with fits.open(_ref(root, "nirspec_fs_apcorr_0001.fits")) as h:
        row = h["APCORR"].data[0]
        assert row["apcorr"].shape == row["size"].shape + (row["pixphase"].size,)
        i7 = int(np.flatnonzero(row["size"][:, 0] == 7)[0])
        assert np.all(row["apcorr"][i7] > 1.0) and np.all(row["apcorr"][i7] < 1.05)
    with fits.open(_ref(root, "nirspec_fs_fflat_f290lp_0001.fits")) as h:
        row = h["FAST_VARIATION"].data[0]
        np.testing.assert_allclose(np.interp(lam, row["wavelength"], row["data"]),
                                   flat_truth.fore_fast(row["slit_name"].strip(), lam), rtol=1e-5)
    with fits.open(_ref(root, "nirspec_fs_sflat_g395m_f290lp_nrs1_0001.fits")) as h:
        assert h["SCI"].data.shape == (2048, 2048)
        assert h["SCI"].data[1000, 700] == pytest.approx(flat_truth.spectrograph_image(700, 1000), rel=1e-6)


def test_unknown_and_unsimulated_modes(tmp_path):
    assert "nrs_fs" in simulated_modes()
    with pytest.raises(InputError, match="nrs_nope"):
        simulate("nrs_nope", str(tmp_path))
    with pytest.raises(InputError, match="nis_soss.*not simulated"):
        simulate("nis_soss", str(tmp_path))
    with pytest.raises(InputError, match="huge"):
        simulate("NRS_FIXEDSLIT", str(tmp_path), scale="huge")


def test_full_scale_uses_both_real_detectors(tmp_path):
    info = simulate("nrs_fs", str(tmp_path / "full"), scale="full")
    dets = {}
    for path in info["rates"]:
        with fits.open(path) as h:
            dets.setdefault(h[0].header["DETECTOR"], []).append(h["SCI"].data.shape)
    assert sorted(dets) == ["NRS1", "NRS2"]
    assert all(shape == (2048, 2048) for shapes in dets.values() for shape in shapes)
