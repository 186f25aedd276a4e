"""A TensorRT-LLM step's output streams into the run and into a log file beside the artifact.

Only the GPU boundary is faked (a `tensorrt_llm` module reporting its version); the command is real.
"""

import sys
import types

import dagster as dg
import pytest

from june_pipelines.assets.engines import _run_logged
from june_pipelines.serving.resources import TensorRTLLMResource
from june_pipelines.serving.trtllm import BuildError


def _with_trtllm(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt_llm", types.SimpleNamespace(__version__=version))


def test_local_step_output_goes_to_the_log_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_trtllm(monkeypatch, "1.2.0")
    log_path = tmp_path / "engine" / "build.log"
    seconds = _run_logged(
        dg.build_asset_context(), TensorRTLLMResource(runner="local"), log_path,
        lambda: None, [sys.executable, "-c", "print('step one'); print('step two')"],
    )
    lines = log_path.read_text().splitlines()
    assert lines[0].startswith("$ ") and lines[1:] == ["step one", "step two"]
    assert seconds > 0


def test_wrong_tensorrt_llm_version_stops_before_running(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_trtllm(monkeypatch, "0.21.0")
    marker = tmp_path / "ran"
    with pytest.raises(BuildError, match="'0.21.0' found"):
        _run_logged(
            dg.build_asset_context(), TensorRTLLMResource(runner="local"), tmp_path / "build.log",
            lambda: None, [sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
        )
    assert not marker.exists()
