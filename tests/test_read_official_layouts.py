"""Issue 9: reading the official product layouts we have no real files of.

Each product is built with the official data models (``stdatamodels.jwst.datamodels``) and saved
the way the official pipeline saves it (PRIMARY DATAMODL, keywords from the schema, gwcs in the
ASDF extension). Every gwcs is made of astropy models whose world coordinates are known
analytically for every pixel: in each region (an IFU slice, the LRS slit, a cutout) the
tangent-plane offsets from (RA0, DEC0) are affine in the pixel coordinates,

    xi, eta [arcsec] = MAT @ (x, y) + OFF        lambda [um] = l0 + lx * x + ly * y

and the sky position is the gnomonic (TAN) projection about (RA0, DEC0). The readers must give
back the arrays bit for bit, WAVELENGTH = lambda and XI/ETA = the offsets of (RA, Dec) from the
reference (WSREFRA/WSREFDE), NaN wherever the gwcs is undefined (outside the bounding box, between
IFU slices), and the keywords the official products carry.

Layouts: IFUImageModel `_cal` (NIRSpec IFU and MIRI MRS: one gwcs for the whole detector image,
slices selected by a slice map as assign_wcs builds them), ImageModel `_cal` (MIRI LRS fixed slit,
full frame, one gwcs whose bounding box covers the slit), SlitModel `_cal` (NIRSpec fixed slit
cutout: the gwcs takes cutout pixels), IFUCubeModel `_s3d` and a `_rate` (ImageModel, no gwcs).
"""

import numpy as np
import pytest
from astropy import coordinates as coord
from astropy import units as u
from astropy.io import fits
from astropy.modeling import models as m

from webbspec.io import datamodels, realdata
from webbspec.io.cubes import Cube
from webbspec.errors import InputError
from webbspec.io.skycoords import radec_to_xieta, xieta_to_radec

dm = pytest.importorskip("stdatamodels.jwst.datamodels")
cf = pytest.importorskip("gwcs.coordinate_frames")
from gwcs import selector  # noqa: E402
from gwcs.wcs import WCS  # noqa: E402

RA0, DEC0 = 53.16, -27.78          # tangent point of every analytic gwcs [deg]
PA = np.radians(35.0)               # slit / slice axis, east of north
PIXAR_SR, PIXAR_A2 = 2.35e-13, 0.01
WAVE_RTOL, SKY_ATOL = 1e-5, 1e-3    # [relative], [arcsec]
ARCSEC2_SR = (np.pi / 180 / 3600) ** 2
ARRAYS = ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")


# ---------------------------------------------------------------- analytic gwcs


class Region:
    """One piece of the detector with affine sky offsets and a linear wavelength (see module doc)."""

    def __init__(self, mat, off, lam):
        self.mat = np.asarray(mat, float)          # [arcsec / pixel], rows xi, eta
        self.off = np.asarray(off, float)          # [arcsec]
        self.lam = lam                             # (l0, lx, ly) [um, um / pixel]

    def truth(self, x, y):
        """(xi, eta) [arcsec] from (RA0, DEC0) and lambda [um] at pixel (x, y)."""
        xi = self.mat[0, 0] * x + self.mat[0, 1] * y + self.off[0]
        eta = self.mat[1, 0] * x + self.mat[1, 1] * y + self.off[1]
        return xi, eta, self.lam[0] + self.lam[1] * x + self.lam[2] * y

    def transform(self):
        """(x, y) -> (RA, Dec, lambda): affine offsets [deg] -> TAN about (RA0, DEC0); linear lambda."""
        aff = m.AffineTransformation2D(matrix=self.mat / 3600.0, translation=self.off / 3600.0)
        lam = m.Polynomial2D(1, c0_0=self.lam[0], c1_0=self.lam[1], c0_1=self.lam[2])
        sky = m.Pix2Sky_TAN() | m.RotateNative2Celestial(RA0, DEC0, 180.0)
        return m.Mapping((0, 1, 0, 1)) | (aff & lam) | (sky & m.Identity(1))


