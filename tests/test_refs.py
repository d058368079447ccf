"""Reference store: context selection, newest/named contexts, missing files, diffs."""

import os

import pytest
from astropy.io import fits

from webbspec.io import refs
from webbspec.errors import InputError


def _hdr(**kw):
    h = fits.Header()
    base = dict(INSTRUME="NIRSPEC", EXP_TYPE="NRS_FIXEDSLIT", DETECTOR="NRS1", GRATING="G395M", FILTER="F290LP")
    base.update(kw)
    for k, v in base.items():
        h[k] = v
    return h


CTX1 = """context: webbspec_0001
references:
  flat:
    - match: {INSTRUME: NIRSPEC, EXP_TYPE: NRS_FIXEDSLIT, DETECTOR: NRS1, GRATING: [G395M, G235M]}
      file: flat_nrs1.fits
    - match: {INSTRUME: nirspec, DETECTOR: "*"}
      file: flat_any.fits
  photom:
    - match: {INSTRUME: NIRSPEC, FILTER: F290LP}
      file: photom.fits
"""


@pytest.fixture
def store(tmp_path):
    for name in ("flat_nrs1.fits", "flat_any.fits", "photom.fits", "photom_v2.fits"):
        (tmp_path / name).write_text("x")
    (tmp_path / "webbspec_0001.context.yaml").write_text(CTX1)
    return tmp_path


def test_first_match_wins_lists_wildcards_case(store):
    got = refs.bestrefs(_hdr(), ("flat", "photom", "apcorr"), store)
    assert got == {"flat": os.path.join(store, "flat_nrs1.fits"), "photom": os.path.join(store, "photom.fits"),
                   "apcorr": "N/A"}
    assert refs.bestrefs(_hdr(GRATING="g235m"), ("flat",), store)["flat"].endswith("flat_nrs1.fits")
    assert refs.bestrefs(_hdr(DETECTOR="NRS2"), ("flat",), store)["flat"].endswith("flat_any.fits")
    assert refs.bestrefs(_hdr(INSTRUME="MIRI"), ("flat", "photom"), store) == {"flat": "N/A", "photom": "N/A"}
    hdr = _hdr()
    del hdr["FILTER"]                    # a missing keyword matches only "*"
    assert refs.bestrefs(hdr, ("photom",), store)["photom"] == "N/A"


def test_newest_context_unless_named(store):
    (store / "webbspec_0002.context.yaml").write_text(
        CTX1.replace("webbspec_0001", "webbspec_0002").replace("photom.fits", "photom_v2.fits"))
    assert refs.list_contexts(store) == ["webbspec_0001", "webbspec_0002"]
    assert refs.bestrefs(_hdr(), ("photom",), store)["photom"].endswith("photom_v2.fits")
    assert refs.bestrefs(_hdr(), ("photom",), store, "webbspec_0001")["photom"].endswith("photom.fits")
    assert refs.bestrefs(_hdr(), ("photom",), store, "webbspec_0001.context.yaml")["photom"].endswith("photom.fits")
    changes = refs.diff_contexts(store, "webbspec_0001", "webbspec_0002", {"a": _hdr(), "b": _hdr(INSTRUME="MIRI")})
    assert changes == [("a", "photom", os.path.join(store, "photom.fits"), os.path.join(store, "photom_v2.fits"))]
    with pytest.raises(InputError, match="webbspec_0009"):
        refs.bestrefs(_hdr(), ("photom",), store, "webbspec_0009")


def test_context_naming_a_missing_file(store):
    ctx = store / "webbspec_0003.context.yaml"
    ctx.write_text(CTX1.replace("photom.fits", "gone.fits"))
    for call in (lambda: refs.bestrefs(_hdr(), ("photom",), store, strict=True),
                 lambda: refs.load_context(store)):
        with pytest.raises(InputError) as err:
            call()
        msg = str(err.value)
        assert msg.startswith(str(ctx) + ": ") and "gone.fits" in msg and "\n" not in msg
    # not selected: unaffected; selected, not strict (the workflow): deferred as the context path
    assert refs.bestrefs(_hdr(), ("flat",), store)["flat"].endswith("flat_nrs1.fits")
    got = refs.bestrefs(_hdr(), ("flat", "photom"), store)
    assert got["photom"] == str(ctx)
    with pytest.raises(InputError, match="gone.fits") as err:
        refs.check_selection(got, _hdr())
    assert str(err.value).startswith(str(ctx) + ": references.photom names missing file gone.fits")


def test_bad_store_and_bad_context(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        refs.bestrefs(_hdr(), ("flat",), tmp_path / "nope")
    with pytest.raises(InputError, match="no \\*.context.yaml"):
        refs.bestrefs(_hdr(), ("flat",), tmp_path)
    (tmp_path / "webbspec_0001.context.yaml").write_text("references: [1, 2]\n")
    with pytest.raises(InputError, match="references"):
        refs.bestrefs(_hdr(), ("flat",), tmp_path)


def test_simulated_store(tmp_path):
    from webbspec.simulate import simulate

    info = simulate("nrs_fs", str(tmp_path / "p"), seed=3)
    hdr = fits.getheader(info["rates"][0])
    types = ("specwcs", "wavecorr", "flat", "pathloss", "photom", "apcorr", "extract1d", "area")
    got = refs.bestrefs(hdr, types, str(tmp_path / "p" / "refs"))
    assert got["area"] == "N/A"
    assert all(os.path.isfile(got[t]) for t in types if t != "area")
    assert os.path.basename(got["specwcs"]) == "nirspec_fs_specwcs_g395m_nrs1_0001.fits"
    hdr["DETECTOR"] = "NRS2"       # the small program has only NRS1
    assert refs.bestrefs(hdr, ("specwcs",), str(tmp_path / "p" / "refs"))["specwcs"] == "N/A"
