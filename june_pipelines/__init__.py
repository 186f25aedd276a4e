"""June: a self-hosted LLM's whole life on Dagster."""
