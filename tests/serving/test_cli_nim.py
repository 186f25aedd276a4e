"""`june triton` / `june engine` commands, and the NIM preset and readiness helper (against a loopback server)."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from june_pipelines.cli import main
from june_pipelines.registry import get_model
from june_pipelines.serving import nim


def test_engine_preflight_command_fails_with_reasons():
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA driver")
    result = CliRunner().invoke(main, ["engine", "preflight", "--runner", "local"])
    assert result.exit_code == 1
    assert "no NVIDIA GPU visible" in result.output and "tensorrt_llm" in result.output


def test_engine_build_dry_run_prints_exact_commands(tmp_path):
    result = CliRunner().invoke(main, ["engine", "build", "smollm2", "--dry-run", "--quantization", "fp8",
                                       "--max-batch-size", "4", "--examples-dir", str(tmp_path), "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    convert, build = result.output.strip().splitlines()
    assert convert.startswith("docker run --rm --gpus all") and "quantize.py" in convert and "--qformat fp8" in convert
    assert f"-v {tmp_path}:/trtllm/examples:ro" in convert and "-e HF_HUB_OFFLINE=1" in convert
    assert "trtllm-build" in build and "--max_batch_size 4" in build and f"{tmp_path}/w/smollm2/engine:/work/engine" in build


def test_engine_build_without_gpu_fails_before_any_work(tmp_path):
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA driver")
    result = CliRunner().invoke(main, ["engine", "build", "smollm2", "--work-dir", str(tmp_path)])
    assert result.exit_code != 0 and "GPU preflight failed" in result.output
    assert not (tmp_path / "smollm2").exists()


def test_triton_repo_and_validate_commands(tmp_path):
    gguf_dir = get_model("smollm2").gguf_path().parent
    runner = CliRunner()
    result = runner.invoke(main, ["triton", "repo", "smollm2", "--out", str(tmp_path), "--tokenizer", str(gguf_dir), "--bls"])
    assert result.exit_code == 0, result.output
    assert "smollm2-tensorrt_llm_bls" in result.output and "clients call: smollm2-ensemble" in result.output
    assert (tmp_path / "smollm2-preprocessing" / "tokenizer" / "tokenizer.json").is_file()
    assert runner.invoke(main, ["triton", "validate", str(tmp_path)]).output.strip() == "5/5 configs valid"
    (tmp_path / "smollm2-ensemble" / "config.pbtxt").write_text('name: "x"\nmax_batch_size: ${triton_max_batch_size}\n')
    bad = runner.invoke(main, ["triton", "validate", str(tmp_path)])
    assert bad.exit_code == 1 and "unfilled placeholders" in bad.output


@pytest.fixture
def fake_nim():
    """A loopback HTTP server answering like a NIM that becomes ready on the second health call."""
    calls = {"health": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            if self.path == "/v1/health/ready":
                calls["health"] += 1
                status, body = (200, {"status": "ready"}) if calls["health"] > 1 else (503, {"status": "not ready"})
            elif self.path == "/v1/models":
                status, body = 200, {"object": "list", "data": [{"id": "meta/llama-3.1-8b-instruct"}]}
            else:
                status, body = 404, {}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_nim_readiness_models_and_preset(fake_nim):
    ready, detail = nim.nim_ready(fake_nim)
    assert not ready and "503" in detail
    nim.wait_ready(fake_nim, timeout_s=5, poll_s=0.05)
    assert nim.nim_models(fake_nim) == ["meta/llama-3.1-8b-instruct"]
    resource = nim.nim_llm_resource(fake_nim)
    assert resource.health_path == "/v1/health/ready" and resource.base_url == fake_nim
    assert nim.nim_ready("http://127.0.0.1:9/v1")[0] is False


def test_nim_container_passes_the_key_by_name(monkeypatch, tmp_path):
    monkeypatch.setenv("NGC_API_KEY", "secret-value")
    spec = nim.nim_container("nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8", str(tmp_path), port=8080)
    cli = " ".join(spec.docker_cli())
    assert "-e NGC_API_KEY " in cli and "secret-value" not in cli and "-p 8080:8000" in cli
    assert spec.device_requests[0]["Capabilities"] == [["gpu"]]
