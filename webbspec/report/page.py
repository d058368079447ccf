"""The report page: one self-contained HTML file per program (figures inline as PNG data URIs).

Every part is made on its own: a part whose product is missing or unreadable says so in the page
and the rest of the page is still written.
"""

import html
import os

import numpy as np

from .. import __version__
from ..io.atomicfile import replacing
from . import plots, readers
from .collect import collect

__all__ = ["write_report", "render", "default_output"]

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 62em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { font-size: 1em; margin: 1.2em 0 0.3em; }
figure { margin: 0.3em 0 1em; } figure img { max-width: 100%; }
figcaption, .note { font-size: 0.85em; color: #555; }
.missing { color: #a33; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.8em; } td, th { border: 1px solid #ddd; padding: 2px 6px;
  text-align: left; vertical-align: top; }
code { font-size: 0.95em; }
"""


def default_output(root):
    return os.path.join(root, "webbspec", "report.html")


def _e(text):
    return html.escape(str(text))


def _missing(text):
    return f'<p class="missing">{_e(text)}</p>'


def _figure(kind, uri, caption):
    return (f'<figure><img class="plot" data-plot="{kind}" alt="{kind}" src="{uri}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _part(title, make):
    """``make()`` -> HTML; an exception becomes a line in the page (a report never stops on data)."""
    try:
        body = make()
    except Exception as exc:       # noqa: BLE001 -- any failure of one part is reported, not raised
        body = _missing(f"could not show this: {type(exc).__name__}: {exc}")
    return f"<h3>{_e(title)}</h3>{body}"


def _optional(read):
    """``read()``, or None if it fails: for what only adds to a figure (its own part reports it)."""
    try:
        return read()
    except Exception:      # noqa: BLE001
        return None


def _aperture(x1d):
    """The extraction aperture's first and last row (1-based) recorded in an ``_x1d``, or None."""
    h = readers.read_spectrum(x1d).header
    return (float(h["EXTRYSTR"]), float(h["EXTRYSTP"])) if "EXTRYSTR" in h and "EXTRYSTP" in h else None


def _surface(src):
    """Show SURF_BRIGHT for an extended source (what the pipeline calibrates it in), else FLUX."""
    return src.srctype == "EXTENDED"


def _central_ratio(value, truth):
    n = value.size
    sl = slice(int(0.1 * n), int(0.9 * n))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = value[sl] / truth[sl]
    r = r[np.isfinite(r)]
    return float(np.median(r)) if r.size else None


def _level3_spectrum(src, truth_program):
    path = src.level3.get("x1d") or src.level3.get("c1d")
    if not path:
        return _missing("No Level 3 1-D spectrum (_x1d or _c1d) for this source.")
    spec = readers.read_spectrum(path, surface=_surface(src))
    truth, note = None, ""
    if src.truth:
        tw, tv, tcol, tunit = readers.read_truth(src.truth)
        truth = readers.binned(tw, tv, spec.wavelength)
        note = (f" Red: the simulator's truth ({_e(tcol)} [{_e(tunit)}]) averaged over each pixel's"
                " wavelength bin.")
        if tcol == "surf_bright" and str(spec.primary.get("S_BKDSUB", "")).strip() == "COMPLETE":
            note += (" This extended source's truth is the sky, which the nodded background"
                     " subtraction removes: the data should scatter about zero.")
        elif (ratio := _central_ratio(spec.value, truth)) is not None:
            note += f" Median {spec.column} / truth over the central 80%: {ratio:.4f}."
    elif truth_program:
        note = " No truth spectrum for this source."
    uri = plots.spectrum_figure(spec, truth)
    return _figure("spectrum", uri, f"<code>{_e(os.path.basename(path))}</code>: {spec.column} with"
                   f" {_e(spec.error_column)} as the band.{note}")


def _s2d(src):
    path = src.level3.get("s2d")
    if not path:
        return _missing("No Level 3 2-D spectrum (_s2d) for this source.")
    sci, wave, unit = readers.read_s2d(path)
    aperture = _optional(lambda: _aperture(src.level3["x1d"])) if "x1d" in src.level3 else None
    note = " Dashed: the 1-D extraction aperture." if aperture else ""
    uri = plots.s2d_figure(sci, wave, unit, aperture)
    return _figure("s2d", uri, f"<code>{_e(os.path.basename(path))}</code>: SCI.{note}")


def _exposures(src):
    if not src.exposures:
        return _missing("No Stage 2 _x1d holds this source (Stage 3 ran on delivered _cal files,"
                        " or Stage 2 did not extract it).")
    surface = _surface(src)
    spectra = [(exposure, readers.read_spectrum(path, ver, surface)) for exposure, path, ver in src.exposures]
    path = src.level3.get("x1d") or src.level3.get("c1d")
    level3 = _optional(lambda: readers.read_spectrum(path, surface=surface)) if path else None
    uri = plots.exposures_figure(spectra, level3)
    return _figure("exposures", uri, f"{len(spectra)} Stage 2 <code>_x1d</code> spectra of this source"
                   + (" and the Level 3 spectrum (black)." if level3 else "."))


def _outliers(src):
    path = src.level3.get("crf")
    if not path:
        return _missing("No _crf (outlier detection output) for this source.")
    exposures = readers.read_outliers(path)
    if not exposures:
        return _missing(f"{os.path.basename(path)} holds no SCI/DQ pair.")
    uri = plots.outliers_figure(exposures)
    total = sum(int(m.sum()) for _, _, m in exposures)
    return _figure("outliers", uri, f"<code>{_e(os.path.basename(path))}</code>: pixels with the DQ"
                   f" OUTLIER bit (red), {total} in {len(exposures)} exposures, over each exposure's SCI.")


def _source_section(src, truth_program):
    title = f"Source {src.source_id}" if src.source_id is not None else src.key
    extra = " ".join(x for x in (src.label, f"({src.srctype})" if src.srctype else "") if x)
    parts = [f'<section class="source" id="{_e(src.key)}"><h2>{_e(title)} {_e(extra)}</h2>',
             f'<p class="note"><code>{_e(src.key)}</code></p>']
    parts += [_missing(p) for p in src.problems]
    parts.append(_part("Level 3 1-D spectrum", lambda: _level3_spectrum(src, truth_program)))
    parts.append(_part("Level 3 2-D spectrum", lambda: _s2d(src)))
    parts.append(_part("Per-exposure spectra", lambda: _exposures(src)))
    parts.append(_part("Outlier mask", lambda: _outliers(src)))
    parts.append("</section>")
    return "\n".join(parts)


def _products_table(prog):
    if not prog.products:
        return _missing("No products.")
    rows = ["<table><tr><th>stage</th><th>product</th><th>model</th><th>context</th><th>version</th>"
            "<th>reference files</th></tr>"]
    for stage, path in prog.products:
        try:
            p = readers.provenance(path)
        except (OSError, ValueError) as exc:
            rows.append(f"<tr><td>{stage}</td><td>{_e(os.path.basename(path))}</td>"
                        f'<td colspan="4" class="missing">cannot read: {_e(exc)}</td></tr>')
            continue
        refs = "<br>".join(f"{_e(k)} = {_e(v)}" for k, v in sorted(p["refs"].items()))
        refs = (f"<details><summary>{len(p['refs'])} files</summary>{refs}</details>" if p["refs"]
                else "none recorded")
        rows.append(f"<tr><td>{stage}</td><td><code>{_e(os.path.basename(path))}</code></td>"
                    f"<td>{_e(p['model'])}</td><td>{_e(p['context'] or '-')}</td><td>{_e(p['version'] or '-')}</td>"
                    f"<td>{refs}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def render(root):
    """The report page of the program directory ``root`` (HTML text)."""
    prog = collect(root)
    name = os.path.basename(prog.root.rstrip(os.sep))
    nav = " · ".join(f'<a href="#{_e(s.key)}">{_e(s.source_id if s.source_id is not None else s.key)}</a>'
                     for s in prog.sources)
    head = [f"<h1>webbspec report: {_e(name)}</h1>",
            f'<p class="note"><code>{_e(prog.root)}</code>; {len(prog.sources)} sources,'
            f" {len(prog.products)} products; simulator truth: {'yes' if prog.truth_dir else 'no'};"
            f" webbspec {_e(__version__)}.</p>"]
    head += [_missing(p) for p in prog.problems]
    if nav:
        head.append(f"<p>Sources: {nav}</p>")
    elif not prog.problems:
        head.append(_missing("No spectra found under webbspec/spec2 or webbspec/spec3."))
    body = head + [_source_section(s, prog.truth_dir is not None) for s in prog.sources]
    body += ['<section id="products"><h2>Products and what made them</h2>',
             '<p class="note">Context: the CRDS context (pmap) the reference files were selected'
             " with; reference files: the <code>R_&lt;REFTYPE&gt;</code> keywords.</p>",
             _products_table(prog), "</section>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>webbspec report: {_e(name)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(root, output=None):
    """Write the report page of ``root`` to ``output`` (default ``root/webbspec/report.html``)."""
    output = output or default_output(root)
    text = render(root)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with replacing(output) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    return output
