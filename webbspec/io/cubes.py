"""IFU cubes (`_s3d`): the :class:`Cube` data type and its files in the official IFUCubeModel layout.

A cube is its own type, not a slit with a third axis: SCI / ERR (float32), DQ (uint32) and WMAP
(float32, the number of detector pixels behind each voxel), all (nwave, ny, nx), with its
wavelength grid and a :class:`CubeWCS` (a TAN plane about CRVAL1/2 with the PC matrix and CDELT
of the official cubes, wavelength planes linear or tabulated).

On disk, as jwst 3.0 writes it: PRIMARY (DATAMODL IFUCubeModel, FLUXEXT/ERREXT/MASKEXT,
WTYPE/ROIS/ROIW/WPOWER), SCI with the FITS WCS keywords (RA---TAN, DEC--TAN, WAVE with CRVAL3 /
CDELT3 for a linear grid, WAVE-TAB + PS3_0/PS3_1 for a tabulated one), PIXAR_SR/PIXAR_A2 and
BUNIT, ERR (ERRTYPE=ERR), DQ, WMAP, a one-row WCS-TABLE (column ``wavelength`` shaped (1, nwave),
always written) and the ASDF extension with the cube's gwcs (detector (x, y, z) -> ICRS +
wavelength), which specutils' "JWST s3d" reader takes the WCS from.
"""

import os
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits

from . import fitswrite
from .asdfwrite import _indent, _sky_frame, asdf_file, yaml_float
from .atomicfile import replacing
from .datamodels import asdf_hdu_bytes, copy_header, read_header
from .skycoords import radec_to_xieta, xieta_to_radec
from ..errors import InputError
from ..modes import mode_for

__all__ = ["Cube", "CubeWCS", "read", "write", "is_cube_file", "as_cube", "as_written", "SR_PER_ARCSEC2"]

# the official cubes' conversion of PIXAR_A2 to PIXAR_SR
SR_PER_ARCSEC2 = 2.3504e-11
_PRIMARY_DROP = ("SIMPLE", "BITPIX", "NAXIS", "EXTEND")


