"""Where the test data beside the project lives (../shared/data, or JUNE_SHARED_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("JUNE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
MBPP_JSONL = SHARED_DATA / "mbpp" / "mbpp.jsonl"
