"""The NIRSpec optical model from the official reference files, evaluated with numpy.

The frame chain is the official one (jwst ``assign_wcs.nirspec``; facts from
``shared/docs/official-refs.md``), written here for arrays:

    slit (x_slit, y_slit in slit units, lam [m])
      -> msa: Q<n>.data row (XC, YC, SIZEX, SIZEY) then the quadrant model      [m]
         (a fixed slit: its Q5 row; a MOS slitlet: its reference shutter's row in Q1-Q4, the
         slit frame extending over the slitlet's other shutters)
      -> collimator.inverse -> direction cosines -> GWA rotation (theta_x, theta_y, theta_z,
         tilt_y about x, y, z, y; degrees; each step re-derives z = sqrt(1 - x^2 - y^2))
      -> 3-D grating equation: alpha_out = -G*m*lam - alpha_in, beta_out = -beta_in
      -> inverse rotation -> tangents -> camera.inverse -> fpa.inverse -> SCA pixel
      -> DMS pixel (NRS2 is flipped: x = 2047 - x_sca, y = 2047 - y_sca); full frame, 0-based
    slit -> msa -> fore(x, y, lam[m]) -> OTEIP [deg] -> ote -> V2/V3 [arcsec]
      -> velocity aberration (V2/V3 scaled by VA_SCALE about V2_REF/V3_REF)
      -> sky: rotations by V2_REF, -V3_REF, ROLL_REF, DEC_REF, -RA_REF about z, y, x, y, z.

The backward direction assumes x_slit = 0 (the source at the slit centre across the slit, as
the official WCS does; wavecorr corrects point sources later): the camera side gives the
diffracted direction (alpha_out, beta_out); y_slit solves beta_in(0, y_slit) = -beta_out (a 1-D
root: a table start then Newton steps), and lam follows from the grating equation.
The GWA tilt sensor readings GWA_XTIL / GWA_YTIL change theta_y / theta_x by half the
difference of the tilt model at the reading and at its zero reading [arcsec -> deg].

GRATING PRISM (FILTER CLEAR): the grating equation is replaced by refraction through the
double-pass prism (:class:`Prism`: Snell's law in 3-D at the front face, reflection at the back
face, the index from the reference's Sellmeier coefficients at the exposure's GWA_TILT
temperature); same GWA rotations and tilt correction, same x_slit = 0 backward solution for
y_slit (the prism keeps beta_out = -beta_in); lam of a pixel from its index of refraction.
"""


import numpy as np

from ...errors import InputError
from ..transforms import UnsupportedTransform, build, reference_tree

__all__ = ["Optics", "Prism", "OPTICAL_REFTYPES", "OPTICAL_REF_EXP_TYPES", "POINTING_KEYS", "load_refs",
           "require_pointing", "v2v3_to_sky", "v2v3_to_xieta"]

# P_EXP_TY of the optical-model references: every NIRSpec exposure type reads the same set
OPTICAL_REF_EXP_TYPES = "NRS_FIXEDSLIT|NRS_BRIGHTOBJ|NRS_MSASPEC|NRS_IFU|NRS_LAMP|NRS_AUTOWAVE|NRS_AUTOFLAT|"

OPTICAL_REFTYPES = ("camera", "collimator", "disperser", "fore", "fpa", "msa", "ote", "wavelengthrange")
POINTING_KEYS = ("RA_REF", "DEC_REF", "ROLL_REF", "V2_REF", "V3_REF")


def require_pointing(header, where):
    """The pointing keywords every slit model needs before the optics are loaded (one line)."""
    for key in POINTING_KEYS:
        if header.get(key) is None:
            raise InputError(where, f"missing pointing keyword {key}")


# the stdatamodels class each reftype is (meta.model_type)
_MODEL_TYPES = {"camera": "CameraModel", "collimator": "CollimatorModel", "disperser": "DisperserModel",
                "fore": "FOREModel", "fpa": "FPAModel", "msa": "MSAModel", "ote": "OTEModel",
                "wavelengthrange": "WavelengthrangeModel",
                # the NIRSpec IFU files (instruments/nirspec/ifu.py)
                "ifuslicer": "IFUSlicerModel", "ifupost": "IFUPostModel", "ifufore": "IFUFOREModel",
                "chromcorr": "ChromCorrModel"}
