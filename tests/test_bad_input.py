"""Bad input (issues 2 and 9), unit level: each raises InputError whose message is ONE line
naming the file (and slit), and the workflow-facing paths defer it to the job that owns it.
The whole-workflow counterpart is tests/test_bad_input_workflow.py (slow)."""

import os
import shutil
import sys

import numpy as np
import pytest
from astropy.io import fits

sys.path.insert(0, os.path.dirname(__file__))
from builders import make_slit  # noqa: E402
from test_realdata import CEERS  # noqa: E402

from webbspec.io import associations, datamodels, realdata, refs
from webbspec.pipeline import exp_to_source, program, stage3
from webbspec.workflow import rules_entry  # noqa: E402
from webbspec.io.datamodels import Model  # noqa: E402
from webbspec.errors import InputError  # noqa: E402
from webbspec.pipeline.steprun import run_step  # noqa: E402

PRIMARY = {"TELESCOP": "JWST", "INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "DETECTOR": "NRS1",
           "FILTER": "F290LP", "GRATING": "G395M", "DATAMODL": "MultiSlitModel", "S_PHOTOM": "COMPLETE"}


def _one_line(err, *words):
    msg = str(err.value)
    assert "\n" not in msg and msg == f"{err.value.path}: {err.value.problem}"
    for w in words:
        assert w in msg, msg
    return msg


def _same(err2, err):
    """The same error (the association path may be given relative to the program directory)."""
    assert err2.value.problem == err.value.problem
    assert os.path.basename(err2.value.path) == os.path.basename(err.value.path)


def _rate(path, **keys):
    hdr = fits.Header(PRIMARY)
    hdr.update(keys)
    hdus = [fits.PrimaryHDU(header=hdr)] + [fits.ImageHDU(np.ones((64, 64), np.float32), name=n)
                                            for n in ("SCI", "ERR")]
    fits.HDUList(hdus).writeto(path)
    return str(path)


# ------------------------------------------------------------------ issue 2


def test_truncated_fits(tmp_path):
    p = _rate(tmp_path / "jw1_rate.fits")
    data = open(p, "rb").read()
    open(p, "wb").write(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        datamodels.read(p)
    _one_line(err, "jw1_rate.fits", "not a readable FITS file")
    with pytest.raises(InputError) as err:
        run_step("assign_wcs", p, str(tmp_path / "out.fits"))
    _one_line(err, "jw1_rate.fits")
    assert not (tmp_path / "out.fits").exists()


def test_missing_sci(tmp_path):
    p = _rate(tmp_path / "jw1_rate.fits")
    with fits.open(p) as h:
        fits.HDUList([x for x in h if x.name != "SCI"]).writeto(p, overwrite=True)
    with pytest.raises(InputError) as err:
        datamodels.read(p)
    _one_line(err, "jw1_rate.fits", "no SCI extension")


def test_unknown_exp_type(tmp_path):
    p = _rate(tmp_path / "jw01234001001_03101_00001_nrs1_rate.fits", EXP_TYPE="NRS_NOSUCH")
    with pytest.raises(InputError) as err:
        run_step("assign_wcs", p, str(tmp_path / "out.fits"))
    _one_line(err, "_nrs1_rate.fits", "unknown EXP_TYPE 'NRS_NOSUCH'")
    assert not (tmp_path / "out.fits").exists()
    with pytest.raises(InputError) as err:
        program.discover(tmp_path, strict=True)
    _one_line(err, "_nrs1_rate.fits", "NRS_NOSUCH")


@pytest.mark.parametrize("text, problem", [
    ("{not json", "malformed association JSON"),
    ("", "malformed association JSON"),
    ("[]", "must be a JSON object"),
    ('{"products": []}', "has no products"),
])
def test_malformed_or_empty_association(tmp_path, text, problem):
    p = tmp_path / "x_spec3_asn.json"
    p.write_text(text)
    with pytest.raises(InputError) as err:
        associations.read(p)
    _one_line(err, "x_spec3_asn.json", problem)
    # the workflow's job for a bad association runs a step on it: the same error
    with pytest.raises(InputError) as err2:
        run_step("assign_wcs", str(p), str(tmp_path / "out.fits"))
    _same(err2, err)


def test_association_naming_a_missing_member(tmp_path):
    _rate(tmp_path / "a_rate.fits")
    asn = associations.asn_from_list(["a_rate.fits", "gone_rate.fits"], "a",
                                     exptypes=["science", "background"], asn_type="spec2")
    p = associations.write(asn, tmp_path / "a_spec2_asn.json")
    with pytest.raises(InputError) as err:
        associations.read(p)
    _one_line(err, "a_spec2_asn.json", "member gone_rate.fits does not exist")
    with pytest.raises(InputError) as err2:
        run_step("assign_wcs", p, str(tmp_path / "out.fits"))
    _same(err2, err)
    assert not (tmp_path / "out.fits").exists()


def test_context_naming_a_missing_reference(tmp_path):
    from webbspec.io import crdsmap
    from webbspec.steps import reftypes

    rt = reftypes("flat_field")[0]
    store = tmp_path / "refs"
    crdsmap.write_context(store, [{"reftype": rt, "file": "gone_flat.fits", "useafter": "2022-01-01",
                                   "match": {"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT"}}])
    rmap = str(store / "mappings" / "jwst" / f"webbspec_nirspec_{rt}_0001.rmap")
    hdr = fits.Header(dict(PRIMARY, **{"DATE-OBS": "2024-01-02", "TIME-OBS": "00:00:00"}))
    with pytest.raises(InputError) as err:
        refs.bestrefs(hdr, (rt,), store, strict=True)
    _one_line(err, f"webbspec_nirspec_{rt}_0001.rmap", f"{rt} selection names missing file gone_flat.fits")
    sel = refs.bestrefs(hdr, (rt,), store)            # the workflow's (deferred) selection
    assert sel == {rt: rmap}
    p = _rate(tmp_path / "jw1_rate.fits", **{"DATE-OBS": "2024-01-02", "TIME-OBS": "00:00:00"})
    with pytest.raises(InputError) as err2:
        run_step("flat_field", p, str(tmp_path / "out.fits"), refs=sel)
    assert str(err2.value) == str(err.value) and not (tmp_path / "out.fits").exists()


def test_pmap_with_a_syntax_error(tmp_path):
    from webbspec.io import crdsmap

    store = tmp_path / "refs"
    pmap = crdsmap.write_context(store, [{"reftype": "photom", "file": "N/A", "match": {"INSTRUME": "NIRSPEC"}}])
    with open(pmap, "a") as f:
        f.write("selector = {\n")
    with pytest.raises(InputError) as err:
        refs.bestrefs(fits.Header(PRIMARY), ("photom",), store)
    _one_line(err, "webbspec_0001.pmap", "not a readable CRDS mapping")


def test_store_without_mappings(tmp_path, monkeypatch):
    (tmp_path / "cache" / "references" / "jwst").mkdir(parents=True)
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "cache"))
    with pytest.raises(InputError) as err:
        refs.bestrefs(fits.Header(PRIMARY), ("photom",), refs.default_store(tmp_path))
    _one_line(err, str(tmp_path / "cache"), "no mappings/jwst/*.pmap context")


