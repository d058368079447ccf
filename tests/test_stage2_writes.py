"""The Stage 2 chain's writers (webbspec.pipeline.stage2chain._Writes) and the per-process memos of
the MOS corrections: what a writer thread writes is the model as it was when handed over, its
error comes back at the end; the memo look-ups equal a fresh computation."""

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from webbspec.errors import InputError
from webbspec.io import datamodels
from webbspec.io.datamodels import Model, Slit, SpecModel, Spectrum, new_spec_table
from webbspec.pipeline import stage2chain
from webbspec.steps import barshadow, photom
from webbspec.steps._memo import Memo, digest

RNG = np.random.default_rng(7)


def _model():
    arrays = {n: RNG.normal(size=(6, 9)).astype(np.float32) for n in ("SCI", "ERR", "VAR_POISSON")}
    arrays["DQ"] = RNG.integers(0, 2 ** 20, size=(6, 9)).astype(np.uint32)
    arrays["CON"] = RNG.integers(0, 9, size=(6, 9)).astype(np.int32)
    slit = Slit(fits.Header({"SLTNAME": "S1", "BUNIT": "MJy/sr"}), arrays)
    return Model(fits.Header({"DATAMODL": "MultiSlitModel"}), [slit], "multi")


def test_a_writer_thread_writes_the_model_as_handed_over(tmp_path, monkeypatch):
    monkeypatch.setenv("WEBBSPEC_CHAIN_WRITES", "thread")
    model = _model()
    want = {k: np.array(v) for k, v in model.slits[0].arrays.items()}
    spec = SpecModel(fits.Header({"DATAMODL": "MultiSpecModel"}),
                     [Spectrum(fits.Header({"SLTNAME": "S1"}), new_spec_table(5))])
    spec.spectra[0].table["FLUX"] = np.arange(5.0)
    go = threading.Event()

    def write(m, path):
        go.wait(10)                       # written only after the chain changed its model
        datamodels.write(m, path)

    with stage2chain._Writes() as writes:
        assert writes.how == "thread"
        writes.submit(write, model, str(tmp_path / "a.fits"))
        for a in model.slits[0].arrays.values():    # the chain goes on editing (it never does)
            a[...] = 0
        model.slits[0].header["BUNIT"] = "DN/s"
        go.set()
        writes.submit(datamodels.write, spec, str(tmp_path / "b.fits"))
        spec.spectra[0].table["FLUX"] = -1.0
    back = datamodels.read(str(tmp_path / "a.fits"))
    for k, v in want.items():
        np.testing.assert_array_equal(back.slits[0][k], v)
    assert back.slits[0].header["BUNIT"] == "MJy/sr"
    np.testing.assert_array_equal(datamodels.read(str(tmp_path / "b.fits")).spectra[0].table["FLUX"], np.arange(5.0))


@pytest.mark.parametrize("how", ["thread", "serial", "fork"])
def test_a_failed_write_raises_at_the_end_whichever_writer(tmp_path, monkeypatch, how):
    monkeypatch.setenv("WEBBSPEC_CHAIN_WRITES", how)

    def bad(model, path):
        raise InputError(path, "disk full")

    done = []
    with pytest.raises(InputError, match="disk full"):
        with stage2chain._Writes() as writes:
            writes.submit(bad, _model(), str(tmp_path / "x.fits"))
            writes.submit(lambda m, p: done.append(p), None, "here", here=True)
    assert done == ["here"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_default_writer_survives_a_step_turning_warnings_into_errors(tmp_path, monkeypatch, workers):
    """The default writer (a forked child; in a one-core job, the chain's own thread after the
    step) is not hit by the warning filter a step sets while it reads a file (io.datamodels._open:
    astropy's warnings are errors there, for the whole process): a writer thread was, when its
    write warned at that moment (a long header comment's VerifyWarning failed an MRS chain job)."""
    import warnings

    from astropy.io.fits.verify import VerifyWarning
    from astropy.utils.exceptions import AstropyUserWarning

    monkeypatch.delenv("WEBBSPEC_CHAIN_WRITES", raising=False)
    monkeypatch.setenv("WEBBSPEC_CHAIN_WORKERS", workers)
    go, parent = threading.Event(), os.getpid()
    out = tmp_path / "written.txt"

    def write(model, path):
        if os.getpid() == parent and threading.current_thread() is not threading.main_thread():
            go.wait(5)                   # a writer thread of this process: warn while the filter is set
        warnings.warn("Card is too long, comment will be truncated.", VerifyWarning)
        Path(path).write_text("ok")

    with stage2chain._Writes() as writes:
        assert writes.how == ("fork" if workers == "2" else "serial")
        writes.submit(write, "model", str(out))
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstropyUserWarning)
            go.set()
            writes.join_threads()
    assert out.read_text() == "ok"


def test_mos_area_lookup_as_a_dict_of_the_rows():
    q = np.array([1, 1, 2, 4, 1, 3], np.int16)
    x = np.array([5, 6, 5, 365, 5, 171], np.int16)
    y = np.array([7, 7, 7, 171, 7, 1], np.int16)
    area = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], np.float32)
    want = dict(zip(zip(q.astype(int).tolist(), x.astype(int).tolist(), y.astype(int).tolist()), area.astype(float).tolist()))
    got = photom._ShutterAreas(q, x, y, area)
    for key, value in want.items():
        assert key in got and got[key] == value             # (1, 5, 7) twice: the last row, as a dict
    for key in ((1, 7, 5), (2, 5, 8), (5, 1, 1), (1, 2 ** 22, 7), ("a", 1, 1)):
        assert key not in got
    with pytest.raises(KeyError):
        got[(1, 7, 5)]


def test_barshadow_memo_equals_a_fresh_shadow():
    ref = {"1x1": RNG.uniform(0.2, 1.0, (1001, 31)), "1x3": RNG.uniform(0.2, 1.0, (1001, 31)),
           "crval1": 2.8, "cdelt1": 0.1, "cdelt2": 0.002}
    slit_y = RNG.uniform(-1.6, 1.6, (5, 40)).astype(np.float32)
    lam = RNG.uniform(2.7, 5.5, (5, 40)).astype(np.float32)
    barshadow._MEMO.entries.clear()
    barshadow._MEMO.size = 0
    first = barshadow._memo_correction(ref, __file__, "1x1", slit_y, lam, 1.15)
    again = barshadow._memo_correction(ref, __file__, "1x1", slit_y, lam, 1.15)
    assert again is first and not first.flags.writeable
    fresh = barshadow.correction(ref, "1x1", slit_y.astype(float), lam.astype(float), 1.15)
    assert np.array_equal(first, fresh, equal_nan=True)
    other = barshadow._memo_correction(ref, __file__, "1x1", slit_y, lam + np.float32(0.01), 1.15)
    assert other is not first and len(barshadow._MEMO.entries) == 2


def test_memo_keeps_at_most_its_limit():
    memo = Memo(3 * 800)
    for k in range(5):
        memo.put(k, np.zeros(100))                # 800 bytes each
    assert sorted(memo.entries) == [2, 3, 4] and memo.size == 2400
    assert memo.put("big", np.zeros(1000)) is not None and "big" not in memo.entries
    assert digest(np.arange(3.0)) != digest(np.arange(3.0).astype(np.float32))
