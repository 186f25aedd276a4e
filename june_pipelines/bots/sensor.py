"""The bot sensor: hands agentic turns from the inbox to Dagster runs; and the bots domain's `defs`.

Live turns never wait for Dagster (a sensor tick plus a run launch takes seconds): the gateways
answer them with the shared resources. A gateway started with `--handoff dagster` marks agentic
turns that need code execution `handed_over`; this sensor launches one run per such message
(`run_key` = platform message id, so never twice; the cursor is the hand-over sequence number),
with a higher `dagster/priority` than evaluations. The run's LLM step is in the `gpu` pool, and
it answers through the platform's client resource (`telegram` or `discord`). There is one job per
platform, so that each run needs only its own platform's token. A turn that fails (the model or the
sandbox away) is retried by the step's `LIVE_TURN` policy, the message handed back for it; out of
the inbox's attempts, the message becomes a dead letter (`june bot dlq`) and the run fails, which
the run-failure alert reports.
"""

import time
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from june_pipelines.bots.alerts import alert_sensors
from june_pipelines.bots.resources import (
    ChatClientResource,
    DiscordClientResource,
    InboxResource,
    TelegramClientResource,
    platform_clients,
)
from june_pipelines.inference.resources import LLMResource
from june_pipelines.retries import LIVE_TURN
from june_pipelines.sandboxes.resources import SandboxResource
from june_pipelines.voice.resources import ConversationMemoryResource, TTSResource

if TYPE_CHECKING:
    from june_pipelines.bots.inbox import Inbox, InboxItem

__all__ = ["InboxResource", "bot_sensor", "defs", "turn_jobs"]

LIVE_PRIORITY = "10"  # evaluations run at the default priority 0
TURN_TAGS = {"june/kind": "conversation"}


class BotTurnConfig(dg.Config):
    platform: str = Field(description="telegram | discord")
    message_id: str = Field(description="The inbox key of the handed-over message")


def _answer(
    context: dg.OpExecutionContext, config: BotTurnConfig, llm: LLMResource, sandbox: SandboxResource,
    tts: TTSResource, inbox: InboxResource, memory: ConversationMemoryResource, chat: ChatClientResource,
) -> dg.Output[dict[str, Any]]:
    """Answer one handed-over turn with the agentic loop (tools, the sandbox) and send the answer."""
    from june_pipelines.voice.pipeline import build_pipeline

    if config.platform != chat.platform:
        raise dg.Failure(f"message {config.message_id} is from {config.platform}, this job answers {chat.platform}")
    with inbox.open() as box:
        t0 = time.perf_counter()
        if not box.start_run(config.platform, config.message_id):
            item = box.get(config.platform, config.message_id)
            context.log.warning(f"message {config.message_id} is not waiting for a run (status {item and item.status})")
            return dg.Output({"skipped": True}, metadata={"status": item.status if item else "missing"})
        item = box.get(config.platform, config.message_id)
        assert item is not None
        conversation = memory.open()
        try:
            try:
                with build_pipeline(None, tts, llm, sandbox, memory=conversation) as pipeline:
                    result = pipeline.turn(
                        f"{item.platform}:{item.user_id}", text=item.transcript, want_audio=item.kind != "text",
                        platform=item.platform, message_id=item.message_id, input_kind=item.kind,
                    )
            except Exception as exc:  # the model or the sandbox failed: the step's retry, or a dead letter
                status = box.release_run(item.platform, item.message_id, f"{type(exc).__name__}: {exc}"[:500])
                now = status or "no longer this run's"
                context.log.warning(f"the turn for message {item.message_id} failed ({type(exc).__name__});"
                                    f" the message is now {now}")
                if status == "dead_letter":
                    _apologize(context, chat, box, item)
                    raise dg.Failure(f"message {item.message_id} is a dead letter after {item.attempts} attempts:"
                                     f" {type(exc).__name__}", allow_retries=False) from exc
                raise
            try:
                chat.deliver(box, item, result.reply, result.audio, result.audio_duration_s)
            except Exception as exc:
                box.finish(item.platform, item.message_id, "failed", {"error": repr(exc)})
                raise
        finally:
            conversation.close()
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


