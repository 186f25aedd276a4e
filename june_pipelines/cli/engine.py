"""`june engine ...`: weights, GPU preflight, TensorRT-LLM checkpoint + engine builds, trtllm-serve."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click


@click.group("engine")
def engine_group() -> None:
    """TensorRT-LLM engines (mirrors model_weights, trt_checkpoint and trt_engine)."""


@engine_group.command("weights")
@click.argument("model")
@click.option("--import-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), help="Import from a local directory")
@click.option("--offline", is_flag=True, help="Use only the cache (as HF_HUB_OFFLINE=1)")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None)
def weights_cmd(model: str, import_dir: Path | None, offline: bool, cache_dir: Path | None) -> None:
    """Fetch (pinned revision) or import MODEL's weights and verify the sha256 manifest."""
    import os

    from june_pipelines.registry import get_model
    from june_pipelines.serving.weights import WeightsError, ensure_weights

    try:
        weights = ensure_weights(
            get_model(model), cache_dir, offline=offline or None, import_dir=import_dir,
            token=os.environ.get("HF_TOKEN"), log=lambda m: click.echo(m, err=True),
        )
    except WeightsError as exc:
        raise click.ClickException(str(exc)) from exc
    for key, value in weights.metadata().items():
        click.echo(f"{key}: {value}")


@engine_group.command("preflight")
@click.option("--runner", type=click.Choice(["docker", "local"]), default="docker", show_default=True)
def preflight_cmd(runner: str) -> None:
    """Check for an NVIDIA GPU (and Docker's GPU runtime, or a local tensorrt_llm)."""
    from june_pipelines.serving.trtllm import preflight

    report = preflight(runner)  # type: ignore[arg-type]
    if report.ok:
        click.echo(f"ok: {', '.join(report.gpus)} (driver {report.driver})")
    else:
        click.echo(report.message(), err=True)
        sys.exit(1)


def _settings(model: str, quantization, max_batch_size, max_input_len, max_seq_len, max_num_tokens):
    from june_pipelines.registry import get_model
    from june_pipelines.serving.trtllm import BuildSettings, CheckpointSettings

    spec = get_model(model)
    engine = spec.extra.get("engine") or {}
    ckpt = dict(engine.get("checkpoint") or {})
    build = dict(engine.get("build") or {})
    if quantization:
        ckpt["quantization"] = quantization
    for key, value in (("max_batch_size", max_batch_size), ("max_input_len", max_input_len),
                       ("max_seq_len", max_seq_len), ("max_num_tokens", max_num_tokens)):
        if value is not None:
            build[key] = value
    return spec, CheckpointSettings(**ckpt), BuildSettings(**build)


@engine_group.command("build")
@click.argument("model")
@click.option("--runner", type=click.Choice(["docker", "local"]), default="docker", show_default=True)
@click.option("--quantization", type=click.Choice(["none", "fp8", "int4_awq", "int8_wo"]), default=None)
@click.option("--max-batch-size", type=int, default=None)
@click.option("--max-input-len", type=int, default=None)
@click.option("--max-seq-len", type=int, default=None)
@click.option("--max-num-tokens", type=int, default=None)
@click.option("--image", default=None, help="Default: the TensorRT-LLM 1.2 Triton image")
@click.option("--examples-dir", type=click.Path(path_type=Path), default=None, help="examples/ of the matching TensorRT-LLM tag")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None, help="Checkpoints and engines (default JUNE_HOME/engines)")
@click.option("--dry-run", is_flag=True, help="Print the exact commands and stop")
def build_cmd(model, runner, quantization, max_batch_size, max_input_len, max_seq_len, max_num_tokens, image, examples_dir, work_dir, dry_run) -> None:
    """Convert/quantize MODEL's verified weights and run trtllm-build (GPU only)."""
    from june_pipelines.assets.engines import _weights_dir
    from june_pipelines.serving import trtllm as T
    from june_pipelines.serving.resources import ModelStoreResource, TensorRTLLMResource

    spec, ckpt, build = _settings(model, quantization, max_batch_size, max_input_len, max_seq_len, max_num_tokens)
    trt = TensorRTLLMResource(runner=runner, image=image or T.DEFAULT_TRITON_IMAGE,
                              examples_dir=str(examples_dir) if examples_dir else None,
                              work_dir=str(work_dir) if work_dir else None)
    examples = Path(trt.examples_dir or "/path/to/TensorRT-LLM/examples")
    if dry_run:
        weights = Path(ModelStoreResource().path() / spec.id / (spec.revision or "local"))
        specs = [T.checkpoint_container(ckpt, trt.image, weights, trt.checkpoint_dir(spec.id), examples, trt.gpus),
                 T.build_container(build, trt.image, trt.checkpoint_dir(spec.id), trt.engine_dir(spec.id), trt.gpus)]
        for s in specs:
            click.echo(shlex.join(s.docker_cli()) if runner == "docker" else shlex.join(list(s.command)))
        return
    try:
        report = T.require_gpu(runner)  # type: ignore[arg-type]
    except T.GpuUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"GPU: {', '.join(report.gpus)}", err=True)
    weights = _weights_dir(ModelStoreResource(), spec)
    ckpt_dir, engine_dir = trt.checkpoint_dir(spec.id), trt.engine_dir(spec.id)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    engine_dir.mkdir(parents=True, exist_ok=True)
    log = lambda line: click.echo(line, err=True)  # noqa: E731
    if runner == "docker":
        T.run_container(T.checkpoint_container(ckpt, trt.image, weights, ckpt_dir, examples, trt.gpus), log)
        T.run_container(T.build_container(build, trt.image, ckpt_dir, engine_dir, trt.gpus), log)
    else:
        T.run_local(T.checkpoint_command(ckpt, str(weights), str(ckpt_dir), str(examples), ckpt.calib_dataset or ""), log)
        T.run_local(T.build_command(build, str(ckpt_dir), str(engine_dir)), log)
    for key, value in T.inspect_engine(engine_dir).metadata().items():
        click.echo(f"{key}: {value}")


@engine_group.command("serve")
@click.argument("model")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--tp-size", type=int, default=1, show_default=True)
@click.option("--image", default=None, help="Default: the TensorRT-LLM 1.2 release image")
def serve_cmd(model: str, port: int, tp_size: int, image: str | None) -> None:
    """Print the `trtllm-serve` (PyTorch backend, OpenAI-compatible) container command for MODEL."""
    from june_pipelines.registry import get_model
    from june_pipelines.serving import trtllm as T
    from june_pipelines.serving.resources import ModelStoreResource

    spec = get_model(model)
    weights = ModelStoreResource().path() / spec.id / (spec.revision or "local")
    s = T.serve_container(T.ServeSettings(port=port, tp_size=tp_size), image or T.DEFAULT_TRTLLM_IMAGE, weights)
    click.echo(shlex.join(s.docker_cli()))
    click.echo(f"then: JUNE_LLM_BACKEND=openai JUNE_OPENAI_BASE_URL=http://HOST:{port}/v1", err=True)