@dataclass
class CubeWCS:
    """The celestial + spectral WCS of a cube.

    Pixel (x, y) (0-based) -> intermediate (p1, p2) = cdelt * PC @ (x + 1 - crpix1, y + 1 - crpix2)
    [deg] -> gnomonic about (crval1, crval2) with p1 = xi (east) and p2 = eta (north), as FITS
    RA---TAN/DEC--TAN. Plane z has wavelength ``wavelength[z]`` [um]."""

    crval1: float
    crval2: float
    crpix1: float
    crpix2: float
    cdelt1: float                  # [deg]
    cdelt2: float                  # [deg]
    pc: np.ndarray                 # 2x2
    wavelength: np.ndarray         # plane centres [um]
    linear: bool = True

    @property
    def spaxel_arcsec(self):
        return abs(float(self.cdelt1)) * 3600.0

    @property
    def cdelt3(self):
        w = np.asarray(self.wavelength, float)
        return float(w[1] - w[0]) if w.size > 1 else 0.0

    def xieta_to_pixel(self, xi, eta):
        """0-based cube (x, y) of tangent-plane offsets [arcsec] about (crval1, crval2)."""
        inv = np.linalg.inv(np.asarray(self.pc, float))
        u = np.asarray(xi, float) / (self.cdelt1 * 3600.0)
        v = np.asarray(eta, float) / (self.cdelt2 * 3600.0)
        return (inv[0, 0] * u + inv[0, 1] * v + self.crpix1 - 1.0,
                inv[1, 0] * u + inv[1, 1] * v + self.crpix2 - 1.0)

    def pixel_to_xieta(self, x, y):
        dx = np.asarray(x, float) + 1.0 - self.crpix1
        dy = np.asarray(y, float) + 1.0 - self.crpix2
        pc = np.asarray(self.pc, float)
        return ((pc[0, 0] * dx + pc[0, 1] * dy) * self.cdelt1 * 3600.0,
                (pc[1, 0] * dx + pc[1, 1] * dy) * self.cdelt2 * 3600.0)

    def sky_to_pixel(self, ra, dec):
        return self.xieta_to_pixel(*radec_to_xieta(ra, dec, self.crval1, self.crval2))

    def pixel_to_sky(self, x, y):
        return xieta_to_radec(*self.pixel_to_xieta(x, y), self.crval1, self.crval2)

    def header(self):
        """The SCI keywords of this WCS, as the official cubes carry them."""
        h = fits.Header()
        h["WCSAXES"] = (3, "number of World Coordinate System axes")
        for i, (crpix, crval, cdelt, ctype, cunit) in enumerate((
                (self.crpix1, self.crval1, self.cdelt1, "RA---TAN", "deg"),
                (self.crpix2, self.crval2, self.cdelt2, "DEC--TAN", "deg")), start=1):
            h[f"CRPIX{i}"] = float(crpix)
            h[f"CRVAL{i}"] = float(crval)
            h[f"CTYPE{i}"] = ctype
            h[f"CUNIT{i}"] = cunit
            h[f"CDELT{i}"] = float(cdelt)
        h["CRPIX3"] = 1.0
        if self.linear:
            h["CRVAL3"] = float(self.wavelength[0])
            h["CTYPE3"] = "WAVE"
            h["CDELT3"] = self.cdelt3
        else:
            h["CRVAL3"] = 1.0
            h["CTYPE3"] = "WAVE-TAB"
            h["PS3_0"] = ("WCS-TABLE", "Coordinate table extension name")
            h["PS3_1"] = ("wavelength", "Coordinate table column name")
        h["CUNIT3"] = "um"
        pc = np.asarray(self.pc, float)
        for i in range(3):
            for j in range(3):
                val = float(pc[i, j]) if (i < 2 and j < 2) else float(i == j)
                h[f"PC{i + 1}_{j + 1}"] = val
        return h

    @classmethod
    def from_header(cls, h, wavelength, path="<cube>"):
        try:
            pc = np.array([[float(h.get("PC1_1", 1.0)), float(h.get("PC1_2", 0.0))],
                           [float(h.get("PC2_1", 0.0)), float(h.get("PC2_2", 1.0))]])
            return cls(float(h["CRVAL1"]), float(h["CRVAL2"]), float(h["CRPIX1"]), float(h["CRPIX2"]),
                       float(h["CDELT1"]), float(h["CDELT2"]), pc, np.asarray(wavelength, float),
                       str(h.get("CTYPE3", "WAVE")).strip().upper() != "WAVE-TAB")
        except KeyError as exc:
            raise InputError(path, f"cube SCI header lacks the WCS keyword {exc.args[0]}") from None

    def gwcs_yaml(self):
        """The gwcs the official cubes carry in their ASDF extension (pointing.create_fitswcs):
        (x, y) -> crpix shifts | PC | cdelt scales | TAN | rotation to (crval1, crval2); z -> the
        linear wavelength axis or a table of plane wavelengths."""
        f = yaml_float
        nz = len(self.wavelength)
        pc = np.asarray(self.pc, float)
        matrix = f"[[{f(pc[0, 0])}, {f(pc[0, 1])}], [{f(pc[1, 0])}, {f(pc[1, 1])}]]"
        if self.linear:
            spectral = f"""\
!transform/compose-1.4.0
forward:
- !transform/scale-1.4.0
  factor: {f(self.cdelt3)}
  inputs: [x]
  outputs: [y]
- !transform/shift-1.4.0
  inputs: [x]
  offset: {f(self.wavelength[0])}
  outputs: [y]
inputs: [x]
outputs: [y]"""
        else:
            table = "[" + ", ".join(f(w) for w in self.wavelength) + "]"
            points = "[" + ", ".join(f(i) for i in range(nz)) + "]"
            spectral = f"""\
!transform/tabular-1.4.0
bounds_error: false
fill_value: .nan
inputs: [x]
lookup_table: !core/ndarray-1.1.0 {{data: {table}, datatype: float64, shape: [{nz}]}}
method: linear
outputs: [y]
points:
- !core/ndarray-1.1.0 {{data: {points}, datatype: float64, shape: [{nz}]}}"""
        celestial = f"""\
!transform/compose-1.4.0
forward:
- !transform/compose-1.4.0
  forward:
  - !transform/compose-1.4.0
    forward:
    - !transform/concatenate-1.4.0
      forward:
      - !transform/shift-1.4.0 {{inputs: [x], name: crpix1, offset: {f(1.0 - self.crpix1)}, outputs: [y]}}
      - !transform/shift-1.4.0 {{inputs: [x], name: crpix2, offset: {f(1.0 - self.crpix2)}, outputs: [y]}}
      inputs: [x0, x1]
      outputs: [y0, y1]
    - !transform/affine-1.5.0
      inputs: [x, y]
      matrix: !core/ndarray-1.1.0 {{data: {matrix}, datatype: float64, shape: [2, 2]}}
      name: pc_matrix
      outputs: [x, y]
      translation: !core/ndarray-1.1.0 {{data: [0.0, 0.0], datatype: float64, shape: [2]}}
    inputs: [x0, x1]
    outputs: [x, y]
  - !transform/concatenate-1.4.0
    forward:
    - !transform/scale-1.4.0 {{factor: {f(self.cdelt1)}, inputs: [x], name: cdelt1, outputs: [y]}}
    - !transform/scale-1.4.0 {{factor: {f(self.cdelt2)}, inputs: [x], name: cdelt2, outputs: [y]}}
    inputs: [x0, x1]
    outputs: [y0, y1]
  inputs: [x0, x1]
  outputs: [y0, y1]
- !transform/compose-1.4.0
  forward:
  - !transform/gnomonic-1.4.0 {{direction: pix2sky, inputs: [x, y], name: TAN, outputs: [phi, theta]}}
  - !transform/rotate3d-1.5.0
    direction: native2celestial
    inputs: [phi_N, theta_N]
    name: crval
    outputs: [alpha_C, delta_C]
    phi: {f(self.crval1)}
    psi: 180.0
    theta: {f(self.crval2)}
  inputs: [x, y]
  outputs: [alpha_C, delta_C]
inputs: [x0, x1]
outputs: [alpha_C, delta_C]"""
        return f"""\
!<tag:stsci.edu:gwcs/wcs-1.4.0>
name: ''
pixel_shape: null
steps:
- !<tag:stsci.edu:gwcs/step-1.3.0>
  frame: !<tag:stsci.edu:gwcs/frame-1.2.0>
    axes_names: [x, y, z]
    axes_order: [0, 1, 2]
    axes_type: [SPATIAL, SPATIAL, SPECTRAL]
    axis_physical_types: ['custom:SPATIAL', 'custom:SPATIAL', 'custom:SPECTRAL']
    name: detector
    naxes: 3
    unit: [!unit/unit-1.0.0 pixel, !unit/unit-1.0.0 pixel, !unit/unit-1.0.0 pixel]
  transform: !transform/concatenate-1.4.0
    bounding_box: !transform/property/bounding_box-1.2.0
      ignore: []
      intervals:
        x: [0, {nz - 1}]
        x0: [0, NX1]
        x1: [0, NY1]
      order: F
    forward:
    - {_indent(celestial, 6).lstrip()}
    - {_indent(spectral, 6).lstrip()}
    inputs: [x0, x1, x]
    outputs: [alpha_C, delta_C, y]
- !<tag:stsci.edu:gwcs/step-1.3.0>
  frame: {_indent(_sky_frame(), 4).lstrip()}
  transform: null"""


