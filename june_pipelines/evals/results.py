"""Result tables people read: per-sample executions, per-task pass@k, run summaries with intervals.

Assembled here, not in asset bodies, so the CLI, the assets and the tests build the same tables.
A run's summary is keyed by everything that changes a score (`SCORE_SETTINGS`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from june_pipelines.evals.passk import per_task_pass_at_k
from june_pipelines.evals.scoring import Sample, SampleResult

if TYPE_CHECKING:
    import pandas as pd

# What makes two runs' scores comparable: a leaderboard row per distinct combination.
SCORE_SETTINGS = ("model", "revision", "backend", "prompt_style", "n", "temperature", "top_p", "max_tokens",
                  "benchmark", "dataset_version", "tasks", "sandbox")


def executions_table(samples: Sequence[Sample], results: Sequence[SampleResult]) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for sample, result in zip(samples, results, strict=True):
        row: dict[str, Any] = {
            "task_id": sample.task_id, "sample_index": sample.sample_index, "status": result.status,
            "passed": result.passed, "result": result.result, "failure_kind": result.failure_kind,
            "where": result.where, "duration_s": result.duration_s,
        }
        if result.base_status is not None:
            row.update(base_status=result.base_status, plus_status=result.plus_status)
        rows.append(row)
    return pd.DataFrame(rows)


def failure_kinds(executions: pd.DataFrame) -> pd.DataFrame:
    """Failure kinds with their counts, most common first."""
    import pandas as pd

    failed = executions[~executions["passed"].astype(bool)]
    counts = Counter(failed["failure_kind"].replace("", "unknown"))
    return pd.DataFrame([{"failure_kind": kind, "samples": n} for kind, n in counts.most_common()],
                        columns=["failure_kind", "samples"])


def interval(per_task: Sequence[float]) -> tuple[float, float, float, float]:
    """(mean, standard error over tasks, 95% low, 95% high) from `evals.stats.estimate`: the standard
    error as lm-evaluation-harness reports it, the normal interval clipped to [0, 1] (the exact
    binomial bound when every task scored the same; [0, 1] with a single task)."""
    from june_pipelines.evals.stats import estimate

    if not per_task:
        return 0.0, 0.0, 0.0, 0.0
    result = estimate(list(per_task))
    return result.value, result.stderr or 0.0, result.ci95[0], result.ci95[1]


def pass_at_k_tables(
    executions: pd.DataFrame, ks: Sequence[int], plus: bool
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-task pass@k (solved tasks first) and the overall scores with intervals. For EvalPlus
    benchmarks `pass@k` is plus (base and plus inputs) and `base_pass@k` is base."""
    import pandas as pd

    metrics = {"": executions["passed"].astype(bool)}
    if plus:
        metrics["base_"] = executions["base_status"] == "pass"
    rows: dict[str, dict[str, Any]] = {}
    overall: dict[str, float] = {}
    for prefix, passed in metrics.items():
        counts: dict[str, tuple[int, int]] = {}
        for task, ok in zip(executions["task_id"], passed, strict=True):
            n, c = counts.get(task, (0, 0))
            counts[task] = (n + 1, c + int(ok))
        per_task = per_task_pass_at_k(counts, ks)
        for task, values in per_task.items():
            row = rows.setdefault(task, {"task_id": task, "n": counts[task][0]})
            row[f"{prefix}c"] = counts[task][1]
            row.update({f"{prefix}pass@{k}": v for k, v in values.items()})
        usable = sorted(next(iter(per_task.values())).keys()) if per_task else []
        for k in usable:
            mean, se, low, high = interval([per_task[t][k] for t in per_task])
            overall.update({f"{prefix}pass@{k}": mean, f"{prefix}pass@{k}_se": se,
                            f"{prefix}pass@{k}_ci_low": low, f"{prefix}pass@{k}_ci_high": high})
    table = pd.DataFrame(list(rows.values()))
    if not table.empty:
        table = table.sort_values(["c", "task_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
    return table, overall


def run_summary(settings: Mapping[str, Any], overall: Mapping[str, float], tasks: int, samples: int,
                run_key: str, run_id: str) -> dict[str, Any]:
    summary: dict[str, Any] = {name: settings.get(name) for name in SCORE_SETTINGS}
    summary.update(tasks=tasks, samples=samples, run_key=run_key, run_id=run_id,
                   updated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    summary.update({k: round(v, 6) for k, v in overall.items()})
    return summary


def score_columns(frame: pd.DataFrame) -> list[str]:
    """The `pass@k` and `base_pass@k` columns, by k."""
    def k_of(column: str) -> int:
        return int(column.rsplit("@", 1)[1])

    plain = sorted((c for c in frame.columns if c.startswith("pass@") and c[5:].isdigit()), key=k_of)
    base = sorted((c for c in frame.columns if c.startswith("base_pass@") and c[10:].isdigit()), key=k_of)
    return plain + base


def leaderboard_table(summaries: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per distinct score settings (the newest run of each), best pass@1 first per benchmark."""
    import pandas as pd

    frame = pd.DataFrame(list(summaries))
    if frame.empty:
        return frame
    for name in SCORE_SETTINGS:
        if name not in frame.columns:
            frame[name] = None
    frame = frame.sort_values("updated_at").drop_duplicates(list(SCORE_SETTINGS), keep="last")
    scores = score_columns(frame)
    intervals = [c for c in frame.columns if c.endswith(("_ci_low", "_ci_high", "_se"))]
    order = ["benchmark", "model", *scores, *sorted(intervals), *[s for s in SCORE_SETTINGS if s not in
             ("benchmark", "model")], "samples", "run_key", "run_id", "updated_at"]
    frame = frame[[c for c in order if c in frame.columns]]
    sort_by = ["benchmark", "pass@1"] if "pass@1" in frame.columns else ["benchmark"]
    return frame.sort_values(sort_by, ascending=[True, False][: len(sort_by)], kind="stable").reset_index(drop=True)


def settings_label(row: Mapping[str, Any]) -> str:
    """A short label for a leaderboard row's settings (model, style, sampling, sandbox)."""
    parts = [str(row.get("model"))]
    if row.get("prompt_style"):
        parts.append(str(row["prompt_style"]))
    n, temperature = row.get("n"), row.get("temperature")
    if n is not None:
        parts.append(f"n={n}" + (f" T={temperature}" if temperature else ""))
    if row.get("sandbox"):
        parts.append(str(row["sandbox"]))
    return " ".join(parts)
