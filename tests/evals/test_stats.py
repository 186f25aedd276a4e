"""Uncertainty and paired comparisons: hand-computed values, brute force on small cases, and
seeded coverage simulations (deterministic: fixed seeds, so they cannot flake)."""

import itertools
import math
from statistics import mean, stdev

import numpy as np
import pytest

from june_pipelines.evals import stats

# ---- one run: standard error over tasks -----------------------------------------------------------


def test_stderr_over_tasks_by_hand() -> None:
    # mean 0.75; deviations 0.25, -0.75, 0.25, 0.25: sum of squares 0.75, / 3 = 0.25, sd 0.5
    result = stats.estimate([1.0, 0.0, 1.0, 1.0])
    assert result.value == pytest.approx(0.75)
    assert result.stderr == pytest.approx(0.25)
    assert result.ci95 == pytest.approx((0.75 - 1.959964 * 0.25, 1.0))  # clipped at 1
    assert result.tasks == 4
    assert result.method == "stderr over tasks (normal)"


def test_stderr_matches_lm_eval_harness_formula() -> None:
    """lm-evaluation-harness: sqrt(sum((x - mu)^2) / (n - 1)) / sqrt(n), i.e. statistics.stdev / sqrt(n)."""
    rng = np.random.default_rng(7)
    values = rng.random(57).tolist()
    assert stats.stderr_over_tasks(values) == pytest.approx(stdev(values) / math.sqrt(len(values)), rel=1e-12)
    result = stats.estimate(values)
    half = stats.Z95 * stdev(values) / math.sqrt(len(values))
    assert result.ci95 == pytest.approx((mean(values) - half, mean(values) + half), rel=1e-12)


def test_pass_at_k_over_tasks_uses_the_unbiased_per_task_estimator() -> None:
    counts = {"t0": (5, 2), "t1": (5, 0), "t2": (5, 5), "t3": (6, 1)}
    per_task = [1 - math.comb(3, 2) / math.comb(5, 2), 0.0, 1.0, 1 - math.comb(5, 2) / math.comb(6, 2)]
    assert stats.per_task_pass_at_k(counts, 2).tolist() == pytest.approx(per_task)
    result = stats.pass_at_k_estimate(counts, 2)
    assert result.value == pytest.approx(mean(per_task))
    assert result.stderr == pytest.approx(stdev(per_task) / 2)
    assert stats.pass_at_k_estimate(counts, 1).value == pytest.approx((0.4 + 0 + 1 + 1 / 6) / 4)


def test_n_below_k_is_not_reportable() -> None:
    with pytest.raises(stats.NotReportable, match="t1 has 3 sample"):
        stats.pass_at_k_estimate({"t0": (10, 4), "t1": (3, 1)}, 5)
    with pytest.raises(stats.StatsError):
        stats.pass_at_k_estimate({}, 1)
    with pytest.raises(stats.StatsError, match="c <= n"):
        stats.pass_at_k_estimate({"t0": (3, 4)}, 1)
    with pytest.raises(stats.StatsError, match="unknown method"):
        stats.pass_at_k_estimate({"t0": (3, 1)}, 1, method="jackknife")


def test_estimates_for_the_reportable_ks_and_their_metadata() -> None:
    counts = {"t0": (10, 4), "t1": (10, 0), "t2": (12, 12)}
    estimates = stats.pass_at_k_estimates(counts, [1, 10, 100])
    assert sorted(estimates) == [1, 10]  # k=100 > n is left out, as pass@k itself does
    assert estimates[10].value == pytest.approx((1 + 0 + 1) / 3)
    metadata = estimates[1].as_metadata("pass@1")
    assert metadata == {
        "pass@1": pytest.approx((0.4 + 0 + 1) / 3),
        "pass@1_stderr": pytest.approx(stdev([0.4, 0.0, 1.0]) / math.sqrt(3)),
        "pass@1_ci95_low": estimates[1].ci95[0],
        "pass@1_ci95_high": estimates[1].ci95[1],
        "pass@1_ci_method": "stderr over tasks (normal)",
    }
    boot = stats.pass_at_k_estimates(counts, [1], method="bootstrap", resamples=500, seed=1)
    assert boot[1].method == "bootstrap over tasks (percentile, 500 resamples, seed 1)"
    assert "pass@1_stderr" not in stats.estimate([0.5]).as_metadata("pass@1")  # one task: no stderr


