"""specutils (a default dependency) opens every spectral product kind we write, by its own JWST
readers, and gives back the values astropy.io.fits reads from the file: Stage 2 and Stage 3
``_x1d``, a ``_c1d`` (combine_1d through the Stage 3 writer; the FS program itself makes none),
Stage 2 and Stage 3 ``_s2d``. Each file is also read without naming the format (specutils must
identify it)."""

import glob
import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits

from fs_program import simulated_fs_program

pytestmark = pytest.mark.slow

specutils = pytest.importorskip("specutils")
Spectrum, SpectrumList = specutils.Spectrum, specutils.SpectrumList


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    return simulated_fs_program(tmp_path_factory)


def _one(root, pattern):
    hits = sorted(glob.glob(str(root / "webbspec" / pattern)))
    assert hits, pattern
    return hits[0]


def _read(cls, path, fmt):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # astropy unit-string and SRCTYPE notes
        named = cls.read(path, format=fmt)
        found = cls.read(path)                # identified by specutils itself
    return named, found


def _same(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    np.testing.assert_array_equal(a, b)       # NaN == NaN here


def _check_table(spec, hdu):
    """spec's wavelength, flux and uncertainty are the table's columns (FLUX for a point source,
    SURF_BRIGHT for an extended one, as specutils chooses), with their units."""
    t, h = hdu.data, hdu.header
    extended = str(h.get("SRCTYPE", "")).strip() == "EXTENDED"
    col, err = ("SURF_BRIGHT", "SB_ERROR") if extended else (
        "FLUX", "FLUX_ERROR" if "FLUX_ERROR" in t.columns.names else "ERROR")
    _same(spec.spectral_axis.to_value("um"), t["WAVELENGTH"])
    _same(spec.flux.value, t[col])
    assert spec.flux.unit == u.Unit(hdu.columns[col].unit) and spec.spectral_axis.unit == u.um
    _same(spec.uncertainty.array, t[err])


def test_stage2_x1d_multi(program):
    path = _one(program, "spec2/*_x1d.fits")
    named, found = _read(SpectrumList, path, "JWST x1d multi")
    with fits.open(path) as hdul:
        tables = [h for h in hdul if h.name == "EXTRACT1D"]
        assert len(named) == len(found) == len(tables) == 5
        for spec, other, hdu in zip(named, found, tables):
            _check_table(spec, hdu)
            _same(other.flux.value, spec.flux.value)


def test_stage3_x1d(program):
    for path in sorted(glob.glob(str(program / "webbspec" / "spec3" / "*_x1d.fits"))):
        named, found = _read(Spectrum, path, "JWST x1d")
        with fits.open(path) as hdul:
            _check_table(named, hdul["EXTRACT1D"])
        _same(found.flux.value, named.flux.value)


def test_c1d_from_the_stage3_writer(program, tmp_path):
    from webbspec.io import datamodels, officialio
    from webbspec.io.datamodels import SpecModel
    from webbspec.steps import combine_1d

    # the point source's spectrum in each exposure's Stage 2 x1d, combined
    singles = []
    for path in sorted(glob.glob(str(program / "webbspec" / "spec2" / "*_x1d.fits"))):
        m = datamodels.read(path)
        spectra = [s for s in m.spectra if int(s.header["SOURCEID"]) == 1]
        singles.append(SpecModel(m.primary, spectra, m.kind, None, path))
    out = officialio.write(combine_1d.run(singles), str(tmp_path / "source1_c1d.fits"), "c1d")
    named, found = _read(Spectrum, out, "JWST c1d")
    with fits.open(out) as hdul:
        _check_table(named, hdul["COMBINE1D"])
    _same(found.flux.value, named.flux.value)


def _check_s2d(spec, hdul, ver):
    sci, wave = hdul["SCI", ver], hdul["WAVELENGTH", ver].data
    _same(spec.flux.value, sci.data)
    assert spec.flux.unit == sci.header["BUNIT"]
    # specutils evaluates the _s2d's gwcs: it gives the WAVELENGTH grid exactly
    _same(spec.spectral_axis.to_value("um"), wave[0])


def test_stage3_s2d(program):
    path = _one(program, "spec3/*_s000000001_s2d.fits")
    named, found = _read(Spectrum, path, "JWST s2d")
    with fits.open(path) as hdul:
        _check_s2d(named, hdul, 1)
    _same(found.flux.value, named.flux.value)


def test_stage2_s2d_multi(program):
    path = _one(program, "spec2/*_s2d.fits")
    named, found = _read(SpectrumList, path, "JWST s2d multi")
    with fits.open(path) as hdul:
        assert len(named) == len(found) == sum(h.name == "SCI" for h in hdul) == 5
        for ver, spec in enumerate(named, start=1):
            _check_s2d(spec, hdul, ver)

