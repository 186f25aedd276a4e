"""Helpers of the deployment tests and tests/deploy/bench_deploy.py: a fake Telegram Bot API on a
thread of its own, and a whole deployment (PostgreSQL, code server, daemon, webserver, Docker runs)
rooted in a temporary JUNE_HOME. (A module of its own: `from conftest import` finds whichever
conftest was imported first.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bots"))  # the fake Bot API lives with the bot tests

from fake_telegram_api import TOKEN as BOT_TOKEN  # noqa: E402
from fake_telegram_api import FakeBotAPI  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


@dataclass
class Deployment:
    env: dict[str, str]
    home: Path
    layout: Any  # june_pipelines.deploy.services.Layout
    ui: Any  # june_pipelines.deploy.graphql.DagsterUI
    instance: dg.DagsterInstance
    bot_api: BotAPIThread
    image: str


@contextlib.contextmanager
def start_deployment(code_image: str, bot_api: BotAPIThread, home: Path) -> Iterator[Deployment]:
    """A fresh PostgreSQL database, then code server, daemon and webserver with the DockerRunLauncher
    (host network: runs reach PostgreSQL and the fake Bot API on loopback), rooted in `home`. This
    process's environment points at the same instance and inbox while it runs."""
    from postgres_support import fresh_database

    from june_pipelines.deploy.graphql import DagsterUI
    from june_pipelines.deploy.instance import write_instance_config
    from june_pipelines.deploy.services import Layout
    from june_pipelines.paths import INSTANCE_TEMPLATE

    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    with fresh_database("june_deploy") as url, _patched_env({
        "JUNE_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "JUNE_POSTGRES_URL": url,
        "JUNE_RUN_LAUNCHER": "docker",
        "JUNE_RUN_NETWORK": "host",
        "JUNE_SANDBOX": "docker",
        "JUNE_SMOKE_CRON": "* * * * *",
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_BASE_URL": bot_api.base_url,
    }):
        env = dict(os.environ)
        assert write_instance_config(dagster_home, INSTANCE_TEMPLATE, env)
        layout = Layout(dagster_home, port=free_port(), code_server_port=free_port(), log_level="info",
                        log_dir=home / "logs", image=code_image, env=env)
        try:
            with layout, dg.DagsterInstance.get() as instance:
                instance.add_dynamic_partitions("models", ["smollm2"])
                ui = DagsterUI(layout.url)
                yield Deployment(env, home, layout, ui, instance, bot_api, code_image)
                ui.close()
        finally:
            remove_run_containers()


@contextlib.contextmanager
def _patched_env(values: dict[str, str]) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        patch.delenv("JUNE_PROGRESS_BAR", raising=False)
        yield


def remove_run_containers() -> None:
    from june_pipelines.sandboxes.image import docker_client

    client = docker_client()
    for container in client.containers.list(all=True, filters={"label": "june/role=run"}):
        container.remove(force=True)
    client.close()
