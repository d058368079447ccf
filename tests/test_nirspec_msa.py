"""NIRSpec MSA metadata files (instruments/nirspec/msa.py): our writer and reader agree, the
official rules for background, virtual and missing sources, and one-line errors naming the file."""

import logging

import numpy as np
import pytest
from astropy.io import fits

from webbspec.errors import InputError
from webbspec.instruments.nirspec import msa
from webbspec.instruments.nirspec.msa import Slitlet


def _slitlet(sid, col, kind="source", dither=1, mid=1, source_id=None, xpos=0.1, ypos=-0.2):
    shutters = tuple((3, 40 + sid, c) for c in (col - 1, col, col + 1))
    if kind == "background":
        return Slitlet(sid, 3, 40 + sid, col, shutters, sid, f"1234_BKG{sid}", f"BKG{sid}", 0.0, 0.0, 0.0,
                       0.0, 0.0, True, False, mid, dither)
    sid_src = 1000 + sid if source_id is None else source_id
    if kind == "virtual":
        return Slitlet(sid, 3, 40 + sid, col, shutters, sid_src, f"1234_VRT{sid}", f"VRT{sid}", 0.0, xpos, ypos,
                       0.0, 0.0, False, True, mid, dither)
    return Slitlet(sid, 3, 40 + sid, col, shutters, sid_src, f"1234_{sid_src}", f"SRC{sid_src}", 0.9, xpos, ypos,
                   53.1 + sid * 1e-3, -27.8, False, False, mid, dither)


DESIGN = [_slitlet(1, 10), _slitlet(2, 20, "background"), _slitlet(3, 30, "virtual", source_id=-3),
          _slitlet(4, 40, xpos=0.25, ypos=0.3)]


def _close(a, b):
    """Equal slitlets, the source position to float32 (the file's precision)."""
    fa, fb = a.__dict__.copy(), b.__dict__.copy()
    for k in ("source_xpos", "source_ypos"):
        assert abs(fa.pop(k) - fb.pop(k)) < 1e-7, k
    assert fa == fb


@pytest.fixture()
def msa_file(tmp_path):
    path = tmp_path / "jw01234001001_01_msa.fits"
    # two dither points of configuration 1 and a decoy configuration 2 the reader must ignore
    other = [Slitlet(**{**s.__dict__, "dither_position": 2}) for s in DESIGN]
    decoy = [Slitlet(**{**DESIGN[0].__dict__, "msa_metadata_id": 2, "xcen": 200,
                        "shutters": tuple((3, 200, c) for c in (9, 10, 11))})]
    msa.write_msa_file(str(path), DESIGN + other + decoy, "01234")
    return path


def test_written_file_reads_back_the_same_slitlets(msa_file):
    for dither in (1, 2):
        got = msa.read_slitlets(str(msa_file), 1, dither)
        assert [s.slitlet_id for s in got] == [1, 2, 3, 4]
        for a, b in zip(got, DESIGN):
            _close(a, Slitlet(**{**b.__dict__, "dither_position": dither}))
    assert [s.xcen for s in msa.read_slitlets(str(msa_file), 2, 1)] == [200]
    with fits.open(msa_file) as h:
        assert [x.name for x in h] == ["PRIMARY", "SHUTTER_INFO", "SOURCE_INFO"]
        assert h[0].header["PROGRAM"] == "01234"
        assert sorted(h["SOURCE_INFO"].data["source_id"]) == [1001, 1004]     # real sources only


def test_official_rules_names_positions_and_extent(msa_file):
    one, bkg, virt, four = msa.read_slitlets(str(msa_file), 1, 1, program="01234")
    assert one.name == "1" and one.shutter_id == one.xcen + (one.ycen - 1) * 365
    assert one.shutter_state == "1x1" and bkg.shutter_state == "1x1"
    assert (bkg.source_id, bkg.source_name, bkg.source_alias, bkg.background) == (2, "1234_BKG2", "BKG2", True)
    assert (virt.source_id, virt.source_name, virt.virtual) == (-3, "1234_VRT3", True)
    assert four.source_xpos == pytest.approx(0.25) and four.source_ypos == pytest.approx(0.3)
    # one shutter's +-0.55 plus the 0.5 margin, plus 1.15 per shutter beyond the reference one
    assert one.slit_y_limits() == pytest.approx((-2.2, 2.2))
    assert one.slit_y_limits((-0.5, 0.5)) == pytest.approx((-2.15, 2.15))


def _rewrite(path, table, edit):
    with fits.open(path) as h:
        hdus = [x.copy() for x in h]
    data = hdus[[x.name for x in hdus].index(table)].data
    edit(data)
    fits.HDUList(hdus).writeto(path, overwrite=True)


