"""Write a simulated exposure: its `_rate` file (full-frame, one SCI group) and the truth's
cosmic-ray mask beside the other truth files."""

import os

import numpy as np

from ..io import datamodels
from ..io.datamodels import Model, Slit
from . import truth


def write_rate(outdir, root, primary, sci_header, observed, dq):
    """``observed``: what :func:`webbspec.simulate.noise.observe` returns; ``dq`` the DQ array.
    Writes ``<outdir>/<root>_rate.fits`` and ``truth/outliers/<root>_rate_crmask.fits``; returns
    both paths."""
    sci, err, vp, vr, mask, snr = observed
    arrays = {"SCI": sci.astype(np.float32), "ERR": err.astype(np.float32), "DQ": dq.copy(),
              "VAR_POISSON": vp.astype(np.float32), "VAR_RNOISE": vr.astype(np.float32)}
    path = os.path.join(outdir, f"{root}_rate.fits")
    datamodels.write(Model(primary, [Slit(sci_header, arrays)], "single"), path)
    crmask = truth.write_crmask(mask, snr, os.path.join(outdir, "truth", "outliers", f"{root}_rate_crmask.fits"))
    return path, crmask
