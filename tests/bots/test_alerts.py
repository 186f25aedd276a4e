"""Ops alerts through the bots' own Telegram client resource, against the fake Bot API: one message
per failed run and per failed regression check, none for successes, no secret in the text."""

from __future__ import annotations

import asyncio

import dagster as dg
import pytest
from fake_telegram_api import TOKEN

from june_pipelines.bots.alerts import alert_sensors
from june_pipelines.bots.resources import platform_clients

pytestmark = pytest.mark.asyncio(loop_scope="function")
OPS_CHAT = -100123
PARTITION = "smollm2|humaneval"
PASSWORD = "hunter2-db-password"
SENSORS = {s.name: s for s in alert_sensors}


@pytest.fixture
def ops_resources(api, monkeypatch):
    """The resources the bots' defs bind, resolved from the environment as a deployment would."""
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", api.base_url)
    monkeypatch.setenv("JUNE_ALERT_TELEGRAM_CHAT_ID", str(OPS_CHAT))
    monkeypatch.setenv("JUNE_WEBSERVER_URL", "http://dagster.example:3000/")
    return {"telegram_ops": platform_clients()["telegram_ops"]}


def tick(sensor: dg.SensorDefinition, instance, resources, cursor, definitions=None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources,
                                 definitions=definitions) as context:
        return sensor.evaluate_tick(context)


@dg.op
def load_weights() -> None:
    raise RuntimeError(f"cannot reach postgresql://june:{PASSWORD}@db:5432/june (bot{TOKEN})\nsecond line")


@dg.op
def fine() -> None:
    pass


@dg.job(tags={"dagster/partition": PARTITION})
def broken_job() -> None:
    load_weights()


@dg.job
def healthy_job() -> None:
    fine()


async def test_one_message_per_failed_run_none_for_successes(api, ops_resources):
    sensor = SENSORS["telegram_run_failure_alert"]
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED  # on only where an ops chat is configured
    instance = dg.DagsterInstance.ephemeral()
    first = await asyncio.to_thread(tick, sensor, instance, ops_resources, None)  # starts from now
    await asyncio.to_thread(healthy_job.execute_in_process, instance=instance)
    failed = await asyncio.to_thread(broken_job.execute_in_process, instance=instance, raise_on_error=False)
    await asyncio.to_thread(healthy_job.execute_in_process, instance=instance)
    second = await asyncio.to_thread(tick, sensor, instance, ops_resources, first.cursor)
    third = await asyncio.to_thread(tick, sensor, instance, ops_resources, second.cursor)
    assert not failed.success and third.cursor == second.cursor
    (message,) = api.sent("sendMessage")
    assert int(message.params["chat_id"]) == OPS_CHAT
    text = message.params["text"]
    assert "job: broken_job" in text and f"partition: {PARTITION}" in text
    assert "failed: step load_weights: RuntimeError: cannot reach postgresql://june:***@db:5432/june" in text
    assert f"http://dagster.example:3000/runs/{failed.run_id}" in text
    assert PASSWORD not in text and TOKEN not in text and TOKEN.split(":")[1] not in text
    assert "second line" not in text


REGRESSION = {"passed": True}


@dg.asset
def pass_at_k_tiny() -> float:
    return 0.2


@dg.asset_check(asset=pass_at_k_tiny, name="pass_at_k_regression")
def pass_at_k_regression() -> dg.AssetCheckResult:
    passed = REGRESSION["passed"]
    return dg.AssetCheckResult(
        passed=passed, metadata={"pass@1": 0.2, "baseline": 0.4},
        description=None if passed else f"pass@1 fell from 0.40 to 0.20 (baseline read with {TOKEN})",
    )


@dg.asset_check(asset=pass_at_k_tiny, name="rows_present")
def rows_present() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False)  # fails, but is not the regression gate


