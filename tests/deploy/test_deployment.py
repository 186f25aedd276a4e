"""The deployed layout, started for real: PostgreSQL, a code server, the daemon and the webserver as
separate processes, runs in Docker containers of the code-location image (DockerRunLauncher), each
run's sandbox a sibling container on the host's engine through the mounted socket.

One deployment serves the whole module, in order: a CLI run lands in PostgreSQL and on the job's
page; a run launched through the webserver's GraphQL API is queued, runs in a container and records
its results; the leaderboard sensor refreshes the leaderboard; a schedule turned on ticks and its run
succeeds; the bot sensor launches a run for a handed-over message, which answers through the fake
Telegram Bot API. Latencies are printed as `[measure]` lines (scripts/bench_deploy.py repeats them).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from deploy_support import BotAPIThread, Deployment, start_deployment
from docker_support import require_docker
from postgres_support import require_postgres

from june_pipelines.deploy.services import Layout

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PARTITION = dg.MultiPartitionKey({"model": "smollm2", "benchmark": "humaneval"})
PARTITION_TAGS = {"dagster/partition": str(PARTITION), "dagster/partition/benchmark": "humaneval",
                  "dagster/partition/model": "smollm2"}
EVAL_CONFIG = {
    "ops": {
        "problems": {"config": {"limit": 2}},
        "completions": {"config": {"n": 1, "temperature": 0.0, "max_tokens": 48}},
        "pass_at_k": {"config": {"ks": [1]}},
    }
}
CHAT = 4242


@pytest.fixture(scope="module")
def deployment(
    code_image: str, bot_api: BotAPIThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    require_postgres()
    require_docker()
    with start_deployment(code_image, bot_api, tmp_path_factory.mktemp("deployed_june")) as running:
        yield running


def _runs(instance: dg.DagsterInstance, **tags: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(tags=tags)))


def _wait(what: str, predicate, timeout_s: float, layout: Layout, poll_s: float = 0.5):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        layout.check()
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s:.0f}s (logs: {layout.log_dir})")
        time.sleep(poll_s)


def _event_times(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> list[float]:
    records = instance.get_records_for_run(run_id, of_type=event_type).records
    return sorted(r.event_log_entry.timestamp for r in records)


def _leaderboard_refreshed_after(instance: dg.DagsterInstance, after: float) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(dg.AssetKey("leaderboard"), limit=5).records
    fresh = [r for r in records if r.timestamp > after]
    return fresh[0] if fresh else None


@pytest.mark.timeout(1800)  # the first test also builds the image when the source changed
def test_a_cli_run_lands_in_postgres_and_on_the_job_page(deployment: Deployment) -> None:
    june = Path(sys.executable).with_name("june")
    out = subprocess.run(
        [str(june), "eval", "run", "smollm2", "humaneval", "--limit", "2", "--max-tokens", "48", "--k", "1"],
        env=deployment.env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    [run] = _runs(deployment.instance, **{"june/started_by": "cli", "dagster/partition": str(PARTITION)})
    assert run.status == dg.DagsterRunStatus.SUCCESS
    listed = {r["runId"] for r in deployment.ui.job_runs("evaluation")}
    assert run.run_id in listed  # the evaluation job's page shows the CLI's run


def test_a_ui_launch_is_queued_and_runs_in_a_container(deployment: Deployment) -> None:
    import docker

    ui, instance = deployment.ui, deployment.instance
    launched_at = time.time()
    run_id = ui.launch("evaluation", EVAL_CONFIG, tags=PARTITION_TAGS)
    finished = ui.wait_for_run(run_id, timeout_s=540)
    assert finished["status"] == "SUCCESS", f"run {run_id} {finished['status']} (logs: {deployment.layout.log_dir})"

    # Through the queue: enqueued by the webserver, then launched (by the daemon) in a container.
    [enqueued] = _event_times(instance, run_id, dg.DagsterEventType.RUN_ENQUEUED)
    [starting] = _event_times(instance, run_id, dg.DagsterEventType.RUN_STARTING)
    assert enqueued <= starting
    engine_events = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    assert any("Launching run in a new container" in (r.event_log_entry.message or "") for r in engine_events)
    # In a container of the code location's image.
    tags = {t["key"]: t["value"] for t in finished["tags"]}
    assert tags["dagster/image"] == deployment.image
    client = docker.from_env()
    container = client.containers.get(tags["docker/container_id"])
    assert container.labels["dagster/run_id"] == run_id
    assert container.attrs["State"]["ExitCode"] == 0
    client.close()
    # Results in the assets: metadata in PostgreSQL, Parquet in the shared JUNE_HOME.
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("pass_at_k"), asset_partitions=[str(PARTITION)]), limit=1
    ).records
    assert record.run_id == run_id
    assert record.asset_materialization.metadata["tasks"].value == 2
    [executions] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("executions"), asset_partitions=[str(PARTITION)]), limit=1
    ).records
    assert executions.asset_materialization.metadata["sandbox"].value["backend"] == "docker"
    from june_pipelines.evals.store import EvalStore

    summary = EvalStore("smollm2", "humaneval").latest_summary()  # written by the run's container
    assert summary["tasks"] == 2 and str(deployment.home) in str(EvalStore("smollm2", "humaneval").root)

    first_step = _event_times(instance, run_id, dg.DagsterEventType.STEP_START)[0]
    print(f"[measure] UI launch -> first step: {first_step - launched_at:.1f}s (run {run_id})")

    # The leaderboard sensor refreshes the leaderboard after the new pass@k (a run of its own).
    run_end = _event_times(instance, run_id, dg.DagsterEventType.RUN_SUCCESS)[0]
    refreshed = _wait("leaderboard refresh after the UI run",
                      lambda: _leaderboard_refreshed_after(instance, run_end), 300, deployment.layout, poll_s=2)
    board = instance.get_run_by_id(refreshed.run_id)
    assert board is not None and board.tags.get("dagster/sensor_name") == "leaderboard_automation"
    print(f"[measure] pass@k materialized -> leaderboard refreshed: {refreshed.timestamp - run_end:.1f}s")


def test_a_schedule_turned_on_ticks_and_its_run_succeeds(deployment: Deployment) -> None:
    ui, instance = deployment.ui, deployment.instance
    assert ui.start_schedule("deployment_smoke_test") == "RUNNING"
    started = time.time()
    [run, *_] = _wait("a tick of deployment_smoke_test (every minute in this test)",
                      lambda: _runs(instance, **{"dagster/schedule_name": "deployment_smoke_test"}), 150,
                      deployment.layout)
    assert ui.stop_schedule("deployment_smoke_test") == "STOPPED"  # one tick is the test; the bot test follows
    finished = ui.wait_for_run(run.run_id, timeout_s=400)
    assert finished["status"] == "SUCCESS"
    assert run.tags["dagster/partition"] == str(PARTITION) and "docker/container_id" in finished_tags(finished)
    run_end = _event_times(instance, run.run_id, dg.DagsterEventType.RUN_SUCCESS)[0]
    _wait("leaderboard refresh after the scheduled run",
          lambda: _leaderboard_refreshed_after(instance, run_end), 300, deployment.layout, poll_s=2)
    print(f"[measure] schedule on -> scheduled run finished: {run_end - started:.1f}s")


def finished_tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def test_the_bot_sensor_launches_a_run_for_a_handed_over_message_that_answers(deployment: Deployment) -> None:
    from june_pipelines.bots.sensor import InboxResource

    instance = deployment.instance
    inbox = InboxResource().open()  # the sensor's own resource: the same inbox, whatever stores it
    message_id = f"{CHAT}:1"
    inbox.receive("telegram", message_id, CHAT, CHAT, "text", {"message": {"message_id": 1}})
    assert inbox.claim("telegram", message_id)
    text = "Run this python code:\n```python\nprint(sum(range(10)))\n```"
    handed_over_wall, handed_over_mono = time.time(), time.monotonic()
    assert inbox.hand_over("telegram", message_id, text)

    [run] = _wait("the bot sensor's run", lambda: _runs(instance, **{"dagster/run_key": f"telegram:{message_id}"}),
                  120, deployment.layout, poll_s=0.2)
    record = instance.get_run_record_by_id(run.run_id)
    assert record is not None
    launched_s = record.create_timestamp.timestamp() - handed_over_wall
    finished = deployment.ui.wait_for_run(run.run_id, timeout_s=400)
    assert finished["status"] == "SUCCESS", f"bot run {run.run_id}: {finished['status']}"
    replies = deployment.bot_api.messages(CHAT)
    assert replies, "no reply reached the Bot API"
    assert "45" in replies[-1].params["text"]
    item = inbox.get("telegram", message_id)
    assert item is not None and item.status == "done"
    reply_s = replies[0].at - handed_over_mono
    print(f"[measure] bot sensor: handed over -> run created {launched_s:.1f}s -> reply sent {reply_s:.1f}s")
