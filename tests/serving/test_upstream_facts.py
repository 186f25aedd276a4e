"""Generated repositories against the facts upstream fixes (tests/serving/upstream_facts.py).

A drift from TensorRT-LLM 1.2's Triton backend (a missing parameter key, a renamed or retyped tensor,
llmapi batching) fails here instead of as a failed model load on a GPU host.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import upstream_facts as U
import yaml

from june_pipelines.registry import get_model
from june_pipelines.serving import versions
from june_pipelines.serving.errors import VersionError
from june_pipelines.serving.pbtxt import validate
from june_pipelines.serving.triton_repo import TritonRepoSettings, generate
from june_pipelines.serving.upstream_models import DirectoryModels

FAKE_ALL_MODELS = Path(__file__).parent / "fake_models" / "all_models"


def _facts(tensors) -> dict[str, U.TensorFact]:
    from tritonclient.grpc import model_config_pb2

    names = model_config_pb2.DataType.Name
    return {
        t.name: U.TensorFact(
            t.name,
            names(t.data_type),
            tuple(t.dims),
            getattr(t, "optional", False),
            getattr(t, "allow_ragged_batch", False),
            t.HasField("reshape") and list(t.reshape.shape) == [],
        )
        for t in tensors
    }


def _expected(facts) -> dict[str, U.TensorFact]:
    return {f.name: f for f in facts}


def _params(config) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("facts")
    settings = TritonRepoSettings(name_prefix="m-", bls=True, engine_dir="/engines/m/engine")
    generate(root, settings, tokenizer_source=get_model("smollm2").gguf_path().parent)
    return root


def _config(root: Path, name: str):
    return validate((root / name / "config.pbtxt").read_text())


@pytest.mark.parametrize(
    ("model", "inputs", "outputs"),
    [
        ("m-tensorrt_llm", U.TENSORRT_LLM_INPUTS, U.TENSORRT_LLM_OUTPUTS),
        ("m-ensemble", U.ENSEMBLE_INPUTS, U.ENSEMBLE_OUTPUTS),
        ("m-preprocessing", U.PREPROCESSING_INPUTS, U.PREPROCESSING_OUTPUTS),
        ("m-postprocessing", U.POSTPROCESSING_INPUTS, U.POSTPROCESSING_OUTPUTS),
        ("m-tensorrt_llm_bls", U.BLS_INPUTS, U.BLS_OUTPUTS),
    ],
)
def test_every_tensor_matches_upstream(repo, model, inputs, outputs):
    config = _config(repo, model)
    assert _facts(config.input) == _expected(inputs)
    assert _facts(config.output) == _expected(outputs)


def test_tensorrt_llm_has_every_parameter_key_the_backend_reads(repo):
    params = _params(_config(repo, "m-tensorrt_llm"))
    assert sorted(params) == sorted(U.TENSORRT_LLM_PARAMETERS)
    for key in U.TENSORRT_LLM_REQUIRED_PARAMETERS:
        assert key in params
    assert not set(U.TENSORRT_LLM_FORBIDDEN_PARAMETERS) & set(params)
    assert params["executor_worker_path"] == U.EXECUTOR_WORKER_PATH
    assert params["gpt_model_path"] == "/engines/m/engine" and params["gpt_model_type"] == "inflight_fused_batching"
    # unset keys are empty: the backend's conversion fails and it takes its default
    assert params["max_tokens_in_paged_kv_cache"] == "" and params["tokenizer_dir"] == ""
    assert params["guided_decoding_backend"] == "" and params["xgrammar_tokenizer_info_path"] == ""


@pytest.mark.parametrize(
    ("model", "keys"),
    [("m-preprocessing", U.PREPROCESSING_PARAMETERS), ("m-postprocessing", U.POSTPROCESSING_PARAMETERS),
     ("m-tensorrt_llm_bls", U.BLS_PARAMETERS)],
)
def test_python_models_have_upstreams_parameter_keys(repo, model, keys):
    assert set(keys) <= set(_params(_config(repo, model)))


def test_bls_points_at_the_prefixed_models(repo):
    params = _params(_config(repo, "m-tensorrt_llm_bls"))
    assert params["tensorrt_llm_model_name"] == "m-tensorrt_llm"
    assert (
        params["preprocessing_model_name"] == "m-preprocessing"
        and params["postprocessing_model_name"] == "m-postprocessing"
    )


def test_ensemble_feeds_tensorrt_llm_as_upstream_does(repo):
    steps = {s.model_name: s for s in _config(repo, "m-ensemble").ensemble_scheduling.step}
    assert list(steps) == ["m-preprocessing", "m-tensorrt_llm", "m-postprocessing"]
    assert dict(steps["m-tensorrt_llm"].input_map) == U.ENSEMBLE_TRTLLM_INPUT_MAP
    assert "seed" in {t.name for t in _config(repo, "m-ensemble").input}
    assert "random_seed" not in (repo / "m-ensemble" / "config.pbtxt").read_text()


def test_llmapi_layout_matches_upstream(tmp_path):
    generate(tmp_path, TritonRepoSettings(layout="llmapi", name_prefix="a-", hf_model="/weights/a/local"),
             upstream=DirectoryModels(FAKE_ALL_MODELS))
    config = _config(tmp_path, "a-tensorrt_llm")
    assert _facts(config.input) == _expected(U.LLMAPI_INPUTS)
    assert _facts(config.output) == _expected(U.LLMAPI_OUTPUTS)
    assert "max_batch_size" not in (tmp_path / "a-tensorrt_llm" / "config.pbtxt").read_text()  # set by model.yaml
    version = tmp_path / "a-tensorrt_llm" / "1"
    assert sorted(p.name for p in version.iterdir()) == U.LLMAPI_VERSION_FILES
    doc = yaml.safe_load((version / "model.yaml").read_text())
    assert list(doc) == U.LLMAPI_MODEL_YAML_KEYS
    assert doc["triton_config"]["max_batch_size"] == U.LLMAPI_MAX_BATCH_SIZE and doc["model"] == "/weights/a/local"


def test_container_version_table_and_pin():
    assert versions.TRITON_TRTLLM_VERSIONS == U.TRITON_TRTLLM_VERSIONS
    assert versions.PINNED_TRTLLM_VERSION == U.BACKEND_R26_04_TRTLLM
    assert versions.image_trtllm_version(versions.DEFAULT_TRITON_IMAGE) == "1.2.1"
    assert versions.IMAGE_EXAMPLES == U.IMAGE_EXAMPLES and versions.IMAGE_ALL_MODELS == U.IMAGE_ALL_MODELS
    assert versions.EXAMPLES_TAG == "v1.2.1"
    versions.check_image(versions.DEFAULT_TRITON_IMAGE)
    for release, version in U.TRITON_TRTLLM_VERSIONS.items():
        image = f"nvcr.io/nvidia/tritonserver:{release}-trtllm-python-py3"
        if version.startswith("1.2."):
            versions.check_image(image)
        else:
            with pytest.raises(VersionError, match=f"carries TensorRT-LLM {version}"):
                versions.check_image(image)
    versions.check_image("nvcr.io/nvidia/tensorrt-llm/release:1.2.1")  # not in the table: checked in the container