# Fixed slits are rows 0-4 of MSA quadrant 5 (official numbering)
FS_ROWS = {"S200A1": 0, "S200A2": 1, "S400A1": 2, "S1600A1": 3, "S200B1": 4}
SHUTTER_ROWS = 365      # MSA shutters per column of a quadrant (MOS shutter tables Q1-Q4)
def _tree(reftype, path):
    """The file's tree (cached by path and mtime), checked to be a ``reftype`` reference."""
    return reference_tree(reftype, path, _MODEL_TYPES[reftype])


def _model(reftype, path, tree, key):
    node = tree.get(key)
    if node is None:
        raise InputError(path, f"{reftype} reference has no {key!r}")
    try:
        return build(node)
    except UnsupportedTransform as exc:
        raise InputError(path, f"{reftype} {key}: {exc}") from None


def load_refs(refs):
    """{reftype: tree} of the optical-model files in ``refs`` ({reftype: path})."""
    missing = [rt for rt in OPTICAL_REFTYPES if str(refs.get(rt, "N/A")).upper() in ("", "N/A", "NONE")]
    if missing:
        raise InputError("assign_wcs", f"no {', '.join(missing)} reference file(s): cannot assign a WCS")
    return {rt: _tree(rt, refs[rt]) for rt in OPTICAL_REFTYPES}


