"""`june bot telegram|discord|inbox|dlq`: run the chat gateways and look after their inbox (docs/VOICE.md).

Library errors become exit codes here: 2 for a bad option or setting (one line naming it), 1 when
the platform or the database refuses at run time.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from june_pipelines.bots.inbox import Inbox
    from june_pipelines.voice.pipeline import VoicePipeline

# Libraries that log every request at INFO (URLs, which for Telegram carry the token: redacted anyway).
_CHATTY = ("httpx", "httpcore", "telegram.ext.Updater", "telegram.Bot", "telegram.ext.ExtBot", "discord.http",
           "discord.gateway")


def _setup_logging(verbose: bool, secrets: tuple[str, ...] = ()) -> None:
    from june_pipelines.bots import redaction

    redaction.install()  # before anything logs: every record of every logger is redacted
    for secret in secrets:
        redaction.register_secret(secret)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        for name in _CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)


def _fail(message: str, code: int) -> None:
    from june_pipelines.bots.redaction import redact

    click.echo(f"error: {redact(message)}", err=True)
    sys.exit(code)


@contextmanager
def _errors_to_exit_codes() -> Iterator[None]:
    from june_pipelines.bots.settings import BotConfigError
    from june_pipelines.db import DatabaseConfigError

    try:
        yield
    except (BotConfigError, DatabaseConfigError) as exc:
        _fail(str(exc), 2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the platform refused (bad token, network): one line, not a traceback
        if type(exc).__module__.split(".")[0] not in ("telegram", "discord", "psycopg2", "sqlite3", "httpx"):
            raise
        _fail(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}", 1)


def _pipeline(platform: str, memory_path: Path | None) -> VoicePipeline:
    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.bots.settings import LIMITS
    from june_pipelines.resources import default_resources
    from june_pipelines.voice.audio import AudioLimits
    from june_pipelines.voice.pipeline import build_pipeline
    from june_pipelines.voice.resources import STTResource, TTSResource

    res = default_resources()
    log = logging.getLogger("june.bots")
    log.info("loading models (STT, TTS, LLM) and keeping them warm")
    pipeline = build_pipeline(
        res.get("stt") or STTResource(), res.get("tts") or TTSResource(), res["llm"], res.get("sandbox"),
        memory=ConversationMemory(memory_path) if memory_path else None,
        limits=AudioLimits(max_bytes=LIMITS[platform].download_bytes),
    )
    log.info("models ready")
    return pipeline


def _open_inbox(inbox_path: Path | None) -> Inbox:
    from june_pipelines.bots.inbox import Inbox

    inbox = Inbox(inbox_path)
    logging.getLogger("june.bots").info("inbox: %s %s", inbox.backend, inbox.location)
    return inbox


def _serve(
    platform: str, token_var: str, hint: str, make_gateway: Callable[..., Any], handoff: str,
    inbox_path: Path | None, memory_path: Path | None, verbose: bool, metrics_port: int | None,
) -> None:
    from june_pipelines.bots.metrics import MetricsServer
    from june_pipelines.bots.settings import GatewayConfig, required_secret
    from june_pipelines.bots.settings import metrics_port as resolve_port

    with _errors_to_exit_codes():
        token = required_secret(token_var, hint)
        _setup_logging(verbose, (token,))
        port = resolve_port(metrics_port)
        config = GatewayConfig.from_env(token, platform=platform, handoff=handoff)
        with _open_inbox(inbox_path) as inbox:
            pipeline = _pipeline(platform, memory_path)
            gateway = make_gateway(config, pipeline, inbox)
            server = None
            if port is not None:
                server = MetricsServer(gateway.metrics.registry, gateway.healthy, port).start()
            try:
                gateway.run()
            finally:
                if server is not None:
                    server.stop()
                if pipeline.memory is not None:
                    pipeline.memory.close()


_handoff = click.option(
    "--handoff", type=click.Choice(["inline", "dagster"]), default="inline", show_default=True,
    help="Agentic turns that run code: answer here (inline), or hand them to the bot sensor's Dagster runs.",
)
_inbox = click.option("--inbox", "inbox_path", type=click.Path(dir_okay=False, path_type=Path),
                      help="Inbox SQLite file (default: PostgreSQL when JUNE_POSTGRES_URL is set, else "
                           "JUNE_INBOX_DB or JUNE_HOME/bots/inbox.sqlite).")
_memory = click.option("--memory", "memory_path", type=click.Path(dir_okay=False, path_type=Path),
                       help="Conversation memory SQLite file (default: JUNE_HOME/voice/conversations.sqlite).")
_verbose = click.option("-v", "--verbose", is_flag=True, help="Debug logs of June and its libraries (tokens redacted).")
_metrics = click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
                        help="Serve /metrics and /healthz on this port (default: JUNE_METRICS_PORT; off when unset).")


@click.group("bot")
def bot_group() -> None:
    """Chat gateways: voice and text on Telegram and Discord."""


@bot_group.command("telegram")
@_handoff
@_inbox
@_memory
@_verbose
@_metrics
def telegram_command(handoff: str, inbox_path: Path | None, memory_path: Path | None, verbose: bool,
                     metrics_port: int | None) -> None:
    """Run the Telegram bot (long polling). Needs TELEGRAM_BOT_TOKEN; see docs/VOICE.md."""
    from june_pipelines.bots.telegram import TelegramGateway

    _serve("telegram", "TELEGRAM_BOT_TOKEN", "get one from @BotFather", TelegramGateway, handoff, inbox_path,
           memory_path, verbose, metrics_port)


@bot_group.command("discord")
@_handoff
@_inbox
@_memory
@_verbose
@_metrics
def discord_command(handoff: str, inbox_path: Path | None, memory_path: Path | None, verbose: bool,
                    metrics_port: int | None) -> None:
    """Run the Discord bot. Needs DISCORD_BOT_TOKEN and the message_content intent; see docs/VOICE.md."""
    from june_pipelines.bots.discord import DiscordGateway

    _serve("discord", "DISCORD_BOT_TOKEN", "from the Discord developer portal", DiscordGateway, handoff, inbox_path,
           memory_path, verbose, metrics_port)


@bot_group.command("inbox")
@_inbox
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
def inbox_command(inbox_path: Path | None, limit: int) -> None:
    """Show the latest inbox messages and what was sent for them."""
    with _errors_to_exit_codes(), _open_inbox(inbox_path) as inbox:
        for item in inbox.items()[-limit:]:
            sent = [h["part"] for h in inbox.history(item.platform, item.message_id)]
            click.echo(json.dumps({"id": item.id, "platform": item.platform, "message_id": item.message_id,
                                   "kind": item.kind, "status": item.status, "attempts": item.attempts, "sent": sent}))


@bot_group.group("dlq")
def dlq_group() -> None:
    """Dead letters: messages whose turn kept failing."""


@dlq_group.command("list")
@_inbox
@click.option("--platform", type=click.Choice(["telegram", "discord"]), default=None)
def dlq_list(inbox_path: Path | None, platform: str | None) -> None:
    """One JSON line per dead letter: id, platform, message, attempts and the reason."""
    with _errors_to_exit_codes(), _open_inbox(inbox_path) as inbox:
        for item in inbox.dead_letters(platform):
            click.echo(json.dumps({"id": item.id, "platform": item.platform, "message_id": item.message_id,
                                   "user_id": item.user_id, "kind": item.kind, "attempts": item.attempts,
                                   "reason": item.last_error, "updated_at": item.updated_at}))


@dlq_group.command("retry")
@_inbox
@click.argument("row_id", metavar="ID", type=click.IntRange(min=1))
def dlq_retry(inbox_path: Path | None, row_id: int) -> None:
    """Queue dead letter ID again (fresh attempts); a running gateway of its platform answers it."""
    with _errors_to_exit_codes(), _open_inbox(inbox_path) as inbox:
        item = inbox.retry(row_id)
        if item is None:
            _fail(f"no dead letter with id {row_id} (see `june bot dlq list`)", 2)
            return
        click.echo(json.dumps({"id": item.id, "platform": item.platform, "message_id": item.message_id,
                               "status": item.status}))
