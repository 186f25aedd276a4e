"""The resources the code location binds by default, chosen by environment variables.

JUNE_LLM_BACKEND: llama_cpp (default) | openai | triton, or a fallback list such as triton,llama_cpp.
JUNE_SANDBOX: auto (default: Docker when the engine answers and the image exists, else process)
| process | docker. The serving resources are bound by the serving domain's own `defs`
(`june_pipelines.serving.resources.serving_resources_from_env`), the voice resources (`stt`, `tts`,
`memory`) by the voice domain's (june_pipelines/voice/defs.py).
"""

from __future__ import annotations

import os
from typing import Any

from june_pipelines.inference.resources import LLMResource
from june_pipelines.sandboxes.resources import SandboxResource


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


def default_resources() -> dict[str, Any]:
    return {
        "llm": llm_resource_from_env(),
        "sandbox": sandbox_resource_from_env(),
    }
