"""Test-only stand-ins for the science modules, installed in every Python process of a workflow
test through PYTHONPATH: the workflow machinery (rules, batching, re-runs) is tested without
the science. Each fake step records itself in the primary header; refs are looked up as
``<store>/<reftype>.fits`` when present; exp_to_source makes ``FAKE_NSOURCES`` sources.
"""

import os
import sys
import types

from webbspec.modes import SPEC2_STEPS, SPEC3_STEPS

REFTYPES = {"flat_field": ("flat",), "photom": ("photom",), "extract_1d": ("extract1d", "apcorr")}


def _make_step(alias):
    mod = types.ModuleType(f"webbspec.steps.{alias}")
    mod.REFTYPES = REFTYPES.get(alias, ())

    def run(model, refs, *, backgrounds=None, **params):
        from webbspec.errors import InputError

        if model.primary.get("FAILME") == alias:
            raise InputError(model.path, f"fake failure in {alias}")
        out = model.copy()
        out.primary[f"S_{alias[:6].upper()}"] = "COMPLETE"
        out.primary[f"N_{alias[:6].upper()}"] = len(backgrounds or [])
        for rt, path in refs.items():
            out.primary[f"R_{rt[:6].upper()}"] = os.path.basename(path)
        return out

    mod.run = run
    return mod


for _alias in dict.fromkeys(SPEC2_STEPS + SPEC3_STEPS):
    sys.modules[f"webbspec.steps.{_alias}"] = _make_step(_alias)


refs = types.ModuleType("webbspec.io.refs")


def bestrefs(header, reftypes, store_dir, context=None):
    out = {}
    for rt in reftypes:
        p = os.path.join(store_dir, f"{rt}.fits")
        out[rt] = p if os.path.exists(p) else "N/A"
    return out


def check_selection(refs_, header):
    """The stand-in store never defers a selection (no mapping names a missing file)."""


refs.bestrefs = bestrefs
refs.check_selection = check_selection
sys.modules["webbspec.io.refs"] = refs

e2s = types.ModuleType("webbspec.pipeline.exp_to_source")


def split_exposure(cal_path, outdir, defer_errors=False, part=(0, 1), table=None, workers=1):
    n = int(os.environ.get("FAKE_NSOURCES", "5"))
    os.makedirs(outdir, exist_ok=True)
    pairs = []
    for i in range(n):
        key = f"s{i:09d}"
        p = os.path.join(outdir, f"{key}.fits")
        with open(p, "w") as f:
            f.write(cal_path)
        pairs.append((key, p))
    with open(table or os.path.join(outdir, "sources.tsv"), "w") as f:
        f.write("source\tpath\n" + "".join(f"{k}\t{os.path.basename(p)}\n" for k, p in pairs))
    return pairs


e2s.split_exposure = split_exposure
sys.modules["webbspec.pipeline.exp_to_source"] = e2s

st3 = types.ModuleType("webbspec.pipeline.stage3")


def run_batch(*, sources, outdir, product, mode, params, refs, backgrounds, context):
    out = {}
    for key, slices in sources.items():
        path = os.path.join(outdir, product.replace("{source_id}", key) + "_x1d.fits")
        with open(path, "w") as f:
            f.write("\n".join(slices))
        out[key] = [path]
    return out


def write_manifest(rows, path):
    with open(path, "w") as f:
        f.write("source\tsource_id\tstatus\tproduct\tmessage\n")
        for r in rows:
            for p in (r["products"] or [""]):
                f.write(f"{r['source']}\t{r['source_id']}\t{r['status']}\t{p}\t{r['message']}\n")
    return path


st3.run_batch = run_batch
st3.write_manifest = write_manifest
sys.modules["webbspec.pipeline.stage3"] = st3


# Stage 2 products: the fake steps' models are not shaped as official products, so publish
# them as they are (the real writer, webbspec.io.officialio, is tested on real data elsewhere).
oio = types.ModuleType("webbspec.io.officialio")
oio.KINDS = ("cal", "crf", "s2d", "x1d", "c1d", "s3d")


def _write_as_is(model, path, kind, **kw):
    from webbspec.io import datamodels

    return datamodels.write(model, path)


oio.write = _write_as_is
sys.modules["webbspec.io.officialio"] = oio
