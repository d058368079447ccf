# Stage 3 (calwebb_spec3), per spec3 association product:
#   exp_to_source (per exposure, in workflow.split_mb-sized parts, each job workflow.split_workers
#       processes sharing one deserialized gwcs): split each _cal into per-source slices carrying
#       per-pixel coordinates
#       (webbspec/spec3/<product>/exp_to_source/<exposure>/<source>.fits + sources.<k>-<n>.tsv);
#   spec3_sources (checkpoint, per product): one table of (source, exposure, slice) rows; a
#       checkpoint over all exposures at once, so every exp_to_source job is planned up front;
#   spec3_batch (per batch): every Stage 3 step (master_background, outlier_detection,
#       resample_spec, extract_1d, ...) for the sources hashed into that batch, writing each
#       source's Level 3 products and a manifest webbspec/spec3/<product>/batches/<batch>.tsv.
# The number of batches (config workflow.batches) is fixed, so the targets are known before
# exp_to_source runs; a source's batch is a stable hash of its key (webbspec.pipeline.program.batch_of).


rule exp_to_source:
    input:
        cal=spec3_cal,
    output:
        "webbspec/spec3/{product}/exp_to_source/{exposure}/sources.{part}-{nparts}.tsv",
    message:
        "exp_to_source {wildcards.exposure} (part {wildcards.part} of {wildcards.nparts}) for {wildcards.product}"
    log:
        "webbspec/logs/exp_to_source/{product}/{exposure}.{part}-{nparts}.log",
    threads: config["workflow"]["split_workers"]
    params:
        py=PYTHON,
    conda:
        "../envs/webbspec.yaml"
    shell:
        "{params.py} -P -m webbspec.workflow.rules_entry --log {log:q} exp-to-source {input.cal:q} {output:q}"
        " --part {wildcards.part} --nparts {wildcards.nparts} --workers {threads}"


checkpoint spec3_sources:
    input:
        spec3_exposure_tables,
    output:
        "webbspec/spec3/{product}/sources.tsv",
    message:
        "source table of {wildcards.product}"
    log:
        "webbspec/logs/spec3_sources/{product}.log",
    params:
        py=PYTHON,
    conda:
        "../envs/webbspec.yaml"
    shell:
        "{params.py} -P -m webbspec.workflow.rules_entry --log {log:q} gather-sources {output:q} {input:q}"


rule spec3_batch:
    input:
        unpack(spec3_batch_input),
    output:
        "webbspec/spec3/{product}/batches/{batch}.tsv",
    message:
        "Stage 3 batch {wildcards.batch} of {wildcards.product}"
    log:
        "webbspec/logs/spec3_batch/{product}/{batch}.log",
    params:
        py=PYTHON,
        name=spec3_name,
        mode=spec3_mode,
        nbatches=NBATCHES,
        table="webbspec/spec3/{product}/sources.tsv",
        backgrounds=spec3_backgrounds,
        params=spec3_batch_params,
        refs=spec3_batch_refs,
    conda:
        "../envs/webbspec.yaml"
    shell:
        "{params.py} -P -m webbspec.workflow.rules_entry --log {log:q} spec3-batch {output:q}"
        " --product {params.name:q} --mode {params.mode} --batch {wildcards.batch}"
        " --nbatches {params.nbatches} --outdir webbspec/spec3"
        " --sources {params.table:q} --backgrounds {params.backgrounds:q}"
        " --refs {params.refs:q} --params {params.params:q}"
