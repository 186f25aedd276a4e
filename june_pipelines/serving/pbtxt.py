"""Render Triton `config.pbtxt` text from plain Python values, and validate it with Triton's schema.

Rendering is explicit (no template placeholders to fill), and every file the repository generator
writes goes through `validate`, which parses it with `tritonclient.grpc.model_config_pb2.ModelConfig`
and rejects any leftover `${...}` placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from june_pipelines.serving.errors import ServingInputError

_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")


class ConfigError(ServingInputError):
    """A config that Triton would not load, or settings the generator refuses."""


@dataclass(frozen=True)
class Tensor:
    name: str
    data_type: str  # TYPE_STRING, TYPE_INT32, ...
    dims: tuple[int, ...]
    optional: bool = False
    reshape: tuple[int, ...] | None = None
    ragged: bool = False

    def render(self) -> str:
        lines = [
            f'    name: "{self.name}"',
            f"    data_type: {self.data_type}",
            f"    dims: [ {', '.join(map(str, self.dims))} ]",
        ]
        if self.reshape is not None:
            lines.append(f"    reshape: {{ shape: [ {', '.join(map(str, self.reshape))} ] }}")
        if self.ragged:
            lines.append("    allow_ragged_batch: true")
        if self.optional:
            lines.append("    optional: true")
        return "  {\n" + "\n".join(lines) + "\n  }"


def _tensors(kind: str, tensors: Sequence[Tensor]) -> str:
    return f"{kind} [\n" + ",\n".join(t.render() for t in tensors) + "\n]"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_parameters(params: Mapping[str, Any]) -> str:
    out = []
    for key, value in params.items():
        if value is None:
            continue  # unset parameters are left out, never written as placeholders
        text = _value(value).replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'parameters: {{\n  key: "{key}"\n  value: {{ string_value: "{text}" }}\n}}')
    return "\n".join(out)


def render_model(
    name: str,
    *,
    backend: str | None = None,
    platform: str | None = None,
    max_batch_size: int = 0,
    omit_max_batch_size: bool = False,
    inputs: Sequence[Tensor] = (),
    outputs: Sequence[Tensor] = (),
    instance_count: int | None = 1,
    instance_kind: str = "KIND_CPU",
    decoupled: bool | None = None,
    dynamic_batching: Mapping[str, int] | None = None,
    parameters: Mapping[str, Any] | None = None,
    extra: Iterable[str] = (),
) -> str:
    parts = [f'name: "{name}"']
    if backend:
        parts.append(f'backend: "{backend}"')
    if platform:
        parts.append(f'platform: "{platform}"')
    if not omit_max_batch_size:  # e.g. a python model that sets it in auto_complete_config
        parts.append(f"max_batch_size: {max_batch_size}")
    if decoupled is not None:
        parts.append(f"model_transaction_policy {{\n  decoupled: {_value(decoupled)}\n}}")
    if dynamic_batching is not None:
        body = []
        if dynamic_batching.get("preferred_batch_size"):
            body.append(f"  preferred_batch_size: [ {dynamic_batching['preferred_batch_size']} ]")
        body.append(f"  max_queue_delay_microseconds: {dynamic_batching.get('max_queue_delay_microseconds', 0)}")
        if dynamic_batching.get("max_queue_size"):
            body.append(f"  default_queue_policy: {{ max_queue_size: {dynamic_batching['max_queue_size']} }}")
        parts.append("dynamic_batching {\n" + "\n".join(body) + "\n}")
    if inputs:
        parts.append(_tensors("input", inputs))
    if outputs:
        parts.append(_tensors("output", outputs))
    if instance_count is not None:
        parts.append(f"instance_group [\n  {{\n    count: {instance_count}\n    kind: {instance_kind}\n  }}\n]")
    parts.extend(extra)
    if parameters:
        rendered = render_parameters(parameters)
        if rendered:
            parts.append(rendered)
    return "\n\n".join(parts) + "\n"


@dataclass(frozen=True)
class Step:
    model_name: str
    input_map: Mapping[str, str]  # model input -> ensemble tensor
    output_map: Mapping[str, str]  # model output -> ensemble tensor

    def render(self) -> str:
        def maps(kind: str, mapping: Mapping[str, str]) -> str:
            return "\n".join(
                f'      {kind} {{\n        key: "{k}"\n        value: "{v}"\n      }}' for k, v in mapping.items()
            )

        return (
            f'    {{\n      model_name: "{self.model_name}"\n      model_version: -1\n'
            f"{maps('input_map', self.input_map)}\n{maps('output_map', self.output_map)}\n    }}"
        )


def render_ensemble_scheduling(steps: Sequence[Step]) -> str:
    return "ensemble_scheduling {\n  step [\n" + ",\n".join(s.render() for s in steps) + "\n  ]\n}"


def validate(text: str, where: str = "config.pbtxt") -> Any:
    """Parse with Triton's own ModelConfig schema; reject `${...}` placeholders. Returns the message."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    leftover = _PLACEHOLDER.findall(text)
    if leftover:
        raise ConfigError(f"{where}: unfilled placeholders {sorted(set(leftover))}")
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ConfigError(f"{where}: not a valid Triton ModelConfig: {exc}") from exc
