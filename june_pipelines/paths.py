"""Where June keeps its state: JUNE_HOME (default `.june` under the current directory).

Evaluation results live in Parquet under `JUNE_HOME/evals/<model>/<benchmark>/`; the Dagster
instance (runs, event log, schedules) lives in DAGSTER_HOME, default `JUNE_HOME/dagster`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def june_home() -> Path:
    return Path(os.environ.get("JUNE_HOME") or Path.cwd() / ".june").resolve()


def eval_dir(model: str, benchmark: str) -> Path:
    return june_home() / "evals" / model / benchmark


def leaderboard_path() -> Path:
    return june_home() / "evals" / "leaderboard.parquet"


def ensure_dagster_home() -> Path:
    """Set DAGSTER_HOME (if unset) to a project-local folder holding the project's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or june_home() / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = PROJECT_ROOT / "dagster.yaml"
    if not config.exists() and template.exists() and template.resolve() != config:
        shutil.copyfile(template, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
