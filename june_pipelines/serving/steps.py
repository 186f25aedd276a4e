"""The serving steps, one implementation for the Dagster assets and for `june engine` / `june triton`.

Each step validates its inputs first (settings, calibration data, the image's TensorRT-LLM line),
then checks for a GPU, then the state it needs (weights, a checkpoint), and only then starts
anything heavy. Errors are typed (`june_pipelines.serving.errors`): `ServingInputError` for bad
input, the others for a step that could not run. Settings come from the registry's `engine:` and
`triton:` entries, overlaid with the caller's overrides.
"""

from __future__ import annotations

import json
import time
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar, cast

from june_pipelines.registry import ModelSpec
from june_pipelines.serving import trtllm as T
from june_pipelines.serving.calibration import CalibrationData, validate_calibration
from june_pipelines.serving.errors import BuildError, ServingInputError
from june_pipelines.serving.layout import ModelLayout
from june_pipelines.serving.runner import ServeHandle, Step, TrtllmRunner

if typing.TYPE_CHECKING:
    from june_pipelines.serving.triton_repo import TritonRepoSettings

Log = Callable[[str], None]
S = TypeVar("S")

_POSITIVE = {
    "tp_size", "pp_size", "calib_size", "awq_block_size", "max_batch_size", "max_input_len", "max_seq_len",
    "max_num_tokens", "max_beam_width", "workers", "port", "preprocessing_instances", "postprocessing_instances",
    "bls_instances", "tensor_parallel_size",
}


# ---- settings ------------------------------------------------------------------------------------

def registry_section(spec: ModelSpec, top: str, section: str) -> dict[str, Any]:
    return dict((spec.extra.get(top) or {}).get(section) or {})


def make_settings(cls: type[S], values: Mapping[str, Any], where: str) -> S:
    """`cls(**values)` with every key known, Literal values among their choices and sizes positive."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cast(Any, cls))}  # cls is one of the settings dataclasses
    unknown = sorted(set(values) - known)
    if unknown:
        raise ServingInputError(f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for key, value in values.items():
        hint = hints[key]
        choices = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else ()
        if choices and value not in choices:
            raise ServingInputError(f"{where}: {key} must be one of {', '.join(map(str, choices))}, got {value!r}")
        if key in _POSITIVE and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ServingInputError(f"{where}: {key} must be a whole number of at least 1, got {value!r}")
    return cls(**values)


def checkpoint_settings(spec: ModelSpec, overrides: Mapping[str, Any] | None = None) -> T.CheckpointSettings:
    values = {**registry_section(spec, "engine", "checkpoint"), **(overrides or {})}
    return make_settings(T.CheckpointSettings, values, f"engine checkpoint settings of {spec.id!r}")


def build_settings(
    spec: ModelSpec, overrides: Mapping[str, Any] | None = None, checkpoint: T.CheckpointSettings | None = None,
    checkpoint_dir: Path | None = None,
) -> T.BuildSettings:
    """Build settings; fp8 checkpoints get `use_fp8_context_fmha` unless it is set explicitly.

    Whether the checkpoint is fp8 comes from its `config.json` (quantization.quant_algo) when it
    exists, else from the checkpoint settings.
    """
    values = {**registry_section(spec, "engine", "build"), **(overrides or {})}
    if "use_fp8_context_fmha" not in values and _is_fp8(checkpoint, checkpoint_dir):
        values["use_fp8_context_fmha"] = True
    settings = make_settings(T.BuildSettings, values, f"engine build settings of {spec.id!r}")
    T.build_command(settings)  # relations between sizes (raises InvalidBuildSettings)
    return settings


def _is_fp8(checkpoint: T.CheckpointSettings | None, checkpoint_dir: Path | None) -> bool:
    config = checkpoint_dir / "config.json" if checkpoint_dir else None
    if config is not None and config.is_file():
        algo = (json.loads(config.read_text()).get("quantization") or {}).get("quant_algo") or ""
        return str(algo).upper() == "FP8"
    return checkpoint is not None and checkpoint.quantization == "fp8"


def repository_settings(
    layout: ModelLayout, overrides: Mapping[str, Any] | None = None, tensor_parallel_size: int | None = None
) -> TritonRepoSettings:
    """The registry's `triton.repository` settings, overrides on top, names and server paths from the layout."""
    from june_pipelines.serving.triton_repo import TritonRepoSettings

    spec = layout.spec
    values = registry_section(spec, "triton", "repository")
    if spec.serving_profile == "triton-llmapi":
        values.setdefault("layout", "llmapi")
    if tensor_parallel_size is None:
        tensor_parallel_size = _engine_world_size(layout) or checkpoint_settings(spec).tp_size
    values.setdefault("tensor_parallel_size", tensor_parallel_size)
    values.update(overrides or {})
    values.update(name_prefix=layout.prefix, engine_dir=layout.server_engine_dir, hf_model=layout.server_weights_dir)
    settings = make_settings(TritonRepoSettings, values, f"triton repository settings of {spec.id!r}")
    settings.check()
    return settings