def along_axis(axis, scale, centre, across):
    """A region whose slit axis runs along detector ``axis`` (0 = x, 1 = y): offset s = (pixel -
    centre) * scale along position angle PA, plus a constant ``across`` [arcsec] perpendicular."""
    e = np.eye(2)[axis] * scale
    direction, perp = np.array([np.sin(PA), np.cos(PA)]), np.array([np.cos(PA), -np.sin(PA)])
    return np.outer(direction, e), -centre * scale * direction + across * perp


def gwcs_of(transform, bbox):
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    sky = cf.CelestialFrame(name="sky", axes_order=(0, 1), reference_frame=coord.ICRS(),
                            unit=(u.deg, u.deg))
    spec = cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.um,), axes_names=("wavelength",))
    w = WCS([(detector, transform), (cf.CompositeFrame([sky, spec], name="world"), None)])
    w.bounding_box = bbox
    return w


def in_bbox(shape, bbox, offset=(0, 0)):
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    (x0, x1), (y0, y1) = bbox
    return (x + offset[0] >= x0) & (x + offset[0] <= x1) & (y + offset[1] >= y0) & (y + offset[1] <= y1)


def fill_arrays(model, seed):
    """Random science arrays (DQ with the top bit set somewhere: uint32 stored with BZERO)."""
    rng = np.random.default_rng(seed)
    shape = model.data.shape
    arrays = {"SCI": rng.normal(size=shape).astype(np.float32),
              "ERR": rng.uniform(0.1, 1, shape).astype(np.float32),
              "DQ": rng.choice(np.array([0, 1, 4, 2**31 + 1], np.uint32), shape),
              "VAR_POISSON": rng.uniform(0, 1, shape).astype(np.float32),
              "VAR_RNOISE": rng.uniform(0, 1, shape).astype(np.float32),
              "VAR_FLAT": rng.uniform(0, 1e-3, shape).astype(np.float32)}
    model.data, model.err, model.dq = arrays["SCI"], arrays["ERR"], arrays["DQ"]
    model.var_poisson, model.var_rnoise, model.var_flat = (arrays[k] for k in ARRAYS[3:])
    return arrays


def cal_meta(model, exp_type, instrument, detector, *, srctype, dispaxis, bunit="MJy/sr"):
    meta = model.meta
    meta.exposure.type = exp_type
    meta.instrument.name, meta.instrument.detector = instrument, detector
    meta.cal_step.assign_wcs = meta.cal_step.photom = "COMPLETE"
    meta.bunit_data = meta.bunit_err = bunit
    meta.photometry.pixelarea_steradians, meta.photometry.pixelarea_arcsecsq = PIXAR_SR, PIXAR_A2
    if srctype is not None:
        meta.target.source_type = srctype
    meta.wcsinfo.dispersion_direction = dispaxis


def expected_coords(regions, label_of, ok, ref, offset=(0, 0)):
    """Analytic WAVELENGTH, XI, ETA (NaN where not ``ok``) about ``ref``; ``label_of`` gives each
    pixel's region (0 = none). ``offset`` = pixel shift to the coordinates the regions are in."""
    shape = ok.shape
    y, x = np.nonzero(ok)
    labels = label_of[y, x]
    xi, eta, lam = (np.full(x.size, np.nan) for _ in range(3))
    for label, region in regions.items():
        sel = labels == label
        xi[sel], eta[sel], lam[sel] = region.truth(x[sel] + offset[0], y[sel] + offset[1])
    if ref != (RA0, DEC0):
        xi, eta = radec_to_xieta(*xieta_to_radec(xi, eta, RA0, DEC0), *ref)
    out = []
    for values in (lam, xi, eta):
        full = np.full(shape, np.nan)
        full[y, x] = values
        out.append(full)
    return tuple(out)


def footprint_centre(regions, label_of, ok, offset=(0, 0)):
    """The documented reference of a product without SRCRA/SRCDEC: centre of the RA and Dec ranges."""
    lam, xi, eta = expected_coords(regions, label_of, ok, (RA0, DEC0), offset)
    ra, dec = xieta_to_radec(xi[ok], eta[ok], RA0, DEC0)
    return 0.5 * (ra.min() + ra.max()), 0.5 * (dec.min() + dec.max())


