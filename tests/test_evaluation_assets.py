"""The evaluation asset graph, materialized for real: bundled model, process sandbox, checks."""

import dagster as dg
import pandas as pd
import pytest

from june_pipelines.assets import benchmarks
from june_pipelines.evals.store import EvalStore
from june_pipelines.inference.resources import LlamaCppLLMResource
from june_pipelines.paths import leaderboard_path
from june_pipelines.sandboxes.resources import ProcessSandboxResource

EVAL_ASSETS = [benchmarks.problems, benchmarks.reference_outputs, benchmarks.completions, benchmarks.executions,
               benchmarks.pass_at_k]
CHECKS = [benchmarks.completions_sample_counts, benchmarks.canonical_solutions_pass, benchmarks.pass_at_k_valid,
          benchmarks.pass_at_k_regression]


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(benchmarks.model_partitions.name, ["smollm2"])
        yield instance


@pytest.fixture(scope="module")
def resources():
    return {"llm": LlamaCppLLMResource(n_ctx=2048), "sandbox": ProcessSandboxResource(timeout_s=3.0)}


def _materialize(instance, resources, benchmark: str, problems: dict, completions: dict, ks: list[int]):
    return dg.materialize(
        [*EVAL_ASSETS, *CHECKS],
        instance=instance,
        resources=resources,
        partition_key=dg.MultiPartitionKey({"model": "smollm2", "benchmark": benchmark}),
        run_config={
            "ops": {
                "problems": {"config": problems},
                "completions": {"config": completions},
                "pass_at_k": {"config": {"ks": ks}},
            }
        },
    )


def _metadata(result, asset: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def test_humaneval_partition_end_to_end_and_resume(instance, resources) -> None:
    completions = {"n": 2, "temperature": 0.8, "max_tokens": 48}
    result = _materialize(instance, resources, "humaneval", {"limit": 2}, completions, [1, 2, 10])
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"completions_sample_counts": True, "canonical_solutions_pass": True, "pass_at_k_valid": True,
                      "pass_at_k_regression": True}

    meta = _metadata(result, "pass_at_k")
    assert "pass@1" in meta and "pass@2" in meta and "pass@10" not in meta  # k <= n only
    assert meta["pass@1_ci_low"] <= meta["pass@1"] <= meta["pass@1_ci_high"]
    store = EvalStore("smollm2", "humaneval")
    run, pointer = store.latest()
    executions = run.read_executions(pointer["sandbox"])
    assert len(executions) == 4 and set(executions["status"]) <= {"passed", "failed", "timed out", "error"}
    summary = store.latest_summary()
    assert summary["pass@1"] == pytest.approx(executions["passed"].mean(), abs=1e-4)
    assert summary["n"] == 2 and summary["temperature"] == 0.8 and summary["max_tokens"] == 48
    assert _metadata(result, "completions")["new_samples"] == 4

    again = _materialize(instance, resources, "humaneval", {"limit": 2}, completions, [1, 2, 10])
    assert again.success
    assert _metadata(again, "completions")["new_samples"] == 0
    assert _metadata(again, "completions")["reused_samples"] == 4

    board = dg.materialize([benchmarks.leaderboard], instance=instance)
    rows = _metadata(board, "leaderboard")
    table = pd.read_parquet(leaderboard_path())
    [row] = table[table["run_key"] == summary["run_key"]].to_dict("records")  # other tests add their own runs
    assert (row["model"], row["benchmark"]) == ("smollm2", "humaneval")
    assert (row["tasks"], row["samples"], row["n"]) == (2, 4, 2)
    assert rows["plot"].startswith("![pass@1 by model, settings and benchmark](data:image/png;base64,")


def test_mbpp_partition_with_a_local_dataset(instance, resources, mbpp_source: str) -> None:
    result = _materialize(
        instance, resources, "mbpp", {"limit": 2, "source": mbpp_source}, {"n": 1, "max_tokens": 48}, [1]
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    problems, _ = EvalStore("smollm2", "mbpp").read_problems()
    assert [p.task_id for p in problems] == ["MBPP/11", "MBPP/12"]


def test_unknown_model_partition_fails_clearly(instance, resources) -> None:
    instance.add_dynamic_partitions(benchmarks.model_partitions.name, ["not-registered"])
    result = dg.materialize(
        [benchmarks.problems, benchmarks.completions],
        instance=instance,
        resources=resources,
        partition_key=dg.MultiPartitionKey({"model": "not-registered", "benchmark": "humaneval"}),
        run_config={"ops": {"problems": {"config": {"limit": 1}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("completions")
    message = str(failure.error.cause or failure.error)
    assert "model 'not-registered' is not registered (known: " in message and "smollm2" in message
