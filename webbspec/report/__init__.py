"""The report of a program directory: what the workflow made, per source, on one HTML page.

``write_report(DIR)`` writes ``DIR/webbspec/report.html`` (``webbspec report DIR``; the Snakemake
rule ``webbspec_report`` in rules/report.smk makes the same page). Modules: ``collect`` finds the
products, ``readers`` reads their arrays, ``plots`` draws them, ``page`` writes the HTML.
"""

from .page import default_output, render, write_report

__all__ = ["write_report", "render", "default_output"]
