"""The inference interface every LLM backend implements (embedded llama.cpp, OpenAI-compatible, Triton).

Evaluations and voice turns use the same `LLMClient`; Dagster resources (`inference.resources`)
build clients from configuration.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str = "stop"


@dataclass
class UsageTotals:
    """Running totals for one client (one evaluation run, one conversation)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)

    def add(self, completion: Completion) -> None:
        self.requests += 1
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.latency_s += completion.latency_s
        self.latencies_s.append(completion.latency_s)

    def as_dict(self) -> dict[str, float | int]:
        lat = sorted(self.latencies_s)
        p50 = lat[len(lat) // 2] if lat else 0.0
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))] if lat else 0.0
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_s_total": round(self.latency_s, 3),
            "latency_s_p50": round(p50, 3),
            "latency_s_p95": round(p95, 3),
        }


class LLMError(RuntimeError):
    """A backend failed in a way the caller should report (unreachable server, bad model path)."""


class LLMClient(ABC):
    """A handle on one model behind one backend. Thread-safe unless a backend says otherwise."""

    backend: str = "abstract"

    def __init__(self, model: str) -> None:
        self.model = model
        self.usage = UsageTotals()

    @abstractmethod
    def _complete(self, prompt: str, params: SamplingParams) -> Completion: ...

    @abstractmethod
    def _chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion: ...

    def complete(self, prompt: str, params: SamplingParams = SamplingParams()) -> Completion:
        """Raw text completion: the model continues `prompt` (base-model prompt format)."""
        completion = self._complete(prompt, params)
        self.usage.add(completion)
        return completion

    def chat(self, messages: Sequence[ChatMessage], params: SamplingParams = SamplingParams()) -> Completion:
        """Chat completion with the model's chat template."""
        completion = self._chat(messages, params)
        self.usage.add(completion)
        return completion

    def stream_chat(
        self, messages: Sequence[ChatMessage], params: SamplingParams = SamplingParams()
    ) -> Iterator[str]:
        """Yield text pieces as they are generated. Backends without streaming yield one piece."""
        yield self.chat(messages, params).text

    def close(self) -> None:  # noqa: B027  (an optional hook: backends with nothing to release keep it)
        """Release the model or connection. Idempotent."""

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
