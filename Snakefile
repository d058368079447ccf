# webbspec: JWST spectroscopic Stage 2 + Stage 3 as a Snakemake workflow.
#
#   snakemake --cores N --config program=DIR        (or: webbspec run DIR --cores N)
#
# Runs inside the program directory DIR (inputs *_rate.fits, *_cal.fits, *_asn.json, refs/);
# every output is under DIR/webbspec/:
#   spec2/<exposure>/<exposure>_<step>.fits     one file per Stage 2 step (rules/spec2.smk)
#   spec2/<exposure>/<exposure>_{cal,s2d,x1d}.fits   Stage 2 products as a job writes them (staged)
#   spec2/<exposure>_{cal,s2d,x1d}.fits          Stage 2 products (hard links to the staged files)
#   spec3/<product>/exp_to_source/<exposure>/    per-source slices (rules/spec3.smk)
#   spec3/<product>/batches/<batch>.tsv          Stage 3 batch manifests (products they made)
#   spec3/<product, source filled>_{cal,crf,s2d,x1d}.fits   Stage 3 products (slit modes)
#   spec3/<exposure>_<asn_id>_crf.fits, spec3/<product>_<cube>_{s3d,x1d}.fits   Stage 3 products
#                                                (IFU modes: one cube per band, channel, grating or all)
#   logs/<rule>/<wildcards>.log
# Step parameters and workflow keys: config/config.yaml (checked by config/config.schema.yaml).
# A failed job never removes a product of an earlier run (webbspec.workflow.planning, .summary);
# profiles/default (read by Snakemake itself) sets --keep-going and --rerun-incomplete.

import os
import sys
import time

from snakemake.utils import min_version

from webbspec.workflow.planning import check_program_dir
from webbspec.workflow.summary import summary_lines as run_summary

RUN_START = time.time()

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


check_program_dir(config.get("program"))   # before workdir:, which would create a misspelt one


workdir: config["program"]


include: "rules/common.smk"
include: "rules/spec2.smk"
include: "rules/spec3.smk"
include: "rules/report.smk"


onsuccess:
    print("\n".join(run_summary(PROGRAM, RUN_START)), file=sys.stderr)


onerror:
    print("\n".join(run_summary(PROGRAM, RUN_START)), file=sys.stderr)


rule all:
    input:
        spec2_targets(),
        spec3_targets(),
    default_target: True