def check_coords(slit, regions, label_of, ok, ref, offset=(0, 0)):
    """Compare WAVELENGTH/XI/ETA with the analytic values; returns the worst errors."""
    lam, xi, eta = expected_coords(regions, label_of, ok, ref, offset)
    for name in ("WAVELENGTH", "XI", "ETA"):
        assert slit[name].dtype == np.float32 and slit[name].shape == ok.shape[-2:]
        np.testing.assert_array_equal(np.isfinite(slit[name]), ok, err_msg=name)
    assert (slit.header["WSREFRA"], slit.header["WSREFDE"]) == pytest.approx(ref, abs=1e-9)
    rel = np.nanmax(np.abs(slit["WAVELENGTH"] - lam) / lam)
    dsky = np.nanmax(np.hypot(slit["XI"] - xi, slit["ETA"] - eta))
    assert rel < WAVE_RTOL, rel
    assert dsky < SKY_ATOL, dsky
    return rel, dsky


def check_arrays(slit, arrays):
    for name, want in arrays.items():
        assert slit[name].dtype.type == want.dtype.type, name     # any byte order
        np.testing.assert_array_equal(slit[name], want, err_msg=name)


# ---------------------------------------------------------------- IFUImageModel (NRS_IFU, MIR_MRS)

# exp_type: instrument, detector, (ny, nx), slit axis (0 x, 1 y), pixel scale and slice width
# [arcsec], DISPAXIS, top-level bounding box (cuts the slices on one side: NaN there too)
IFU = {
    "NRS_IFU": ("NIRSPEC", "NRS1", (60, 50), 1, 0.1, 0.1, 1, ((2.5, 40.5), (0.5, 58.5))),
    "MIR_MRS": ("MIRI", "MIRIFUSHORT", (50, 60), 0, 0.13, 0.18, 2, ((0.5, 58.5), (1.5, 40.5))),
}
NSLICE = 4
IFU_SHIFT = (1.2, -0.7)     # [arcsec] field centre off the tangent point: the reference is not (RA0, DEC0)


def ifu_layout(exp_type):
    """Slice map (0 off slices) and the analytic region of each slice: slice k is 10 pixels wide
    across the slit axis, with 2-pixel gaps; wavelength runs along the other detector axis."""
    _, _, shape, axis, scale, width, _, bbox = IFU[exp_type]
    slices = np.zeros(shape, np.int32)
    regions = {}
    for k in range(NSLICE):
        lo = 4 + 12 * k
        if axis == 1:       # NIRSpec: slices stacked in y, dispersion along x
            slices[lo:lo + 10, 4:46] = k + 1
            lam = (2.87 + 0.01 * k, 0.0018, 2e-5)
        else:               # MIRI MRS: slices side by side in x, dispersion along y
            slices[3:47, lo:lo + 10] = k + 1
            lam = (4.90 + 0.005 * k, 2e-5, 0.0008)
        mat, off = along_axis(axis, scale, lo + 4.5, (k - (NSLICE - 1) / 2) * width)
        regions[k + 1] = Region(mat, off + IFU_SHIFT, lam)
    return slices, regions, bbox


def ifu_cal(path, exp_type, seed=1):
    """An IFUImageModel `_cal`: one gwcs for the whole image, a RegionsSelector over the slice
    map (as assign_wcs builds the NIRSpec IFU and MIRI MRS WCS), REGIONS written too."""
    instrument, detector, shape, _, _, _, dispaxis, _ = IFU[exp_type]
    slices, regions, bbox = ifu_layout(exp_type)
    det2world = selector.RegionsSelector(
        ("x", "y"), ("ra", "dec", "lam"), label_mapper=selector.LabelMapperArray(slices),
        selector={k: r.transform() for k, r in regions.items()})
    model = dm.IFUImageModel(shape)
    arrays = fill_arrays(model, seed)
    model.regions = slices
    model.meta.wcs = gwcs_of(det2world, bbox)
    cal_meta(model, exp_type, instrument, detector, srctype="EXTENDED", dispaxis=dispaxis)
    model.save(str(path))
    return str(path), arrays


