"""Reference store as a CRDS cache: pmap -> imap -> rmap selection (through crds, offline),
USEAFTER, newest/named contexts, derived contexts, missing files, bad mappings, a real-style
cache ($CRDS_PATH) agreeing with crds' own bestrefs."""

import os

import pytest
from astropy.io import fits

from webbspec.errors import InputError
from webbspec.io import crdsmap, refs

NIRSPEC = dict(INSTRUME="NIRSPEC", EXP_TYPE="NRS_FIXEDSLIT", DETECTOR="NRS1", GRATING="G395M", FILTER="F290LP")


def _hdr(**kw):
    h = fits.Header()
    base = dict(NIRSPEC, **{"DATE-OBS": "2024-01-02", "TIME-OBS": "01:00:00.000"})
    base.update(kw)
    for k, v in base.items():
        if v is not None:
            h[k] = v
    return h


SELECTIONS = [
    dict(reftype="sflat", file="sflat_nrs1.fits", useafter="2022-01-01T00:00:00",
         match=dict(NIRSPEC, GRATING=["G395M", "G235M"])),
    dict(reftype="sflat", file="sflat_any.fits", useafter="2022-01-01T00:00:00",
         match={"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "DETECTOR": "*"}),
    dict(reftype="photom", file="photom.fits", useafter="2022-01-01T00:00:00",
         match={"INSTRUME": "NIRSPEC", "EXP_TYPE": ["NRS_FIXEDSLIT", "NRS_BRIGHTOBJ"]}),
    dict(reftype="photom", file="photom_2024.fits", useafter="2024-01-02T02:00:00",
         match={"INSTRUME": "NIRSPEC", "EXP_TYPE": ["NRS_FIXEDSLIT", "NRS_BRIGHTOBJ"]}),
    dict(reftype="wavecorr", file="N/A", match={"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT"}),
]
FILES = ("sflat_nrs1.fits", "sflat_any.fits", "photom.fits", "photom_2024.fits", "photom_v2.fits")


@pytest.fixture
def store(tmp_path):
    for name in FILES:
        (tmp_path / name).write_text("x")
    crdsmap.write_context(tmp_path, SELECTIONS, 1)
    return tmp_path


def _ref(store, name):
    return os.path.join(str(store), "references", "jwst", "nirspec", name)


def test_layout_and_crds_syntax(store):
    mdir = store / "mappings" / "jwst"
    assert sorted(os.listdir(mdir)) == ["webbspec_0001.pmap", "webbspec_nirspec_0001.imap",
                                        "webbspec_nirspec_photom_0001.rmap", "webbspec_nirspec_sflat_0001.rmap",
                                        "webbspec_nirspec_wavecorr_0001.rmap"]
    text = (mdir / "webbspec_nirspec_sflat_0001.rmap").read_text()
    assert "selector = Match({" in text and "UseAfter({" in text and "'G235M|G395M'" in text
    assert "'META.INSTRUMENT.DETECTOR'" in text and "('META.OBSERVATION.DATE', 'META.OBSERVATION.TIME')" in text
    assert "'N/A'" in text                       # the any-detector row
    assert all(os.path.isfile(_ref(store, n)) for n in FILES if n != "photom_v2.fits")
    # crds reads them as it reads its own (syntax and sha1sum checked)
    import crds.core.rmap as crmap

    ctx = crmap.load_mapping("webbspec_0001.pmap", path=str(mdir))
    assert ctx.get_imap("NIRSPEC").get_rmap("sflat").reference_names() == ["sflat_any.fits", "sflat_nrs1.fits"]


def test_selection_most_specific_alternatives_na(store):
    got = refs.bestrefs(_hdr(), ("sflat", "photom", "wavecorr", "apcorr"), store)
    assert got == {"sflat": _ref(store, "sflat_nrs1.fits"), "photom": _ref(store, "photom.fits"),
                   "wavecorr": "N/A", "apcorr": "N/A"}
    assert refs.bestrefs(_hdr(GRATING="g235m"), ("sflat",), store)["sflat"].endswith("sflat_nrs1.fits")
    assert refs.bestrefs(_hdr(DETECTOR="NRS2"), ("sflat",), store)["sflat"].endswith("sflat_any.fits")
    assert refs.bestrefs(_hdr(GRATING=None), ("sflat",), store)["sflat"].endswith("sflat_any.fits")
    assert refs.bestrefs(_hdr(EXP_TYPE="NRS_BRIGHTOBJ"), ("photom",), store)["photom"].endswith("photom.fits")
    assert refs.bestrefs(_hdr(EXP_TYPE="NRS_IFU"), ("sflat", "photom"), store) == {"sflat": "N/A", "photom": "N/A"}
    assert refs.bestrefs(_hdr(INSTRUME="MIRI"), ("sflat", "photom"), store) == {"sflat": "N/A", "photom": "N/A"}


def test_useafter(store):
    at = lambda d, t: refs.bestrefs(_hdr(**{"DATE-OBS": d, "TIME-OBS": t}), ("photom",), store)["photom"]  # noqa: E731
    assert at("2024-01-02", "01:59:59").endswith("photom.fits")
    assert at("2024-01-02", "02:00:00").endswith("photom_2024.fits")
    assert at("2025-06-01", "00:00:00").endswith("photom_2024.fits")
    assert at("2021-12-31", "23:59:59") == "N/A"           # before every USEAFTER


def test_newest_context_unless_named_and_derived(store):
    new = refs.derive_context(store, None, 2, replace={"photom.fits": "photom_v2.fits"})
    os.replace(store / "photom_v2.fits", _ref(store, "photom_v2.fits"))
    assert new == "webbspec_0002" and refs.list_contexts(store) == ["webbspec_0001", "webbspec_0002"]
    mdir = store / "mappings" / "jwst"
    assert (mdir / "webbspec_nirspec_photom_0002.rmap").exists()
    assert not (mdir / "webbspec_nirspec_sflat_0002.rmap").exists()     # unchanged rmaps are shared
    assert refs.bestrefs(_hdr(), ("photom",), store)["photom"].endswith("photom_v2.fits")
    for ctx in ("webbspec_0001", "webbspec_0001.pmap", str(mdir / "webbspec_0001.pmap")):
        assert refs.bestrefs(_hdr(), ("photom",), store, ctx)["photom"].endswith("photom.fits")
    changes = refs.diff_contexts(store, "webbspec_0001", "webbspec_0002", {"a": _hdr(), "b": _hdr(INSTRUME="MIRI")})
    assert changes == [("a", "photom", _ref(store, "photom.fits"), _ref(store, "photom_v2.fits"))]
    assert crdsmap.diff_rmaps(mdir / "webbspec_0001.pmap", mdir / "webbspec_0002.pmap") == [
        ("NIRSPEC", "photom", "webbspec_nirspec_photom_0001.rmap", "webbspec_nirspec_photom_0002.rmap")]
    # a selection added for another configuration changes nothing for this one
    other = refs.derive_context(store, new, 3, add=[dict(reftype="sflat", file="sflat_any.fits",
                                                          match=dict(NIRSPEC, GRATING="G140M"))])
    assert refs.diff_contexts(store, new, other, {"a": _hdr()}) == []
    assert refs.bestrefs(_hdr(GRATING="G140M"), ("sflat",), store, other)["sflat"].endswith("sflat_any.fits")
    with pytest.raises(InputError, match="webbspec_0009"):
        refs.bestrefs(_hdr(), ("photom",), store, "webbspec_0009")


def test_mapping_naming_a_missing_file(store):
    new = refs.derive_context(store, None, 3, replace={"photom.fits": "gone.fits"})
    rmap = os.path.join(str(store), "mappings", "jwst", "webbspec_nirspec_photom_0003.rmap")
    for call in (lambda: refs.bestrefs(_hdr(), ("photom",), store, strict=True),
                 lambda: refs.load_context(store)):
        with pytest.raises(InputError) as err:
            call()
        msg = str(err.value)
        assert msg == f"{rmap}: photom selection names missing file gone.fits", msg
    # not selected: unaffected; selected, not strict (the workflow): deferred as the rmap path
    assert refs.bestrefs(_hdr(), ("sflat",), store)["sflat"].endswith("sflat_nrs1.fits")
    got = refs.bestrefs(_hdr(), ("sflat", "photom"), store, new)
    assert got["photom"] == rmap and refs.is_deferred(got["photom"])
    with pytest.raises(InputError) as err:
        refs.check_selection(got, _hdr())
    assert str(err.value) == f"{rmap}: photom selection names missing file gone.fits"


def test_store_without_mappings(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="does not exist"):
        refs.bestrefs(_hdr(), ("sflat",), tmp_path / "nope")
    (tmp_path / "references").mkdir()
    with pytest.raises(InputError) as err:
        refs.bestrefs(_hdr(), ("sflat",), tmp_path)
    assert str(err.value) == f"{tmp_path}: no mappings/jwst/*.pmap context in the reference store"
    monkeypatch.setenv("CRDS_PATH", str(tmp_path))          # the same for a CRDS cache given by CRDS_PATH
    assert refs.default_store(tmp_path / "elsewhere") == str(tmp_path)
    with pytest.raises(InputError, match="no mappings/jwst"):
        refs.bestrefs(_hdr(), ("sflat",), refs.default_store())


def test_pmap_with_a_syntax_error(store):
    pmap = store / "mappings" / "jwst" / "webbspec_0002.pmap"
    pmap.write_text((store / "mappings" / "jwst" / "webbspec_0001.pmap").read_text().replace("selector = {", "selector = {{"))
    with pytest.raises(InputError) as err:
        refs.bestrefs(_hdr(), ("sflat",), store)
    msg = str(err.value)
    assert msg.startswith(f"{pmap}: not a readable CRDS mapping (") and "\n" not in msg
    pmap.write_text("header = {'mapping': 'PIPELINE'}\nselector = {}\n")     # no name, parkey, ...
    with pytest.raises(InputError, match="not a readable CRDS mapping"):
        refs.bestrefs(_hdr(), ("sflat",), store)


def test_bad_imap_and_rmap(store):
    mdir = store / "mappings" / "jwst"
    rmap = mdir / "webbspec_nirspec_sflat_0001.rmap"
    rmap.write_text(rmap.read_text().replace("sflat_any.fits", "sflat_edit.fits"))     # sha1sum no longer agrees
    with pytest.raises(InputError) as err:
        refs.bestrefs(_hdr(), ("sflat",), store)
    assert str(err.value).startswith(f"{rmap}: not a readable CRDS mapping (ChecksumError")
    pmap = mdir / "webbspec_0002.pmap"
    refs.derive_context(store, None, 2, replace={"photom.fits": "photom_v2.fits"})
    (mdir / "webbspec_nirspec_0002.imap").unlink()
    with pytest.raises(InputError) as err:
        refs.bestrefs(_hdr(), ("photom",), store)
    assert str(err.value) == f"{pmap}: names missing mapping webbspec_nirspec_0002.imap"


def test_crds_cache_agrees_with_crds_bestrefs(tmp_path, monkeypatch):
    """A cache named and laid out as CRDS' own (jwst_NNNN.pmap, flat references/jwst/): our
    selection equals crds.core.rmap.get_best_references on the same header, and CRDS_PATH finds it."""
    flat = tmp_path / "references" / "jwst"
    flat.mkdir(parents=True)
    sel = SELECTIONS[:4] + [dict(reftype="fflat", file="fflat_f290lp.fits", useafter="2022-01-01",
                                 match={"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "FILTER": "F290LP"})]
    for s in sel:
        (flat / s["file"]).write_text("x")
    crdsmap.write_context(tmp_path, sel, 1234, prefix="jwst", move=False)
    assert sorted(os.listdir(tmp_path / "mappings" / "jwst"))[0] == "jwst_1234.pmap"
    monkeypatch.setenv("CRDS_PATH", str(tmp_path))
    store = refs.default_store()
    import crds.core.rmap as crmap

    pmap = crmap.load_mapping("jwst_1234.pmap", path=str(tmp_path / "mappings" / "jwst"))
    types = ("sflat", "photom", "fflat")
    for kw in ({}, {"DETECTOR": "NRS2"}, {"DATE-OBS": "2025-01-01"}, {"GRATING": "G235M"}):
        hdr = _hdr(**kw)
        ours = refs.bestrefs(hdr, types, store)
        dm = {k: hdr[f] for k, f in crdsmap.FITS_KEYWORDS.items() if f in hdr}
        dm.update({"META.INSTRUMENT.LAMP_STATE": "UNDEFINED", "META.INSTRUMENT.LAMP_MODE": "UNDEFINED",
                   "META.VISIT.TSOVISIT": "UNDEFINED"})
        theirs = pmap.get_best_references(dm, include=list(types))
        assert {rt: os.path.basename(p) for rt, p in ours.items()} == theirs, kw
        assert all(p.startswith(str(flat)) for p in ours.values())


def test_a_context_is_loaded_once(tmp_path, monkeypatch):
    """Selection runs in Snakemake's planning for every exposure and step: the mappings are read
    once per process (0.24 s), later selections reuse them (~0.1 ms per reftype, README)."""
    for name in FILES:
        (tmp_path / name).write_text("x")
    crdsmap.write_context(tmp_path, SELECTIONS, 1)
    hdr = _hdr()
    crmap = crdsmap._crds()
    loads = []
    real = crmap.load_mapping
    monkeypatch.setattr(crmap, "load_mapping", lambda *a, **k: loads.append(a) or real(*a, **k))
    crdsmap._LOADED.clear()
    first = refs.bestrefs(hdr, ("sflat", "photom", "wavecorr"), tmp_path)
    assert len(loads) == 5                                    # the pmap, the imap, three rmaps
    for _ in range(50):
        assert refs.bestrefs(hdr, ("sflat", "photom", "wavecorr"), tmp_path) == first
    assert len(loads) == 5


def test_simulated_store(tmp_path):
    from webbspec.simulate import simulate

    info = simulate("nrs_fs", str(tmp_path / "p"), seed=3)
    store = str(tmp_path / "p" / "refs")
    assert info["context"].endswith(os.path.join("refs", "mappings", "jwst", "webbspec_0001.pmap"))
    hdr = fits.getheader(info["rates"][0])
    _, ctx = refs.load_context(store)                        # every file it names is there
    types = sorted(dict(ctx.get_imap("NIRSPEC").selector))
    got = refs.bestrefs(hdr, types + ["nosuchtype"], store)
    assert got["nosuchtype"] == "N/A"
    assert all(os.path.isfile(got[t]) and os.sep + os.path.join("references", "jwst", "nirspec") in got[t]
               for t in types), got
    hdr["INSTRUME"] = "MIRI"                                 # the simulated store has NIRSpec only
    assert set(refs.bestrefs(hdr, types, store).values()) == {"N/A"}
