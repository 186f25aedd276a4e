"""Triton's repository and health API over HTTP: readiness, index, load/unload, model switching.

Load and unload need the server started with `--model-control-mode=explicit`. Loading an ensemble
loads its composing models; unloading with `unload_dependents` unloads them too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class ModelState:
    name: str
    version: str
    state: str  # READY, UNAVAILABLE, LOADING, UNLOADING, or "" for never loaded
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "state": self.state, "reason": self.reason}


@dataclass(frozen=True)
class DeploymentState:
    server_ready: bool
    entry_model: str
    entry_ready: bool
    models: tuple[ModelState, ...]
    server_version: str

    def metadata(self) -> dict[str, Any]:
        ready = [m.name for m in self.models if m.state == "READY"]
        problems = {m.name: f"{m.state}: {m.reason}" for m in self.models if m.state not in ("READY", "") and m.reason}
        return {
            "server_ready": self.server_ready,
            "server_version": self.server_version,
            "entry_model": self.entry_model,
            "entry_ready": self.entry_ready,
            "ready_models": ready,
            "model_states": {m.name: m.state or "UNLOADED" for m in self.models},
            "reasons": problems,
        }


def _base(url: str) -> str:
    return url if url.startswith(("http://", "https://")) else f"http://{url}"


class TritonRepositoryClient:
    def __init__(self, url: str, timeout_s: float = 600.0) -> None:
        self.url = _base(url).rstrip("/")
        self.timeout_s = timeout_s

    def _get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def _post(self, path: str, body: dict | None = None, timeout: float | None = None) -> httpx.Response:
        return httpx.post(self.url + path, json=body or {}, timeout=timeout or self.timeout_s)

    def live(self) -> bool:
        try:
            return self._get("/v2/health/live").status_code == 200
        except httpx.HTTPError:
            return False

    def ready(self) -> bool:
        try:
            return self._get("/v2/health/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def server_metadata(self) -> dict:
        try:
            response = self._get("/v2")
        except httpx.HTTPError as exc:
            raise DeployError(f"Triton at {self.url} is unreachable: {exc}") from exc
        response.raise_for_status()
        return response.json()

    def model_ready(self, name: str) -> bool:
        try:
            return self._get(f"/v2/models/{name}/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def index(self) -> list[ModelState]:
        try:
            response = self._post("/v2/repository/index", timeout=30)
        except httpx.HTTPError as exc:
            raise DeployError(f"Triton at {self.url} is unreachable: {exc}") from exc
        if response.status_code != 200:
            raise DeployError(f"repository index failed ({response.status_code}): {response.text}")
        return [
            ModelState(m["name"], str(m.get("version", "")), m.get("state", ""), m.get("reason", ""))
            for m in response.json()
        ]

    def load(self, name: str) -> None:
        try:
            response = self._post(f"/v2/repository/models/{name}/load")
        except httpx.HTTPError as exc:
            raise DeployError(f"loading {name!r} on {self.url} failed: {exc}") from exc
        if response.status_code != 200:
            detail = response.json().get("error", response.text) if response.content else ""
            hint = ""
            if "explicit" in detail or "polling is enabled" in detail or "not allowed" in detail:
                hint = " (start tritonserver with --model-control-mode=explicit)"
            raise DeployError(f"loading {name!r} failed ({response.status_code}): {detail}{hint}")

    def unload(self, name: str, unload_dependents: bool = True) -> None:
        body = {"parameters": {"unload_dependents": unload_dependents}}
        try:
            response = self._post(f"/v2/repository/models/{name}/unload", body)
        except httpx.HTTPError as exc:
            raise DeployError(f"unloading {name!r} on {self.url} failed: {exc}") from exc
        if response.status_code != 200:
            raise DeployError(f"unloading {name!r} failed ({response.status_code}): {response.text}")

    def wait_unloaded(self, names: Iterable[str], timeout_s: float = 60.0) -> None:
        """Unload is asynchronous in Triton; wait until none of `names` is READY or UNLOADING."""
        names = set(names)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            busy = [m for m in self.index() if m.name in names and m.state in ("READY", "UNLOADING")]
            if not busy:
                return
            time.sleep(0.2)
        raise DeployError(f"models still loaded after {timeout_s} s: {sorted(names)}")

    def state(self, entry_model: str) -> DeploymentState:
        meta = self.server_metadata()
        return DeploymentState(
            server_ready=self.ready(),
            entry_model=entry_model,
            entry_ready=self.model_ready(entry_model),
            models=tuple(self.index()),
            server_version=str(meta.get("version", "")),
        )

    def deploy(self, entry_model: str, unload: Iterable[str] = (), unload_first: bool = True) -> DeploymentState:
        """Make `entry_model` (and its composing models) the served model, unloading `unload`.

        `unload_first` frees GPU memory before loading (two engines rarely fit at once); with False
        the old model keeps serving until the new one is ready.
        """
        others = [m for m in unload if m != entry_model]
        if unload_first:
            for name in others:
                self.unload(name)
            if others:
                self.wait_unloaded(others)
        self.load(entry_model)
        if not unload_first:
            for name in others:
                self.unload(name)
        state = self.state(entry_model)
        if not state.entry_ready:
            reasons = {m.name: m.reason for m in state.models if m.reason}
            raise DeployError(f"{entry_model!r} is not ready after loading: {reasons}")
        return state
