"""Calibration data for ModelOpt quantization (fp8, int4_awq), checked before any GPU work.

What `quantize.py` does with `--calib_dataset` (TensorRT-LLM 1.2, `tensorrt_llm/quantization/
quantize_by_modelopt.py`, `get_calib_dataloader`): a name containing `cnn_dailymail` or `scienceqa`,
or the name `pileval`, selects a hub dataset (a download: it fails offline); any other existing
directory is read with `datasets.load_dataset(dir, split="train")` and its `text` column, first
`calib_size` rows. AWQ caps `calib_size` at 32. Without `--calib_dataset` it downloads
cnn_dailymail. So June makes the directory an explicit input and loads it here the same way.

Prepare one offline: a directory with `train.jsonl`, one `{"text": "..."}` per line (or Parquet /
CSV files named `train*`); see docs/GPU_RUNBOOK.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from june_pipelines.serving.errors import CalibrationError

CALIBRATED = ("fp8", "int4_awq")  # quantize.py formats that run calibration
AWQ_CALIB_CAP = 32
HUB_NAMES = ("cnn_dailymail", "scienceqa", "science_qa")  # substrings quantize.py maps to hub downloads
TEXT_COLUMN = "text"
SPLIT = "train"


@dataclass(frozen=True)
class CalibrationData:
    path: Path
    rows: int
    used: int  # rows quantize.py will read

    def metadata(self) -> dict[str, Any]:
        return {"calib_dataset": str(self.path), "calib_rows": self.rows, "calib_rows_used": self.used}


def rows_used(quantization: str, calib_size: int) -> int:
    return min(calib_size, AWQ_CALIB_CAP) if quantization == "int4_awq" else calib_size


def validate_calibration(
    path: str | Path | None, quantization: str, calib_size: int, seen_as: str | None = None
) -> CalibrationData | None:
    """Check the calibration directory quantize.py will read; None when this quantization needs none.

    `seen_as` is the path quantize.py receives (the container mount, or the host path itself).
    Raises CalibrationError with a one-line reason.
    """
    if quantization not in CALIBRATED:
        if path:
            raise CalibrationError(
                f"calib_dataset is set but quantization {quantization!r} does not calibrate "
                f"(only {', '.join(CALIBRATED)})"
            )
        return None
    if not path:
        raise CalibrationError(
            f"quantization {quantization!r} needs calibration text: set calib_dataset (--calib-dataset DIR), a local "
            f"dataset directory with a {SPLIT!r} split and a {TEXT_COLUMN!r} column (quantize.py would otherwise "
            "download cnn_dailymail; see docs/GPU_RUNBOOK.md)"
        )
    if calib_size < 1:
        raise CalibrationError(f"calib_size must be at least 1, got {calib_size}")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise CalibrationError(f"calib_dataset {root} is not a directory")
    name = (seen_as or str(root)).lower()
    if name == "pileval" or any(part in name for part in HUB_NAMES):
        raise CalibrationError(
            f"calib_dataset path {seen_as or root} contains {'/'.join(HUB_NAMES)}: quantize.py would download that hub "
            "dataset instead of reading the directory; rename it"
        )
    dataset = _load(root)
    columns = list(dataset.column_names)
    if TEXT_COLUMN not in columns:
        raise CalibrationError(
            f"calib_dataset {root}: the {SPLIT!r} split has no {TEXT_COLUMN!r} column (columns: {columns})"
        )
    needed = rows_used(quantization, calib_size)
    if len(dataset) < needed:
        raise CalibrationError(
            f"calib_dataset {root}: {len(dataset)} rows, but calib_size {calib_size} reads {needed}: "
            "add rows or lower calib_size"
        )
    for n, text in enumerate(dataset[:needed][TEXT_COLUMN]):
        if not isinstance(text, str) or not text.strip():
            raise CalibrationError(f"calib_dataset {root}: row {n} of {TEXT_COLUMN!r} is not a non-empty string")
    return CalibrationData(root, len(dataset), needed)


def _load(root: Path):  # -> datasets.Dataset (typed lazily: keeps imports light)
    """`load_dataset(dir, split="train")` as quantize.py calls it (a local directory needs no hub)."""
    import datasets

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # a check, not a download: keep the terminal to the verdict
    try:
        return datasets.load_dataset(str(root), split=SPLIT)
    except Exception as exc:  # datasets raises many kinds (no data files, unknown split, parse errors)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CalibrationError(
            f"calib_dataset {root} does not load as a dataset with a {SPLIT!r} split: {first}"
        ) from exc
    finally:
        if bars:
            datasets.enable_progress_bars()
