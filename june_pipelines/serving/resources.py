"""Dagster resources for the serving pipeline: the model store, the TensorRT-LLM runner, Triton.

Secrets (HF token, NGC key) come from the environment through `dg.EnvVar` and are never logged or
put in metadata (`describe()` leaves them out).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from june_pipelines.paths import june_home


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
        return {"cache_dir": str(self.path()), "offline": str(self.offline), "hub_endpoint": self.hub_endpoint or "default"}


class TensorRTLLMResource(dg.ConfigurableResource):
    """How TensorRT-LLM steps run: in the NGC container through Docker, or with a local install."""

    runner: str = Field(default="docker", description="docker | local")
    image: str = Field(default="nvcr.io/nvidia/tritonserver:25.12-trtllm-python-py3", description="Version-matched to TensorRT-LLM 1.2.x")
    serve_image: str = Field(default="nvcr.io/nvidia/tensorrt-llm/release:1.2.0", description="Image for trtllm-serve")
    examples_dir: str | None = Field(default=None, description="`examples/` of the matching TensorRT-LLM tag (host path)")
    work_dir: str | None = Field(default=None, description="Checkpoints and engines (default JUNE_HOME/engines)")
    gpus: int = Field(default=-1, description="GPUs per container (-1: all)")

    def root(self) -> Path:
        return Path(self.work_dir).expanduser() if self.work_dir else june_home() / "engines"

    def checkpoint_dir(self, model_id: str) -> Path:
        return self.root() / model_id / "checkpoint"

    def engine_dir(self, model_id: str) -> Path:
        return self.root() / model_id / "engine"


class TritonResource(dg.ConfigurableResource):
    """A Triton server started with `--model-control-mode=explicit`, and the repository it serves."""

    http_url: str = Field(default="127.0.0.1:8000")
    grpc_url: str = Field(default="127.0.0.1:8001")
    repository_dir: str | None = Field(default=None, description="Host path of the server's model repository (default JUNE_HOME/triton/models)")
    engines_mount: str = Field(default="/engines", description="Where the server sees the engines root (TensorRTLLMResource.work_dir)")
    timeout_s: float = 600.0

    def repository(self) -> Path:
        return Path(self.repository_dir).expanduser() if self.repository_dir else june_home() / "triton" / "models"

    def api(self):  # -> TritonRepositoryClient (typed lazily: keeps imports light)
        from june_pipelines.serving.triton_deploy import TritonRepositoryClient

        return TritonRepositoryClient(self.http_url, timeout_s=self.timeout_s)
