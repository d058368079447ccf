# Stage 3 (calwebb_spec3), per spec3 association product:
#   exp_to_source (per exposure, in workflow.split_mb-sized parts; for a delivered _cal each job
#       workflow.split_workers processes sharing one deserialized gwcs): split each _cal into per-source slices carrying
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
    threads: exp_to_source_threads
    params:
        py=PYTHON,
        malloc=MALLOC_ENV,
    conda:
        "../envs/webbspec.yaml"
    shell:
        "{params.malloc} {params.py} -P -m webbspec.workflow.rules_entry --log {log:q} exp-to-source {input.cal:q} {output:q}"
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
        malloc=MALLOC_ENV,
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
        "{params.malloc} {params.py} -P -m webbspec.workflow.rules_entry --log {log:q} spec3-batch {output:q}"
        " --product {params.name:q} --mode {params.mode} --batch {wildcards.batch}"
        " --nbatches {params.nbatches} --outdir webbspec/spec3"
        " --sources {params.table:q} --backgrounds {params.backgrounds:q}"
        " --refs {params.refs:q} --params {params.params:q}"


# Cube products (Mode.stage3_kind "cubes": NIRSpec IFU, MIRI MRS; webbspec.pipeline.stage3_cubes).
# A product's exposures are processed together, not per source, in three kinds of job:
#   spec3_cube_prep_<n> (per product: its exposures are its outputs, so one rule each): master_background,
#       mrs_imatch (MRS), outlier_detection -> one _crf per science exposure (staged under
#       webbspec/spec3/<product>/crf/);
#   spec3_cube (per cube: band, channel, grating or multi as cube_build's output_type groups them):
#       cube_build over the _crf of the exposures holding the cube's bands -> staged _s3d;
#   spec3_cube_x1d (per cube): extract_1d -> staged _x1d.
# One job per cube, not per product: cubes build side by side (MRS: four channels of a band on two
# cores), a cubepar or cube_build change re-runs only the cubes, an extract_1d change only the
# spectra, and a cube that cannot be made (a band without valid data, a cubepar without the band)
# fails alone with one line naming the file and band while the other cubes are made (--keep-going).
# The cubes are known when the run is planned (webbspec.pipeline.stage3_cubes.program_cube_plans: the members'
# CHANNEL / BAND or GRATING / FILTER headers and cube_build's parameters). Staged outputs are
# linked to their public names by spec3_cube_publish: a failed re-run keeps the last good products.

for _key, _rule in wsprogram.cube_prep_rules(CUBE_PLANS).items():
    _prod = PROGRAM.products[_key]

    rule:
        name:
            _rule
        input:
            cals=[_prod.cal[e] for e in _prod.science],
            backgrounds=_prod.backgrounds,
        output:
            [cube_crf_staged(_key, e) for e in _prod.science],
        message:
            f"Stage 3 outlier detection (and backgrounds) of {_prod.name}"
        log:
            f"webbspec/logs/spec3_cube_prep/{_key}.log",
        params:
            py=PYTHON,
            mode=_prod.mode,
            params=cube_prep_params(_key),
        conda:
            "../envs/webbspec.yaml"
        shell:
            "{params.py} -P -m webbspec.workflow.rules_entry --log {log:q} spec3-cubes prep"
            " --inputs {input.cals:q} --outputs {output:q} --backgrounds {input.backgrounds:q}"
            " --mode {params.mode} --params {params.params:q}"


rule spec3_cube:
    input:
        unpack(cube_build_input),
    output:
        "webbspec/spec3/{product}/cubes/{cube}_s3d.fits",
    message:
        "cube_build {wildcards.cube} of {wildcards.product}"
    log:
        "webbspec/logs/spec3_cube/{product}/{cube}.log",
    params:
        py=PYTHON,
        spec=cube_build_spec,
    conda:
        "../envs/webbspec.yaml"
    shell:
        "{params.py} -P -m webbspec.workflow.rules_entry --log {log:q} spec3-cubes cube"
        " --inputs {input.crfs:q} --outputs {output:q} --spec {params.spec:q}"


rule spec3_cube_x1d:
    input:
        unpack(cube_x1d_input),
    output:
        "webbspec/spec3/{product}/cubes/{cube}_x1d.fits",
    message:
        "extract_1d {wildcards.cube} of {wildcards.product}"
    log:
        "webbspec/logs/spec3_cube_x1d/{product}/{cube}.log",
    params:
        py=PYTHON,
        spec=cube_x1d_spec,
    conda:
        "../envs/webbspec.yaml"
    shell:
        "{params.py} -P -m webbspec.workflow.rules_entry --log {log:q} spec3-cubes extract"
        " --inputs {input.s3d:q} --outputs {output:q} --spec {params.spec:q}"


if CUBE_PUBLIC:

    rule spec3_cube_publish:
        input:
            lambda wildcards: CUBE_PUBLIC[f"webbspec/spec3/{wildcards.cubefile}"],
        output:
            "webbspec/spec3/{cubefile}",
        message:
            "publish {output}"
        log:
            "webbspec/logs/spec3_cube_publish/{cubefile}.log",
        wildcard_constraints:
            cubefile="|".join(re.escape(p.split("/", 2)[2]) for p in CUBE_PUBLIC),
        conda:
            "../envs/webbspec.yaml"
        # a shell command as spec2_publish (a `run:` job costs a Python process of Snakemake's own)
        shell:
            "(ln -f {input:q} {output:q}.part 2>/dev/null || cp {input:q} {output:q}.part)"
            " && mv -f {output:q}.part {output:q} && echo {input:q} '->' {output:q} > {log:q}"
