"""Upstream's python models (`all_models/`), copied whole into a generated repository.

June writes its own configs and its own pre/post-processing, but two models are NVIDIA's and must
come from the TensorRT-LLM release that serves them: the llmapi `tensorrt_llm` model
(`llmapi/tensorrt_llm/1/`: model.py imports helpers.py beside it) and the python-backend
`tensorrt_llm` model (`inflight_batcher_llm/tensorrt_llm/1/`). They are copied folder and all,
either from the serving image (`/app/all_models` in the trtllm-python-py3 images) or from a host
copy of `triton_backend/all_models` of the matching TensorRT-LLM tag.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath

from june_pipelines.serving.errors import ServingError, ServingInputError
from june_pipelines.serving.versions import IMAGE_ALL_MODELS

LLMAPI_MODEL = "llmapi/tensorrt_llm/1"
PYTHON_BACKEND_MODEL = "inflight_batcher_llm/tensorrt_llm/1"


class UpstreamModelsError(ServingError, RuntimeError):
    """The upstream model files could not be copied (no Docker, image not pulled, path missing)."""


class UpstreamModels(ABC):
    """A source of upstream's `all_models/` folders."""

    @abstractmethod
    def copy(self, relative: str, dest: Path) -> list[str]:
        """Copy the folder `all_models/<relative>` into `dest`; returns the file names copied."""

    @abstractmethod
    def describe(self) -> str: ...


class DirectoryModels(UpstreamModels):
    """A host copy of `all_models/` (e.g. `TensorRT-LLM/triton_backend/all_models` at the matching tag)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise ServingInputError(f"upstream models directory {self.root} does not exist")

    def copy(self, relative: str, dest: Path) -> list[str]:
        source = self.root / relative
        if not source.is_dir() or not any(source.iterdir()):
            raise ServingInputError(f"{source} is missing or empty: expected upstream's all_models/{relative}")
        shutil.copytree(source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())

    def describe(self) -> str:
        return str(self.root)


class ImageModels(UpstreamModels):
    """`/app/all_models` inside a (pulled) image, read through the Docker engine without starting it."""

    def __init__(self, image: str, root: str = IMAGE_ALL_MODELS) -> None:
        self.image = image
        self.root = root

    def copy(self, relative: str, dest: Path) -> list[str]:
        try:
            import docker
            from docker.errors import DockerException, ImageNotFound, NotFound
        except ImportError as exc:
            raise UpstreamModelsError(
                "the docker Python SDK is not installed (pip install 'june-pipelines[docker]')"
            ) from exc
        path = f"{self.root}/{relative}"
        try:
            client = docker.from_env(timeout=30)
            container = client.containers.create(self.image, command=["true"])
        except ImageNotFound as exc:
            raise UpstreamModelsError(
                f"image {self.image} is not on this host: `docker pull {self.image}` first"
            ) from exc
        except DockerException as exc:
            raise UpstreamModelsError(f"cannot read {self.image} through the Docker engine: {exc}") from exc
        try:
            stream, _ = container.get_archive(path)
            archive = io.BytesIO(b"".join(stream))
        except NotFound as exc:
            raise UpstreamModelsError(f"{self.image} has no {path}") from exc
        finally:
            container.remove(force=True)
        return _extract(archive, PurePosixPath(path).name, dest)

    def describe(self) -> str:
        return f"{self.image}:{self.root}"


def _extract(archive: io.BytesIO, top: str, dest: Path) -> list[str]:
    """Extract a `docker cp`-style tar (entries under `<top>/`) into `dest`, regular files only."""
    dest.mkdir(parents=True, exist_ok=True)
    copied: list[str] = []
    with tarfile.open(fileobj=archive) as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or len(parts) < 2 or parts[0] != top or ".." in parts or "__pycache__" in parts:
                continue
            rel = Path(*parts[1:])
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:
                continue
            target.write_bytes(source.read())
            copied.append(rel.as_posix())
    if not copied:
        raise UpstreamModelsError(f"no files under {top}/ in the archive")
    return sorted(copied)
