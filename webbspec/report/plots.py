"""The report's figures, each returned as a ``data:image/png;base64,...`` URI (no files).

matplotlib's object API (``Figure``) is used rather than pyplot: no global figure state and no
GUI backend, so it runs the same inside a Snakemake job, a test or a headless server.
"""

import base64
import io

import numpy as np

__all__ = ["spectrum_figure", "s2d_figure", "exposures_figure", "outliers_figure", "png_uri"]

WIDTH = 9.0      # inches; at DPI 90 the page's images are 810 pixels wide
DPI = 90


COLORS = 64      # palette of the embedded PNGs


def png_uri(fig):
    """The figure as a PNG data URI, reduced to a ``COLORS`` palette: noisy images compress badly
    in full colour (a 3-exposure outlier panel 244 kB in RGBA, 66 kB in 64 colours)."""
    from PIL import Image     # matplotlib's own dependency

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    buf.seek(0)
    img = Image.open(buf).convert("RGB").quantize(colors=COLORS, method=Image.Quantize.MEDIANCUT,
                                                  dither=Image.Dither.NONE)
    out = io.BytesIO()
    img.save(out, format="png", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _figure(height, nrows=1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    axes = fig.subplots(nrows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, axes


def _finite(*arrays):
    vals = [np.ravel(a)[np.isfinite(np.ravel(a))] for a in arrays if a is not None]
    return np.concatenate(vals) if vals else np.array([])


def _limits(*arrays, lo=1.0, hi=99.0, whole=None):
    """Robust plot limits: the percentiles of the finite values (extended to the whole range of
    ``whole``), padded by 10%; a few outlying pixels must not squash the spectrum into a line."""
    vals = _finite(*arrays)
    if vals.size == 0:
        return None
    a, b = np.percentile(vals, [lo, hi])
    full = _finite(whole)
    if full.size:
        a, b = min(a, full.min()), max(b, full.max())
    pad = 0.1 * (b - a) or (abs(a) * 0.1 or 1.0)
    return a - pad, b + pad


def _label(column, unit):
    return f"{column} [{unit}]" if unit else column


def spectrum_figure(spec, truth=None, truth_label="truth"):
    """The Level 3 spectrum, its error as a band, and the binned truth if given."""
    fig, (ax,) = _figure(3.0)
    w, v, e = spec.wavelength, spec.value, spec.error
    ax.fill_between(w, v - e, v + e, color="tab:blue", alpha=0.3, lw=0, label="±1σ")
    ax.plot(w, v, color="tab:blue", lw=0.7, label=spec.column)
    if truth is not None:
        ax.plot(w, truth, color="tab:red", lw=0.9, label=truth_label)
    # the truth has no outliers: its whole range is shown (emission lines included)
    ylim = _limits(v, truth, lo=0.5, hi=99.5, whole=truth)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_xlabel("wavelength [um]")
    ax.set_ylabel(_label(spec.column, spec.unit))
    ax.legend(loc="upper right", fontsize="small")
    return png_uri(fig)


def _edges(wave):
    """Pixel edges of an increasing wavelength grid (midpoints, ends extrapolated), or None."""
    w = np.asarray(wave, float)
    if w.size < 2 or not np.all(np.isfinite(w)) or not np.all(np.diff(w) > 0):
        return None
    mid = 0.5 * (w[1:] + w[:-1])
    return np.concatenate([[2 * w[0] - mid[0]], mid, [2 * w[-1] - mid[-1]]])


def s2d_figure(sci, wave, unit, aperture=None):
    """The rectified 2-D spectrum (rows: along the slit, columns: wavelength), with the 1-D
    extraction aperture (1-based first and last row) as dashed lines."""
    fig, (ax,) = _figure(2.2)
    ny, nx = sci.shape
    lim = _limits(sci, lo=2, hi=98)
    style = dict(cmap="gray", vmin=lim[0] if lim else None, vmax=lim[1] if lim else None)
    edges = _edges(wave) if wave is not None and len(wave) == nx else None
    if edges is not None:
        # columns at their wavelengths: a prism's dispersion is far from linear
        im = ax.pcolormesh(edges, np.arange(ny + 1) - 0.5, sci, shading="flat", rasterized=True, **style)
        xlabel = "wavelength [um]"
    else:
        im = ax.imshow(sci, origin="lower", aspect="auto", interpolation="nearest", **style)
        xlabel = "column"
    if aperture is not None:
        for y in aperture:                       # 1-based row limits -> 0-based pixel centres
            ax.axhline(y - 1, color="tab:orange", ls="--", lw=0.8)
    fig.colorbar(im, ax=ax, label=unit or None, pad=0.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("row")
    return png_uri(fig)


def exposures_figure(spectra, level3=None):
    """Each exposure's spectrum (``[(label, Spectrum)]``) overlaid, with the Level 3 one in black."""
    fig, (ax,) = _figure(3.0)
    values = []
    for label, spec in spectra:
        ax.plot(spec.wavelength, spec.value, lw=0.6, alpha=0.8, label=label)
        values.append(spec.value)
    if level3 is not None:
        ax.plot(level3.wavelength, level3.value, color="black", lw=0.7, label="Level 3")
        values.append(level3.value)
    ylim = _limits(*values, lo=0.5, hi=99.8)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_xlabel("wavelength [um]")
    spec = spectra[0][1]
    ax.set_ylabel(_label(spec.column, spec.unit))
    ax.legend(loc="upper right", fontsize="small")
    return png_uri(fig)


def outliers_figure(exposures):
    """One panel per exposure of a ``_crf``: SCI in grey, the OUTLIER-flagged pixels in red."""
    n = len(exposures)
    fig, axes = _figure(0.5 + 1.0 * n, nrows=n)
    for ax, (label, sci, mask) in zip(axes, exposures):
        lim = _limits(sci, lo=2, hi=98)
        ax.imshow(sci, origin="lower", aspect="auto", cmap="gray", interpolation="nearest",
                  vmin=lim[0] if lim else None, vmax=lim[1] if lim else None)
        y, x = np.nonzero(mask)
        # markers, not image pixels: a flagged pixel must stay visible when the image is shrunk
        ax.plot(x, y, "s", ms=2.5, mfc="none", mec="red", mew=0.8)
        ax.set_ylabel("row")
        ax.set_title(f"{label}: {int(mask.sum())} pixels flagged", fontsize="small", loc="left")
    axes[-1].set_xlabel("column")
    return png_uri(fig)
