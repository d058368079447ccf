"""ASDF files for the ASDF extension of our products, formatted here rather than by the asdf library.

Why: importing asdf loads every installed extension (stdatamodels, gwcs, asdf-astropy) and parses
their manifests in pure-Python YAML, 4.2 CPU s per Stage 2 product job (measured), and asdf then
validates the tree against the schemas on every write. What we write is small and fixed in shape:
an empty tree (`_x1d`, `_c1d`) or the gwcs of rectified slits (`_s2d`, officialio's module
docstring has the transform). The tags and versions below are those asdf 5.4 / asdf-astropy 0.11 /
gwcs 1.0 write; tests/test_asdfwrite.py reads our bytes back with asdf + stdatamodels and checks
the gwcs against one built with gwcs itself.

File layout (ASDF standard 1.6.0): header lines, the YAML tree, ``...``, then one binary block
per array: magic, header size 48, flags, compression, allocated/used/data sizes, MD5, data.
"""

import hashlib
import math
import struct

import numpy as np

from .. import __version__

__all__ = ["asdf_file", "s2d_wcs_yaml", "s2d_tree"]

_HEAD = ("#ASDF 1.0.0\n#ASDF_STANDARD 1.6.0\n%YAML 1.1\n%TAG ! tag:stsci.edu:asdf/\n"
         "--- !core/asdf-1.1.0\n"
         f"asdf_library: !core/software-1.0.0 {{name: webbspec, version: {__version__}}}\n")


def asdf_file(body="", blocks=()):
    """The bytes of an ASDF file: ``body`` (YAML mapping lines at the top level, possibly empty)
    and the arrays ``blocks`` (referenced from the YAML as ``source: i`` in this order)."""
    out = [(_HEAD + body + ("" if not body or body.endswith("\n") else "\n") + "...\n").encode("utf-8")]
    for arr in blocks:
        data = np.ascontiguousarray(arr).tobytes()
        n = len(data)
        out.append(b"\xd3BLK" + struct.pack(">HI4sQQQ16s", 48, 0, b"\0\0\0\0", n, n, n,
                                             hashlib.md5(data).digest()))
        out.append(data)
    return b"".join(out)


def yaml_float(x):
    """A float as YAML 1.1 reads it back exactly (repr, with a '.' in the mantissa; .nan/.inf)."""
    x = float(x)
    if math.isnan(x):
        return ".nan"
    if math.isinf(x):
        return ".inf" if x > 0 else "-.inf"
    s = repr(x)
    if "e" in s and "." not in s.split("e")[0]:
        mant, exp = s.split("e")
        s = f"{mant}.0e{exp}"
    return s


def _ndarray(source, n):
    return (f"!core/ndarray-1.1.0\n  source: {source}\n  datatype: float64\n  byteorder: little\n"
            f"  shape: [{n}]")


def _indent(text, n):
    pad = " " * n
    return "\n".join(pad + line if line else line for line in text.split("\n"))


def _sky_frame():
    return """\
!<tag:stsci.edu:gwcs/composite_frame-1.0.0>
frames:
- !<tag:stsci.edu:gwcs/celestial_frame-1.2.0>
  axes_names: [lon, lat]
  axes_order: [0, 1]
  axis_physical_types: [pos.eq.ra, pos.eq.dec]
  name: sky
  reference_frame: !<tag:astropy.org:astropy/coordinates/frames/icrs-1.1.0>
    frame_attributes: {}
  unit: [!unit/unit-1.0.0 deg, !unit/unit-1.0.0 deg]
- !<tag:stsci.edu:gwcs/spectral_frame-1.2.0>
  axes_names: [wavelength]
  axes_order: [2]
  axis_physical_types: [em.wl]
  name: spectral
  unit: [!unit/unit-1.0.0 um]
name: world"""