@pytest.mark.parametrize("exp_type", sorted(IFU))
def test_ifu_image_cal(tmp_path, exp_type):
    path, arrays = ifu_cal(tmp_path / f"jw01234001001_01101_00001_{exp_type.lower()}_cal.fits", exp_type)
    slices, regions, bbox = ifu_layout(exp_type)
    ok = (slices > 0) & in_bbox(slices.shape, bbox)
    assert 0 < ok.sum() < (slices > 0).sum()           # the bounding box cuts some slice pixels

    rows = realdata.list_slits(path)
    assert rows == [{"EXTVER": 1, "SRCTYPE": "EXTENDED", "BUNIT": "MJy/sr", "PIXAR_SR": PIXAR_SR,
                     "PIXAR_A2": PIXAR_A2, "DISPAXIS": IFU[exp_type][6]}]

    model = realdata.read_stage2(path)
    assert model.layout == "single" and len(model.slits) == 1
    assert (model.primary["DATAMODL"], model.exp_type) == ("IFUImageModel", exp_type)
    assert model.primary["INSTRUME"] == IFU[exp_type][0] and model.primary["S_WCS"] == "COMPLETE"
    s = model.slits[0]
    check_arrays(s, arrays)
    ref = footprint_centre(regions, slices, ok)        # no SRCRA/SRCDEC on an IFU image
    assert np.hypot((ref[0] - RA0) * np.cos(np.radians(DEC0)), ref[1] - DEC0) * 3600 > 1.0
    check_coords(s, regions, slices, ok, ref)
    # the slices are distinct strips on the sky: the footprint spans NSLICE slice widths across
    width = IFU[exp_type][5]
    across = s["XI"] * np.cos(PA) - s["ETA"] * np.sin(PA)
    assert np.nanmax(across) - np.nanmin(across) == pytest.approx((NSLICE - 1) * width, abs=1e-4)
    for key, want in (("SRCTYPE", "EXTENDED"), ("BUNIT", "MJy/sr"), ("PIXAR_SR", PIXAR_SR),
                      ("PIXAR_A2", PIXAR_A2), ("DISPAXIS", IFU[exp_type][6])):
        assert s.header[key] == want, key

    # read_product: every image extension as stored (REGIONS too), no coordinates evaluated
    prod = realdata.read_product(path)
    assert isinstance(prod, datamodels.Model) and prod.layout == "single"
    assert set(prod.slits[0].arrays) == set(ARRAYS) | {"REGIONS"}
    check_arrays(prod.slits[0], dict(arrays, REGIONS=slices))
    assert prod.slits[0].header["SRCTYPE"] == "EXTENDED"


# ---------------------------------------------------------------- ImageModel (MIRI LRS fixed slit)

LRS_SHAPE = (1024, 1032)                          # MIRIMAGE full frame
LRS_BBOX = ((302.5, 346.5), (6.5, 396.5))         # the slit region on the detector
LRS = Region(*along_axis(0, 0.11, 324.5, 0.0), lam=(14.2, 1e-4, -0.0235))   # lambda down the rows


def test_miri_lrs_fixed_slit_image_cal(tmp_path):
    model = dm.ImageModel(LRS_SHAPE)
    arrays = fill_arrays(model, 2)
    model.meta.wcs = gwcs_of(LRS.transform(), LRS_BBOX)
    cal_meta(model, "MIR_LRS-FIXEDSLIT", "MIRI", "MIRIMAGE", srctype="POINT", dispaxis=2)
    model.meta.subarray.name = "FULL"
    path = str(tmp_path / "jw01234002001_01101_00001_mirimage_cal.fits")
    model.save(path)

    assert realdata.list_slits(path) == [{"EXTVER": 1, "SRCTYPE": "POINT", "BUNIT": "MJy/sr",
                                          "PIXAR_SR": PIXAR_SR, "PIXAR_A2": PIXAR_A2, "DISPAXIS": 2}]
    m2 = realdata.read_stage2(path)
    assert m2.layout == "single" and len(m2.slits) == 1
    assert (m2.primary["DATAMODL"], m2.exp_type) == ("ImageModel", "MIR_LRS-FIXEDSLIT")
    s = m2.slits[0]
    check_arrays(s, arrays)
    ok = in_bbox(LRS_SHAPE, LRS_BBOX)                 # finite exactly on the slit region
    assert ok.sum() == 44 * 390
    label = np.ones(LRS_SHAPE, int)
    ref = footprint_centre({1: LRS}, label, ok)
    check_coords(s, {1: LRS}, label, ok, ref)
    # 5-14 um down the slit region; 0.11 arcsec pixels along the slit (x)
    assert np.nanmin(s["WAVELENGTH"]) == pytest.approx(14.2 - 0.0235 * 396 + 1e-4 * 303, rel=1e-6)
    assert np.nanmedian(np.hypot(np.diff(s["XI"], axis=1), np.diff(s["ETA"], axis=1))) == \
        pytest.approx(0.11, rel=1e-5)
    assert (s.header["SRCTYPE"], s.header["BUNIT"], s.header["PIXAR_SR"]) == ("POINT", "MJy/sr", PIXAR_SR)

    # arrays only (no gwcs), and read_product
    bare = realdata.read_stage2(path, coords=False).slits[0]
    assert set(bare.arrays) == set(ARRAYS)
    check_arrays(bare, arrays)
    prod = realdata.read_product(path)
    assert prod.primary["DATAMODL"] == "ImageModel" and set(prod.slits[0].arrays) == set(ARRAYS)
    check_arrays(prod.slits[0], arrays)


