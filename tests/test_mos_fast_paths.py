"""The shortcuts that make NIRSpec MOS Stage 2 and its simulator fast give what the plain code gives:
the chain job's slitlets in two processes (the same products as one process), its writes in forked
children (errors reach the parent), the flat memo, the memory-mapped flat regions, the in-place GWA
rotations (only the components used), the imprint's float32 sums, the corrections' cast-buffer
products, XI/ETA straight from V2/V3, the bounds-only slitlet boxes, the simulator's overlapping
slitlets (``per_slot``) and its truth spectra (astropy's ECSV bytes). Timings:
bench/mos_spec2_speed.py and bench/mos_scale.py."""

import os

import numpy as np
import pytest
from astropy.io import fits

from webbspec.errors import InputError
from webbspec.instruments.nirspec import mos, msa, optics
from webbspec.io.refs import bestrefs
from webbspec.io.skycoords import radec_to_xieta
from webbspec.pipeline import params as wsparams
from webbspec.pipeline import stage2chain
from webbspec.pipeline.program import discover, spec2_chain, spec2_published
from webbspec.simulate import mos_plan, simulate, truth
from webbspec.simulate import nirspec_mos as nm
from webbspec.steps import _flatref, flat_field, reftypes


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    root = tmp_path_factory.mktemp("mosfast") / "p"
    simulate("nrs_mos", str(root), seed=3)
    return root


def _chain_spec(root, name, outdir):
    """What the workflow's chain job gets for exposure ``name`` (rules/common.smk spec2_chain_spec,
    products only, written under ``outdir``)."""
    exp = discover(str(root)).stage2[name]
    chain = spec2_chain(exp)
    cfg = wsparams.defaults()
    store = os.path.join(root, "refs")
    extra = {"imprint_subtract": {"imprints": exp.imprints}} if exp.imprints else {}
    steps = [{"name": s, "output": os.path.join(outdir, f"{name}_{s}.fits"),
              "refs": bestrefs(exp.header, reftypes(s), store), "params": wsparams.step_params(cfg, "spec2", s, exp.mode),
              "extra": extra.get(s, {})} for s in chain]
    products = [{"input": os.path.join(outdir, f"{name}_{st}.fits"), "output": os.path.join(outdir, f"{name}_{k}.fits")}
                for k, st in spec2_published(chain).items()]
    return {"input": exp.path, "steps": steps, "products": products, "save_steps": False}


def _same_files(a, b):
    with fits.open(a) as x, fits.open(b) as y:
        assert [(h.name, h.ver) for h in x] == [(h.name, h.ver) for h in y]
        for hx, hy in zip(x, y):
            cards = [{c.keyword: c.value for c in h.header.cards if c.keyword not in ("DATE", "FILENAME")}
                     for h in (hx, hy)]
            assert cards[0] == cards[1], (a, hx.name, hx.ver)
            if isinstance(hx, fits.BinTableHDU):
                assert hx.data.tobytes() == hy.data.tobytes(), (a, hx.name)
            elif hx.data is not None:
                assert np.array_equal(hx.data, hy.data, equal_nan=True), (a, hx.name, hx.ver)


def test_chain_slitlets_in_two_processes_equal_one(prog, tmp_path, monkeypatch, caplog):
    """The split (extract_2d onwards per group of slitlets, background slitlets in every group)
    writes byte-for-byte the products of one process (dates and file names aside)."""
    name = nm.exposure_root(1, 1, "NRS1")
    monkeypatch.setattr(stage2chain, "MIN_SPLIT_SLITLETS", 4)
    out = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("WEBBSPEC_CHAIN_WORKERS", workers)
        d = tmp_path / f"w{workers}"
        d.mkdir()
        spec = _chain_spec(prog, name, str(d))
        monkeypatch.chdir(prog)
        with caplog.at_level("INFO", logger="webbspec"):
            caplog.clear()
            ran = stage2chain.run_chain(spec, save_steps=False)
        assert ran == [s["name"] for s in spec["steps"]]
        split = [r.getMessage() for r in caplog.records if "processes" in r.getMessage()]
        assert bool(split) == (workers == "2"), split
        out[workers] = sorted(p["output"] for p in spec["products"])
    for a, b in zip(out["1"], out["2"]):
        _same_files(a, b)


