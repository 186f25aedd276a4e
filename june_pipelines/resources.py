"""The resources the code location binds by default, chosen by environment variables.

JUNE_LLM_BACKEND: llama_cpp (default) | openai (JUNE_OPENAI_BASE_URL, JUNE_OPENAI_API_KEY).
JUNE_SANDBOX: auto (default: Docker when the engine answers and the image exists, else process)
| process | docker. Voice resources: see below. The serving resources are bound by the serving
domain's own `defs` (`june_pipelines.serving.resources.serving_resources_from_env`).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from june_pipelines.inference.resources import LlamaCppLLMResource, LLMResource, OpenAICompatLLMResource
from june_pipelines.sandboxes.resources import SandboxResource
from june_pipelines.voice.resources import STTResource, TTSResource


def llm_resource_from_env() -> LLMResource:
    backend = os.environ.get("JUNE_LLM_BACKEND", "llama_cpp")
    if backend == "llama_cpp":
        return LlamaCppLLMResource()
    if backend == "openai":
        return OpenAICompatLLMResource(
            base_url=dg.EnvVar("JUNE_OPENAI_BASE_URL").get_value() or "http://127.0.0.1:8000/v1",
            api_key=dg.EnvVar("JUNE_OPENAI_API_KEY") if os.environ.get("JUNE_OPENAI_API_KEY") else None,
        )
    if backend == "triton":  # the model deployed by the serve_model job (JUNE_TRITON_GRPC)
        from june_pipelines.inference.triton import TritonLLMResource

        return TritonLLMResource(url=os.environ.get("JUNE_TRITON_GRPC", "127.0.0.1:8001"))
    raise ValueError(f"JUNE_LLM_BACKEND={backend!r}: expected llama_cpp, openai or triton")


def sandbox_resource_from_env() -> SandboxResource:
    """JUNE_SANDBOX: auto (default: Docker when the engine and image are there, else process) | process | docker."""
    from june_pipelines.sandboxes.resources import sandbox_resource_for

    kind = os.environ.get("JUNE_SANDBOX", "auto")
    try:
        return sandbox_resource_for(kind)
    except ValueError:
        raise ValueError(f"JUNE_SANDBOX={kind!r}: expected auto, process or docker") from None


def default_resources() -> dict[str, Any]:
    return {
        "llm": llm_resource_from_env(),
        "sandbox": sandbox_resource_from_env(),
        "stt": STTResource(),
        "tts": TTSResource(),
    }
