"""The NIRSpec MOS simulator (webbspec/simulate/nirspec_mos.py and its modules): the small program's
files exist and agree with each other (MSA file <-> plan <-> truth <-> `_rate` headers), sources sit
inside their shutters at every nod, the rendered light equals the truth spectra through the
references, the noise and imprint model, and the 1000-source full-scale plan.
(Official formats and the official assign_wcs on these files: tests/official/test_nrs_mos_sim_official.py.)"""

import json
import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from scipy.interpolate import RegularGridInterpolator
from scipy.ndimage import map_coordinates

from webbspec.instruments.nirspec import mos, msa
from webbspec.instruments.nirspec.optics import Optics
from webbspec.io import associations
from webbspec.io.refs import bestrefs
from webbspec.io.skycoords import radec_to_xieta
from webbspec.simulate import mos_plan, mos_render, simulate
from webbspec.simulate import mos_scene as scene
from webbspec.simulate import nirspec_mos as nm

REFTYPES = ("fpa", "camera", "collimator", "disperser", "fore", "msa", "ote", "wavelengthrange", "msaoper", "fflat",
            "sflat", "dflat", "wavecorr", "pathloss", "barshadow", "photom", "area", "extract1d", "apcorr")


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    root = tmp_path_factory.mktemp("mos") / "p"
    info = simulate("nrs_mos", str(root), seed=0)
    refdir = os.path.join(root, "refs", "references", "jwst", "nirspec")
    dets, plan, sky = nm.plan_program("small", None, 0, refdir)
    return root, info, dets, plan, sky


def _header(path):
    return {**dict(fits.getheader(path)), **dict(fits.getheader(path, 1))}


def _refs(path, root):
    return bestrefs(fits.getheader(path), REFTYPES, os.path.join(root, "refs"))


def test_program_files_and_rate_keywords(prog):
    root, info, dets, plan, _ = prog
    assert (info["configurations"], info["sources"], info["slitlets"]) == (1, 12, 15)
    assert len(info["rates"]) == 6 and len(info["imprints"]) == 2
    for path in info["rates"] + info["imprints"]:
        h = fits.getheader(path)
        assert (h["EXP_TYPE"], h["FILTER"], h["GRATING"]) == ("NRS_MSASPEC", "F290LP", "G395M")
        assert (h["DATAMODL"], h["OPMODE"], h["PATTTYPE"]) == ("ImageModel", "MSASPEC", "3-SHUTTER-SLITLET")
        assert (h["SUBSTRT2"], h["SUBSIZE1"], h["SUBSIZE2"]) == (713, 2048, 640)
        assert os.path.exists(os.path.join(root, h["MSAMETFL"])) and h["MSAMETID"] == 1
        assert h["IS_IMPRT"] == (path in info["imprints"])
        s = fits.getheader(path, "SCI")
        for key in ("RA_REF", "DEC_REF", "ROLL_REF", "V2_REF", "V3_REF", "V3I_YANG", "VPARITY", "VA_SCALE"):
            assert key in s, key
        with fits.open(path) as hdul:
            assert [x.name for x in hdul] == ["PRIMARY", "SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE"]
            assert hdul["SCI"].data.shape == (640, 2048)
    nods = sorted((fits.getheader(p)["DETECTOR"], fits.getheader(p)["PATT_NUM"], fits.getheader(p)["YOFFSET"])
                  for p in info["rates"])
    assert nods == [(d, k, pytest.approx(y)) for d in ("NRS1", "NRS2") for k, y in ((1, 0.0), (2, 0.53), (3, -0.53))]


