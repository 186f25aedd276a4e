"""Reading two results files of `june eval score` and comparing them task by task.

A results file has one JSON object per sample with `task_id`, `passed` and `result`; for the
EvalPlus benchmarks also `base_status` and `plus_status` ("pass" or "fail"), where `passed` is
true when plus passed. Samples are counted per task into (n, c); the statistics are in `stats`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # numpy loads with stats, on first comparison: `june --help` stays fast
    from june_pipelines.evals import stats

Metric = Literal["passed", "base", "plus"]
DATASETS = ("humaneval", "mbpp", "humanevalplus", "mbppplus")
PLUS_DATASETS = ("humanevalplus", "mbppplus")
# How each benchmark's task ids start in June's results (MBPP+ keeps EvalPlus's `Mbpp/N`).
TASK_PREFIXES = {"humaneval": "HumanEval/", "humanevalplus": "HumanEval/", "mbpp": "MBPP/", "mbppplus": "Mbpp/"}
STATUS_FIELDS: dict[Metric, str] = {"passed": "passed", "base": "base_status", "plus": "plus_status"}


class ResultsError(ValueError):
    """A results file June cannot compare; the message names the file (and line)."""


@dataclass(frozen=True)
class RunCounts:
    """One results file: {task_id: (n samples, c passed)} in the order tasks first appear."""

    path: Path
    metric: Metric
    counts: dict[str, tuple[int, int]]


@dataclass(frozen=True)
class Flip:
    task_id: str
    a: float
    b: float


@dataclass(frozen=True)
class RunComparison:
    metric: Metric
    a_only: int  # tasks only in A's file
    b_only: int
    flips: list[Flip]  # shared tasks whose pass@1 changed, in A's order
    stats: stats.PairedComparison

    def as_dict(self) -> dict[str, object]:
        return {
            **self.stats.as_dict(),
            "metric": self.metric,
            "unshared": {"a_only": self.a_only, "b_only": self.b_only},
            "flipped": [flip.task_id for flip in self.flips],
        }


def default_metric(dataset: str | None) -> Metric | None:
    """plus for the EvalPlus benchmarks, `passed` for the others, None to decide from the file."""
    if dataset is None:
        return None
    return "plus" if dataset in PLUS_DATASETS else "passed"


def _verdict(record: Mapping[str, object], metric: Metric, where: str) -> bool:
    field = STATUS_FIELDS[metric]
    if field not in record:
        raise ResultsError(f"{where}: missing field {field!r}")
    value = record[field]
    if metric == "passed":
        if not isinstance(value, bool):
            raise ResultsError(f"{where}: 'passed' must be true or false, got {value!r}")
        return value
    if value not in ("pass", "fail"):
        raise ResultsError(f"{where}: {field!r} must be \"pass\" or \"fail\", got {value!r}")
    passed = value == "pass"
    if metric == "plus" and isinstance(record.get("passed"), bool) and record["passed"] != passed:
        raise ResultsError(f"{where}: 'passed' is {record['passed']} but plus_status is {value!r}")
    return passed


def read_results(path: Path, *, metric: Metric | None = None, dataset: str | None = None) -> RunCounts:
    """Count each task's samples and passes. metric None: `plus` when the first record has
    `plus_status`, else `passed`. With a dataset, every task id must be one of its ids."""
    if dataset is not None and dataset not in DATASETS:
        raise ResultsError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read ({exc})") from None
    counts: dict[str, list[int]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ResultsError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise ResultsError(f"{where}: expected a JSON object, got {type(record).__name__}")
        task_id = record.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise ResultsError(f"{where}: missing field 'task_id'")
        if dataset is not None and not task_id.startswith(TASK_PREFIXES[dataset]):
            raise ResultsError(f"{where}: task_id {task_id!r} is not a {dataset} task")
        if metric is None:
            metric = "plus" if "plus_status" in record else "passed"
        tally = counts.setdefault(task_id, [0, 0])
        tally[0] += 1
        tally[1] += int(_verdict(record, metric, where))
    if not counts or metric is None:
        raise ResultsError(f"{path}: no results in the file")
    return RunCounts(path, metric, {task: (n, c) for task, (n, c) in counts.items()})


def compare_runs(a: RunCounts, b: RunCounts, *, resamples: int | None = None, seed: int = 0) -> RunComparison:
    """Paired comparison over the tasks both files scored (B - A on per-task pass@1); resamples
    None: stats.DEFAULT_RESAMPLES."""
    from june_pipelines.evals import stats

    if a.metric != b.metric:
        raise ResultsError(f"{a.path} is scored on {a.metric!r} but {b.path} on {b.metric!r}; pass --metric")
    try:
        shared, a_values, b_values = stats.shared_pass_at_1(a.counts, b.counts)
    except stats.StatsError:
        raise ResultsError(f"{a.path} and {b.path} share no task") from None
    result = stats.compare(a_values, b_values, resamples=resamples or stats.DEFAULT_RESAMPLES, seed=seed)
    flips = [
        Flip(task, float(x), float(y)) for task, x, y in zip(shared, a_values, b_values, strict=True) if x != y
    ]
    shared_set = set(shared)
    return RunComparison(
        metric=a.metric,
        a_only=sum(task not in shared_set for task in a.counts),
        b_only=sum(task not in shared_set for task in b.counts),
        flips=flips,
        stats=result,
    )
