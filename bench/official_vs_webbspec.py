"""Stage 3 of the real-slit MOS program: webbspec (snakemake, 2 cores) vs the official calwebb_spec3.

    python bench/official_vs_webbspec.py [N ...] [--workdir DIR] [--keep] [--only webbspec|official]

For each N (default 10 100): build the program (webbspec.realprogram: 3 real CEERS PRISM nods,
each a `_cal` MultiSlitModel of N slits with their own source ids, flux scales and gwcs, and a
spec3 association), then run, one after the other on the same inputs,
  - webbspec: ``webbspec run DIR --cores 2`` (Snakemake; products in DIR/webbspec/spec3),
  - official: calwebb_spec3 of jwst offline (bench/official_spec3.py; products in DIR/official),
measuring wall, CPU (the process and all its waited-for descendants), peak RSS (largest single
process, and the summed process tree sampled every 0.2 s), seconds per source and product bytes per
source; for webbspec also the split into science and overhead (bench/_hook). Products are
compared per source: median over the central 80% of the wavelength range of our x1d FLUX over the
official FLUX interpolated to our wavelengths. Writes bench/results/official_vs_webbspec.{json,md}
(or _N<n>.{json,md} when run for other N than the defaults) and prints them.
"""

import argparse
import glob
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

from realprogram import build_mos_program  # noqa: E402

KINDS = ("cal", "crf", "s2d", "x1d")


def _sizes(directory, n):
    out = {k: C.dir_size(directory, f"*_{k}.fits") / n for k in KINDS}
    out["total"] = sum(out.values())
    return out


def _x1d(path, column):
    from astropy.io import fits

    with fits.open(path) as h:
        t = h["EXTRACT1D"].data
        unit = h["EXTRACT1D"].columns[column].unit
        return np.asarray(t["WAVELENGTH"], float), np.asarray(t[column], float), unit


def compare_x1d(ours_dir, off_dir, column="FLUX"):
    """{source_id: median ratio ours/official of ``column``, over the central 80% of the common
    wavelength range, the official spectrum interpolated to our wavelengths}, and the units."""
    out, units = {}, set()
    for p in sorted(glob.glob(os.path.join(ours_dir, "*_x1d.fits"))):
        q = os.path.join(off_dir, os.path.basename(p))
        if not os.path.exists(q):
            continue
        sid = os.path.basename(p).split("_")[1]
        wa, fa, ua = _x1d(p, column)
        wb, fb, ub = _x1d(q, column)
        units.add((str(ua), str(ub)))
        good_b = np.isfinite(wb) & np.isfinite(fb)
        if good_b.sum() < 10:
            continue
        order = np.argsort(wb[good_b])
        fb_i = np.interp(wa, wb[good_b][order], fb[good_b][order], left=np.nan, right=np.nan)
        ok = np.isfinite(wa) & np.isfinite(fa) & np.isfinite(fb_i) & (fb_i != 0)
        if ok.sum() < 10:
            continue
        lo, hi = np.percentile(wa[ok], [10, 90])
        sel = ok & (wa >= lo) & (wa <= hi)
        out[sid] = float(np.median(fa[sel] / fb_i[sel]))
    return out, sorted(units)


def add_comparison(res, root):
    for column in ("FLUX", "SURF_BRIGHT"):
        ratios, units = compare_x1d(os.path.join(root, "webbspec", "spec3"), os.path.join(root, "official"),
                                    column)
        entry = {"units_ours_official": units, "per_source": ratios}
        if ratios:
            v = np.array(list(ratios.values()))
            entry.update({"sources": len(v), "median": float(np.median(v)), "min": float(v.min()),
                          "max": float(v.max())})
        res[f"x1d_{column.lower()}_ratio_ours_over_official"] = entry


