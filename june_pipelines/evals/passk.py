"""The unbiased pass@k estimator (Chen et al., 2021): 1 - C(n-c, k) / C(n, k)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c of them correct) passes."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def reportable_ks(ks: Iterable[int], samples_per_task: Iterable[int]) -> list[int]:
    """The k values every task has enough samples for (k <= n for all tasks)."""
    least = min(samples_per_task, default=0)
    return sorted({k for k in ks if 1 <= k <= least})


def per_task_pass_at_k(counts: Mapping[str, tuple[int, int]], ks: Sequence[int]) -> dict[str, dict[int, float]]:
    """{task_id: {k: pass@k}} from {task_id: (n, c)}, for the reportable ks only."""
    usable = reportable_ks(ks, (n for n, _ in counts.values()))
    return {task: {k: pass_at_k(n, c, k) for k in usable} for task, (n, c) in counts.items()}


def mean_pass_at_k(per_task: Mapping[str, Mapping[int, float]]) -> dict[int, float]:
    if not per_task:
        return {}
    ks = next(iter(per_task.values())).keys()
    return {k: sum(t[k] for t in per_task.values()) / len(per_task) for k in ks}
