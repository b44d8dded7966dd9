"""Benchmarks: scripts that measure and save tables under `benchmarks/results/`."""
