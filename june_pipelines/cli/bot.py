"""`june bot telegram|discord|inbox`: run the chat gateways (see docs/VOICE.md)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and Telegram URLs contain the bot token: keep them out.
    for noisy in ("httpx", "httpcore", "telegram.ext.Updater", "discord.http"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _pipeline(memory_path: Path | None):  # noqa: ANN202
    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.resources import default_resources
    from june_pipelines.voice.pipeline import build_pipeline
    from june_pipelines.voice.resources import STTResource, TTSResource

    res = default_resources()
    log = logging.getLogger("june.bots")
    log.info("loading models (STT, TTS, LLM) and keeping them warm")
    pipeline = build_pipeline(
        res.get("stt") or STTResource(), res.get("tts") or TTSResource(), res["llm"], res.get("sandbox"),
        memory=ConversationMemory(memory_path) if memory_path else None,
    )
    log.info("models ready")
    return pipeline


_handoff = click.option(
    "--handoff", type=click.Choice(["inline", "dagster"]), default="inline", show_default=True,
    help="Agentic turns that run code: answer here (inline), or hand them to the bot sensor's Dagster runs.",
)
_inbox = click.option("--inbox", "inbox_path", type=click.Path(dir_okay=False, path_type=Path),
                      help="Inbox SQLite file (default: JUNE_INBOX_DB or JUNE_HOME/bots/inbox.sqlite).")
_memory = click.option("--memory", "memory_path", type=click.Path(dir_okay=False, path_type=Path),
                       help="Conversation memory SQLite file (default: JUNE_HOME/voice/conversations.sqlite).")
_verbose = click.option("-v", "--verbose", is_flag=True)


@click.group("bot")
def bot_group() -> None:
    """Chat gateways: voice and text on Telegram and Discord."""


@bot_group.command("telegram")
@_handoff
@_inbox
@_memory
@_verbose
def telegram_command(handoff: str, inbox_path: Path | None, memory_path: Path | None, verbose: bool) -> None:
    """Run the Telegram bot (long polling). Needs TELEGRAM_BOT_TOKEN; see docs/VOICE.md."""
    from june_pipelines.bots.inbox import Inbox
    from june_pipelines.bots.telegram import TelegramConfig, TelegramGateway

    _setup_logging(verbose)
    config = TelegramConfig.from_env(handoff=handoff)
    TelegramGateway(config, _pipeline(memory_path), Inbox(inbox_path)).run()


@bot_group.command("discord")
@_handoff
@_inbox
@_memory
@_verbose
def discord_command(handoff: str, inbox_path: Path | None, memory_path: Path | None, verbose: bool) -> None:
    """Run the Discord bot. Needs DISCORD_BOT_TOKEN and the message_content intent; see docs/VOICE.md."""
    from june_pipelines.bots.discord import DiscordConfig, DiscordGateway
    from june_pipelines.bots.inbox import Inbox

    _setup_logging(verbose)
    config = DiscordConfig.from_env(handoff=handoff)
    DiscordGateway(config, _pipeline(memory_path), Inbox(inbox_path)).run()


@bot_group.command("inbox")
@_inbox
@click.option("--limit", default=20, show_default=True)
def inbox_command(inbox_path: Path | None, limit: int) -> None:
    """Show the latest inbox messages and what was sent for them."""
    from june_pipelines.bots.inbox import Inbox

    inbox = Inbox(inbox_path)
    for item in inbox.items()[-limit:]:
        sent = [h["part"] for h in inbox.history(item.platform, item.message_id)]
        click.echo(json.dumps({"platform": item.platform, "message_id": item.message_id, "kind": item.kind,
                               "status": item.status, "attempts": item.attempts, "sent": sent}))