def test_chain_split_needs_enough_slitlets_and_no_step_files(monkeypatch):
    steps = [{"name": n, "params": {}} for n in ("assign_wcs", "imprint_subtract", "extract_2d", "srctype", "photom")]
    monkeypatch.setenv("WEBBSPEC_CHAIN_WORKERS", "2")
    assert stage2chain._split_point(steps, 0, False) == 2
    assert stage2chain._split_point(steps, 0, True) is None                 # step files to merge
    assert stage2chain._split_point(steps, 0, ["photom"]) is None
    assert stage2chain._split_point(steps, 0, ["assign_wcs"]) == 2
    assert stage2chain._split_point(steps, 3, False) is None                # extract_2d up to date
    steps[2]["params"] = {"slit_names": "12"}
    assert stage2chain._split_point(steps, 0, False) is None
    monkeypatch.setenv("WEBBSPEC_CHAIN_WORKERS", "1")
    steps[2]["params"] = {}
    assert stage2chain._split_point(steps, 0, False) is None


def test_merged_primary_keywords():
    a, b = fits.Header(), fits.Header()
    a["S_WAVCOR"], b["S_WAVCOR"] = "SKIPPED", "COMPLETE"
    a["S_PTHLOS"] = b["S_PTHLOS"] = "COMPLETE"
    b["R_WAVCOR"] = "x.asdf"
    m = stage2chain._merge_primary([a, b])
    assert (m["S_WAVCOR"], m["S_PTHLOS"], m["R_WAVCOR"]) == ("COMPLETE", "COMPLETE", "x.asdf")
    b["EFFEXPTM"], a["EFFEXPTM"] = 1.0, 2.0
    with pytest.raises(ValueError, match="EFFEXPTM"):
        stage2chain._merge_primary([a, b])


def test_a_failed_background_write_raises_in_the_chain(tmp_path):
    def bad(model, path):
        raise InputError(path, "disk full")

    done = []
    with pytest.raises(InputError, match="disk full"):
        with stage2chain._Writes() as writes:
            writes.submit(bad, None, str(tmp_path / "x.fits"))
            writes.submit(lambda m, p: done.append(p), None, "here", here=True)
    assert done == ["here"]


def test_flat_memo_and_mapped_regions(prog, monkeypatch):
    """flat_field twice gives the same arrays (the second from the memo); the memory-mapped regions
    of the flat references (BZERO uint32 DQ included, padded outside the frame) equal astropy's data."""
    from webbspec.io import datamodels
    from webbspec.pipeline.steprun import call_step, read_input

    name = nm.exposure_root(1, 1, "NRS1")
    exp = discover(str(prog)).stage2[name]
    model, where = read_input(os.path.join(prog, exp.path))
    store = os.path.join(prog, "refs")
    monkeypatch.chdir(prog)             # the MSA file beside the exposure
    for s in ("assign_wcs", "msa_flagging", "extract_2d", "srctype"):
        model = datamodels.as_written(call_step(s, model, bestrefs(exp.header, reftypes(s), store), {}, {}, None, {}, where))
    refs = bestrefs(exp.header, reftypes("flat_field"), store)
    flat_field._MEMO.entries.clear()
    flat_field._MEMO.size = 0
    first = flat_field.run(model, refs)
    assert len(flat_field._MEMO.entries) == len(model.slits)
    again = flat_field.run(model, refs)
    for s1, s2 in zip(first.slits, again.slits):
        for k in ("SCI", "ERR", "DQ", "VAR_FLAT"):
            assert np.array_equal(s1[k], s2[k], equal_nan=True)
    for rt in ("sflat", "dflat"):
        with fits.open(refs[rt], memmap=False) as h:
            for ext in ("SCI", "DQ", "ERR"):
                hdu = h[ext]
                assert _flatref._mapped(hdu) is not None
                for y0, x0, ny, nx in ((5, 7, 20, 300), (-4, -2, 9, 11), (hdu.shape[-2] - 3, hdu.shape[-1] - 5, 9, 11)):
                    got = _flatref._section(hdu, y0, x0, ny, nx, 0, np.float64)
                    want = np.zeros(hdu.shape[:-2] + (ny, nx))
                    ys, xs = max(y0, 0), max(x0, 0)
                    ye, xe = min(y0 + ny, hdu.shape[-2]), min(x0 + nx, hdu.shape[-1])
                    want[..., ys - y0:ye - y0, xs - x0:xe - x0] = hdu.data[..., ys:ye, xs:xe]
                    assert np.array_equal(got, want, equal_nan=True), (rt, ext)


