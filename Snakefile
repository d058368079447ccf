# webbspec: JWST spectroscopic Stage 2 + Stage 3 as a Snakemake workflow.
#
#   snakemake --cores N --config program=DIR        (or: webbspec run DIR --cores N)
#
# Runs inside the program directory DIR (inputs *_rate.fits, *_cal.fits, *_asn.json, refs/);
# every output is under DIR/webbspec/:
#   spec2/<exposure>/<exposure>_<step>.fits     one file per Stage 2 step (rules/spec2.smk)
#   spec2/<exposure>_{cal,s2d,x1d}.fits          Stage 2 products
#   spec3/<product>/exp_to_source/<exposure>/    per-source slices (rules/spec3.smk)
#   spec3/<product>/batches/<batch>.tsv          Stage 3 batch manifests (products they made)
#   spec3/<product, source filled>_{cal,crf,s2d,x1d}.fits   Stage 3 products
#   logs/<rule>/<wildcards>.log
# Step parameters and workflow keys: config/config.yaml (checked by config/config.schema.yaml).

import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


workdir: config["program"]


include: "rules/common.smk"
include: "rules/spec2.smk"
include: "rules/spec3.smk"


rule all:
    input:
        spec2_targets(),
        spec3_targets(),
    default_target: True
