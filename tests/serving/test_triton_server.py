"""Against a real tritonserver (the CPU build in the nvidia-pytriton wheel): a generated repository
whose GPU model is replaced by a python-backend model with the same tensors that runs the bundled
SmolLM2 GGUF. Load/unload, readiness, index, unary and streaming generation over gRPC and HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from june_pipelines.inference.base import ChatMessage, SamplingParams
from june_pipelines.inference.triton import TritonLLMClient
from june_pipelines.registry import get_model
from june_pipelines.serving.triton_deploy import DeployError, TritonRepositoryClient
from june_pipelines.serving.triton_local import (
    LocalTritonError,
    LocalTritonServer,
    find_pytriton,
)
from june_pipelines.serving.triton_repo import (
    TritonRepoSettings,
    generate,
    validate_repository,
)
from june_pipelines.serving.upstream_models import DirectoryModels

# Stand-ins for upstream's python models, laid out as in TensorRT-LLM's triton_backend/all_models.
FAKE_ALL_MODELS = Path(__file__).parent / "fake_models" / "all_models"
PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


def _pytriton_or_skip() -> None:
    try:
        find_pytriton()
    except LocalTritonError as exc:
        pytest.skip(f"no CPU tritonserver: {exc}")


def build_test_repository(root: Path, prefix: str, decoupled: bool, bls: bool = False) -> TritonRepoSettings:
    """Generate the real repository with the python backend, whose tensorrt_llm model (copied from
    "upstream" by the generator) is the GGUF stand-in; point it at the GGUF."""
    gguf = get_model("smollm2").gguf_path()
    settings = TritonRepoSettings(
        name_prefix=prefix, triton_backend="python", decoupled=decoupled, max_batch_size=4, bls=bls
    )
    generate(root, settings, tokenizer_source=gguf.parent, upstream=DirectoryModels(FAKE_ALL_MODELS))
    version = root / settings.name("tensorrt_llm") / "1"
    (version / "fake_engine.json").write_text(json.dumps({"gguf": str(gguf)}))
    return settings


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    _pytriton_or_skip()
    root = tmp_path_factory.mktemp("repo")
    build_test_repository(root, "smol-", decoupled=True, bls=True)
    build_test_repository(root, "smolu-", decoupled=False)
    server = LocalTritonServer(root)
    try:
        server.start()
    except LocalTritonError as exc:
        pytest.skip(f"tritonserver does not start here: {exc}")
    repo = TritonRepositoryClient(server.http_url)
    repo.deploy("smol-ensemble")
    yield server, repo, root
    server.stop()


def test_generated_repository_is_valid(triton):
    _, _, root = triton
    assert validate_repository(root) == {}
    assert not [p for p in root.rglob("config.pbtxt") if "${" in p.read_text()]


def test_deploy_reports_readiness_and_index(triton):
    _, repo, _ = triton
    state = repo.state("smol-ensemble")
    assert state.server_ready and state.entry_ready
    meta = state.metadata()
    for name in ("smol-ensemble", "smol-preprocessing", "smol-tensorrt_llm", "smol-postprocessing"):
        assert meta["model_states"][name] == "READY"
    assert meta["model_states"]["smolu-ensemble"] == "UNLOADED"  # explicit mode: nothing else loaded


def test_unary_generation_grpc_and_http_agree(triton):
    server, _, _ = triton
    params = SamplingParams(max_tokens=24, temperature=0.0)
    grpc = TritonLLMClient("smol-ensemble", server.grpc_url, protocol="grpc", decoupled=True)
    http = TritonLLMClient("smol-ensemble", server.http_url, protocol="http", decoupled=True)
    a = grpc.complete(PROMPT, params)
    b = http.complete(PROMPT, params)
    assert "Paris" in a.text
    assert a.text == b.text  # greedy: same tokens through both front ends
    assert 0 < a.completion_tokens <= 24 and a.completion_tokens == b.completion_tokens
    assert grpc.usage.requests == 1


def test_streaming_grpc_and_http_yield_pieces_of_the_same_text(triton):
    server, _, _ = triton
    params = SamplingParams(max_tokens=24)
    grpc = TritonLLMClient("smol-ensemble", server.grpc_url, protocol="grpc")
    whole = grpc.complete(PROMPT, params).text
    pieces = list(grpc.stream_complete(PROMPT, params))
    assert len(pieces) > 3 and "".join(pieces) == whole
    http_pieces = list(
        TritonLLMClient("smol-ensemble", server.http_url, protocol="http").stream_complete(PROMPT, params)
    )
    assert "".join(http_pieces) == whole


def test_chat_template_stop_words_and_length(triton):
    server, _, _ = triton
    client = TritonLLMClient("smol-ensemble", server.grpc_url, chat_template="chatml")
    answer = client.chat([ChatMessage("user", "What is the capital of France?")], SamplingParams(max_tokens=24))
    assert "Paris" in answer.text
    stopped = client.complete(PROMPT, SamplingParams(max_tokens=24, stop=("Paris",)))
    assert "Paris" not in stopped.text and stopped.finish_reason == "stop"
    short = client.complete(PROMPT, SamplingParams(max_tokens=3))
    assert short.completion_tokens == 3 and short.finish_reason == "length"
    streamed = "".join(
        client.stream_chat([ChatMessage("user", "What is the capital of France?")], SamplingParams(max_tokens=24))
    )
    assert streamed == answer.text


def test_switch_to_non_decoupled_model_and_back(triton):
    server, repo, _ = triton
    state = repo.deploy("smolu-ensemble", unload=["smol-ensemble"])
    states = state.metadata()["model_states"]
    assert states["smolu-ensemble"] == "READY" and states["smolu-tensorrt_llm"] == "READY"
    assert states["smol-ensemble"] != "READY" and states["smol-tensorrt_llm"] != "READY"  # dependents unloaded
    unary = TritonLLMClient("smolu-ensemble", server.grpc_url, decoupled=False)
    assert "Paris" in unary.complete(PROMPT, SamplingParams(max_tokens=24)).text
    with pytest.raises(DeployError, match="no-such-model"):
        repo.load("no-such-model")
    repo.deploy("smol-ensemble", unload=["smolu-ensemble"])
    assert repo.model_ready("smol-ensemble") and not repo.model_ready("smolu-ensemble")


def test_bls_model_streams_the_same_text_as_the_ensemble(triton):
    server, repo, _ = triton
    repo.load("smol-tensorrt_llm_bls")
    params = SamplingParams(max_tokens=24)
    ensemble = TritonLLMClient("smol-ensemble", server.grpc_url).complete(PROMPT, params).text
    bls = TritonLLMClient("smol-tensorrt_llm_bls", server.grpc_url)
    assert bls.complete(PROMPT, params).text == ensemble
    assert "".join(bls.stream_complete(PROMPT, params)) == ensemble
    repo.unload("smol-tensorrt_llm_bls", unload_dependents=False)


def test_llmapi_layout_served_with_the_client(tmp_path):
    """The generated llmapi repository: config.pbtxt, upstream's 1/ folder (a GGUF stand-in for model.py
    that imports helpers.py, as NVIDIA's does), June's model.yaml with max_batch_size 0."""
    import httpx
    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    _pytriton_or_skip()
    settings = TritonRepoSettings(layout="llmapi", name_prefix="api-", max_batch_size=4, decoupled=True)
    generate(tmp_path, settings, upstream=DirectoryModels(FAKE_ALL_MODELS))
    version = tmp_path / "api-tensorrt_llm" / "1"
    (version / "fake_engine.json").write_text(json.dumps({"gguf": str(get_model("smollm2").gguf_path())}))
    with LocalTritonServer(tmp_path) as server:
        repo = TritonRepositoryClient(server.http_url)
        assert repo.deploy("api-tensorrt_llm").entry_ready
        assert httpx.get(f"http://{server.http_url}/v2/models/api-tensorrt_llm/config").json()["max_batch_size"] == 0
        client = TritonLLMClient("api-tensorrt_llm", server.grpc_url, layout="llmapi")
        params = SamplingParams(max_tokens=16)
        answer = client.complete(PROMPT, params)
        whole = answer.text
        assert "Paris" in whole and answer.finish_reason == "stop"  # the model's own finish_reason (EOS)
        assert client.complete(PROMPT, SamplingParams(max_tokens=3)).finish_reason == "length"
        pieces = list(client.stream_complete(PROMPT, params))  # the model streams the text so far each time
        assert len(pieces) > 3 and "".join(pieces) == whole
        http = TritonLLMClient("api-tensorrt_llm", server.http_url, protocol="http", layout="llmapi")
        assert http.complete(PROMPT, params).text == whole
        # the request upstream's docs send: curl .../generate -d '{"text_input": ..., "sampling_param_max_tokens": 16}'
        doc = httpx.post(f"http://{server.http_url}/v2/models/api-tensorrt_llm/generate",
                         json={"text_input": PROMPT, "sampling_param_max_tokens": 16}, timeout=60).json()
        assert doc["text_output"] == whole
        # a batched [1, 1] text_input is refused, as upstream's model.py refuses it
        batched = grpcclient.InferInput("text_input", [1, 1], "BYTES")
        batched.set_data_from_numpy(np.array([[PROMPT.encode()]], dtype=object))
        with pytest.raises(InferenceServerException):
            grpcclient.InferenceServerClient(server.grpc_url).infer("api-tensorrt_llm", [batched])


def test_upstream_style_ensemble_request(triton):
    """A request as upstream's clients build it: `seed`, `exclude_input_in_output`, `num_return_sequences`,
    token counts requested with return_num_*_tokens, over plain tritonclient (not June's client)."""
    import numpy as np
    import tritonclient.grpc as grpcclient

    server, _, _ = triton

    def tensor(name, value, dtype):
        array = np.array(
            [[value]],
            dtype=object if dtype == "BYTES" else {"INT32": np.int32, "UINT64": np.uint64, "BOOL": bool}[dtype],
        )
        t = grpcclient.InferInput(name, list(array.shape), dtype)
        t.set_data_from_numpy(array)
        return t

    inputs = [tensor("text_input", PROMPT.encode(), "BYTES"), tensor("max_tokens", 12, "INT32"),
              tensor("seed", 7, "UINT64"), tensor("exclude_input_in_output", True, "BOOL"),
              tensor("num_return_sequences", 1, "INT32"), tensor("return_num_input_tokens", True, "BOOL"),
              tensor("return_num_output_tokens", True, "BOOL")]
    client = grpcclient.InferenceServerClient(server.grpc_url)
    TritonRepositoryClient(server.http_url).load("smolu-ensemble")
    try:
        result = client.infer("smolu-ensemble", inputs)
    finally:
        TritonRepositoryClient(server.http_url).unload("smolu-ensemble")
    text = result.as_numpy("text_output").reshape(-1)[0].decode()
    assert "Paris" in text and PROMPT not in text
    assert 0 < int(result.as_numpy("num_output_tokens").reshape(-1)[0]) <= 12
    assert int(result.as_numpy("num_input_tokens").reshape(-1)[0]) > 10


def test_concurrent_requests_each_get_their_own_answer(triton):
    """Evaluations send requests from several threads: every stream must get its own, complete answer."""
    from concurrent.futures import ThreadPoolExecutor

    server, _, _ = triton
    client = TritonLLMClient("smol-ensemble", server.grpc_url)
    prompts = [PROMPT, PROMPT.replace("France", "Italy"), PROMPT.replace("France", "Spain")]
    params = SamplingParams(max_tokens=16)
    expected = [client.complete(p, params).text for p in prompts]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda p: client.complete(p, params).text, prompts * 2))
    assert got == expected * 2
    assert "Rome" in expected[1] and "Madrid" in expected[2]