def test_rotations_and_xieta_as_the_plain_formulas(prog):
    rotate = optics._rotate_scalar          # the plain formulas (the scalar path)

    rng = np.random.default_rng(0)
    tx, ty = rng.normal(scale=0.1, size=(2, 7, 301))
    n = np.sqrt(1.0 + tx * tx + ty * ty)
    plain = (tx / n, ty / n, 1.0 / n)
    for a, b in zip(optics._dircos(tx, ty), plain):
        assert np.array_equal(a, b)
    angles = [0.03, -8.6, 0.2, -0.05]
    for axes, ang in (("xyzy", angles), ("yzyx", [-v for v in angles[::-1]])):
        for a, b in zip(optics._rotate(*plain, ang, axes), rotate(*plain, ang, axes)):
            assert np.array_equal(a, b)
    point = optics._rotate(0.1, 0.2, 0.97, angles, "xyzy")
    assert all(np.ndim(v) == 0 for v in point)
    v2, v3 = rng.uniform(-500, 500, (2, 1000))
    pointing = (53.1, -27.8, 135.0, 378.5, -428.0, 1.00001)
    ra, dec = optics.v2v3_to_sky(v2, v3, *pointing)
    xi, eta = optics.v2v3_to_xieta(v2, v3, 53.12, -27.79, *pointing)
    xi0, eta0 = radec_to_xieta(ra, dec, 53.12, -27.79)
    assert np.abs(xi - xi0).max() < 1e-8 and np.abs(eta - eta0).max() < 1e-8


def test_partial_rotations_float32_imprint_and_corrections_give_the_same_bits():
    """The GWA rotation with only the components a caller uses, the imprint's float32 sums and
    the corrections' product written through numpy's cast buffer equal the plain float64 formulas
    bit for bit (float32 operands of wildly different sizes included, NaN, inf and zeros)."""
    from webbspec.steps import _correction, imprint_subtract

    rng = np.random.default_rng(5)
    tx, ty = rng.normal(scale=0.1, size=(2, 5, 401))
    dirs = optics._dircos(tx, ty)
    angles = [0.03, -8.6, 0.2, -0.05]
    for axes in ("xyzy", "yzyx"):
        full = optics._rotate(*dirs, angles, axes)
        for outputs in ("xy", "y", "x"):
            part = optics._rotate(*dirs, angles, axes, outputs)
            for name, p, f in zip("xyz", part, full):
                assert (p is None) if name not in outputs else np.array_equal(p, f)
    a, b = (rng.normal(size=(2, 300, 70)) * 10.0 ** rng.integers(-30, 30, (2, 300, 70))).astype(np.float32)
    a[0, :6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45]
    b[0, :6] = [1.0, -np.inf, np.inf, -0.0, -0.0, -1e-45]
    big_endian = a.astype(">f4")
    with np.errstate(all="ignore"):
        for op in (np.subtract, np.add):
            want = op(a.astype(np.float64), b.astype(np.float64)).astype(np.float32)
            assert np.array_equal(imprint_subtract._combine(big_endian, b, op).view(np.uint32), want.view(np.uint32))
        want = np.sqrt(a.astype(np.float64) ** 2 + b.astype(np.float64) ** 2).astype(np.float32)
        got = imprint_subtract._quadrature(big_endian, b, rows=7)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
        f = rng.uniform(0.5, 2.0, (300, 70))
        f[0, :3] = [np.nan, 0.0, np.inf]
        for factor in (f, 1.0 / f, np.asarray(3.0e38)):
            for arr in (a, big_endian, a.astype(np.float64), np.stack([a, b])):
                want = (arr * factor).astype(arr.dtype, copy=False)
                got = _correction._times(arr, factor)
                assert got.dtype == want.dtype and got.shape == want.shape
                assert np.array_equal(got, want, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(want))


