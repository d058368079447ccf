"""Layer 5, the Snakemake glue: the entry point the rules call (rules_entry). The Snakefile, rules/,
config/ and envs/ beside this file are links to the repository's (package data in a wheel)."""
