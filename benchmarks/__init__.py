"""Benchmarks: `python -m benchmarks.e2e` (end to end, on a broker), `bench_decide.py` (core)."""