def test_bounds_only_boxes_equal_the_full_evaluation(prog):
    rate = os.path.join(prog, f"{nm.exposure_root(1, 2, 'NRS1')}_rate.fits")
    header = {**dict(fits.getheader(rate)), **dict(fits.getheader(rate, 1))}
    refs = bestrefs(fits.getheader(rate), mos.REFTYPES, os.path.join(prog, "refs"))
    shape = fits.getdata(rate, "SCI").shape
    quick = mos.exposure_slitlets(header, shape, refs, rate, arrays=False)
    full = mos.exposure_slitlets(header, shape, refs, rate, arrays=True)
    assert [(b.name, b.xstart, b.xstop, b.ystart, b.ystop) for b in quick] == \
        [(b.name, b.xstart, b.xstop, b.ystart, b.ystop) for b in full]
    assert len(quick) == len(msa.exposure_slitlets(header, rate))


def test_overlapping_slitlets_per_slot(prog):
    refdir = os.path.join(prog, "refs", "references", "jwst", "nirspec")
    _, plain, _ = nm.plan_program("full", 30, 4, refdir)
    _, same, _ = nm.plan_program("full", 30, 4, refdir, per_slot=1)
    assert plain == same
    _, plan, _ = nm.plan_program("full", 195, 4, refdir, per_slot=3)
    assert len(plan.configs) == 1 and len(plan.slitlets) == 200 and len(plan.sources) == 195
    shutters = [sh for s in plan.slitlets for sh in s.shutters()]
    assert len(set(shutters)) == len(shutters)
    per_slot = {}
    for s in plan.slitlets:
        per_slot.setdefault((s.quadrant in (1, 3), s.column), []).append(s)
    assert max(len(v) for v in per_slot.values()) == 3 and len(per_slot) <= len(mos_plan.slot_columns())


def test_truth_spectrum_bytes_as_astropy_writes_them(tmp_path):
    wave = np.linspace(2.80, 5.20, 12001)
    rng = np.random.default_rng(1)
    for sid, kind, prefix in ((100001, "POINT", "s"), (-7, "EXTENDED", "v"), (3, "EXTENDED", "b")):
        values = rng.lognormal(size=wave.size) * 10.0 ** rng.uniform(-8, 3)
        values[5] = np.nan
        a = truth.write_spectrum(sid, wave, values, kind, str(tmp_path / "astropy"), prefix)
        b = nm._write_spectrum(sid, wave, values, kind, str(tmp_path / "fast"), prefix)
        assert open(a, "rb").read() == open(b, "rb").read()


def test_one_configuration_of_a_program_is_the_same_bytes(tmp_path):
    """``configurations=[2]`` writes configuration 2's files exactly as the whole program does (its
    bad pixels come from configuration 1's light, rendered but not written)."""
    whole, part = tmp_path / "whole", tmp_path / "part"
    info = simulate("nrs_mos", str(whole), seed=2, nsources=20)
    assert info["configurations"] == 2
    sub = simulate("nrs_mos", str(part), seed=2, nsources=20, configurations=[2])
    assert sub["written_configurations"] == [2] and len(sub["rates"]) == len(info["rates"]) // 2
    files = sorted(os.path.relpath(os.path.join(d, f), part) for d, _, fs_ in os.walk(part) for f in fs_)
    assert not any("_031" + "01_" in f or "_021" + "01_" in f or f.endswith("_01_msa.fits") for f in files)
    assert any("_03102_" in f for f in files)
    for rel in files:
        if "spec3" in rel:                  # lists configuration 2's `_cal` files only
            continue
        assert (part / rel).read_bytes() == (whole / rel).read_bytes(), rel
    with pytest.raises(InputError, match="configurations"):
        simulate("nrs_mos", str(tmp_path / "bad"), seed=2, nsources=20, configurations=[3])
