"""Uncertainty on pass@k and paired comparisons of two runs, over tasks.

The unit of sampling is the task: a benchmark is one draw of tasks from the population of tasks
like them, and a score's uncertainty is how much it would move on another draw. Each task
contributes one value, its unbiased pass@k from `passk.pass_at_k` (pass@1 = c/n), and every
estimator here works on those per-task values. With n > 1 samples per task the spread of the
per-task values already carries the within-task sampling noise, so nothing is added for it.

One run (`estimate`, `bootstrap_estimate`):
- **Default: the standard error over tasks**, as lm-evaluation-harness reports it: the sample
  standard deviation of the per-task values (n - 1 in the denominator) over sqrt(tasks), with the
  normal 95% interval value +/- 1.96 SE, clipped to [0, 1]. June reports this one because it is
  the figure the field quotes next to HumanEval/MBPP scores (numbers stay comparable with
  lm-evaluation-harness's and with "Adding Error Bars to Evals", Miller 2024), it is exact
  arithmetic with no seed, and at 164-500 tasks it covers the true rate in 93-95% of simulated
  runs (mean rates 0.2-0.7, n = 1 and 10; tests/evals/test_stats.py).
- The alternative: a percentile bootstrap over tasks (seeded, vectorized); it keeps the interval
  inside [0, 1] and may be asymmetric. Both agree closely at benchmark sizes.
- Where every per-task value is 0 (or every one is 1) both would claim no uncertainty at all;
  there the interval is the exact one-sided binomial (Clopper-Pearson) bound instead: [0, 1 -
  0.025^(1/T)] or [0.025^(1/T), 1]. It is valid for any values in [0, 1], not only pass/fail.
  With one task there is no spread to measure: the standard error is None and the interval
  [0, 1] (or the exact bound).

Two runs on the same tasks (`compare`): per-task differences d = B - A of pass@1, their mean (the
pass@1 difference), a paired percentile bootstrap over tasks for the 95% interval (reported as
`ci95`), the paired standard error (sd(d) / sqrt(T)) with its normal interval, and a two-sided
p-value from a **sign-flip permutation test** on d: under "A and B are exchangeable on every task"
each difference is as likely to have either sign. With pass/fail outcomes (n = 1) that test is
McNemar's exact test and is computed exactly for any number of tasks; with other values it is
exact (full enumeration) up to 16 differing tasks and a seeded Monte Carlo estimate beyond.
Where no task differs (or every task moved by the same +/-1) resampling sees no spread either, and
the interval is an exact bound again (no task differs out of 164: +/- 0.018, not [0, 0]).

Regression gate (`regression_gate`): B regressed when the upper end of the paired interval is below
-min_effect *and* the sign-flip p-value is below alpha. The percentile bootstrap (and the normal
interval) is too narrow when only a few tasks differ: four tasks lost and none won out of 164
gives an interval that excludes zero, yet the exact test gives p = 0.125. Requiring both keeps a
handful of flips from blocking a deployment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import product
from statistics import NormalDist

import numpy as np

from june_pipelines.evals.passk import pass_at_k, reportable_ks

Z95 = NormalDist().inv_cdf(0.975)  # 1.959963...
DEFAULT_RESAMPLES = 10_000
# Exact sign-flip enumeration costs 2^m rows; beyond this the test samples sign vectors.
EXACT_SIGN_FLIP_MAX = 16
# Bootstrap and sign-flip draws are made in blocks of at most this many numbers (memory bound).
_BLOCK = 2_000_000
EXACT_BOUND = "exact binomial bound (every task scored the same)"

Interval = tuple[float, float]
Counts = Mapping[str, tuple[int, int]]  # {task_id: (n samples, c passed)}


class StatsError(ValueError):
    """Input the estimators cannot use (no tasks, counts out of range, k > n)."""


class NotReportable(StatsError):
    """pass@k asked for where some task has fewer than k samples."""


@dataclass(frozen=True)
class Estimate:
    """A mean over tasks with its uncertainty. `stderr` is None with fewer than two tasks."""

    value: float
    stderr: float | None
    ci95: Interval
    tasks: int
    method: str

    def as_metadata(self, prefix: str) -> dict[str, float | int | str]:
        """Flat entries for Dagster metadata or a table row: `{prefix}`, `{prefix}_stderr`, ..."""
        entries: dict[str, float | int | str] = {
            prefix: self.value,
            f"{prefix}_ci95_low": self.ci95[0],
            f"{prefix}_ci95_high": self.ci95[1],
            f"{prefix}_ci_method": self.method,
        }
        if self.stderr is not None:
            entries[f"{prefix}_stderr"] = self.stderr
        return entries


@dataclass(frozen=True)
class PairedComparison:
    """B - A over shared tasks. wins: tasks where B scored higher; losses: lower; ties: equal."""

    tasks: int
    a: float
    b: float
    delta: float
    ci95: Interval  # paired percentile bootstrap
    stderr: float | None  # paired standard error, None with one task
    ci95_stderr: Interval  # delta +/- 1.96 stderr, clipped to [-1, 1]
    p_value: float
    p_value_method: str
    wins: int
    losses: int
    ties: int
    resamples: int
    seed: int

    def as_dict(self) -> dict[str, object]:
        record = asdict(self)
        record["ci95"] = list(self.ci95)
        record["ci95_stderr"] = list(self.ci95_stderr)
        return record


@dataclass(frozen=True)
class RegressionDecision:
    """The gate's verdict with the numbers behind it (for asset-check metadata)."""

    regressed: bool
    baseline: float
    candidate: float
    delta: float
    ci95: Interval
    p_value: float
    tasks: int
    min_effect: float
    alpha: float
    reason: str

    def as_metadata(self) -> dict[str, float | int | str | bool]:
        return {
            "regressed": self.regressed,
            "baseline_pass@1": self.baseline,
            "candidate_pass@1": self.candidate,
            "delta": self.delta,
            "delta_ci95_low": self.ci95[0],
            "delta_ci95_high": self.ci95[1],
            "p_value": self.p_value,
            "tasks": self.tasks,
            "min_effect": self.min_effect,
            "alpha": self.alpha,
            "reason": self.reason,
        }