def test_msa_file_reads_back_the_plan_at_every_nod(prog):
    root, info, _, plan, sky = prog
    (cfg,) = plan.configs
    kinds = {s.kind for s in cfg}
    assert kinds == {"source", "background", "virtual"} and {s.quadrant for s in cfg} == {1, 2, 3, 4}
    for path in info["rates"]:
        h = _header(path)
        got = {s.slitlet_id: s for s in msa.exposure_slitlets(h, path)}
        shift = mos_plan.NOD_SHIFTS[h["PATT_NUM"] - 1]
        assert sorted(got) == sorted(s.slitlet_id for s in cfg)
        for p in cfg:
            s = got[p.slitlet_id]
            assert s.shutters == p.shutters() and (s.quadrant, s.xcen) == (p.quadrant, p.row)
            assert s.source_id == p.source_id
            if p.kind == "background":
                assert s.background and s.source_name == f"1234_BKG{p.slitlet_id}" and s.shutter_state == "1x1"
                continue
            assert s.ycen == p.column + shift and s.shutter_state == {0: "1x1", 1: "11x", -1: "x11"}[shift]
            if p.kind == "virtual":
                assert s.virtual and s.source_id < 0
                continue
            assert (s.source_xpos, s.source_ypos) == pytest.approx((p.source.xpos, p.source.ypos), abs=1e-7)
            assert s.stellarity == pytest.approx(p.source.stellarity)
            assert (s.source_ra, s.source_dec) == pytest.approx(sky[p.slitlet_id], abs=1e-9)
            assert (s.stellarity > 0.75 or s.stellarity < 0) == (p.source.kind == "point")


def _sky_to_slit(optics, key, ra, dec):
    """Slit-frame (x, y) of a sky position: Newton on the forward V2/V3 -> sky."""
    v = np.array(optics.slit_to_v2v3(key, 0.0, 0.0, 4e-6), float)
    for _ in range(4):
        r, d = (float(a) for a in optics.v2v3_to_sky(*v))
        jac = np.empty((2, 2))
        for j in range(2):
            dv = np.zeros(2)
            dv[j] = 1e-3
            r2, d2 = (float(a) for a in optics.v2v3_to_sky(*(v + dv)))
            jac[:, j] = np.array(radec_to_xieta(r2, d2, r, d)) / 1e-3
        v = v + np.linalg.solve(jac, radec_to_xieta(ra, dec, r, d))
    return optics.v2v3_to_slit(key, v[0], v[1], 4e-6)


def test_sources_sit_inside_their_shutters_at_every_nod(prog):
    root, info, _, plan, _ = prog
    src = Table.read(root / "truth" / "sources.ecsv")
    for path in info["rates"][:3]:                     # NRS1: the three nods (the sky is detector-free)
        h = _header(path)
        optics = Optics(_refs(path, root), h)
        for s in msa.exposure_slitlets(h, path):
            if s.background or s.virtual:
                continue
            row = src[src["source_id"] == s.source_id][0]
            xs, ys = _sky_to_slit(optics, (s.quadrant, s.xcen, s.ycen), row["ra"], row["dec"])
            assert abs(xs) < 0.5 and abs(ys) < 0.5
            assert (xs, ys) == pytest.approx((row["xpos"], row["ypos"]), abs=1e-3)   # the MSA file's estimate


def test_truth_files_in_the_shared_layout(prog):
    root, info, _, plan, _ = prog
    src = Table.read(root / "truth" / "sources.ecsv")
    assert list(src.colnames[:5]) == ["source_id", "srctype", "slit", "ra", "dec"]
    assert {"kind", "stellarity", "xpos", "ypos", "size", "msametid", "shutter_row",
            "shutter_column"} <= set(src.colnames)
    assert src["ra"].unit == "deg" and len(src) == len(plan.slitlets) and len(set(src["source_id"])) == len(src)
    assert sorted(set(src["kind"])) == ["background", "extended", "point", "virtual"]
    for row in src:
        prefix = {"background": "b", "virtual": "v"}.get(row["kind"], "s")
        t = Table.read(root / "truth" / "spectra" / f"{prefix}{abs(row['source_id']):09d}.ecsv")
        col = "flux" if row["srctype"] == "POINT" else "surf_bright"
        assert t["wavelength"].unit == "um" and t[col].unit == ("Jy" if col == "flux" else "MJy/sr")
        assert t["wavelength"][0] <= scene.LMIN and t["wavelength"][-1] >= scene.LMAX and np.all(t[col] > 0)
        assert (row["srctype"] == "POINT") == (row["kind"] == "point")
    for rate, mask in zip(info["rates"], info["crmasks"]):
        assert os.path.basename(mask) == os.path.basename(rate).replace(".fits", "_crmask.fits")
        data = fits.getdata(mask)
        assert data.dtype == np.uint8 and data.shape == (640, 2048) and 40 <= data.sum() <= 60
    assert (root / "truth" / "README.md").exists()


