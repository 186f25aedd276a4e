"""The regression gate: did a model's pass@1 drop below its baseline by more than noise?

Pairs the two runs' executions by task (per-task pass@1 = c / n), and calls it a regression when the
upper end of the paired 95% interval of (new - baseline) is below zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

Z95 = 1.959963984540054


@dataclass(frozen=True)
class RegressionOutcome:
    tasks: int
    baseline_pass_at_1: float
    pass_at_1: float
    delta: float
    ci95: tuple[float, float]
    regressed: bool

    def metadata(self) -> dict[str, Any]:
        return {"shared_tasks": self.tasks, "baseline_pass@1": round(self.baseline_pass_at_1, 6),
                "pass@1": round(self.pass_at_1, 6), "delta": round(self.delta, 6),
                "delta_ci95_low": round(self.ci95[0], 6), "delta_ci95_high": round(self.ci95[1], 6)}


def _per_task(executions: pd.DataFrame) -> dict[str, float]:
    grouped = executions.groupby("task_id")["passed"].mean()
    return {str(task): float(value) for task, value in grouped.items()}


def regression_check(baseline: pd.DataFrame, new: pd.DataFrame) -> RegressionOutcome:
    a, b = _per_task(baseline), _per_task(new)
    shared = sorted(set(a) & set(b))
    if not shared:
        return RegressionOutcome(0, 0.0, 0.0, 0.0, (0.0, 0.0), False)
    diffs = [b[t] - a[t] for t in shared]
    n = len(diffs)
    delta = sum(diffs) / n
    se = math.sqrt(sum((d - delta) ** 2 for d in diffs) / (n - 1) / n) if n > 1 else 0.0
    low, high = delta - Z95 * se, delta + Z95 * se
    return RegressionOutcome(n, sum(a[t] for t in shared) / n, sum(b[t] for t in shared) / n, delta,
                             (low, high), high < 0)