def s2d_wcs_yaml(*, nx, ny, crpix, xi_step, eta_step, ra0, dec0, block):
    """The YAML of one rectified slit's gwcs (officialio's module docstring): rows map linearly to
    (xi, eta) [deg] about (ra0, dec0) through a TAN projection, columns to the wavelength table held
    in blocks ``block`` (lookup table) and ``block + 1`` (the column positions 0..nx-1)."""
    f = yaml_float
    shift = f(-crpix)
    lin = "\n".join(f"""\
- !transform/compose-1.4.0
  forward:
  - !transform/shift-1.4.0
    inputs: [x]
    offset: {shift}
    outputs: [y]
  - !transform/scale-1.4.0
    factor: {f(step)}
    inputs: [x]
    outputs: [y]
  inputs: [x]
  outputs: [y]""" for step in (xi_step, eta_step))
    transform = f"""\
!transform/compose-1.4.0
bounding_box: !transform/property/bounding_box-1.2.0
  ignore: []
  intervals:
    x0: [-0.5, {f(nx - 0.5)}]
    x1: [-0.5, {f(ny - 0.5)}]
  order: F
forward:
- !transform/compose-1.4.0
  forward:
  - !transform/remap_axes-1.5.0
    inputs: [x0, x1]
    mapping: [1, 1, 0]
    outputs: [x0, x1, x2]
  - !transform/concatenate-1.4.0
    forward:
    - !transform/concatenate-1.4.0
      forward:
{_indent(lin, 6)}
      inputs: [x0, x1]
      outputs: [y0, y1]
    - !transform/tabular-1.4.0
      bounds_error: false
      fill_value: .nan
      inputs: [x]
      lookup_table: {_indent(_ndarray(block, nx), 6).lstrip()}
      method: linear
      outputs: [y]
      points:
      - {_indent(_ndarray(block + 1, nx), 8).lstrip()}
    inputs: [x0, x1, x]
    outputs: [y0, y1, y]
  inputs: [x0, x1]
  outputs: [y0, y1, y]
- !transform/concatenate-1.4.0
  forward:
  - !transform/compose-1.4.0
    forward:
    - !transform/gnomonic-1.4.0
      direction: pix2sky
      inputs: [x, y]
      outputs: [phi, theta]
    - !transform/rotate3d-1.5.0
      direction: native2celestial
      inputs: [phi_N, theta_N]
      outputs: [alpha_C, delta_C]
      phi: {f(ra0)}
      psi: 180.0
      theta: {f(dec0)}
    inputs: [x, y]
    outputs: [alpha_C, delta_C]
  - !transform/identity-1.4.0
    inputs: [x0]
    outputs: [x0]
  inputs: [x, y, x0]
  outputs: [alpha_C, delta_C, x0]
inputs: [x0, x1]
outputs: [alpha_C, delta_C, x0]"""
    return f"""\
!<tag:stsci.edu:gwcs/wcs-1.4.0>
name: ''
pixel_shape: null
steps:
- !<tag:stsci.edu:gwcs/step-1.3.0>
  frame: !<tag:stsci.edu:gwcs/frame2d-1.2.0>
    axes_names: [x, y]
    axes_order: [0, 1]
    axis_physical_types: ['custom:x', 'custom:y']
    name: detector
    unit: [!unit/unit-1.0.0 pixel, !unit/unit-1.0.0 pixel]
  transform: {_indent(transform, 4).lstrip()}
- !<tag:stsci.edu:gwcs/step-1.3.0>
  frame: {_indent(_sky_frame(), 4).lstrip()}
  transform: null"""


def s2d_tree(grids, single):
    """The ASDF file of an `_s2d`: ``grids`` one dict per slit with the keyword arguments of
    :func:`s2d_wcs_yaml` (without ``block``) plus ``wave`` (nx wavelengths); ``single`` -> the
    SlitModel tree ``meta.wcs``, else MultiSlitModel ``slits[i].meta.wcs``."""
    blocks, wcs = [], []
    for g in grids:
        g = dict(g)
        wave = np.asarray(g.pop("wave"), dtype="<f8")
        wcs.append(s2d_wcs_yaml(block=len(blocks), **g))
        blocks += [wave, np.arange(wave.size, dtype="<f8")]
    if single:
        body = "meta:\n  wcs: " + _indent(wcs[0], 4).lstrip()
    else:
        body = "slits:\n" + "\n".join("- meta:\n    wcs: " + _indent(w, 6).lstrip() for w in wcs)
    return asdf_file(body, blocks)