def test_associations(prog):
    root, info, _, _, _ = prog
    spec2 = [associations.read(p) for p in info["asns"] if "_spec2_" in p]
    assert len(spec2) == 6
    for asn in spec2:
        (prod,) = asn.products
        assert asn.asn_rule == "candidate_Asn_Lv2NRSMSA"
        assert [m.exptype for m in prod.members] == ["science", "imprint"]
        imp = fits.getheader(prod.of("imprint")[0].path)
        sci = fits.getheader(prod.science[0].path)
        assert imp["IS_IMPRT"] and imp["DETECTOR"] == sci["DETECTOR"] and imp["MSAMETID"] == sci["MSAMETID"]
    (spec3,) = [associations.read(p, check_files=False) for p in info["asns"] if "_spec3_" in p]
    (prod,) = spec3.products
    assert prod.name == "jw01234-o002_{source_id}_nirspec_f290lp-g395m"
    assert sorted(m.expname for m in prod.members) == sorted(os.path.basename(r).replace("_rate", "_cal")
                                                             for r in info["rates"])


def test_the_context_selects_every_mos_reference(prog):
    root, info, _, _, _ = prog
    for path in (info["rates"][0], info["rates"][3]):
        refs = _refs(path, root)
        assert all(v != "N/A" and os.path.exists(v) for v in refs.values()), refs
        assert os.path.basename(refs["msa"]) == "nirspec_mos_msa_0001.asdf"
        assert fits.getheader(path)["DETECTOR"].lower() in os.path.basename(refs["sflat"])


def _ref_tables(refs, quadrant, detector):
    pl = fits.open(refs["pathloss"])
    ps, h = pl["PS", 2].data, pl["PS", 2].header
    axes = [h[f"CRVAL{i}"] + (np.arange(n) + 1 - h[f"CRPIX{i}"]) * h[f"CDELT{i}"] for i, n in ((3, ps.shape[0]),
                                                                                              (2, ps.shape[1]),
                                                                                              (1, ps.shape[2]))]
    un_h = pl["UNI", 2].header
    un = pl["UNI", 2].data
    un_wave = (un_h["CRVAL1"] + (np.arange(un.size) + 1 - un_h["CRPIX1"]) * un_h["CDELT1"]) * 1e6
    phot = fits.getdata(refs["photom"], "PHOTOM")[0]
    fflat = fits.open(refs["fflat"])
    fast = [fflat["FAST_VARIATION", quadrant].data[0], fits.getdata(refs["sflat"], "FAST_VARIATION")[0],
            fits.getdata(refs["dflat"], "FAST_VARIATION")[0]]

    def flat_fast(lam):
        return np.prod([np.interp(lam, r["wavelength"], r["data"]) for r in fast], axis=0)

    return {"ps": RegularGridInterpolator((axes[0] * 1e6, axes[1], axes[2]), ps), "un": (un_wave, un),
            "conv": lambda lam: phot["photmj"] * np.interp(lam, phot["wavelength"], phot["relresponse"]),
            "fore": fflat["SCI", quadrant].data[0], "fast": flat_fast, "simage": fits.getdata(refs["sflat"], "SCI")}


def test_point_source_light_is_the_truth_spectrum_through_the_references(prog):
    """Sum of a point source's rendered rate over each detector column (detector flat 1) against
    F_nu(lam) * PS(lam, x, y) * flats(lam) / photom(lam) from the reference files, lam where the
    forward optics put the source's light of that column."""
    root, info, dets, plan, _ = prog
    det = dets[0]
    refs = _refs(info["rates"][0], root)
    ones = np.ones((det.ny, det.nx))
    checked = 0
    for p in plan.configs[0]:
        if p.kind != "source" or p.source.kind != "point":
            continue
        src, t = p.source, _ref_tables(refs, p.quadrant, det.name)
        img = mos_render.shutter_image(det.optics, det, (p.quadrant, p.row, p.column), 3)
        for shift in (0, 1):
            rate = mos_render.source_rate(img, src, shift, ones).sum(axis=0)
            lam = np.linspace(2.88e-6, 5.09e-6, 3000)
            key = (p.quadrant, p.row, p.column + shift)
            xc, yc = det.optics.slit_to_detector(key, src.xpos, src.ypos, lam)
            cols = np.arange(img.box[2], img.box[3] + 1)
            lx = np.interp(cols + det.x0, xc, lam * 1e6, left=np.nan, right=np.nan)
            ok = np.isfinite(lx)
            ytrace = np.round(np.interp(cols + det.x0, xc, yc)).astype(int)
            where = np.stack([lx[ok], np.full(ok.sum(), src.ypos + shift), np.full(ok.sum(), src.xpos)], -1)
            want = (scene.spectrum(src, lx[ok]) * 1e-6 * t["ps"](where) / t["conv"](lx[ok]) * t["fast"](lx[ok])
                    * t["fore"][p.column + shift - 1, p.row - 1] * t["simage"][ytrace[ok], cols[ok] + det.x0])
            ratio = rate[ok] / want
            assert np.median(ratio) == pytest.approx(1.0, abs=0.003) and np.percentile(np.abs(ratio - 1), 99) < 0.01
            checked += 1
    assert checked >= 4


