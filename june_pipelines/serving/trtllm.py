"""TensorRT-LLM 1.2.x: typed build settings, the exact commands, container specs, GPU preflight.

Engine flow (TensorRT backend): HF checkpoint -> TensorRT-LLM checkpoint (`convert_checkpoint.py`,
or ModelOpt `quantize.py` for fp8 / int4_awq / int8 weight-only) -> `trtllm-build` -> engine dir.
Modern flow (PyTorch backend, no engine): `trtllm-serve <hf dir> --backend pytorch`, an
OpenAI-compatible server.

Each step runs either in the version-matched NGC Triton container through the Docker engine with a
GPU device request, or with a local `tensorrt_llm` install. The example scripts are not part of the
pip package: `examples_dir` must hold the `examples/` folder of the TensorRT-LLM release tag that
matches the installed version (mounted at `/trtllm/examples` in the container).

There is no CPU fallback: `preflight` fails fast, naming what is missing, before anything heavy.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from june_pipelines.serving.errors import BuildError, GpuUnavailable, InvalidBuildSettings
from june_pipelines.serving.versions import DEFAULT_SERVE_IMAGE, DEFAULT_TRITON_IMAGE, IMAGE_EXAMPLES, check_version

Quantization = Literal["none", "fp8", "int4_awq", "int8_wo"]
Runner = Literal["docker", "local"]
Log = Callable[[str], None]

DEFAULT_TRTLLM_IMAGE = DEFAULT_SERVE_IMAGE
CONTAINER_EXAMPLES = "/trtllm/examples"  # where a host examples/ folder is mounted (default: the image's own)
CONTAINER_MODEL = "/work/model"
CONTAINER_CHECKPOINT = "/work/checkpoint"
CONTAINER_ENGINE = "/work/engine"
CONTAINER_CALIB = "/work/calib"
# Where the Triton server container sees the repository, the engines root and the model store.
SERVER_REPOSITORY = "/models"
SERVER_ENGINES = "/engines"
SERVER_WEIGHTS = "/weights"

__all__ = ["BuildError", "GpuUnavailable", "DEFAULT_TRITON_IMAGE", "check_version"]


# ---- settings ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckpointSettings:
    """HF -> TensorRT-LLM checkpoint. `model_family` picks `examples/models/core/<family>/`."""

    model_family: str = "llama"
    quantization: Quantization = "none"
    dtype: Literal["float16", "bfloat16"] = "float16"
    tp_size: int = 1
    pp_size: int = 1
    kv_cache_dtype: Literal["auto", "fp8", "int8"] = "auto"
    calib_size: int = 512
    calib_dataset: str | None = None  # local dataset dir (the default downloads cnn_dailymail)
    awq_block_size: int = 128


@dataclass(frozen=True)
class BuildSettings:
    """`trtllm-build` settings (TensorRT-LLM 1.2 flag names)."""

    max_batch_size: int = 8
    max_input_len: int = 4096
    max_seq_len: int = 8192
    max_num_tokens: int = 8192
    max_beam_width: int = 1
    gemm_plugin: Literal["auto", "float16", "bfloat16", "fp8", "disable"] = "auto"
    gpt_attention_plugin: Literal["auto", "float16", "bfloat16", "disable"] = "auto"
    kv_cache_type: Literal["paged", "continuous", "disabled"] = "paged"
    use_paged_context_fmha: bool = True  # needed for KV cache reuse and chunked context
    use_fp8_context_fmha: bool = False
    remove_input_padding: bool = True
    multiple_profiles: bool = False
    workers: int = 1
    log_level: Literal["error", "warning", "info", "verbose"] = "info"


@dataclass(frozen=True)
class ServeSettings:
    """`trtllm-serve` (PyTorch backend) settings."""

    host: str = "0.0.0.0"
    port: int = 8000
    max_batch_size: int = 8
    max_num_tokens: int = 8192
    max_seq_len: int = 8192
    tp_size: int = 1
    kv_cache_free_gpu_memory_fraction: float = 0.9


def _on(flag: bool) -> str:
    return "enable" if flag else "disable"


# ---- commands ------------------------------------------------------------------------------------

def checkpoint_command(
    s: CheckpointSettings,
    model_dir: str = CONTAINER_MODEL,
    output_dir: str = CONTAINER_CHECKPOINT,
    examples_dir: str = CONTAINER_EXAMPLES,
    calib_dir: str = CONTAINER_CALIB,
) -> list[str]:
    """The conversion or ModelOpt quantization command for these settings."""
    if s.quantization in ("fp8", "int4_awq"):
        cmd = [
            "python3", f"{examples_dir}/quantization/quantize.py",
            "--model_dir", model_dir,
            "--output_dir", output_dir,
            "--dtype", s.dtype,
            "--qformat", s.quantization,
            "--tp_size", str(s.tp_size),
            "--pp_size", str(s.pp_size),
            "--calib_size", str(s.calib_size),
        ]
        if s.quantization == "int4_awq":
            cmd += ["--awq_block_size", str(s.awq_block_size)]
        if s.kv_cache_dtype != "auto":
            cmd += ["--kv_cache_dtype", s.kv_cache_dtype]
        if s.calib_dataset:
            cmd += ["--calib_dataset", calib_dir]
        return cmd
    cmd = [
        "python3", f"{examples_dir}/models/core/{s.model_family}/convert_checkpoint.py",
        "--model_dir", model_dir,
        "--output_dir", output_dir,
        "--dtype", s.dtype,
        "--tp_size", str(s.tp_size),
        "--pp_size", str(s.pp_size),
    ]
    if s.quantization == "int8_wo":
        cmd += ["--use_weight_only", "--weight_only_precision", "int8"]
    if s.kv_cache_dtype == "int8":
        cmd += ["--int8_kv_cache"]
    elif s.kv_cache_dtype == "fp8":
        raise InvalidBuildSettings(
            "fp8 KV cache needs ModelOpt: use quantization 'fp8' (quantize.py), not convert_checkpoint"
        )
    return cmd


def build_command(
    s: BuildSettings, checkpoint_dir: str = CONTAINER_CHECKPOINT, output_dir: str = CONTAINER_ENGINE
) -> list[str]:
    if s.max_input_len >= s.max_seq_len:
        raise InvalidBuildSettings(f"max_input_len ({s.max_input_len}) must be below max_seq_len ({s.max_seq_len})")
    if s.max_num_tokens < s.max_batch_size:
        raise InvalidBuildSettings("max_num_tokens must be at least max_batch_size")
    return [
        "trtllm-build",
        "--checkpoint_dir", checkpoint_dir,
        "--output_dir", output_dir,
        "--max_batch_size", str(s.max_batch_size),
        "--max_input_len", str(s.max_input_len),
        "--max_seq_len", str(s.max_seq_len),
        "--max_num_tokens", str(s.max_num_tokens),
        "--max_beam_width", str(s.max_beam_width),
        "--gemm_plugin", s.gemm_plugin,
        "--gpt_attention_plugin", s.gpt_attention_plugin,
        "--kv_cache_type", s.kv_cache_type,
        "--use_paged_context_fmha", _on(s.use_paged_context_fmha),
        "--use_fp8_context_fmha", _on(s.use_fp8_context_fmha),
        "--remove_input_padding", _on(s.remove_input_padding),
        "--multiple_profiles", _on(s.multiple_profiles),
        "--workers", str(s.workers),
        "--log_level", s.log_level,
    ]


def serve_command(s: ServeSettings, model_dir: str = CONTAINER_MODEL) -> list[str]:
    return [
        "trtllm-serve", "serve", model_dir,
        "--backend", "pytorch",
        "--host", s.host,
        "--port", str(s.port),
        "--max_batch_size", str(s.max_batch_size),
        "--max_num_tokens", str(s.max_num_tokens),
        "--max_seq_len", str(s.max_seq_len),
        "--tp_size", str(s.tp_size),
        "--kv_cache_free_gpu_memory_fraction", str(s.kv_cache_free_gpu_memory_fraction),
    ]


def version_command() -> list[str]:
    return ["python3", "-c", "import tensorrt_llm; print(tensorrt_llm.__version__)"]


def tritonserver_command(
    repository: str = "/models", http: int = 8000, grpc: int = 8001, metrics: int = 8002
) -> list[str]:
    return [
        "tritonserver",
        f"--model-repository={repository}",
        "--model-control-mode=explicit",
        f"--http-port={http}",
        f"--grpc-port={grpc}",
        f"--metrics-port={metrics}",
    ]


# ---- containers ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """What `docker run` needs, as plain data (tested as data; turned into SDK objects to run)."""

    image: str
    command: tuple[str, ...]
    mounts: tuple[Mount, ...] = ()
    gpus: int = -1  # -1: all GPUs
    environment: dict[str, str] = field(default_factory=dict)
    secret_env: tuple[str, ...] = ()  # passed from the caller's environment by name, never printed
    ports: dict[int, int] = field(default_factory=dict)  # container -> host
    shm_size: str = "16g"
    working_dir: str | None = None
    name: str | None = None

    @property
    def device_requests(self) -> list[dict[str, Any]]:
        return [{"Driver": "", "Count": self.gpus, "Capabilities": [["gpu"]]}]

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `docker.from_env().containers.run(**kwargs)`."""
        import docker

        return {
            "image": self.image,
            "command": list(self.command),
            "mounts": [docker.types.Mount(m.target, m.source, type="bind", read_only=m.read_only) for m in self.mounts],
            "device_requests": [docker.types.DeviceRequest(count=self.gpus, capabilities=[["gpu"]])],
            "environment": {**self.environment, **{k: os.environ[k] for k in self.secret_env if k in os.environ}},
            "ports": {f"{c}/tcp": h for c, h in self.ports.items()},
            "shm_size": self.shm_size,
            "ulimits": [
                docker.types.Ulimit(name="memlock", soft=-1, hard=-1),
                docker.types.Ulimit(name="stack", soft=67108864, hard=67108864),
            ],
            "working_dir": self.working_dir,
            "name": self.name,
            "detach": True,
        }

    def docker_cli(self) -> list[str]:
        """The equivalent `docker run` command line (for runbooks and dry runs)."""
        cmd = ["docker", "run", "--rm", "--gpus", "all" if self.gpus < 0 else str(self.gpus)]
        cmd += ["--shm-size", self.shm_size, "--ulimit", "memlock=-1", "--ulimit", "stack=67108864"]
        for m in self.mounts:
            cmd += ["-v", f"{m.source}:{m.target}" + (":ro" if m.read_only else "")]
        for key in sorted(self.environment):
            cmd += ["-e", f"{key}={self.environment[key]}"]
        for key in self.secret_env:
            cmd += ["-e", key]  # docker reads the value from the caller's environment
        for c, h in sorted(self.ports.items()):
            cmd += ["-p", f"{h}:{c}"]
        if self.working_dir:
            cmd += ["-w", self.working_dir]
        return cmd + [self.image, *self.command]


