"""The resources the code location binds by default, chosen by environment variables.

JUNE_LLM_BACKEND: llama_cpp (default) | openai | triton, or a fallback list such as triton,llama_cpp.
JUNE_SANDBOX: auto (default: Docker when the engine answers and the image exists, else process)
| process | docker. Serving and voice resources: see their functions below.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from june_pipelines.inference.resources import LLMResource
from june_pipelines.sandboxes.resources import SandboxResource
from june_pipelines.voice.resources import STTResource, TTSResource


def llm_resource_from_env() -> LLMResource:
    """JUNE_LLM_BACKEND: one backend or an ordered fallback list (see `inference.settings`)."""
    from june_pipelines.inference.settings import LLMSettings

    return LLMSettings.from_env().resource()


def sandbox_resource_from_env() -> SandboxResource:
    """JUNE_SANDBOX: auto (default: Docker when the engine and image are there, else process) | process | docker."""
    from june_pipelines.sandboxes.resources import sandbox_resource_for

    kind = os.environ.get("JUNE_SANDBOX", "auto")
    try:
        return sandbox_resource_for(kind)
    except ValueError:
        raise ValueError(f"JUNE_SANDBOX={kind!r}: expected auto, process or docker") from None


def serving_resources_from_env() -> dict[str, Any]:
    """Model store, TensorRT-LLM runner, Triton: JUNE_TRITON_HTTP / JUNE_TRITON_GRPC, JUNE_TRTLLM_RUNNER."""
    from june_pipelines.inference.triton import TritonLLMResource
    from june_pipelines.serving.resources import ModelStoreResource, TensorRTLLMResource, TritonResource

    env = os.environ.get
    return {
        "model_store": ModelStoreResource(hf_token=dg.EnvVar("HF_TOKEN") if env("HF_TOKEN") else None),
        "trtllm": TensorRTLLMResource(runner=env("JUNE_TRTLLM_RUNNER", "docker"), examples_dir=env("JUNE_TRTLLM_EXAMPLES")),
        "triton": TritonResource(http_url=env("JUNE_TRITON_HTTP", "127.0.0.1:8000"), grpc_url=env("JUNE_TRITON_GRPC", "127.0.0.1:8001")),
        "triton_llm": TritonLLMResource(url=env("JUNE_TRITON_GRPC", "127.0.0.1:8001")),
    }


def default_resources() -> dict[str, Any]:
    return {
        "llm": llm_resource_from_env(),
        "sandbox": sandbox_resource_from_env(),
        "stt": STTResource(),
        "tts": TTSResource(),
        **serving_resources_from_env(),
    }