def bench_one(n, workdir, only=None, seed=0):
    root = os.path.join(workdir, f"official_vs_webbspec_N{n}")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    t0 = time.time()
    prog = build_mos_program(root, n, seed=seed)
    build_s = time.time() - t0
    res = {"n_sources": n, "n_exposures": 3, "program_build_s": build_s,
           "input_bytes": C.dir_size(root, "*_cal.fits")}
    logs = os.path.join(C.RESULTS, "logs")
    os.makedirs(logs, exist_ok=True)
    if only in (None, "webbspec"):
        timings = os.path.join(root, "timings.jsonl")
        m = C.run_measured([C.exe("webbspec"), "run", root, "--cores", "2"], cwd=root,
                           log=os.path.join(logs, f"webbspec_N{n}.log"), timings=timings)
        m.update(C.overhead(m, C.read_timings(timings)))
        spec3 = os.path.join(root, "webbspec", "spec3")
        m["products"] = len(glob.glob(os.path.join(spec3, "*.fits")))
        m["product_bytes_per_source"] = _sizes(spec3, n) if m["products"] else None
        m["intermediate_bytes_per_source"] = C.dir_size(os.path.join(spec3), "*.fits") / n - \
            (m["product_bytes_per_source"] or {}).get("total", 0)
        m["s_per_source"] = m["wall_s"] / n
        res["webbspec"] = m
    if only in (None, "official"):
        off = os.path.join(root, "official")
        m = C.run_measured([sys.executable, os.path.join(C.HERE, "official_spec3.py"), prog["asn"], off],
                           cwd=root, log=os.path.join(logs, f"official_N{n}.log"))
        m["products"] = len(glob.glob(os.path.join(off, "*.fits")))
        m["product_bytes_per_source"] = _sizes(off, n) if m["products"] else None
        m["s_per_source"] = m["wall_s"] / n
        res["official"] = m
    if "webbspec" in res and "official" in res:
        w, o = res["webbspec"], res["official"]
        res["speedup_wall"] = o["wall_s"] / w["wall_s"]
        res["speedup_cpu"] = o["cpu_s"] / w["cpu_s"]
        res["memory_ratio_peak_tree"] = w["peak_rss_tree_mb"] / o["peak_rss_tree_mb"]
        add_comparison(res, root)
    return res


def _fmt(x, nd=1):
    return "-" if x is None else f"{x:.{nd}f}"


