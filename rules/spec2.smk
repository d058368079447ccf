# Stage 2 (calwebb_spec2). workflow.spec2_jobs: step (default) -> one file-to-file rule per step,
# named by the official alias, applied per exposure; exposure -> one job per exposure runs the
# same steps in one process and writes the same files (rules spec2_chain_<k>, one per distinct
# chain: a rule's outputs are fixed), skipping the steps that are up to date (webbspec.pipeline.stage2chain). Each exposure's chain comes from webbspec.modes.MODES[mode].spec2 (minus steps it
# has no members for, see webbspec.pipeline.program.spec2_chain): the rule of step k reads step k-1's output.
# Reference files are inputs and step parameters are params, so a new reference context or a
# changed parameter re-runs exactly the affected steps and everything downstream.

for _step in sorted({s for chain in CHAINS.values() for s in chain} if not CHAIN_RULES else ()):

    rule:
        name:
            _step
        input:
            unpack(spec2_step_input(_step)),
        output:
            f"webbspec/spec2/{{exposure}}/{{exposure}}_{_step}.fits",
        message:
            "{rule} {wildcards.exposure}"
        log:
            f"webbspec/logs/{_step}/{{exposure}}.log",
        params:
            py=PYTHON,
            step=_step,
            params=spec2_step_params(_step),
            refs=spec2_step_refs(_step),
            extra=spec2_step_extra(_step),
        conda:
            "../envs/webbspec.yaml"
        shell:
            "{params.py} -P -m webbspec.workflow.rules_entry --log {log:q} step {params.step} {input.data:q} {output:q}"
            " --refs {params.refs:q} --params {params.params:q} --extra {params.extra:q}"


for _rule, _chain in sorted({(r, tuple(c)) for r, c in CHAIN_RULES.values()}):
    _names = sorted(e for e, (r, _) in CHAIN_RULES.items() if r == _rule)
    _ints = PROGRAM.exposures[_names[0]].ints
    _kinds = wsprogram.spec2_published(list(_chain), _ints, config["workflow"]["save_bsub"])

    rule:
        name:
            _rule
        input:
            unpack(spec2_chain_input),
        # the step files are written too, but are not outputs: Snakemake deletes a job's outputs
        # before running it, and the job skips the steps whose file records the same signature
        output:
            [spec2_staged("{exposure}", k) for k in _kinds],
        message:
            "Stage 2 of {wildcards.exposure} ({rule})"
        log:
            f"webbspec/logs/{_rule}/{{exposure}}.log",
        wildcard_constraints:
            exposure="|".join(re.escape(n) for n in _names),
        params:
            py=PYTHON,
            spec=spec2_chain_spec,
            malloc=chain_malloc_env,
        conda:
            "../envs/webbspec.yaml"
        shell:
            "{params.malloc} {params.py} -P -m webbspec.workflow.rules_entry --log {log:q} chain {params.spec:q}"


if not CHAIN_RULES:  # the per-exposure rules write the products themselves

    rule spec2_product:
        """Write a step's output as a Stage 2 product (_cal, _s2d, _s3d, _x1d, _bsub), staged."""
        input:
            spec2_product_input,
        output:
            spec2_staged("{exposure}", "{kind}"),
        message:
            "product {wildcards.exposure}_{wildcards.kind}"
        log:
            "webbspec/logs/spec2_product/{exposure}_{kind}.log",
        params:
            py=PYTHON,
        conda:
            "../envs/webbspec.yaml"
        shell:
            "{params.py} -P -m webbspec.workflow.rules_entry --log {log:q} product {input:q} {output:q}"


# A job that writes products writes them under spec2/<exposure>/ (staged); this rule then
# hard-links each to its public name (else copies), atomically through a `.part` file. A shell
# command, not a `run:` block: Snakemake starts a Python process of its own for every `run:` job
# (2.2 CPU s each, a fifth of the 1000-source MOS run's CPU). Snakemake deletes a job's outputs before it runs and after it
# fails: only staged files are such outputs, so a failed re-run leaves the public products of the
# last good run in place (stale, and named in the run summary) instead of removing them.
rule spec2_publish:
    input:
        spec2_staged("{exposure}", "{kind}"),
    output:
        "webbspec/spec2/{exposure}_{kind}.fits",
    message:
        "publish {output}"
    log:
        "webbspec/logs/spec2_publish/{exposure}_{kind}.log",
    conda:
        "../envs/webbspec.yaml"
    shell:
        "(ln -f {input:q} {output:q}.part 2>/dev/null || cp {input:q} {output:q}.part)"
        " && mv -f {output:q}.part {output:q} && echo {input:q} '->' {output:q} > {log:q}"
