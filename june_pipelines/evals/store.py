"""Per-sample evaluation data on disk: Parquet tables and small JSON summaries, laid out here only.

Under `JUNE_HOME/evals/<model>/<benchmark>/`:

    problems.parquet, few_shot.parquet     the tasks of the partition's latest `problems`
    latest.json                            which run the partition's assets work on now
    baseline.json                          the run the regression gate compares with (optional)
    runs/<run key>/                        one folder per settings (generation, backend, tasks, data)
        completions.jsonl                  the generation journal (resumable)
        completions.parquet, settings.json
        <sandbox>/executions.parquet, <sandbox>/pass_at_k_per_task.parquet, <sandbox>/pass_at_k.json

A run with other settings gets another folder, so two runs never overwrite or average each other;
the leaderboard reads every `pass_at_k.json`. Nothing outside this module spells these names.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from june_pipelines.evals.datasets import Problem
from june_pipelines.paths import eval_dir, june_home

if TYPE_CHECKING:
    import pandas as pd


class MissingResultError(FileNotFoundError):
    pass


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write atomically: a crash mid-write never leaves a torn file where a good one was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def write_json(data: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)
    return path


def read_parquet(path: Path, produced_by: str) -> pd.DataFrame:
    if not path.exists():
        raise MissingResultError(f"{path} does not exist: materialize `{produced_by}` for this partition first")
    import pandas as pd

    return pd.read_parquet(path)


def read_json(path: Path, produced_by: str) -> Any:
    if not path.exists():
        raise MissingResultError(f"{path} does not exist: materialize `{produced_by}` for this partition first")
    return json.loads(path.read_text())


def run_key(settings: Mapping[str, Any]) -> str:
    """A short, stable name for everything that changes a score (the settings of a run)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunStore:
    """The files of one run (one settings key) of a (model, benchmark) evaluation."""

    root: Path

    @property
    def key(self) -> str:
        return self.root.name

    @property
    def journal(self) -> Path:
        return self.root / "completions.jsonl"

    @property
    def completions_path(self) -> Path:
        return self.root / "completions.parquet"

    def write_completions(self, frame: pd.DataFrame, settings: Mapping[str, Any]) -> Path:
        write_json(dict(settings), self.root / "settings.json")
        return write_parquet(frame, self.completions_path)

    def read_completions(self) -> pd.DataFrame:
        return read_parquet(self.completions_path, "completions")

    def settings(self) -> dict[str, Any]:
        return dict(read_json(self.root / "settings.json", "completions"))

    def executions_path(self, sandbox: str) -> Path:
        return self.root / sandbox / "executions.parquet"

    def write_executions(self, frame: pd.DataFrame, sandbox: str) -> Path:
        return write_parquet(frame, self.executions_path(sandbox))

    def read_executions(self, sandbox: str) -> pd.DataFrame:
        return read_parquet(self.executions_path(sandbox), "executions")

    def per_task_path(self, sandbox: str) -> Path:
        return self.root / sandbox / "pass_at_k_per_task.parquet"

    def summary_path(self, sandbox: str) -> Path:
        return self.root / sandbox / "pass_at_k.json"

    def write_pass_at_k(self, summary: Mapping[str, Any], per_task: pd.DataFrame, sandbox: str) -> Path:
        write_parquet(per_task, self.per_task_path(sandbox))
        return write_json(dict(summary), self.summary_path(sandbox))

    def read_summary(self, sandbox: str) -> dict[str, Any]:
        return dict(read_json(self.summary_path(sandbox), "pass_at_k"))

    def read_per_task(self, sandbox: str) -> pd.DataFrame:
        return read_parquet(self.per_task_path(sandbox), "pass_at_k")


@dataclass(frozen=True)
class EvalStore:
    """The files of one (model, benchmark) evaluation partition."""

    model: str
    benchmark: str

    @property
    def root(self) -> Path:
        return eval_dir(self.model, self.benchmark)

    def run(self, key: str) -> RunStore:
        return RunStore(self.root / "runs" / key)

    # -- the partition's current run (which the next asset in the chain works on) -------------

    def set_latest(self, run: RunStore, **fields: Any) -> None:
        current = self._pointer("latest.json") or {}
        if current.get("run") != run.key:
            current = {}
        write_json({**current, "run": run.key, **fields}, self.root / "latest.json")

    def latest(self) -> tuple[RunStore, dict[str, Any]]:
        pointer = self._pointer("latest.json")
        if not pointer:
            raise MissingResultError(f"no run for {self.model}/{self.benchmark} yet: materialize `completions` first")
        return self.run(pointer["run"]), pointer

    def latest_summary(self) -> dict[str, Any]:
        """The pass@k summary of the partition's latest run (what `june eval run` prints)."""
        run, pointer = self.latest()
        if "sandbox" not in pointer:
            raise MissingResultError(f"{self.model}/{self.benchmark}: materialize `executions` first")
        return run.read_summary(str(pointer["sandbox"]))

    def set_baseline(self, run: RunStore, sandbox: str) -> Path:
        return write_json({"run": run.key, "sandbox": sandbox}, self.root / "baseline.json")

    def baseline(self) -> tuple[RunStore, str] | None:
        pointer = self._pointer("baseline.json")
        return (self.run(pointer["run"]), str(pointer["sandbox"])) if pointer else None

    def _pointer(self, name: str) -> dict[str, Any] | None:
        path = self.root / name
        return json.loads(path.read_text()) if path.exists() else None

    # -- problems ------------------------------------------------------------------------------

    def write_problems(self, problems: Sequence[Problem], few_shot: Sequence[Problem]) -> Path:
        import pandas as pd

        write_parquet(pd.DataFrame([p.as_record() for p in few_shot]), self.root / "few_shot.parquet")
        return write_parquet(pd.DataFrame([p.as_record() for p in problems]), self.root / "problems.parquet")

    def read_problems(self) -> tuple[list[Problem], list[Problem]]:
        def load(name: str) -> list[Problem]:
            frame = read_parquet(self.root / name, "problems")
            return [Problem.from_record(r) for r in frame.to_dict("records")]

        return load("problems.parquet"), load("few_shot.parquet")


def all_summaries(root: Path | None = None) -> list[dict[str, Any]]:
    """Every run's pass@k summary on disk (one per run and sandbox), for the leaderboard."""
    base = (root or june_home()) / "evals"
    return [json.loads(path.read_text()) for path in sorted(base.glob("*/*/runs/*/*/pass_at_k.json"))]