def markdown(results, machine):
    lines = ["# Stage 3 of the real-slit MOS program: webbspec vs the official calwebb_spec3", "",
             f"3 real CEERS PRISM nods x N slits (webbspec.realprogram), one run after the other on "
             f"the same inputs; {machine['cpus']} cores, host load (1 min) at start "
             f"{machine['host_load_1m_at_start']:.1f} (other jobs share this machine: wall times are "
             "inflated, CPU times less so).", "",
             "| N | pipeline | wall s | CPU s | s/source (wall) | peak RSS largest process MB | "
             "peak RSS all processes MB | peak PSS all processes MB | products MB/source | "
             "overhead share (CPU / wall) | load before/after |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for name in ("webbspec", "official"):
            m = r.get(name)
            if not m:
                continue
            size = (m.get("product_bytes_per_source") or {}).get("total")
            ov = f"{_fmt(100 * m['overhead_share_cpu'], 0)}% / {_fmt(100 * m['overhead_share_wall'], 0)}%" \
                if m.get("overhead_share_cpu") is not None else "-"
            rc = "" if m["rc"] == 0 else f" (rc {m['rc']})"
            lines.append(f"| {r['n_sources']} | {name}{rc} | "
                         f"{_fmt(m['wall_s'])} | {_fmt(m['cpu_s'])} | {_fmt(m['s_per_source'], 2)} | "
                         f"{_fmt(m['peak_rss_max_process_mb'], 0)} | {_fmt(m['peak_rss_tree_mb'], 0)} | "
                         f"{_fmt(m.get('peak_pss_tree_mb'), 0)} | {_fmt(None if size is None else size / 2 ** 20, 2)} | {ov} | "
                         f"{m['host_load_1m_before']:.1f}/{m['host_load_1m_after']:.1f} |")
    lines += ["", "| N | speedup wall | speedup CPU | peak memory ours/official: largest process | "
              "all processes, RSS | ours summed PSS / official RSS | "
              "x1d FLUX ours/official | x1d SURF_BRIGHT ours/official |", "|---|---|---|---|---|---|---|---|"]

    def ratio(e):
        if not e or "median" not in e:
            return "-"
        u = "; ".join(f"{a} / {b}" for a, b in e["units_ours_official"])
        return f"{e['median']:.4g} [{e['min']:.4g}, {e['max']:.4g}] ({e['sources']} sources; units {u})"

    for r in results:
        if "speedup_wall" not in r:
            continue
        w, o = r["webbspec"], r["official"]
        lines.append(f"| {r['n_sources']} | {r['speedup_wall']:.1f}x | {r['speedup_cpu']:.1f}x | "
                     f"{w['peak_rss_max_process_mb'] / o['peak_rss_max_process_mb']:.2f} | "
                     f"{r['memory_ratio_peak_tree']:.2f} | "
                     f"{_fmt(w.get('peak_pss_tree_mb', float('nan')) / o['peak_rss_max_process_mb'], 2)} | "
                     f"{ratio(r.get('x1d_flux_ratio_ours_over_official'))} | "
                     f"{ratio(r.get('x1d_surf_bright_ratio_ours_over_official'))} |")
    lines += ["", "Product sizes per source (bytes):", "",
              "| N | pipeline | " + " | ".join(KINDS) + " |", "|---|---|" + "---|" * len(KINDS)]
    for r in results:
        for name in ("webbspec", "official"):
            sz = (r.get(name) or {}).get("product_bytes_per_source")
            if sz:
                lines.append(f"| {r['n_sources']} | {name} | " + " | ".join(f"{sz[k]:.0f}" for k in KINDS) + " |")
    lines += ["", "Ratios: median over sources of the per-source median ratio over the central 80% of "
              "the wavelength range (min, max over sources). The official extract_1d runs without an "
              "EXTRACT1D reference file (whole s2d height) and, on these inputs, labels FLUX DN/s: "
              "compare SURF_BRIGHT (MJy/sr in both). Memory: the official pipeline is one process "
              "(its peak RSS, from the kernel); ours is Snakemake and its jobs, summed over the process "
              "tree every 0.2 s (PSS counts a page shared by n processes as 1/n in each).", ""]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("n", type=int, nargs="*", default=[10, 100])
    p.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "wsbench"))
    p.add_argument("--only", choices=("webbspec", "official"), default=None)
    p.add_argument("--keep", action="store_true", help="keep the program directories")
    p.add_argument("--name", default=None, help="results file stem (default official_vs_webbspec)")
    p.add_argument("--recompare", action="store_true",
                   help="only redo the product comparison of the results file from kept directories")
    a = p.parse_args()
    name = a.name or "official_vs_webbspec"
    if a.recompare:
        import json

        with open(os.path.join(C.RESULTS, f"{name}.json")) as f:
            data = json.load(f)
        for r in data["results"]:
            r.pop("x1d_flux_ratio_ours_over_official", None)
            r.pop("x1d_flux_ratio_summary", None)
            add_comparison(r, os.path.join(a.workdir, f"official_vs_webbspec_N{r['n_sources']}"))
        C.write_results(name, data, markdown(data["results"], data["machine"]))
        return
    machine = C.machine()
    results = []
    for n in a.n:
        r = bench_one(n, a.workdir, a.only)
        results.append(r)
        C.write_results(name, {"machine": machine, "results": results}, markdown(results, machine))
        if not a.keep:
            shutil.rmtree(os.path.join(a.workdir, f"official_vs_webbspec_N{n}"), ignore_errors=True)


if __name__ == "__main__":
    main()
