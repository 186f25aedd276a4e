"""The bot sensor (one run request per handed-over message, never twice) and the hand-over path end
to end: Telegram gateway -> inbox -> sensor -> Dagster run -> reply through the Bot API."""

from __future__ import annotations

import asyncio
import time

import dagster as dg
import pytest
from fake_telegram_api import TOKEN

from june_pipelines.bots.inbox import Inbox
from june_pipelines.bots.resources import TelegramClientResource
from june_pipelines.bots.sensor import InboxResource, bot_sensor, turn_jobs


def hand_over(inbox: Inbox, platform: str, mid: str, text: str = "run code") -> None:
    inbox.receive(platform, mid, 5, 5, "text", {"message": {"message_id": 1}})
    assert inbox.claim(platform, mid)
    assert inbox.hand_over(platform, mid, text)


def tick(instance, path, cursor=None):
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"inbox": InboxResource(path=str(path))})
    return bot_sensor(ctx)


def test_one_run_request_per_handed_over_message(tmp_path):
    db = tmp_path / "inbox.sqlite"
    inbox = Inbox(db)
    instance = dg.DagsterInstance.ephemeral()
    assert isinstance(tick(instance, db), dg.SkipReason)
    hand_over(inbox, "telegram", "5:1")
    hand_over(inbox, "discord", "77")
    inbox.receive("telegram", "5:2", 5, 5, "text", {})  # a live turn: not the sensor's business
    first = tick(instance, db)
    assert [r.run_key for r in first.run_requests] == ["telegram:5:1", "discord:77"]
    assert [r.job_name for r in first.run_requests] == ["bot_agentic_turn_telegram", "bot_agentic_turn_discord"]
    for r in first.run_requests:
        assert r.tags["dagster/priority"] == "10"
        assert r.run_config["ops"]["agentic_turn"]["config"]["message_id"] in ("5:1", "77")
    again = tick(instance, db, cursor=first.cursor)
    assert isinstance(again, dg.SkipReason)  # the cursor moved past both
    hand_over(inbox, "telegram", "5:3")
    third = tick(instance, db, cursor=first.cursor)
    assert [r.run_key for r in third.run_requests] == ["telegram:5:3"]
    assert not inbox.hand_over("telegram", "5:3", "x")  # a message is handed over only once


def test_the_llm_step_is_in_the_gpu_pool_and_outranks_evaluations():
    for platform, job in turn_jobs.items():
        op = job.graph.node_defs[0]
        assert op.pool == "gpu"
        assert job.tags["dagster/priority"] == "10"
        assert platform in op.required_resource_keys  # each job needs only its own platform's client
        assert ({"telegram", "discord"} - {platform}).isdisjoint(op.required_resource_keys)


@pytest.mark.asyncio(loop_scope="function")
async def test_handed_over_turn_is_answered_by_a_dagster_run(api, make_pipeline, smollm2_client, tmp_path, monkeypatch):
    from june_pipelines.bots.core import HANDOFF_ACK
    from june_pipelines.bots.telegram import TelegramConfig, TelegramGateway
    from june_pipelines.inference.resources import LlamaCppLLMResource
    from june_pipelines.sandboxes.resources import ProcessSandboxResource
    from june_pipelines.voice.resources import ConversationMemoryResource, TTSResource

    db = tmp_path / "inbox.sqlite"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)  # resolved by the run, through dg.EnvVar
    config = TelegramConfig(token=TOKEN, base_url=api.base_url, handoff="dagster", poll_timeout_s=1)
    gw = TelegramGateway(config, make_pipeline(), Inbox(db))
    await gw.start()
    try:
        await api.send_text_update(111, "Run this python code:\n```python\nprint(sum(range(10)))\n```")
        await api.wait_for(lambda: api.sent("sendMessage", 111))
    finally:
        await gw.stop()
    assert api.sent("sendMessage", 111)[0].params["text"] == HANDOFF_ACK
    (item,) = Inbox(db).items()
    assert item.status == "handed_over"

    instance = dg.DagsterInstance.ephemeral()
    started = time.perf_counter()
    (request,) = tick(instance, db).run_requests
    resources = {
        "llm": LlamaCppLLMResource(), "sandbox": ProcessSandboxResource(), "tts": TTSResource(),
        "inbox": InboxResource(path=str(db)), "memory": ConversationMemoryResource(path=str(tmp_path / "m.sqlite")),
        "telegram": TelegramClientResource(token=dg.EnvVar("TELEGRAM_BOT_TOKEN"), base_url=api.base_url),
    }
    (bot_turn_job,) = (job for job in turn_jobs.values() if job.name == request.job_name)
    result = await asyncio.to_thread(
        bot_turn_job.execute_in_process, run_config=request.run_config, resources=resources, instance=instance,
        tags=request.tags,
    )
    elapsed = time.perf_counter() - started
    assert result.success
    answer = api.sent("sendMessage", 111)[-1].params["text"]
    assert "45" in answer and "printed" in answer
    assert len(api.sent("sendMessage", 111)) == 2
    (item,) = Inbox(db).items()
    assert item.status == "done" and item.result["decision"] == "agentic"
    assert elapsed < 60
    # A second run for the same message does nothing (exactly one run wins the message).
    again = await asyncio.to_thread(
        bot_turn_job.execute_in_process, run_config=request.run_config, resources=resources, instance=instance
    )
    assert again.success and len(api.sent("sendMessage", 111)) == 2


@pytest.mark.asyncio(loop_scope="function")
async def test_a_turn_whose_model_is_down_is_retried_then_becomes_a_dead_letter(tmp_path, api):
    """The run's step retries (LIVE_TURN) with the message handed back each time; when the inbox's
    attempts are spent the message is a dead letter with the reason, not left `running` forever."""
    from june_pipelines.bots.core import FAILURE
    from june_pipelines.cli.runs import free_port
    from june_pipelines.inference.resources import OpenAICompatLLMResource
    from june_pipelines.sandboxes.resources import ProcessSandboxResource
    from june_pipelines.voice.resources import ConversationMemoryResource, TTSResource

    db = tmp_path / "inbox.sqlite"
    hand_over(Inbox(db), "telegram", "5:1", "Run this python code: print(1)")
    instance = dg.DagsterInstance.ephemeral()
    (request,) = tick(instance, db).run_requests
    down = OpenAICompatLLMResource(base_url=f"http://127.0.0.1:{free_port()}/v1", timeout_s=2, max_retries=0)
    resources = {
        "llm": down, "sandbox": ProcessSandboxResource(), "tts": TTSResource(),
        "inbox": InboxResource(path=str(db)), "memory": ConversationMemoryResource(path=str(tmp_path / "m.sqlite")),
        "telegram": TelegramClientResource(token=TOKEN, base_url=api.base_url),
    }
    job = turn_jobs["telegram"]
    result = await asyncio.to_thread(job.execute_in_process, run_config=request.run_config, resources=resources,
                                     instance=instance, raise_on_error=False)
    assert not result.success
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retries) == 1  # claimed once by the gateway, so the run had two of the three attempts
    (item,) = Inbox(db).dead_letters("telegram")
    assert item.message_id == "5:1" and item.attempts == 3 and item.last_error
    (apology,) = api.sent("sendMessage", 5)  # once, on the last attempt: the user is told
    assert apology.params["text"] == FAILURE
