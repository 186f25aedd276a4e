"""LLM settings, read from the environment in one place, and the `LLMResource` they describe.

`JUNE_LLM_BACKEND` names one backend (`llama_cpp`, the default; `openai`; `triton`) or an ordered
fallback list (`triton,llama_cpp`, `openai,llama_cpp`): a list builds a `RoutedLLMResource` that
answers from the first healthy backend. The API key stays a `dg.EnvVar`, resolved at run time.

| variable | default | meaning |
|---|---|---|
| JUNE_LLM_BACKEND | llama_cpp | one backend, or a comma-separated fallback order |
| JUNE_LLM_BREAKER_FAILURES | 3 | consecutive failures that open a backend's circuit (lists only) |
| JUNE_LLM_BREAKER_COOLDOWN_S | 30 | seconds before an open circuit lets one probe through |
| JUNE_OPENAI_BASE_URL | http://127.0.0.1:8000/v1 | the OpenAI-compatible server (NIM, trtllm-serve, vLLM) |
| JUNE_OPENAI_API_KEY | unset | its bearer token (secret) |
| JUNE_OPENAI_TIMEOUT_S | 120 | per-request timeout |
| JUNE_OPENAI_MAX_RETRIES | 3, or 0 when a fallback follows | retries inside the client before it fails |
| JUNE_TRITON_GRPC | 127.0.0.1:8001 | Triton's gRPC endpoint |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import dagster as dg

from june_pipelines.inference.resources import LlamaCppLLMResource, LLMResource, OpenAICompatLLMResource

if TYPE_CHECKING:
    from june_pipelines.inference.triton import TritonLLMResource

BACKEND_ENV = "JUNE_LLM_BACKEND"
BACKENDS = ("llama_cpp", "openai", "triton")
API_KEY_ENV = "JUNE_OPENAI_API_KEY"
RETRIES_ENV = "JUNE_OPENAI_MAX_RETRIES"


class LLMConfigError(ValueError):
    """The LLM environment variables cannot be used (one line, naming the variable)."""


N = TypeVar("N", int, float)


def _number(env: Mapping[str, str], name: str, kind: type[N], default: N, low: float) -> N:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise LLMConfigError(f"{name}={raw!r}: expected {'an integer' if kind is int else 'a number'}") from None
    if value < low:
        raise LLMConfigError(f"{name}={raw!r}: must be at least {low:g}")
    return value


@dataclass(frozen=True)
class LLMSettings:
    backends: tuple[str, ...] = ("llama_cpp",)
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_api_key_set: bool = False  # whether JUNE_OPENAI_API_KEY is set; its value is never read here
    openai_timeout_s: float = 120.0
    openai_max_retries: int | None = None  # None: 3 alone or last, 0 when a fallback follows
    triton_grpc: str = "127.0.0.1:8001"
    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LLMSettings:
        env = os.environ if env is None else env
        raw = env.get(BACKEND_ENV, "") or "llama_cpp"
        backends = tuple(name.strip() for name in raw.split(","))
        unknown = [name for name in backends if name not in BACKENDS]
        if unknown or not backends:
            raise LLMConfigError(
                f"{BACKEND_ENV}={raw!r}: expected one of {', '.join(BACKENDS)}, "
                "or an ordered fallback list such as triton,llama_cpp"
            )
        if len(set(backends)) != len(backends):
            raise LLMConfigError(f"{BACKEND_ENV}={raw!r}: a backend appears twice")
        return cls(
            backends=backends,
            openai_base_url=env.get("JUNE_OPENAI_BASE_URL") or cls.openai_base_url,
            openai_api_key_set=bool(env.get(API_KEY_ENV)),
            openai_timeout_s=_number(env, "JUNE_OPENAI_TIMEOUT_S", float, cls.openai_timeout_s, 0.1),
            openai_max_retries=_number(env, RETRIES_ENV, int, 0, 0) if env.get(RETRIES_ENV, "").strip() else None,
            triton_grpc=env.get("JUNE_TRITON_GRPC") or cls.triton_grpc,
            breaker_failures=_number(env, "JUNE_LLM_BREAKER_FAILURES", int, cls.breaker_failures, 1),
            breaker_cooldown_s=_number(env, "JUNE_LLM_BREAKER_COOLDOWN_S", float, cls.breaker_cooldown_s, 0),
        )

    def openai_resource(self, has_fallback: bool = False) -> OpenAICompatLLMResource:
        retries = self.openai_max_retries
        return OpenAICompatLLMResource(
            base_url=self.openai_base_url,
            api_key=dg.EnvVar(API_KEY_ENV) if self.openai_api_key_set else None,
            timeout_s=self.openai_timeout_s,
            # With a fallback behind it, a failing server is left at once: the router falls back.
            max_retries=retries if retries is not None else (0 if has_fallback else 3),
        )

    def triton_resource(self) -> TritonLLMResource:
        from june_pipelines.inference.triton import TritonLLMResource

        return TritonLLMResource(url=self.triton_grpc)

    def resource(self) -> LLMResource:
        """One backend's resource, or a `RoutedLLMResource` over the list in order."""
        if self.backends == ("llama_cpp",):
            return LlamaCppLLMResource()
        if self.backends == ("openai",):
            return self.openai_resource()
        if self.backends == ("triton",):
            return self.triton_resource()
        from june_pipelines.inference.router import RoutedLLMResource

        openai_has_fallback = self.backends[-1] != "openai"
        return RoutedLLMResource(
            order=list(self.backends),
            failure_threshold=self.breaker_failures,
            cooldown_s=self.breaker_cooldown_s,
            openai=self.openai_resource(openai_has_fallback) if "openai" in self.backends else None,
            triton=self.triton_resource() if "triton" in self.backends else None,
            llama_cpp=LlamaCppLLMResource() if "llama_cpp" in self.backends else None,
        )