async def test_one_message_per_failed_regression_check(api, ops_resources):
    sensor = SENSORS["telegram_regression_alert"]
    definitions = dg.Definitions(assets=[pass_at_k_tiny], asset_checks=[pass_at_k_regression, rows_present],
                                 sensors=[sensor])
    instance = dg.DagsterInstance.ephemeral()

    def materialize() -> dg.ExecuteInProcessResult:
        return dg.materialize([pass_at_k_tiny, pass_at_k_regression, rows_present], instance=instance,
                              tags={"dagster/partition/model": "smollm2", "dagster/partition/benchmark": "humaneval"})

    REGRESSION["passed"] = False
    await asyncio.to_thread(materialize)  # before the sensor's first tick: not reported
    first = await asyncio.to_thread(tick, sensor, instance, ops_resources, None, definitions)
    REGRESSION["passed"] = True
    await asyncio.to_thread(materialize)
    REGRESSION["passed"] = False
    failing = await asyncio.to_thread(materialize)
    second = await asyncio.to_thread(tick, sensor, instance, ops_resources, first.cursor, definitions)
    await asyncio.to_thread(tick, sensor, instance, ops_resources, second.cursor, definitions)
    assert failing.success  # a failed check does not fail the run: a run-failure sensor would miss it
    (message,) = api.sent("sendMessage")
    text = message.params["text"]
    assert text.startswith("June: regression check failed")
    assert "check: pass_at_k_regression on pass_at_k_tiny" in text and "pass@1 fell from 0.40 to 0.20" in text
    assert "partition: benchmark" not in text and "humaneval" in text
    assert f"/runs/{failing.run_id}" in text and TOKEN not in text


@dg.asset
def pass_at_k_gated() -> float:
    return 0.1


@dg.asset_check(asset=pass_at_k_gated, name="pass_at_k_regression", blocking=True)
def gated_regression() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="pass@1 fell from 0.40 to 0.10")


async def test_a_run_failed_by_the_blocking_regression_gate_is_reported_once(api, ops_resources):
    """The gate fails its run: the regression alert says so, the run-failure alert stays quiet."""
    definitions = dg.Definitions(assets=[pass_at_k_gated], asset_checks=[gated_regression])
    instance = dg.DagsterInstance.ephemeral()
    run_failure, regression = SENSORS["telegram_run_failure_alert"], SENSORS["telegram_regression_alert"]
    cursors = [(await asyncio.to_thread(tick, s, instance, ops_resources, None, definitions)).cursor
               for s in (run_failure, regression)]
    failed = await asyncio.to_thread(dg.materialize, [pass_at_k_gated, gated_regression], instance=instance,
                                     raise_on_error=False)
    for sensor, cursor in zip((run_failure, regression), cursors, strict=True):
        await asyncio.to_thread(tick, sensor, instance, ops_resources, cursor, definitions)
    assert not failed.success
    (message,) = api.sent("sendMessage")
    assert message.params["text"].startswith("June: regression check failed")
    assert "pass@1 fell from 0.40 to 0.10" in message.params["text"]


async def test_discord_alerts_go_through_the_discord_client_resource(monkeypatch):
    """The same alert text through discord.py's REST client (Discord's servers replaced at its HTTP boundary)."""
    import discord
    from test_discord import ALICE, BOT, message_payload

    requests: list[tuple[str, str, dict | None]] = []

    async def request(self, route, **kwargs):
        requests.append((route.method, route.path, kwargs.get("json")))
        if route.path == "/users/@me":
            return BOT
        if route.path == "/oauth2/applications/@me":
            return {"id": BOT["id"], "name": "june", "description": "", "icon": None, "bot_public": False,
                    "bot_require_code_grant": False, "owner": ALICE, "verify_key": "k", "flags": 0}
        if route.method == "GET" and route.path == "/channels/{channel_id}":
            return {"id": "777", "type": 1, "recipients": [ALICE], "last_message_id": None}
        if route.method == "POST" and route.path.endswith("/messages"):
            return message_payload("9001", BOT, (kwargs.get("json") or {}).get("content") or "")
        return None

    monkeypatch.setattr(discord.http.HTTPClient, "request", request)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "discord-secret-token-value")
    monkeypatch.setenv("JUNE_ALERT_DISCORD_CHANNEL_ID", "777")
    ops = platform_clients()["discord_ops"]
    sensor = SENSORS["discord_run_failure_alert"]
    instance = dg.DagsterInstance.ephemeral()
    first = await asyncio.to_thread(tick, sensor, instance, {"discord_ops": ops}, None)
    failed = await asyncio.to_thread(broken_job.execute_in_process, instance=instance, raise_on_error=False)
    await asyncio.to_thread(tick, sensor, instance, {"discord_ops": ops}, first.cursor)
    (posted,) = [body for method, path, body in requests if method == "POST" and path.endswith("/messages")]
    assert posted["content"].startswith("June: run failed") and f"/runs/{failed.run_id}" in posted["content"]
    assert PASSWORD not in posted["content"] and TOKEN not in posted["content"]
