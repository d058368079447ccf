"""Shared, once per test process, for the tests/test_nrs_ifu_*.py modules: the simulated NIRSpec IFU
optical references (writing them imports stdatamodels and astropy.modeling) and the exposures'
coordinates (a full-frame WCS evaluation each)."""

import atexit
import functools
import os
import shutil
import tempfile

import numpy as np

from webbspec.instruments.nirspec import ifu
from webbspec.io.datamodels import Model, Slit
from webbspec.simulate import nrs_ifu
from webbspec.simulate import nrs_ifu_optics_refs as design
from webbspec.steps import assign_wcs


@functools.lru_cache(maxsize=None)
def ifu_refs():
    """(refdir, {reftype: path}) of the optical set plus the four IFU files."""
    refdir = tempfile.mkdtemp(prefix="webbspec_ifu_refs_")
    atexit.register(shutil.rmtree, refdir, ignore_errors=True)
    files = design.write_ifu_optical_refs(refdir)
    return refdir, {rt: os.path.join(refdir, f) for rt, f in files.items()}


@functools.lru_cache(maxsize=None)
def ifu_headers(kind):
    """(PRIMARY, SCI) headers of the small program's first exposure of ``kind`` (science: dither 1)."""
    refdir, _ = ifu_refs()
    plan = {e["kind"]: e for e in reversed(nrs_ifu.exposure_plan("small"))}
    return nrs_ifu.exposure_header(plan[kind], nrs_ifu.ifu_aperture(refdir))


@functools.lru_cache(maxsize=None)
def ifu_coordinates(kind):
    """(header keys, coordinates with the slit edges, slice width) of that exposure (do not modify)."""
    primary, sci = ifu_headers(kind)
    keys = {**dict(primary.items()), **dict(sci.items())}
    c, _, width = ifu.exposure_coordinates(keys, (2048, 2048), ifu_refs()[1], slit_edges=True)
    return keys, c, width


@functools.lru_cache(maxsize=None)
def _assigned():
    primary, sci = ifu_headers("science")
    model = Model(primary, [Slit(sci, {"SCI": np.zeros((2048, 2048), np.float32)})], "single")
    return assign_wcs.run(model, ifu_refs()[1])


def ifu_assigned():
    """A copy of the science exposure (SCI zero) after our assign_wcs."""
    return _assigned().copy()
