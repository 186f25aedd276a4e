"""Dead letters (a turn that keeps failing, `june bot dlq list|retry`) and the gateway's `/metrics`
and `/healthz` after real turns: the real python-telegram-bot against the fake Bot API."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from click.testing import CliRunner
from fake_telegram_api import TOKEN
from prometheus_client.parser import text_string_to_metric_families

from june_pipelines.bots.core import FAILURE
from june_pipelines.bots.inbox import FINAL, Inbox
from june_pipelines.bots.metrics import MetricsServer
from june_pipelines.bots.telegram import TelegramConfig, TelegramGateway
from june_pipelines.cli import main as june

pytestmark = pytest.mark.asyncio(loop_scope="function")
ALICE, BOB, MALLORY = 111, 222, 333


def cli_args(target: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """`june bot dlq` reaches the same inbox: --inbox for a file, JUNE_POSTGRES_URL for PostgreSQL."""
    if "path" in target:
        return ["--inbox", target["path"]], {}
    return [], {"JUNE_POSTGRES_URL": target["url"]}


async def test_a_turn_that_keeps_failing_becomes_a_dead_letter_and_can_be_retried(
    api, make_pipeline, inbox_target, monkeypatch
):
    real = make_pipeline()

    class Flaky:  # the model server is down until `healthy` is set
        memory = real.memory
        healthy = False
        calls = 0

        def turn(self, *args, **kwargs):
            Flaky.calls += 1
            if not Flaky.healthy:
                raise RuntimeError("model server down at postgresql://june:hunter2@gpu-host/llm")
            return real.turn(*args, **kwargs)

    inbox = Inbox(inbox_target.get("path"), url=inbox_target.get("url"), max_attempts=3)
    config = TelegramConfig(token=TOKEN, base_url=api.base_url, poll_timeout_s=1, retry_backoff_s=0.05,
                            sweep_interval_s=0.1)
    gw = TelegramGateway(config, Flaky(), inbox)
    await gw.start()
    try:
        await api.send_text_update(ALICE, "What is 6 times 7?")
        await api.wait_for(lambda: api.sent("sendMessage", ALICE))
        (item,) = inbox.items()
        assert item.status == "dead_letter" and item.attempts == 3 and Flaky.calls == 3
        assert item.last_error.startswith("RuntimeError: model server down")
        assert [c.params["text"] for c in api.sent("sendMessage", ALICE)] == [FAILURE]  # one apology, no retry spam

        options, env = cli_args(inbox_target)
        listed = CliRunner().invoke(june, ["bot", "dlq", "list", *options], env=env)
        assert listed.exit_code == 0, listed.output
        (line,) = [json.loads(x) for x in listed.output.splitlines() if x.startswith("{")]
        assert line["id"] == item.id and line["attempts"] == 3 and "model server down" in line["reason"]
        assert "hunter2" not in listed.output and "hunter2" not in item.last_error

        Flaky.healthy = True
        retried = await asyncio.to_thread(CliRunner().invoke, june, ["bot", "dlq", "retry", str(item.id), *options],
                                          env=env)
        assert retried.exit_code == 0, retried.output
        assert json.loads(retried.output.splitlines()[-1])["status"] == "queued"
        await api.wait_for(lambda: len(api.sent("sendMessage", ALICE)) == 2)
        again = await asyncio.to_thread(CliRunner().invoke, june, ["bot", "dlq", "retry", str(item.id), *options],
                                        env=env)
        assert again.exit_code == 2 and "no dead letter" in again.output
    finally:
        await gw.stop()
        inbox.close()
    assert "42" in api.sent("sendMessage", ALICE)[-1].params["text"]
    with Inbox(inbox_target.get("path"), url=inbox_target.get("url")) as check:
        (done,) = check.items()
        assert done.status == "done" and check.dead_letters() == []
    sample = gw.metrics.registry.get_sample_value
    assert sample("june_bot_turns_total", {"platform": "telegram", "outcome": "failed"}) == 2
    assert sample("june_bot_turns_total", {"platform": "telegram", "outcome": "dead_letter"}) == 1
    assert sample("june_bot_turns_total", {"platform": "telegram", "outcome": "answered"}) == 1


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_metrics_and_health_after_real_turns(api, make_pipeline, spoken_question, tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite")
    config = TelegramConfig(token=TOKEN, base_url=api.base_url, poll_timeout_s=1, rate_limit=(1, 60.0),
                            allowed_users=frozenset({str(ALICE), str(BOB)}))
    gw = TelegramGateway(config, make_pipeline(), inbox)
    server = MetricsServer(gw.metrics.registry, gw.healthy, port=0, host="127.0.0.1").start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with httpx.AsyncClient() as http:
            assert (await http.get(base + "/healthz")).status_code == 503  # not polling yet
            before = samples((await http.get(base + "/metrics")).text)
            await gw.start()
            await api.wait_for(lambda: gw.healthy()[0])
            assert (await http.get(base + "/healthz")).status_code == 200
            await api.send_voice_update(ALICE, spoken_question)
            await api.send_text_update(BOB, "What is 6 times 7?")
            await api.send_text_update(BOB, "And 7 times 8?")  # over BOB's limit of 1 a minute
            await api.send_text_update(MALLORY, "hello")  # not on the list
            await api.wait_for(lambda: [i.status in FINAL for i in inbox.items()] == [True] * 4)
            await gw.wait_idle()
            response = await http.get(base + "/metrics")
            assert response.headers["content-type"].startswith("text/plain")
            after = samples(response.text)
            inbox.close()  # the database goes away while the gateway polls
            unreachable = await http.get(base + "/healthz")
            await gw.stop()
            stopped = await http.get(base + "/healthz")
    finally:
        server.stop()

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted({"platform": "telegram", **labels}.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("june_bot_turns_total", outcome="answered") == 2
    assert moved("june_bot_refusals_total") == 1 and moved("june_bot_rate_limited_total") == 1
    assert moved("june_bot_stage_latency_seconds_count", stage="total") == 2
    assert moved("june_bot_stage_latency_seconds_count", stage="llm") == 2
    for stage in ("decode", "stt", "tts", "encode"):  # only the voice turn has these stages
        assert moved("june_bot_stage_latency_seconds_count", stage=stage) == 1, stage
    assert moved("june_bot_stage_latency_seconds_sum", stage="total") > 0
    assert moved("june_bot_stage_latency_seconds_bucket", stage="total", le="+Inf") == 2
    assert after[("june_bot_inbox_depth", (("platform", "telegram"),))] == 0
    assert ("june_bot_inbox_oldest_pending_age_seconds", (("platform", "telegram"),)) in after
    assert unreachable.status_code == 503 and "inbox unreachable" in unreachable.text
    assert stopped.status_code == 503 and "not connected" in stopped.text
