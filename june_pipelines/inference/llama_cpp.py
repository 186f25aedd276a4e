"""Embedded backend: llama-cpp-python runs a GGUF model inside this process."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from june_pipelines.inference.base import ChatMessage, Completion, LLMClient, LLMError, SamplingParams


class LlamaCppClient(LLMClient):
    """One loaded GGUF model. Calls are serialised: a llama.cpp context is not thread-safe."""

    backend = "llama_cpp"

    def __init__(
        self,
        model: str,
        model_path: Path,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        flash_attn: bool = False,
    ) -> None:
        super().__init__(model)
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise LLMError("llama-cpp-python is not installed: install june-pipelines[llama]") from exc
        self.model_path = model_path
        self._lock = threading.Lock()
        self._llama: Any = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads or os.cpu_count() or 1,
            n_batch=n_batch,
            flash_attn=flash_attn,
            verbose=False,
        )

    def _sampling(self, params: SamplingParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stop": list(params.stop) or None,
        }
        if params.seed is not None:
            kwargs["seed"] = params.seed
        return kwargs

    @staticmethod
    def _result(response: dict[str, Any], text: str, started: float) -> Completion:
        usage = response.get("usage") or {}
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=time.perf_counter() - started,
            finish_reason=str(response["choices"][0].get("finish_reason") or "stop"),
        )

    def _complete(self, prompt: str, params: SamplingParams) -> Completion:
        with self._lock:
            started = time.perf_counter()
            response = self._llama.create_completion(prompt=prompt, **self._sampling(params))
            return self._result(response, response["choices"][0]["text"], started)

    def _chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        with self._lock:
            started = time.perf_counter()
            response = self._llama.create_chat_completion(
                messages=[m.as_dict() for m in messages], **self._sampling(params)
            )
            text = response["choices"][0]["message"].get("content") or ""
            return self._result(response, text, started)

    def stream_chat(
        self, messages: Sequence[ChatMessage], params: SamplingParams = SamplingParams()
    ) -> Iterator[str]:
        with self._lock:
            stream = self._llama.create_chat_completion(
                messages=[m.as_dict() for m in messages], stream=True, **self._sampling(params)
            )
            for chunk in stream:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece

    def close(self) -> None:
        llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()