def _engine_world_size(layout: ModelLayout) -> int | None:
    """Ranks of an engine already built on this host (rank0.engine, rank1.engine, ...), if any."""
    ranks = list(layout.engine_dir.glob("rank*.engine")) if layout.engine_dir.is_dir() else []
    return len(ranks) or None


# ---- running -------------------------------------------------------------------------------------

@contextmanager
def logged(log_path: Path, sink: Log) -> Iterator[Log]:
    """A log function writing every line to `log_path` (beside the artifact) and to `sink` (the run, a terminal)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as fh:

        def log(line: str) -> None:
            fh.write(line + "\n")
            fh.flush()
            sink(line)

        yield log


def run_logged(runner: TrtllmRunner, step: Step, log_path: Path, sink: Log) -> float:
    """Run a step (version check first) with its output in `log_path` and `sink`; returns the wall time."""
    started = time.perf_counter()
    with logged(log_path, sink) as log:
        runner.run(step, log)
    return time.perf_counter() - started


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass(frozen=True)
class CheckpointPlan:
    settings: T.CheckpointSettings
    calibration: CalibrationData | None
    step: Step


def plan_checkpoint(layout: ModelLayout, runner: TrtllmRunner, settings: T.CheckpointSettings) -> CheckpointPlan:
    """Validate everything a checkpoint needs that can be checked without a GPU; no directory is created."""
    runner.check_inputs()
    seen_as = T.CONTAINER_CALIB if runner.kind == "docker" else settings.calib_dataset
    calibration = validate_calibration(settings.calib_dataset, settings.quantization, settings.calib_size, seen_as)
    if calibration is not None:
        settings = replace(settings, calib_dataset=str(calibration.path))
    T.checkpoint_command(settings)  # settings that cannot work together (InvalidBuildSettings)
    step = runner.checkpoint_step(settings, layout.weights_dir, layout.checkpoint_dir)
    return CheckpointPlan(settings, calibration, step)


@dataclass(frozen=True)
class CheckpointResult:
    plan: CheckpointPlan
    preflight: T.Preflight
    seconds: float
    size_bytes: int

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "convert_time_s": round(self.seconds, 1),
            "size_bytes": self.size_bytes,
            "size_mib": round(self.size_bytes / 2**20, 1),
            "quantization": self.plan.settings.quantization,
            "gpus": ", ".join(self.preflight.gpus),
            "driver": self.preflight.driver or "",
        }
        if self.plan.calibration is not None:
            out.update(self.plan.calibration.metadata())
        return out


def run_checkpoint(
    layout: ModelLayout, runner: TrtllmRunner, settings: T.CheckpointSettings, sink: Log
) -> CheckpointResult:
    """HF weights -> TensorRT-LLM checkpoint (conversion, or ModelOpt quantization)."""
    plan = plan_checkpoint(layout, runner, settings)
    report = runner.require_gpu()
    layout.verified_weights()
    layout.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    seconds = run_logged(runner, plan.step, layout.checkpoint_log, sink)
    if not (layout.checkpoint_dir / "config.json").is_file():
        raise BuildError(f"the checkpoint step wrote no config.json into {layout.checkpoint_dir}")
    return CheckpointResult(plan, report, seconds, _dir_size(layout.checkpoint_dir))


def plan_build(layout: ModelLayout, runner: TrtllmRunner, settings: T.BuildSettings) -> Step:
    runner.check_inputs()
    return runner.build_step(settings, layout.checkpoint_dir, layout.engine_dir)


@dataclass(frozen=True)
class BuildResult:
    settings: T.BuildSettings
    preflight: T.Preflight
    seconds: float
    engine: T.EngineInfo

    def metadata(self) -> dict[str, Any]:
        return {
            **self.engine.metadata(),
            "build_time_s": round(self.seconds, 1),
            "use_fp8_context_fmha": self.settings.use_fp8_context_fmha,
            "gpus": ", ".join(self.preflight.gpus),
            "driver": self.preflight.driver or "",
        }


def run_build(layout: ModelLayout, runner: TrtllmRunner, settings: T.BuildSettings, sink: Log) -> BuildResult:
    """`trtllm-build` of the model's checkpoint into an engine."""
    step = plan_build(layout, runner, settings)
    report = runner.require_gpu()
    if not (layout.checkpoint_dir / "config.json").is_file():
        raise BuildError(f"no TensorRT-LLM checkpoint in {layout.checkpoint_dir}: materialize trt_checkpoint first")
    layout.engine_dir.mkdir(parents=True, exist_ok=True)
    seconds = run_logged(runner, step, layout.build_log, sink)
    return BuildResult(settings, report, seconds, T.inspect_engine(layout.engine_dir))