@pytest.mark.parametrize("estimator", [stats.estimate, stats.bootstrap_estimate])
def test_one_task(estimator) -> None:
    half = estimator([0.5])
    assert (half.value, half.stderr, half.ci95, half.tasks) == (0.5, None, (0.0, 1.0), 1)
    solved = estimator([1.0])
    assert solved.stderr is None
    assert solved.ci95 == pytest.approx((0.025, 1.0))  # Clopper-Pearson for 1/1


@pytest.mark.parametrize("estimator", [stats.estimate, stats.bootstrap_estimate])
def test_all_pass_and_all_fail_get_the_exact_binomial_bound(estimator) -> None:
    """Clopper-Pearson at 0/T is [0, 1 - 0.025^(1/T)]: for T=164 about 3.7/164, not [0, 0]."""
    none = estimator([0.0] * 164)
    assert none.value == 0.0 and none.stderr == 0.0
    assert none.ci95[0] == 0.0
    assert none.ci95[1] == pytest.approx(1 - 0.025 ** (1 / 164))
    assert 0.02 < none.ci95[1] < 0.025
    every = estimator([1.0] * 164)
    assert every.value == 1.0
    assert every.ci95 == pytest.approx((0.025 ** (1 / 164), 1.0))
    assert every.method.startswith("exact binomial bound")


def test_the_exact_bound_is_clopper_pearson() -> None:
    """Check against the defining property: at the upper bound u, P(0 successes | u) = 0.025."""
    for tasks in (1, 5, 40, 164, 500):
        upper = stats.estimate([0.0] * tasks).ci95[1]
        assert (1 - upper) ** tasks == pytest.approx(0.025)


# ---- one run: bootstrap ---------------------------------------------------------------------------


def _exact_bootstrap_distribution(values: list[float]) -> np.ndarray:
    """Every one of the T^T equally likely resamples, brute force."""
    return np.array([mean(choice) for choice in itertools.product(values, repeat=len(values))])


def test_bootstrap_matches_brute_force_enumeration() -> None:
    values = [0.0, 1.0, 1.0, 0.4, 0.9, 0.0]  # 6^6 = 46,656 resamples
    exact = _exact_bootstrap_distribution(values)
    result = stats.bootstrap_estimate(values, resamples=20_000, seed=3)
    assert result.value == pytest.approx(mean(values))
    assert result.stderr == pytest.approx(exact.std(), rel=0.03)
    low, high = np.quantile(exact, [0.025, 0.975])
    # The Monte Carlo quantile lands on or next to the exact one (resample means are on a 1/6 grid).
    assert result.ci95[0] == pytest.approx(low, abs=0.035)
    assert result.ci95[1] == pytest.approx(high, abs=0.035)
    assert result.method == "bootstrap over tasks (percentile, 20000 resamples, seed 3)"


def test_bootstrap_is_deterministic_per_seed_and_close_to_the_stderr() -> None:
    rng = np.random.default_rng(11)
    values = (rng.random(164) < 0.4).astype(float)
    first = stats.bootstrap_estimate(values, seed=5)
    assert first == stats.bootstrap_estimate(values, seed=5)
    assert first != stats.bootstrap_estimate(values, seed=6)
    analytic = stats.estimate(values)
    # The bootstrap sd uses n, not n - 1, in the variance: sqrt((T - 1) / T) of the analytic one.
    assert first.stderr == pytest.approx(analytic.stderr * math.sqrt(163 / 164), rel=0.03)
    assert first.ci95 == pytest.approx(analytic.ci95, abs=0.01)


