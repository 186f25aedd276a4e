"""Triton backend: the TensorRT-LLM ensemble (or the llmapi model) over gRPC or HTTP `/generate`.

Requests are shaped as upstream's clients send them (TensorRT-LLM 1.2 `triton_backend/all_models`):
- inflight ensemble (batching): `text_input` [1, 1] BYTES, `max_tokens` INT32, sampling inputs
  (`temperature`, `top_p`, `top_k`, `seed`, `stop_words`, `stream`), `exclude_input_in_output`, and
  `return_num_input_tokens` / `return_num_output_tokens` for usage (`num_input_tokens`,
  `num_output_tokens`); the text comes back in `text_output`, new tokens only when streaming.
- llmapi model (no batching, max_batch_size 0): a 1-D `text_input` [1], `sampling_param_*` [1],
  `return_finish_reason`; a streamed response carries the whole text so far, so the client emits
  the difference.
On a decoupled model (streaming repositories) every gRPC request goes over the bidirectional
stream, with `stream=False` for a single response. Chat is a completion of the prompt rendered
with the model's chat template on the client side.

`tritonclient` and numpy are imported inside methods so importing this module stays cheap.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import Field

from june_pipelines.inference.base import ChatMessage, Completion, LLMClient, LLMError, SamplingParams
from june_pipelines.inference.resources import LLMResource
from june_pipelines.registry import get_model

if TYPE_CHECKING:
    import httpx

Protocol = Literal["grpc", "http"]
Layout = Literal["inflight", "llmapi"]


DEFAULT_PARAMS = SamplingParams()


class _Reply(NamedTuple):
    """One response: its text, the token counts the server reported, the llmapi finish reason."""

    text: str
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    finish_reason: str | None = None

# Named chat templates (Jinja, Hugging Face conventions). A registry `chat_template` is a name
# from this table or a Jinja template of its own.
CHAT_TEMPLATES = {
    "chatml": (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "llama3": (
        "<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n"
        "{{ m.content }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    ),
}


@lru_cache(maxsize=16)
def _compile(template: str) -> Any:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(template)


def render_chat(messages: Sequence[ChatMessage], template: str = "chatml") -> str:
    source = CHAT_TEMPLATES.get(template, template)
    return _compile(source).render(
        messages=[m.as_dict() for m in messages], add_generation_prompt=True, bos_token="", eos_token=""
    )


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def _reply_from_json(doc: dict[str, Any]) -> _Reply:
    """A `/generate` (or one `/generate_stream` event) JSON answer."""
    seq, inp, finish = (
        _first(doc.get("num_output_tokens")),
        _first(doc.get("num_input_tokens")),
        _first(doc.get("finish_reason")),
    )
    return _Reply(str(_first(doc.get("text_output", ""))), seq, inp, str(finish) if finish else None)


def _truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """TensorRT-LLM keeps the stop word in its output; cut at the earliest one."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


