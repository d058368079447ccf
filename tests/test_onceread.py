"""webbspec.io.onceread: one read of a file gives datamodels.read's Model and the file's sha256;
the numpy forms of the outlier step's dilation and running maximum equal scipy's."""

import hashlib

import numpy as np
from astropy.io import fits
from scipy import ndimage

from webbspec.io import datamodels, onceread
from webbspec.io.datamodels import Model, SpecModel, Spectrum, Slit, new_spec_table
from webbspec.steps import outlier_detection as od

RNG = np.random.default_rng(7)


def _slit(shape, ver_keys):
    arrays = {n: RNG.normal(size=shape).astype(np.float32) for n in ("SCI", "ERR", "VAR_RNOISE", "XI")}
    arrays["DQ"] = RNG.integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32)   # top bit set too
    arrays["CON"] = RNG.integers(-5, 5, size=shape).astype(np.int32)
    arrays["SCI"][0, 0] = np.nan
    return Slit(fits.Header({"SLTNAME": "S1", "SRCRA": 10.5, "LONGSTR": "x" * 100, **ver_keys}), arrays)


def _same_model(a, b):
    assert (a.layout, a.path, a.tables, a.asdf_tree) == (b.layout, b.path, b.tables, b.asdf_tree)
    assert a.primary.tostring() == b.primary.tostring()
    assert len(a.slits) == len(b.slits)
    for sa, sb in zip(a.slits, b.slits):
        assert sa.header.tostring() == sb.header.tostring()
        assert list(sa.arrays) == list(sb.arrays)
        for name in sa.arrays:
            assert sa[name].dtype == sb[name].dtype and sa[name].shape == sb[name].shape, name
            assert sa[name].tobytes() == sb[name].tobytes(), name
            assert sb[name].flags.writeable, name


def test_multi_slit_file_read_once_equals_read(tmp_path):
    primary = fits.Header({"DATAMODL": "MultiSlitModel", "EXP_TYPE": "NRS_MSASPEC", "WSSRCKEY": "1234_5"})
    model = Model(primary, [_slit((9, 31), {"SLITID": 1}), _slit((7, 40), {"SLITID": 2})], "multi")
    path = datamodels.write(model, str(tmp_path / "slice.fits"))
    got, digest = onceread.read_hashed(path)
    with open(path, "rb") as f:
        assert digest == hashlib.sha256(f.read()).hexdigest()
    assert onceread._parse(bytearray(open(path, "rb").read()), path) is not None   # the fast path ran
    _same_model(datamodels.read(path), got)
    others = {k: v.copy() for k, v in got.slits[0].arrays.items() if k != "SCI"}
    got.slits[0]["SCI"][...] = 5.0          # writable views of the buffer, each its own part
    for name, before in others.items():
        assert got.slits[0][name].tobytes() == before.tobytes(), name


def test_spectrum_file_falls_back_to_read(tmp_path):
    table = new_spec_table(5)
    table["WAVELENGTH"] = np.arange(5.0)
    spec = SpecModel(fits.Header({"DATAMODL": "MultiSpecModel"}), [Spectrum(fits.Header({"SLTNAME": "A"}), table)])
    path = datamodels.write(spec, str(tmp_path / "x_x1d.fits"))
    got, digest = onceread.read_hashed(path)
    assert isinstance(got, SpecModel) and digest == hashlib.sha256(open(path, "rb").read()).hexdigest()
    np.testing.assert_array_equal(got.spectra[0].table["WAVELENGTH"], np.arange(5.0))


def test_dilation_and_running_max_equal_scipy():
    for shape in [(1, 1), (1, 6), (6, 1), (3, 2), (37, 53)]:
        for p in (0.02, 0.3):
            mask = RNG.random(shape) < p
            assert np.array_equal(od._dilate_3x3(mask),
                                  ndimage.binary_dilation(mask, structure=np.ones((3, 3), bool)))
        img = RNG.normal(size=shape)
        img[RNG.random(shape) < 0.3] = 0.0
        for size in (1, 2, 3, 4, 5, 8, 9):
            assert np.array_equal(od._running_max_rows(img, size), ndimage.maximum_filter1d(img, size, axis=0))
