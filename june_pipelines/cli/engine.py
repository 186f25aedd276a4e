"""`june engine ...`: weights, GPU preflight, TensorRT-LLM checkpoint + engine builds, trtllm-serve.

The commands run the same steps as the model_weights, trt_checkpoint and trt_engine assets
(`june_pipelines.serving.steps`). Every option is checked before any work starts: bad input exits
with 2 and a one-line error naming the option; a step that cannot run exits with 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from june_pipelines.registry import ModelSpec

if TYPE_CHECKING:
    from june_pipelines.serving.resources import TensorRTLLMResource
from june_pipelines.serving.cli_support import PORT, POSITIVE, cli_errors, given, registered_model

RUNNERS = click.Choice(["docker", "local"])
QUANTIZATIONS = click.Choice(["none", "fp8", "int4_awq", "int8_wo"])


def _err(line: str) -> None:
    click.echo(line, err=True)


@click.group("engine")
def engine_group() -> None:
    """TensorRT-LLM engines (the model_weights, trt_checkpoint and trt_engine steps)."""


@engine_group.command("weights")
@click.argument("model", callback=registered_model)
@click.option(
    "--import-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), help="Import from a local directory"
)
@click.option("--offline", is_flag=True, help="Use only the cache (as HF_HUB_OFFLINE=1)")
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None)
def weights_cmd(model: ModelSpec, import_dir: Path | None, offline: bool, cache_dir: Path | None) -> None:
    """Fetch (pinned revision) or import MODEL's weights and verify the sha256 manifest."""
    import os

    from june_pipelines.serving.weights import ensure_weights

    with cli_errors():
        weights = ensure_weights(
            model, cache_dir, offline=offline or None, import_dir=import_dir, token=os.environ.get("HF_TOKEN"), log=_err
        )
    for key, value in weights.metadata().items():
        click.echo(f"{key}: {value}")


@engine_group.command("preflight")
@click.option("--runner", type=RUNNERS, default="docker", show_default=True)
def preflight_cmd(runner: str) -> None:
    """Check for an NVIDIA GPU (and Docker's GPU runtime, or a local tensorrt_llm)."""
    report = _resource(runner, None, None, None).runner().preflight()
    if report.ok:
        click.echo(f"ok: {', '.join(report.gpus)} (driver {report.driver})")
    else:
        _err(report.message())
        raise SystemExit(1)


def _resource(
    runner: str, image: str | None, examples_dir: Path | None, work_dir: Path | None
) -> TensorRTLLMResource:
    from june_pipelines.serving.resources import DockerTensorRTLLMResource, LocalTensorRTLLMResource
    from june_pipelines.serving.versions import DEFAULT_TRITON_IMAGE

    examples = str(examples_dir) if examples_dir else None
    work = str(work_dir) if work_dir else None
    if runner == "local":
        if image:
            raise click.BadParameter("--image applies to the docker runner only", param_hint="'--image'")
        return LocalTensorRTLLMResource(examples_dir=examples, work_dir=work)
    return DockerTensorRTLLMResource(examples_dir=examples, work_dir=work, image=image or DEFAULT_TRITON_IMAGE)


@engine_group.command("build")
@click.argument("model", callback=registered_model)
@click.option("--runner", type=RUNNERS, default="docker", show_default=True)
@click.option("--quantization", type=QUANTIZATIONS, default=None, help="Default: the registry's")
@click.option("--calib-dataset", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="Calibration text for fp8 / int4_awq: a local dataset dir with a train split and a text column")
@click.option("--calib-size", type=POSITIVE, default=None, help="Rows of calibration text (int4_awq reads at most 32)")
@click.option("--tp-size", type=POSITIVE, default=None)
@click.option("--max-batch-size", type=POSITIVE, default=None)
@click.option("--max-input-len", type=POSITIVE, default=None)
@click.option("--max-seq-len", type=POSITIVE, default=None)
@click.option("--max-num-tokens", type=POSITIVE, default=None)
@click.option("--image", default=None, help="Default: the pinned TensorRT-LLM 1.2 Triton image (docker runner)")
@click.option("--examples-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
              help="examples/ of the matching TensorRT-LLM tag (docker: default the image's own)")
