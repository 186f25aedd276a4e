"""Upstream's model folders copied from an image through the real Docker engine (no container is started).

The image is a tiny one imported here with the trtllm-python-py3 layout (`/app/all_models/...`), holding
the stand-in files of tests/serving/fake_models.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path

import pytest
from docker_support import require_docker

from june_pipelines.serving.upstream_models import LLMAPI_MODEL, ImageModels, UpstreamModelsError

FAKE_ALL_MODELS = Path(__file__).parent / "fake_models" / "all_models"


@pytest.fixture(scope="module")
def image():
    require_docker()
    import docker

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(FAKE_ALL_MODELS.rglob("*.py")):
            tar.add(path, arcname=f"app/all_models/{path.relative_to(FAKE_ALL_MODELS).as_posix()}")
    client = docker.from_env()
    tag = f"june-test-all-models:{uuid.uuid4().hex[:8]}"
    client.api.import_image_from_data(buffer.getvalue(), repository=tag.split(":")[0], tag=tag.split(":")[1])
    yield tag
    client.images.remove(tag, force=True)
    client.close()


def test_llmapi_folder_comes_whole_from_the_image(image, tmp_path):
    copied = ImageModels(image).copy(LLMAPI_MODEL, tmp_path / "1")
    assert copied == ["helpers.py", "model.py"]
    source = FAKE_ALL_MODELS / LLMAPI_MODEL
    assert (tmp_path / "1" / "helpers.py").read_text() == (source / "helpers.py").read_text()


def test_missing_folder_and_missing_image_are_clear(image, tmp_path):
    with pytest.raises(UpstreamModelsError, match="has no /app/all_models/nope"):
        ImageModels(image).copy("nope", tmp_path / "x")
    with pytest.raises(UpstreamModelsError, match="docker pull"):
        ImageModels("june-test-no-such-image:0").copy(LLMAPI_MODEL, tmp_path / "y")
