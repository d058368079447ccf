"""Incremental reprocessing on a REAL simulated program (NIRSpec FS, 3 nods, 5 sources: one per fixed slit).

Each test starts from a copy of one finished run (mtimes and Snakemake metadata kept), changes
one thing, and counts the jobs ``snakemake -n`` plans (its job table) and the jobs the real run
executes (its ``Finished jobid: N (Rule: R)`` lines); unchanged files must keep their mtime and
bytes. Shared helpers are also used by tests/test_restart.py.
"""

import collections
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from astropy.io import fits

from webbspec.instruments.nirspec.fs import SLIT_NAMES
from webbspec.pipeline import program as wsprogram

BIN = os.path.dirname(sys.executable)
KEY = "jw01234-o001_t001_nirspec_f290lp-g395m"          # the simulated spec3 product
NSOURCES = len(SLIT_NAMES)                               # one source per fixed slit
NBATCHES = 8
EXPOSURES = [f"jw01234001001_03101_{n:05d}_nrs1" for n in (1, 2, 3)]
FLAT = "sflat"          # the flat_field reference type a new flat is made for
CHAIN = ["assign_wcs", "bkg_subtract", "extract_2d", "srctype", "wavecorr", "flat_field", "pathloss",
         "photom", "resample_spec", "extract_1d"]


# ------------------------------------------------------------------ helpers


def webbspec(*args, **kw):
    return subprocess.run([os.path.join(BIN, "webbspec"), *map(str, args)], capture_output=True,
                          text=True, **kw)


def run(prog, *args):
    """``webbspec run PROG --cores 2 ARGS``: the CompletedProcess."""
    return webbspec("run", prog, "--cores", "2", *args)


def planned(result):
    """{rule: count} of the first job table of a (dry) run; {} when nothing is to be done."""
    text = result.stdout + "\n" + result.stderr
    assert result.returncode == 0, text[-4000:]
    if "Job stats:" not in text:
        assert "Nothing to be done" in text, text[-4000:]
        return {}
    counts = {}
    for line in text.split("Job stats:", 1)[1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m or m.group(1) == "total":
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def executed(result):
    """{rule: count} of the jobs a real run finished."""
    return dict(collections.Counter(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)",
                                               result.stdout + result.stderr)))


def ok(result):
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


def snapshot(prog):
    """{path relative to PROG: (mtime_ns, size)} of every output under PROG/webbspec (logs aside)."""
    out = {}
    top = os.path.join(prog, "webbspec")
    for d, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if os.path.join(d, x) != os.path.join(top, "logs")]
        for f in files:
            st = os.stat(os.path.join(d, f))
            out[os.path.relpath(os.path.join(d, f), prog)] = (st.st_mtime_ns, st.st_size)
    return out


def changed(before, after):
    return {p for p in after if before.get(p) != after[p]}


def spec2_step_file(exp, step):
    return f"webbspec/spec2/{exp}/{exp}_{step}.fits"


def stage3_products(prog):
    """{source key: [product paths relative to PROG]} from the batch manifests."""
    out = {}
    for m in sorted((prog / "webbspec" / "spec3" / KEY / "batches").glob("*.tsv")):
        lines = [ln.split("\t") for ln in m.read_text().splitlines() if ln.strip()]
        head = lines[0]
        for row in lines[1:]:
            rec = dict(zip(head, row))
            if rec.get("product"):
                out.setdefault(rec["source"], []).append(rec["product"])
    return out


def source_batches(prog):
    """{source key: batch} of the simulated product's sources."""
    keys = {k for e in EXPOSURES for k, _ in wsprogram.read_sources(
        prog / "webbspec" / "spec3" / KEY / "exp_to_source" / e / "sources.0-1.tsv")}
    return {k: wsprogram.batch_of(k, NBATCHES) for k in keys}


def simulated_program(root, seed=3):
    from webbspec.simulate import simulate

    prog = root / "prog"
    simulate("nrs_fs", str(prog), seed=seed, scale="small")
    return prog


