"""A private model registry file for the serving tests."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_registry(path: Path, models: dict) -> Path:
    path.write_text(yaml.safe_dump({"models": models}))
    return path