def checkpoint_container(
    s: CheckpointSettings, image: str, model_dir: Path, checkpoint_dir: Path, examples_dir: Path | None, gpus: int = -1
) -> ContainerSpec:
    """The conversion/quantization container. `examples_dir=None` uses the image's own `/app/examples`."""
    mounts = [
        Mount(str(model_dir), CONTAINER_MODEL, read_only=True),
        Mount(str(checkpoint_dir), CONTAINER_CHECKPOINT),
    ]
    if examples_dir is not None:
        mounts.append(Mount(str(examples_dir), CONTAINER_EXAMPLES, read_only=True))
    if s.calib_dataset:
        mounts.append(Mount(s.calib_dataset, CONTAINER_CALIB, read_only=True))
    # Offline inside the container: the weights are already local; no hub calls at build time.
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    examples = CONTAINER_EXAMPLES if examples_dir is not None else IMAGE_EXAMPLES
    return ContainerSpec(
        image, tuple(checkpoint_command(s, examples_dir=examples)), tuple(mounts), gpus=gpus, environment=env
    )


def build_container(
    s: BuildSettings, image: str, checkpoint_dir: Path, engine_dir: Path, gpus: int = -1
) -> ContainerSpec:
    mounts = (
        Mount(str(checkpoint_dir), CONTAINER_CHECKPOINT, read_only=True),
        Mount(str(engine_dir), CONTAINER_ENGINE),
    )
    return ContainerSpec(image, tuple(build_command(s)), mounts, gpus=gpus)


