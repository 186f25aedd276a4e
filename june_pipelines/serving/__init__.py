"""Model serving library: weights, TensorRT-LLM builds, Triton repositories and deployments.

Plain modules with no Dagster code; the assets in `june_pipelines.assets.models` and
`june_pipelines.assets.engines` are thin recipes over them. Heavy imports (huggingface_hub,
tritonclient, docker) happen inside functions, never at import time.
"""
