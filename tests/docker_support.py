"""Whether the Docker tests can run here, shared by every test folder that needs the engine."""

from __future__ import annotations

import os

import pytest


def docker_engine_answers() -> bool:
    try:
        from june_pipelines.sandboxes.image import docker_client

        client = docker_client(timeout=5)
        client.ping()
        client.close()
    except Exception:
        return False
    return True


DOCKER = docker_engine_answers()


def require_docker() -> None:
    """Skip without a Docker engine, except where one is required (CI sets JUNE_REQUIRE_DOCKER=1):
    there a missing engine fails the Docker tests instead of silently skipping them."""
    if DOCKER:
        return
    message = "no Docker engine answers (DOCKER_HOST / /var/run/docker.sock)"
    if os.environ.get("JUNE_REQUIRE_DOCKER") == "1":
        pytest.fail(message + " but JUNE_REQUIRE_DOCKER=1")
    pytest.skip(message)


def ensure_image() -> None:
    from june_pipelines.sandboxes.image import DEFAULT_IMAGE, build_image, image_exists

    if not image_exists(DEFAULT_IMAGE):
        build_image(DEFAULT_IMAGE)  # needs root and debootstrap; fails loudly otherwise
