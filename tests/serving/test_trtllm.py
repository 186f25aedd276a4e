"""TensorRT-LLM: the exact commands and container specs per setting, and the real GPU preflight here."""

from __future__ import annotations

import shutil

import pytest

from june_pipelines.serving import trtllm as T


def test_plain_conversion_command():
    cmd = T.checkpoint_command(T.CheckpointSettings(model_family="llama", dtype="bfloat16", tp_size=2))
    assert cmd == [
        "python3", "/trtllm/examples/models/core/llama/convert_checkpoint.py",
        "--model_dir", "/work/model", "--output_dir", "/work/checkpoint",
        "--dtype", "bfloat16", "--tp_size", "2", "--pp_size", "1",
    ]


def test_int8_weight_only_uses_convert_checkpoint():
    cmd = T.checkpoint_command(T.CheckpointSettings(quantization="int8_wo", kv_cache_dtype="int8"))
    assert cmd[1].endswith("convert_checkpoint.py")
    assert cmd[-4:] == ["--use_weight_only", "--weight_only_precision", "int8", "--int8_kv_cache"]


@pytest.mark.parametrize("qformat", ["fp8", "int4_awq"])
def test_modelopt_quantization_commands(qformat):
    s = T.CheckpointSettings(quantization=qformat, kv_cache_dtype="fp8", calib_size=64, calib_dataset="/data/calib")
    cmd = T.checkpoint_command(s)
    assert cmd[:2] == ["python3", "/trtllm/examples/quantization/quantize.py"]
    assert cmd[cmd.index("--qformat") + 1] == qformat
    assert cmd[cmd.index("--calib_size") + 1] == "64"
    assert cmd[cmd.index("--kv_cache_dtype") + 1] == "fp8"
    assert cmd[cmd.index("--calib_dataset") + 1] == "/work/calib"  # mounted, never downloaded
    assert ("--awq_block_size" in cmd) == (qformat == "int4_awq")


def test_fp8_kv_cache_without_modelopt_is_rejected():
    with pytest.raises(T.BuildError, match="ModelOpt"):
        T.checkpoint_command(T.CheckpointSettings(quantization="none", kv_cache_dtype="fp8"))


def test_build_command_has_every_setting():
    s = T.BuildSettings(max_batch_size=16, max_input_len=2048, max_seq_len=4096, max_num_tokens=8192,
                        gemm_plugin="float16", use_paged_context_fmha=True, multiple_profiles=True)
    cmd = T.build_command(s)
    assert cmd[0] == "trtllm-build"
    pairs = dict(zip(cmd[1::2], cmd[2::2], strict=True))
    assert pairs == {
        "--checkpoint_dir": "/work/checkpoint", "--output_dir": "/work/engine",
        "--max_batch_size": "16", "--max_input_len": "2048", "--max_seq_len": "4096", "--max_num_tokens": "8192",
        "--max_beam_width": "1", "--gemm_plugin": "float16", "--gpt_attention_plugin": "auto",
        "--kv_cache_type": "paged", "--use_paged_context_fmha": "enable", "--use_fp8_context_fmha": "disable",
        "--remove_input_padding": "enable", "--multiple_profiles": "enable", "--workers": "1", "--log_level": "info",
    }


def test_build_settings_are_checked():
    with pytest.raises(T.BuildError, match="max_input_len"):
        T.build_command(T.BuildSettings(max_input_len=8192, max_seq_len=8192))


def test_build_container_spec(tmp_path):
    spec = T.build_container(T.BuildSettings(), T.DEFAULT_TRITON_IMAGE, tmp_path / "ckpt", tmp_path / "engine", gpus=1)
    assert spec.image == "nvcr.io/nvidia/tritonserver:26.04-trtllm-python-py3"  # carries TensorRT-LLM 1.2.1
    assert spec.device_requests == [{"Driver": "", "Count": 1, "Capabilities": [["gpu"]]}]
    assert spec.mounts == (
        T.Mount(str(tmp_path / "ckpt"), "/work/checkpoint", read_only=True),
        T.Mount(str(tmp_path / "engine"), "/work/engine"),
    )
    cli = spec.docker_cli()
    assert cli[:5] == ["docker", "run", "--rm", "--gpus", "1"]
    assert cli[cli.index(spec.image) + 1:] == T.build_command(T.BuildSettings())
    kwargs = spec.run_kwargs()  # the SDK objects the runner passes to containers.run
    assert kwargs["device_requests"][0]["Capabilities"] == [["gpu"]] and kwargs["device_requests"][0]["Count"] == 1
    assert kwargs["mounts"][0]["Target"] == "/work/checkpoint" and kwargs["mounts"][0]["ReadOnly"] is True
    assert kwargs["shm_size"] == "16g"


