"""A TensorRT-LLM step's output streams into the run and into a log file beside the artifact.

Only the GPU boundary is faked (a `tensorrt_llm` module reporting its version); the command is real.
The step runs through the local runner, as the assets and `june engine build` run it.
"""

import sys
import types

import pytest

from june_pipelines.serving.runner import LocalRunner, Step
from june_pipelines.serving.steps import run_logged
from june_pipelines.serving.trtllm import BuildError


def _with_trtllm(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt_llm", types.SimpleNamespace(__version__=version))


def _step(code: str) -> Step:
    return Step("build", None, (sys.executable, "-c", code))


def test_local_step_output_goes_to_the_log_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_trtllm(monkeypatch, "1.2.1")
    log_path = tmp_path / "engine" / "build.log"
    streamed: list[str] = []
    seconds = run_logged(LocalRunner(), _step("print('step one'); print('step two')"), log_path, streamed.append)
    lines = log_path.read_text().splitlines()
    assert lines[0].startswith("$ ") and lines[1:] == ["step one", "step two"]
    assert streamed == lines  # the run's log gets every line too
    assert seconds > 0


def test_wrong_tensorrt_llm_version_stops_before_running(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_trtllm(monkeypatch, "0.21.0")
    marker = tmp_path / "ran"
    with pytest.raises(BuildError, match="'0.21.0' found"):
        run_logged(LocalRunner(), _step(f"open({str(marker)!r}, 'w')"), tmp_path / "build.log", lambda _: None)
    assert not marker.exists()
