"""Small in-memory builders of synthetic slits with known coordinates and scene (test oracle).

A slit of ``ny`` x ``nx`` pixels (DISPAXIS=1) lies along position angle ``pa`` on the sky: row j
is at along-slit offset s = (j - yc) * pixscale - nod + curve * u**2 (u = column in [-1, 1], a
curved trace) from the reference position (WSREFRA/WSREFDE), plus a constant cross-slit offset.
Wavelength lam = lam0 + d1 * (i + tilt * (j - yc)) + d2 * i**2 (tilted lines). The scene is a
Gaussian point source (sigma ``fwhm``/2.3548 arcsec) at along-slit offset ``src`` with a spectrum
``amp(lam)``: each pixel holds ``amp(lam) * frac`` where ``frac`` is the exact pixel integral of
the normalised profile (so for BUNIT MJy the rows of a column sum to amp), plus a flat
``background``. ``rnoise`` is the read-noise sigma at the blue end; VAR_RNOISE grows by ``red_ivm``
to the red end (the ivm weight is ``red_ivm`` x lower there). ``seed`` adds Gaussian noise with the
stated variances (VAR_POISSON = ``gain_var`` * |signal|).

Usage::

    from builders import make_slit, make_nods
    model = make_nods(nods=(-1.0, 0.0, 1.0), seed=1)      # Stage 3 model: 3 exposures, one source
"""

import numpy as np
from astropy.io import fits
from scipy.special import erf

from webbspec.io.datamodels import Model, Slit
from webbspec.io.skycoords import xieta_to_radec

RA0, DEC0 = 214.8, 52.9
ARCSEC2_SR = (np.pi / 180 / 3600) ** 2


def amp_default(lam):
    return 1.0 + 0.2 * np.sin(3.0 * lam)


def along_slit(ny, nx, *, pixscale=0.1, nod=0.0, curve=0.0):
    """Along-slit offset [arcsec] of every pixel centre (see module docstring)."""
    j, i = np.mgrid[0:ny, 0:nx].astype(float)
    yc = (ny - 1) / 2.0
    u = (i - (nx - 1) / 2.0) / ((nx - 1) / 2.0)
    return (j - yc) * pixscale - nod + curve * u ** 2


def wavelengths(ny, nx, *, lam0=2.87, d1=0.007, d2=0.0, tilt=0.0):
    j, i = np.mgrid[0:ny, 0:nx].astype(float)
    yc = (ny - 1) / 2.0
    return lam0 + d1 * (i + tilt * (j - yc)) + d2 * i ** 2


def profile_fraction(s, pixscale, src=0.0, fwhm=0.2):
    """Exact fraction of a normalised Gaussian falling in pixels centred at s (width pixscale)."""
    sig = fwhm / 2.3548
    a = (s - 0.5 * pixscale - src) / (np.sqrt(2) * sig)
    b = (s + 0.5 * pixscale - src) / (np.sqrt(2) * sig)
    return 0.5 * (erf(b) - erf(a))


def make_slit(*, ny=25, nx=341, pixscale=0.1, pa=30.0, cross=0.02, nod=0.0, curve=0.0, tilt=0.0,
              lam0=2.87, d1=0.007, d2=0.0, src=0.0, fwhm=0.2, amp=amp_default, background=0.0,
              rnoise=0.01, red_ivm=1.0, gain_var=0.0, seed=None, bunit="MJy", srctype="POINT",
              name="S200A1", source_id=1, exptime=1000.0, ref=(RA0, DEC0)):
    s = along_slit(ny, nx, pixscale=pixscale, nod=nod, curve=curve)
    lam = wavelengths(ny, nx, lam0=lam0, d1=d1, d2=d2, tilt=tilt)
    p = np.radians(pa)
    xi = s * np.sin(p) + cross * np.cos(p)
    eta = s * np.cos(p) - cross * np.sin(p)
    truth = amp(lam) * profile_fraction(s, pixscale, src, fwhm) + background
    i = np.arange(nx)[None, :] * np.ones((ny, 1))
    vr = rnoise ** 2 * (1.0 + (red_ivm - 1.0) * i / (nx - 1))
    vp = gain_var * np.abs(truth)
    sci = truth.copy()
    if seed is not None:
        rng = np.random.default_rng(seed)
        sci = truth + rng.normal(size=truth.shape) * np.sqrt(vp + vr)
    pixar_sr = pixscale ** 2 * ARCSEC2_SR
    src_ra, src_dec = xieta_to_radec(src * np.sin(p), src * np.cos(p), *ref)
    hdr = fits.Header()
    hdr.update({"SLTNAME": name, "SLITID": 1, "SOURCEID": source_id, "SRCNAME": "", "SRCTYPE": srctype,
                "BUNIT": bunit, "PIXAR_SR": pixar_sr, "PIXAR_A2": pixscale ** 2, "DISPAXIS": 1,
                "SPORDER": 1, "SRCRA": float(src_ra), "SRCDEC": float(src_dec),
                "WSREFRA": ref[0], "WSREFDE": ref[1], "EFFEXPTM": exptime})
    arrays = {
        "SCI": sci.astype(np.float32),
        "ERR": np.sqrt(vp + vr).astype(np.float32),
        "DQ": np.zeros((ny, nx), np.uint32),
        "VAR_POISSON": vp.astype(np.float32),
        "VAR_RNOISE": vr.astype(np.float32),
        "VAR_FLAT": np.zeros((ny, nx), np.float32),
        "WAVELENGTH": lam.astype(np.float32),
        "XI": xi.astype(np.float32),
        "ETA": eta.astype(np.float32),
    }
    slit = Slit(hdr, arrays)
    slit.truth = truth          # noise-free scene, for tests
    return slit


def make_nods(nods=(-1.0, 0.0, 1.0), *, seed=None, exptimes=None, **kw):
    """A Stage 3 model (layout multi, DATAMODL MultiExposureModel): one slit per nod [arcsec]."""
    slits = []
    for k, nod in enumerate(nods):
        sd = None if seed is None else seed + k
        t = exptimes[k] if exptimes is not None else kw.get("exptime", 1000.0)
        kk = dict(kw, exptime=t)
        slits.append(make_slit(nod=nod, seed=sd, **kk))
    primary = fits.Header()
    primary.update({"INSTRUME": "NIRSPEC", "EXP_TYPE": "NRS_FIXEDSLIT", "DATAMODL": "MultiExposureModel",
                    "EFFEXPTM": slits[0].header["EFFEXPTM"]})
    return Model(primary, slits, "multi")


def make_s2d(**kw):
    """An already rectified slit (no tilt/curvature, lambda per column) with its S2D* keys."""
    kw = dict(kw, tilt=0.0, curve=0.0, cross=0.0, d2=0.0)
    slit = make_slit(**kw)
    ny = slit.shape[0]
    ps, nod = kw.get("pixscale", 0.1), kw.get("nod", 0.0)
    slit.header["S2DRA0"] = slit.header["WSREFRA"]
    slit.header["S2DDEC0"] = slit.header["WSREFDE"]
    slit.header["S2DCRPX2"] = (ny - 1) / 2.0 + nod / ps
    slit.header["S2DCDLT2"] = ps
    slit.header["S2DPA"] = kw.get("pa", 30.0)
    return slit