# ------------------------------------------------------------------ issue 9


def _cal(path, ids=(7, 8), drop_sourceid=None):
    slits = [make_slit(source_id=i, name=f"S200A{k + 1}", seed=k) for k, i in enumerate(ids)]
    if drop_sourceid is not None:
        del slits[drop_sourceid].header["SOURCEID"]
    return datamodels.write(Model(fits.Header(PRIMARY), slits, "multi"), str(path))


def _noasdf(tmp_path):
    p = tmp_path / "jw01345062001_03101_00001_nrs2_cal.fits"
    with fits.open(CEERS[0]) as h:
        fits.HDUList([x for x in h if x.name != "ASDF"]).writeto(p)
    return str(p)


def _badasdf(tmp_path):
    p = tmp_path / "jw01345062001_03101_00002_nrs2_cal.fits"
    with fits.open(CEERS[0]) as h:
        hdus = [x for x in h if x.name != "ASDF"]
        col = fits.Column(name="ASDF_METADATA", format="10B", array=np.zeros((1, 10), np.uint8))
        hdus.append(fits.BinTableHDU.from_columns([col], name="ASDF"))
        fits.HDUList(hdus).writeto(p)
    return str(p)


@pytest.mark.parametrize("make, problem", [(_noasdf, "no ASDF extension"),
                                           (_badasdf, "ASDF extension cannot be deserialized")])
def test_cal_with_missing_or_broken_asdf(tmp_path, make, problem):
    p = make(tmp_path)
    name = os.path.basename(p)
    with pytest.raises(InputError) as err:
        exp_to_source.split_exposure(p, tmp_path / "e2s")
    msg = _one_line(err, name, problem)
    # the workflow's exp_to_source: one error slice per source named in the slit headers
    pairs = exp_to_source.split_exposure(p, tmp_path / "e2s", defer_errors=True)
    assert [k for k, _ in pairs] == ["1345_933"] and pairs[0][1].endswith(".error")
    assert str(exp_to_source.read_error_slice(pairs[0][1])) == msg
    rows = (tmp_path / "e2s" / "sources.tsv").read_text().splitlines()
    assert rows[1].split("\t") == ["1345_933", "1345_933.error", "s000000933"]


