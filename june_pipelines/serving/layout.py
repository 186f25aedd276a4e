"""Names, paths and mounts of one registered model, derived in one place from its spec.

Every caller (the assets, `june engine`, `june triton`, the Triton LLM resource) asks this module:
- Triton model names: `<served name>-<component>`; clients call the entry model (`-ensemble` for the
  inflight layout, `-tensorrt_llm` for llmapi);
- host paths: the model store entry (`<store>/<id>/<revision or local>`), the checkpoint and engine
  directories (`<engines root>/<id>/checkpoint|engine`) and their logs;
- server-side paths, as the Triton container sees them: the repository at /models, the engines root
  at /engines, the model store at /weights (the mounts `trtllm.triton_container` makes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from june_pipelines.registry import ModelSpec

Layout = Literal["inflight", "llmapi"]
ENTRY_COMPONENT: dict[str, str] = {"inflight": "ensemble", "llmapi": "tensorrt_llm"}


def name_prefix(spec: ModelSpec) -> str:
    return f"{spec.name_for_server}-"


def triton_name(spec: ModelSpec, component: str) -> str:
    """The Triton model name of one component (ensemble, preprocessing, tensorrt_llm, ...)."""
    return f"{name_prefix(spec)}{component}"


def entry_model(spec: ModelSpec, layout: Layout) -> str:
    """The Triton model clients call for this model and layout."""
    return triton_name(spec, ENTRY_COMPONENT[layout])


@dataclass(frozen=True)
class ModelLayout:
    """One model's places on this host and inside the serving containers."""

    spec: ModelSpec
    store_root: Path
    engines_root: Path
    repository_root: Path | None = None

    # ---- host paths -----------------------------------------------------------------------------

    @property
    def weights_dir(self) -> Path:
        """Where the store keeps this model's weights (present or not)."""
        from june_pipelines.serving.weights import entry_path

        return entry_path(self.store_root, self.spec)

    def verified_weights(self) -> Path:
        """The weights directory after a quick manifest check; raises WeightsMissing."""
        from june_pipelines.serving.errors import WeightsMissing
        from june_pipelines.serving.weights import WeightsError, verified_entry

        try:
            return verified_entry(self.store_root, self.spec)
        except WeightsError as exc:
            raise WeightsMissing(str(exc)) from exc

    @property
    def model_root(self) -> Path:
        return self.engines_root / self.spec.id

    @property
    def checkpoint_dir(self) -> Path:
        return self.model_root / "checkpoint"

    @property
    def engine_dir(self) -> Path:
        return self.model_root / "engine"

    @property
    def checkpoint_log(self) -> Path:
        return self.model_root / "checkpoint.log"

    @property
    def build_log(self) -> Path:
        return self.model_root / "build.log"

    @property
    def serve_log(self) -> Path:
        return self.model_root / "serve.log"

    # ---- names ----------------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        return name_prefix(self.spec)

    def entry_model(self, layout: Layout) -> str:
        return entry_model(self.spec, layout)

    def deployed_layout(self) -> Layout:
        """The layout this model's entries in the repository were generated with."""
        if self.repository_root is not None and (self.repository_root / triton_name(self.spec, "ensemble")).is_dir():
            return "inflight"
        return "llmapi"

    def serve_container_name(self) -> str:
        return f"june-trtllm-serve-{self.spec.id}"

    # ---- inside the Triton container ------------------------------------------------------------

    @property
    def server_engine_dir(self) -> str:
        from june_pipelines.serving.trtllm import SERVER_ENGINES

        return f"{SERVER_ENGINES}/{self.engine_dir.relative_to(self.engines_root).as_posix()}"

    @property
    def server_weights_dir(self) -> str:
        from june_pipelines.serving.trtllm import SERVER_WEIGHTS

        return f"{SERVER_WEIGHTS}/{self.weights_dir.relative_to(self.store_root).as_posix()}"
