"""The production layout's processes, as Dagster's deployment docs describe it.

- the code server (`dagster code-server start`): loads `june_pipelines.definitions` and serves it
  over gRPC as the code location `june`; the only process that imports June's code;
- the webserver (`dagster-webserver`): the UI and GraphQL API; launching a run only queues it;
- the daemon (`dagster-daemon run`): drains the run queue within dagster.yaml's limits, ticks the
  schedules and sensors, and launches runs through the instance's run launcher.

Webserver and daemon find the code server through a workspace file (`grpc_server` entry). Each can
run alone (`june deploy code-server|webserver|daemon`, one per container in deploy/docker-compose.yml)
or the three together on one machine (`Layout`: `june deploy up`, `june ui`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from june_pipelines.deploy.instance import grpc_workspace

LOCATION_NAME = "june"
DEFINITIONS_MODULE = "june_pipelines.definitions"
DEFAULT_CODE_SERVER_PORT = 4266
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


class ServiceError(RuntimeError):
    """A service did not start or stopped unexpectedly (one line, with where its log is)."""


def code_server_command(host: str, port: int, log_level: str = "warning", image: str | None = None) -> list[str]:
    command = [
        sys.executable, "-m", "dagster", "code-server", "start",
        "-m", DEFINITIONS_MODULE, "--location-name", LOCATION_NAME,
        "-h", host, "-p", str(port), "--log-level", log_level,
    ]
    if image:  # the image DockerRunLauncher starts runs from (else DAGSTER_CURRENT_IMAGE)
        command += ["--container-image", image]
    return command


def webserver_command(workspace: Path, host: str, port: int, log_level: str = "warning") -> list[str]:
    return [
        sys.executable, "-m", "dagster_webserver", "-w", str(workspace), "-h", host, "-p", str(port),
        "--log-level", log_level, "--dagster-log-level", log_level, "--code-server-log-level", log_level,
    ]


def daemon_command(workspace: Path, log_level: str = "warning") -> list[str]:
    return [
        sys.executable, "-m", "dagster._daemon", "run", "-w", str(workspace),
        "--log-level", log_level, "--code-server-log-level", log_level,
    ]


def ui_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def code_server_answers(host: str, port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    try:
        DagsterGrpcClient(port=port, host=host).ping("june")
    except Exception:
        return False
    return True


def webserver_answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/server_info", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def migrate_instance() -> None:
    """Create or migrate the instance's schema (PostgreSQL tables are created on first connection;
    upgrades between Dagster versions need this, as `dagster instance migrate` does)."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        instance.upgrade(print_fn=lambda _: None)


@dataclass
class _Process:
    name: str
    command: list[str]
    log_path: Path | None
    popen: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None


@dataclass
class Layout:
    """Code server, daemon and webserver as separate processes on one instance (DAGSTER_HOME).

    Output of the services goes to `log_dir/<name>.log` when given, else to this terminal (at
    `log_level`, so only real problems show). Use as a context manager: everything stops on exit.
    """

    dagster_home: Path
    host: str = "127.0.0.1"
    port: int = 3000
    code_server_host: str = "127.0.0.1"
    code_server_port: int = DEFAULT_CODE_SERVER_PORT
    log_level: str = "warning"
    log_dir: Path | None = None
    image: str | None = None
    env: Mapping[str, str] | None = None
    startup_timeout_s: float = 180.0
    processes: list[_Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return ui_url(self.host, self.port)

    def _environment(self) -> dict[str, str]:
        from june_pipelines.paths import june_home

        env = dict(os.environ if self.env is None else self.env)
        env["DAGSTER_HOME"] = str(self.dagster_home)
        env.setdefault("JUNE_HOME", str(june_home()))  # the same results folder in every process
        env.pop("JUNE_PROGRESS_BAR", None)  # runs log progress per batch; bars belong to the CLI
        return env

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> _Process:
        process = _Process(name, command, self.log_dir / f"{name}.log" if self.log_dir else None)
        if process.log_path:
            process.log_path.parent.mkdir(parents=True, exist_ok=True)
            process.log = process.log_path.open("ab")
        process.popen = subprocess.Popen(
            command, env=env, stdout=process.log, stderr=subprocess.STDOUT if process.log else None,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        self.processes.append(process)
        return process

    def _wait(self, what: str, ready: Any) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while not ready():
            self.check()
            if time.monotonic() > deadline:
                raise ServiceError(f"{what} did not answer within {self.startup_timeout_s:.0f}s{self._logs_hint()}")
            time.sleep(0.5)

    def _logs_hint(self) -> str:
        return f" (logs in {self.log_dir})" if self.log_dir else ""

    def start(self) -> Layout:
        env = self._environment()
        self._spawn("code-server", code_server_command(self.code_server_host, self.code_server_port, self.log_level,
                                                       self.image), env)
        self._wait("the code server", lambda: code_server_answers(self.code_server_host, self.code_server_port))
        workspace = grpc_workspace(self.dagster_home, self.code_server_host, self.code_server_port, LOCATION_NAME)
        self._spawn("daemon", daemon_command(workspace, self.log_level), env)
        self._spawn("webserver", webserver_command(workspace, self.host, self.port, self.log_level), env)
        self._wait("the webserver", lambda: webserver_answers(self.url))
        return self

    def check(self) -> None:
        """Raise if a service has exited."""
        for process in self.processes:
            assert process.popen is not None
            code = process.popen.poll()
            if code is not None:
                where = f"; see {process.log_path}" if process.log_path else ""
                raise ServiceError(f"{process.name} exited with code {code}{where}")

    def stop(self, timeout_s: float = 20.0) -> None:
        """Webserver and daemon first, the code server last; SIGTERM, then SIGKILL after `timeout_s`."""
        for process in reversed(self.processes):
            if process.popen and process.popen.poll() is None:
                os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in reversed(self.processes):
            if process.popen is None:
                continue
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait()
            if process.log:
                process.log.close()
        self.processes.clear()

    def __enter__(self) -> Layout:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a service manager, `timeout`, `docker stop`) stops a Layout as Ctrl-C does: its
    services are stopped instead of orphaned. SIGINT is handled here too: a process started in the
    background of a non-interactive shell inherits SIGINT ignored, and would otherwise never stop
    on it (python-telegram-bot's gateways install their stop signals the same way)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_until_interrupted(layout: Layout) -> None:
    """Block while every service runs; ServiceError when one exits."""
    while True:
        time.sleep(1)
        layout.check()