# ---------------------------------------------------------------- SlitModel (NIRSpec FS cutout)

# full-detector analytic region: slit axis along y, dispersion along x
FS = Region(*along_axis(1, 0.1, 1212.0, 0.03), lam=(2.87 - 0.0018 * 1000, 0.0018, 2e-5))
FS_START = (1001, 1201)          # SLTSTRT1/2 (1-based) of the cutout on the detector
FS_SHAPE = (24, 90)
FS_BBOX = ((-0.5, 89.5), (1.5, 21.5))   # in cutout pixels: the slit is shorter than the cutout


@pytest.mark.parametrize("srcpos", [True, False], ids=["source-position", "no-source-position"])
def test_slit_model_cal(tmp_path, srcpos):
    """A single-slit SlitModel: its gwcs takes cutout pixels (extract_2d prepends the SLTSTRT shift
    to the detector transform), so pixel (x, y) of the arrays is the detector pixel
    (x + SLTSTRT1 - 1, y + SLTSTRT2 - 1)."""
    shift = (FS_START[0] - 1, FS_START[1] - 1)
    model = dm.SlitModel(FS_SHAPE)
    arrays = fill_arrays(model, 3)
    model.wavelength = np.full(FS_SHAPE, 9.0, np.float32)   # the file's own: replaced by the gwcs
    model.meta.wcs = gwcs_of((m.Shift(shift[0]) & m.Shift(shift[1])) | FS.transform(), FS_BBOX)
    cal_meta(model, "NRS_FIXEDSLIT", "NIRSPEC", "NRS1", srctype=None, dispaxis=1, bunit="MJy")
    model.name, model.source_id, model.source_name, model.slit_id = "S200A1", 7, "src7", 0
    model.xstart, model.ystart = FS_START
    model.xsize, model.ysize = FS_SHAPE[1], FS_SHAPE[0]
    model.source_xpos, model.source_ypos = 0.02, -0.1
    model.source_type = "POINT"
    if srcpos:
        model.source_ra, model.source_dec = RA0, DEC0
    path = str(tmp_path / "jw01234003001_03102_00001_nrs1_cal.fits")
    model.save(path)

    row, = realdata.list_slits(path)
    want = {"EXTVER": 1, "SLTNAME": "S200A1", "SOURCEID": 7, "SRCNAME": "src7", "SRCTYPE": "POINT",
            "SLTSTRT1": FS_START[0], "SLTSTRT2": FS_START[1], "SLTSIZE1": FS_SHAPE[1],
            "SLTSIZE2": FS_SHAPE[0], "SRCXPOS": 0.02, "SRCYPOS": -0.1, "BUNIT": "MJy"}
    assert {k: row[k] for k in want} == want
    assert ("SRCRA" in row) == srcpos

    m2 = realdata.read_stage2(path)
    assert m2.layout == "single" and m2.primary["DATAMODL"] == "SlitModel" and len(m2.slits) == 1
    s = m2.slits[0]
    assert s.name == "S200A1"
    check_arrays(s, arrays)
    ok = in_bbox(FS_SHAPE, FS_BBOX)
    label = np.ones(FS_SHAPE, int)
    ref = (RA0, DEC0) if srcpos else footprint_centre({1: FS}, label, ok, shift)
    # with SRCRA/SRCDEC = the tangent point, XI/ETA are the affine offsets themselves
    check_coords(s, {1: FS}, label, ok, ref, offset=shift)
    if srcpos:
        assert s["XI"][11, 0] == pytest.approx(
            (shift[1] + 11 - 1212.0) * 0.1 * np.sin(PA) + 0.03 * np.cos(PA), abs=1e-5)
    else:    # the slit centre: symmetric along the slit
        assert abs(np.nanmax(s["XI"]) + np.nanmin(s["XI"])) < 1e-3

    prod = realdata.read_product(path)
    assert prod.slits[0].header["SLTNAME"] == "S200A1"
    np.testing.assert_array_equal(prod.slits[0]["WAVELENGTH"], 9.0)   # as stored: no gwcs here
    check_arrays(prod.slits[0], arrays)


