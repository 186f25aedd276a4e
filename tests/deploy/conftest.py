"""Fixtures for the deployment tests: the code-location image (built once), a fake Telegram Bot API on
a thread of its own, and the environment of a deployment rooted in a temporary JUNE_HOME."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bots"))  # the fake Bot API lives with the bot tests

from fake_telegram_api import TOKEN, FakeBotAPI  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def code_image() -> str:
    """june-code:<hash of this source tree>; the runtime layer is reused while uv.lock is unchanged."""
    from docker_support import require_docker

    require_docker()
    from june_pipelines.deploy.image import ensure_code_image

    return ensure_code_image(log=lambda line: print(f"[image] {line}", flush=True))


class BotAPIThread:
    """FakeBotAPI served from a background event loop, for tests that are not async themselves."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-bot-api", daemon=True)
        self.api = FakeBotAPI()

    def __enter__(self) -> BotAPIThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.api.start(), self.loop).result(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.api.stop(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    @property
    def base_url(self) -> str:
        return self.api.base_url

    def messages(self, chat_id: int) -> list[Any]:
        return list(self.api.sent("sendMessage", chat_id))


@pytest.fixture(scope="module")
def bot_api() -> Iterator[BotAPIThread]:
    with BotAPIThread() as server:
        yield server


BOT_TOKEN = TOKEN
