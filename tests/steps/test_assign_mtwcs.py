"""assign_mtwcs: a moving target's exposures end up with the target at one sky position."""

import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from builders import DEC0, RA0, make_slit  # noqa: E402
from webbspec.io.datamodels import Model  # noqa: E402
from webbspec.pipeline.exp_to_source import rereference  # noqa: E402
from webbspec.io.skycoords import xieta_to_radec  # noqa: E402
from webbspec.steps import assign_mtwcs, resample_spec  # noqa: E402

MOVE = 1.5 / 3600.0    # the target moves 1.5 arcsec north between the two exposures


def _exposures(targtype="moving"):
    # each exposure is pointed at the target, so the target is at the slit centre in both,
    # but the sky under the slit differs by MOVE
    a = make_slit(src=0.0, ref=(RA0, DEC0), pa=0.0, seed=1)
    b = make_slit(src=0.0, ref=(RA0, DEC0 + MOVE), pa=0.0, seed=2)
    for s, dec in ((a, DEC0), (b, DEC0 + MOVE)):
        s.header["MT_RA"], s.header["MT_DEC"] = RA0, dec
    primary = fits.Header({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "TARGTYPE": targtype,
                           "DATAMODL": "MultiExposureModel"})
    return Model(primary, [a, b], "multi")


def _target_sky(slit, truth):
    row = int(np.argmax(truth[:, 100]))
    return np.array(xieta_to_radec(float(slit["XI"][row, 100]), float(slit["ETA"][row, 100]),
                                   float(slit.header["WSREFRA"]), float(slit.header["WSREFDE"])))


def test_target_lands_on_its_mean_position():
    model = _exposures()
    out = assign_mtwcs.run(model)
    assert out.primary["S_MTWCS"] == "COMPLETE"
    np.testing.assert_allclose(out.primary["MT_AVDEC"], DEC0 + MOVE / 2, atol=1e-12)
    a, b = (_target_sky(s, s0.truth) for s, s0 in zip(out.slits, model.slits))
    sep = np.hypot((a[0] - b[0]) * np.cos(np.radians(DEC0)), a[1] - b[1]) * 3600
    assert sep < 0.005, sep          # arcsec; before the step the two are 1.5" apart
    np.testing.assert_allclose(a[1], DEC0 + MOVE / 2, atol=0.005 / 3600)


def test_fixed_target_untouched():
    model = _exposures("fixed")
    out = assign_mtwcs.run(model)
    assert out.primary["S_MTWCS"] == "SKIPPED"
    for s, s0 in zip(out.slits, model.slits):
        assert s.header["WSREFDE"] == s0.header["WSREFDE"]


def test_resampled_target_is_not_smeared():
    """After the step the two exposures resample into one profile as sharp as a single one."""
    def width(model):
        for s in model.slits:
            rereference(s, float(model.slits[0].header["WSREFRA"]), float(model.slits[0].header["WSREFDE"]))
        prof = np.nansum(np.asarray(resample_spec.run(model, {}).slits[0]["SCI"], float)[:, 100:200], axis=1)
        prof = np.clip(prof, 0, None)
        y = np.arange(prof.size)
        c = np.sum(y * prof) / prof.sum()
        return np.sqrt(np.sum((y - c) ** 2 * prof) / prof.sum())

    moved = width(assign_mtwcs.run(_exposures()))
    smeared = width(_exposures("fixed"))
    assert smeared > moved + 3, (moved, smeared)     # 1.5" = 15 rows apart when not corrected
