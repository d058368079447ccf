"""The NIRSpec PRISM (CLEAR) path of the optical model: Snell's law at the GWA
(instruments/nirspec/optics.py ``Prism``) on the simulated PRISM optical references."""

import time

import numpy as np
import pytest

from webbspec.errors import InputError
from webbspec.instruments.nirspec import fs
from webbspec.instruments.nirspec.optics import Optics, Prism
from webbspec.simulate import nirspec_optics_refs as design

HEADER = {"EXP_TYPE": fs.EXP_TYPE, "DETECTOR": "NRS1", "FILTER": "CLEAR", "GRATING": "PRISM",
          "SUBARRAY": "FULL", "GWA_XTIL": design.PRISM_GWA_TILT_READINGS[0],
          "GWA_YTIL": design.PRISM_GWA_TILT_READINGS[1], "GWA_TILT": design.PRISM_GWA_TEMPERATURE,
          "RA_REF": 53.16, "DEC_REF": -27.79, "ROLL_REF": 138.5, "V2_REF": 321.3, "V3_REF": -478.6,
          "VA_SCALE": 1.00003, "FXD_SLIT": "S200A1", "XOFFSET": 0.01, "YOFFSET": 0.3, "V3I_YANG": -0.35,
          "VPARITY": -1}
WARM = design.PRISM_TREF + 25.0          # GWA_TILT >= tref + 20 K: the thermal (Zemax) index


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("prism")
    names = design.write_optical_refs(str(d), grating="PRISM")
    return {rt: str(d / f) for rt, f in names.items()}


def _prism(temperature, exact=False):
    return Prism(design.PRISM_ANGLE, design.PRISM_KCOEF, design.PRISM_LCOEF, design.PRISM_TCOEF,
                 design.PRISM_TREF, design.PRISM_PREF, temperature, exact)


def test_prism_files(refs):
    from stdatamodels.jwst import datamodels as dm

    with dm.open(refs["disperser"]) as m:
        assert type(m).__name__ == "DisperserModel" and m.meta.instrument.grating == "PRISM"
        assert m.angle == design.PRISM_ANGLE and len(m.kcoef) == len(m.lcoef) == 3 and len(m.tcoef) == 6
        assert m.tref == design.PRISM_TREF and m.pref == design.PRISM_PREF
    with dm.open(refs["wavelengthrange"]) as m:
        i = list(m.waverange_selector).index("CLEAR_PRISM")
        assert list(m.wavelengthrange[i]) == list(design.PRISM_LAM_RANGE)
    with dm.open(refs["fore"]) as m:
        assert m.meta.instrument.filter == "CLEAR"
    assert design.ref_files() == design.REF_FILES       # the G395M default is unchanged


@pytest.mark.parametrize("temperature", [design.PRISM_GWA_TEMPERATURE, WARM])
def test_round_trip_slit_detector_slit(refs, temperature):
    o = Optics(refs, dict(HEADER, GWA_TILT=temperature), prism_exact=True)
    official = Optics(refs, dict(HEADER, GWA_TILT=temperature))
    rng = np.random.default_rng(5)
    worst_table = 0.0
    for slit in fs.SLIT_NAMES:
        ys, lam = rng.uniform(-0.55, 0.55, 3000), rng.uniform(*design.PRISM_LAM_RANGE, 3000)
        x, y = o.slit_to_detector(slit, 0.0, ys, lam)
        assert np.all((x > 0) & (x < 2047) & (y > 0) & (y < 2047)), slit   # the whole spectrum on NRS1
        ys2, lam2 = o.detector_to_slit(slit, x, y)
        x2, y2 = o.slit_to_detector(slit, 0.0, ys2, lam2)
        assert np.all(np.isfinite(x2))
        assert np.abs(x2 - x).max() < 1e-6 and np.abs(y2 - y).max() < 1e-6, slit
        # the official lookup table (n -> lam, linear on a 5 nm grid): ~1e-3 pixel at the blue end
        ys3, lam3 = official.detector_to_slit(slit, x, y)
        assert np.abs(ys3 - ys2).max() < 1e-9
        x3 = official.slit_to_detector(slit, 0.0, ys3, lam3)[0]
        worst_table = max(worst_table, np.abs(x3 - x).max())
    print(f"GWA_TILT {temperature} K: round trip through the official n -> lam table: max {worst_table:.2e} pixel")
    assert worst_table < 5e-3


