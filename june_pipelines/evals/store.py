"""Per-sample evaluation data on disk: Parquet tables and small JSON summaries per (model, benchmark).

Layout under `JUNE_HOME/evals/<model>/<benchmark>/`:
  problems.parquet, few_shot.parquet, completions.jsonl (journal), completions.parquet,
  settings.json, executions.parquet, pass_at_k_per_task.parquet, pass_at_k.json
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
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


@dataclass(frozen=True)
class EvalStore:
    """The files of one (model, benchmark) evaluation."""

    model: str
    benchmark: str

    @property
    def root(self) -> Path:
        return eval_dir(self.model, self.benchmark)

    @property
    def journal(self) -> Path:
        return self.root / "completions.jsonl"

    def path(self, name: str) -> Path:
        return self.root / name

    def write_problems(self, problems: Sequence[Problem], few_shot: Sequence[Problem]) -> Path:
        import pandas as pd

        write_parquet(pd.DataFrame([p.as_record() for p in few_shot]), self.path("few_shot.parquet"))
        return write_parquet(pd.DataFrame([p.as_record() for p in problems]), self.path("problems.parquet"))

    def read_problems(self) -> tuple[list[Problem], list[Problem]]:
        def load(name: str) -> list[Problem]:
            frame = read_parquet(self.path(name), "problems")
            return [Problem.from_record(r) for r in frame.to_dict("records")]

        return load("problems.parquet"), load("few_shot.parquet")


def all_summaries(root: Path | None = None) -> list[dict[str, Any]]:
    """Every (model, benchmark) pass@k summary on disk, for the leaderboard."""
    base = (root or june_home()) / "evals"
    summaries = []
    for path in sorted(base.glob("*/*/pass_at_k.json")):
        summaries.append(json.loads(path.read_text()))
    return summaries