def copy_program(src, dst):
    """A copy keeping mtimes and the Snakemake metadata (so the copy is up to date)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def new_context(prog, number, change, prepend=None):
    """Write refs/mappings/jwst/webbspec_<number>.pmap from the newest context with ``change``:
    {reftype: function(HDUList)} writes a modified copy of the file the program's exposures select
    under a new name (new rmap, imap and pmap; the other rmaps are shared); ``prepend``: {reftype:
    {"match", "file"}} a selection for some other configuration added to the reftype's rmap."""
    from webbspec.io import refs as wsrefs

    store = str(prog / "refs")
    hdr = fits.getheader(prog / f"{EXPOSURES[0]}_rate.fits")
    replace = {}
    for reftype, edit in (change or {}).items():
        src = wsrefs.bestrefs(hdr, (reftype,), store)[reftype]
        stem, ext = os.path.splitext(os.path.basename(src))
        dst = os.path.join(os.path.dirname(src), re.sub(r"_\d{4}$", "", stem) + f"_{number}{ext}")
        with fits.open(src) as h:
            edit(h)
            h.writeto(dst)
        replace[os.path.basename(src)] = os.path.basename(dst)
    add = [dict(rule, reftype=rt) for rt, rule in (prepend or {}).items()]
    return wsrefs.derive_context(store, None, number, replace=replace, add=add)


def selected(prog, reftype):
    """The file name the newest context selects for the program's first exposure."""
    from webbspec.io import refs as wsrefs

    hdr = fits.getheader(prog / f"{EXPOSURES[0]}_rate.fits")
    return os.path.basename(wsrefs.bestrefs(hdr, (reftype,), str(prog / "refs"))[reftype])


def scale_hdu(name, column=None, factor=1.001):
    def edit(h):
        if column:
            h[name].data[column] *= factor
        else:
            h[name].data = (h[name].data * factor).astype(h[name].data.dtype)
    return edit