@dataclass
class Cube:
    """An IFU cube: arrays (nwave, ny, nx), plane wavelengths [um] and the WCS.

    ``header``: the SCI extension keywords besides the WCS (BUNIT, PIXAR_SR, PIXAR_A2, SRCTYPE).
    """

    primary: fits.Header
    sci: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    wmap: np.ndarray
    wavelength: np.ndarray
    wcs: CubeWCS
    header: fits.Header = field(default_factory=fits.Header)
    path: str | None = None
    name: str = ""            # the product suffix of its bands (ch1-short, g395m-f290lp)

    @property
    def shape(self):
        return self.sci.shape

    @property
    def exp_type(self):
        return str(self.primary.get("EXP_TYPE", "")).strip().upper()

    @property
    def mode(self):
        return mode_for(self.primary, self.path or "<cube>")

    @property
    def pixar_sr(self):
        """Solid angle of a spaxel [sr] (PIXAR_SR, else from the spaxel size)."""
        val = self.header.get("PIXAR_SR")
        return float(val) if val is not None else self.wcs.spaxel_arcsec ** 2 * SR_PER_ARCSEC2


# ---------------------------------------------------------------- reading

_CUBE_EXTS = ("SCI", "ERR", "DQ", "WMAP")


def is_cube_file(path):
    """True when ``path`` holds a cube (DATAMODL IFUCubeModel)."""
    try:
        return str(read_header(path).get("DATAMODL", "")).strip() == "IFUCubeModel"
    except InputError:
        return False


