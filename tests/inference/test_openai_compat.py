"""The OpenAI-compatible backend against a real server: llama.cpp's, serving the bundled model."""

import time

import pytest
from llama_server import LlamaServer, free_port

from june_pipelines.inference.base import ChatMessage, LLMError, SamplingParams
from june_pipelines.inference.openai_compat import OpenAICompatClient
from june_pipelines.inference.resources import OpenAICompatLLMResource

API_KEY = "test-key-not-a-secret"


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory):
    server = LlamaServer(free_port(), tmp_path_factory.mktemp("llama_server") / "server.log", api_key=API_KEY)
    try:
        server.start(timeout_s=90)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server.url
    server.stop()


@pytest.fixture
def client(server_url: str):
    resource = OpenAICompatLLMResource(base_url=server_url, api_key=API_KEY, max_concurrency=2)
    with resource.client("smollm2") as c:
        yield c


def test_chat_and_usage(client) -> None:
    result = client.chat([ChatMessage("user", "What is the capital of France?")], SamplingParams(max_tokens=24, seed=1))
    assert "Paris" in result.text
    assert result.prompt_tokens > 0 and 0 < result.completion_tokens <= 24
    assert client.usage.requests == 1 and client.usage.completion_tokens == result.completion_tokens


def test_completion_honours_stop_and_max_tokens(client) -> None:
    prompt = "def add(a, b):\n    \"\"\"Return the sum of a and b.\"\"\"\n"
    result = client.complete(prompt, SamplingParams(max_tokens=64, stop=("\ndef ",)))
    assert "\ndef " not in result.text
    short = client.complete("Once upon a time", SamplingParams(max_tokens=3, temperature=0.0))
    assert short.completion_tokens == 3 and short.finish_reason == "length"


def test_greedy_is_deterministic_and_streaming_matches(client) -> None:
    messages = [ChatMessage("user", "Name three colours.")]
    params = SamplingParams(max_tokens=20, temperature=0.0)
    first, second = client.chat(messages, params).text, client.chat(messages, params).text
    assert first == second
    assert "".join(client.stream_chat(messages, params)) == first


def test_models_and_readiness(client) -> None:
    assert "smollm2" in client.models()
    assert client.ready()


def test_wrong_api_key_fails_at_once_without_retries(server_url: str) -> None:
    with OpenAICompatClient("smollm2", server_url, api_key="wrong", max_retries=5, backoff_s=5) as bad:
        started = time.monotonic()
        with pytest.raises(LLMError, match="HTTP 401"):
            bad.chat([ChatMessage("user", "hi")], SamplingParams(max_tokens=2))
        assert time.monotonic() - started < 5  # a 401 is not retried


def test_unreachable_server_retries_then_fails_clearly() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with OpenAICompatClient("smollm2", url, max_retries=2, backoff_s=0.05, timeout_s=2) as dead:
        with pytest.raises(LLMError, match="failed after 3 attempts: ConnectError"):
            dead.complete("hi", SamplingParams(max_tokens=2))
        assert not dead.ready()