# ---- per-task values ---------------------------------------------------------------------------


def per_task_pass_at_k(counts: Counts, k: int) -> np.ndarray:
    """Per-task unbiased pass@k in the mapping's order; NotReportable when a task has n < k."""
    if not counts:
        raise StatsError("no tasks")
    values = []
    for task, (n, c) in counts.items():
        if not 0 <= c <= n or n < 1:
            raise StatsError(f"{task}: need 0 <= c <= n and n >= 1, got n={n}, c={c}")
        if n < k:
            raise NotReportable(f"pass@{k} is not reportable: {task} has {n} sample(s), fewer than k={k}")
        values.append(pass_at_k(n, c, k))
    return np.asarray(values, dtype=float)


def _as_values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise StatsError("need a non-empty one-dimensional sequence of per-task values")
    if not np.all(np.isfinite(array)):
        raise StatsError("per-task values must be finite")
    return array


# ---- one run -----------------------------------------------------------------------------------


def stderr_over_tasks(values: Sequence[float] | np.ndarray) -> float | None:
    """lm-evaluation-harness's `mean_stderr`: sample sd (ddof=1) / sqrt(T); None for one task."""
    array = _as_values(values)
    if array.size < 2:
        return None
    return float(np.std(array, ddof=1) / math.sqrt(array.size))


def _degenerate_interval(array: np.ndarray) -> tuple[Interval, str] | None:
    """The interval where the data show no spread (values in [0, 1]), else None.

    Every value 1: for X in [0, 1] with mean p, P(X = 1) <= p, so T ones in a row have probability
    at most p^T, and p < 0.025^(1/T) is rejected (at 0/T or T/T this is Clopper-Pearson);
    symmetrically for every value 0. One task with another value: nothing is known, [0, 1]."""
    bound = 0.025 ** (1 / array.size)
    if np.all(array == 0.0):
        return (0.0, 1.0 - bound), EXACT_BOUND
    if np.all(array == 1.0):
        return (bound, 1.0), EXACT_BOUND
    if array.size < 2:
        return (0.0, 1.0), "none (one task)"
    return None


def estimate(values: Sequence[float] | np.ndarray) -> Estimate:
    """June's default: mean, standard error over tasks, normal 95% interval clipped to [0, 1]."""
    array = _as_values(values)
    mean = float(array.mean())
    se = stderr_over_tasks(array)
    degenerate = _degenerate_interval(array)
    if degenerate is not None:
        return Estimate(mean, se, degenerate[0], int(array.size), degenerate[1])
    assert se is not None  # two tasks or more
    interval = (max(0.0, mean - Z95 * se), min(1.0, mean + Z95 * se))
    return Estimate(mean, se, interval, int(array.size), "stderr over tasks (normal)")