# ---------------------------------------------------------------- _s3d (IFUCubeModel)

CUBE_SHAPE = (7, 5, 6)                   # (wavelength, y, x)
CDELT = 0.13                             # [arcsec]
CRPIX = (3.0, 2.5, 1.0)                  # 1-based, FITS order (x, y, lambda)
LAM0, DLAM = 4.9, 0.0008


def cube_s3d(path, *, wavetable=None):
    """An IFUCubeModel as cube_build writes it: SCI/ERR/DQ/WMAP cubes, the FITS WCS of the cube in
    the SCI header (meta.wcsinfo) and a 3-D gwcs (x, y, plane) -> (RA, Dec, lambda) in ASDF."""
    cube = dm.IFUCubeModel(CUBE_SHAPE)
    rng = np.random.default_rng(4)
    arrays = {"SCI": rng.normal(size=CUBE_SHAPE).astype(np.float32),
              "ERR": rng.uniform(0.1, 1, CUBE_SHAPE).astype(np.float32),
              "DQ": rng.choice(np.array([0, 512, 2**31], np.uint32), CUBE_SHAPE),
              "WMAP": rng.uniform(0, 5, CUBE_SHAPE).astype(np.float32)}
    cube.data, cube.err, cube.dq, cube.weightmap = (arrays[k] for k in ("SCI", "ERR", "DQ", "WMAP"))
    meta = cube.meta
    meta.exposure.type, meta.instrument.name = "MIR_MRS", "MIRI"
    meta.cal_step.assign_wcs = meta.cal_step.cube_build = "COMPLETE"
    meta.bunit_data = meta.bunit_err = "MJy/sr"
    meta.target.source_type = "EXTENDED"
    wi = meta.wcsinfo
    wi.ctype1, wi.ctype2, wi.cunit1, wi.cunit2 = "RA---TAN", "DEC--TAN", "deg", "deg"
    wi.crval1, wi.crval2 = RA0, DEC0
    wi.crpix1, wi.crpix2, wi.crpix3 = CRPIX
    wi.cdelt1, wi.cdelt2 = -CDELT / 3600, CDELT / 3600       # RA increases to the left
    wi.pc1_1, wi.pc1_2, wi.pc2_1, wi.pc2_2, wi.pc3_3 = 1.0, 0.0, 0.0, 1.0, 1.0
    meta.photometry.pixelarea_arcsecsq = CDELT ** 2
    meta.photometry.pixelarea_steradians = CDELT ** 2 * ARCSEC2_SR
    wi.cunit3 = "um"
    if wavetable is None:       # linear: FITS WCS keywords, and the table all the same
        wi.ctype3, wi.crval3, wi.cdelt3 = "WAVE", LAM0, DLAM
        wavetable = (LAM0 + DLAM * (np.arange(CUBE_SHAPE[0]) + 1 - CRPIX[2])).astype(np.float32)
    else:                       # non-linear: the wavelengths are only in the table
        wi.ctype3, wi.ps3_0, wi.ps3_1, wi.crval3, wi.crpix3 = "WAVE-TAB", "WCS-TABLE", "wavelength", 1.0, 1.0
        cube.wavedim = f"(1,{wavetable.size})"
    cube.wavetable = np.array([(wavetable[:, None],)], dtype=[("wavelength", "<f4", (wavetable.size, 1))])
    # the gwcs: detector (x, y, plane) -> pixel offsets -> TAN about (RA0, DEC0); linear lambda
    sky = ((m.Shift(-(CRPIX[0] - 1)) | m.Scale(-CDELT / 3600)) &
           (m.Shift(-(CRPIX[1] - 1)) | m.Scale(CDELT / 3600))) | m.Pix2Sky_TAN() | \
        m.RotateNative2Celestial(RA0, DEC0, 180.0)
    lam = m.Shift(-(CRPIX[2] - 1)) | m.Scale(DLAM) | m.Shift(LAM0)
    detector = cf.CoordinateFrame(name="detector", naxes=3, axes_order=(0, 1, 2),
                                  axes_type=("SPATIAL", "SPATIAL", "SPECTRAL"), unit=(u.pix,) * 3,
                                  axes_names=("x", "y", "z"))
    world = cf.CompositeFrame([
        cf.CelestialFrame(name="sky", axes_order=(0, 1), reference_frame=coord.ICRS(), unit=(u.deg, u.deg)),
        cf.SpectralFrame(name="spectral", axes_order=(2,), unit=(u.um,), axes_names=("wavelength",))],
        name="world")
    cube.meta.wcs = WCS([(detector, sky & lam), (world, None)])
    cube.save(str(path))
    return str(path), arrays


