"""The Dagster instance June runs on: the project's dagster.yaml plus what the environment selects.

The project's `dagster.yaml` holds what every deployment shares (the run queue and its limits, the
`gpu` pool, telemetry). `DAGSTER_HOME/dagster.yaml` is written from it, adding:

- `storage`: PostgreSQL (`dagster-postgres`: runs, event log, schedules) when `JUNE_POSTGRES_URL` is
  set, or Dagster's own `DAGSTER_PG_HOST`/`DAGSTER_PG_USERNAME`/`DAGSTER_PG_PASSWORD`/`DAGSTER_PG_DB`
  (`DAGSTER_PG_PORT`); otherwise Dagster's default SQLite files in DAGSTER_HOME. The storage class is
  dagster-postgres's on the psycopg2 driver (june_pipelines/deploy/postgres.py explains why).
- `run_launcher`: `JUNE_RUN_LAUNCHER=docker` runs every launched run in a container of the code
  location's image (`dagster-docker`'s DockerRunLauncher); the default launches a subprocess on the
  code server's host. On Kubernetes, Dagster's Helm chart writes the instance instead (deploy/k8s).

Secrets stay in the environment: the file refers to them as `{env: NAME}` and the run containers get
them forwarded by name, so no password is ever written to disk or to a run's command line.
A DAGSTER_HOME/dagster.yaml that June did not write is left as it is (the user manages it).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from june_pipelines.db import POSTGRES_URL_ENV, postgres_url, redacted

RUN_LAUNCHER_ENV = "JUNE_RUN_LAUNCHER"
RUN_IMAGE_ENV = "JUNE_RUN_IMAGE"
RUN_NETWORK_ENV = "JUNE_RUN_NETWORK"
RUN_VOLUMES_ENV = "JUNE_RUN_VOLUMES"
RUN_ENV_ENV = "JUNE_RUN_ENV"
DOCKER_SOCKET = "/var/run/docker.sock"
PG_VARIABLES = ("DAGSTER_PG_HOST", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
# What a run container inherits from the process that launches it (the daemon), by name only.
FORWARDED_PREFIXES = ("JUNE_", "DAGSTER_PG_", "TELEGRAM_", "DISCORD_")
FORWARDED_NAMES = ("HF_TOKEN", "DAGSTER_HOME")
_HEADER = "# Written by `june` from {template} and the environment; edits here are replaced.\n"
_HEADER_PREFIX = "# Written by `june` from "
# sha256 of the project dagster.yaml files that earlier June versions copied into DAGSTER_HOME verbatim.
_EARLIER_COPIES = frozenset({
    "feae3d66a2dc65016d78652662130a65ce683334fa9308ec98ece822d0801d33",
    "d9ac6cf03605256621bac18aa70e7a98bd2be7112951eae6c0658f5aa83e4cc8",
})


class InstanceConfigError(ValueError):
    """The environment asks for an instance June cannot build (one line, for the CLI)."""


def storage_config(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Dagster's `storage` section for the configured PostgreSQL; None means SQLite (Dagster's default)."""
    if postgres_url(environ.get(POSTGRES_URL_ENV) or None):
        return _postgres({"postgres_url": {"env": POSTGRES_URL_ENV}})
    present = [name for name in PG_VARIABLES if environ.get(name)]
    if not present:
        return None
    missing = sorted(set(PG_VARIABLES) - set(present))
    if missing:
        raise InstanceConfigError(
            f"PostgreSQL for Dagster needs {', '.join(PG_VARIABLES)}; missing: {', '.join(missing)}"
        )
    postgres_db: dict[str, Any] = {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }
    if environ.get("DAGSTER_PG_PORT"):
        postgres_db["port"] = {"env": "DAGSTER_PG_PORT"}
    return _postgres({"postgres_db": postgres_db})


def _postgres(config: dict[str, Any]) -> dict[str, Any]:
    """The same config as Dagster's `storage: postgres`, for dagster-postgres on psycopg2."""
    return {"custom": {"module": "june_pipelines.deploy.postgres", "class": "PostgresStorage", "config": config}}


def describe_storage(environ: Mapping[str, str], dagster_home: Path) -> str:
    """Where runs and events are stored, without secrets (for the CLI's start-up line)."""
    url = environ.get(POSTGRES_URL_ENV)
    if url:
        return f"PostgreSQL {redacted(url)}"
    if environ.get("DAGSTER_PG_HOST"):
        return f"PostgreSQL {environ.get('DAGSTER_PG_DB', '')} on {environ['DAGSTER_PG_HOST']}"
    return f"SQLite in {dagster_home}"


def forwarded_env(environ: Mapping[str, str]) -> list[str]:
    """Names of the variables a run container inherits (those set now, plus JUNE_RUN_ENV's list)."""
    extra = [n.strip() for n in environ.get(RUN_ENV_ENV, "").split(",") if n.strip()]
    names = {n for n in environ if n.startswith(FORWARDED_PREFIXES) or n in FORWARDED_NAMES}
    return sorted(names | set(extra))