def bootstrap_means(values: Sequence[float] | np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of `resamples` resamples of the values with replacement (seeded, vectorized in blocks)."""
    array = _as_values(values)
    if resamples < 1:
        raise StatsError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    size = array.size
    rows = max(1, _BLOCK // size)
    means = np.empty(resamples)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        means[start:stop] = array[rng.integers(0, size, size=(stop - start, size))].mean(axis=1)
    return means


def _percentile_interval(means: np.ndarray) -> Interval:
    low, high = np.quantile(means, [0.025, 0.975])
    return (float(low), float(high))


def bootstrap_estimate(
    values: Sequence[float] | np.ndarray, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> Estimate:
    """The alternative: percentile bootstrap over tasks; `stderr` is the sd of the resampled means."""
    array = _as_values(values)
    mean = float(array.mean())
    degenerate = _degenerate_interval(array)
    if array.size < 2:
        assert degenerate is not None  # one task is always degenerate
        return Estimate(mean, None, degenerate[0], 1, degenerate[1])
    means = bootstrap_means(array, resamples, seed)
    se = float(np.std(means, ddof=1))
    if degenerate is not None:
        return Estimate(mean, se, degenerate[0], int(array.size), degenerate[1])
    method = f"bootstrap over tasks (percentile, {resamples} resamples, seed {seed})"
    return Estimate(mean, se, _percentile_interval(means), int(array.size), method)


def pass_at_k_estimate(
    counts: Counts, k: int, *, method: str = "stderr", resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> Estimate:
    """pass@k over tasks from {task: (n, c)} with its uncertainty; method "stderr" or "bootstrap"."""
    values = per_task_pass_at_k(counts, k)
    if method == "stderr":
        return estimate(values)
    if method == "bootstrap":
        return bootstrap_estimate(values, resamples=resamples, seed=seed)
    raise StatsError(f"unknown method {method!r}: expected 'stderr' or 'bootstrap'")


def pass_at_k_estimates(
    counts: Counts, ks: Sequence[int], *, method: str = "stderr", resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> dict[int, Estimate]:
    """{k: Estimate} for the ks every task has enough samples for (the others are left out)."""
    usable = reportable_ks(ks, (n for n, _ in counts.values()))
    return {k: pass_at_k_estimate(counts, k, method=method, resamples=resamples, seed=seed) for k in usable}


# ---- two runs ----------------------------------------------------------------------------------


def _two_sided_binomial_half(discordant: int, positive: int) -> float:
    """P(|2X - m| >= |2w - m|) for X ~ Binomial(m, 1/2): McNemar's exact test, in exact integers."""
    observed = abs(2 * positive - discordant)
    extreme = sum(math.comb(discordant, x) for x in range(discordant + 1) if abs(2 * x - discordant) >= observed)
    return min(1.0, extreme / 2**discordant)


def sign_flip_p_value(differences: Sequence[float] | np.ndarray, *, resamples: int = DEFAULT_RESAMPLES,
                      seed: int = 0) -> tuple[float, str]:
    """Two-sided sign-flip permutation test of "mean difference is 0"; returns (p, method).

    Exact when every non-zero |d| is the same (pass/fail outcomes: McNemar's exact test) or when at
    most EXACT_SIGN_FLIP_MAX tasks differ; otherwise Monte Carlo with `resamples` seeded sign
    vectors, p = (1 + hits) / (1 + resamples), which never reports 0."""
    array = _as_values(differences)
    nonzero = array[array != 0.0]
    m = int(nonzero.size)
    if m == 0:
        return 1.0, "sign-flip (exact: no task differs)"
    magnitudes = np.abs(nonzero)
    if np.all(magnitudes == magnitudes[0]):
        return _two_sided_binomial_half(m, int(np.sum(nonzero > 0))), "sign-flip (exact; McNemar)"
    observed = abs(float(nonzero.sum()))
    tolerance = 1e-9 * max(1.0, float(magnitudes.sum()))
    if m <= EXACT_SIGN_FLIP_MAX:
        signs = np.array(list(product((1.0, -1.0), repeat=m)))
        hits = int(np.sum(np.abs(signs @ magnitudes) >= observed - tolerance))
        return hits / signs.shape[0], "sign-flip (exact enumeration)"
    rng = np.random.default_rng(seed)
    rows = max(1, _BLOCK // m)
    hits = 0
    for start in range(0, resamples, rows):
        count = min(rows, resamples - start)
        signs = rng.integers(0, 2, size=(count, m)) * 2.0 - 1.0
        hits += int(np.sum(np.abs(signs @ magnitudes) >= observed - tolerance))
    return (1 + hits) / (1 + resamples), f"sign-flip (Monte Carlo, {resamples} resamples, seed {seed})"


def _paired_degenerate_interval(d: np.ndarray) -> Interval | None:
    """Where resampling the differences sees no spread. Every d = +1 (or -1): the bound of
    `_degenerate_interval` on (d + 1) / 2. Every d = 0: |delta| <= E|d| and P(all T zero) <=
    (1 - E|d|)^T, so |delta| <= 1 - 0.05^(1/T). One task with another value: [-1, 1]."""
    if np.all(d == 0.0):
        half = 1.0 - 0.05 ** (1 / d.size)
        return (-half, half)
    scaled = _degenerate_interval((d + 1.0) / 2.0)
    if scaled is None:
        return None
    low, high = scaled[0]
    return (2 * low - 1, 2 * high - 1)


def compare(
    a_values: Sequence[float] | np.ndarray,
    b_values: Sequence[float] | np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Paired comparison of two runs' per-task values (same tasks, same order): B - A."""
    a, b = _as_values(a_values), _as_values(b_values)
    if a.shape != b.shape:
        raise StatsError(f"paired values need the same tasks: {a.size} vs {b.size}")
    d = b - a
    delta = float(d.mean())
    se = stderr_over_tasks(d)
    degenerate = _paired_degenerate_interval(d)
    if degenerate is not None:
        interval = se_interval = degenerate
    else:
        assert se is not None  # two tasks or more
        interval = _percentile_interval(bootstrap_means(d, resamples, seed))
        se_interval = (max(-1.0, delta - Z95 * se), min(1.0, delta + Z95 * se))
    p_value, p_method = sign_flip_p_value(d, resamples=resamples, seed=seed)
    return PairedComparison(
        tasks=int(d.size),
        a=float(a.mean()),
        b=float(b.mean()),
        delta=delta,
        ci95=interval,
        stderr=se,
        ci95_stderr=se_interval,
        p_value=p_value,
        p_value_method=p_method,
        wins=int(np.sum(d > 0)),
        losses=int(np.sum(d < 0)),
        ties=int(np.sum(d == 0)),
        resamples=resamples,
        seed=seed,
    )


def shared_pass_at_1(a: Counts, b: Counts) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The tasks both runs scored (in A's order) and each run's per-task pass@1 (c/n) on them."""
    shared = [task for task in a if task in b]
    if not shared:
        raise StatsError("the two runs share no task")
    return (
        shared,
        per_task_pass_at_k({t: a[t] for t in shared}, 1),
        per_task_pass_at_k({t: b[t] for t in shared}, 1),
    )


def regression_gate(
    baseline: Counts,
    candidate: Counts,
    *,
    min_effect: float = 0.0,
    alpha: float = 0.05,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> RegressionDecision:
    """Did the candidate's pass@1 drop below the baseline's by more than noise (and min_effect)?

    Regressed when, over the shared tasks, the paired bootstrap interval of candidate - baseline
    lies entirely below -min_effect and the sign-flip test rejects "no difference" at alpha."""
    if not 0.0 <= min_effect < 1.0:
        raise StatsError(f"min_effect must be in [0, 1), got {min_effect}")
    if not 0.0 < alpha < 1.0:
        raise StatsError(f"alpha must be in (0, 1), got {alpha}")
    _, a, b = shared_pass_at_1(baseline, candidate)
    result = compare(a, b, resamples=resamples, seed=seed)
    below = result.ci95[1] < -min_effect
    significant = result.p_value < alpha
    regressed = below and significant
    if regressed:
        reason = (f"pass@1 fell by {-result.delta:.4f} (95% interval of the change {result.ci95[0]:.4f} .. "
                  f"{result.ci95[1]:.4f}, p = {result.p_value:.3g}) over {result.tasks} tasks")
    elif not below:
        reason = (f"the change {result.delta:+.4f} is within noise: the 95% interval reaches "
                  f"{result.ci95[1]:+.4f}, not below {-min_effect:+.4f}")
    else:
        reason = (f"the interval is below {-min_effect:+.4f} but the sign-flip test does not reject "
                  f"(p = {result.p_value:.3g} >= {alpha}): too few tasks changed")
    return RegressionDecision(
        regressed=regressed,
        baseline=result.a,
        candidate=result.b,
        delta=result.delta,
        ci95=result.ci95,
        p_value=result.p_value,
        tasks=result.tasks,
        min_effect=min_effect,
        alpha=alpha,
        reason=reason,
    )