def serve_container(s: ServeSettings, image: str, model_dir: Path, gpus: int = -1) -> ContainerSpec:
    return ContainerSpec(
        image,
        tuple(serve_command(s)),
        (Mount(str(model_dir), CONTAINER_MODEL, read_only=True),),
        gpus=gpus,
        environment={"HF_HUB_OFFLINE": "1"},
        ports={s.port: s.port},
    )


def triton_container(
    image: str,
    repository: Path,
    engines_root: Path,
    weights_root: Path | None = None,
    gpus: int = -1,
    ports: tuple[int, int, int] = (8000, 8001, 8002),
) -> ContainerSpec:
    """Triton with the TensorRT-LLM backend: repository at /models, engines at /engines, weights at /weights."""
    mounts = [Mount(str(repository), SERVER_REPOSITORY), Mount(str(engines_root), SERVER_ENGINES, read_only=True)]
    if weights_root is not None:
        mounts.append(Mount(str(weights_root), SERVER_WEIGHTS, read_only=True))
    return ContainerSpec(
        image,
        tuple(tritonserver_command(SERVER_REPOSITORY, *ports)),
        tuple(mounts),
        gpus=gpus,
        ports={p: p for p in ports},
    )


# ---- GPU preflight -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Preflight:
    runner: Runner
    gpus: tuple[str, ...]
    driver: str | None
    problems: tuple[str, ...]
    docker_runtimes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        head = f"GPU preflight failed for the {self.runner} runner (no CPU fallback for TensorRT-LLM):"
        return head + "".join(f"\n  - {p}" for p in self.problems)


