"""Which TensorRT-LLM each NGC Triton container carries, and the container June pins.

One table, one place. Source: Triton's compatibility matrix, "Container Name: trtllm-python-py3"
(github.com/triton-inference-server/server, `docs/introduction/compatibility.md`, branch r26.04 for
the rows up to 26.04, main for 26.05-26.07). June's engine flow is written for TensorRT-LLM 1.2.x;
the pinned container matches tensorrtllm_backend branch r26.04, whose Dockerfile installs
TensorRT-LLM 1.2.1 (`TENSORRTLLM_REPO_TAG=release/1.2.1`) and copies the version-matched
`examples/`, `all_models/` and `scripts/` into `/app`.
"""

from __future__ import annotations

import re

from june_pipelines.serving.errors import VersionError

TRTLLM_RELEASE_LINE = "1.2"  # the release line the engine flow is written for

# Triton release -> TensorRT-LLM version in `nvcr.io/nvidia/tritonserver:<release>-trtllm-python-py3`.
TRITON_TRTLLM_VERSIONS: dict[str, str] = {
    "25.10": "1.0.0",
    "25.11": "1.0.3.2510",
    "25.12": "1.1.0",
    "26.01": "1.1.0",
    "26.02": "1.1.0",
    "26.03": "1.2.0",
    "26.04": "1.2.1",
    "26.05": "1.2.1",
    "26.06": "1.2.1",
    "26.07": "1.2.1",
}
COMPATIBILITY_SOURCE = (
    "triton-inference-server/server docs/introduction/compatibility.md (r26.04; main for 26.05-26.07)"
)

PINNED_TRITON_RELEASE = "26.04"
PINNED_TRTLLM_VERSION = TRITON_TRTLLM_VERSIONS[PINNED_TRITON_RELEASE]
DEFAULT_TRITON_IMAGE = f"nvcr.io/nvidia/tritonserver:{PINNED_TRITON_RELEASE}-trtllm-python-py3"
# The same image runs `trtllm-serve` (it ships the tensorrt_llm wheel), so one pinned image serves both.
DEFAULT_SERVE_IMAGE = DEFAULT_TRITON_IMAGE
EXAMPLES_TAG = f"v{PINNED_TRTLLM_VERSION}"  # TensorRT-LLM tag whose examples/ match the pinned container

# Inside the trtllm-python-py3 images (tensorrtllm_backend r26.04 Dockerfile: WORKDIR /app, COPY ... ).
IMAGE_EXAMPLES = "/app/examples"
IMAGE_ALL_MODELS = "/app/all_models"

_TRITON_TAG = re.compile(r"tritonserver:(\d\d\.\d\d)-trtllm-python-py3$")


def image_trtllm_version(image: str) -> str | None:
    """The TensorRT-LLM version a Triton trtllm image carries, from the table; None if not a known tag."""
    match = _TRITON_TAG.search(image)
    return TRITON_TRTLLM_VERSIONS.get(match.group(1)) if match else None


def matches_release_line(version: str) -> bool:
    return version.strip().startswith(TRTLLM_RELEASE_LINE + ".")


def check_image(image: str) -> None:
    """Refuse, before anything runs, a Triton trtllm image known to carry another TensorRT-LLM line.

    Images outside the table (custom builds, `tensorrt-llm/release:*`) pass here; the version check
    inside the container still guards them.
    """
    version = image_trtllm_version(image)
    if version is not None and not matches_release_line(version):
        good = ", ".join(r for r, v in TRITON_TRTLLM_VERSIONS.items() if matches_release_line(v))
        raise VersionError(
            f"image {image} carries TensorRT-LLM {version}; June's engine flow needs {TRTLLM_RELEASE_LINE}.x "
            f"(Triton releases {good}; default {DEFAULT_TRITON_IMAGE})"
        )


def check_version(version: str) -> None:
    """Refuse an installed TensorRT-LLM outside the release line (what the container or local install reports)."""
    if not matches_release_line(version):
        raise VersionError(
            f"TensorRT-LLM {version.strip()!r} found; this engine flow is written for {TRTLLM_RELEASE_LINE}.x. "
            f"Use the version-matched container image ({DEFAULT_TRITON_IMAGE}; see docs/GPU_RUNBOOK.md)."
        )
