"""The Telegram transport (python-telegram-bot 22): voice, audio and text in; a voice note plus text out.

The conversation flow is `core.GatewayCore`'s; this module only adapts it to the Bot API (long
polling, `getFile` + capped download, `sendVoice`, `sendMessage` in HTML mode, chat actions).
With `handoff="dagster"`, agentic turns that need code execution are handed to the bot sensor's
Dagster runs, which answer through `TelegramAdapter` too.

An update python-telegram-bot cannot parse would fail the whole `getUpdates` batch, and polling
would retry the same offset forever; `UpdateFilteringRequest` checks each update first, replaces
a bad one by its bare `update_id` (so the offset moves past it), logs it once without its content
and counts it.

Configuration: see `settings.GatewayConfig` and docs/VOICE.md (TELEGRAM_* variables).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from telegram.request import HTTPXRequest

from june_pipelines.bots.common import split_html, visible_length
from june_pipelines.bots.core import GREETING, Gateway, Incoming, Media, PlatformAdapter
from june_pipelines.bots.core import send_reply as _send
from june_pipelines.bots.download import download_capped, too_large
from june_pipelines.bots.inbox import Inbox, InboxItem
from june_pipelines.bots.redaction import register_secret
from june_pipelines.bots.settings import GatewayConfig

if TYPE_CHECKING:
    from telegram import Bot, Update
    from telegram.ext import Application, ContextTypes

    from june_pipelines.bots.metrics import GatewayMetrics
    from june_pipelines.voice.pipeline import VoicePipeline

log = logging.getLogger("june.bots.telegram")
PLATFORM = "telegram"


def file_base_url(base_url: str) -> str:
    """`http://host:8081/bot` -> `http://host:8081/file/bot` (the Bot API's download root)."""
    root = base_url.rstrip("/")
    if root.endswith("/bot"):
        return root[: -len("/bot")] + "/file/bot"
    return root + "/file/bot"


@dataclass
class TelegramConfig(GatewayConfig):
    platform: str = PLATFORM


def make_bot(token: str, base_url: str | None = None) -> Bot:
    """A Bot API client (use it as `async with make_bot(...) as bot`)."""
    from telegram import Bot

    register_secret(token)
    kwargs: dict[str, Any] = {}
    if base_url:
        kwargs = {"base_url": base_url, "base_file_url": file_base_url(base_url)}
    return Bot(token, **kwargs)


class UpdateFilteringRequest(HTTPXRequest):
    """The `getUpdates` connection: each update is checked before python-telegram-bot parses the batch."""

    def __init__(self, on_bad_update: Callable[[int], None], on_poll: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_bad_update = on_bad_update
        self._on_poll = on_poll

    async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        code, payload = await super().do_request(url, method, *args, **kwargs)
        if not url.endswith("/getUpdates") or code != 200:
            return code, payload
        try:
            answer = json.loads(payload)
        except ValueError:
            return code, payload  # python-telegram-bot reports a body that is not JSON itself
        if isinstance(answer, dict) and answer.get("ok") and isinstance(answer.get("result"), list):
            self._on_poll()
            answer["result"] = [u for update in answer["result"] if (u := self._checked(update)) is not None]
            payload = json.dumps(answer).encode()
        return code, payload

    def _checked(self, update: Any) -> Any:
        from telegram import Update

        try:
            Update.de_json(copy.deepcopy(update), None)
            return update
        except Exception as exc:
            update_id = update.get("update_id") if isinstance(update, dict) else None
            # Once, and without the update's content: it carries users' messages.
            log.warning("skipping update %s: python-telegram-bot cannot parse it (%s)", update_id, type(exc).__name__)
            if not isinstance(update_id, int):
                return None
            self._on_bad_update(update_id)
            return {"update_id": update_id}  # a bare update: acknowledged by the next offset, handled by nobody


class TelegramAdapter(PlatformAdapter):
    platform = PLATFORM
    parse_mode = "HTML"

    def __init__(self, bot: Bot | None) -> None:
        self._bot = bot

    @property
    def bot(self) -> Bot:
        if self._bot is None:
            raise RuntimeError("the Telegram application is not built yet")
        return self._bot

    @bot.setter
    def bot(self, bot: Bot) -> None:
        self._bot = bot

    def split(self, text: str) -> list[str]:
        return split_html(text, self.limits.text_chars)

    def visible_chars(self, piece: str) -> int:
        return visible_length(piece)

    @staticmethod
    def _message(item: InboxItem) -> dict[str, Any]:
        message = item.payload.get("message")
        return message if isinstance(message, dict) else {}

    def media(self, item: InboxItem) -> Media | None:
        message = self._message(item)
        media = message.get("voice") or message.get("audio")
        if not isinstance(media, dict) or "file_id" not in media:
            return None
        size = media.get("file_size")
        return Media(str(media["file_id"]), size if isinstance(size, int) else None)

    def text(self, item: InboxItem) -> str:
        return str(self._message(item).get("text") or "")

    async def download(self, media: Media, max_bytes: int) -> bytes:
        limit_mb = self.limits.download_mb
        tg_file = await self.bot.get_file(media.ref)
        if tg_file.file_size is not None and tg_file.file_size > max_bytes:
            raise too_large(limit_mb)
        if not tg_file.file_path:
            raise RuntimeError("the Bot API returned no file_path for this file")
        local = Path(tg_file.file_path)
        if local.is_absolute() and local.is_file():  # a local Bot API server in --local mode
            if local.stat().st_size > max_bytes:
                raise too_large(limit_mb)
            return local.read_bytes()
        parts = urllib.parse.urlsplit(tg_file.file_path)
        url = urllib.parse.urlunsplit(parts._replace(path=urllib.parse.quote(parts.path)))
        return await download_capped(url, max_bytes, limit_mb)

    def _reply_to(self, item: InboxItem, reply: bool) -> Any:
        from telegram import ReplyParameters

        message_id = self._message(item).get("message_id")
        if not reply or not message_id:
            return None
        return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)

    async def send_text(self, item: InboxItem, text: str, reply: bool) -> str:
        msg = await self.bot.send_message(int(item.chat_id), text, parse_mode=self.parse_mode,
                                          reply_parameters=self._reply_to(item, reply))
        return str(msg.message_id)

    async def send_voice(self, item: InboxItem, audio: bytes, audio_s: float, reply: bool, text: str | None) -> str:
        msg = await self.bot.send_voice(int(item.chat_id), voice=audio, duration=max(1, round(audio_s)),
                                        reply_parameters=self._reply_to(item, reply), filename="reply.ogg")
        return str(msg.message_id)

    async def chat_action(self, item: InboxItem, voice: bool) -> None:
        from telegram.constants import ChatAction

        await self.bot.send_chat_action(int(item.chat_id), ChatAction.RECORD_VOICE if voice else ChatAction.TYPING)

    async def post(self, chat_id: str, text: str) -> str:
        """A message to a chat outside any conversation (alerts)."""
        msg = await self.bot.send_message(int(chat_id), text)
        return str(msg.message_id)


async def send_reply(
    bot: Bot, inbox: Inbox, item: InboxItem, text: str, audio: bytes | None = None, audio_s: float = 0.0,
    tag: str = "",
) -> None:
    """Send a reply to a stored message through `bot` (see `core.send_reply`)."""
    await _send(TelegramAdapter(bot), inbox, item, text, audio, audio_s, tag)


class TelegramGateway(Gateway[TelegramAdapter]):
    """Long polling in front of the shared `GatewayCore`."""

    def __init__(
        self, config: GatewayConfig, pipeline: VoicePipeline, inbox: Inbox, metrics: GatewayMetrics | None = None
    ) -> None:
        super().__init__(config, TelegramAdapter(None), pipeline, inbox, metrics)  # its bot: the application's
        self.application: Application | None = None
        self._last_poll = 0.0

    @property
    def _tasks(self) -> set[asyncio.Task[Any]]:
        """The turns in flight."""
        return self.core.tasks

    # -- wiring --------------------------------------------------------------------------------
    def build_application(self) -> Application:
        from telegram.ext import ApplicationBuilder, CommandHandler, MessageHandler, filters

        builder = ApplicationBuilder().token(self.config.token).concurrent_updates(True)
        if self.config.base_url:
            builder = builder.base_url(self.config.base_url).base_file_url(file_base_url(self.config.base_url))
        builder = builder.get_updates_request(
            UpdateFilteringRequest(self._bad_update, self._polled, connection_pool_size=1)
        )
        builder = builder.post_init(self._post_init).post_stop(self._post_stop)
        app = builder.build()
        self.adapter.bot = app.bot
        app.add_handler(CommandHandler("start", self.on_start))
        message_filter = (filters.VOICE | filters.AUDIO | filters.TEXT) & ~filters.COMMAND
        app.add_handler(MessageHandler(message_filter, self.on_message))
        app.add_error_handler(self.on_error)
        self.application = app
        return app

    def _bad_update(self, update_id: int) -> None:
        self.core.metrics.bad_update()

    def _polled(self) -> None:
        self._last_poll = time.monotonic()

    def _connection_problem(self) -> str | None:
        """Polling answered lately?"""
        app = self.application
        polling = bool(app and app.updater and app.updater.running)
        recent = time.monotonic() - self._last_poll < self.config.poll_timeout_s + 30
        return None if polling and recent else "not connected to the Bot API"

    async def _post_init(self, app: Application) -> None:
        await self._start_sweeping()

    async def _post_stop(self, app: Application) -> None:
        self._stop_sweeping()

    async def wait_idle(self) -> None:
        await self.core.wait_idle()

    async def start(self) -> None:
        """Start polling inside a running event loop (tests, embedding); `run()` blocks instead."""
        app = self.application or self.build_application()
        await app.initialize()
        await self._post_init(app)
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=self.config.poll_interval_s, timeout=self.config.poll_timeout_s)

    async def stop(self) -> None:
        app = self.application
        if app is None:
            return
        if app.updater and app.updater.running:
            await app.updater.stop()
        await self.wait_idle()
        if app.running:
            await app.stop()
        await self._post_stop(app)
        await app.shutdown()

    def run(self) -> None:  # pragma: no cover - blocks until interrupted (tested through `june bot telegram`)
        app = self.application or self.build_application()
        app.run_polling(poll_interval=self.config.poll_interval_s, timeout=self.config.poll_timeout_s)

    # -- handlers ------------------------------------------------------------------------------
    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, user = update.effective_chat, update.effective_user
        if chat and self.core.allowed(str(user.id) if user else ""):
            await context.bot.send_message(chat.id, GREETING)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling an update: %s", context.error, exc_info=context.error)

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg, chat, user = update.effective_message, update.effective_chat, update.effective_user
        if msg is None or chat is None:
            return
        kind = "voice" if msg.voice else "audio" if msg.audio else "text"
        incoming = Incoming(f"{chat.id}:{msg.message_id}", str(chat.id), str(user.id) if user else "", kind,
                            update.to_dict())
        # Tracked with the turns, so that stop() waits for it and a crash can be simulated by cancelling it.
        await self.core.spawn(self.core.handle(incoming))
