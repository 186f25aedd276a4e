"""Real gateway processes against the fake Bot API: the API runs on a background event loop, the
gateways are `june bot telegram` (or a script) in their own processes, as in production."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
from fake_telegram_api import TOKEN, FakeBotAPI

T = TypeVar("T")
JUNE = Path(sys.executable).with_name("june")


class ThreadedBotAPI:
    """The fake Bot API on its own event loop thread, usable from synchronous tests."""

    def __init__(self) -> None:
        self.api = FakeBotAPI()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedBotAPI:
        self._thread.start()
        self.call(self.api.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self.api.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 120, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not met within {timeout} s")
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gateway_env(api: FakeBotAPI, home: Path, inbox: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "JUNE_", "DISCORD_"))}
    env.update({
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": api.base_url, "JUNE_HOME": str(home),
        "JUNE_SANDBOX": "process", "TELEGRAM_RATE_LIMIT": "1000/60", "PYTHONUNBUFFERED": "1",
    })
    if "url" in inbox:
        env["JUNE_POSTGRES_URL"] = inbox["url"]
    else:
        env["JUNE_INBOX_DB"] = inbox["path"]
    env.update(extra)
    return env


class GatewayProcess:
    """One gateway process; its stderr (the log) goes to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, metrics_port: int | None = None) -> None:
        self.log = log
        self.metrics_port = metrics_port
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @classmethod
    def june(cls, env: dict[str, str], log: Path, *options: str, metrics_port: int | None = None) -> GatewayProcess:
        args = [str(JUNE), "bot", "telegram", *options]
        if metrics_port is not None:
            args += ["--metrics-port", str(metrics_port)]
        return cls(args, env, log, metrics_port)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.metrics_port}{path}"

    def wait_healthy(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                if httpx.get(self.url("/healthz"), timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"gateway not healthy after {timeout} s:\n{self.log_text()[-3000:]}")

    def metric(self, name: str, labels: dict[str, str]) -> float:
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(self.url("/metrics"), timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def log_text(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log_file.close()
        return int(self.proc.returncode)
