"""Checks and measurement: regression and invariance checks, the benchmark, the naive reference loop, CPU pinning."""
