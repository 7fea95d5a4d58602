"""Benchmarks: scripts that print figures and never assert timings (see benchmarks/README.md)."""