def test_bootstrap_blocks_give_the_same_means_as_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.linspace(0, 1, 50)
    whole = stats.bootstrap_means(values, 1000, seed=1)
    monkeypatch.setattr(stats, "_BLOCK", 50 * 7)  # 7 rows per block, the last block short
    assert np.array_equal(stats.bootstrap_means(values, 1000, seed=1), whole)


def test_bad_values_are_rejected() -> None:
    with pytest.raises(stats.StatsError):
        stats.estimate([])
    with pytest.raises(stats.StatsError):
        stats.estimate([0.5, float("nan")])
    with pytest.raises(stats.StatsError):
        stats.bootstrap_means([0.5], 0, seed=0)


# ---- coverage: seeded simulations -----------------------------------------------------------------


def _true_pass_at_k(k: int, a: float, b: float) -> float:
    """E[1 - (1 - p)^k] for p ~ Beta(a, b), by quadrature on a fine grid."""
    grid = np.linspace(0, 1, 200_001)[1:-1]
    density = grid ** (a - 1) * (1 - grid) ** (b - 1)
    return float(np.sum((1 - (1 - grid) ** k) * density) / np.sum(density))


def _simulated_counts(rng: np.random.Generator, tasks: int, n: int, a: float, b: float) -> dict[str, tuple[int, int]]:
    """Tasks drawn from a Beta(a, b) population of per-task pass rates (U-shaped for a, b < 1, as on
    real benchmarks: many tasks always or never solved), n samples each."""
    passed = rng.binomial(n, rng.beta(a, b, size=tasks))
    return {f"t{i}": (n, int(c)) for i, c in enumerate(passed)}


@pytest.mark.parametrize(
    ("tasks", "n", "k", "a", "b"),
    [(164, 1, 1, 0.5, 0.5), (164, 1, 1, 0.3, 1.2), (500, 1, 1, 0.4, 0.4),
     (164, 10, 1, 0.5, 0.8), (164, 10, 5, 0.5, 0.8)],
)
def test_stderr_interval_covers_the_true_rate_about_95_percent(tasks: int, n: int, k: int, a: float, b: float) -> None:
    rng = np.random.default_rng(20240 + tasks + n + k)
    true = _true_pass_at_k(k, a, b)
    runs, covered = 2000, 0
    for _ in range(runs):
        counts = _simulated_counts(rng, tasks, n, a, b)
        low, high = stats.pass_at_k_estimate(counts, k).ci95
        covered += low <= true <= high
    # Binomial sd of the coverage over 2000 runs is 0.005; the seeds are fixed, so this is exact.
    # The normal interval runs a little short at rates near 0.2 (0.934 here), as Wald intervals do.
    assert 0.925 <= covered / runs <= 0.97


def test_bootstrap_interval_covers_the_true_rate_about_95_percent() -> None:
    rng = np.random.default_rng(99)
    true = _true_pass_at_k(1, 0.5, 0.5)
    runs, covered = 400, 0
    for run in range(runs):
        counts = _simulated_counts(rng, 164, 1, 0.5, 0.5)
        low, high = stats.pass_at_k_estimate(counts, 1, method="bootstrap", resamples=1000, seed=run).ci95
        covered += low <= true <= high
    assert 0.92 <= covered / runs <= 0.98  # sd 0.011 over 400 runs


def test_the_exact_bound_covers_at_the_edge() -> None:
    """A model that almost never passes: the Wald interval alone would often be [0, 0]."""
    rng = np.random.default_rng(5)
    true, runs, covered = 0.004, 2000, 0
    for _ in range(runs):
        values = (rng.random(164) < true).astype(float)
        low, high = stats.estimate(values).ci95
        covered += low <= true <= high
    assert covered / runs >= 0.93


# ---- two runs -------------------------------------------------------------------------------------