def _nvidia_smi() -> tuple[list[str], str | None, str | None]:
    """(gpu descriptions, driver version, problem)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return [], None, "no NVIDIA GPU visible: `nvidia-smi` is not installed or not on PATH (NVIDIA driver missing)"
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], None, f"`nvidia-smi` failed: {exc}"
    if out.returncode != 0 or not out.stdout.strip():
        return [], None, f"`nvidia-smi` found no usable GPU (NVML): {(out.stderr or out.stdout).strip()}"
    rows = [r.strip() for r in out.stdout.strip().splitlines()]
    driver = rows[0].rsplit(",", 1)[-1].strip() if rows else None
    return [r.rsplit(",", 1)[0].strip() for r in rows], driver, None


def _docker_runtimes() -> tuple[list[str], str | None]:
    try:
        import docker
    except ImportError:
        return [], "the docker Python SDK is not installed (pip install 'june-pipelines[docker]')"
    try:
        info = docker.from_env(timeout=10).info()
    except Exception as exc:  # DockerException, connection errors
        return [], f"the Docker engine is unreachable: {exc}"
    runtimes = sorted((info.get("Runtimes") or {}).keys())
    cdi = [d.get("ID", "") for d in info.get("DiscoveredDevices") or [] if "nvidia.com/gpu" in str(d.get("ID", ""))]
    if "nvidia" not in runtimes and not cdi:
        return runtimes, (
            f"Docker has no NVIDIA GPU runtime (runtimes: {', '.join(runtimes) or 'none'}): install "
            "nvidia-container-toolkit, run `nvidia-ctk runtime configure --runtime=docker`, restart dockerd"
        )
    return runtimes, None


def preflight(runner: Runner) -> Preflight:
    """Check, without starting anything heavy, that a GPU step can run. Collects every problem."""
    problems: list[str] = []
    gpus, driver, smi_problem = _nvidia_smi()
    if smi_problem:
        problems.append(smi_problem)
    runtimes: list[str] = []
    if runner == "docker":
        runtimes, docker_problem = _docker_runtimes()
        if docker_problem:
            problems.append(docker_problem)
    else:
        import importlib.util

        if importlib.util.find_spec("tensorrt_llm") is None:
            problems.append("`tensorrt_llm` is not installed in this environment (local runner)")
        if shutil.which("trtllm-build") is None:
            problems.append("`trtllm-build` is not on PATH (local runner)")
    return Preflight(runner, tuple(gpus), driver, tuple(problems), tuple(runtimes))


def require_gpu(runner: Runner) -> Preflight:
    report = preflight(runner)
    if not report.ok:
        raise GpuUnavailable(report.message())
    return report


# ---- running -------------------------------------------------------------------------------------

def run_local(cmd: Sequence[str], log: Log, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    """Run a command, streaming its output line by line to `log`."""
    log(f"$ {shlex.join(cmd)}")
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        log(line.rstrip())
    if proc.wait() != 0:
        raise BuildError(f"`{cmd[0]}` exited with {proc.returncode}")


def run_container(spec: ContainerSpec, log: Log) -> str:
    """Run a container to completion with the Docker SDK, streaming its logs; returns the output."""
    import docker

    client = docker.from_env()
    log(f"$ {shlex.join(spec.docker_cli())}")
    container = client.containers.run(**spec.run_kwargs())
    lines: list[str] = []
    try:
        for chunk in container.logs(stream=True, follow=True):
            for line in chunk.decode("utf-8", errors="replace").splitlines():
                lines.append(line)
                log(line)
        status = container.wait()
    finally:
        container.remove(force=True)
    if status.get("StatusCode", 1) != 0:
        raise BuildError(f"container {spec.image} exited with {status.get('StatusCode')}: {' | '.join(lines[-5:])}")
    return "\n".join(lines)


@dataclass(frozen=True)
class EngineInfo:
    engine_dir: Path
    size_bytes: int
    files: tuple[str, ...]
    trtllm_version: str | None
    build_config: dict[str, Any]

    def metadata(self) -> dict[str, Any]:
        return {
            "engine_dir": str(self.engine_dir),
            "engine_size_mib": round(self.size_bytes / 2**20, 1),
            "engine_files": list(self.files),
            "tensorrt_llm_version": self.trtllm_version or "unknown",
            "build_config": json.dumps(self.build_config, sort_keys=True)[:4000],
        }


def inspect_engine(engine_dir: Path) -> EngineInfo:
    """Read what `trtllm-build` wrote: `config.json` (version, build_config) and `rank*.engine`."""
    engine_dir = Path(engine_dir)
    engines = sorted(p.name for p in engine_dir.glob("rank*.engine"))
    if not engines:
        raise BuildError(f"no rank*.engine in {engine_dir}: the build did not produce an engine")
    config_path = engine_dir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    size = sum(p.stat().st_size for p in engine_dir.iterdir() if p.is_file())
    return EngineInfo(engine_dir, size, tuple(engines), config.get("version"), config.get("build_config", {}))


def settings_dict(*settings: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in settings:
        out.update(asdict(s))  # type: ignore[call-overload]
    return out
