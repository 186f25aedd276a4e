"""The deployment files agree with the code and with Dagster's own schemas.

Kubernetes stays on paper here (no cluster): the instance the Helm chart renders is validated with
Dagster's config schemas (instance, K8sRunLauncher, PostgreSQL storage), and the chart values carry
the same run limits as dagster.yaml. The compose file only names `june deploy` commands that exist,
and its shared network and volume are the ones the run launcher is told to use.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from june_pipelines.cli import main
from june_pipelines.deploy.image import EXTRAS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _process(schema, config):  # noqa: ANN001, ANN202
    from dagster._config import process_config, resolve_to_config_type

    result = process_config(resolve_to_config_type(schema), config)
    assert result.success, [e.message for e in result.errors]
    return result.value


def test_kubernetes_instance_validates_with_dagsters_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._core.instance.config import dagster_instance_config_schema
    from dagster._core.storage.config import pg_config
    from dagster_k8s import K8sRunLauncher

    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "not-a-secret")
    instance = yaml.safe_load((DEPLOY / "k8s" / "dagster-instance.yaml").read_text())
    _process(dagster_instance_config_schema(), instance)
    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    processed = _process(K8sRunLauncher.config_type(), launcher["config"])
    assert processed["env_secrets"] == ["june-secrets"] and "JUNE_SANDBOX=process" in processed["env_vars"]
    storage = _process(pg_config(), instance["storage"]["postgres"])
    assert storage["postgres_db"]["scheme"] == "postgresql+psycopg2"  # SQLAlchemy 2.1's default is psycopg 3


def test_helm_values_match_the_rendered_instance_and_dagster_yaml() -> None:
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text())
    instance = yaml.safe_load((DEPLOY / "k8s" / "dagster-instance.yaml").read_text())
    project = yaml.safe_load((ROOT / "dagster.yaml").read_text())

    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["name"] == "june" and deployment["dagsterApiGrpcArgs"] == ["-m", "june_pipelines.definitions"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    rendered = instance["run_launcher"]["config"]
    assert [s["name"] for s in k8s["envSecrets"]] == rendered["env_secrets"]
    assert k8s["envVars"] == rendered["env_vars"]
    assert k8s["volumes"] == rendered["volumes"] and k8s["volumeMounts"] == rendered["volume_mounts"]
    assert values["postgresql"]["postgresqlScheme"] == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"

    runs, pools = project["concurrency"]["runs"], project["concurrency"]["pools"]
    chart = values["concurrency"]
    assert chart["runs"]["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert chart["runs"]["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    assert chart["pools"]["defaultLimit"] == pools["default_limit"]
    assert instance["concurrency"] == project["concurrency"]
    retries = values["dagsterDaemon"]["runRetries"]
    assert instance["run_retries"] == project["run_retries"] == {
        "enabled": retries["enabled"], "max_retries": retries["maxRetries"],
        "retry_on_asset_or_op_failure": retries["retryOnAssetOrOpFailure"]}


def test_compose_services_run_existing_june_commands_on_a_shared_network_and_volume() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "code-server", "webserver", "daemon", "telegram", "discord"} <= set(services)
    runner = CliRunner()
    for name, service in services.items():
        if name == "postgres":
            continue
        command = service["command"]
        assert command[0] == "june", name
        subcommand = [part for part in command[1:] if not part.startswith("-")][:2]
        result = runner.invoke(main, [*subcommand, "--help"])
        assert result.exit_code == 0, f"{name}: `june {' '.join(subcommand)}` is not a command"
        for option in (part for part in command if part.startswith("--")):
            assert option in result.output, f"{name}: {option} is not an option of `june {' '.join(subcommand)}`"
        env = service["environment"]
        assert env["JUNE_RUN_LAUNCHER"] == "docker" and env["JUNE_POSTGRES_URL"].startswith("postgresql://")
    env = services["daemon"]["environment"]
    assert env["JUNE_RUN_NETWORK"] == compose["networks"]["june"]["name"]
    volume, mount = env["JUNE_RUN_VOLUMES"].split(",")[0].split(":")
    assert volume == compose["volumes"]["june-home"]["name"] and mount == env["JUNE_HOME"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in services["daemon"]["volumes"]
    assert services["code-server"]["environment"]["DAGSTER_CURRENT_IMAGE"] == env["JUNE_RUN_IMAGE"]
    # The services share one dagster.yaml (whoever starts last writes it): the same forwarded names in each.
    from june_pipelines.deploy.instance import forwarded_env

    dagster_services = ("code-server", "webserver", "daemon")
    forwarded = {name: tuple(forwarded_env(services[name]["environment"])) for name in dagster_services}
    assert len(set(forwarded.values())) == 1, forwarded
    assert "TELEGRAM_BOT_TOKEN" in forwarded["daemon"]


def test_dockerfile_installs_the_extras_the_offline_image_has() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for line in (line for line in text.splitlines() if "uv sync" in line):
        assert sorted(re.findall(r"--extra (\w[\w-]*)", line)) == sorted(EXTRAS), line
