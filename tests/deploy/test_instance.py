"""The instance June writes into DAGSTER_HOME, loaded by Dagster itself: SQLite by default, PostgreSQL
when configured (schema created on first use), the Docker run launcher, and the queue's limits kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.instance.ref import InstanceRef
from postgres_support import fresh_database

from june_pipelines.db import DatabaseConfigError
from june_pipelines.deploy import instance as june_instance
from june_pipelines.paths import INSTANCE_TEMPLATE


def load(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def write(home: Path, env: dict[str, str]) -> str:
    assert june_instance.write_instance_config(home, INSTANCE_TEMPLATE, env)
    return (home / "dagster.yaml").read_text()


def assert_project_limits(instance: dg.DagsterInstance) -> None:
    from dagster._core.run_coordinator import QueuedRunCoordinator

    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None and queue.max_concurrent_runs == 4
    limits = {(lim["key"], lim.get("value")): lim["limit"] for lim in queue.tag_concurrency_limits}
    assert limits == {("june/kind", "evaluation"): 2, ("june/kind", "serving"): 1}
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1


def test_default_is_sqlite_with_the_project_limits(tmp_path: Path) -> None:
    text = write(tmp_path, {})
    assert "storage" not in yaml.safe_load(text) and "run_launcher" not in yaml.safe_load(text)
    with load(tmp_path) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        assert_project_limits(instance)


def test_postgres_url_switches_runs_events_and_schedules_and_creates_the_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg2

    with fresh_database() as url:
        first, second = tmp_path / "a", tmp_path / "b"  # two processes' homes, one database
        for home in (first, second):
            home.mkdir()
            text = write(home, {"JUNE_POSTGRES_URL": url})
            assert url not in text  # the secret stays in the environment
            storage = yaml.safe_load(text)["storage"]["custom"]
            assert storage["class"] == "PostgresStorage"
            assert storage["config"] == {"postgres_url": {"env": "JUNE_POSTGRES_URL"}}
        monkeypatch.setenv("JUNE_POSTGRES_URL", url)  # what {env: ...} resolves from, at load time
        with load(first) as instance:
            storages = (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
            assert [type(s).__name__ for s in storages] == [
                "PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"]
            assert_project_limits(instance)
            instance.add_dynamic_partitions("models", ["smollm2"])
            run = instance.create_run_for_job(dg.GraphDefinition(name="g").to_job())
        with load(second) as other:
            assert other.get_run_by_id(run.run_id) is not None
            assert other.get_dynamic_partitions("models") == ["smollm2"]
        with psycopg2.connect(url) as conn, conn.cursor() as cursor:
            cursor.execute("select tablename from pg_tables where schemaname = 'public'")
            tables = {row[0] for row in cursor.fetchall()}
        assert {"runs", "event_logs", "jobs", "job_ticks", "alembic_version"} <= tables


def test_dagster_pg_variables_configure_postgres_too(tmp_path: Path) -> None:
    env = {"DAGSTER_PG_HOST": "db", "DAGSTER_PG_USERNAME": "june", "DAGSTER_PG_PASSWORD": "secret",
           "DAGSTER_PG_DB": "june", "DAGSTER_PG_PORT": "5433"}
    storage = yaml.safe_load(write(tmp_path, env))["storage"]["custom"]["config"]["postgres_db"]
    assert storage == {"hostname": {"env": "DAGSTER_PG_HOST"}, "username": {"env": "DAGSTER_PG_USERNAME"},
                       "password": {"env": "DAGSTER_PG_PASSWORD"}, "db_name": {"env": "DAGSTER_PG_DB"},
                       "port": {"env": "DAGSTER_PG_PORT"}}
    with pytest.raises(june_instance.InstanceConfigError, match="missing: DAGSTER_PG_DB, DAGSTER_PG_PASSWORD"):
        june_instance.storage_config({"DAGSTER_PG_HOST": "db", "DAGSTER_PG_USERNAME": "june"})


def test_a_bad_postgres_url_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseConfigError, match="must look like postgresql://"):
        june_instance.write_instance_config(tmp_path, INSTANCE_TEMPLATE, {"JUNE_POSTGRES_URL": "mysql://x/y"})


def test_docker_run_launcher_forwards_secrets_by_name_and_shares_the_results_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "june"
    monkeypatch.setenv("JUNE_HOME", str(home))
    env = {"JUNE_RUN_LAUNCHER": "docker", "JUNE_HOME": str(home), "TELEGRAM_BOT_TOKEN": "123:abc",
           "JUNE_RUN_NETWORK": "host", "UNRELATED": "x", "JUNE_RUN_ENV": "EXTRA_ONE"}
    text = write(tmp_path, env)
    assert "123:abc" not in text
    launcher = yaml.safe_load(text)["run_launcher"]
    assert launcher["class"] == "DockerRunLauncher"
    config = launcher["config"]
    assert {"TELEGRAM_BOT_TOKEN", "JUNE_HOME", "EXTRA_ONE"} <= set(config["env_vars"])
    assert "UNRELATED" not in config["env_vars"]
    assert config["container_kwargs"]["volumes"] == [f"{home}:{home}", "/var/run/docker.sock:/var/run/docker.sock"]
    assert config["network"] == "host"
    with load(tmp_path) as instance:  # Dagster's own schema accepts it, and builds the launcher
        assert type(instance.run_launcher).__name__ == "DockerRunLauncher"
        assert instance.run_launcher.networks == ["host"]
    with pytest.raises(june_instance.InstanceConfigError, match="expected default or docker"):
        june_instance.run_launcher_config({"JUNE_RUN_LAUNCHER": "k8s"})


def test_a_dagster_yaml_june_did_not_write_is_left_alone(tmp_path: Path) -> None:
    mine = "telemetry:\n  enabled: true\n"
    (tmp_path / "dagster.yaml").write_text(mine)
    assert not june_instance.write_instance_config(tmp_path, INSTANCE_TEMPLATE, {"JUNE_RUN_LAUNCHER": "docker"})
    assert (tmp_path / "dagster.yaml").read_text() == mine
    # A plain copy of the project's file (what June wrote before) is June's, and is replaced.
    (tmp_path / "dagster.yaml").write_text(INSTANCE_TEMPLATE.read_text())
    assert june_instance.write_instance_config(tmp_path, INSTANCE_TEMPLATE, {"JUNE_RUN_LAUNCHER": "docker"})
    assert "DockerRunLauncher" in (tmp_path / "dagster.yaml").read_text()


def test_a_copy_an_earlier_june_made_is_upgraded_and_a_users_own_file_is_noted(tmp_path: Path) -> None:
    earlier = subprocess.run(["git", "show", "539a96e:dagster.yaml"], cwd=INSTANCE_TEMPLATE.parent,
                             capture_output=True, text=True)
    if earlier.returncode != 0:
        pytest.skip("no git history here")
    (tmp_path / "dagster.yaml").write_text(earlier.stdout)
    assert june_instance.unmanaged_note(tmp_path, INSTANCE_TEMPLATE) is None
    assert june_instance.write_instance_config(tmp_path, INSTANCE_TEMPLATE, {})
    assert (tmp_path / "dagster.yaml").read_text().startswith("# Written by `june`")
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    note = june_instance.unmanaged_note(tmp_path, INSTANCE_TEMPLATE)
    assert note is not None and "not written by June" in note