def _apologize(context: dg.OpExecutionContext, chat: ChatClientResource, box: "Inbox", item: "InboxItem") -> None:
    """Tell the user their message will not be answered (as the gateways do for their dead letters)."""
    from june_pipelines.bots.core import FAILURE

    try:
        chat.deliver(box, item, FAILURE, tag="failure:")
    except Exception as exc:
        context.log.warning(f"could not apologize for message {item.message_id}: {type(exc).__name__}")


@dg.op(pool="gpu", tags=TURN_TAGS, retry_policy=LIVE_TURN)
def telegram_agentic_turn(
    context: dg.OpExecutionContext, config: BotTurnConfig, llm: LLMResource, sandbox: SandboxResource,
    tts: TTSResource, inbox: InboxResource, memory: ConversationMemoryResource, telegram: TelegramClientResource,
) -> dg.Output[dict[str, Any]]:
    """Answer one handed-over Telegram turn (tools, the sandbox) and send the answer."""
    return _answer(context, config, llm, sandbox, tts, inbox, memory, telegram)


@dg.op(pool="gpu", tags=TURN_TAGS, retry_policy=LIVE_TURN)
def discord_agentic_turn(
    context: dg.OpExecutionContext, config: BotTurnConfig, llm: LLMResource, sandbox: SandboxResource,
    tts: TTSResource, inbox: InboxResource, memory: ConversationMemoryResource, discord: DiscordClientResource,
) -> dg.Output[dict[str, Any]]:
    """Answer one handed-over Discord turn (tools, the sandbox) and send the answer."""
    return _answer(context, config, llm, sandbox, tts, inbox, memory, discord)


def _turn_job(platform: str, op: dg.OpDefinition) -> dg.JobDefinition:
    @dg.job(name=f"bot_agentic_turn_{platform}",
            tags={"dagster/priority": LIVE_PRIORITY, **TURN_TAGS, "june/platform": platform})
    def job() -> None:
        op.alias("agentic_turn")()  # one run config shape for both platforms

    return job


turn_jobs: dict[str, dg.JobDefinition] = {
    "telegram": _turn_job("telegram", telegram_agentic_turn),
    "discord": _turn_job("discord", discord_agentic_turn),
}


@dg.sensor(jobs=list(turn_jobs.values()), minimum_interval_seconds=2, default_status=dg.DefaultSensorStatus.RUNNING)
def bot_sensor(context: dg.SensorEvaluationContext, inbox: InboxResource) -> dg.SensorResult | dg.SkipReason:
    """One run per handed-over message; the cursor is the last hand-over sequence number seen."""
    cursor = int(context.cursor or 0)
    with inbox.open() as box:
        found = box.handed_over_after(cursor)
    if not found:
        return dg.SkipReason("no turns handed over")
    requests = []
    for _, item in found:
        job = turn_jobs.get(item.platform)
        if job is None:
            context.log.warning(f"message {item.run_key}: no job answers platform {item.platform!r}")
            continue
        requests.append(dg.RunRequest(
            run_key=item.run_key,
            job_name=job.name,
            run_config={"ops": {"agentic_turn": {"config": {"platform": item.platform,
                                                            "message_id": item.message_id}}}},
            tags={"dagster/priority": LIVE_PRIORITY, **TURN_TAGS, "june/platform": item.platform},
        ))
    return dg.SensorResult(run_requests=requests, cursor=str(found[-1][0]))


# The bots domain: turn jobs, the bot sensor, the ops alerts, and the resources they use.
defs = dg.Definitions(
    jobs=list(turn_jobs.values()),
    sensors=[bot_sensor, *alert_sensors],
    resources=platform_clients(),
)
