"""Round trips of every product layout through webbspec.io.datamodels, the FITS structure the
official products have, and the JWST DQ bit values."""

import numpy as np
from astropy.io import fits

from webbspec import dq
from webbspec.io.datamodels import Model, Slit, SpecModel, Spectrum, new_spec_table, read, write

RNG = np.random.default_rng(1)
ARRAYS = ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")


def _slit(shape, name="", **keys):
    arrays = {n: RNG.normal(size=shape).astype(np.float32) for n in ARRAYS if n != "DQ"}
    arrays["DQ"] = RNG.integers(0, 2**20, size=shape).astype(np.uint32)
    hdr = fits.Header({"BUNIT": "MJy/sr", **({"SLTNAME": name} if name else {}), **keys})
    return Slit(hdr, arrays)


def _same(a, b):
    assert a.layout == b.layout and len(a.slits) == len(b.slits)
    for sa, sb in zip(a.slits, b.slits):
        assert set(sa.arrays) == set(sb.arrays)
        for n in sa.arrays:
            np.testing.assert_array_equal(sa[n], sb[n])
            assert (sa[n].dtype.kind, sa[n].dtype.itemsize) == (sb[n].dtype.kind, sb[n].dtype.itemsize)
        for k in sa.header:
            assert sb.header[k] == sa.header[k], k


def test_image_round_trip(tmp_path):
    primary = fits.Header({"DATAMODL": "ImageModel", "EXP_TYPE": "NRS_FIXEDSLIT", "INSTRUME": "NIRSPEC"})
    m = Model(primary, [_slit((20, 30))], "single")
    back = read(write(m, str(tmp_path / "x_rate.fits")))
    _same(m, back)
    assert back.exp_type == "NRS_FIXEDSLIT"
    with fits.open(tmp_path / "x_rate.fits") as h:   # official layout: one SCI, ERR, DQ, VAR_* each
        assert [x.name for x in h[1:]][:3] == ["SCI", "ERR", "DQ"]
        assert h["SCI"].header.get("EXTVER", 1) == 1


def test_rateints_round_trip(tmp_path):
    m = Model(fits.Header({"DATAMODL": "CubeModel"}), [_slit((3, 20, 30))], "single")
    _same(m, read(write(m, str(tmp_path / "x_rateints.fits"))))


def test_multislit_round_trip_keeps_extver_groups_and_slit_keywords(tmp_path):
    slits = [_slit((10 + i, 40), name=f"S{i}", SOURCEID=100 + i, SLTSTRT1=5 * i + 1, SLTSTRT2=7,
                   SRCTYPE="POINT") for i in range(3)]
    for s in slits:
        s["WAVELENGTH"] = RNG.uniform(1, 5, size=s.shape).astype(np.float32)
    m = Model(fits.Header({"DATAMODL": "MultiSlitModel"}), slits, "multi")
    path = write(m, str(tmp_path / "x_cal.fits"))
    _same(m, read(path))
    with fits.open(path) as h:
        vers = [x.header["EXTVER"] for x in h if x.name == "SCI"]
        assert vers == [1, 2, 3]
        assert h["SCI", 2].header["SLTNAME"] == "S1" and h["SCI", 2].header["SOURCEID"] == 101


def test_x1d_and_c1d_round_trip_with_official_columns_and_units(tmp_path):
    for kind, suffix, cols in (("EXTRACT1D", "x1d", ("WAVELENGTH", "FLUX", "FLUX_ERROR", "SURF_BRIGHT",
                                                       "DQ", "BACKGROUND", "NPIXELS")),
                               ("COMBINE1D", "c1d", ("WAVELENGTH", "FLUX", "ERROR", "WEIGHT", "N_INPUT"))):
        t = new_spec_table(50, kind)
        for name in t.dtype.names:
            t[name] = RNG.uniform(0, 10, 50).astype(t.dtype[name])
        sp = SpecModel(fits.Header({"DATAMODL": "MultiSpecModel"}),
                       [Spectrum(fits.Header({"SLTNAME": "S200A1", "SOURCEID": 1}), t)] * 2, kind)
        path = write(sp, str(tmp_path / f"x_{suffix}.fits"))
        back = read(path)
        assert back.kind == kind and len(back.spectra) == 2
        np.testing.assert_array_equal(back.spectra[1].table, t)
        with fits.open(path) as h:
            ext = h[kind, 2]
            assert all(c in ext.columns.names for c in cols)
            units = {c.name: c.unit for c in ext.columns}
            assert units["WAVELENGTH"] == "um" and units["FLUX"] == "Jy"
            if kind == "EXTRACT1D":
                assert units["SURF_BRIGHT"] == "MJy/sr" and units["FLUX_VAR_POISSON"] == "Jy^2"


def test_s2d_round_trip(tmp_path):
    s = _slit((31, 341), name="S200A1")
    s["WAVELENGTH"] = np.tile(np.linspace(2.9, 5.2, 341, dtype=np.float32), (31, 1))
    s["WHT"] = np.ones((31, 341), np.float32)
    m = Model(fits.Header({"DATAMODL": "SlitModel"}), [s], "single")
    _same(m, read(write(m, str(tmp_path / "x_s2d.fits"))))


def test_jwst_dq_bit_values():
    """Every flag name and value as the official data models define them."""
    from stdatamodels.jwst.datamodels import dqflags

    assert dq.FLAGS == dict(dqflags.pixel)
    assert dq.flag("DO_NOT_USE", "OUTLIER") == 17


def test_copy_header_behaves_as_astropy_copy():
    """datamodels.copy_header (astropy's private layout) gives what Header.copy gives: same cards,
    working keyword lookups, and a copy independent of the original both ways."""
    import warnings

    from webbspec.io.datamodels import copy_header

    h = fits.Header()
    h["SRCTYPE"] = ("POINT", "source type")
    h["NAXIS"] = 2
    h.add_history("one")
    h.add_history("two")
    h["LONGSTR"] = "y" * 120
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h["A_LONG_KEYWORD_X"] = 1.5
    h.append(("DP1", "AXIS.1: 1"))          # record-valued keyword card
    read = fits.Header.fromstring(h.tostring())
    for src in (h, read):
        c, ref = copy_header(src), src.copy()
        assert c.tostring() == ref.tostring() and list(c.items()) == list(src.items())
        assert c["SRCTYPE"] == "POINT" and c.comments["SRCTYPE"] == "source type"
        assert list(c["HISTORY"]) == ["one", "two"] and c["A_LONG_KEYWORD_X"] == 1.5
        assert c.index("LONGSTR") == src.index("LONGSTR") and c["DP1.AXIS.1"] == src["DP1.AXIS.1"]
        for hdr in (c, ref):                  # the same edits give the same header
            hdr["SRCTYPE"] = "EXTENDED"
            hdr["NEW"] = 3
            del hdr["NAXIS"]
            hdr.add_history("three")
            hdr.insert("LONGSTR", ("INS", 1))
        assert c.tostring() == ref.tostring() and c.index("NEW") == ref.index("NEW")
        assert c["INS"] == 1 and c.index("INS") == ref.index("INS") and c["DP1.AXIS.1"] == src["DP1.AXIS.1"]
        assert src["SRCTYPE"] == "POINT" and "NEW" not in src and src["NAXIS"] == 2
        assert list(src["HISTORY"]) == ["one", "two"]
        src["SRCTYPE"] = "UNKNOWN"
        assert c["SRCTYPE"] == "EXTENDED"
        assert not copy_header(fits.Header.fromstring(src.tostring()))._modified