class TritonLLMClient(LLMClient):
    backend = "triton"

    def __init__(
        self,
        model: str,
        url: str,
        protocol: Protocol = "grpc",
        layout: Layout = "inflight",
        decoupled: bool = True,
        chat_template: str = "chatml",
        timeout_s: float = 300.0,
    ) -> None:
        super().__init__(model)
        self.url = url.removeprefix("http://").removeprefix("grpc://")
        self.protocol = protocol
        self.layout = layout
        self.decoupled = decoupled
        self.chat_template = chat_template
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._http_client: httpx.Client | None = None
        self._http_lock = threading.Lock()

    def _http(self) -> httpx.Client:
        """One pooled HTTP client (creating a client per call costs tens of ms: SSL context, no keep-alive)."""
        import httpx

        with self._http_lock:
            if self._http_client is None:
                self._http_client = httpx.Client(timeout=self.timeout_s)
            return self._http_client

    # ---- request tensors -----------------------------------------------------------------------

    def _fields(self, prompt: str, params: SamplingParams, stream: bool) -> dict[str, tuple[Any, str]]:
        """Input name -> (value, Triton dtype) for this layout."""
        if self.layout == "llmapi":
            fields: dict[str, tuple[Any, str]] = {
                "text_input": (prompt, "BYTES"),
                "sampling_param_max_tokens": (params.max_tokens, "INT32"),
                "sampling_param_temperature": (params.temperature, "FP32"),
                "sampling_param_top_p": (params.top_p, "FP32"),
                "sampling_param_exclude_input_from_output": (True, "BOOL"),
                "streaming": (stream, "BOOL"),
                "return_finish_reason": (True, "BOOL"),
            }
            if params.seed is not None:
                fields["sampling_param_seed"] = (params.seed, "UINT64")
            return fields
        fields = {
            "text_input": (prompt, "BYTES"),
            "max_tokens": (params.max_tokens, "INT32"),
            "top_p": (params.top_p, "FP32"),
            "stream": (stream, "BOOL"),
            "exclude_input_in_output": (True, "BOOL"),
            "return_num_input_tokens": (True, "BOOL"),
            "return_num_output_tokens": (True, "BOOL"),
        }
        if params.temperature > 0:
            fields["temperature"] = (params.temperature, "FP32")
        else:
            fields["top_k"] = (1, "INT32")  # greedy in TensorRT-LLM
        if params.seed is not None:
            fields["seed"] = (params.seed, "UINT64")
        return fields

    def _grpc_inputs(self, prompt: str, params: SamplingParams, stream: bool) -> list[Any]:
        import numpy as np
        import tritonclient.grpc as grpcclient

        # The ensemble batches, so its inputs carry a leading batch dimension of 1 (text_input [1, 1]);
        # the llmapi model does not batch (max_batch_size 0): text_input is 1-D [1], as upstream requires.
        np_types = {"BYTES": object, "INT32": np.int32, "FP32": np.float32, "UINT64": np.uint64, "BOOL": bool}

        def shaped(values: list[Any], dtype: str) -> Any:
            array = np.array(values, dtype=np_types[dtype])
            return array.reshape(1, -1) if self.layout == "inflight" else array

        arrays = {
            name: (shaped([value.encode("utf-8") if isinstance(value, str) else value], dtype), dtype)
            for name, (value, dtype) in self._fields(prompt, params, stream).items()
        }
        if params.stop:
            name = "stop_words" if self.layout == "inflight" else "sampling_param_stop"
            arrays[name] = (shaped([s.encode("utf-8") for s in params.stop], "BYTES"), "BYTES")
        inputs = []
        for name, (array, dtype) in arrays.items():
            tensor = grpcclient.InferInput(name, list(array.shape), dtype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        return inputs

    def _grpc(self) -> Any:
        import tritonclient.grpc as grpcclient

        client = getattr(self._local, "grpc", None)
        if client is None:
            client = grpcclient.InferenceServerClient(self.url)
            self._local.grpc = client
        return client

    # ---- gRPC ----------------------------------------------------------------------------------

    @staticmethod
    def _read(result: Any) -> _Reply:
        """(text, completion tokens, prompt tokens) from one response."""
        out = result.as_numpy("text_output")
        text = "" if out is None else "".join(
            (x.decode("utf-8", errors="replace") if isinstance(x, bytes) else str(x)) for x in out.reshape(-1)[:1]
        )
        seq = result.as_numpy("num_output_tokens")
        inp = result.as_numpy("num_input_tokens")
        finish = result.as_numpy("finish_reason")
        return _Reply(
            text,
            int(seq.reshape(-1)[0]) if seq is not None else None,
            int(inp.reshape(-1)[0]) if inp is not None else None,
            _text(finish.reshape(-1)[0]) if finish is not None and finish.size else None,
        )

    def _pieces(self, responses: Iterator[_Reply]) -> Iterator[_Reply]:
        """New text per streamed response: the llmapi model sends the whole text so far each time."""
        if self.layout == "inflight":
            yield from responses
            return
        seen = ""
        for reply in responses:
            text = reply.text
            piece = text[len(seen):] if text.startswith(seen) else text
            seen = text if text.startswith(seen) else seen + text
            yield reply._replace(text=piece)

    def _grpc_stream(self, prompt: str, params: SamplingParams, stream: bool) -> Iterator[_Reply]:
        """Responses of one request over the gRPC stream, until the final flag."""
        import tritonclient.grpc as grpcclient

        responses: queue.Queue = queue.Queue()
        # A stream belongs to one client object; a fresh client per request measured faster here
        # than reusing a per-thread client (stop_stream joins its reader thread).
        client = grpcclient.InferenceServerClient(self.url)
        client.start_stream(callback=lambda result, error: responses.put((result, error)))
        try:
            client.async_stream_infer(
                self.model,
                self._grpc_inputs(prompt, params, stream),
                request_id=uuid.uuid4().hex,
                enable_empty_final_response=True,
            )
            deadline = time.monotonic() + self.timeout_s
            finished = False
            while not finished:
                try:
                    result, error = responses.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    raise LLMError(
                        f"Triton {self.url}: no response from {self.model!r} in {self.timeout_s} s"
                    ) from None
                if error is not None:
                    raise LLMError(f"Triton {self.url} {self.model!r}: {error}")
                response = result.get_response()
                final = response.parameters.get("triton_final_response")
                if response.outputs:
                    yield self._read(result)
                finished = final is not None and final.bool_param
        finally:
            # Cancel only a request abandoned half-way (consumer stopped early, timeout, error):
            # cancelling a finished ensemble request can leave the model stuck in UNLOADING.
            client.stop_stream(cancel_requests=not finished)
            client.close()

    def _grpc_unary(self, prompt: str, params: SamplingParams) -> _Reply:
        from tritonclient.utils import InferenceServerException

        if self.decoupled:
            pieces = list(self._pieces(self._grpc_stream(prompt, params, stream=False)))
            counts = [p.completion_tokens for p in pieces if p.completion_tokens is not None]
            return _Reply(
                "".join(p.text for p in pieces),
                sum(counts) if counts else None,
                next((p.prompt_tokens for p in pieces if p.prompt_tokens is not None), None),
                next((p.finish_reason for p in reversed(pieces) if p.finish_reason), None),
            )
        try:
            result = self._grpc().infer(
                self.model, self._grpc_inputs(prompt, params, False), client_timeout=self.timeout_s
            )
        except InferenceServerException as exc:
            raise LLMError(f"Triton {self.url} {self.model!r}: {exc}") from exc
        return self._read(result)

    # ---- HTTP /generate ------------------------------------------------------------------------

    def _http_body(self, prompt: str, params: SamplingParams, stream: bool) -> dict[str, Any]:
        body = {name: value for name, (value, _) in self._fields(prompt, params, stream).items()}
        if params.stop:
            body["stop_words" if self.layout == "inflight" else "sampling_param_stop"] = list(params.stop)
        return body

    def _http_unary(self, prompt: str, params: SamplingParams) -> _Reply:
        import httpx

        url = f"http://{self.url}/v2/models/{self.model}/generate"
        try:
            response = self._http().post(url, json=self._http_body(prompt, params, False))
        except httpx.HTTPError as exc:
            raise LLMError(f"Triton {url}: {exc}") from exc
        if response.status_code != 200:
            raise LLMError(f"Triton {url} ({response.status_code}): {response.text}")
        doc = response.json()
        return _reply_from_json(doc)

    def _http_stream(self, prompt: str, params: SamplingParams) -> Iterator[_Reply]:
        import httpx

        url = f"http://{self.url}/v2/models/{self.model}/generate_stream"
        try:
            with self._http().stream("POST", url, json=self._http_body(prompt, params, True)) as response:
                if response.status_code != 200:
                    raise LLMError(f"Triton {url} ({response.status_code}): {response.read().decode()}")
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    doc = json.loads(line.removeprefix("data:").strip())
                    if "error" in doc:
                        raise LLMError(f"Triton {url}: {doc['error']}")
                    yield _reply_from_json(doc)
        except httpx.HTTPError as exc:
            raise LLMError(f"Triton {url}: {exc}") from exc

    # ---- LLMClient -----------------------------------------------------------------------------

    def _complete(self, prompt: str, params: SamplingParams) -> Completion:
        started = time.perf_counter()
        reply = self._http_unary(prompt, params) if self.protocol == "http" else self._grpc_unary(prompt, params)
        text, stopped = _truncate_at_stop(reply.text, params.stop)
        completion_tokens = reply.completion_tokens if reply.completion_tokens is not None else 0
        if stopped:
            finish = "stop"
        elif reply.finish_reason in ("stop", "length"):  # the llmapi model says why it stopped
            finish = reply.finish_reason
        else:
            finish = "stop" if completion_tokens < params.max_tokens else "length"
        return Completion(
            text=text,
            prompt_tokens=reply.prompt_tokens or 0,
            completion_tokens=completion_tokens,
            latency_s=time.perf_counter() - started,
            finish_reason=finish,
        )

    def _chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        return self._complete(render_chat(messages, self.chat_template), params)

    def stream_complete(self, prompt: str, params: SamplingParams = DEFAULT_PARAMS) -> Iterator[str]:
        """Text pieces as the server streams them (needs a decoupled model). Stops at a stop word."""
        responses = (
            self._http_stream(prompt, params) if self.protocol == "http" else self._grpc_stream(prompt, params, True)
        )
        pieces = self._pieces(responses)
        seen = ""
        for piece, *_ in pieces:
            seen += piece
            cut, stopped = _truncate_at_stop(seen, params.stop)
            emit = cut[len(seen) - len(piece):] if stopped else piece
            if emit:
                yield emit
            if stopped:
                return

    def stream_chat(self, messages: Sequence[ChatMessage], params: SamplingParams = DEFAULT_PARAMS) -> Iterator[str]:
        yield from self.stream_complete(render_chat(messages, self.chat_template), params)

    def close(self) -> None:
        client = getattr(self._local, "grpc", None)
        if client is not None:
            client.close()
            self._local.grpc = None
        with self._http_lock:
            if self._http_client is not None:
                self._http_client.close()
                self._http_client = None


class TritonLLMResource(LLMResource):
    """A Triton server with the TensorRT-LLM ensemble (or the llmapi model) per registered model.

    The Triton model name is the one the repository generator gives the model's entry model
    (`serving.layout.entry_model`), unless `model_name_template` says otherwise.
    """

    url: str = Field(default="127.0.0.1:8001", description="gRPC host:port (or HTTP host:port with protocol=http)")
    protocol: Protocol = Field(default="grpc", description="grpc | http (the /generate endpoint)")
    layout: Layout = Field(default="inflight", description="inflight (ensemble) | llmapi")
    decoupled: bool = Field(default=True, description="The repository was generated with streaming (decoupled) models")
    model_name_template: str | None = Field(
        default=None,
        description="Triton model to call, formatted with served_name/id; default: the entry model the "
        "triton_model_repository asset writes ('{served_name}-ensemble' or '{served_name}-tensorrt_llm')",
    )
    chat_template: str | None = Field(default=None, description="Override the registry's chat template (name or Jinja)")
    timeout_s: float = 300.0

    def triton_model_name(self, model_id: str) -> str:
        from june_pipelines.serving.layout import entry_model

        spec = get_model(model_id)
        if self.model_name_template is None:
            return entry_model(spec, self.layout)
        return self.model_name_template.format(served_name=spec.name_for_server, id=spec.id)

    def client(self, model_id: str | None = None) -> TritonLLMClient:
        spec = get_model(model_id or self.default_model)
        return TritonLLMClient(
            model=self.triton_model_name(spec.id),
            url=self.url,
            protocol=self.protocol,
            layout=self.layout,
            decoupled=self.decoupled,
            chat_template=self.chat_template or spec.chat_template or "chatml",
            timeout_s=self.timeout_s,
        )

    def describe(self) -> dict[str, str]:
        return {"backend": "triton", "url": self.url, "protocol": self.protocol, "layout": self.layout}


__all__ = ["CHAT_TEMPLATES", "TritonLLMClient", "TritonLLMResource", "render_chat"]
