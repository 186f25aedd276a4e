"""Evaluation library: datasets, prompts, scoring, pass@k. No Dagster here."""
