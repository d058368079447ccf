"""Run the official calwebb_spec3 (jwst package) offline on a spec3 association.

    python bench/official_spec3.py ASN OUTDIR

CRDS is not reachable here: step parameter files from CRDS are disabled
(STPIPE_DISABLE_CRDS_STEPPARS), CRDS_PATH points at a writable empty cache, the context name the
pipeline records is fixed, and every reference file type of every Stage 3 step is overridden
with "N/A" (extract_1d also apply_apcorr=False), so steps that need no reference data run with
their defaults. Used by the benchmarks and the official side-by-side tests only.
"""

import os
import sys
import tempfile


def offline():
    """Prepare this process for the official pipeline without CRDS; returns the step overrides."""
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "True")
    os.environ.setdefault("CRDS_PATH", os.path.join(tempfile.gettempdir(), "wsbench_crds_cache"))
    os.environ["CRDS_SERVER_URL"] = "https://127.0.0.1:9"   # unreachable: fail fast, never wait
    os.makedirs(os.environ["CRDS_PATH"], exist_ok=True)
    import stpipe.crds_client

    stpipe.crds_client.get_context_used = lambda observatory: "jwst_offline.pmap"
    from jwst.pipeline import Spec3Pipeline

    steps = {}
    for name, cls in Spec3Pipeline.step_defs.items():
        steps[name] = {f"override_{rt}": "N/A" for rt in getattr(cls, "reference_file_types", ())}
    steps["extract_1d"]["apply_apcorr"] = False
    return steps


def run(asn, outdir):
    steps = offline()
    from jwst.pipeline import Spec3Pipeline

    os.makedirs(outdir, exist_ok=True)
    Spec3Pipeline.call(asn, output_dir=outdir, save_results=True, steps=steps)


if __name__ == "__main__":
    run(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]))