def test_missing_source_is_kept_as_virtual_with_a_warning(msa_file, caplog):
    _rewrite(msa_file, "SOURCE_INFO", lambda d: d["source_id"].__setitem__(d["source_id"] == 1004, 9))
    with caplog.at_level(logging.WARNING):
        got = msa.read_slitlets(str(msa_file), 1, 1)[3]
    assert (got.source_id, got.source_name, got.source_alias, got.virtual) == (1004, "1234_VRT4", "VRT4", True)
    assert got.stellarity == 0.0 and got.source_ra == 0.0
    assert any(str(msa_file) in r.message and "slitlet 4" in r.message and "1004" in r.message
               for r in caplog.records)


def test_a_slitlet_with_two_primary_shutters_is_dropped_with_a_warning(msa_file, caplog):
    def two(d):
        d["primary_source"][(d["slitlet_id"] == 1) & (d["dither_point_index"] == 1)] = "Y"
    _rewrite(msa_file, "SHUTTER_INFO", two)
    with caplog.at_level(logging.WARNING):
        got = msa.read_slitlets(str(msa_file), 1, 1)
    assert [s.slitlet_id for s in got] == [2, 3, 4]
    assert any("slitlet 1" in r.message and "primary" in r.message for r in caplog.records)


def test_fixed_slit_rows_are_skipped_with_a_note(msa_file, caplog):
    def fixed(d):
        d["fixed_slit"][d["slitlet_id"] == 4] = "S200A1"
    _rewrite(msa_file, "SHUTTER_INFO", fixed)
    with caplog.at_level(logging.WARNING):
        got = msa.read_slitlets(str(msa_file), 1, 1)
    assert [s.slitlet_id for s in got] == [1, 2, 3]
    assert any("S200A1" in r.message for r in caplog.records)


@pytest.mark.parametrize("mid, dither, match", [
    (7, 1, r"MSAMETID 7 is not in SHUTTER_INFO \(configurations: 1, 2\)"),
    (1, 3, r"MSAMETID 1 has no shutters at PATT_NUM 3 \(dither points: 1, 2\)"),
])
def test_unknown_configuration_or_dither_point(msa_file, mid, dither, match):
    with pytest.raises(InputError, match=match) as err:
        msa.read_slitlets(str(msa_file), mid, dither)
    assert str(err.value).startswith(str(msa_file)) and "\n" not in str(err.value)


def test_bad_files(tmp_path, msa_file):
    cut = tmp_path / "cut_msa.fits"
    cut.write_bytes(msa_file.read_bytes()[:-3000])
    with pytest.raises(InputError, match="cut_msa.fits: truncated or corrupt FITS file"):
        msa.read_slitlets(str(cut), 1, 1)
    with pytest.raises(InputError, match="does not exist"):
        msa.read_slitlets(str(tmp_path / "nope_msa.fits"), 1, 1)
    junk = tmp_path / "junk_msa.fits"
    junk.write_bytes(b"not a fits file at all" * 10)
    with pytest.raises(InputError, match="not a readable FITS"):
        msa.read_slitlets(str(junk), 1, 1)
    # an MSA shutter-status file (Q1-Q4 tables of NO, STATUS) is not MSA metadata
    status = tmp_path / "status.msa.fits"
    cols = [fits.Column(name="NO", format="J", array=np.arange(1, 4)), fits.Column(name="STATUS", format="J",
                                                                                     array=np.zeros(3))]
    fits.HDUList([fits.PrimaryHDU()] + [fits.BinTableHDU.from_columns(cols, name=f"Q{q}") for q in range(1, 5)]
                 ).writeto(status)
    with pytest.raises(InputError, match=r"no SHUTTER_INFO table \(extensions: Q1, Q2, Q3, Q4\)"):
        msa.read_slitlets(str(status), 1, 1)


def test_exposure_keywords_and_msametfl_next_to_the_exposure(msa_file, tmp_path):
    rate = str(tmp_path / "jw01234001001_03101_00001_nrs1_rate.fits")
    header = {"MSAMETFL": msa_file.name, "MSAMETID": 1, "PATT_NUM": 2, "PROGRAM": "01234"}
    got = msa.exposure_slitlets(header, rate)
    assert [s.dither_position for s in got] == [2] * 4 and got[1].source_name == "1234_BKG2"
    with pytest.raises(InputError, match=r"_rate.fits: missing keyword PATT_NUM"):
        msa.exposure_slitlets({**header, "PATT_NUM": None}, rate)
    with pytest.raises(InputError, match=r"_rate.fits: no MSA metadata file \(keyword MSAMETFL\)"):
        msa.exposure_slitlets({**header, "MSAMETFL": ""}, rate)
    with pytest.raises(InputError, match=r"other_msa.fits: MSA metadata file \(MSAMETFL\) does not exist"):
        msa.exposure_slitlets({**header, "MSAMETFL": "other_msa.fits"}, rate)
