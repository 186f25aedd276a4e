"""Serving chain: model_weights -> trt_checkpoint -> trt_engine -> triton_model_repository -> triton_deployment.

GPU-heavy steps run in the `gpu` pool (limit in dagster.yaml), after a GPU preflight that fails at
once, saying what is missing, when there is no NVIDIA GPU or no GPU runtime in Docker. Per-model
defaults come from the registry's `engine:` / `triton:` entries; run config overrides them.
"""


import time
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from june_pipelines.assets.benchmarks import model_partitions
from june_pipelines.assets.models import GROUP, model_weights
from june_pipelines.registry import ModelSpec, get_model
from june_pipelines.retries import BUILD, SERVING, fail_fast_on_bad_input
from june_pipelines.serving.resources import ModelStoreResource, TensorRTLLMResource, TritonResource

GPU_POOL = "gpu"
SERVE_TAGS = {"june/kind": "serving"}


def _settings(cls: type, spec: ModelSpec, section: str, config: dg.Config) -> Any:
    """Registry defaults (`extra[engine|triton][section]`) overlaid with the run config's set fields."""
    top = "triton" if section == "repository" else "engine"
    base = dict((spec.extra.get(top) or {}).get(section) or {})
    if section == "repository" and spec.serving_profile == "triton-llmapi":
        base.setdefault("layout", "llmapi")
    base.update(config.model_dump(exclude_none=True))
    return cls(**base)


def _weights_dir(model_store: ModelStoreResource, spec: ModelSpec) -> Path:
    from june_pipelines.serving.weights import MANIFEST_NAME, verify

    root = model_store.path() / spec.id
    candidates = [root / spec.revision] if spec.revision else []
    candidates += sorted(p for p in root.glob("*") if p.is_dir() and not p.name.startswith("."))
    for path in candidates:
        if (path / MANIFEST_NAME).is_file():
            verify(path, full=False)
            return path
    raise dg.Failure(f"no verified weights for {spec.id!r} under {root}: materialize model_weights first")


def _run_logged(
    context: dg.AssetExecutionContext, trt: TensorRTLLMResource, log_path: Path, spec_fn, local_cmd: list[str]
) -> float:
    """Run a TensorRT-LLM step (in its container, or the local install) after checking its version.

    Output lines stream into the run live and the full log stays in `log_path` beside the artifact.
    Returns the wall time in seconds.
    """
    from june_pipelines.serving.trtllm import check_version, run_container, run_local, version_command

    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log_path.open("w") as fh:

        def log(line: str) -> None:
            fh.write(line + "\n")
            fh.flush()
            context.log.info(line)

        if trt.runner == "docker":
            from dataclasses import replace

            version_spec = replace(spec_fn(), command=tuple(version_command()), mounts=())
            check_version(run_container(version_spec, log).strip().splitlines()[-1])
            run_container(spec_fn(), log)
        else:
            import tensorrt_llm  # noqa: F401  (preflight checked it is installed)

            check_version(tensorrt_llm.__version__)
            run_local(local_cmd, log)
    return time.perf_counter() - started


class CheckpointConfig(dg.Config):
    model_family: str | None = Field(default=None, description="examples/models/core/<family> (llama, qwen, ...)")
    quantization: str | None = Field(default=None, description="none | fp8 | int4_awq | int8_wo")
    dtype: str | None = None
    tp_size: int | None = None
    kv_cache_dtype: str | None = Field(default=None, description="auto | fp8 | int8")
    calib_size: int | None = None
    calib_dataset: str | None = Field(default=None, description="Local calibration dataset directory")


@dg.asset(partitions_def=model_partitions, group_name=GROUP, deps=[model_weights], pool=GPU_POOL, kinds={"tensorrt"},
          tags=SERVE_TAGS, retry_policy=BUILD)
@fail_fast_on_bad_input
def trt_checkpoint(
    context: dg.AssetExecutionContext, config: CheckpointConfig, model_store: ModelStoreResource, trtllm: TensorRTLLMResource
) -> dg.MaterializeResult:
    """HF weights -> TensorRT-LLM checkpoint (conversion, or ModelOpt quantization)."""
    from june_pipelines.serving import trtllm as T

    report = T.require_gpu(trtllm.runner)  # type: ignore[arg-type]
    spec = get_model(context.partition_key)
    settings = _settings(T.CheckpointSettings, spec, "checkpoint", config)
    weights = _weights_dir(model_store, spec)
    out = trtllm.checkpoint_dir(spec.id)
    out.mkdir(parents=True, exist_ok=True)
    examples = Path(trtllm.examples_dir or "")
    if not (examples / "quantization").is_dir():
        raise dg.Failure(f"examples_dir {examples} is not a TensorRT-LLM examples/ folder (see docs/GPU_RUNBOOK.md)")
    log_path = out.parent / "checkpoint.log"
    seconds = _run_logged(
        context,
        trtllm,
        log_path,
        lambda: T.checkpoint_container(settings, trtllm.image, weights, out, examples, trtllm.gpus),
        T.checkpoint_command(settings, str(weights), str(out), str(examples), settings.calib_dataset or ""),
    )
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(out)),
            "convert_time_s": round(seconds, 1),
            "log": dg.MetadataValue.path(str(log_path)),
            "size_mib": round(size / 2**20, 1),
            "settings": dg.MetadataValue.json(T.settings_dict(settings)),
            "gpus": ", ".join(report.gpus),
            "driver": report.driver or "",
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
    multiple_profiles: bool | None = None


