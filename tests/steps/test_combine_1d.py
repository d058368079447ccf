"""combine_1d: the official algorithm on the jwst-spec-steps.md example and edge cases."""


import numpy as np
import pytest
from astropy.io import fits

from webbspec.io.datamodels import C1D_COLUMNS, SpecModel, Spectrum, new_spec_table
from webbspec.errors import InputError
from webbspec.steps import combine_1d


def example(dq=False, exptimes=(100.0, 200.0, 300.0), shifts=(0.0, 0.3, -0.2)):
    models = []
    for t, sh in zip(exptimes, shifts):
        tab = new_spec_table(200)
        tab["WAVELENGTH"] = 1.0 + (np.arange(200) + sh) * 0.01
        tab["FLUX"], tab["FLUX_ERROR"], tab["SURF_BRIGHT"], tab["SB_ERROR"], tab["NPIXELS"] = \
            1e-3, 1e-5, 1e-2, 1e-4, 5
        if dq and t == 200.0:
            tab["DQ"][50] = 4              # JUMP_DET: propagated
            tab["DQ"][80] = 1              # DO_NOT_USE: ignored
            tab["FLUX"][80] = 99.0
        hdr = fits.Header({"SPORDER": 1, "SOURCEID": 2, "SRCTYPE": "POINT"})
        models.append(SpecModel(fits.Header({"EFFEXPTM": t, "EFFINTTM": t / 10}), [Spectrum(hdr, tab)]))
    return models


def test_example_grid_weights_and_counts():
    out = combine_1d.run(example())
    assert out.kind == "COMBINE1D" and out.primary["S_COMB1D"] == "COMPLETE"
    t = out.spectra[0].table
    assert list(t.dtype.names) == [c[0] for c in C1D_COLUMNS]
    # 200 bins: what jwst 3.0's Combine1dStep gives on this recipe (checked side by side)
    assert len(t) == 200
    assert t["WEIGHT"].min() == 200 and t["WEIGHT"].max() == 600
    assert t["N_INPUT"].min() == 1 and t["N_INPUT"].max() == 3
    assert np.all(np.diff(t["WAVELENGTH"]) > 0)
    assert np.allclose(t["FLUX"], 1e-3) and np.allclose(t["SURF_BRIGHT"], 1e-2)
    full = t["N_INPUT"] == 3
    expect = np.sqrt((1e-5 * 100) ** 2 + (1e-5 * 200) ** 2 + (1e-5 * 300) ** 2) / 600
    assert np.allclose(t["ERROR"][full], expect)
    assert out.spectra[0].header["SOURCEID"] == 2 and out.spectra[0].header["SPORDER"] == 1


def test_dq_propagation_and_do_not_use():
    t = combine_1d.run(example(dq=True)).spectra[0].table
    assert np.count_nonzero(t["DQ"] & 4) == 1 and not np.any(t["DQ"] & 1)
    assert np.allclose(t["FLUX"], 1e-3)          # the flagged 99.0 element was ignored
    assert np.any((t["N_INPUT"] == 2) & (t["WEIGHT"] == 400))


def test_weights_from_other_keys():
    t = combine_1d.run(example(), exptime_key="unit_weight").spectra[0].table
    assert t["WEIGHT"].max() == 3
    t = combine_1d.run(example(), exptime_key="integration_time").spectra[0].table
    assert t["WEIGHT"].max() == pytest.approx(60)


def test_sigma_clip_drops_an_outlier():
    models = example(exptimes=(100.0, 100.0, 100.0, 100.0), shifts=(0.0, 0.0, 0.0, 0.0))
    for m in models:
        m.spectra[0].table["FLUX"] += np.random.default_rng(len(m.spectra)).normal(0, 1e-6, 200)
    models[2].spectra[0].table["FLUX"][40] = 1.0
    t = combine_1d.run(models, sigma_clip=3).spectra[0].table
    assert t["N_INPUT"][40] == 3 and t["FLUX"][40] == pytest.approx(1e-3, rel=0.01)


def test_skips_bad_spectra_and_errors_when_none_left():
    models = example()
    models[1].spectra[0].table["WAVELENGTH"][10] = models[1].spectra[0].table["WAVELENGTH"][9]
    t = combine_1d.run(models).spectra[0].table
    assert t["WEIGHT"].max() == 400                 # 100 + 300
    for m in models:
        m.spectra[0].table["FLUX"] = np.nan
    with pytest.raises(InputError):
        combine_1d.run(models)


@pytest.mark.official
def test_same_as_official(tmp_path, monkeypatch):
    monkeypatch.setenv("CRDS_SERVER_URL", "https://127.0.0.1:9")
    monkeypatch.setenv("CRDS_PATH", str(tmp_path))
    dm = pytest.importorskip("stdatamodels.jwst.datamodels")
    from jwst.combine_1d import Combine1dStep
    from jwst.datamodels import ModelContainer
    ours = example(dq=True)
    theirs = []
    for m in ours:
        tab = np.zeros(200, dtype=dm.SpecModel().get_dtype("spec_table"))
        for name in tab.dtype.names:
            tab[name] = m.spectra[0].table[name]
        sp = dm.SpecModel(spec_table=tab)
        sp.spectral_order, sp.source_id = 1, 2
        mm = dm.MultiSpecModel()
        mm.spec.append(sp)
        mm.meta.exposure.exposure_time = m.primary["EFFEXPTM"]
        theirs.append(mm)
    ref = Combine1dStep().run(ModelContainer(theirs)).spec[0].spec_table
    t = combine_1d.run(ours).spectra[0].table
    for name in ("WAVELENGTH", "FLUX", "ERROR", "SURF_BRIGHT", "SB_ERROR", "DQ", "WEIGHT", "N_INPUT"):
        assert np.array_equal(np.asarray(ref[name]), t[name]), name
