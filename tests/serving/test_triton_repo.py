"""Repository generation without a server: both layouts parse with Triton's schema; parameters land."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from june_pipelines.registry import get_model
from june_pipelines.serving.pbtxt import ConfigError, validate
from june_pipelines.serving.triton_repo import (
    TritonRepoSettings,
    generate,
    validate_repository,
)
from june_pipelines.serving.upstream_models import DirectoryModels

FAKE_ALL_MODELS = Path(__file__).parent / "fake_models" / "all_models"


def _params(config) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


def test_inflight_layout_parameters_and_tensors(tmp_path):
    s = TritonRepoSettings(name_prefix="m-", max_batch_size=16, engine_dir="/engines/m/engine",
                           enable_kv_cache_reuse=True, max_queue_delay_microseconds=100, max_queue_size=64)
    repo = generate(tmp_path, s, tokenizer_source=get_model("smollm2").gguf_path().parent)
    assert validate_repository(tmp_path) == {}
    trt = validate((tmp_path / "m-tensorrt_llm" / "config.pbtxt").read_text())
    assert trt.backend == "tensorrtllm" and trt.max_batch_size == 16 and trt.model_transaction_policy.decoupled
    assert trt.dynamic_batching.max_queue_delay_microseconds == 100
    assert trt.dynamic_batching.default_queue_policy.max_queue_size == 64
    params = _params(trt)
    assert params["gpt_model_path"] == "/engines/m/engine"
    assert params["gpt_model_type"] == "inflight_fused_batching" and params["enable_kv_cache_reuse"] == "true"
    assert params["max_tokens_in_paged_kv_cache"] == ""  # unset: empty, never a placeholder
    ens = validate((tmp_path / "m-ensemble" / "config.pbtxt").read_text())
    inputs = {t.name: t for t in ens.input}
    assert inputs["text_input"].data_type == 13 and list(inputs["text_input"].dims) == [1]  # TYPE_STRING
    assert inputs["max_tokens"].data_type == 8  # TYPE_INT32
    assert [s.model_name for s in ens.ensemble_scheduling.step] == [
        "m-preprocessing",
        "m-tensorrt_llm",
        "m-postprocessing",
    ]
    assert {o.name for o in ens.output} >= {"text_output", "num_output_tokens", "num_input_tokens"}
    pre = validate((tmp_path / "m-preprocessing" / "config.pbtxt").read_text())
    assert _params(pre)["tokenizer_dir"] == "m-preprocessing/tokenizer"
    assert (tmp_path / "m-preprocessing" / "tokenizer" / "tokenizer.json").is_file()
    assert repo.metadata()["entry_model"] == "m-ensemble"


def test_llmapi_layout(tmp_path):
    s = TritonRepoSettings(layout="llmapi", name_prefix="m-", hf_model="/weights/m", max_batch_size=32)
    repo = generate(tmp_path, s, upstream=DirectoryModels(FAKE_ALL_MODELS))
    assert repo.models == ("m-tensorrt_llm",) and validate_repository(tmp_path) == {}
    config = validate((tmp_path / "m-tensorrt_llm" / "config.pbtxt").read_text())
    assert config.backend == "python" and "sampling_param_max_tokens" in {t.name for t in config.input}
    doc = yaml.safe_load((tmp_path / "m-tensorrt_llm" / "1" / "model.yaml").read_text())
    assert doc["backend"] == "pytorch" and doc["tensor_parallel_size"] == 1
    assert doc["triton_config"] == {"max_batch_size": 0, "decoupled": True}  # upstream's model.py does not batch
    # upstream's whole 1/ folder is copied: model.py imports helpers.py beside it
    assert repo.upstream_files == ("helpers.py", "model.py")
    assert (tmp_path / "m-tensorrt_llm" / "1" / "helpers.py").read_text() == (
        FAKE_ALL_MODELS / "llmapi" / "tensorrt_llm" / "1" / "helpers.py").read_text()


def test_layouts_that_need_upstream_models_refuse_without_them(tmp_path):
    tok = get_model("smollm2").gguf_path().parent
    with pytest.raises(ConfigError, match="llmapi layout needs upstream"):
        generate(tmp_path, TritonRepoSettings(layout="llmapi"))
    with pytest.raises(ConfigError, match="python backend needs upstream"):
        generate(tmp_path, TritonRepoSettings(triton_backend="python"), tokenizer_source=tok)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_python_backend_copies_upstreams_tensorrt_llm_model(tmp_path):
    repo = generate(tmp_path, TritonRepoSettings(name_prefix="p-", triton_backend="python"),
                    tokenizer_source=get_model("smollm2").gguf_path().parent, upstream=DirectoryModels(FAKE_ALL_MODELS))
    model = tmp_path / "p-tensorrt_llm" / "1" / "model.py"
    assert repo.upstream_files == ("model.py",)
    assert (
        model.read_text() == (FAKE_ALL_MODELS / "inflight_batcher_llm" / "tensorrt_llm" / "1" / "model.py").read_text()
    )
    assert validate((tmp_path / "p-tensorrt_llm" / "config.pbtxt").read_text()).backend == "python"


@pytest.mark.parametrize("layout", ["inflight", "llmapi"])
def test_tensor_parallelism_is_refused_clearly(tmp_path, layout):
    with pytest.raises(ConfigError, match="launch_triton_server.py"):
        generate(tmp_path, TritonRepoSettings(layout=layout, tensor_parallel_size=2),
                 tokenizer_source=get_model("smollm2").gguf_path().parent, upstream=DirectoryModels(FAKE_ALL_MODELS))


def test_regeneration_keeps_other_models_and_replaces_own(tmp_path):
    tok = get_model("smollm2").gguf_path().parent
    generate(tmp_path, TritonRepoSettings(name_prefix="a-"), tokenizer_source=tok)
    generate(tmp_path, TritonRepoSettings(name_prefix="b-", bls=True), tokenizer_source=tok)
    (tmp_path / "b-ensemble" / "stale.txt").write_text("old")
    generate(tmp_path, TritonRepoSettings(name_prefix="b-"), tokenizer_source=tok)
    assert (tmp_path / "a-ensemble").is_dir() and not (tmp_path / "b-ensemble" / "stale.txt").exists()
    assert validate_repository(tmp_path) == {}


def test_validation_rejects_placeholders_bad_syntax_and_wrong_names(tmp_path):
    with pytest.raises(ConfigError, match="unfilled placeholders"):
        validate('name: "t"\nbackend: "${triton_backend}"\n')
    with pytest.raises(ConfigError, match="not a valid Triton ModelConfig"):
        validate('name: "t"\nmax_batch_size: "eight"\n')
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.pbtxt").write_text('name: "y"\n')
    assert "differs from its directory" in validate_repository(tmp_path)["x"]


def test_inflight_layout_needs_a_tokenizer(tmp_path):
    with pytest.raises(ConfigError, match="tokenizer"):
        generate(tmp_path, TritonRepoSettings())
    with pytest.raises(ConfigError, match="no tokenizer.json and no GGUF"):
        generate(tmp_path / "r", TritonRepoSettings(), tokenizer_source=tmp_path)