@dg.asset(partitions_def=model_partitions, group_name=GROUP, deps=[trt_checkpoint], pool=GPU_POOL, kinds={"tensorrt"},
          tags=SERVE_TAGS, retry_policy=BUILD)
@fail_fast_on_bad_input
def trt_engine(context: dg.AssetExecutionContext, config: BuildConfig, trtllm: TensorRTLLMResource) -> dg.MaterializeResult:
    """`trtllm-build` of the checkpoint into a TensorRT engine."""
    from june_pipelines.serving import trtllm as T

    report = T.require_gpu(trtllm.runner)  # type: ignore[arg-type]
    spec = get_model(context.partition_key)
    settings = _settings(T.BuildSettings, spec, "build", config)
    ckpt, out = trtllm.checkpoint_dir(spec.id), trtllm.engine_dir(spec.id)
    if not (ckpt / "config.json").is_file():
        raise dg.Failure(f"no TensorRT-LLM checkpoint in {ckpt}: materialize trt_checkpoint first")
    out.mkdir(parents=True, exist_ok=True)
    log_path = out.parent / "build.log"
    seconds = _run_logged(
        context,
        trtllm,
        log_path,
        lambda: T.build_container(settings, trtllm.image, ckpt, out, trtllm.gpus),
        T.build_command(settings, str(ckpt), str(out)),
    )
    info = T.inspect_engine(out)
    return dg.MaterializeResult(
        metadata={
            **info.metadata(),
            "engine_dir": dg.MetadataValue.path(str(out)),
            "build_time_s": round(seconds, 1),
            "log": dg.MetadataValue.path(str(log_path)),
            "settings": dg.MetadataValue.json(T.settings_dict(settings)),
            "gpus": ", ".join(report.gpus),
            "driver": report.driver or "",
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


@dg.asset(partitions_def=model_partitions, group_name=GROUP, deps=[trt_engine, model_weights], kinds={"triton"}, tags=SERVE_TAGS)
def triton_model_repository(
    context: dg.AssetExecutionContext, config: RepositoryConfig, model_store: ModelStoreResource, triton: TritonResource
) -> dg.MaterializeResult:
    """This model's entries in the Triton repository, every config.pbtxt checked with Triton's schema."""
    from dataclasses import replace

    from june_pipelines.serving.triton_repo import TritonRepoSettings, generate

    spec = get_model(context.partition_key)
    settings = _settings(TritonRepoSettings, spec, "repository", config)
    settings = replace(
        settings,
        name_prefix=f"{spec.name_for_server}-",
        engine_dir=f"{triton.engines_mount}/{spec.id}/engine",
        hf_model=f"/weights/{spec.id}",
    )
    weights = _weights_dir(model_store, spec)
    repo = generate(triton.repository(), settings, tokenizer_source=weights if settings.layout == "inflight" else None)
    context.log.info(f"wrote {len(repo.configs)} configs for {spec.id} into {repo.root}")
    return dg.MaterializeResult(metadata={**repo.metadata(), "path": dg.MetadataValue.path(str(repo.root))})


@dg.asset_check(asset=triton_model_repository, blocking=True)
def repository_configs_parse(triton: TritonResource) -> dg.AssetCheckResult:
    """Every config.pbtxt in the repository parses as a Triton ModelConfig, with no `${...}` left."""
    from june_pipelines.serving.triton_repo import validate_repository

    problems = validate_repository(triton.repository())
    count = len(list(triton.repository().glob("*/config.pbtxt")))
    return dg.AssetCheckResult(passed=not problems and count > 0, metadata={"configs": count, "problems": dg.MetadataValue.json(problems)})


class DeploymentConfig(dg.Config):
    unload_others: bool = Field(default=True, description="Unload every other ready model (switch models)")
    unload_first: bool = Field(default=True, description="Free GPU memory before loading the new model")


@dg.asset(partitions_def=model_partitions, group_name=GROUP, deps=[triton_model_repository], pool=GPU_POOL,
          kinds={"triton"}, tags=SERVE_TAGS, retry_policy=SERVING)
@fail_fast_on_bad_input
def triton_deployment(context: dg.AssetExecutionContext, config: DeploymentConfig, triton: TritonResource) -> dg.MaterializeResult:
    """Load this model on the Triton server (explicit model control), unloading others; report the index."""
    from june_pipelines.serving.triton_deploy import DeployError

    spec = get_model(context.partition_key)
    api = triton.api()
    if not api.live():
        raise dg.Failure(f"Triton at {triton.http_url} is not reachable (start it with --model-control-mode=explicit)")
    entry = f"{spec.name_for_server}-ensemble"
    if not (triton.repository() / entry).is_dir():
        entry = f"{spec.name_for_server}-tensorrt_llm"  # llmapi layout
    others = [m.name for m in api.index() if m.state == "READY" and not m.name.startswith(f"{spec.name_for_server}-")]
    try:
        state = api.deploy(entry, unload=others if config.unload_others else [], unload_first=config.unload_first)
    except DeployError as exc:
        raise dg.Failure(str(exc), metadata={"index": dg.MetadataValue.json([m.as_dict() for m in api.index()])}) from exc
    meta = state.metadata()
    return dg.MaterializeResult(
        metadata={
            "entry_model": entry,
            "server": triton.http_url,
            "server_version": meta["server_version"],
            "ready": state.entry_ready,
            "model_states": dg.MetadataValue.json(meta["model_states"]),
            "reasons": dg.MetadataValue.json(meta["reasons"]),
            "unloaded": dg.MetadataValue.json(others if config.unload_others else []),
        }
    )


class TrtllmServeConfig(dg.Config):
    port: int = 8000
    tp_size: int = 1
    max_batch_size: int = 8
    max_seq_len: int = 8192
    startup_timeout_s: float = Field(default=900.0, description="Model load and warm-up can take minutes")


@dg.asset(partitions_def=model_partitions, group_name=GROUP, deps=[model_weights], pool=GPU_POOL, kinds={"tensorrt"},
          tags=SERVE_TAGS, retry_policy=SERVING)
@fail_fast_on_bad_input
def trtllm_serve_deployment(
    context: dg.AssetExecutionContext, config: TrtllmServeConfig, model_store: ModelStoreResource, trtllm: TensorRTLLMResource
) -> dg.MaterializeResult:
    """The modern path (no engine): `trtllm-serve --backend pytorch` in a container, OpenAI-compatible.

    Use it with `JUNE_LLM_BACKEND=openai JUNE_OPENAI_BASE_URL=<base_url>` (OpenAICompatLLMResource).
    """
    import httpx

    from june_pipelines.serving import trtllm as T

    if trtllm.runner != "docker":
        raise dg.Failure("trtllm_serve_deployment runs the server in a container: set the trtllm runner to docker")
    report = T.require_gpu("docker")
    spec = get_model(context.partition_key)
    weights = _weights_dir(model_store, spec)
    settings = T.ServeSettings(port=config.port, tp_size=config.tp_size, max_batch_size=config.max_batch_size, max_seq_len=config.max_seq_len)
    container_spec = T.serve_container(settings, trtllm.serve_image, weights, trtllm.gpus)
    import docker

    client = docker.from_env()
    name = f"june-trtllm-serve-{spec.id}"
    for old in client.containers.list(all=True, filters={"name": name}):
        old.remove(force=True)
    kwargs = {**container_spec.run_kwargs(), "name": name}
    context.log.info(f"$ {' '.join(container_spec.docker_cli())}")
    container = client.containers.run(**kwargs)
    base = f"http://127.0.0.1:{config.port}"
    deadline = time.monotonic() + config.startup_timeout_s
    while time.monotonic() < deadline:
        container.reload()
        if container.status not in ("created", "running"):
            raise dg.Failure(f"trtllm-serve exited: {container.logs(tail=30).decode(errors='replace')}")
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(5)
    else:
        raise dg.Failure(f"trtllm-serve not healthy after {config.startup_timeout_s} s")
    return dg.MaterializeResult(
        metadata={
            "base_url": f"{base}/v1",
            "container": name,
            "image": trtllm.serve_image,
            "settings": dg.MetadataValue.json(T.settings_dict(settings)),
            "gpus": ", ".join(report.gpus),
            "use_with": f"JUNE_LLM_BACKEND=openai JUNE_OPENAI_BASE_URL={base}/v1",
        }
    )


serve_model_job = dg.define_asset_job(
    "serve_model",
    selection=dg.AssetSelection.assets(model_weights, trt_checkpoint, trt_engine, triton_model_repository, triton_deployment),
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
)
