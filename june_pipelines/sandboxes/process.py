"""Process backend: fork-servers on the host, isolated with rlimits, namespaces and a throwaway uid.

Each worker is `[unshare ...] python -I -c BOOTSTRAP` started with a minimal environment. Where the
kernel allows it, `unshare` gives every worker its own network namespace (no network), mount
namespace (private tmpfs over /tmp, /root, /home, /run, ...) and PID namespace (the fork-server is
PID 1: programs cannot see or signal host processes, and killing the worker kills all it started).
As root, children also drop to a per-worker uid (61000 + slot). What was available is detected
once and reported by `info()`.
"""

from __future__ import annotations

import functools
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile

from june_pipelines.sandboxes.base import SandboxInfo
from june_pipelines.sandboxes.forkserver import BOOTSTRAP
from june_pipelines.sandboxes.pool import Channel, ForkServerPool, handshake

UID_BASE = 61000
JUDGE_UID_OFFSET = 500  # the test code of slot N runs as UID_BASE + 500 + N, its solution as UID_BASE + N
START_TIMEOUT_S = 30.0


LEVELS = ("netns+mntns+pidns", "netns", "none")


def _unshare_prefix(level: str) -> tuple[str, ...]:
    unshare = shutil.which("unshare")
    if level == "none" or not unshare:
        return ()
    user = () if os.geteuid() == 0 else ("-r",)
    if level == "netns":
        return (unshare, *user, "-n")
    return (unshare, *user, "-n", "-m", "-p", "--mount-proc", "--kill-child")


@functools.lru_cache(maxsize=1)
def detect_isolation() -> tuple[str, tuple[str, ...]]:
    """The strongest `unshare` wrapper that works here: (level, argv prefix), level in LEVELS."""
    if not shutil.which("unshare"):
        return "none", ()
    for level in LEVELS[:-1]:
        prefix = _unshare_prefix(level)
        try:
            ok = subprocess.run([*prefix, "true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=10, env=_minimal_env("/")).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return level, prefix
    return "none", ()


def _minimal_env(home: str) -> dict[str, str]:
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": home}


class PipeChannel(Channel):
    def __init__(self, proc: subprocess.Popen[bytes], uid: int | None) -> None:
        super().__init__()
        self.proc = proc
        self.uid = uid
        assert proc.stdin is not None and proc.stdout is not None
        self._in = proc.stdin.fileno()
        self._out = proc.stdout.fileno()

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._in, view)
            view = view[n:]

    def _recv(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self._out], [], [], timeout)
        if not ready:
            return None
        return os.read(self._out, 1 << 16)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self.uid is not None:
            # Without a PID namespace, programs that left the session survive the server:
            # kill everything the worker's dedicated uid still runs.
            subprocess.run(["kill", "-KILL", "-1"], user=self.uid, group=self.uid, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


class ProcessSandbox(ForkServerPool):
    """Fork-servers on this machine. See the module docstring for the isolation it applies."""

    name = "process"

    def __init__(self, workers: int | None = None, python: str | None = None, isolation: str = "auto") -> None:
        """`isolation`: "auto" (the strongest that works here) or one of LEVELS, to force a weaker one."""
        super().__init__(workers)
        self.python = python or sys.executable
        if isolation == "auto":
            self.isolation, self._prefix = detect_isolation()
        elif isolation in LEVELS:
            self.isolation, self._prefix = isolation, _unshare_prefix(isolation)
        else:
            raise ValueError(f"isolation={isolation!r}: expected auto or one of {LEVELS}")
        self._home = tempfile.mkdtemp(prefix="june-sandbox-host-")

    def _prepare(self) -> None:
        os.makedirs(self._home, mode=0o700, exist_ok=True)

    def _spawn(self, slot: int) -> tuple[Channel, dict]:
        root = os.geteuid() == 0
        uid = UID_BASE + slot % JUDGE_UID_OFFSET if root else None
        config = {
            "uid": uid,
            "judge_uid": uid + JUDGE_UID_OFFSET if uid is not None else None,
            "private_mounts": "mntns" in self.isolation,
            "host_home": os.path.expanduser("~"),
            "set_nproc": True,
            "work_root": "/tmp",
        }
        err = open(os.path.join(self._home, f"worker-{slot}.log"), "wb")
        try:
            proc = subprocess.Popen(
                [*self._prefix, self.python, "-I", "-c", BOOTSTRAP],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=_minimal_env(self._home),
                cwd=self._home,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            err.close()
        channel = PipeChannel(proc, uid if "pidns" not in self.isolation else None)
        ready = handshake(channel, config, f"fork-server {slot}", START_TIMEOUT_S, lambda: self._log_tail(slot))
        return channel, ready

    def _log_tail(self, slot: int) -> str:
        try:
            with open(os.path.join(self._home, f"worker-{slot}.log"), "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _after_close(self) -> None:
        shutil.rmtree(self._home, ignore_errors=True)

    def info(self) -> SandboxInfo:
        details = self._common_details()
        details["isolation"] = self.isolation
        details["network"] = "none (unshare -n)" if self.isolation != "none" else "host network (unshare not allowed)"
        details["interpreter"] = self.python
        return SandboxInfo(backend=self.name, details=details)