def _num(header, key, default=None, where="header"):
    v = header.get(key, default)
    if v is None:
        raise InputError(where, f"missing keyword {key}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InputError(where, f"keyword {key} is not a number ({v!r})") from None


def _rotate(x, y, z, angles_deg, axes, outputs="xyz"):
    """The official GWA rotation sequence (each step re-derives z from x and y). In place on
    float64 copies with two scratch arrays: the same operations in the same order as
    ``y = y * c + z * s``, ``z = sqrt(1 - x * x - y * y)``, ... (the same values), without a
    new array per operation. ``outputs``: the components the caller uses; the work that only
    feeds the others is skipped (those come back as None; the ones asked for are unchanged)."""
    x, y, z = (np.array(v, dtype=np.float64) for v in np.broadcast_arrays(x, y, z))
    if x.ndim == 0:
        return _rotate_scalar(x[()], y[()], z[()], angles_deg, axes)
    changes = {"x": "yz", "y": "xz", "z": "xyz"}        # step axis -> the components it changes
    steps = list(zip(angles_deg, axes))
    last = max((k for k, (_, ax) in enumerate(steps) if "z" in outputs or set(changes[ax]) & set(outputs)),
               default=-1)
    steps = steps[:last + 1]
    tmp, tmp2 = np.empty_like(x), np.empty_like(x)
    for k, (ang, ax) in enumerate(steps):
        t = np.radians(ang)
        c, s = np.cos(t), np.sin(t)
        if ax == "x":                     # y = y c + z s
            np.multiply(z, s, out=tmp)
            y *= c
            y += tmp
        elif ax == "y":                   # x = x c - z s
            np.multiply(z, s, out=tmp)
            x *= c
            x -= tmp
        else:                             # x, y = x c + y s, -x s + y c
            np.multiply(x, s, out=tmp)
            np.multiply(y, s, out=tmp2)
            x *= c
            x += tmp2
            y *= c
            y -= tmp
        if (k + 1 < len(steps) and steps[k + 1][1] == "z") or (k + 1 == len(steps) and "z" not in outputs):
            continue                      # this z is not read: a z rotation, or the end
        np.multiply(x, x, out=z)          # z = sqrt(1 - x x - y y)
        np.subtract(1.0, z, out=z)
        np.multiply(y, y, out=tmp)
        z -= tmp
        np.sqrt(z, out=z)
    return tuple(v if n in outputs else None for n, v in zip("xyz", (x, y, z)))


def _rotate_scalar(x, y, z, angles_deg, axes):
    for ang, ax in zip(angles_deg, axes):
        t = np.radians(ang)
        c, s = np.cos(t), np.sin(t)
        if ax == "x":
            y = y * c + z * s
        elif ax == "y":
            x = x * c - z * s
        else:
            x, y = x * c + y * s, -x * s + y * c
        z = np.sqrt(1.0 - x * x - y * y)
    return x, y, z


def _dircos(tx, ty):
    """Direction cosines of tangents (tx, ty): tx / n, ty / n, 1 / n with n = sqrt(1 + tx^2 + ty^2)."""
    tx, ty = np.broadcast_arrays(np.asarray(tx, np.float64), np.asarray(ty, np.float64))
    if tx.ndim == 0:
        n = np.sqrt(1.0 + tx * tx + ty * ty)
        return tx / n, ty / n, 1.0 / n
    n = np.multiply(tx, tx)
    np.add(1.0, n, out=n)
    n += ty * ty
    np.sqrt(n, out=n)
    return tx / n, ty / n, np.divide(1.0, n, out=n)


def rotation_matrix(angles_deg, axes):
    """Product of the elementary rotations (first angle applied first) as one 3x3 matrix."""
    out = np.eye(3)
    for ang, ax in zip(angles_deg, axes):
        i = "xyz".index(ax)
        a1, a2 = (i + 1) % 3, (i + 2) % 3
        c, s = np.cos(np.radians(ang)), np.sin(np.radians(ang))
        r = np.zeros((3, 3))
        r[i, i], r[a1, a1], r[a1, a2], r[a2, a1], r[a2, a2] = 1.0, c, s, -s, c
        out = r @ out
    return out


def v2v3_to_sky(v2, v3, ra_ref, dec_ref, roll_ref, v2_ref, v3_ref, va_scale=1.0):
    """(RA, Dec) [deg] of V2/V3 [arcsec]: the velocity-aberration scale about (V2_REF, V3_REF),
    then the attitude rotation (about z, y, x, y, z by V2_REF, -V3_REF, ROLL_REF, DEC_REF,
    -RA_REF) of the unit vector."""
    v2, v3 = np.asarray(v2, float), np.asarray(v3, float)
    if va_scale != 1.0:
        v2, v3 = va_scale * v2 + (1.0 - va_scale) * v2_ref, va_scale * v3 + (1.0 - va_scale) * v3_ref
    lon, lat = np.radians(v2 / 3600.0), np.radians(v3 / 3600.0)
    clat = np.cos(lat)
    vec = np.stack([clat * np.cos(lon), clat * np.sin(lon), np.sin(lat)])
    m = rotation_matrix([v2_ref / 3600.0, -v3_ref / 3600.0, roll_ref, dec_ref, -ra_ref], "zyxyz")
    x, y, z = np.tensordot(m, vec, axes=1)
    return np.mod(np.degrees(np.arctan2(y, x)), 360.0), np.degrees(np.arctan2(z, np.hypot(x, y)))


def v2v3_to_xieta(v2, v3, ra0, dec0, ra_ref, dec_ref, roll_ref, v2_ref, v3_ref, va_scale=1.0):
    """Tangent-plane offsets (xi east, eta north) [arcsec] about (``ra0``, ``dec0``) [deg] of V2/V3
    [arcsec]: ``skycoords.radec_to_xieta(*v2v3_to_sky(...), ra0, dec0)`` without the detour
    through RA/Dec (the attitude rotation and the projection's basis as one 3x3 matrix: a third
    of the trigonometry; equal to ~1e-11 arcsec)."""
    v2, v3 = np.asarray(v2, float), np.asarray(v3, float)
    if va_scale != 1.0:
        v2, v3 = va_scale * v2 + (1.0 - va_scale) * v2_ref, va_scale * v3 + (1.0 - va_scale) * v3_ref
    lon, lat = np.radians(v2 / 3600.0), np.radians(v3 / 3600.0)
    a, d = np.radians(ra0), np.radians(dec0)
    basis = np.array([[-np.sin(a), np.cos(a), 0.0],                                   # east
                      [-np.sin(d) * np.cos(a), -np.sin(d) * np.sin(a), np.cos(d)],    # north
                      [np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)]])     # (ra0, dec0)
    m = basis @ rotation_matrix([v2_ref / 3600.0, -v3_ref / 3600.0, roll_ref, dec_ref, -ra_ref], "zyxyz")
    clat = np.cos(lat)
    vec = (clat * np.cos(lon), clat * np.sin(lon), np.sin(lat))
    east, north, toward = (m[i, 0] * vec[0] + m[i, 1] * vec[1] + m[i, 2] * vec[2] for i in range(3))
    scale = np.degrees(1.0) * 3600.0
    return scale * east / toward, scale * north / toward


# the exposure keyword with the GWA temperature [K] the prism's index is evaluated at (official)
PRISM_TEMPERATURE_KEY = "GWA_TILT"
_PRISM_FIELDS = ("angle", "kcoef", "lcoef", "tcoef", "tref", "pref")