def test_extended_source_and_sky_calibrate_back_to_the_truth(prog):
    """Rendered sky + extended source calibrated with the reference files and the instrument
    layer's per-pixel WAVELENGTH / SLIT_Y (mos.exposure_slitlets): the truth surface brightness."""
    root, info, dets, plan, _ = prog
    det, path = dets[0], info["rates"][0]                     # NRS1, dither point 1
    refs = _refs(path, root)
    boxes = {b.slitlet.slitlet_id: b for b in mos.exposure_slitlets(_header(path), (det.ny, det.nx), refs, path)}
    bar = fits.open(refs["barshadow"])
    bh, bar3 = bar["DATA1X1"].header, bar["DATA1X3"].data
    area = fits.getdata(refs["area"], "AREA")
    ones = np.ones((det.ny, det.nx))
    checked = 0
    for p in plan.configs[0]:
        if p.kind == "virtual" or (p.kind == "source" and p.source.kind == "point") or p.slitlet_id not in boxes:
            continue
        t, b = _ref_tables(refs, p.quadrant, det.name), boxes[p.slitlet_id]
        img = mos_render.shutter_image(det.optics, det, (p.quadrant, p.row, p.column), 3)
        full = np.zeros((det.ny, det.nx))
        y0, y1, x0, x1 = img.box
        full[y0:y1 + 1, x0:x1 + 1] = mos_render.sky_rate(img, ones)
        if p.kind == "source":
            full[y0:y1 + 1, x0:x1 + 1] += mos_render.source_rate(img, p.source, 0, ones)
        rate = full[b.ystart:b.ystop + 1, b.xstart:b.xstop + 1]
        lam, ys = b.arrays["WAVELENGTH"].astype(float), b.arrays["SLIT_Y"].astype(float)
        u = ys / b.slit_yscale
        ok = np.isfinite(lam) & (np.abs(u) < 0.95)
        lam, u, rate = lam[ok], u[ok], rate[ok]
        shadow = map_coordinates(bar3, [(u - bh["CRVAL2"]) / bh["CDELT2"], (lam * 1e-6 - bh["CRVAL1"]) / bh["CDELT1"]],
                                 order=1)
        sel = (area["quadrant"] == p.quadrant) & (area["shutter_x"] == p.row) & (area["shutter_y"] == p.column)
        pixar_sr = float(area["pixarea"][sel][0]) * (np.pi / 648000.0) ** 2
        simage = t["simage"][b.ystart + det.y0:b.ystop + det.y0 + 1, b.xstart + det.x0:b.xstop + det.x0 + 1]
        flat = t["fast"](lam) * t["fore"][p.column - 1, p.row - 1] * simage[ok]
        cal = rate * t["conv"](lam) / (flat * pixar_sr * np.interp(lam, *t["un"]) * shadow)
        want = scene.sky_mjysr(lam)
        if p.kind == "source":
            s = p.source
            want = want + scene.spectrum(s, lam) * np.exp(-0.5 * ((u * b.slit_yscale - s.ypos) * 0.46 / s.size) ** 2)
        good = shadow > 0.3
        ratio = cal[good] / want[good]
        assert np.median(ratio) == pytest.approx(1.0, abs=0.002) and np.percentile(np.abs(ratio - 1), 99) < 0.01
        checked += 1
    assert checked >= 4