def test_s3d_cube(tmp_path):
    path, arrays = cube_s3d(tmp_path / "jw01234-o001_t001_miri_ch1-short_s3d.fits")
    cube = realdata.read_product(path)
    assert isinstance(cube, Cube)             # a data type of its own, not a slit with a third axis
    assert cube.primary["DATAMODL"] == "IFUCubeModel" and cube.primary["S_IFUCUB"] == "COMPLETE"
    check_arrays({"SCI": cube.sci, "ERR": cube.err, "DQ": cube.dq, "WMAP": cube.wmap}, arrays)
    assert (cube.header["BUNIT"], cube.header["SRCTYPE"]) == ("MJy/sr", "EXTENDED")
    assert cube.pixar_sr == pytest.approx(CDELT ** 2 * ARCSEC2_SR, rel=1e-12)
    # the wavelength of every plane (the WCS-TABLE BinTable cube_build always writes agrees)
    np.testing.assert_allclose(cube.wavelength, LAM0 + DLAM * np.arange(CUBE_SHAPE[0]), rtol=WAVE_RTOL)
    # the sky position of every spaxel from the cube's WCS, against the analytic tangent plane
    nz, ny, nx = CUBE_SHAPE
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    xi, eta = cube.wcs.pixel_to_xieta(x, y)
    xi, eta = radec_to_xieta(*xieta_to_radec(xi, eta, cube.wcs.crval1, cube.wcs.crval2), RA0, DEC0)
    xi_a, eta_a = -(x - (CRPIX[0] - 1)) * CDELT, (y - (CRPIX[1] - 1)) * CDELT
    assert np.max(np.hypot(xi - xi_a, eta - eta_a)) < SKY_ATOL
    # a cube is not a Stage 2 product: the Stage 2 readers refuse it with the file named
    for reader in (realdata.read_stage2, realdata.list_slits):
        with pytest.raises(InputError) as err:
            reader(path)
        assert str(err.value) == f"{path}: {err.value.problem}" and "\n" not in str(err.value)
        assert "IFUCubeModel is not a Stage 2 per-exposure product" in err.value.problem


def test_s3d_cube_wavetable_and_no_datamodl(tmp_path):
    """A non-linear cube (WAVE-TAB): the wavelengths travel in the WCS-TABLE BinTable. Without
    DATAMODL a cube is still recognised as a cube by the Stage 2 reader."""
    lam = (LAM0 + DLAM * np.arange(CUBE_SHAPE[0]) ** 1.5).astype(np.float32)
    path, arrays = cube_s3d(tmp_path / "x_s3d.fits", wavetable=lam)
    cube = realdata.read_product(path)
    check_arrays({"SCI": cube.sci, "ERR": cube.err, "DQ": cube.dq, "WMAP": cube.wmap}, arrays)
    assert fits.getval(path, "CTYPE3", "SCI") == "WAVE-TAB"
    np.testing.assert_array_equal(cube.wavelength, lam)
    with fits.open(path, mode="update") as h:
        del h[0].header["DATAMODL"]
    with pytest.raises(InputError, match=r"x_s3d.fits: an IFU cube \(_s3d\) product, not a Stage 2"):
        realdata.read_stage2(path)