def start_trtllm_serve(
    layout: ModelLayout, runner: TrtllmRunner, settings: T.ServeSettings, timeout_s: float, sink: Log
) -> tuple[ServeHandle, T.Preflight]:
    """`trtllm-serve` (PyTorch backend, OpenAI-compatible) on the model's verified weights; waits for /health."""
    runner.check_inputs()
    report = runner.require_gpu()
    weights = layout.verified_weights()
    with logged(layout.serve_log, sink) as log:
        handle = runner.serve(
            settings, weights, layout.serve_container_name(), layout.serve_log.with_suffix(".out"), timeout_s, log
        )
    return handle, report


def upstream_models_source(settings: TritonRepoSettings, models_dir: str | Path | None, image: str | None):
    """Where upstream's model folders come from: a host copy of all_models/, else the serving image."""
    from june_pipelines.serving.triton_repo import needs_upstream_models
    from june_pipelines.serving.upstream_models import DirectoryModels, ImageModels

    if not needs_upstream_models(settings):
        return None
    if models_dir:
        return DirectoryModels(Path(models_dir).expanduser())
    if image and image != "local":
        return ImageModels(image)
    raise ServingInputError(
        "this layout copies upstream's tensorrt_llm model folder: give a copy of TensorRT-LLM's "
        "triton_backend/all_models (upstream_models_dir / --models-dir) or a serving image that has /app/all_models"
    )


def generate_repository(
    layout: ModelLayout,
    overrides: Mapping[str, Any] | None = None,
    upstream_models_dir: str | Path | None = None,
    image: str | None = None,
    tokenizer_source: Path | None = None,
):  # -> GeneratedRepo
    """This model's Triton entries, from the registry's `triton.repository` settings and the overrides."""
    from june_pipelines.serving.triton_repo import generate

    if layout.repository_root is None:
        raise ServingInputError("no Triton repository directory given")
    settings = repository_settings(layout, overrides)
    upstream = upstream_models_source(settings, upstream_models_dir, image)
    if settings.layout == "inflight" and tokenizer_source is None:
        tokenizer_source = layout.verified_weights()
    return generate(layout.repository_root, settings, tokenizer_source=tokenizer_source, upstream=upstream)
