"""The code location loads fast, without heavy libraries, and Dagster's own validation accepts it."""

import subprocess
import sys
from pathlib import Path

from june_pipelines.definitions import defs

REPO_ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("llama_cpp", "ctranslate2", "faster_whisper", "onnxruntime", "piper", "tritonclient", "docker",
         "telegram", "discord", "torch", "av", "pandas", "matplotlib", "datasets")


def test_loading_definitions_imports_no_heavy_library() -> None:
    code = (
        "import sys, june_pipelines.definitions as d; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at load time: {out.stdout.strip()}"


def test_evaluation_graph_jobs_and_schedules_are_defined() -> None:
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"problems", "completions", "executions", "pass_at_k", "leaderboard"} <= keys
    assert defs.resolve_job_def("evaluation") is not None
    schedule = defs.resolve_schedule_def("nightly_evaluation")
    assert schedule.default_status.value == "STOPPED"


def test_dagster_definitions_validate() -> None:
    dagster = Path(sys.executable).with_name("dagster")
    out = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