def test_slit_without_sourceid(tmp_path):
    cal = _cal(tmp_path / "jw1_cal.fits", drop_sourceid=1)
    with pytest.raises(InputError) as err:
        exp_to_source.split_exposure(cal, tmp_path / "e2s")
    msg = _one_line(err, "jw1_cal.fits[slit S200A2]", "slit has no SOURCEID")
    pairs = dict(exp_to_source.split_exposure(cal, tmp_path / "e2s", defer_errors=True))
    assert pairs["7"].endswith("7.fits")                         # the good slit is split
    bad = pairs["error-jw1_cal-slit-S200A2"]
    assert str(exp_to_source.read_error_slice(bad)) == msg


@pytest.mark.parametrize("kind", ["rate", "x1d", "s2d"])
def test_member_that_is_not_a_stage2_product(tmp_path, kind):
    if kind == "rate":
        p = _rate(tmp_path / "jw1_rate.fits")
        problem = "assign_wcs has not run"
    elif kind == "x1d":
        p = str(tmp_path / "jw1_x1d.fits")
        fits.HDUList([fits.PrimaryHDU(header=fits.Header(PRIMARY)), fits.BinTableHDU.from_columns(
            [fits.Column(name="WAVELENGTH", format="D", array=np.ones(3))], name="EXTRACT1D")]).writeto(p)
        problem = "a spectrum table"
    else:
        p = str(tmp_path / "jw1_s2d.fits")
        shutil.copy(CEERS[0], p)
        with fits.open(p, mode="update") as h:
            h[0].header["S_RESAMP"] = "COMPLETE"
        problem = "a resampled (_s2d) product"
    with pytest.raises(InputError) as err:
        realdata.read_stage2(p)
    msg = _one_line(err, os.path.basename(p), problem)
    pairs = exp_to_source.split_exposure(p, tmp_path / "e2s", defer_errors=True)
    keys = [k for k, _ in pairs]
    assert all(str(exp_to_source.read_error_slice(path)) == msg for _, path in pairs)
    assert keys == [f"error-jw1_{kind}"]      # the exposure as a whole: no source to name


def test_batch_manifest_records_failed_sources(tmp_path, capsys):
    """One source fails (its slice is an error slice); the other is made; the manifest has both
    rows; the job prints the one-line error and exits 2; the failed source leaves no product."""
    good = _cal(tmp_path / "jw1_cal.fits", ids=(7,))
    bad = _cal(tmp_path / "jw2_cal.fits", ids=(8,))
    with fits.open(bad, mode="update") as h:
        h[0].header["EXP_TYPE"] = "NRS_NOSUCH"
    tables = []
    for cal in (good, bad):
        out = tmp_path / "e2s" / os.path.basename(cal)[:3]
        exp_to_source.split_exposure(cal, out, defer_errors=True)
        tables.append(str(out / "sources.tsv"))
    gathered = tmp_path / "sources.tsv"
    assert rules_entry.main(["gather-sources", str(gathered)] + tables) == 0
    manifest = tmp_path / "batch.tsv"
    log = tmp_path / "batch.log"
    rc = rules_entry.main(["--log", str(log), "spec3-batch", str(manifest), "--product",
                           "jw01234-o001_t001-{source_id}_nirspec_f290lp-g395m", "--mode", "nrs_fs",
                           "--batch", "0", "--nbatches", "1", "--outdir", str(tmp_path / "spec3"),
                           "--sources", str(gathered)])
    assert rc == 2
    rows = [ln.split("\t") for ln in manifest.read_text().splitlines()]
    assert rows[0] == ["source", "source_id", "status", "product", "message"]
    status = {r[0]: r[2] for r in rows[1:]}
    assert status == {"7": "written", "8": "error"}
    err_row = [r for r in rows[1:] if r[0] == "8"][0]
    assert "jw2_cal.fits: unknown EXP_TYPE 'NRS_NOSUCH'" in err_row[4]
    line = f"webbspec: {err_row[4]}"
    assert line in capsys.readouterr().err and line in log.read_text()
    made = sorted(os.listdir(tmp_path / "spec3"))
    assert any("s000000007" in m for m in made) and not any("s000000008" in m for m in made)


def test_failed_source_leaves_no_partial_products(tmp_path, monkeypatch):
    cal = _cal(tmp_path / "jw1_cal.fits", ids=(7,))
    slices = dict(exp_to_source.split_exposure(cal, tmp_path / "e2s"))
    from webbspec.steps import extract_1d

    def boom(*a, **k):
        raise InputError("jw1_cal.fits", "extraction failed")
    monkeypatch.setattr(extract_1d, "run", boom)
    out = tmp_path / "spec3"
    m = stage3.run_batch("p_{source_id}", {"7": [slices["7"]]}, outdir=str(out), mode="nrs_fs")
    assert m.rows[0]["status"] == "error" and "extraction failed" in m.rows[0]["message"]
    assert os.listdir(out) == []      # the _cal, _crf and _s2d written before the failure are gone
