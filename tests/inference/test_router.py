"""LLM routing with fallback: a real llama.cpp server as the primary, stopped mid-test, and the
embedded SmolLM2 as the fallback; the circuit breaker's transitions; per-backend usage."""

from __future__ import annotations

import dagster as dg
import pytest
from llama_server import LlamaServer, free_port

from june_pipelines.inference.base import ChatMessage, LLMError, SamplingParams
from june_pipelines.inference.openai_compat import OpenAICompatClient
from june_pipelines.inference.resources import LlamaCppLLMResource, LLMResource, OpenAICompatLLMResource
from june_pipelines.inference.router import BreakerState, CircuitBreaker, RoutedLLMResource, RoutingLLMClient
from june_pipelines.inference.settings import LLMConfigError, LLMSettings

API_KEY = "router-test-key-not-a-secret"
QUESTION = [ChatMessage("user", "What is the capital of France?")]
PARAMS = SamplingParams(max_tokens=24, seed=1)
CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class FakeClock:
    """The breaker's cool-down is time-based; tests move time by hand so no result depends on speed."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_n_failures_probes_once_after_cooldown_and_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=30, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is CLOSED
    breaker.record_success()  # a success resets the count: failures must be consecutive
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is OPEN and not breaker.allow()
    clock.now += 29
    assert not breaker.allow() and breaker.retry_in_s() == 1
    clock.now += 1
    assert breaker.allow() and breaker.state is HALF
    assert not breaker.allow()  # one probe at a time
    breaker.record_failure()  # the probe failed: open again, a fresh cool-down
    assert breaker.state is OPEN and not breaker.allow()
    clock.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is CLOSED and breaker.consecutive_failures == 0 and breaker.allow()
    assert breaker.transitions == [(CLOSED, OPEN), (OPEN, HALF), (HALF, OPEN), (OPEN, HALF), (HALF, CLOSED)]


def test_breaker_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError, match="cooldown_s"):
        CircuitBreaker(cooldown_s=-1)


@pytest.fixture
def primary(tmp_path, monkeypatch):
    """A llama.cpp server that the test may stop and start again on the same port."""
    server = LlamaServer(free_port(), tmp_path / "server.log", api_key=API_KEY)
    monkeypatch.setenv("JUNE_OPENAI_API_KEY", API_KEY)
    yield server
    server.stop()


def _router_from_env(url: str, failures: int = 2, cooldown_s: float = 60) -> LLMResource:
    return LLMSettings.from_env(
        {
            "JUNE_LLM_BACKEND": "openai,llama_cpp",
            "JUNE_OPENAI_BASE_URL": url,
            "JUNE_OPENAI_API_KEY": API_KEY,
            "JUNE_OPENAI_TIMEOUT_S": "30",
            "JUNE_LLM_BREAKER_FAILURES": str(failures),
            "JUNE_LLM_BREAKER_COOLDOWN_S": str(cooldown_s),
        }
    ).resource()


@pytest.mark.slow
def test_primary_stopped_mid_conversation_falls_back_then_recovers(primary: LlamaServer) -> None:
    primary.start()
    resource = _router_from_env(primary.url, failures=2, cooldown_s=60)
    assert isinstance(resource, RoutedLLMResource)
    clock = FakeClock()
    with resource.client(clock=clock) as router:
        openai, embedded = router.routes
        assert "Paris" in router.chat(QUESTION, PARAMS).text
        assert router.usage.backends["openai"].usage.requests == 1 and embedded.stats.usage.requests == 0

        primary.stop()  # the GPU server goes away between two turns
        for turn in (1, 2):
            answer = router.chat(QUESTION, PARAMS)  # answered by the embedded model
            assert answer.text.strip() and answer.completion_tokens > 0
            assert openai.stats.failures == turn and embedded.stats.served_as_fallback == turn
        assert openai.breaker.state is OPEN
        assert "ConnectError" in openai.stats.last_error

        router.chat(QUESTION, PARAMS)  # circuit open: the primary is not even tried
        assert openai.stats.failures == 2 and openai.stats.skipped_open == 1
        assert embedded.stats.usage.requests == 3
        health = {h["backend"]: h for h in router.health()}
        assert health["openai"]["state"] == "open" and health["openai"]["retry_in_s"] == 60
        assert health["llama_cpp"]["state"] == "closed"

        primary.start()  # back up; after the cool-down one request probes it and closes the circuit
        clock.now += 60
        assert "Paris" in router.chat(QUESTION, PARAMS).text
        assert openai.stats.usage.requests == 2 and embedded.stats.usage.requests == 3
        assert openai.breaker.transitions == [(CLOSED, OPEN), (OPEN, HALF), (HALF, CLOSED)]

        usage = router.usage.as_dict()
        assert usage["requests"] == 5
        per = usage["backends"]
        assert per["openai"]["requests"] == 2 and per["openai"]["failures"] == 2 and per["openai"]["skipped_open"] == 1
        assert per["llama_cpp"]["requests"] == 3 and per["llama_cpp"]["served_as_fallback"] == 3
        assert per["llama_cpp"]["completion_tokens"] > 0 and per["llama_cpp"]["latency_s_total"] > 0
        assert per["openai"]["latency_s_total"] > 0
        assert usage["completion_tokens"] == per["openai"]["completion_tokens"] + per["llama_cpp"]["completion_tokens"]


@pytest.mark.slow
def test_streaming_falls_back_before_the_first_piece() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with _router_from_env(dead, failures=1).client() as router:
        text = "".join(router.stream_chat(QUESTION, PARAMS))
        assert text.strip()
        openai, embedded = router.routes
        assert openai.stats.failures == 1 and embedded.stats.usage.requests == 1
        assert embedded.stats.served_as_fallback == 1


def test_a_named_model_is_never_answered_by_another_model() -> None:
    """An evaluation names its model: a fallback that cannot serve it fails instead of substituting."""
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with _router_from_env(dead).client("llama3.1-8b-instruct") as router:
        with pytest.raises(LLMError, match=r"no LLM backend answered: openai: .*ConnectError.*; llama_cpp: .*no GGUF"):
            router.complete("def add(a, b):", SamplingParams(max_tokens=8))
        assert router.usage.requests == 0


def test_every_circuit_open_still_tries_each_backend() -> None:
    def dead_client() -> OpenAICompatClient:
        return OpenAICompatClient("smollm2", f"http://127.0.0.1:{free_port()}/v1", max_retries=0)

    routes = [("a", dead_client), ("b", dead_client)]
    with RoutingLLMClient(routes, failure_threshold=1, cooldown_s=3600, clock=FakeClock()) as router:
        for attempt in (1, 2):
            with pytest.raises(LLMError, match="no LLM backend answered: a: .*; b: "):
                router.chat(QUESTION, PARAMS)
            assert [r.stats.failures for r in router.routes] == [attempt, attempt]
        assert all(r.breaker.state is OPEN and r.stats.skipped_open == 0 for r in router.routes)


@pytest.mark.slow
def test_dagster_run_resolves_the_nested_api_key_and_records_usage_per_backend(primary: LlamaServer) -> None:
    """In a run, the primary's key comes from the EnvVar (a wrong key would be a 401 and a fallback)."""
    primary.start()
    resource = _router_from_env(primary.url)
    assert API_KEY not in resource.model_dump_json()  # the UI shows the variable, not the secret

    @dg.asset
    def answer(llm: LLMResource) -> dg.MaterializeResult:
        with llm.client() as client:
            text = client.chat(QUESTION, PARAMS).text
            return dg.MaterializeResult(metadata={"text": text, "usage": dg.MetadataValue.json(client.usage.as_dict())})

    result = dg.materialize([answer], resources={"llm": resource})
    metadata = result.asset_materializations_for_node("answer")[0].metadata
    usage = metadata["usage"].value
    assert "Paris" in metadata["text"].value
    assert usage["backends"]["openai"]["requests"] == 1 and usage["backends"]["openai"]["failures"] == 0
    assert usage["backends"]["llama_cpp"]["requests"] == 0


