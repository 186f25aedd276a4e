"""Scoring: samples (task_id, completion) -> programs -> sandbox verdicts -> result records."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from june_pipelines.evals.datasets import Problem
from june_pipelines.evals.passk import mean_pass_at_k, per_task_pass_at_k
from june_pipelines.sandboxes.base import Limits, Program, SandboxBackend, Verdict


class ScoringError(ValueError):
    pass


@dataclass(frozen=True)
class Sample:
    task_id: str
    completion: str
    sample_index: int


def program_for(problem: Problem, completion: str, program_id: str) -> Program:
    """HumanEval: prompt + completion, then the tests, which see the prompt's own helpers (`poly`)
    and the solution's entry point; MBPP: the completion, then setup + tests."""
    if problem.benchmark == "humaneval":
        return Program(program_id, problem.prompt + completion + "\n", problem.test,
                       trusted=problem.prompt, entry_point=problem.entry_point)
    return Program(program_id, completion + "\n", problem.test)


def canonical_programs(problems: Iterable[Problem]) -> list[Program]:
    return [program_for(p, p.canonical_solution, p.task_id) for p in problems]


def index_samples(records: Iterable[Mapping[str, Any]], problems: Mapping[str, Problem]) -> list[Sample]:
    """Samples in file order, numbered per task; unknown task ids are an error, not a silent skip."""
    per_task: Counter[str] = Counter()
    samples = []
    for line, record in enumerate(records, start=1):
        try:
            task_id, completion = record["task_id"], record["completion"]
        except KeyError as exc:
            raise ScoringError(f"sample {line}: missing field {exc}") from None
        if task_id not in problems:
            raise ScoringError(f"sample {line}: unknown task_id {task_id!r}")
        index = record.get("sample_index")
        samples.append(Sample(task_id, completion, per_task[task_id] if index is None else int(index)))
        per_task[task_id] += 1
    return samples


def run_samples(
    samples: Sequence[Sample],
    problems: Mapping[str, Problem],
    sandbox: SandboxBackend,
    limits: Limits,
    on_verdict: Callable[[Verdict], None] | None = None,
) -> list[Verdict]:
    programs = [
        program_for(problems[s.task_id], s.completion, f"{s.task_id}#{s.sample_index}") for s in samples
    ]
    return sandbox.run(programs, limits, on_verdict)


def summarize(
    outcomes: Iterable[tuple[str, bool]], ks: Sequence[int]
) -> tuple[dict[int, float], dict[str, dict[int, float]], dict[str, tuple[int, int]]]:
    """(mean pass@k, per-task pass@k, per-task (n, c)) from (task_id, passed) pairs, for the k
    values every task supports."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for task_id, passed in outcomes:
        counts[task_id][0] += 1
        counts[task_id][1] += int(passed)
    nc = {task: (n, c) for task, (n, c) in counts.items()}
    per_task = per_task_pass_at_k(nc, ks)
    return mean_pass_at_k(per_task), per_task, nc
