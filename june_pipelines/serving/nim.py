"""NVIDIA NIM: an OpenAI-compatible server (`/v1/chat/completions`, `/v1/models`) with readiness at
`/v1/health/ready`. June talks to it through `OpenAICompatLLMResource`; this module holds the preset,
a readiness helper and the container spec (the NGC key is passed by name, never printed).
"""

from __future__ import annotations

import time

import httpx

from june_pipelines.serving.trtllm import ContainerSpec, Mount

HEALTH_PATH = "/v1/health/ready"
MODELS_PATH = "/v1/models"


def nim_llm_resource(base_url: str = "http://127.0.0.1:8000/v1", api_key_env: str | None = None, **kwargs):
    """`OpenAICompatLLMResource` preset for a NIM. `base_url` ends in /v1 like any OpenAI server."""
    import dagster as dg

    from june_pipelines.inference.resources import OpenAICompatLLMResource

    return OpenAICompatLLMResource(
        base_url=base_url,
        api_key=dg.EnvVar(api_key_env) if api_key_env else None,
        health_path=HEALTH_PATH,
        **kwargs,
    )


def _root(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def nim_ready(base_url: str, timeout_s: float = 5.0) -> tuple[bool, str]:
    """(ready, detail) from `/v1/health/ready`; unreachable servers are not ready."""
    url = _root(base_url) + HEALTH_PATH
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return False, f"{url}: {exc}"
    return response.status_code == 200, f"{url}: {response.status_code} {response.text[:200]}"


def nim_models(base_url: str, api_key: str | None = None) -> list[str]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(_root(base_url) + MODELS_PATH, headers=headers, timeout=10)
    response.raise_for_status()
    return [m["id"] for m in response.json().get("data", [])]


def wait_ready(base_url: str, timeout_s: float = 900.0, poll_s: float = 5.0) -> None:
    """NIMs download and optimize on first start; wait for readiness or raise with the last answer."""
    deadline = time.monotonic() + timeout_s
    detail = ""
    while time.monotonic() < deadline:
        ready, detail = nim_ready(base_url)
        if ready:
            return
        time.sleep(poll_s)
    raise TimeoutError(f"NIM not ready after {timeout_s} s: {detail}")


def nim_container(image: str, cache_dir: str, port: int = 8000, gpus: int = -1) -> ContainerSpec:
    """e.g. image `nvcr.io/nim/meta/llama-3.1-8b-instruct:<tag>`; needs NGC_API_KEY in the environment."""
    return ContainerSpec(
        image=image,
        command=(),
        mounts=(Mount(cache_dir, "/opt/nim/.cache"),),
        gpus=gpus,
        secret_env=("NGC_API_KEY",),
        ports={8000: port},
    )