def _binary_pair(losses: int, wins: int, tasks: int, solved: int) -> tuple[np.ndarray, np.ndarray]:
    """A and B over `tasks`; A solves `solved` of them; B loses `losses` of those and wins `wins`."""
    a = np.zeros(tasks)
    a[:solved] = 1
    b = a.copy()
    b[:losses] = 0
    b[solved:solved + wins] = 1
    return a, b


def test_paired_comparison_by_hand() -> None:
    a, b = _binary_pair(losses=10, wins=3, tasks=164, solved=80)
    result = stats.compare(a, b)
    assert (result.tasks, result.wins, result.losses, result.ties) == (164, 3, 10, 151)
    assert result.a == pytest.approx(80 / 164)
    assert result.b == pytest.approx(73 / 164)
    assert result.delta == pytest.approx(-7 / 164)
    d = (b - a).tolist()
    assert result.stderr == pytest.approx(stdev(d) / math.sqrt(164))
    assert result.ci95_stderr == pytest.approx((result.delta - stats.Z95 * result.stderr,
                                                result.delta + stats.Z95 * result.stderr))
    # McNemar exact: 13 discordant, 3 one way: 2 * P(X <= 3), X ~ Bin(13, 1/2).
    assert result.p_value == pytest.approx(2 * sum(math.comb(13, x) for x in range(4)) / 2**13)
    assert result.p_value_method == "sign-flip (exact; McNemar)"
    assert result.ci95[0] < result.delta < result.ci95[1]


def test_paired_bootstrap_matches_brute_force() -> None:
    a = np.array([1.0, 0.0, 1.0, 0.5, 0.2, 1.0])
    b = np.array([1.0, 1.0, 0.0, 0.9, 0.2, 1.0])
    exact = _exact_bootstrap_distribution((b - a).tolist())
    result = stats.compare(a, b, resamples=20_000, seed=2)
    low, high = np.quantile(exact, [0.025, 0.975])
    assert result.ci95 == pytest.approx((low, high), abs=0.05)


