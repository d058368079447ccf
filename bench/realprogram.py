"""A NIRSpec MOS program built from real slits, for benchmarks and side-by-side tests.

    python bench/realprogram.py OUTDIR --nsources N [--seed S] [--inject-hot]
    python -m webbspec.realprogram OUTDIR --nsources N [--seed S] [--inject-hot]

Each of the three real CEERS PRISM nods of ``tests/data/ceers`` (see ORIGIN.md there) becomes
one MAST-like ``_cal`` MultiSlitModel holding N copies of that nod's slit. Copy ``k`` is source
``933 + k`` in every nod: its own SOURCEID, source name ``1345_<id>``, slit name / SLITID
``138 + k``, and a flux scale (SCI and ERR times the scale, VAR_POISSON / VAR_RNOISE / VAR_FLAT
times its square). Every slit keeps the real gwcs: each copy carries its own deep copy, and
stdatamodels serializes one gwcs per slit into the ASDF extension, as in an official product.
A spec3 association names the three files (product name with ``{source_id}``, as MAST's MOS
associations have it).

Serializing N gwcs through stdatamodels costs seconds per slit, so above 100 sources (or
with ``fast=True``) the builder writes a 1-slit file that way and repeats its serialized slit N
times in the ASDF tree (each copy its own YAML gwcs, anchors renamed, HDU references to its own
EXTVER; the gwcs' binary blocks are shared) next to re-keyed, scaled copies of the slit HDUs. The
files read the same (tests/test_realprogram.py compares both paths).

``inject_hot=True`` adds cosmic-ray-like hot pixels: for every source, in ONE of its three nods
(drawn at random), 3 distinct valid pixels (finite SCI, ERR > 0, finite WAVELENGTH, no
DO_NOT_USE) drawn uniformly over the slit, i.e. across the whole wavelength range, get
``SCI += 100 * ERR`` (ERR of that pixel, after the flux scale). The truth goes to
``OUTDIR/truth/hot_pixels.ecsv``: one row per injected pixel (file, extver, slit, source id, y, x,
wavelength, ERR, added value). The same seed gives the same data, ids, scales and truth.
"""

import argparse
import copy
import glob
import json
import os
import sys
import warnings

import numpy as np

__all__ = ["build_mos_program", "ceers_files", "exposure_names", "PRODUCT_NAME", "FIRST_ID",
           "FIRST_SLIT", "HOT_SIGMA", "HOT_PER_SOURCE", "main"]

PRODUCT_NAME = "jw01345-o062_{source_id}_nirspec_clear-prism"
FIRST_ID = 933          # the real source; copy k is source FIRST_ID + k
FIRST_SLIT = 138        # the real slitlet; copy k is slit FIRST_SLIT + k
HOT_SIGMA = 100.0
HOT_PER_SOURCE = 3
_DO_NOT_USE = 1


def ceers_files(data_dir=None):
    """The three real CEERS nods (sorted by exposure number)."""
    if data_dir is None:
        here = os.path.dirname(os.path.abspath(__file__))
        data_dir = os.path.join(os.path.dirname(here), "tests", "data", "ceers")
    files = sorted(glob.glob(os.path.join(data_dir, "jw01345062001_03101_0000?_nrs2_phot.*.fits")))
    if len(files) != 3:
        raise FileNotFoundError(f"{data_dir}: expected the 3 CEERS nods, found {len(files)}")
    return files


def exposure_names(files):
    """``jw01345062001_03101_00001_nrs2`` for each nod file."""
    return [os.path.basename(f).split("_phot")[0] for f in files]


def _scales(n, rng):
    """Flux scale per source: log-uniform over 0.5-5 (deterministic for the generator)."""
    return 10.0 ** rng.uniform(np.log10(0.5), np.log10(5.0), n)