def _default_volumes(environ: Mapping[str, str]) -> list[str]:
    """The folders a run shares with the rest of the deployment, at the same path, and the engine's
    socket (a run's sandbox is a sibling container on the host's engine, see docs/DEPLOY.md)."""
    from june_pipelines.paths import june_home

    shared = [june_home()]
    if environ.get("DAGSTER_HOME"):
        home = Path(environ["DAGSTER_HOME"]).resolve()
        if not home.is_relative_to(shared[0]):
            shared.append(home)
    volumes = [f"{p}:{p}" for p in shared]
    if environ.get("JUNE_SANDBOX", "docker") != "process":
        volumes.append(f"{DOCKER_SOCKET}:{DOCKER_SOCKET}")
    return volumes


def run_launcher_config(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Dagster's `run_launcher` section for JUNE_RUN_LAUNCHER; None keeps Dagster's DefaultRunLauncher."""
    kind = environ.get(RUN_LAUNCHER_ENV, "default")
    if kind == "default":
        return None
    if kind != "docker":
        raise InstanceConfigError(
            f"{RUN_LAUNCHER_ENV}={kind!r}: expected default or docker (Kubernetes: Dagster's Helm chart, deploy/k8s)"
        )
    volumes_value = environ.get(RUN_VOLUMES_ENV)
    volumes = [v.strip() for v in volumes_value.split(",") if v.strip()] if volumes_value else _default_volumes(environ)
    config: dict[str, Any] = {
        "env_vars": forwarded_env(environ),
        "container_kwargs": {"volumes": volumes, "labels": {"june/role": "run"}},
    }
    if environ.get(RUN_IMAGE_ENV):  # else the image the code server reports (DAGSTER_CURRENT_IMAGE)
        config["image"] = environ[RUN_IMAGE_ENV]
    if environ.get(RUN_NETWORK_ENV):
        config["network"] = environ[RUN_NETWORK_ENV]
    return {"module": "dagster_docker", "class": "DockerRunLauncher", "config": config}


def instance_config(template: Path, environ: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    """The template's text and the sections the environment adds (a section the template already
    defines is the template's: explicit configuration wins over the environment)."""
    text = template.read_text() if template.exists() else ""
    base = yaml.safe_load(text) or {}
    added: dict[str, Any] = {}
    for key, section in (("storage", storage_config(environ)), ("run_launcher", run_launcher_config(environ))):
        if section is not None and key not in base:
            added[key] = section
    return text, added


def render(template: Path, environ: Mapping[str, str]) -> str:
    text, added = instance_config(template, environ)
    parts = [_HEADER.format(template=template), text.rstrip("\n") + "\n"]
    if added:
        parts.append("\n# Added from the environment (see june_pipelines/deploy/instance.py).\n")
        parts.append(yaml.safe_dump(added, sort_keys=False))
    return "".join(parts)


def is_june_managed(config: Path, template: Path) -> bool:
    """Whether `config` was written by June (and may be rewritten): ours, or a plain copy of the project's
    file (what earlier June versions put there)."""
    if not config.exists():
        return True
    text = config.read_text()
    if text.startswith(_HEADER_PREFIX) or (template.exists() and text == template.read_text()):
        return True
    return hashlib.sha256(text.encode()).hexdigest() in _EARLIER_COPIES


def unmanaged_note(home: Path, template: Path) -> str | None:
    """A one-line note for the CLI when DAGSTER_HOME/dagster.yaml is the user's own (June leaves it)."""
    config = home / "dagster.yaml"
    if config.resolve() == template.resolve() or is_june_managed(config, template):
        return None
    return f"{config} was not written by June: using it as it is (remove it to let June write it)"


def write_instance_config(home: Path, template: Path, environ: Mapping[str, str] | None = None) -> bool:
    """Write DAGSTER_HOME/dagster.yaml if June manages it; True when the file is June's."""
    env = os.environ if environ is None else environ
    config = home / "dagster.yaml"
    if config.resolve() == template.resolve() or not is_june_managed(config, template):
        return False
    text = render(template, env)
    if not config.exists() or config.read_text() != text:
        tmp = config.with_suffix(f".yaml.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, config)  # processes starting together never read a torn file
    return True


def grpc_workspace(home: Path, host: str, port: int, location_name: str = "june") -> Path:
    """A workspace file for the webserver and daemon: the code location served by a gRPC code server."""
    path = home / f"workspace-{host}-{port}.yaml"
    entry = {"grpc_server": {"host": host, "port": port, "location_name": location_name}}
    path.write_text(yaml.safe_dump({"load_from": [entry]}, sort_keys=False))
    return path