def diff_jobs(text):
    """{rule: count} from the ``jobs (as snakemake -n plans them):`` block of ``refs diff``."""
    if "jobs (as snakemake -n plans them):" not in text:
        return {}
    out = {}
    for line in text.split("jobs (as snakemake -n plans them):", 1)[1].splitlines():
        m = re.match(r"^\s+(\w+) (\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def refs_diff(prog, old, new):
    r = webbspec("refs", "diff", old, new, "--program", prog)
    assert r.returncode == 0, r.stderr
    return r.stdout


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    prog = simulated_program(tmp_path_factory.mktemp("incremental"))
    r = ok(run(prog))
    assert set(executed(r)) >= set(CHAIN) | {"spec2_product", "exp_to_source", "spec3_batch"}
    assert planned(run(prog, "-n")) == {}
    return prog


@pytest.fixture
def prog(finished, tmp_path):
    return copy_program(finished, tmp_path / "prog")


# ------------------------------------------------------------------ tests


@pytest.mark.slow
def test_new_reference_context(prog):
    """A new flat re-runs flat_field and everything after it; refs diff predicts the dry run; a
    context touching no selection of the program re-runs nothing; products record the refs."""
    before = snapshot(prog)
    batches = source_batches(prog)
    flat1 = selected(prog, FLAT)
    new = new_context(prog, "0002", {FLAT: scale_hdu("SCI")})
    flat2 = selected(prog, FLAT)
    assert flat1.endswith("_0001.fits") and flat2 == flat1.replace("_0001.fits", "_0002.fits")
    text = refs_diff(prog, "webbspec_0001", new)
    assert f"flat_field.{FLAT}: {flat1} -> {flat2}" in text
    after_flat = CHAIN[CHAIN.index("flat_field"):]
    want = {**{s: 3 for s in after_flat}, "spec2_product": 9, "spec2_publish": 9, "exp_to_source": 3, "spec3_sources": 1,
            "spec3_batch": NBATCHES, "all": 1}
    assert diff_jobs(text) == want, text
    assert planned(run(prog, "-n")) == want
    for e in EXPOSURES:
        for kind in ("cal", "s2d", "x1d"):
            assert f"webbspec/spec2/{e}_{kind}.fits" in text
    for paths in stage3_products(prog).values():
        assert all(p in text for p in paths)

    r = ok(run(prog))
    done = executed(r)
    # the checkpoint's re-run drops the batches whose slices did not change (here: empty ones)
    nrun = len(set(batches.values()))
    assert done == dict(want, spec3_batch=nrun), done
    assert f"of the spec3_batch jobs, {nrun} hold affected sources" in text
    diff = changed(before, snapshot(prog))
    for e in EXPOSURES:
        for step in CHAIN:
            assert (spec2_step_file(e, step) in diff) == (step in after_flat), (e, step)
    for paths in stage3_products(prog).values():
        assert set(paths) <= diff
    assert planned(run(prog, "-n")) == {}

    # provenance: every product records its context and reference files
    from webbspec.io.provenance import reference_keyword

    rflat = reference_keyword(FLAT)
    e = EXPOSURES[0]
    cal = fits.getheader(prog / f"webbspec/spec2/{e}_cal.fits")
    assert cal["REFCTX"] == new and cal["CRDS_CTX"] == f"{new}.pmap" and cal[rflat] == flat2
    assert cal["R_PHOTOM"].endswith("_0001.fits") and cal["R_PTHLOS"].endswith("_0001.fits")
    x1d = fits.getheader(prog / f"webbspec/spec2/{e}_x1d.fits")
    assert x1d["R_EXTR1D"] == "nirspec_fs_extract1d_0001.json" and x1d["R_APCORR"].endswith("_0001.fits")
    kept = fits.getheader(prog / spec2_step_file(e, "wavecorr"))
    assert kept["REFCTX"] == "webbspec_0001" and "_0001." in kept["R_WAVCOR"]
    for paths in stage3_products(prog).values():
        for p in paths:
            h = fits.getheader(prog / p)
            assert h["REFCTX"] == new and h[rflat] == flat2 and h["R_EXTR1D"].endswith(".json"), p

    # a context whose change touches no selection of this program: nothing to do
    other = {"match": {"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "GRATING": "G140M"}, "file": flat2}
    noop = new_context(prog, "0003", {}, prepend={FLAT: other})
    text = refs_diff(prog, new, noop)
    assert "nothing to re-make" in text and diff_jobs(text) == {}
    assert planned(run(prog, "-n")) == {}

    # a new photom (dry run): photom and after; a new apcorr: Stage 2 extract_1d and all of Stage 3
    photom = new_context(prog, "0004", {"photom": scale_hdu("PHOTOM", "PHOTMJ", 1.01)})
    want = {"photom": 3, "resample_spec": 3, "extract_1d": 3, "spec2_product": 9, "spec2_publish": 9, "exp_to_source": 3,
            "spec3_sources": 1, "spec3_batch": NBATCHES, "all": 1}
    assert diff_jobs(refs_diff(prog, noop, photom)) == want
    assert planned(run(prog, "-n")) == want
    apcorr = new_context(prog, "0005", {"apcorr": scale_hdu("APCORR", "APCORR", 1.0)})
    assert diff_jobs(refs_diff(prog, noop, apcorr)) == planned(run(prog, "-n", "--config", f"context={apcorr}"))


@pytest.mark.slow
def test_changed_parameter(prog):
    """A Stage 2 parameter re-runs its step and what follows; a Stage 3 one only Stage 3."""
    over = prog / "photom.yaml"
    over.write_text("spec2: {photom: {apply_time_correction: false}}\n")
    assert planned(run(prog, "-n", "--configfile", over)) == {
        "photom": 3, "resample_spec": 3, "extract_1d": 3, "spec2_product": 9, "spec2_publish": 9, "exp_to_source": 3,
        "spec3_sources": 1, "spec3_batch": NBATCHES, "all": 1}
    over = prog / "resample.yaml"
    over.write_text("spec2: {resample_spec: {pixfrac: 0.8}}\n")
    assert planned(run(prog, "-n", "--configfile", over)) == {
        "resample_spec": 3, "extract_1d": 3, "spec2_product": 6, "spec2_publish": 6, "all": 1}

    before = snapshot(prog)
    over = prog / "width.yaml"
    over.write_text("spec3: {extract_1d: {extract_width: 5}}\n")
    want = {"spec3_batch": NBATCHES, "all": 1}
    assert planned(run(prog, "-n", "--configfile", over)) == want
    assert executed(ok(run(prog, "--configfile", over))) == want
    diff = changed(before, snapshot(prog))
    assert not any(p.startswith("webbspec/spec2/") or "/exp_to_source/" in p for p in diff)
    products = stage3_products(prog)
    assert len(products) == NSOURCES and all(p in diff for ps in products.values() for p in ps)
    assert planned(run(prog, "-n", "--configfile", over)) == {}


def _add_fourth_nod(prog, tmp_path):
    """A 4th nod (an independent realisation of nod 2's pointing) with its spec2 asn, in the spec3 asn."""
    from webbspec.simulate import simulate

    other = tmp_path / "other"
    simulate("nrs_fs", str(other), seed=11, scale="small")
    new = "jw01234001001_03101_00004_nrs1"
    with fits.open(other / f"{EXPOSURES[1]}_rate.fits") as h:
        h[0].header["EXPOSURE"] = "00004"
        h[0].header["FILENAME"] = f"{new}_rate.fits"
        h.writeto(prog / f"{new}_rate.fits")
    asn = yaml.safe_load((prog / "jw01234-o001_20240102t000000_spec2_00002_asn.json").read_text())
    asn["products"][0]["name"] = new
    asn["products"][0]["members"][0]["expname"] = f"{new}_rate.fits"
    import json

    (prog / "jw01234-o001_20240102t000000_spec2_00004_asn.json").write_text(json.dumps(asn, indent=2))
    s3 = prog / "jw01234-o001_spec3_00001_asn.json"
    asn = json.loads(s3.read_text())
    asn["products"][0]["members"].append({"expname": f"{new}_cal.fits", "exptype": "science"})
    s3.write_text(json.dumps(asn, indent=2))
    return new


@pytest.mark.slow
def test_new_exposure(prog, tmp_path):
    """A 4th nod runs its own Stage 2, its exp_to_source and the Stage 3 products it is part of."""
    before = snapshot(prog)
    nbatch = len(set(source_batches(prog).values()))
    new = _add_fourth_nod(prog, tmp_path)
    want = {**{s: 1 for s in CHAIN}, "spec2_product": 3, "spec2_publish": 3, "exp_to_source": 1, "spec3_sources": 1,
            "spec3_batch": NBATCHES, "all": 1}
    assert planned(run(prog, "-n")) == want
    done = executed(ok(run(prog)))
    assert done == dict(want, spec3_batch=nbatch), done
    diff = changed(before, snapshot(prog))
    assert not any(p.startswith("webbspec/spec2/") and new not in p for p in diff)
    assert not any(f"exp_to_source/{e}/" in p for e in EXPOSURES for p in diff)
    products = stage3_products(prog)
    assert len(products) == NSOURCES and all(p in diff for ps in products.values() for p in ps)
    new_sources = {k for k, _ in wsprogram.read_sources(
        prog / "webbspec" / "spec3" / KEY / "exp_to_source" / new / "sources.0-1.tsv")}
    assert new_sources == set(products)                  # every source has a slice of the new nod
    assert planned(run(prog, "-n")) == {}


def _slit_names(prog, slits):
    over = prog / "slits.yaml"
    over.write_text(yaml.safe_dump({"spec2": {"extract_2d": {"slit_names": slits}}}))
    return over


@pytest.mark.slow
def test_source_removed_then_added(prog):
    """Removing a source (extract_2d.slit_names) and adding it back re-makes that source's products
    only: the other sources of the same batches are skipped by their input signature (WSINSIG)."""
    products = stage3_products(prog)
    assert len(products) == NSOURCES
    slices = prog / "webbspec" / "spec3" / KEY / "exp_to_source" / EXPOSURES[0]
    slits = {k: fits.getheader(slices / f"{k}.fits", "SCI")["SLTNAME"] for k in products}
    gone = sorted(k for k in products if slits[k] != "S200A1")[-1]     # not the primary slit
    keep = [slits[k] for k in sorted(products) if k != gone]
    bytes_before = {p: (prog / p).read_bytes() for ps in products.values() for p in ps}
    before = snapshot(prog)

    over = _slit_names(prog, keep)
    steps = CHAIN[CHAIN.index("extract_2d"):]
    want = {**{s: 3 for s in steps}, "spec2_product": 9, "spec2_publish": 9, "exp_to_source": 3, "spec3_sources": 1,
            "spec3_batch": NBATCHES, "all": 1}
    assert planned(run(prog, "-n", "--configfile", over)) == want
    ok(run(prog, "--configfile", over))
    now = stage3_products(prog)
    assert sorted(now) == sorted(k for k in products if k != gone)
    diff = changed(before, snapshot(prog))
    for k in now:                       # the other sources: re-run batches skipped them
        assert now[k] == products[k]
        for p in now[k]:
            assert p not in diff and (prog / p).read_bytes() == bytes_before[p], p
    # the removed source's products are no longer listed; its files stay (see report) -> remove
    for p in products[gone]:
        (prog / p).unlink()

    before = snapshot(prog)
    ok(run(prog))                       # all slits again: the source comes back
    again = stage3_products(prog)
    assert sorted(again) == sorted(products)
    diff = changed(before, snapshot(prog))
    for k in again:
        for p in again[k]:
            assert (p in diff) == (k == gone), p
    for p in products[gone]:
        with fits.open(prog / p) as h:
            assert h[0].header["WSINSIG"]
    for k in now:
        for p in again[k]:
            assert (prog / p).read_bytes() == bytes_before[p]
    x1d = next(p for p in products[gone] if p.endswith("_x1d.fits"))
    with fits.open(prog / x1d) as h:
        assert np.isfinite(h["EXTRACT1D"].data["FLUX"]).any()


@pytest.mark.slow
def test_one_stage2_job_per_exposure(finished, tmp_path):
    """workflow.spec2_jobs: exposure -> one job per exposure runs its chain and writes the same
    files as the per-step jobs (same arrays and keywords). A new flat re-runs exactly the chain
    jobs of the exposures that select it, as refs diff predicts, and inside them only flat_field
    and the steps after it (the earlier step files keep their bytes and times); a changed photom
    parameter re-runs photom and what follows; a re-run with nothing changed plans nothing."""
    over = tmp_path / "exposure_jobs.yaml"
    over.write_text("workflow:\n  spec2_jobs: exposure\n")
    prog = simulated_program(tmp_path)                    # the same seed as `finished`
    stage2 = wsprogram.discover(prog).stage2
    rules = wsprogram.spec2_chain_rules(stage2)
    want = dict(collections.Counter(r for r, _ in rules.values()))
    assert planned(run(prog, "-n", "--configfile", over)).items() >= want.items()
    done = executed(ok(run(prog, "--configfile", over)))
    assert {k: v for k, v in done.items() if k.startswith("spec2_chain")} == want
    assert not set(done) & set(CHAIN)
    skip = {"DATE", "FILENAME", "WSSTPSIG"}
    for name, (_, chain) in rules.items():
        files = [spec2_step_file(name, s) for s in chain]
        files += [f"webbspec/spec2/{name}_{k}.fits" for k in wsprogram.spec2_published(chain, stage2[name].ints)]
        for rel in files:
            with fits.open(prog / rel) as a, fits.open(finished / rel) as b:
                assert [h.name for h in a] == [h.name for h in b], rel
                assert a[0].header["WSSTPSIG"]
                for ha, hb in zip(a, b):
                    assert [c for c in ha.header.items() if c[0] not in skip] == \
                           [c for c in hb.header.items() if c[0] not in skip], (rel, ha.name)
                    if ha.name != "ASDF" and ha.data is not None and not hasattr(ha, "columns"):
                        np.testing.assert_array_equal(ha.data, hb.data, err_msg=f"{rel} {ha.name}")
    for key, paths in stage3_products(finished).items():
        for rel in paths:
            with fits.open(prog / rel) as a, fits.open(finished / rel) as b:
                np.testing.assert_array_equal(a[1].data, b[1].data, err_msg=rel)

    def chain_jobs(counts):
        return {k: v for k, v in counts.items() if k.startswith("spec2_chain")}

    new = new_context(prog, "0002", {FLAT: scale_hdu("SCI")})
    r = webbspec("refs", "diff", "webbspec_0001", new, "--program", prog, "--configfile", over)
    assert r.returncode == 0, r.stderr
    jobs = diff_jobs(r.stdout)
    affected = {name for name, *_ in stage2_changes(r.stdout)}
    assert sum(n for k, n in jobs.items() if k.startswith("spec2_chain_")) == len(affected) > 0
    assert not set(jobs) & set(CHAIN) and "spec2_product" not in jobs
    assert planned(run(prog, "-n", "--configfile", over)) == jobs
    before = snapshot(prog)
    done = executed(ok(run(prog, "--configfile", over)))
    assert chain_jobs(done) == chain_jobs(jobs)
    diff = changed(before, snapshot(prog))
    after_flat = CHAIN[CHAIN.index("flat_field"):]
    for name, (_, chain) in rules.items():
        for step in chain:
            assert (spec2_step_file(name, step) in diff) == (name in affected and step in after_flat), (name, step)
    assert planned(run(prog, "-n", "--configfile", over)) == {}

    photom = tmp_path / "photom.yaml"
    photom.write_text("workflow:\n  spec2_jobs: exposure\nspec2: {photom: {apply_time_correction: false}}\n")
    before = snapshot(prog)
    done = executed(ok(run(prog, "--configfile", photom)))
    assert chain_jobs(done) == want
    diff = changed(before, snapshot(prog))
    after_photom = CHAIN[CHAIN.index("photom"):]
    for name, (_, chain) in rules.items():
        for step in chain:
            assert (spec2_step_file(name, step) in diff) == (step in after_photom), (name, step)
    assert planned(run(prog, "-n", "--configfile", photom)) == {}


def stage2_changes(text):
    """[(exposure, step, reftype)] of the Stage 2 selection changes listed by ``refs diff``."""
    return re.findall(r"^\s+(jw\w+) (\w+)\.(\w+): \S+ -> \S+$", text, flags=re.M)