def _valid_pixels(sci, err, wl, dq):
    """Flat indices of pixels where a hot pixel can be injected."""
    sci, err, wl = (np.asarray(a, float) for a in (sci, err, wl))
    ok = np.isfinite(sci) & np.isfinite(err) & (err > 0) & np.isfinite(wl) & (wl > 0)
    ok &= (np.asarray(dq).astype(np.uint32) & _DO_NOT_USE) == 0
    return np.flatnonzero(ok)


def _write_truth(rows, path):
    from astropy.table import Table

    names = ("file", "extver", "slit", "source_id", "nod", "y", "x", "wavelength", "err", "added")
    dtype = ("U80", "i4", "U16", "i8", "i4", "i4", "i4", "f8", "f8", "f8")
    t = Table(rows=rows or None, names=names, dtype=dtype)
    t["wavelength"].unit = "um"
    t.meta["comments"] = [f"hot pixels: SCI += {HOT_SIGMA:g} * ERR, {HOT_PER_SOURCE} per source "
                          "in one nod per source; y, x 0-based in the slit cutout"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t.write(path, format="ascii.ecsv", overwrite=True)


def _scaled(arrays, f, hot):
    """Scaled copies of the slit arrays (SCI, ERR x f; VAR_* x f^2) with hot pixels added.
    Returns (arrays, [(y, x, err, added)])."""
    out = dict(arrays)
    out["SCI"] = (np.asarray(arrays["SCI"], np.float64) * f).astype(np.float32)
    out["ERR"] = (np.asarray(arrays["ERR"], np.float64) * f).astype(np.float32)
    for v in ("VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
        if v in arrays:
            out[v] = (np.asarray(arrays[v], np.float64) * f * f).astype(np.float32)
    done = []
    for y, x in hot:
        add = HOT_SIGMA * float(out["ERR"][y, x])
        out["SCI"][y, x] += np.float32(add)
        done.append((int(y), int(x), float(out["ERR"][y, x]), add))
    return out, done


# model attribute <-> extension of a slit
_ATTR = {"SCI": "data", "ERR": "err", "VAR_POISSON": "var_poisson", "VAR_RNOISE": "var_rnoise",
         "VAR_FLAT": "var_flat"}


def _build_models(src, out, ids, scales, hot):
    """The official way: a MultiSlitModel of N slit copies (each its own deep-copied gwcs), saved
    by stdatamodels (one serialized gwcs per slit). Returns truth rows without file/nod."""
    from stdatamodels.jwst import datamodels as dm

    rows = []
    with dm.open(src) as slit:
        ms = dm.MultiSlitModel()
        ms.update(slit, only="PRIMARY")
        ms.meta.filename = os.path.basename(out)
        base = {k: getattr(slit, a) for k, a in _ATTR.items()}
        wl = np.asarray(slit.wavelength)
        for k, sid in enumerate(ids):
            s = slit.copy()
            if s.meta.wcs is slit.meta.wcs:
                s.meta.wcs = copy.deepcopy(slit.meta.wcs)   # each slit its own gwcs
            s.source_id = sid
            s.source_name = f"1345_{sid}"
            s.source_alias = str(sid)
            s.name = str(FIRST_SLIT + k)
            s.slitlet_id = FIRST_SLIT + k
            arrays, done = _scaled(base, float(scales[k]), hot.get(k, ()))
            for key, attr in _ATTR.items():
                setattr(s, attr, arrays[key])
            rows += [(k + 1, s.name, sid, y, x, float(wl[y, x]), e, a) for y, x, e, a in done]
            ms.slits.append(s)
        ms.save(out)
        ms.close()
    return rows


def _build_replicated(template, out, ids, scales, hot):
    """Fast path for large N, same file layout: the serialized slit of a 1-slit MultiSlitModel
    ``template`` (written by :func:`_build_models`) is repeated N times in the ASDF tree (own YAML
    copy of the gwcs per slit, anchors renamed per copy, HDU references to its own EXTVER; the
    binary blocks of the gwcs are shared), with the slit HDUs copied, scaled and re-keyed.
    ``_fits_hash`` is dropped, so readers take the slit keywords from the FITS headers."""
    import re

    from astropy.io import fits

    with fits.open(template, memmap=False) as h:
        primary = h[0].copy()
        slit_hdus = [x.copy() for x in h[1:] if isinstance(x, fits.ImageHDU)]
        others = [x.copy() for x in h[1:] if not isinstance(x, fits.ImageHDU) and x.name != "ASDF"]
        raw = h["ASDF"].data["ASDF_METADATA"][0].tobytes()
    end = raw.index(b"\n...\n") + 5
    cut = raw.find(b"#ASDF BLOCK INDEX")
    head, blocks = raw[:end].decode(), raw[end:cut if cut >= 0 else len(raw)]
    lines = head.splitlines(keepends=True)
    i0 = lines.index("slits:\n")
    i1 = i0 + 2
    while i1 < len(lines) and (lines[i1].startswith(" ")):
        i1 += 1
    entry = "".join(lines[i0 + 1:i1])
    if entry.count("\n- ") or not entry.startswith("- "):
        raise ValueError(f"{template}: expected one slit in the template")
    anchors = set(re.findall(r"&(id\d+)", entry))
    pre = "".join(x for x in lines[:i0 + 1] if not x.startswith("_fits_hash:"))
    post = "".join(lines[i1:])
    arrays = {x.name: x.data for x in slit_hdus}
    wl = np.asarray(arrays["WAVELENGTH"])
    hdus, entries, rows = [primary], [], []
    for k, sid in enumerate(ids):
        ver, slit_name = k + 1, str(FIRST_SLIT + k)
        e = re.sub(r"fits:(\w+),1\b", lambda m: f"fits:{m.group(1)},{ver}", entry)
        e = re.sub(r"([&*])(id\d+)\b", lambda m: f"{m.group(1)}{m.group(2)}c{ver}"
                   if m.group(2) in anchors else m.group(0), e)
        e = re.sub(r"(?m)^  _fits_hash: .*\n", "", e)
        for key, val in (("source_id", str(sid)), ("slitlet_id", slit_name), ("name", f"'{slit_name}'"),
                         ("source_name", f"'1345_{sid}'"), ("source_alias", f"'{sid}'")):
            e = re.sub(rf"(?m)^  {key}: .*$", f"  {key}: {val}", e)
        entries.append(e)
        scaled, done = _scaled(arrays, float(scales[k]), hot.get(k, ()))
        for x in slit_hdus:
            hdr = x.header.copy()
            hdr["EXTVER"] = ver
            if x.name == "SCI":
                hdr["SOURCEID"], hdr["SRCNAME"], hdr["SRCALIAS"] = sid, f"1345_{sid}", str(sid)
                hdr["SLTNAME"], hdr["SLITID"] = slit_name, FIRST_SLIT + k
            data = scaled[x.name] if x.name in _ATTR else x.data
            hdus.append(fits.ImageHDU(data, header=hdr, name=x.name, ver=ver))
        rows += [(ver, slit_name, sid, y, x, float(wl[y, x]), err, a) for y, x, err, a in done]
    blob = np.frombuffer((pre + "".join(entries) + post).encode() + blocks, np.uint8)
    col = fits.Column(name="ASDF_METADATA", format=f"{blob.size}B", array=blob[None, :])
    hdus += others + [fits.BinTableHDU.from_columns([col], name="ASDF")]
    fits.HDUList(hdus).writeto(out, overwrite=True)
    return rows


def build_mos_program(outdir, n_sources, seed=0, inject_hot=False, data_dir=None, fast=None):
    """Write the program (3 `_cal` files + spec3 association [+ truth]) into ``outdir``.

    ``fast``: repeat the serialized slit of a 1-slit file instead of serializing N gwcs copies
    through stdatamodels (default: when ``n_sources > 100``; the files read the same).
    Returns ``{"cal": [paths], "asn": path, "truth": path or None, "sources": [source ids],
    "scales": [scale per source], "hot": number of injected pixels}``.
    """
    from astropy.io import fits

    from webbspec.io import associations

    n_sources = int(n_sources)
    if n_sources < 1:
        raise ValueError("n_sources must be >= 1")
    fast = n_sources > 100 if fast is None else bool(fast)
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(seed)
    scales = _scales(n_sources, rng)
    ids = [FIRST_ID + k for k in range(n_sources)]
    files = ceers_files(data_dir)
    names = exposure_names(files)
    # which nod of each source gets the hot pixels (drawn even without injection: same scales)
    hot_nod = rng.integers(0, len(files), n_sources)
    truth, cal_paths = [], []
    old = os.environ.get("VALIDATE_ON_ASSIGNMENT")
    os.environ["VALIDATE_ON_ASSIGNMENT"] = "false"   # schema checks per attribute: most of the time
    try:
        for nod, (src, exp) in enumerate(zip(files, names)):
            out = os.path.join(outdir, f"{exp}_cal.fits")
            with fits.open(src) as h:
                valid = _valid_pixels(h["SCI"].data, h["ERR"].data, h["WAVELENGTH"].data, h["DQ"].data)
                shape = h["SCI"].data.shape
            hot = {}
            if inject_hot:
                for k in np.flatnonzero(hot_nod == nod):
                    pick = np.sort(rng.choice(valid, HOT_PER_SOURCE, replace=False))
                    hot[int(k)] = list(zip(*np.unravel_index(pick, shape)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if fast:
                    tmpl = os.path.join(outdir, f".{exp}_template.fits")
                    _build_models(src, tmpl, ids[:1], [1.0], {})
                    rows = _build_replicated(tmpl, out, ids, scales, hot)
                    os.remove(tmpl)
                else:
                    rows = _build_models(src, out, ids, scales, hot)
            truth += [(os.path.basename(out), ver, name, sid, nod, y, x, w, e, a)
                      for ver, name, sid, y, x, w, e, a in rows]
            cal_paths.append(out)
    finally:
        if old is None:
            os.environ.pop("VALIDATE_ON_ASSIGNMENT", None)
        else:
            os.environ["VALIDATE_ON_ASSIGNMENT"] = old
    asn = associations.asn_from_list([os.path.basename(p) for p in cal_paths], PRODUCT_NAME,
                                     asn_id="o062", program="01345")
    asn_path = os.path.join(outdir, "jw01345-o062_spec3_00001_asn.json")
    associations.write(asn, asn_path)
    truth_path = None
    if inject_hot:
        truth_path = os.path.join(outdir, "truth", "hot_pixels.ecsv")
        _write_truth(truth, truth_path)
    meta = {"n_sources": n_sources, "seed": seed, "inject_hot": bool(inject_hot), "fast": fast,
            "sources": ids, "scales": [float(x) for x in scales], "cal": [os.path.basename(p) for p in cal_paths],
            "asn": os.path.basename(asn_path), "hot": len(truth)}
    with open(os.path.join(outdir, "realprogram.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    return {"cal": cal_paths, "asn": asn_path, "truth": truth_path, "sources": ids,
            "scales": meta["scales"], "hot": len(truth)}


def main(argv=None):
    p = argparse.ArgumentParser(prog="realprogram.py", description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("--nsources", "-n", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inject-hot", action="store_true")
    p.add_argument("--fast", choices=("auto", "yes", "no"), default="auto",
                   help="repeat the serialized slit (default: yes when N > 100)")
    a = p.parse_args(argv)
    fast = None if a.fast == "auto" else a.fast == "yes"
    out = build_mos_program(a.outdir, a.nsources, seed=a.seed, inject_hot=a.inject_hot, fast=fast)
    print(f"{a.outdir}: {len(out['cal'])} _cal files x {a.nsources} sources, {os.path.basename(out['asn'])}"
          + (f", {out['hot']} hot pixels ({out['truth']})" if a.inject_hot else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
