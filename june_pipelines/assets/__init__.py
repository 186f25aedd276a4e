"""Dagster assets, one domain per module: benchmarks, models, engines, conversations."""