# ---------------------------------------------------------------- _rate (ImageModel, no gwcs)


def test_rate_image(tmp_path):
    model = dm.ImageModel((32, 40))
    arrays = fill_arrays(model, 5)
    model.meta.exposure.type, model.meta.instrument.name = "MIR_LRS-FIXEDSLIT", "MIRI"
    model.meta.bunit_data = model.meta.bunit_err = "DN/s"
    path = str(tmp_path / "jw01234002001_01101_00001_mirimage_rate.fits")
    model.save(path)
    with fits.open(path) as h:
        assert "S_WCS" not in h[0].header
    prod = realdata.read_product(path)
    assert prod.primary["DATAMODL"] == "ImageModel" and prod.layout == "single"
    assert set(prod.slits[0].arrays) == set(ARRAYS) and prod.slits[0].header["BUNIT"] == "DN/s"
    check_arrays(prod.slits[0], arrays)
    assert datamodels.read(path).slits[0].header["BUNIT"] == "DN/s"
    bare = realdata.read_stage2(path, coords=False)
    check_arrays(bare.slits[0], arrays)
    assert "WAVELENGTH" not in bare.slits[0]
    with pytest.raises(InputError) as err:
        realdata.read_stage2(path)
    assert str(err.value) == f"{path}: assign_wcs has not run (S_WCS not COMPLETE): not a Stage 2 " \
                             "_cal product (a _rate?)"


# ---------------------------------------------------------------- bad layouts


def _one_line(err, path, problem):
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and problem in msg, msg


@pytest.mark.filterwarnings("ignore:All-NaN slice")
def test_bad_layouts(tmp_path):
    """Image-like `_cal` products whose WCS is missing or unusable: one line naming the file."""
    # assign_wcs COMPLETE but the ASDF tree holds no gwcs
    model = dm.ImageModel((20, 30))
    fill_arrays(model, 6)
    cal_meta(model, "MIR_LRS-FIXEDSLIT", "MIRI", "MIRIMAGE", srctype="POINT", dispaxis=2)
    p1 = str(tmp_path / "nowcs_cal.fits")
    model.save(p1)
    with pytest.raises(InputError) as err:
        realdata.read_stage2(p1)
    _one_line(err, p1, "no gwcs for this slit in the ASDF extension")
    # an imaging gwcs (RA, Dec only): no wavelength
    imaging = m.Mapping((0, 1)) | (m.Scale(0.11 / 3600) & m.Scale(0.11 / 3600)) | m.Pix2Sky_TAN() | \
        m.RotateNative2Celestial(RA0, DEC0, 180.0)
    model.meta.wcs = WCS([(cf.Frame2D(name="detector"), imaging),
                          (cf.CelestialFrame(name="world", reference_frame=coord.ICRS()), None)])
    p2 = str(tmp_path / "imaging_cal.fits")
    model.save(p2)
    with pytest.raises(InputError) as err:
        realdata.read_stage2(p2)
    _one_line(err, p2, "gwcs evaluation failed")
    # a bounding box off the image: no pixel has a sky position
    model.meta.wcs = gwcs_of(LRS.transform(), ((100.5, 110.5), (100.5, 110.5)))
    p3 = str(tmp_path / "offimage_cal.fits")
    model.save(p3)
    with pytest.raises(InputError) as err:
        realdata.read_stage2(p3)
    _one_line(err, p3, "gwcs gives no finite sky position")
    # IFU image without its ASDF extension
    p4, _ = ifu_cal(tmp_path / "ifu_cal.fits", "NRS_IFU")
    with fits.open(p4) as h:
        fits.HDUList([x for x in h if x.name != "ASDF"]).writeto(tmp_path / "noasdf_cal.fits")
    p5 = str(tmp_path / "noasdf_cal.fits")
    with pytest.raises(InputError) as err:
        realdata.read_stage2(p5)
    _one_line(err, p5, "no ASDF extension")
