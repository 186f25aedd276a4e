"""Where June keeps its state: JUNE_HOME.

JUNE_HOME is the environment variable when set; otherwise `.june` in the June project this code runs
from (a checkout: the folder with pyproject.toml and workspace.yaml), so `june demo` and `june ui`
started from any directory see the same results and runs; outside a checkout, `.june` in the current
directory. Evaluation results live in Parquet under `JUNE_HOME/evals/<model>/<benchmark>/`; the Dagster
instance (runs, event log, schedules) lives in DAGSTER_HOME, default `JUNE_HOME/dagster`.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_TEMPLATE = PROJECT_ROOT / "dagster.yaml"


def is_project_checkout(root: Path = PROJECT_ROOT) -> bool:
    return (root / "pyproject.toml").is_file() and (root / "workspace.yaml").is_file()


def june_home() -> Path:
    if os.environ.get("JUNE_HOME"):
        return Path(os.environ["JUNE_HOME"]).resolve()
    base = PROJECT_ROOT if is_project_checkout() else Path.cwd()
    return (base / ".june").resolve()


def eval_dir(model: str, benchmark: str) -> Path:
    return june_home() / "evals" / model / benchmark


def leaderboard_path() -> Path:
    return june_home() / "evals" / "leaderboard.parquet"


def ensure_dagster_home() -> Path:
    """Set DAGSTER_HOME (if unset) to `JUNE_HOME/dagster` and write its dagster.yaml from the project's
    (storage and run launcher from the environment: june_pipelines/deploy/instance.py)."""
    from june_pipelines.deploy.instance import write_instance_config

    home = Path(os.environ.get("DAGSTER_HOME") or june_home() / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    write_instance_config(home, INSTANCE_TEMPLATE)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
