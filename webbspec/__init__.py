"""webbspec: the JWST spectroscopic Stage 2 and Stage 3 pipelines as a Snakemake workflow."""

__version__ = "0.1.0"