@click.option("--work-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Checkpoints and engines (default JUNE_HOME/engines)")
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None, help="Model store")
@click.option("--dry-run", is_flag=True, help="Check the inputs, print the exact commands and stop")
def build_cmd(
    model: ModelSpec,
    runner: str,
    quantization: str | None,
    calib_dataset: Path | None,
    calib_size: int | None,
    tp_size: int | None,
    max_batch_size: int | None,
    max_input_len: int | None,
    max_seq_len: int | None,
    max_num_tokens: int | None,
    image: str | None,
    examples_dir: Path | None,
    work_dir: Path | None,
    cache_dir: Path | None,
    dry_run: bool,
) -> None:
    """Convert/quantize MODEL's verified weights and run trtllm-build (GPU only)."""
    from june_pipelines.serving import steps
    from june_pipelines.serving.resources import ModelStoreResource

    trt = _resource(runner, image, examples_dir, work_dir)
    store = ModelStoreResource(cache_dir=str(cache_dir) if cache_dir else None)
    layout = trt.layout(model, store)
    ckpt_overrides = given(
        quantization=quantization,
        calib_size=calib_size,
        tp_size=tp_size,
        calib_dataset=str(calib_dataset) if calib_dataset else None,
    )
    build_overrides = given(
        max_batch_size=max_batch_size, max_input_len=max_input_len, max_seq_len=max_seq_len,
        max_num_tokens=max_num_tokens,
    )
    with cli_errors():
        ckpt = steps.checkpoint_settings(model, ckpt_overrides)
        build = steps.build_settings(model, build_overrides, ckpt, layout.checkpoint_dir)
        plan = steps.plan_checkpoint(layout, trt.runner(), ckpt)
        build_step = steps.plan_build(layout, trt.runner(), build)
        if dry_run:
            click.echo(trt.runner().describe(plan.step))
            click.echo(trt.runner().describe(build_step))
            return
        checkpoint = steps.run_checkpoint(layout, trt.runner(), ckpt, _err)
        _err(f"checkpoint: {checkpoint.metadata()['convert_time_s']} s, {checkpoint.metadata()['size_mib']} MiB")
        result = steps.run_build(layout, trt.runner(), build, _err)
    for key, value in result.metadata().items():
        click.echo(f"{key}: {value}")


@engine_group.command("serve")
@click.argument("model", callback=registered_model)
@click.option("--port", type=PORT, default=8000, show_default=True)
@click.option("--tp-size", type=POSITIVE, default=1, show_default=True)
@click.option("--max-batch-size", type=POSITIVE, default=8, show_default=True)
@click.option("--max-seq-len", type=POSITIVE, default=8192, show_default=True)
@click.option("--image", default=None, help="Default: the pinned TensorRT-LLM 1.2 Triton image (ships trtllm-serve)")
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None, help="Model store")
def serve_cmd(model: ModelSpec, port: int, tp_size: int, max_batch_size: int, max_seq_len: int, image: str | None,
              cache_dir: Path | None) -> None:
    """Print the `trtllm-serve` (PyTorch backend, OpenAI-compatible) container command for MODEL.

    The trtllm_serve_deployment asset starts and watches the same container.
    """
    import shlex

    from june_pipelines.serving import steps
    from june_pipelines.serving import trtllm as T
    from june_pipelines.serving.resources import DockerTensorRTLLMResource, ModelStoreResource
    from june_pipelines.serving.versions import DEFAULT_SERVE_IMAGE

    trt = DockerTensorRTLLMResource(serve_image=image or DEFAULT_SERVE_IMAGE)
    layout = trt.layout(model, ModelStoreResource(cache_dir=str(cache_dir) if cache_dir else None))
    with cli_errors():
        settings = steps.make_settings(
            T.ServeSettings,
            {"port": port, "tp_size": tp_size, "max_batch_size": max_batch_size, "max_seq_len": max_seq_len},
            "trtllm-serve settings",
        )
    spec = T.serve_container(settings, trt.serve_image, layout.weights_dir)
    click.echo(shlex.join(spec.docker_cli()))
    _err(f"then: JUNE_LLM_BACKEND=openai JUNE_OPENAI_BASE_URL=http://HOST:{port}/v1")