@pytest.mark.slow
def test_outside_a_run_the_api_key_envvar_is_resolved_too(primary: LlamaServer) -> None:
    """The bot CLI uses resources without a run: the key must still be the variable's value."""
    primary.start()
    resource = OpenAICompatLLMResource(base_url=primary.url, api_key=dg.EnvVar("JUNE_OPENAI_API_KEY"), max_retries=0)
    with resource.client() as client:
        assert "Paris" in client.chat(QUESTION, PARAMS).text


def test_settings_single_backend_and_fallback_lists() -> None:
    assert isinstance(LLMSettings.from_env({}).resource(), LlamaCppLLMResource)
    alone = LLMSettings.from_env({"JUNE_LLM_BACKEND": "openai"}).resource()
    assert isinstance(alone, OpenAICompatLLMResource) and alone.max_retries == 3 and alone.api_key is None
    env = {"JUNE_LLM_BACKEND": " triton , openai,llama_cpp", "JUNE_TRITON_GRPC": "gpu:8001"}
    routed = LLMSettings.from_env(env).resource()
    assert isinstance(routed, RoutedLLMResource) and routed.order == ["triton", "openai", "llama_cpp"]
    assert routed.openai is not None and routed.openai.max_retries == 0  # a fallback follows: fail fast
    assert routed.triton is not None and routed.triton.url == "gpu:8001"
    assert routed.describe()["order"] == "triton,openai,llama_cpp"
    last = LLMSettings.from_env({"JUNE_LLM_BACKEND": "triton,openai", "JUNE_OPENAI_MAX_RETRIES": "5"}).resource()
    assert isinstance(last, RoutedLLMResource) and last.llama_cpp is None
    assert last.openai is not None and last.openai.max_retries == 5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JUNE_LLM_BACKEND": "openai,vllm"}, "JUNE_LLM_BACKEND='openai,vllm': expected one of"),
        ({"JUNE_LLM_BACKEND": "openai,openai"}, "appears twice"),
        ({"JUNE_LLM_BACKEND": "openai,"}, "expected one of"),
        ({"JUNE_LLM_BREAKER_FAILURES": "0"}, "JUNE_LLM_BREAKER_FAILURES='0': must be at least 1"),
        ({"JUNE_LLM_BREAKER_COOLDOWN_S": "soon"}, "JUNE_LLM_BREAKER_COOLDOWN_S='soon': expected a number"),
        ({"JUNE_OPENAI_MAX_RETRIES": "1.5"}, "expected an integer"),
    ],
)
def test_settings_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(LLMConfigError, match=message.replace("(", r"\(")):
        LLMSettings.from_env(env)


