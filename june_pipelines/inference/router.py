"""LLM routing with fallback: an ordered list of backends, each behind a circuit breaker.

A chat user should get an answer when the GPU server is down. `RoutingLLMClient` tries its
backends in order (for example Triton or NIM on the GPU host, then the embedded llama.cpp model);
a backend that fails is skipped for the next request, and after `failure_threshold` consecutive
failures its circuit opens: it is not asked again until `cooldown_s` have passed, then one request
probes it (half-open) and its result closes or re-opens the circuit. When every circuit is open the
backends are tried anyway, in order: a late answer beats none.

Which model answers: `client(model_id)` pins the model, so every backend is asked for that model
and one that cannot serve it (no GGUF for the embedded backend, say) fails and the next is tried;
an evaluation is never answered by another model. `client()` (no model: what live turns use) lets
each backend answer with its own default model, so the embedded fallback answers with the bundled
one.

Usage and latency are accounted per backend (`RoutedUsage.as_dict()["backends"]`), and so are
failures, requests skipped by an open circuit, and answers served as a fallback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import Field

from june_pipelines.inference.base import ChatMessage, Completion, LLMClient, LLMError, SamplingParams, UsageTotals
from june_pipelines.inference.resources import LlamaCppLLMResource, LLMResource, OpenAICompatLLMResource
from june_pipelines.inference.triton import TritonLLMResource

log = logging.getLogger("june.llm")

Clock = Callable[[], float]
DEFAULT_PARAMS = SamplingParams()
T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"  # requests flow
    OPEN = "open"  # requests skip this backend until the cool-down has passed
    HALF_OPEN = "half_open"  # one probe request is in flight; the others skip


class CircuitBreaker:
    """Consecutive-failure circuit breaker. Thread-safe; `clock` is seconds (monotonic)."""

    def __init__(self, failure_threshold: int = 3, cooldown_s: float = 30.0, clock: Clock = time.monotonic) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {failure_threshold}")
        if cooldown_s < 0:
            raise ValueError(f"cooldown_s must be >= 0, got {cooldown_s}")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.transitions: list[tuple[BreakerState, BreakerState]] = []

    @property
    def state(self) -> BreakerState:
        return self._state

    def _move(self, to: BreakerState) -> None:
        if to is not self._state:
            self.transitions.append((self._state, to))
            self._state = to

    def allow(self) -> bool:
        """May a request go to this backend now? After the cool-down, the first caller probes."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.OPEN and self.opened_at is not None:
                if self._clock() - self.opened_at >= self.cooldown_s:
                    self._move(BreakerState.HALF_OPEN)
                    return True
            return False

    def retry_in_s(self) -> float:
        """Seconds until an open circuit lets a probe through (0 when closed)."""
        with self._lock:
            if self._state is not BreakerState.OPEN or self.opened_at is None:
                return 0.0
            return max(0.0, self.cooldown_s - (self._clock() - self.opened_at))

    def record_success(self) -> None:
        with self._lock:
            self.consecutive_failures = 0
            self.opened_at = None
            self._move(BreakerState.CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self.consecutive_failures += 1
            if self._state is BreakerState.HALF_OPEN or self.consecutive_failures >= self.failure_threshold:
                self.opened_at = self._clock()
                self._move(BreakerState.OPEN)


@dataclass
class BackendStats:
    """What one backend did: answers (with tokens and latency), failures, requests it was skipped for."""

    usage: UsageTotals = field(default_factory=UsageTotals)
    failures: int = 0
    skipped_open: int = 0
    served_as_fallback: int = 0
    failure_latency_s: float = 0.0
    last_error: str = ""


class RoutedUsage(UsageTotals):
    """The router's totals (every answer, whoever gave it) plus a per-backend breakdown."""

    def __init__(self, backends: dict[str, BackendStats]) -> None:
        super().__init__()
        self.backends = backends

    def as_dict(self) -> dict[str, Any]:
        per_backend = {
            name: {
                **stats.usage.as_dict(),
                "failures": stats.failures,
                "skipped_open": stats.skipped_open,
                "served_as_fallback": stats.served_as_fallback,
                "failure_latency_s_total": round(stats.failure_latency_s, 3),
            }
            for name, stats in self.backends.items()
        }
        return {**super().as_dict(), "backends": per_backend}


class Route:
    """One backend of a router: its client (opened on first use), breaker and statistics."""

    def __init__(self, name: str, open_client: Callable[[], LLMClient], breaker: CircuitBreaker) -> None:
        self.name = name
        self._open_client = open_client
        self.breaker = breaker
        self.stats = BackendStats()
        self._client: LLMClient | None = None
        self._lock = threading.Lock()

    def client(self) -> LLMClient:
        with self._lock:
            if self._client is None:
                self._client = self._open_client()
            return self._client

    def record_failure(self, exc: BaseException, elapsed_s: float) -> None:
        with self._lock:
            self.stats.failures += 1
            self.stats.failure_latency_s += elapsed_s
            self.stats.last_error = _one_line(exc)
        self.breaker.record_failure()

    def record_answer(self, completion: Completion | None, fallback: bool) -> None:
        """A success closes the circuit; `completion` is None until a stream has finished."""
        self.breaker.record_success()
        with self._lock:
            self.stats.served_as_fallback += int(fallback)
            if completion is not None:
                self.stats.usage.add(completion)

    def record_skipped(self) -> None:
        with self._lock:
            self.stats.skipped_open += 1

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


class RoutingLLMClient(LLMClient):
    """An `LLMClient` that answers from the first healthy backend of an ordered list."""

    backend = "router"

    def __init__(
        self,
        routes: Sequence[tuple[str, Callable[[], LLMClient]]],
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        clock: Clock = time.monotonic,
        model: str = "",
    ) -> None:
        if not routes:
            raise LLMError("a routing LLM client needs at least one backend")
        names = [name for name, _ in routes]
        if len(set(names)) != len(names):
            raise LLMError(f"backend names must be unique, got {names}")
        super().__init__(model or "router")
        self.routes = [
            Route(name, opener, CircuitBreaker(failure_threshold, cooldown_s, clock)) for name, opener in routes
        ]
        self.usage = RoutedUsage({route.name: route.stats for route in self.routes})

    def _call(self, action: Callable[[LLMClient], T]) -> tuple[Route, T]:
        """Run `action` on the first backend that allows it and succeeds; account for every failure."""
        allowed = [route for route in self.routes if route.breaker.allow()]
        if allowed:
            for route in self.routes:
                if route not in allowed:
                    route.record_skipped()
        else:  # every circuit is open: try them all anyway rather than leave the user unanswered
            log.warning("every LLM backend's circuit is open; trying them in order anyway")
            allowed = list(self.routes)
        errors: list[str] = []
        for route in allowed:
            started = time.perf_counter()
            before = route.breaker.state
            try:
                result = action(route.client())
            except Exception as exc:  # any failure of a backend is a reason to try the next one
                route.record_failure(exc, time.perf_counter() - started)
                errors.append(f"{route.name}: {route.stats.last_error}")
                if route.breaker.state is BreakerState.OPEN and before is not BreakerState.OPEN:
                    log.warning(f"LLM backend {route.name} failed ({route.stats.last_error}): circuit open, "
                                f"next probe in {route.breaker.cooldown_s:g} s")
                else:
                    log.warning(f"LLM backend {route.name} failed ({route.stats.last_error}); trying the next")
                continue
            if before is not BreakerState.CLOSED:
                log.info(f"LLM backend {route.name} answered again: circuit closed")
            return route, result
        raise LLMError("no LLM backend answered: " + "; ".join(errors))

    def _answer(self, action: Callable[[LLMClient], Completion]) -> Completion:
        route, completion = self._call(action)
        route.record_answer(completion, fallback=route is not self.routes[0])
        return completion

    def _complete(self, prompt: str, params: SamplingParams) -> Completion:
        return self._answer(lambda client: client.complete(prompt, params))

    def _chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        return self._answer(lambda client: client.chat(messages, params))

    def stream_chat(self, messages: Sequence[ChatMessage], params: SamplingParams = DEFAULT_PARAMS) -> Iterator[str]:
        """Stream from the first backend that yields its first piece; a failure after that is raised.

        Falling back mid-answer would repeat or contradict what the user has already seen or heard.
        A streamed answer counts as a request with its latency; its tokens are not known (0).
        """

        def first_piece(client: LLMClient) -> tuple[Iterator[str], str | None]:
            pieces = iter(client.stream_chat(messages, params))
            return pieces, next(pieces, None)

        started = time.perf_counter()
        route, (pieces, first) = self._call(first_piece)
        text = [first] if first is not None else []
        if first is not None:
            yield first
        try:
            for piece in pieces:
                text.append(piece)
                yield piece
        except Exception as exc:
            route.record_failure(exc, time.perf_counter() - started)
            raise LLMError(f"LLM backend {route.name} failed mid-stream: {route.stats.last_error}") from exc
        completion = Completion("".join(text), 0, 0, time.perf_counter() - started)
        route.record_answer(completion, fallback=route is not self.routes[0])
        self.usage.add(completion)

    def health(self) -> list[dict[str, Any]]:
        """Per backend: circuit state, consecutive failures, seconds to the next probe, last error."""
        return [
            {
                "backend": route.name,
                "state": route.breaker.state.value,
                "consecutive_failures": route.breaker.consecutive_failures,
                "retry_in_s": round(route.breaker.retry_in_s(), 1),
                "last_error": route.stats.last_error,
            }
            for route in self.routes
        ]

    def close(self) -> None:
        for route in self.routes:
            route.close()


BACKEND_KINDS = ("openai", "triton", "llama_cpp")


class RoutedLLMResource(LLMResource):
    """Several LLM backends in order, with fallback and a circuit breaker per backend.

    Configure each backend you list in `order` in its own field (`openai`, `triton`, `llama_cpp`).
    """

    order: list[str] = Field(description="Backends to try, first to last: openai | triton | llama_cpp")
    openai: OpenAICompatLLMResource | None = Field(
        default=None, description="NIM, trtllm-serve, vLLM, llama.cpp's server"
    )
    triton: TritonLLMResource | None = Field(default=None, description="Triton with the TensorRT-LLM models")
    llama_cpp: LlamaCppLLMResource | None = Field(
        default=None, description="The embedded model (the usual last resort)"
    )
    failure_threshold: int = Field(default=3, description="Consecutive failures that open a backend's circuit")
    cooldown_s: float = Field(default=30.0, description="Seconds an open circuit waits before one probe request")

    def backends(self) -> list[tuple[str, LLMResource]]:
        """The configured backends in order; a clear error for an unknown or unconfigured name."""
        if not self.order:
            raise LLMError("RoutedLLMResource.order is empty: name at least one backend")
        found: list[tuple[str, LLMResource]] = []
        for name in self.order:
            if name not in BACKEND_KINDS:
                raise LLMError(f"unknown LLM backend {name!r} in order: expected one of {', '.join(BACKEND_KINDS)}")
            resource = getattr(self, name)
            if resource is None:
                raise LLMError(f"LLM backend {name!r} is in order but not configured")
            found.append((name, resource))
        return found

    def client(self, model_id: str | None = None, *, clock: Clock = time.monotonic) -> RoutingLLMClient:
        def opener(resource: LLMResource) -> Callable[[], LLMClient]:
            return lambda: resource.client(model_id)

        return RoutingLLMClient(
            [(name, opener(resource)) for name, resource in self.backends()],
            failure_threshold=self.failure_threshold,
            cooldown_s=self.cooldown_s,
            clock=clock,
            model=model_id or self.default_model,
        )

    def describe(self) -> dict[str, str]:
        details = {"backend": "router", "order": ",".join(self.order)}
        for name, resource in self.backends():
            details.update({f"{name}.{k}": v for k, v in resource.describe().items() if k != "backend"})
        return details