def read(path):
    """Read an `_s3d` (ours or the official pipeline's) into a :class:`Cube`."""
    path = str(path)
    if not os.path.exists(path):
        raise InputError(path, "file does not exist")
    try:
        with fits.open(path, memmap=False) as hdul:
            names = [h.name.upper() for h in hdul]
            if "SCI" not in names:
                raise InputError(path, "no SCI extension")
            primary = hdul[0].header.copy()
            sci_hdu = hdul["SCI"]
            sci = np.asarray(sci_hdu.data, dtype=np.float32)
            if sci.ndim != 3:
                raise InputError(path, f"SCI is {sci.ndim}-D, not a cube")
            arrays = {}
            for name, dtype, fill in (("ERR", np.float32, 0.0), ("DQ", np.uint32, 0), ("WMAP", np.float32, 1.0)):
                arrays[name] = (np.asarray(hdul[name].data, dtype=dtype) if name in names
                                else np.full(sci.shape, fill, dtype=dtype))
            table = np.asarray(hdul["WCS-TABLE"].data["wavelength"], float).ravel() \
                if "WCS-TABLE" in names else None
            head = sci_hdu.header
    except InputError:
        raise
    except Exception as exc:
        raise InputError(path, f"not a readable cube ({type(exc).__name__}: {exc})") from None
    wave = _plane_wavelengths(head, table, sci.shape[0], path)
    wcs = CubeWCS.from_header(head, wave, path)
    header = fits.Header([c for c in head.cards if c.keyword in _SCI_KEEP])
    for key in _PRIMARY_DROP:
        primary.remove(key, ignore_missing=True)
    return Cube(primary, sci, arrays["ERR"], arrays["DQ"], arrays["WMAP"], wave, wcs, header, path)


_SCI_KEEP = ("BUNIT", "PIXAR_SR", "PIXAR_A2", "SRCTYPE", "XPOSURE", "DISPAXIS", "SPECSYS", "S_REGION")


def _plane_wavelengths(head, table, nz, path):
    if str(head.get("CTYPE3", "")).strip().upper() == "WAVE-TAB" or "CDELT3" not in head:
        if table is None or table.size != nz:
            raise InputError(path, "tabulated wavelength axis without a matching WCS-TABLE")
        return table
    crval, cdelt, crpix = float(head["CRVAL3"]), float(head["CDELT3"]), float(head.get("CRPIX3", 1.0))
    return crval + (np.arange(nz) + 1.0 - crpix) * cdelt


def as_cube(model):
    """A :class:`Cube` from a Cube, or from a product read by ``datamodels.read`` that is an
    `_s3d` (re-read from its path: the generic reader keeps no WCS)."""
    if isinstance(model, Cube):
        return model
    path = getattr(model, "path", None)
    if path and str(getattr(model, "primary", {}).get("DATAMODL", "")).strip() == "IFUCubeModel":
        return read(path)
    return None


# ---------------------------------------------------------------- writing


