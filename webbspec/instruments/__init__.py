"""Instrument layers: what is specific to an instrument and mode (geometry, slit naming, which
reference types a step needs, how per-pixel coordinates come out of the reference files)."""