class Prism:
    """The NIRSpec double-pass prism at the GWA, as the official model describes it.

    Index of refraction n(lam) from the disperser reference's Sellmeier coefficients (``kcoef``
    B1..B3, ``lcoef`` C1..C3 [um^2]); when the exposure's GWA temperature is at least 20 K above
    ``tref`` the official code switches to the Zemax thermal form (``tcoef`` = D0, D1, D2, E0,
    E1, lambda_tk [um]; air index at ``pref`` atm for both the reference and the exposure),
    otherwise (colder, or less than 20 K warmer) it uses the plain Sellmeier index; reproduced.
    The light (GWA-frame direction cosines a, b) is refracted at the front face (a/n, b/n),
    turned into the frame of the back face (rotation by ``angle`` about y), reflected there
    (x, y -> -x, -y), turned back (-angle) and refracted out (times n): b_out = -b, and
    a_out = -a (1 - 2 s^2) + 2 s c sqrt(n^2 - a^2 - b^2) with s, c = sin, cos(angle), so that
    n^2 = ((a_out + a (1 - 2 s^2)) / (2 s c))^2 + a^2 + b^2 gives n of a pixel, and lam(n):

    * ``exact=False`` (the default, the official convention): linear interpolation in n of the
      table n(LAM_TABLE), 0.3-8.0 um every 5 nm, NaN outside it. Its interpolation error is up to
      ~1.5e-5 um near 0.6 um (1e-3 to 5e-3 pixel for prism dispersions of 0.011-0.003
      um/pixel), so pixel -> slit -> pixel is not exact there; it is what the official gwcs gives.
    * ``exact=True``: the true inverse (the table as a start, then Newton steps on n(lam)).
    """

    LAM_TABLE = np.arange(0.3, 8.005, 0.005) * 1e-6       # m: where lam is sought (official range)

    def __init__(self, angle, kcoef, lcoef, tcoef, tref, pref, temperature, exact=False):
        self.exact = bool(exact)
        self.angle = float(angle)
        self.kcoef, self.lcoef, self.tcoef = (np.asarray(v, float) for v in (kcoef, lcoef, tcoef))
        self.tref, self.pref, self.temperature = float(tref), float(pref), float(temperature)
        self.thermal = self.temperature - self.tref >= 20.0     # the official switch
        n = self.index(self.LAM_TABLE)
        if not (np.all(np.isfinite(n)) and np.all(np.diff(n) < 0)):
            raise ValueError("the index of refraction is not finite and decreasing over 0.3-8 um")
        self._n_table = n[::-1]                 # increasing n
        self._lam_table = self.LAM_TABLE[::-1]

    @classmethod
    def from_reference(cls, tree, path, header, where, exact=False):
        """The prism of a DisperserModel tree and the exposure's GWA temperature keyword."""
        missing = [k for k in _PRISM_FIELDS if tree.get(k) is None]
        if missing:
            raise InputError(path, f"PRISM disperser reference lacks {', '.join(missing)}")
        try:
            vals = {k: (np.asarray(tree[k], float) if k.endswith("coef") else float(tree[k])) for k in _PRISM_FIELDS}
        except (TypeError, ValueError):
            raise InputError(path, "PRISM disperser reference has a non-numeric "
                                   "angle/kcoef/lcoef/tcoef/tref/pref") from None
        for k, size in (("kcoef", 3), ("lcoef", 3), ("tcoef", 6)):
            if vals[k].shape != (size,):
                raise InputError(path, f"PRISM disperser reference {k} has {vals[k].size} values, not {size}")
        if not 0.0 < abs(vals["angle"]) < 90.0:
            raise InputError(path, f"PRISM disperser reference angle {vals['angle']} deg is not a prism angle")
        temperature = _num(header, PRISM_TEMPERATURE_KEY, where=where)
        try:
            return cls(temperature=temperature, exact=exact, **vals)
        except ValueError as exc:
            raise InputError(path, f"PRISM disperser reference: {exc}") from None

    # ---------------------------------------------------------------- index of refraction
    def _sellmeier(self, lam_um):
        l2 = lam_um * lam_um
        return np.sqrt(1.0 + sum(b * l2 / (l2 - c) for b, c in zip(self.kcoef, self.lcoef)))

    def index(self, lam):
        """n at wavelength ``lam`` [m] and the exposure's temperature (official switch)."""
        lam_um = np.asarray(lam, float) * 1e6
        if not self.thermal:
            return self._sellmeier(lam_um)
        t, t0 = self.temperature - 273.15, self.tref - 273.15      # Celsius
        dt = t - t0
        l2 = lam_um * lam_um
        # standard air at 15 C, 1 atm, then scaled to the temperature and pressure
        n_std = 1.0 + (6432.8 + 2949810.0 * l2 / (146.0 * l2 - 1.0) + 5540.0 * l2 / (41.0 * l2 - 1.0)) * 1e-8
        n_air = 1.0 + (n_std - 1.0) * self.pref / (1.0 + (t - 15.0) * 3.4785e-3)
        n_air0 = 1.0 + (n_std - 1.0) * self.pref / (1.0 + (t0 - 15.0) * 3.4785e-3)
        lam_rel = lam_um * n_air / n_air0
        n_rel = self._sellmeier(lam_rel)
        d0, d1, d2, e0, e1, lam_tk = self.tcoef
        dn = 0.5 * (n_rel * n_rel - 1.0) / n_rel * (
            d0 * dt + d1 * dt ** 2 + d2 * dt ** 3 + (e0 * dt + e1 * dt ** 2) / (lam_rel * lam_rel - lam_tk * lam_tk))
        return (n_rel * n_air0 + dn) / n_air

    def wavelength_of_index(self, n, exact=None, iterations=3):
        """lam [m] of index ``n``: the official table interpolation, or with ``exact`` (default:
        the prism's setting) the root of index(lam) = n; NaN outside the table's range."""
        n = np.asarray(n, float)
        lam = np.interp(n, self._n_table, self._lam_table, left=np.nan, right=np.nan)
        if not (self.exact if exact is None else exact):
            return lam
        h = 1e-10                                             # m, for the derivative
        for _ in range(iterations):
            ok = np.isfinite(lam)
            lam0 = np.where(ok, lam, 1e-6)
            slope = (self.index(lam0 + h) - self.index(lam0 - h)) / (2 * h)
            lam = np.where(ok, lam0 - (self.index(lam0) - n) / slope, np.nan)
        return lam

    # ---------------------------------------------------------------- the light path
    def deflect(self, lam, a, b):
        """GWA-frame (a_out, b_out) of light arriving with direction cosines (a, b) at ``lam`` [m]."""
        n = self.index(lam)
        s, c = np.sin(np.radians(self.angle)), np.cos(np.radians(self.angle))
        with np.errstate(invalid="ignore"):
            x, y = a / n, b / n                                        # refracted in
            z = np.sqrt(1.0 - x * x - y * y)
            x1 = x * c - z * s                                         # back-face frame
            z1 = np.sqrt(1.0 - x1 * x1 - y * y)
            x2 = -x1 * c + z1 * s                                      # reflected, turned back
        return n * x2, -b                                              # refracted out

    def wavelength(self, a_in, b_in, a_out, exact=None):
        """lam [m] of light in (a_in, b_in) that leaves the prism with a_out (x_slit known)."""
        s, c = np.sin(np.radians(self.angle)), np.cos(np.radians(self.angle))
        n = np.sqrt(((a_out + a_in * (1.0 - 2.0 * s * s)) / (2.0 * s * c)) ** 2 + a_in * a_in + b_in * b_in)
        return self.wavelength_of_index(n, exact)


