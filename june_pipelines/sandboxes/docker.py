"""Docker backend: a warm pool of locked-down containers, each running the fork-server.

The fork-server source goes in over the container's attached stdin (no bind mounts); programs go
in and verdicts come out over the same attach socket. Containers have no network, a read-only
root, a small tmpfs for work dirs, no capabilities, no-new-privileges, a per-slot unprivileged uid,
pids/memory/CPU limits and no host environment. A container that breaks (OOM-killed, wedged
fork-server) is removed and replaced; the program that was in it gets an ERROR verdict.

Containers carry the label `june.sandbox=1` plus the owner's host and pid, so leftovers of a
crashed run are removed at pool start-up and by `june sandbox cleanup`.
"""

from __future__ import annotations

import os
import secrets
import select
import socket
import struct
import time
from typing import Any

from june_pipelines.sandboxes.base import SandboxInfo
from june_pipelines.sandboxes.forkserver import BOOTSTRAP
from june_pipelines.sandboxes.image import DEFAULT_IMAGE, docker_client
from june_pipelines.sandboxes.pool import Channel, ForkServerPool, handshake

LABEL = "june.sandbox"
UID_BASE = 62000
START_TIMEOUT_S = 60.0


def _owner_labels(run_id: str) -> dict[str, str]:
    return {
        LABEL: "1",
        f"{LABEL}.run": run_id,
        f"{LABEL}.host": socket.gethostname(),
        f"{LABEL}.pid": str(os.getpid()),
    }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_containers(client: Any = None, only_orphans: bool = True) -> list[str]:
    """Remove sandbox containers; with `only_orphans`, only those whose owner process is gone.

    A container from another host (shared engine) counts as an orphan only when `only_orphans`
    is False. Returns the names of removed containers.
    """
    client = client or docker_client(timeout=30)
    removed = []
    host = socket.gethostname()
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        labels = container.labels or {}
        if only_orphans:
            if labels.get(f"{LABEL}.host") != host:
                continue
            try:
                if _pid_alive(int(labels.get(f"{LABEL}.pid", "0"))):
                    continue
            except ValueError:
                pass
        try:
            container.remove(force=True)
            removed.append(container.name)
        except Exception:  # already gone (auto-removed or removed by a concurrent cleanup)
            pass
    return removed


class AttachChannel(Channel):
    """The container's attached stdin/stdout: raw bytes in, multiplexed frames out (no tty)."""

    def __init__(self, client: Any, container: Any, sock: Any) -> None:
        super().__init__()
        self.client = client
        self.container = container
        self._sock_wrapper = sock
        self.sock: socket.socket = getattr(sock, "_sock", sock)
        self.sock.setblocking(True)
        self._frames = bytearray()
        self.stderr_tail = bytearray()
        self._killed = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self, timeout: float) -> bytes | None:
        out = bytearray()
        deadline = time.monotonic() + timeout
        while not out:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                return None
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return b""
            self._frames.extend(chunk)
            while len(self._frames) >= 8:
                stream, length = struct.unpack(">BxxxL", self._frames[:8])
                if len(self._frames) < 8 + length:
                    break
                payload = bytes(self._frames[8: 8 + length])
                del self._frames[: 8 + length]
                if stream == 1:
                    out.extend(payload)
                else:
                    self.stderr_tail.extend(payload)
                    del self.stderr_tail[:-4096]
        return bytes(out)

    def kill(self) -> None:
        if self._killed:
            return
        self._killed = True
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.container.remove(force=True)
        except Exception:  # gone already
            pass


class DockerSandbox(ForkServerPool):
    """Fork-servers in a pool of containers. See the module docstring."""

    name = "docker"

    def __init__(
        self,
        workers: int | None = None,
        image: str = DEFAULT_IMAGE,
        memory_mb: int = 1024,
        pids_limit: int = 64,
        cpus: float = 1.0,
        tmp_mb: int = 64,
        python: str = "python3",
    ) -> None:
        super().__init__(workers)
        self.image = image
        self.memory_mb = memory_mb
        self.pids_limit = pids_limit
        self.cpus = cpus
        self.tmp_mb = tmp_mb
        self.python = python
        self.run_id = secrets.token_hex(4)
        self._client: Any = None
        self._image_id = ""
        self._repo_digests = ""
        self._engine = ""
        self._spawned = 0
        self.removed_leftovers: list[str] = []

    def _prepare(self) -> None:
        self._client = docker_client(timeout=60)
        version = self._client.version()
        self._engine = f"{version.get('Version', '?')} (api {version.get('ApiVersion', '?')})"
        image = self._client.images.get(self.image)  # raises ImageNotFound with a clear message
        self._image_id = str(image.id)
        self._repo_digests = ",".join(image.attrs.get("RepoDigests") or []) or "none (locally built)"
        self.removed_leftovers = cleanup_containers(self._client, only_orphans=True)

    def _spawn(self, slot: int) -> tuple[Channel, dict]:
        client = self._client
        self._spawned += 1
        uid = UID_BASE + slot % 1000
        # The container's memory is the program's limit plus room for the fork-server itself.
        container = client.containers.create(
            self.image,
            command=[self.python, "-I", "-S", "-c", BOOTSTRAP],
            name=f"june-sandbox-{self.run_id}-{slot}-{self._spawned}",
            labels=_owner_labels(self.run_id),
            stdin_open=True,
            tty=False,
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={self.tmp_mb}m,mode=1777"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            user=f"{uid}:{uid}",
            pids_limit=self.pids_limit,
            mem_limit=f"{self.memory_mb + 128}m",
            memswap_limit=f"{self.memory_mb + 128}m",
            nano_cpus=int(self.cpus * 1e9),
            environment={},
            working_dir="/tmp",
            ipc_mode="private",
            shm_size=f"{self.tmp_mb}m",
            hostname="sandbox",
            # The protocol runs over the attach socket; a log driver would copy it all to disk.
            log_config={"type": "none", "config": {}},
        )
        try:
            sock = client.api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            channel = AttachChannel(client, container, sock)
            container.start()
        except Exception:
            container.remove(force=True)
            raise
        # No CAP_SYS_ADMIN in the container, so no private tmpfs per program: the server empties the
        # writable scratch directories (and SysV IPC) after each program instead.
        config = {"uid": None, "private_mounts": False, "private_scratch": False, "set_nproc": True,
                  "work_root": "/tmp", "wipe_dirs": ["/tmp", "/dev/shm", "/dev/mqueue"]}
        ready = handshake(
            channel, config, f"container fork-server {slot}", START_TIMEOUT_S,
            lambda: channel.stderr_tail.decode("utf-8", "replace"),
        )
        return channel, ready

    def _after_close(self) -> None:
        if self._client is not None:
            # Belt and braces: anything of this run that a failed kill left behind.
            for container in self._client.containers.list(all=True, filters={"label": f"{LABEL}.run={self.run_id}"}):
                try:
                    container.remove(force=True)
                except Exception:
                    pass
            self._client.close()
            self._client = None

    def info(self) -> SandboxInfo:
        details = self._common_details()
        details.update({
            "image": self.image,
            "image_id": self._image_id,
            "image_digest": self._repo_digests,
            "engine": self._engine,
            "network": "none",
            "container_memory_mb": str(self.memory_mb + 128),
            "pids_limit": str(self.pids_limit),
            "cpus": str(self.cpus),
            "read_only_root": "true",
            "cap_drop": "ALL",
            "run_id": self.run_id,
        })
        return SandboxInfo(backend=self.name, details=details)
