"""Benchmarks run by hand; they print figures (see the READMEs capacity section)."""
