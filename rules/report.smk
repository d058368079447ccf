# The report page (webbspec.report): per source the Level 3 spectrum (with the simulator's truth
# when there is one), the 2-D spectrum, the exposures' spectra, the outlier mask, and a table of
# the products with the context and reference files that made them.
#
# Not part of `all` (a run never waits for it); ask for it by name (targets before --config):
#   snakemake webbspec_report --cores 1 --config program=DIR        -> DIR/webbspec/report.html
#   snakemake webbspec_report --report report.zip --config program=DIR   Snakemake's report holding it
#   (webbspec run DIR webbspec_report --report report.zip --report-after-run: both, in DIR)
# Caption paths are relative to this file (Snakemake joins them to the including file's folder).

report: "../report/workflow.rst"


rule webbspec_report:
    input:
        spec2_targets(),
        spec3_targets(),
    output:
        report("webbspec/report.html", caption="../report/page.rst", category="webbspec"),
    log:
        "webbspec/logs/webbspec_report/report.log",
    params:
        py=PYTHON,
    conda:
        "../envs/webbspec.yaml"
    shell:
        "{params.py} -P -m webbspec report . --output {output:q} > {log:q} 2>&1"
