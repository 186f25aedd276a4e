"""OpenAI-compatible HTTP backend: what NIM, trtllm-serve, vLLM and llama.cpp's server speak."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from june_pipelines.inference.base import ChatMessage, Completion, LLMClient, LLMError, SamplingParams

# Worth retrying: the server is busy, restarting or overloaded. Anything else 4xx is the caller's bug.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAICompatClient(LLMClient):
    """Talks to `{base_url}/completions` and `{base_url}/chat/completions` with retries and backoff.

    At most `max_concurrency` requests are in flight from this client at once, so a thread pool
    of evaluators cannot flood a shared server.
    """

    backend = "openai"

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        max_concurrency: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        super().__init__(model)
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._slots = threading.BoundedSemaphore(max_concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
        )

    def _body(self, params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last_error = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1) * (1 + random.random() / 2))
            try:
                with self._slots:
                    response = self._http.post(path, json=body)
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRY_STATUS:
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code >= 400:
                raise LLMError(
                    f"{self.base_url}{path} answered HTTP {response.status_code}: {response.text[:500]}"
                )
            return response.json()
        raise LLMError(f"{self.base_url}{path} failed after {self.max_retries + 1} attempts: {last_error}")

    @staticmethod
    def _completion(response: dict[str, Any], text: str, started: float) -> Completion:
        usage = response.get("usage") or {}
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=time.perf_counter() - started,
            finish_reason=str(response["choices"][0].get("finish_reason") or "stop"),
        )

    def _complete(self, prompt: str, params: SamplingParams) -> Completion:
        started = time.perf_counter()
        response = self._post("/completions", {**self._body(params), "prompt": prompt})
        return self._completion(response, response["choices"][0].get("text") or "", started)

    def _chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        started = time.perf_counter()
        body = {**self._body(params), "messages": [m.as_dict() for m in messages]}
        response = self._post("/chat/completions", body)
        return self._completion(response, response["choices"][0]["message"].get("content") or "", started)

    def stream_chat(
        self, messages: Sequence[ChatMessage], params: SamplingParams = SamplingParams()
    ) -> Iterator[str]:
        """Server-sent events from `/chat/completions` with `stream: true` (no retries mid-stream)."""
        body = {**self._body(params), "messages": [m.as_dict() for m in messages], "stream": True}
        with self._slots, self._http.stream("POST", "/chat/completions", json=body) as response:
            if response.status_code >= 400:
                response.read()
                raise LLMError(f"streaming chat answered HTTP {response.status_code}: {response.text[:500]}")
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    return
                choices = json.loads(data).get("choices") or []
                piece = choices[0].get("delta", {}).get("content") if choices else None
                if piece:
                    yield piece

    def models(self) -> list[str]:
        """Model ids the server offers (`GET /models`)."""
        response = self._http.get("/models")
        response.raise_for_status()
        return [m["id"] for m in response.json().get("data", [])]

    def ready(self, health_path: str | None = None) -> bool:
        """True when the server answers its health path (NIM: `/v1/health/ready`) or `/models`."""
        try:
            if health_path:
                root = httpx.URL(self.base_url).copy_with(path=health_path)
                return self._http.get(root).status_code == 200
            return self._http.get("/models").status_code == 200
        except httpx.TransportError:
            return False

    def close(self) -> None:
        self._http.close()
