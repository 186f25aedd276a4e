"""Fixtures for the deployment tests: the code-location image (built once per source tree) and a
fake Telegram Bot API (tests/deploy/deploy_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from deploy_support import BotAPIThread


@pytest.fixture(scope="session")
def code_image() -> str:
    """june-code:<hash of this source tree>; the runtime layer is reused while uv.lock is unchanged."""
    from docker_support import require_docker

    require_docker()
    from june_pipelines.deploy.image import ensure_code_image

    return ensure_code_image(log=lambda line: print(f"[image] {line}", flush=True))


@pytest.fixture(scope="module")
def bot_api() -> Iterator[BotAPIThread]:
    with BotAPIThread() as server:
        yield server
