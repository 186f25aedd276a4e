"""The regression gate on two runs' executions tables: `evals.stats.regression_gate` over the tasks
they share (a paired bootstrap interval of the pass@1 change below zero, and a sign-flip test that
rejects "no change" at 5%)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from june_pipelines.evals.stats import RegressionDecision, StatsError, regression_gate

if TYPE_CHECKING:
    import pandas as pd


def _counts(executions: pd.DataFrame) -> dict[str, tuple[int, int]]:
    grouped = executions.groupby("task_id")["passed"].agg(["count", "sum"])
    return {str(task): (int(row["count"]), int(row["sum"])) for task, row in grouped.iterrows()}


def regression_check(baseline: pd.DataFrame, new: pd.DataFrame) -> RegressionDecision | None:
    """The decision, or None when the runs share no task (nothing to compare)."""
    try:
        return regression_gate(_counts(baseline), _counts(new))
    except StatsError:
        return None
