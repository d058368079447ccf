"""Run the official `jwst` pipeline offline, in its own process (tests and benchmarks only).

CRDS is unreachable here: step parameters are not fetched (STPIPE_DISABLE_CRDS_STEPPARS), the
context name is fixed, and every reference type of every step is overridden with "N/A", so only
steps that need no reference data do work (see ../shared/docs/jwst-products.md). Without an
EXTRACT1D reference the official extract_1d uses the whole cross-dispersion height of the s2d and
subtracts no background; the aperture correction is turned off.

    python official_jwst.py spec3 ASN OUTDIR         calwebb_spec3 on a spec3 association
    python official_jwst.py extract_1d S2D OUT       Extract1dStep on one s2d
    python official_jwst.py combine_1d X1D OUT       Combine1dStep on one x1d
    python official_jwst.py on_products S2D X1D OUTDIR   both (one process, one import of jwst):
                                                  OUTDIR/extract_1d_x1d.fits, combine_1d_c1d.fits
    python official_jwst.py spec2 RATE|ASN STORE OUTDIR  calwebb_spec2 on a _rate or spec2 asn, every reference
                                                  type of every step selected from our reference
                                                  store (webbspec.io.refs.bestrefs on the rate's
                                                  header, "N/A" where it has none) as override_<reftype>

A separate process keeps the monkeypatching and the environment out of the test process.
"""

import os
import sys
import tempfile
import time


def offline():
    os.environ.setdefault("CRDS_PATH", tempfile.mkdtemp(prefix="crds_"))
    os.environ["CRDS_SERVER_URL"] = "https://127.0.0.1:9"
    os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] = "True"
    import stpipe.crds_client as client

    client.get_context_used = lambda observatory: "jwst_offline.pmap"


def no_references(step):
    for reftype in getattr(step, "reference_file_types", ()):
        setattr(step, f"override_{reftype}", "N/A")
    return step


def spec3(asn, outdir):
    from jwst.pipeline import Spec3Pipeline

    pipe = Spec3Pipeline()
    for name in pipe.step_defs:
        no_references(getattr(pipe, name))
    pipe.extract_1d.apply_apcorr = False
    pipe.output_dir = outdir
    pipe.save_results = True
    pipe.run(asn)


def extract_1d(s2d, out):
    from jwst.extract_1d import Extract1dStep
    from stdatamodels.jwst import datamodels as dm

    step = no_references(Extract1dStep())
    step.apply_apcorr = False
    with dm.open(s2d) as model:
        step.run(model).save(out)


def combine_1d(x1d, out):
    from jwst.combine_1d import Combine1dStep
    from stdatamodels.jwst import datamodels as dm

    with dm.open(x1d) as model:
        no_references(Combine1dStep()).run(model).save(out)


def on_products(s2d, x1d, outdir):
    extract_1d(s2d, os.path.join(outdir, "extract_1d_x1d.fits"))
    combine_1d(x1d, os.path.join(outdir, "combine_1d_c1d.fits"))


def our_selection(rate, store, reftypes):
    """{reftype: path or "N/A"}: the store's pick for the rate's header (our CRDS mappings)."""
    from astropy.io import fits

    from webbspec.io.refs import bestrefs

    return bestrefs(fits.getheader(rate), tuple(reftypes), store)


def with_references(step, refs):
    for reftype in getattr(step, "reference_file_types", ()):
        setattr(step, f"override_{reftype}", refs.get(reftype, "N/A"))
    return step


def _with_asdf(path, outdir):
    """A copy of a `_rate` in OUTDIR that the official pipeline reads from a path: our simulated
    `_rate` is plain FITS, and stpipe reads CRDS parameters from the ASDF extension."""
    from stdatamodels.jwst import datamodels as dm

    dst = os.path.join(outdir, os.path.basename(path))
    with dm.ImageModel(path) as m:
        m.save(dst)
    return dst


def _copy_msa_file(rate, indir, outdir):
    """MOS: the MSA metadata file the `_rate` names (MSAMETFL) copied from INDIR to OUTDIR, where
    the copied `_rate` is (assign_wcs resolves it against its input's directory)."""
    import shutil

    from astropy.io import fits

    name = fits.getheader(rate).get("MSAMETFL")
    if name and os.path.exists(os.path.join(indir, name)):
        shutil.copy(os.path.join(indir, name), os.path.join(outdir, name))


def spec2(inp, store, outdir):
    """The official Spec2Pipeline with our reference files, on a `_rate` or a spec2 association
    (its members copied into OUTDIR with an ASDF extension); writes _cal, _s2d, _x1d (MOS: and the
    master background _masterbg1d, _masterbg2d) to OUTDIR and OUTDIR/official_refs.json (what each
    reftype was given)."""
    import json

    from jwst.pipeline import Spec2Pipeline

    if inp.endswith(".json"):
        with open(inp) as f:
            asn = json.load(f)
        here = os.path.dirname(os.path.abspath(inp))
        for prod in asn["products"]:
            for m in prod["members"]:
                m["expname"] = os.path.basename(_with_asdf(os.path.join(here, m["expname"]), outdir))
        science = asn["products"][0]["members"][0]["expname"]
        run_on = os.path.join(outdir, os.path.basename(inp))
        with open(run_on, "w") as f:
            json.dump(asn, f)
        rate = os.path.join(outdir, science)
    else:
        rate = run_on = _with_asdf(inp, outdir)
    pipe = Spec2Pipeline()
    types = {rt for name in pipe.step_defs for rt in getattr(getattr(pipe, name), "reference_file_types", ())}
    refs = our_selection(rate, store, sorted(types))
    for name in pipe.step_defs:
        with_references(getattr(pipe, name), refs)
        # MOS: master_background_mos does not hand the overrides to its inner steps (all-NaN
        # slitlets otherwise; ../shared/docs/official-refs.md), so they get them here too
        for inner in getattr(getattr(pipe, name), "step_defs", ()):
            with_references(getattr(getattr(pipe, name), inner), refs)
    _copy_msa_file(rate, os.path.dirname(os.path.abspath(inp)), outdir)
    pipe.master_background_mos.save_background = True       # MOS: <name>_masterbg1d.fits
    pipe.master_background_mos.output_dir = outdir
    pipe.output_dir = outdir
    pipe.save_results = True
    pipe.resample_spec.save_results = True
    pipe.extract_1d.save_results = True
    t0 = time.perf_counter()
    pipe.run(run_on)
    print(f"official spec2 pipeline.run: {time.perf_counter() - t0:.2f} s")
    with open(os.path.join(outdir, "official_refs.json"), "w") as f:
        json.dump(refs, f, indent=1, sort_keys=True)


def main(argv):
    what, *args = argv
    offline()
    t0 = time.perf_counter()
    {"spec3": spec3, "extract_1d": extract_1d, "combine_1d": combine_1d,
     "on_products": on_products, "spec2": spec2}[what](*args)
    print(f"official {what}: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
