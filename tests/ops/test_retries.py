"""Retries on Dagster's real executor: a transient model failure is retried (and resumes where it
stopped), a deterministic failure fails at once, and the policies sit on the steps that need them."""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import pytest

from june_pipelines.assets import benchmarks, engines, models
from june_pipelines.inference.base import ChatMessage, Completion, LLMClient, LLMError, SamplingParams
from june_pipelines.inference.resources import LlamaCppLLMResource
from june_pipelines.retries import BUILD, MODEL_CALLS, SANDBOX, SERVING, fail_fast_on_bad_input, is_deterministic
from june_pipelines.sandboxes.resources import ProcessSandboxResource


class FlakyClient(LLMClient):
    """The bundled model behind a server that fails once, on the `fail_on`-th request of the run.

    The count lives in a file so that it survives the step's retry."""

    backend = "flaky"

    def __init__(self, inner: LLMClient, counter: Path, fail_on: int) -> None:
        super().__init__(inner.model)
        self.inner, self.counter, self.fail_on = inner, counter, fail_on

    def _tick(self) -> None:
        calls = int(self.counter.read_text() or 0) + 1 if self.counter.exists() else 1
        self.counter.write_text(str(calls))
        if calls == self.fail_on:
            raise LLMError("http://gpu-host:8000/v1/chat/completions answered HTTP 503: the server is restarting")

    def _complete(self, prompt: str, params: SamplingParams) -> Completion:
        self._tick()
        return self.inner.complete(prompt, params)

    def _chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        self._tick()
        return self.inner.chat(messages, params)

    def close(self) -> None:
        self.inner.close()


class FlakyLLMResource(LlamaCppLLMResource):
    counter_path: str
    fail_on: int = 2

    def client(self, model_id: str | None = None) -> LLMClient:
        return FlakyClient(super().client(model_id), Path(self.counter_path), self.fail_on)


def _partition(model: str = "smollm2", benchmark: str = "humaneval") -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"model": model, "benchmark": benchmark})


def _events(result: dg.ExecuteInProcessResult, step: str) -> list[str]:
    return [e.event_type_value for e in result.all_events if e.step_key == step]


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("JUNE_HOME", str(tmp_path / "june"))  # results of this test only
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(benchmarks.model_partitions.name, ["smollm2", "not-a-model"])
        yield instance


@pytest.mark.slow
def test_a_transient_model_failure_is_retried_and_resumes_from_the_journal(instance, tmp_path) -> None:
    counter = tmp_path / "requests"
    result = dg.materialize(
        [benchmarks.problems, benchmarks.completions],
        instance=instance,
        partition_key=_partition(),
        resources={"llm": FlakyLLMResource(counter_path=str(counter), fail_on=2, n_ctx=2048)},
        run_config={"ops": {"problems": {"config": {"limit": 2}},
                            "completions": {"config": {"n": 1, "max_tokens": 16}}}},
    )
    assert result.success
    events = _events(result, "completions")
    assert events.count("STEP_UP_FOR_RETRY") == 1 and events.count("STEP_RESTARTED") == 1
    assert events.count("STEP_FAILURE") == 0 and events[-1] == "STEP_SUCCESS"
    assert int(counter.read_text()) == 3  # one answer, the failure, then only the missing sample
    [materialization] = result.asset_materializations_for_node("completions")
    meta = materialization.metadata
    assert meta["samples"].value == 2 and meta["new_samples"].value == 1 and meta["reused_samples"].value == 1


def test_an_unregistered_model_fails_at_once_without_retries(instance, tmp_path) -> None:
    result = dg.materialize(
        [benchmarks.problems, benchmarks.completions],
        instance=instance,
        partition_key=_partition("not-a-model"),
        resources={"llm": FlakyLLMResource(counter_path=str(tmp_path / "requests"), fail_on=0)},
        run_config={"ops": {"problems": {"config": {"limit": 1}}}},
        raise_on_error=False,
    )
    assert not result.success
    events = _events(result, "completions")
    assert "STEP_UP_FOR_RETRY" not in events and events.count("STEP_FAILURE") == 1
    [failure] = [e for e in result.all_events if e.step_key == "completions" and e.is_step_failure]
    assert "RegistryError: model 'not-a-model' is not registered" in failure.step_failure_data.error.message
    assert not (tmp_path / "requests").exists()  # the model was never asked


def test_a_missing_upstream_result_fails_at_once_without_retries(instance) -> None:
    result = dg.materialize(
        [benchmarks.executions], instance=instance, partition_key=_partition(),
        resources={"sandbox": ProcessSandboxResource()}, raise_on_error=False,
    )
    events = _events(result, "executions")
    assert not result.success and "STEP_UP_FOR_RETRY" not in events and events.count("STEP_FAILURE") == 1


def test_policies_sit_on_the_steps_that_call_models_servers_or_docker() -> None:
    expected = {
        benchmarks.completions: MODEL_CALLS,
        benchmarks.reference_outputs: SANDBOX,
        benchmarks.executions: SANDBOX,
        models.model_weights: SERVING,
        engines.trt_checkpoint: BUILD,
        engines.trt_engine: BUILD,
        engines.triton_deployment: SERVING,
        engines.trtllm_serve_deployment: SERVING,
    }
    for asset, policy in expected.items():
        assert asset.op.retry_policy == policy, asset.key
    pure = [benchmarks.problems, benchmarks.pass_at_k, benchmarks.leaderboard, engines.triton_model_repository]
    assert all(asset.op.retry_policy is None for asset in pure)  # files in, files out: a retry repeats it
    checks = [benchmarks.completions_sample_counts, benchmarks.canonical_solutions_pass, benchmarks.pass_at_k_valid,
              benchmarks.pass_at_k_regression, engines.repository_configs_parse]
    assert all(check.op.retry_policy is None for check in checks)  # a failed check is a result, not retried


def test_policy_delays_grow_and_stay_bounded() -> None:
    for policy in (MODEL_CALLS, SANDBOX, SERVING):
        delays = [policy.calculate_delay(attempt) for attempt in range(1, policy.max_retries + 1)]
        nominal = [(2**attempt - 1) * policy.delay for attempt in range(1, policy.max_retries + 1)]
        assert all(n - policy.delay <= d <= n + policy.delay for d, n in zip(delays, nominal, strict=True))
    assert BUILD.max_retries == 1


def test_what_counts_as_deterministic() -> None:
    from june_pipelines.evals.store import MissingResultError
    from june_pipelines.registry import RegistryError
    from june_pipelines.serving.trtllm import GpuUnavailable

    assert is_deterministic(RegistryError("unknown model"))
    assert is_deterministic(MissingResultError("materialize completions first"))
    assert is_deterministic(GpuUnavailable("no NVIDIA GPU"))
    assert is_deterministic(dg.Failure("bad config", allow_retries=False))
    assert not is_deterministic(dg.Failure("Triton is not reachable"))
    assert not is_deterministic(LLMError("HTTP 503"))
    assert not is_deterministic(ConnectionError("engine restarting"))
    try:
        json.loads("{truncated")
    except ValueError as exc:  # a library's ValueError: a half-read reply, worth another try
        assert not is_deterministic(exc)


def test_fail_fast_keeps_the_signature_and_refuses_generators() -> None:
    def body(context: dg.AssetExecutionContext, config: benchmarks.CompletionsConfig) -> int:
        return 1

    assert list(inspect.signature(fail_fast_on_bad_input(body)).parameters) == ["context", "config"]

    def stream():
        yield 1

    with pytest.raises(TypeError, match="plain functions"):
        fail_fast_on_bad_input(stream)

