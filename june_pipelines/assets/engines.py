"""Serving chain: model_weights -> trt_checkpoint -> trt_engine -> triton_model_repository -> triton_deployment.

Thin recipes over `june_pipelines.serving.steps` (the same steps `june engine` and `june triton`
run). GPU-heavy steps run in the `gpu` pool (limit in dagster.yaml), after input checks and a GPU
preflight that fail at once, saying what is missing. Per-model defaults come from the registry's
`engine:` / `triton:` entries; run config overrides them. The serving resources are bound here.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import dagster as dg
from pydantic import Field

from june_pipelines.assets.benchmarks import model_partitions
from june_pipelines.assets.models import GROUP, model_weights
from june_pipelines.registry import get_model
from june_pipelines.retries import BUILD, SERVING, fail_fast_on_bad_input
from june_pipelines.serving.errors import ServingError
from june_pipelines.serving.resources import (
    ModelStoreResource,
    TensorRTLLMResource,
    TritonResource,
    serving_resources_from_env,
)

GPU_POOL = "gpu"
SERVE_TAGS = {"june/kind": "serving"}
R = TypeVar("R")


@contextmanager
def _as_failure() -> Iterator[None]:
    """Serving errors become one-line Dagster failures (bad input is not retried: `allow_retries=False`)."""
    from june_pipelines.serving.errors import ServingInputError

    try:
        yield
    except ServingError as exc:
        raise dg.Failure(str(exc), allow_retries=not isinstance(exc, ServingInputError)) from exc


def _timed(fn: Callable[[], R]) -> tuple[R, float]:
    started = time.perf_counter()
    return fn(), time.perf_counter() - started


class CheckpointConfig(dg.Config):
    model_family: str | None = Field(default=None, description="examples/models/core/<family> (llama, qwen, ...)")
    quantization: str | None = Field(default=None, description="none | fp8 | int4_awq | int8_wo")
    dtype: str | None = None
    tp_size: int | None = None
    kv_cache_dtype: str | None = Field(default=None, description="auto | fp8 | int8")
    calib_size: int | None = None
    calib_dataset: str | None = Field(
        default=None,
        description="Local calibration dataset directory (train split, text column); needed for fp8 / int4_awq",
    )


@dg.asset(
    partitions_def=model_partitions,
    group_name=GROUP,
    deps=[model_weights],
    pool=GPU_POOL,
    kinds={"tensorrt"},
    tags=SERVE_TAGS,
    retry_policy=BUILD,
)
@fail_fast_on_bad_input
def trt_checkpoint(
    context: dg.AssetExecutionContext,
    config: CheckpointConfig,
    model_store: ModelStoreResource,
    trtllm: TensorRTLLMResource,
) -> dg.MaterializeResult:
    """HF weights -> TensorRT-LLM checkpoint (conversion, or ModelOpt quantization on calibration text)."""
    from june_pipelines.serving import steps

    spec = get_model(context.partition_key)
    layout = trtllm.layout(spec, model_store)
    with _as_failure():
        settings = steps.checkpoint_settings(spec, config.model_dump(exclude_none=True))
        result = steps.run_checkpoint(layout, trtllm.runner(), settings, context.log.info)
    from june_pipelines.serving.trtllm import settings_dict

    return dg.MaterializeResult(
        metadata={
            **result.metadata(),
            "path": dg.MetadataValue.path(str(layout.checkpoint_dir)),
            "log": dg.MetadataValue.path(str(layout.checkpoint_log)),
            "settings": dg.MetadataValue.json(settings_dict(result.plan.settings)),
        }
    )


class BuildConfig(dg.Config):
    max_batch_size: int | None = None
    max_input_len: int | None = None
    max_seq_len: int | None = None
    max_num_tokens: int | None = None
    gemm_plugin: str | None = None
    kv_cache_type: str | None = Field(default=None, description="paged | continuous | disabled")
    use_paged_context_fmha: bool | None = None
    use_fp8_context_fmha: bool | None = Field(default=None, description="Default: on for fp8 checkpoints")
    multiple_profiles: bool | None = None


@dg.asset(
    partitions_def=model_partitions,
    group_name=GROUP,
    deps=[trt_checkpoint],
    pool=GPU_POOL,
    kinds={"tensorrt"},
    tags=SERVE_TAGS,
    retry_policy=BUILD,
)
@fail_fast_on_bad_input
def trt_engine(
    context: dg.AssetExecutionContext, config: BuildConfig, model_store: ModelStoreResource, trtllm: TensorRTLLMResource
) -> dg.MaterializeResult:
    """`trtllm-build` of the checkpoint into a TensorRT engine."""
    from june_pipelines.serving import steps
    from june_pipelines.serving.trtllm import settings_dict

    spec = get_model(context.partition_key)
    layout = trtllm.layout(spec, model_store)
    with _as_failure():
        settings = steps.build_settings(
            spec, config.model_dump(exclude_none=True), steps.checkpoint_settings(spec), layout.checkpoint_dir
        )
        result = steps.run_build(layout, trtllm.runner(), settings, context.log.info)
    return dg.MaterializeResult(
        metadata={
            **result.metadata(),
            "engine_dir": dg.MetadataValue.path(str(layout.engine_dir)),
            "log": dg.MetadataValue.path(str(layout.build_log)),
            "settings": dg.MetadataValue.json(settings_dict(settings)),
        }
    )


class RepositoryConfig(dg.Config):
    layout: str | None = Field(default=None, description="inflight (engine) | llmapi (PyTorch backend)")
    max_batch_size: int | None = None
    decoupled: bool | None = Field(default=None, description="Streaming (decoupled) models")
    kv_cache_free_gpu_mem_fraction: float | None = None
    enable_kv_cache_reuse: bool | None = None
    bls: bool | None = None
    triton_backend: str | None = Field(default=None, description="tensorrtllm | python")
    upstream_models_dir: str | None = Field(
        default=None,
        description="Host copy of TensorRT-LLM's triton_backend/all_models (llmapi, python backend); default: read "
        "/app/all_models from the trtllm resource's image",
    )


@dg.asset(
    partitions_def=model_partitions,
    group_name=GROUP,
    deps=[trt_engine, model_weights],
    kinds={"triton"},
    tags=SERVE_TAGS,
)
def triton_model_repository(
    context: dg.AssetExecutionContext,
    config: RepositoryConfig,
    model_store: ModelStoreResource,
    trtllm: TensorRTLLMResource,
    triton: TritonResource,
) -> dg.MaterializeResult:
    """This model's entries in the Triton repository, every config.pbtxt checked with Triton's schema."""
    from june_pipelines.serving import steps

    spec = get_model(context.partition_key)
    layout = trtllm.layout(spec, model_store, triton)
    overrides = config.model_dump(exclude_none=True, exclude={"upstream_models_dir"})
    with _as_failure():
        repo, seconds = _timed(
            lambda: steps.generate_repository(layout, overrides, config.upstream_models_dir, trtllm.serving_image)
        )
    context.log.info(f"wrote {len(repo.configs)} configs for {spec.id} into {repo.root}")
    return dg.MaterializeResult(
        metadata={
            **repo.metadata(),
            "generate_time_s": round(seconds, 2),
            "path": dg.MetadataValue.path(str(repo.root)),
        }
    )


@dg.asset_check(asset=triton_model_repository, blocking=True)
def repository_configs_parse(triton: TritonResource) -> dg.AssetCheckResult:
    """Every config.pbtxt in the repository parses as a Triton ModelConfig, with no `${...}` left."""
    from june_pipelines.serving.triton_repo import validate_repository

    problems = validate_repository(triton.repository())
    count = len(list(triton.repository().glob("*/config.pbtxt")))
    return dg.AssetCheckResult(
        passed=not problems and count > 0, metadata={"configs": count, "problems": dg.MetadataValue.json(problems)}
    )


class DeploymentConfig(dg.Config):
    unload_others: bool = Field(default=True, description="Unload every other ready model (switch models)")
    unload_first: bool = Field(default=True, description="Free GPU memory before loading the new model")


@dg.asset(
    partitions_def=model_partitions,
    group_name=GROUP,
    deps=[triton_model_repository],
    pool=GPU_POOL,
    kinds={"triton"},
    tags=SERVE_TAGS,
    retry_policy=SERVING,
)
@fail_fast_on_bad_input
def triton_deployment(
    context: dg.AssetExecutionContext,
    config: DeploymentConfig,
    model_store: ModelStoreResource,
    trtllm: TensorRTLLMResource,
    triton: TritonResource,
) -> dg.MaterializeResult:
    """Load this model on the Triton server (explicit model control), unloading others; report the index."""
    from june_pipelines.serving.triton_deploy import DeployError

    spec = get_model(context.partition_key)
    layout = trtllm.layout(spec, model_store, triton)
    api = triton.api()
    if not api.live():
        raise dg.Failure(f"Triton at {triton.http_url} is not reachable (start it with --model-control-mode=explicit)")
    entry = layout.entry_model(layout.deployed_layout())
    others = [m.name for m in api.index() if m.state == "READY" and not m.name.startswith(layout.prefix)]
    unload = others if config.unload_others else []
    try:
        state, seconds = _timed(lambda: api.deploy(entry, unload=unload, unload_first=config.unload_first))
    except DeployError as exc:
        raise dg.Failure(
            str(exc), metadata={"index": dg.MetadataValue.json([m.as_dict() for m in api.index()])}
        ) from exc
    meta = state.metadata()
    return dg.MaterializeResult(
        metadata={
            "entry_model": entry,
            "server": triton.http_url,
            "server_version": meta["server_version"],
            "ready": state.entry_ready,
            "load_time_s": round(seconds, 2),
            "ready_models": len(meta["ready_models"]),
            "model_states": dg.MetadataValue.json(meta["model_states"]),
            "reasons": dg.MetadataValue.json(meta["reasons"]),
            "unloaded": dg.MetadataValue.json(unload),
        }
    )


class TrtllmServeConfig(dg.Config):
    port: int = 8000
    tp_size: int = 1
    max_batch_size: int = 8
    max_seq_len: int = 8192
    startup_timeout_s: float = Field(default=900.0, description="Model load and warm-up can take minutes")


@dg.asset(
    partitions_def=model_partitions,
    group_name=GROUP,
    deps=[model_weights],
    pool=GPU_POOL,
    kinds={"tensorrt"},
    tags=SERVE_TAGS,
    retry_policy=SERVING,
)
@fail_fast_on_bad_input
def trtllm_serve_deployment(
    context: dg.AssetExecutionContext,
    config: TrtllmServeConfig,
    model_store: ModelStoreResource,
    trtllm: TensorRTLLMResource,
) -> dg.MaterializeResult:
    """The modern path (no engine): `trtllm-serve --backend pytorch`, OpenAI-compatible (tp_size > 1 supported).

    Use it with `JUNE_LLM_BACKEND=openai JUNE_OPENAI_BASE_URL=<base_url>` (OpenAICompatLLMResource).
    """
    from june_pipelines.serving import steps
    from june_pipelines.serving.trtllm import ServeSettings, settings_dict

    spec = get_model(context.partition_key)
    layout = trtllm.layout(spec, model_store)
    with _as_failure():
        settings = steps.make_settings(
            ServeSettings, config.model_dump(exclude={"startup_timeout_s"}), f"trtllm-serve settings of {spec.id!r}"
        )
        handle, report = steps.start_trtllm_serve(
            layout, trtllm.runner(), settings, config.startup_timeout_s, context.log.info
        )
    return dg.MaterializeResult(
        metadata={
            "base_url": handle.base_url,
            "server": handle.owner,
            "image": trtllm.serving_image,
            "startup_time_s": round(handle.startup_s, 1),
            "settings": dg.MetadataValue.json(settings_dict(settings)),
            "gpus": ", ".join(report.gpus),
            "log": dg.MetadataValue.path(str(layout.serve_log)),
            "use_with": f"JUNE_LLM_BACKEND=openai JUNE_OPENAI_BASE_URL={handle.base_url}",
        }
    )


serve_model_job = dg.define_asset_job(
    "serve_model",
    selection=dg.AssetSelection.assets(
        model_weights, trt_checkpoint, trt_engine, triton_model_repository, triton_deployment
    ),
    tags=SERVE_TAGS,
    description="Weights -> TensorRT-LLM checkpoint -> engine -> Triton repository -> deployment, for one model.",
)
serve_model_llmapi_job = dg.define_asset_job(
    "serve_model_llmapi",
    selection=dg.AssetSelection.assets(model_weights, triton_model_repository, triton_deployment),
    tags=SERVE_TAGS,
    description="PyTorch-backend path (no engine): weights -> llmapi repository (layout=llmapi) -> deployment.",
)
serve_model_trtllm_serve_job = dg.define_asset_job(
    "serve_model_trtllm_serve",
    selection=dg.AssetSelection.assets(model_weights, trtllm_serve_deployment),
    tags=SERVE_TAGS,
    description="Modern path: weights -> trtllm-serve (PyTorch backend, OpenAI-compatible), no engine, no Triton.",
)

defs = dg.Definitions(
    assets=[trt_checkpoint, trt_engine, triton_model_repository, triton_deployment, trtllm_serve_deployment],
    asset_checks=[repository_configs_parse],
    jobs=[serve_model_job, serve_model_llmapi_job, serve_model_trtllm_serve_job],
    resources=serving_resources_from_env(),
)
