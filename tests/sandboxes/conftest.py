"""Real sandbox pools (process and Docker) shared by the sandbox tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sandbox_helpers import DOCKER, ensure_image

from june_pipelines.sandboxes.base import SandboxBackend


@pytest.fixture(scope="session")
def process_pool() -> Iterator[SandboxBackend]:
    from june_pipelines.sandboxes.process import ProcessSandbox

    with ProcessSandbox(workers=2) as backend:
        backend.watchdog_grace_s = 2.0  # type: ignore[attr-defined]
        yield backend


@pytest.fixture(scope="session")
def docker_pool() -> Iterator[SandboxBackend]:
    if not DOCKER:
        pytest.skip("no Docker engine answers (DOCKER_HOST / /var/run/docker.sock)")
    ensure_image()
    from june_pipelines.sandboxes.docker import DockerSandbox

    with DockerSandbox(workers=2, memory_mb=256, pids_limit=64) as backend:
        backend.watchdog_grace_s = 2.0  # type: ignore[attr-defined]
        yield backend


@pytest.fixture(params=["process", pytest.param("docker", marks=pytest.mark.docker)])
def pool(request: pytest.FixtureRequest) -> SandboxBackend:
    return request.getfixturevalue(f"{request.param}_pool")
