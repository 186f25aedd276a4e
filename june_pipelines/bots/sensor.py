"""The bot sensor: hands agentic turns from the inbox to Dagster runs.

Live turns never wait for Dagster (a sensor tick plus a run launch takes seconds): the gateways
answer them with the shared resources. A gateway started with `--handoff dagster` marks agentic
turns that need code execution `handed_over`; this sensor launches one run per such message
(`run_key` = platform message id, so never twice; the cursor is the hand-over sequence number),
with a higher `dagster/priority` than evaluations. The run's LLM step is in the `gpu` pool, and
it answers through the platform's API.
"""


import asyncio
import os
import time
from typing import Any

import dagster as dg
from pydantic import Field

from june_pipelines.inference.resources import LLMResource
from june_pipelines.sandboxes.resources import SandboxResource
from june_pipelines.voice.resources import ConversationMemoryResource, TTSResource

LIVE_PRIORITY = "10"  # evaluations run at the default priority 0


class InboxResource(dg.ConfigurableResource):
    """The gateways' persistent inbox (SQLite). Default: JUNE_INBOX_DB, else JUNE_HOME/bots/inbox.sqlite."""

    path: str | None = Field(default=None)

    def open(self):  # noqa: ANN201
        from june_pipelines.bots.inbox import Inbox

        return Inbox(self.path)


class BotTurnConfig(dg.Config):
    platform: str = Field(description="telegram | discord")
    message_id: str = Field(description="The inbox key of the handed-over message")


def deliver(item: Any, text: str, audio: bytes | None, audio_s: float, inbox: Any) -> None:
    """Send a reply through the message's platform, recording what was sent."""
    if item.platform == "telegram":
        from june_pipelines.bots.telegram import TelegramConfig, make_bot, send_reply

        token = os.environ.get("TELEGRAM_BOT_TOKEN", "")
        if not token:
            raise dg.Failure("TELEGRAM_BOT_TOKEN is not set in the run's environment")
        config = TelegramConfig(token=token, base_url=os.environ.get("TELEGRAM_API_BASE_URL") or None)

        async def send() -> None:
            async with make_bot(config) as bot:
                await send_reply(bot, inbox, item, text, audio, audio_s)

        asyncio.run(send())
    elif item.platform == "discord":
        from june_pipelines.bots.discord import send_via_rest

        token = os.environ.get("DISCORD_BOT_TOKEN", "")
        if not token:
            raise dg.Failure("DISCORD_BOT_TOKEN is not set in the run's environment")
        asyncio.run(send_via_rest(token, item, text, audio, audio_s, inbox))
    else:
        raise dg.Failure(f"unknown platform {item.platform!r}")


@dg.op(pool="gpu", tags={"june/kind": "conversation"})
def agentic_turn(
    context: dg.OpExecutionContext,
    config: BotTurnConfig,
    llm: LLMResource,
    sandbox: SandboxResource,
    tts: TTSResource,
    inbox: InboxResource,
    memory: ConversationMemoryResource,
) -> dg.Output[dict[str, Any]]:
    """Answer one handed-over turn with the agentic loop (tools, the sandbox) and send the answer."""
    from june_pipelines.voice.pipeline import build_pipeline

    box = inbox.open()
    t0 = time.perf_counter()
    if not box.start_run(config.platform, config.message_id):
        item = box.get(config.platform, config.message_id)
        context.log.warning(f"message {config.message_id} is not waiting for a run (status {item and item.status})")
        return dg.Output({"skipped": True}, metadata={"status": item.status if item else "missing"})
    item = box.get(config.platform, config.message_id)
    assert item is not None
    pipeline = build_pipeline(None, tts, llm, sandbox, memory=memory.open())
    result = pipeline.turn(
        f"{item.platform}:{item.user_id}", text=item.transcript, want_audio=item.kind != "text",
        platform=item.platform, message_id=item.message_id, input_kind=item.kind,
    )
    try:
        deliver(item, result.reply, result.audio, result.audio_duration_s, box)
    except Exception as exc:
        box.finish(item.platform, item.message_id, "failed", {"error": repr(exc)})
        raise
    box.finish(item.platform, item.message_id, "done", result.summary())
    waited_s = time.time() - item.updated_at
    summary = result.summary()
    return dg.Output(
        summary,
        metadata={
            "transcript": item.transcript,
            "reply": result.reply,
            "decision": result.decision,
            "tools": ", ".join(result.tools),
            "latency_ms": dg.MetadataValue.json(summary["latency_ms"]),
            "run_ms": round((time.perf_counter() - t0) * 1000, 1),
            "handed_over_to_start_s": round(waited_s, 2),
        },
    )


@dg.job(name="bot_agentic_turn", tags={"dagster/priority": LIVE_PRIORITY, "june/kind": "conversation"})
def bot_turn_job() -> None:
    agentic_turn()


@dg.sensor(job=bot_turn_job, minimum_interval_seconds=2, default_status=dg.DefaultSensorStatus.RUNNING)
def bot_sensor(context: dg.SensorEvaluationContext, inbox: InboxResource) -> dg.SensorResult | dg.SkipReason:
    """One run per handed-over message; the cursor is the last hand-over sequence number seen."""
    cursor = int(context.cursor or 0)
    found = inbox.open().handed_over_after(cursor)
    if not found:
        return dg.SkipReason("no turns handed over")
    requests = [
        dg.RunRequest(
            run_key=item.run_key,
            run_config={"ops": {"agentic_turn": {"config": {"platform": item.platform, "message_id": item.message_id}}}},
            tags={"dagster/priority": LIVE_PRIORITY, "june/kind": "conversation", "june/platform": item.platform},
        )
        for _, item in found
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(found[-1][0]))


defs = dg.Definitions(
    jobs=[bot_turn_job],
    sensors=[bot_sensor],
    resources={"inbox": InboxResource()},
)
