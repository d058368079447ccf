"""Layer 1, input/output: reading and writing products (ours and the official layouts), associations,
the reference store, provenance keywords. Imports nothing above it (algorithms, instruments, steps,
pipeline, workflow)."""