def _brute_force_sign_flip(d: list[float]) -> float:
    observed = abs(sum(d))
    hits = sum(abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= observed - 1e-12
               for signs in itertools.product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


@pytest.mark.parametrize(
    "d",
    [
        [1.0, 1.0, 1.0, -1.0, 0.0, 0.0, 1.0],  # pass/fail: the McNemar path
        [0.5, -0.2, 0.3, 0.3, 0.0, 0.7, -0.1, 0.4],  # general values: full enumeration
        [-0.1, -0.1, 0.2, -0.3],
        [0.0, 0.0],
    ],
)
def test_sign_flip_p_value_matches_brute_force(d: list[float]) -> None:
    p, _ = stats.sign_flip_p_value(d)
    assert p == pytest.approx(_brute_force_sign_flip(d), abs=1e-12)


def test_sign_flip_monte_carlo_is_close_to_exact_and_seeded() -> None:
    rng = np.random.default_rng(4)
    d = np.round(rng.normal(0.05, 0.3, size=18), 3)  # 18 > EXACT_SIGN_FLIP_MAX: sampled
    exact = _brute_force_sign_flip(d.tolist())  # 2^18 sign vectors
    p, method = stats.sign_flip_p_value(d, resamples=20_000, seed=1)
    assert method == "sign-flip (Monte Carlo, 20000 resamples, seed 1)"
    assert p == pytest.approx(exact, abs=0.015)  # Monte Carlo sd <= 0.0036
    assert stats.sign_flip_p_value(d, resamples=20_000, seed=1)[0] == p


def test_mcnemar_is_exact_for_many_tasks() -> None:
    a, b = _binary_pair(losses=40, wins=20, tasks=500, solved=300)
    p, method = stats.sign_flip_p_value(b - a)
    assert method == "sign-flip (exact; McNemar)"
    assert p == pytest.approx(2 * sum(math.comb(60, x) for x in range(21)) / 2**60, rel=1e-12)


def test_identical_runs() -> None:
    a, _ = _binary_pair(0, 0, 164, 80)
    result = stats.compare(a, a)
    assert (result.delta, result.p_value, result.wins, result.losses, result.ties) == (0.0, 1.0, 0, 0, 164)
    half = 1 - 0.05 ** (1 / 164)  # no task differs: the difference is still only known to +/- ~3/T
    assert result.ci95 == pytest.approx((-half, half))
    assert result.ci95_stderr == result.ci95


def test_every_task_flipped_and_one_task() -> None:
    every = stats.compare(np.zeros(20), np.ones(20))
    assert every.delta == 1.0
    assert every.ci95 == pytest.approx((2 * 0.025 ** (1 / 20) - 1, 1.0))
    assert every.p_value == pytest.approx(2 / 2**20)
    one = stats.compare([0.0], [1.0])
    assert one.stderr is None
    assert one.ci95 == pytest.approx((-0.95, 1.0))
    assert one.p_value == 1.0
    with pytest.raises(stats.StatsError, match="same tasks"):
        stats.compare([0.0, 1.0], [1.0])


def test_paired_comparison_is_deterministic_given_a_seed() -> None:
    rng = np.random.default_rng(8)
    a = rng.integers(0, 11, 164) / 10
    b = np.clip(a + rng.normal(0, 0.2, 164).round(1), 0, 1)
    assert stats.compare(a, b, seed=3) == stats.compare(a, b, seed=3)
    assert stats.compare(a, b, seed=3).ci95 != stats.compare(a, b, seed=4).ci95


def _model_rates(rng: np.random.Generator, size: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-task pass rates of two models: B's is A's moved by `shift` on the logit scale."""
    logit = rng.normal(0.0, 2.0, size)
    return 1 / (1 + np.exp(-logit)), 1 / (1 + np.exp(-(logit + shift)))


def _correlated_runs(rng: np.random.Generator, tasks: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Pass/fail outcomes of both models on the same tasks; on half the tasks both draw with the
    same uniform (outcomes agree as much as the rates allow), on the rest independently."""
    pa, pb = _model_rates(rng, tasks, shift)
    ua = rng.random(tasks)
    ub = np.where(rng.random(tasks) < 0.5, ua, rng.random(tasks))
    return (ua < pa).astype(float), (ub < pb).astype(float)


def _reruns(rng: np.random.Generator, tasks: int) -> tuple[np.ndarray, np.ndarray]:
    """Pass/fail outcomes of two runs of one model: the same per-task rates, independent noise."""
    rates = rng.beta(0.5, 0.5, tasks)
    return (rng.random(tasks) < rates).astype(float), (rng.random(tasks) < rates).astype(float)


@pytest.mark.parametrize("shift", [0.0, -0.3])
def test_paired_intervals_cover_the_true_difference(shift: float) -> None:
    truth_a, truth_b = _model_rates(np.random.default_rng(0), 2_000_000, shift)
    true = float(truth_b.mean() - truth_a.mean())  # Monte Carlo sd ~3e-4, far below the intervals
    rng = np.random.default_rng(31 + int(10 * abs(shift)))
    runs, boot, wald = 400, 0, 0
    for run in range(runs):
        a, b = _correlated_runs(rng, 164, shift)
        result = stats.compare(a, b, resamples=2000, seed=run)
        boot += result.ci95[0] <= true <= result.ci95[1]
        wald += result.ci95_stderr[0] <= true <= result.ci95_stderr[1]
    assert 0.91 <= boot / runs <= 0.985  # sd 0.011 over 400 runs
    assert 0.91 <= wald / runs <= 0.985


def test_p_value_is_calibrated_under_no_difference() -> None:
    """Two runs of the same model (independent sampling noise per task): p < 0.05 at most ~5%."""
    rng = np.random.default_rng(17)
    runs, rejected = 1000, 0
    for _ in range(runs):
        a, b = _reruns(rng, 164)
        rejected += stats.compare(a, b, resamples=200).p_value < 0.05
    assert rejected / runs <= 0.065  # McNemar's exact test is conservative: below 0.05 in expectation


# ---- regression gate ------------------------------------------------------------------------------


def _counts(outcomes: np.ndarray) -> dict[str, tuple[int, int]]:
    return {f"HumanEval/{i}": (1, int(v)) for i, v in enumerate(outcomes)}


def test_gate_flags_a_real_regression() -> None:
    baseline, candidate = _binary_pair(losses=15, wins=2, tasks=164, solved=100)
    decision = stats.regression_gate(_counts(baseline), _counts(candidate))
    assert decision.regressed
    assert decision.delta == pytest.approx(-13 / 164)
    assert decision.ci95[1] < 0 and decision.p_value < 0.05
    assert decision.baseline == pytest.approx(100 / 164) and decision.candidate == pytest.approx(87 / 164)
    metadata = decision.as_metadata()
    assert metadata["regressed"] is True and metadata["tasks"] == 164
    assert metadata["delta_ci95_high"] == decision.ci95[1]
    assert "fell by 0.0793" in decision.reason


def test_gate_does_not_flag_noise() -> None:
    baseline, candidate = _binary_pair(losses=6, wins=4, tasks=164, solved=100)  # 2 tasks net, 10 flips
    decision = stats.regression_gate(_counts(baseline), _counts(candidate))
    assert not decision.regressed
    assert decision.delta < 0 and decision.ci95[1] > 0
    assert "within noise" in decision.reason


def test_gate_does_not_block_on_a_handful_of_flips() -> None:
    """Four losses, no win: the bootstrap interval excludes zero but the exact test says p = 0.125."""
    baseline, candidate = _binary_pair(losses=4, wins=0, tasks=164, solved=100)
    decision = stats.regression_gate(_counts(baseline), _counts(candidate))
    assert decision.ci95[1] < 0
    assert decision.p_value == pytest.approx(0.125)
    assert not decision.regressed
    assert "too few tasks changed" in decision.reason


def test_gate_min_effect_and_improvements() -> None:
    baseline, candidate = _binary_pair(losses=15, wins=2, tasks=164, solved=100)
    strict = stats.regression_gate(_counts(baseline), _counts(candidate), min_effect=0.2)
    assert not strict.regressed and strict.min_effect == 0.2  # a real drop, but smaller than 0.2
    better = stats.regression_gate(_counts(candidate), _counts(baseline))
    assert not better.regressed and better.delta > 0
    with pytest.raises(stats.StatsError):
        stats.regression_gate(_counts(baseline), _counts(candidate), min_effect=-0.1)


def test_gate_uses_shared_tasks_and_per_task_rates() -> None:
    """n = 10 samples per task: per-task pass@1 is c/n; tasks only one run has are left out."""
    baseline = {f"t{i}": (10, 8) for i in range(60)} | {"only-baseline": (10, 0)}
    candidate = {f"t{i}": (10, 5) for i in range(60)} | {"only-candidate": (10, 10)}
    decision = stats.regression_gate(baseline, candidate)
    assert decision.tasks == 60
    assert decision.baseline == pytest.approx(0.8) and decision.candidate == pytest.approx(0.5)
    assert decision.regressed
    with pytest.raises(stats.StatsError, match="share no task"):
        stats.regression_gate({"a": (1, 1)}, {"b": (1, 1)})


def test_gate_false_alarm_rate_under_noise() -> None:
    """Reruns of one model at temperature > 0 (independent per-task noise): the gate fires rarely."""
    rng = np.random.default_rng(23)
    runs, fired = 300, 0
    for run in range(runs):
        a, b = _reruns(rng, 164)
        fired += stats.regression_gate(_counts(a), _counts(b), resamples=1000, seed=run).regressed
    assert fired / runs <= 0.04  # one-sided: about half of a 5% two-sided test