class Optics:
    """The optical model of one exposure: the reference files and the ``_rate`` keywords.

    ``refs``: {reftype: path} with every type of :data:`OPTICAL_REFTYPES`; ``header``: the
    PRIMARY keywords (DETECTOR, FILTER, GRATING, GWA_XTIL, GWA_YTIL, RA_REF, DEC_REF, ROLL_REF,
    V2_REF, V3_REF, VA_SCALE, ...; GWA_TILT for the PRISM). ``where`` names the exposure in
    errors. ``prism_exact``: PRISM wavelengths of pixels by the exact inverse of n(lam) instead
    of the official lookup table (see :class:`Prism`).
    """

    def __init__(self, refs, header, where="assign_wcs", prism_exact=False):
        self.refs = dict(refs)
        self.where = where
        self.prism_exact = prism_exact
        trees = load_refs(refs)
        h = header
        self.detector = str(h.get("DETECTOR", "")).strip().upper()
        if self.detector not in ("NRS1", "NRS2"):
            raise InputError(where, f"DETECTOR {self.detector or '(missing)'!r} is not a NIRSpec detector")
        self.grating = str(h.get("GRATING", "")).strip().upper()
        self.filter = str(h.get("FILTER", "")).strip().upper()
        self._fpa = _model("fpa", refs["fpa"], trees["fpa"], f"{self.detector.lower()}_model")
        self._camera = _model("camera", refs["camera"], trees["camera"], "model")
        self._collimator = _model("collimator", refs["collimator"], trees["collimator"], "model")
        self._fore = _model("fore", refs["fore"], trees["fore"], "model")
        self._ote = _model("ote", refs["ote"], trees["ote"], "model")
        self._msa_tree, self._msa_path = trees["msa"], refs["msa"]
        self._init_disperser(trees["disperser"], refs["disperser"], h)
        self._init_wavelengthrange(trees["wavelengthrange"], refs["wavelengthrange"])
        self.xstart = int(h.get("SUBSTRT1", 1)) - 1
        self.ystart = int(h.get("SUBSTRT2", 1)) - 1
        self._header = h
        self._slits = {}
        self._quadrants = {}

    # ------------------------------------------------------------------ reference content
    def _init_disperser(self, tree, path, h):
        try:
            angles = [float(tree[k]) for k in ("theta_x", "theta_y", "theta_z", "tilt_y")]
        except (KeyError, TypeError, ValueError):
            raise InputError(path, "disperser reference lacks theta_x/theta_y/theta_z/tilt_y") from None
        grating = str((tree.get("meta") or {}).get("instrument", {}).get("grating", "")).upper()
        if grating and grating != self.grating:
            raise InputError(path, f"disperser reference is for {grating}, the exposure uses {self.grating}")
        self.prism = None
        if self.grating == "PRISM":
            self.prism = Prism.from_reference(tree, path, h, self.where, self.prism_exact)
        else:
            try:
                self.groove_density = float(tree["groovedensity"])
            except (KeyError, TypeError, ValueError):
                raise InputError(path, "disperser reference lacks groovedensity") from None
        # GWA_XTIL corrects theta_y, GWA_YTIL theta_x (official convention)
        for key, node, idx in (("GWA_XTIL", "gwa_tiltx", 1), ("GWA_YTIL", "gwa_tilty", 0)):
            reading = self._header_value(h, key)
            if reading is None:
                continue
            try:
                tilt = build(tree[node]["tilt_model"])
                zero = float(tree[node]["zeroreadings"][0])
            except (KeyError, TypeError, IndexError, UnsupportedTransform):
                raise InputError(path, f"disperser reference lacks a usable {node}") from None
            angles[idx] += 0.5 * float(tilt(reading)[0] - tilt(zero)[0]) / 3600.0
        self.gwa_angles = angles

    @staticmethod
    def _header_value(h, key):
        v = h.get(key)
        return None if v is None else float(v)

    def _init_wavelengthrange(self, tree, path):
        sel = [str(s) for s in tree.get("waverange_selector", [])]
        ranges = tree.get("wavelengthrange")
        orders = tree.get("order")
        if not sel or ranges is None or orders is None:
            raise InputError(path, "wavelengthrange reference lacks waverange_selector/wavelengthrange/order")
        key = f"{self.filter}_{self.grating}"
        if key in sel:
            i = sel.index(key)
        else:
            grat = [s.split("_")[-1] for s in sel]
            if self.grating not in grat:
                raise InputError(path, f"wavelengthrange reference has no entry for {key}")
            i = grat.index(self.grating)
        scale = 1e-6 if str(tree.get("wunits", "m")).lower() in ("um", "micron", "microns") else 1.0
        self.wavelength_range = (float(ranges[i][0]) * scale, float(ranges[i][1]) * scale)
        self.order = int(orders[i])

    def slit_data(self, slit):
        """(quadrant model, XC, YC, SIZEX, SIZEY) of a fixed slit (a name: MSA quadrant 5) or of an
        MSA shutter (a tuple (quadrant, row, column), 1-based: see :meth:`shutter_data`)."""
        if slit not in self._slits:
            if isinstance(slit, tuple):
                self._slits[slit] = self.shutter_data(*slit)
                return self._slits[slit]
            if slit not in FS_ROWS:
                raise InputError(self.where, f"unknown fixed slit {slit!r}")
            q5 = self._msa_tree.get("Q5")
            try:
                row = q5["data"][FS_ROWS[slit]]
                geom = tuple(float(row[k]) for k in ("XC", "YC", "SIZEX", "SIZEY"))
            except (KeyError, TypeError, IndexError, ValueError):
                raise InputError(self._msa_path, f"msa reference Q5 has no row for {slit}") from None
            self._slits[slit] = (_model("msa", self._msa_path, q5, "model"),) + geom
        return self._slits[slit]

    def quadrant_table(self, quadrant):
        """The msa reference's shutter table of ``quadrant`` (1-4; NO, XC, YC, SIZEX, SIZEY [m])."""
        try:
            return self._msa_tree[f"Q{int(quadrant)}"]["data"]
        except (KeyError, TypeError):
            raise InputError(self._msa_path, f"msa reference has no quadrant Q{quadrant} table") from None

    def shutter_data(self, quadrant, row, column):
        """(quadrant model, XC, YC, SIZEX, SIZEY) of MSA shutter (row, column) of ``quadrant``:
        row (row - 1) + (column - 1) * 365 of the quadrant's table (official numbering)."""
        table = self.quadrant_table(quadrant)
        index = (int(row) - 1) + (int(column) - 1) * SHUTTER_ROWS
        if not (1 <= int(row) <= SHUTTER_ROWS and 0 <= index < len(table)):
            raise InputError(self._msa_path, f"msa reference Q{quadrant} has no shutter at row {row}, "
                                             f"column {column} ({len(table)} rows)")
        geom = tuple(float(table[k][index]) for k in ("XC", "YC", "SIZEX", "SIZEY"))
        if quadrant not in self._quadrants:
            self._quadrants[quadrant] = _model("msa", self._msa_path, self._msa_tree[f"Q{quadrant}"], "model")
        return (self._quadrants[quadrant],) + geom

    # ------------------------------------------------------------------ frames
    def slit_to_msa(self, slit, xs, ys):
        model, xc, yc, sx, sy = self.slit_data(slit)
        return model(np.asarray(xs, float) * sx + xc, np.asarray(ys, float) * sy + yc)

    def _msa_to_gwa(self, xm, ym, outputs="xy"):
        """GWA-frame direction cosines (alpha, beta, None: no caller uses the third) of the light
        from MSA point (xm, ym); ``outputs="y"``: beta only (alpha None)."""
        tx, ty = self._collimator.inverse(xm, ym)
        return _rotate(*_dircos(tx, ty), self.gwa_angles, "xyzy", outputs)

    def _gwa_to_sca(self, a, b, c):
        inv = [-v for v in self.gwa_angles[::-1]]
        x, y, z = _rotate(a, b, c, inv, "yzyx")
        return self._fpa.inverse(*self._camera.inverse(x / z, y / z))

    def _sca_to_gwa(self, xs, ys):
        """(alpha, beta, None) of the light reaching SCA pixels (xs, ys)."""
        tx, ty = self._camera(*self._fpa(xs, ys))
        return _rotate(*_dircos(tx, ty), self.gwa_angles, "xyzy", "xy")

    def _dms_to_sca(self, x, y):
        if self.detector == "NRS2":
            return 2047.0 - x, 2047.0 - y
        return x, y

    _sca_to_dms = _dms_to_sca   # the flip is its own inverse

    def slit_to_detector(self, slit, xs, ys, lam):
        """Full-frame 0-based DMS pixel (x, y) of slit point (xs, ys) [slit units] at ``lam`` [m]."""
        xs, ys, lam = np.broadcast_arrays(*(np.asarray(v, float) for v in (xs, ys, lam)))
        a, b, _ = self._msa_to_gwa(*self.slit_to_msa(slit, xs, ys))
        if self.prism is not None:
            a_out, b_out = self.prism.deflect(lam, a, b)
        else:
            a_out = -self.groove_density * self.order * lam - a
            b_out = -b
        with np.errstate(invalid="ignore"):
            c_out = np.sqrt(1.0 - a_out * a_out - b_out * b_out)
        return self._sca_to_dms(*self._gwa_to_sca(a_out, b_out, c_out))

    def detector_to_slit(self, slit, x, y, y_range=(-0.55, 0.55)):
        """(y_slit, lam [m]) of full-frame DMS pixels (x, y) for a source at x_slit = 0; NaN where
        y_slit falls outside ``y_range``."""
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        a_out, b_out, _ = self._sca_to_gwa(*self._dms_to_sca(x, y))
        target = -b_out                                   # beta_in of the light that made the pixel
        ys = self._solve_beta(slit, target, y_range)
        a_in, b_in, _ = self._msa_to_gwa(*self.slit_to_msa(slit, np.zeros_like(ys), ys))
        if self.prism is not None:
            lam = self.prism.wavelength(a_in, b_in, a_out)
        else:
            lam = -(a_in + a_out) / (self.groove_density * self.order)
        bad = ~np.isfinite(ys) | (ys < y_range[0]) | (ys > y_range[1])
        return np.where(bad, np.nan, ys), np.where(bad, np.nan, lam)

    def _solve_beta(self, slit, target, y_range, iterations=2):
        """y_slit with beta_in(0, y_slit) = target: a table start, then Newton steps with the
        table's slope (beta_in is smooth and monotonic along the slit)."""
        lo, hi = y_range[0] - 0.5, y_range[1] + 0.5
        grid = np.linspace(lo, hi, 401)
        _, beta, _ = self._msa_to_gwa(*self.slit_to_msa(slit, np.zeros_like(grid), grid), outputs="y")
        order = np.argsort(beta)
        ys = np.interp(target, beta[order], grid[order], left=np.nan, right=np.nan)
        slope = np.gradient(beta, grid)
        for _ in range(iterations):
            ok = np.isfinite(ys)
            _, b, _ = self._msa_to_gwa(*self.slit_to_msa(slit, np.zeros_like(ys), np.where(ok, ys, 0.0)), outputs="y")
            ys = ys - (b - target) / np.interp(ys, grid, slope)
        return ys

    # ------------------------------------------------------------------ sky
    def slit_to_v2v3(self, slit, xs, ys, lam):
        """V2/V3 [arcsec] of slit points (lam [m] for the fore optics)."""
        xs, ys, lam = np.broadcast_arrays(*(np.asarray(v, float) for v in (xs, ys, lam)))
        xm, ym = self.slit_to_msa(slit, xs, ys)
        return self._ote(*self._fore(xm, ym, lam))

    def v2v3_to_slit(self, slit, v2, v3, lam):
        """(x_slit, y_slit) of V2/V3 [arcsec] positions (the inverse of :meth:`slit_to_v2v3`)."""
        v2, v3, lam = np.broadcast_arrays(*(np.asarray(v, float) for v in (v2, v3, lam)))
        model, xc, yc, sx, sy = self.slit_data(slit)
        xm, ym = model.inverse(*self._fore.inverse(*self._ote.inverse(v2, v3), lam))
        return (xm - xc) / sx, (ym - yc) / sy

    def _pointing(self):
        h, w = self._header, self.where
        return (_num(h, "RA_REF", where=w), _num(h, "DEC_REF", where=w), _num(h, "ROLL_REF", where=w),
                _num(h, "V2_REF", where=w), _num(h, "V3_REF", where=w), _num(h, "VA_SCALE", 1.0, w))

    def v2v3_to_sky(self, v2, v3):
        """(RA, Dec) [deg] of V2/V3 [arcsec] with this exposure's pointing keywords."""
        return v2v3_to_sky(v2, v3, *self._pointing())

    def slit_to_sky(self, slit, xs, ys, lam):
        """((v2, v3) arcsec, (ra, dec) deg) of slit points; lam [m]."""
        v2, v3 = self.slit_to_v2v3(slit, xs, ys, lam)
        return (v2, v3), self.v2v3_to_sky(v2, v3)

    def slit_to_xieta(self, slit, xs, ys, lam, ref):
        """Tangent-plane offsets (xi, eta) [arcsec] about ``ref`` = (RA, Dec) [deg] of slit
        points; lam [m] (:func:`v2v3_to_xieta`)."""
        v2, v3 = self.slit_to_v2v3(slit, xs, ys, lam)
        return v2v3_to_xieta(v2, v3, *ref, *self._pointing())

    # ------------------------------------------------------------------ footprint
    def bounding_box(self, slit, y_range=(-0.55, 0.55), nlam=400):
        """Full-frame (x0, x1, y0, y1) inclusive integer bounds of the pixels the slit's light of
        the wavelength range can reach (slit edges and centre across the slit, 1 pixel margin),
        clipped to the detector; None when it misses the detector."""
        lam = np.linspace(*self.wavelength_range, nlam)
        xs = np.array([-0.5, 0.0, 0.5])[:, None, None]
        ys = np.array(y_range, float)[None, :, None]
        x, y = self.slit_to_detector(slit, xs, ys, lam[None, None, :])
        x0, x1 = int(np.floor(np.nanmin(x))) - 1, int(np.ceil(np.nanmax(x))) + 1
        y0, y1 = int(np.floor(np.nanmin(y))) - 1, int(np.ceil(np.nanmax(y))) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, 2047), min(y1, 2047)
        if x1 < x0 or y1 < y0:
            return None
        return x0, x1, y0, y1
