"""Real sandbox pools (process and Docker) shared by the sandbox tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from docker_support import ensure_image, require_docker
from sandbox_helpers import sandbox_processes

from june_pipelines.sandboxes.base import SandboxBackend


@pytest.fixture(scope="session")
def process_pool() -> Iterator[SandboxBackend]:
    from june_pipelines.sandboxes.process import ProcessSandbox

    with ProcessSandbox(workers=2) as backend:
        backend.watchdog_grace_s = 2.0  # type: ignore[attr-defined]
        yield backend
    if os.geteuid() == 0:  # no program of the suite outlived the pool
        assert sandbox_processes() == []


@pytest.fixture(scope="session")
def docker_pool() -> Iterator[SandboxBackend]:
    require_docker()
    ensure_image()
    from june_pipelines.sandboxes.docker import DockerSandbox

    with DockerSandbox(workers=2, memory_mb=256, pids_limit=64) as backend:
        backend.watchdog_grace_s = 2.0  # type: ignore[attr-defined]
        yield backend
    # After the whole suite ran through this pool: nothing of it is left.
    from june_pipelines.sandboxes.image import docker_client

    client = docker_client()
    leftovers = client.containers.list(all=True, filters={"label": f"june.sandbox.run={backend.run_id}"})
    client.close()
    assert leftovers == [], leftovers
    if os.geteuid() == 0:
        assert sandbox_processes() == []


@pytest.fixture(params=["process", pytest.param("docker", marks=pytest.mark.docker)])
def pool(request: pytest.FixtureRequest) -> SandboxBackend:
    return request.getfixturevalue(f"{request.param}_pool")