def test_dispersion_direction_and_temperature(refs):
    o = Optics(refs, HEADER)
    lam = np.linspace(*design.PRISM_LAM_RANGE, 200)
    x, y = o.slit_to_detector("S200A1", 0.0, 0.0, lam)
    assert np.all(np.diff(x) > 0)                         # wavelength grows with column
    assert 600 < x[0] and x[-1] < 1500 and 200 < x[-1] - x[0] < 500
    # the official switch: the thermal index only at >= tref + 20 K; colder uses plain Sellmeier
    cold, warm = _prism(design.PRISM_TREF - 100.0), _prism(WARM)
    plain = _prism(design.PRISM_GWA_TEMPERATURE)
    assert not cold.thermal and not plain.thermal and warm.thermal
    assert np.array_equal(cold.index(lam), plain.index(lam))
    assert np.abs(warm.index(lam) - plain.index(lam)).max() > 1e-5
    xw = Optics(refs, dict(HEADER, GWA_TILT=WARM)).slit_to_detector("S200A1", 0.0, 0.0, lam)[0]
    assert np.abs(xw - x).max() > 0.1                       # the temperature moves the spectrum


def test_exact_and_table_index_inversion():
    p = _prism(WARM)
    lam = np.linspace(0.61e-6, 5.29e-6, 5001)
    n = p.index(lam)
    assert np.abs(p.wavelength_of_index(n, exact=True) - lam).max() < 1e-15
    tab = p.wavelength_of_index(n, exact=False)
    assert 1e-13 < np.abs(tab - lam).max() < 3e-11         # the official table's interpolation error
    assert np.isnan(p.wavelength_of_index(np.array([1.0, 2.0]))).all()   # outside 0.3-8 um


def test_full_frame_prism_coordinates(refs):
    """Every slit of a full PRISM frame gets coordinates (the time is printed, not asserted)."""
    shape = (2048, 2048)
    fs.exposure_coordinates(HEADER, shape, refs)        # first call reads the files
    t = time.perf_counter()
    arrays, boxes = fs.exposure_coordinates(HEADER, shape, refs)
    dt = time.perf_counter() - t
    n = int(np.isfinite(arrays["WAVELENGTH"]).sum())
    print(f"full-frame PRISM assign_wcs arrays, 5 slits, {n} pixels: {dt:.3f} s")
    assert [b.name for b in boxes] == list(fs.SLIT_NAMES)
    lam = arrays["WAVELENGTH"][np.isfinite(arrays["WAVELENGTH"])]
    assert lam.min() >= 0.6 and lam.max() <= 5.3


def _without(refs, tmp_path, field):
    import asdf

    disp = design.build_models("PRISM")["disperser"]
    delattr(disp, field)
    path = str(tmp_path / f"prism_no_{field}.asdf")
    design.save_reproducibly(disp, path)
    with asdf.open(path) as af:
        assert field not in af.tree
    return dict(refs, disperser=path)


@pytest.mark.parametrize("field", ["kcoef", "angle", "tref"])
def test_prism_reference_lacking_a_field(refs, tmp_path, field):
    bad = _without(refs, tmp_path, field)
    with pytest.raises(InputError, match=f"PRISM disperser reference lacks {field}") as err:
        Optics(bad, HEADER)
    assert bad["disperser"] in str(err.value)


def test_prism_bad_inputs(refs, tmp_path):
    with pytest.raises(InputError, match="GWA_TILT"):
        Optics(refs, {k: v for k, v in HEADER.items() if k != "GWA_TILT"})
    g395m = tmp_path / "g395m"
    names = design.write_optical_refs(str(g395m))
    grating_refs = dict(refs, disperser=str(g395m / names["disperser"]))
    with pytest.raises(InputError, match="is for G395M, the exposure uses PRISM"):
        Optics(grating_refs, HEADER)
    with pytest.raises(InputError, match="is for PRISM, the exposure uses G395M"):
        Optics(refs, dict(HEADER, GRATING="G395M", FILTER="F290LP"))