def test_checkpoint_container_is_offline_and_mounts_examples(tmp_path):
    s = T.CheckpointSettings(quantization="int4_awq", calib_dataset=str(tmp_path / "calib"))
    spec = T.checkpoint_container(s, "img", tmp_path / "hf", tmp_path / "ckpt", tmp_path / "examples")
    targets = {m.target: m for m in spec.mounts}
    assert targets["/work/model"].read_only and targets["/trtllm/examples"].read_only
    assert targets["/work/calib"].source == str(tmp_path / "calib")
    assert spec.environment == {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    assert spec.device_requests[0]["Count"] == -1  # all GPUs
    assert spec.command[1] == "/trtllm/examples/quantization/quantize.py"


def test_checkpoint_container_uses_the_images_own_examples_by_default(tmp_path):
    """The trtllm-python-py3 images ship the version-matched examples/ at /app/examples."""
    spec = T.checkpoint_container(T.CheckpointSettings(), "img", tmp_path / "hf", tmp_path / "ckpt", None)
    assert spec.command[1] == "/app/examples/models/core/llama/convert_checkpoint.py"
    assert {m.target for m in spec.mounts} == {"/work/model", "/work/checkpoint"}


def test_trtllm_serve_and_triton_specs(tmp_path):
    serve = T.serve_container(T.ServeSettings(port=8123, tp_size=2), T.DEFAULT_TRTLLM_IMAGE, tmp_path / "hf")
    assert serve.command[:5] == ("trtllm-serve", "serve", "/work/model", "--backend", "pytorch")
    assert serve.ports == {8123: 8123} and "--tp_size" in serve.command
    triton = T.triton_container(T.DEFAULT_TRITON_IMAGE, tmp_path / "repo", tmp_path / "engines", tmp_path / "store")
    assert "--model-control-mode=explicit" in triton.command
    assert T.Mount(str(tmp_path / "engines"), "/engines", read_only=True) in triton.mounts
    assert T.Mount(str(tmp_path / "store"), "/weights", read_only=True) in triton.mounts  # llmapi's model.yaml path
    assert T.Mount(str(tmp_path / "repo"), "/models") in triton.mounts


def test_version_check():
    T.check_version("1.2.0rc3")
    with pytest.raises(T.BuildError, match="written for 1.2.x"):
        T.check_version("1.3.0")


def test_inspect_engine_reads_build_output(tmp_path):
    (tmp_path / "rank0.engine").write_bytes(b"\0" * 2048)
    (tmp_path / "config.json").write_text('{"version": "1.2.0", "build_config": {"max_batch_size": 8}}')
    info = T.inspect_engine(tmp_path)
    assert info.files == ("rank0.engine",) and info.trtllm_version == "1.2.0"
    assert info.metadata()["build_config"] == '{"max_batch_size": 8}'
    with pytest.raises(T.BuildError, match="no rank"):
        T.inspect_engine(tmp_path / "missing")


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA driver")
@pytest.mark.parametrize("runner", ["docker", "local"])
def test_preflight_fails_clearly_on_this_machine(runner):
    """Real checks, no mocks: this machine has no NVIDIA GPU (and Docker, if running, no nvidia runtime)."""
    report = T.preflight(runner)
    assert not report.ok
    assert any("no NVIDIA GPU visible" in p for p in report.problems)
    if runner == "docker":
        assert any("Docker" in p or "docker" in p for p in report.problems)
    else:
        assert any("tensorrt_llm" in p for p in report.problems)
    with pytest.raises(T.GpuUnavailable) as err:
        T.require_gpu(runner)
    assert "no CPU fallback" in str(err.value)


def test_run_local_streams_lines_and_fails_on_exit_code():
    import sys

    lines: list[str] = []
    T.run_local([sys.executable, "-c", "print('[I] step 1'); print('[I] step 2')"], lines.append)
    assert lines[0].startswith("$ ") and lines[1:] == ["[I] step 1", "[I] step 2"]
    with pytest.raises(T.BuildError, match="exited with 3"):
        T.run_local([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], lines.append)
    assert lines[-1] == "boom"