def test_router_resource_rejects_an_unconfigured_backend() -> None:
    with pytest.raises(LLMError, match="'openai' is in order but not configured"):
        RoutedLLMResource(order=["openai", "llama_cpp"], llama_cpp=LlamaCppLLMResource()).client()
    with pytest.raises(LLMError, match="unknown LLM backend 'nim'"):
        RoutedLLMResource(order=["nim"]).client()


@pytest.mark.slow
def test_a_live_text_turn_survives_its_primary_being_down(tmp_path) -> None:
    """The voice/chat pipeline as the gateways build it: the GPU server is down, the user still gets an answer."""
    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.voice.pipeline import build_pipeline

    dead = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(LLMError, match="ConnectError"):  # without a fallback the turn cannot be answered
        build_pipeline(None, None, OpenAICompatLLMResource(base_url=dead, max_retries=0))

    resource = _router_from_env(dead)
    memory = ConversationMemory(tmp_path / "memory.sqlite")
    pipeline = build_pipeline(None, None, resource, memory=memory)
    result = pipeline.turn("test:router", text="Say hello to June.", want_audio=False)
    assert result.decision == "direct" and result.reply.strip() and result.error is None
    router = pipeline.agent.llm
    assert isinstance(router, RoutingLLMClient)
    openai, embedded = router.routes
    assert openai.stats.failures >= 1 and embedded.stats.usage.requests >= 2  # the warm-up and the answer


def test_the_code_location_validates_with_a_fallback_list() -> None:
    """Dagster accepts the routed resource (nested, optional backends) as the code location's `llm`."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "JUNE_LLM_BACKEND": "triton,openai,llama_cpp", "JUNE_OPENAI_API_KEY": API_KEY}
    dagster = Path(sys.executable).with_name("dagster")
    out = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
                         cwd=root, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert API_KEY not in out.stdout + out.stderr