def test_noise_imprint_and_failed_open_shutters(prog):
    """SCI - (noise-free scene) over ERR is unit normal; the imprint (leakage + failed-open
    shutters) is in both the science and the imprint exposure."""
    root, info, dets, plan, _ = prog
    det = dets[0]
    pixel_flat = fits.getdata(_refs(info["rates"][0], root)["dflat"], "SCI")[0, det.y0:det.y0 + det.ny]
    shape = (det.ny, det.nx)
    failed = [mos_render.shutter_image(det.optics, det, k, 1) for k in plan.failed_open]
    imprint, fo_lit = mos_render.failed_open_rate(failed, shape, pixel_flat.astype(float))
    imprint += mos_render.leak_pattern(det.optics, det)
    images = {p.slitlet_id: mos_render.shutter_image(det.optics, det, (p.quadrant, p.row, p.column), 3)
              for p in plan.configs[0]}
    science, lit = mos_render.render_exposure(images, plan.configs[0], 1, shape, pixel_flat.astype(float))
    assert (fo_lit & lit).sum() > 1000             # a failed-open shutter's spectrum crosses slitlets
    for path, true in ((info["imprints"][0], imprint), (info["rates"][0], science + imprint)):
        with fits.open(path) as h:
            sci, err, dq = h["SCI"].data, h["ERR"].data, h["DQ"].data
        crs = fits.getdata(info["crmasks"][0]).astype(bool) if path == info["rates"][0] else np.zeros(shape, bool)
        good = (dq == 0) & ~crs
        z = (sci - true)[good] / err[good]
        assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02
        assert np.isnan(sci[dq != 0]).all() and 10 <= (dq != 0).sum() <= 20
    # the failed-open shutters' light: many sigma in the imprint where they shine
    assert fo_lit.any() and (imprint[fo_lit] / np.sqrt(1e-5)).max() > 3
    with open(_refs(info["rates"][0], root)["msaoper"]) as fh:
        oper = json.load(fh)["msaoper"]
    assert [(s["Q"], s["x"], s["y"]) for s in oper if s["state"] == "open"] == [tuple(k) for k in plan.failed_open]
    taken = {sh for p in plan.slitlets for sh in p.shutters()}
    assert not taken & set(plan.failed_open)


def test_full_scale_plan_of_1000_sources(prog):
    """--nsources 1000 --scale full: the geometry plan alone (rendering: bench numbers in the report)."""
    root, *_ = prog
    refdir = os.path.join(root, "refs", "references", "jwst", "nirspec")
    dets, plan, sky = nm.plan_program("full", 1000, 5, refdir)
    assert len(plan.sources) == 1000 and len({s.source_id for s in plan.sources}) == 1000
    assert len(plan.configs) >= 12 and len({s.slitlet_id for s in plan.slitlets}) == len(plan.slitlets)
    for cfg in plan.configs:
        assert sum(s.kind == "background" for s in cfg) >= 2
        slots = [(s.quadrant in (1, 3), s.column) for s in cfg]
        assert len(set(slots)) == len(slots)              # one slitlet per slot: no shared detector rows
    kinds = [s.kind for s in plan.sources]
    assert 0.5 < kinds.count("point") / 1000 < 0.7
    # every slitlet's light (with the official cutout margins) on the full frames
    for s in plan.slitlets[::25]:
        x, y = dets[0].optics.slit_to_detector((s.quadrant, s.row, s.column), 0.0, np.array([-2.2, 2.2]), 4e-6)
        assert 0 < y.min() and y.max() < 2047
    rows = mos_plan.msa_slitlets(plan.configs[0], nm.PROGRAM, lambda s: sky[s.slitlet_id])
    path = str(root.parent / "full_msa.fits")
    msa.write_msa_file(path, rows, nm.PROGRAM)
    assert len(msa.read_slitlets(path, 1, 2)) == len(plan.configs[0])


@pytest.mark.slow
def test_same_seed_same_bytes(prog, tmp_path):
    root, *_ = prog
    again = tmp_path / "again"
    simulate("nrs_mos", str(again), seed=0)
    files = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs_ in os.walk(root) for f in fs_)
    assert files == sorted(os.path.relpath(os.path.join(d, f), again) for d, _, fs_ in os.walk(again) for f in fs_)
    for rel in files:
        assert open(root / rel, "rb").read() == open(again / rel, "rb").read(), rel
