"""Dagster resources for the serving pipeline: the model store, the TensorRT-LLM runner, Triton.

The TensorRT-LLM resource is one abstract class with one concrete class per runner (Docker, local),
as the LLM and sandbox resources are: `runner()` returns the object that carries the behaviour.
Secrets (HF token) come from the environment through `dg.EnvVar` and are never logged or put in
metadata (`describe()` leaves them out).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, overload

import dagster as dg
from pydantic import Field

from june_pipelines.paths import june_home
from june_pipelines.registry import ModelSpec
from june_pipelines.serving.trtllm import Runner
from june_pipelines.serving.versions import DEFAULT_SERVE_IMAGE, DEFAULT_TRITON_IMAGE

if TYPE_CHECKING:
    from june_pipelines.serving.layout import ModelLayout
    from june_pipelines.serving.runner import TrtllmRunner
    from june_pipelines.serving.triton_deploy import TritonRepositoryClient


class ModelStoreResource(dg.ConfigurableResource):
    """Where verified weights live, and how the hub is reached."""

    cache_dir: str | None = Field(default=None, description="Default: $JUNE_MODEL_CACHE or ~/.cache/june/models")
    offline: bool | None = Field(default=None, description="Never call the hub (default: HF_HUB_OFFLINE)")
    hf_token: str | None = Field(default=None, description="Hub token for gated models; set with dg.EnvVar('HF_TOKEN')")
    hub_endpoint: str | None = Field(default=None, description="A hub mirror, e.g. an internal proxy")

    def path(self) -> Path:
        from june_pipelines.serving.weights import default_cache_dir

        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()

    def describe(self) -> dict[str, str]:
        return {
            "cache_dir": str(self.path()),
            "offline": str(self.offline),
            "hub_endpoint": self.hub_endpoint or "default",
        }


class TensorRTLLMResource(dg.ConfigurableResource):
    """How TensorRT-LLM steps run; see `DockerTensorRTLLMResource` and `LocalTensorRTLLMResource`."""

    kind: ClassVar[Runner]
    examples_dir: str | None = Field(
        default=None, description="Host `examples/` of the matching TensorRT-LLM tag (docker: default the image's own)"
    )
    work_dir: str | None = Field(default=None, description="Checkpoints and engines (default JUNE_HOME/engines)")
    gpus: int = Field(default=-1, description="GPUs per container (-1: all)")

    def root(self) -> Path:
        return Path(self.work_dir).expanduser() if self.work_dir else june_home() / "engines"

    def _examples(self) -> Path | None:
        return Path(self.examples_dir).expanduser() if self.examples_dir else None

    def layout(self, spec: ModelSpec, store: ModelStoreResource, triton: TritonResource | None = None) -> ModelLayout:
        from june_pipelines.serving.layout import ModelLayout

        return ModelLayout(spec, store.path(), self.root(), triton.repository() if triton else None)

    @abstractmethod
    def runner(self) -> TrtllmRunner: ...

    @property
    def serving_image(self) -> str:
        """The image `trtllm-serve` and the Triton server run in (recorded in metadata)."""
        return "local"


class DockerTensorRTLLMResource(TensorRTLLMResource):
    """Steps in the version-matched NGC Triton container, through the Docker engine, with a GPU request."""

    kind: ClassVar[Runner] = "docker"
    image: str = Field(default=DEFAULT_TRITON_IMAGE, description="Carries TensorRT-LLM 1.2.x (see serving/versions.py)")
    serve_image: str = Field(default=DEFAULT_SERVE_IMAGE, description="Image for trtllm-serve")

    def runner(self) -> TrtllmRunner:
        from june_pipelines.serving.runner import DockerRunner

        return DockerRunner(self.image, self.serve_image, self.gpus, self._examples())

    @property
    def serving_image(self) -> str:
        return self.serve_image


class LocalTensorRTLLMResource(TensorRTLLMResource):
    """Steps with the `tensorrt_llm` installed in this environment (`examples_dir` required)."""

    kind: ClassVar[Runner] = "local"

    def runner(self) -> TrtllmRunner:
        from june_pipelines.serving.runner import LocalRunner

        return LocalRunner(self.gpus, self._examples())


TRTLLM_RESOURCES: dict[Runner, type[TensorRTLLMResource]] = {
    "docker": DockerTensorRTLLMResource,
    "local": LocalTensorRTLLMResource,
}


class TritonResource(dg.ConfigurableResource):
    """A Triton server started with `--model-control-mode=explicit`, and the repository it serves."""

    http_url: str = Field(default="127.0.0.1:8000")
    grpc_url: str = Field(default="127.0.0.1:8001")
    repository_dir: str | None = Field(
        default=None, description="Host path of the server's model repository (default JUNE_HOME/triton/models)"
    )
    timeout_s: float = 600.0

    def repository(self) -> Path:
        return Path(self.repository_dir).expanduser() if self.repository_dir else june_home() / "triton" / "models"

    def api(self) -> TritonRepositoryClient:
        from june_pipelines.serving.triton_deploy import TritonRepositoryClient

        return TritonRepositoryClient(self.http_url, timeout_s=self.timeout_s)


@overload
def _env_or(name: str, default: str) -> str: ...
@overload
def _env_or(name: str, default: None) -> str | None: ...
def _env_or(name: str, default: str | None) -> str | None:
    """`dg.EnvVar(name)` when the variable is set (resolved at run time, shown as a variable), else the default."""
    import os

    return dg.EnvVar(name) if os.environ.get(name) else default


def serving_resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The serving domain's resources, bound in its own `defs`.

    JUNE_TRTLLM_RUNNER: docker (default) | local picks the TensorRT-LLM resource class;
    JUNE_TRTLLM_IMAGE, JUNE_TRTLLM_EXAMPLES, JUNE_TRITON_HTTP, JUNE_TRITON_GRPC and HF_TOKEN are
    passed as `dg.EnvVar`, so nothing is read until a run starts (and the token is never shown).
    """
    import os

    from june_pipelines.serving.errors import ServingInputError

    runner = os.environ.get("JUNE_TRTLLM_RUNNER", "docker")
    if runner not in TRTLLM_RESOURCES:
        raise ServingInputError(f"JUNE_TRTLLM_RUNNER={runner!r}: expected docker or local")
    trtllm: TensorRTLLMResource
    if runner == "docker":
        trtllm = DockerTensorRTLLMResource(
            image=_env_or("JUNE_TRTLLM_IMAGE", DEFAULT_TRITON_IMAGE), examples_dir=_env_or("JUNE_TRTLLM_EXAMPLES", None)
        )
    else:
        trtllm = LocalTensorRTLLMResource(examples_dir=_env_or("JUNE_TRTLLM_EXAMPLES", None))
    return {
        "model_store": ModelStoreResource(hf_token=_env_or("HF_TOKEN", None)),
        "trtllm": trtllm,
        "triton": TritonResource(
            http_url=_env_or("JUNE_TRITON_HTTP", "127.0.0.1:8000"),
            grpc_url=_env_or("JUNE_TRITON_GRPC", "127.0.0.1:8001"),
        ),
    }