def write(cube, path, filename=None):
    """Write ``cube`` atomically as an official IFUCubeModel `_s3d`; returns ``path``."""
    path = str(path)
    primary = copy_header(cube.primary)
    for key in _PRIMARY_DROP:
        primary.remove(key, ignore_missing=True)
    primary["DATAMODL"] = "IFUCubeModel"
    primary["TELESCOP"] = "JWST"
    primary["FILENAME"] = os.path.basename(filename or path)
    sci_h = _sci_header(cube)
    err_h = fits.Header([("BUNIT", sci_h["BUNIT"]), ("ERRTYPE", "ERR", "Type of errors stored here")])
    parts = [fitswrite.primary_bytes(primary)]
    for name, data, head, dtype in (("SCI", cube.sci, sci_h, np.float32), ("ERR", cube.err, err_h, np.float32),
                                    ("DQ", cube.dq, None, np.uint32), ("WMAP", cube.wmap, None, np.float32)):
        parts += fitswrite.image_hdu_parts(np.asarray(data, dtype=dtype), head, name)
    parts.append(_wcs_table_bytes(cube.wavelength))
    ny, nx = cube.sci.shape[1:]
    tree = cube.wcs.gwcs_yaml().replace("NX1", str(nx - 1)).replace("NY1", str(ny - 1))
    parts.append(asdf_hdu_bytes(asdf_file("meta:\n  wcs: " + _indent(tree, 4).lstrip())))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with replacing(path) as tmp, open(tmp, "wb") as fh:
        for part in parts:
            fh.write(part)
    return path


def _sci_header(cube):
    sci_h = fits.Header()
    for card in cube.header.cards:
        sci_h[card.keyword] = (card.value, card.comment)
    sci_h.update(cube.wcs.header())
    sci_h["BUNIT"] = cube.header.get("BUNIT", "MJy/sr")
    return sci_h


def as_written(cube):
    """``cube`` (changed in place and returned) as reading its written file gives it back: arrays
    in their file dtypes, the WCS and SCI keywords through their FITS cards, the plane
    wavelengths as the file holds them (float32 table, or CRVAL3/CDELT3). A Stage 2 chain run in
    memory then extracts the same `_x1d` as the per-step jobs, which read the `_s3d` file."""
    for name, dtype in (("sci", np.float32), ("err", np.float32), ("dq", np.uint32), ("wmap", np.float32)):
        if np.asarray(getattr(cube, name)).dtype.newbyteorder("=") != np.dtype(dtype):
            setattr(cube, name, np.asarray(getattr(cube, name)).astype(dtype))
    head = fits.Header.fromstring(_sci_header(cube).tostring())
    table = np.asarray(cube.wavelength, dtype=">f4").astype(float)
    wave = _plane_wavelengths(head, table, cube.sci.shape[0], cube.path or "<cube>")
    cube.wavelength, cube.wcs = wave, CubeWCS.from_header(head, wave, cube.path or "<cube>")
    cube.header = fits.Header([c for c in head.cards if c.keyword in _SCI_KEEP])
    return cube


def _wcs_table_bytes(wavelength):
    """The WCS-TABLE extension: one row, column ``wavelength`` of shape (1, nwave) (TDIM1)."""
    wave = np.asarray(wavelength, dtype=">f4")
    n = wave.size
    cards = [fits.Card("XTENSION", "BINTABLE", "binary table extension"), fits.Card("BITPIX", 8),
             fits.Card("NAXIS", 2), fits.Card("NAXIS1", 4 * n), fits.Card("NAXIS2", 1),
             fits.Card("PCOUNT", 0), fits.Card("GCOUNT", 1), fits.Card("TFIELDS", 1),
             fits.Card("TTYPE1", "wavelength"), fits.Card("TFORM1", f"{n}E"), fits.Card("TUNIT1", "um"),
             fits.Card("TDIM1", f"(1,{n})"), fits.Card("EXTNAME", "WCS-TABLE", "extension name"),
             fits.Card("EXTVER", 1)]
    text = "".join(c.image for c in cards) + "END".ljust(80)
    head = text.encode("ascii")
    head += b" " * (-len(head) % fitswrite.BLOCK)
    data = wave.tobytes()
    return head + data + b"\0" * (-len(data) % fitswrite.BLOCK)
