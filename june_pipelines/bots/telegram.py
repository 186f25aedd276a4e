"""The Telegram gateway (python-telegram-bot 22): voice, audio and text in; a voice note plus text out.

Live turns are answered here with the shared models (kept warm in this process). With
`handoff="dagster"`, agentic turns that need code execution are written to the inbox as
`handed_over`; the bot sensor launches a Dagster run that answers through `send_reply`.

Configuration (environment): TELEGRAM_BOT_TOKEN (required), TELEGRAM_API_BASE_URL (e.g.
`http://127.0.0.1:8081/bot`; downloads then use `.../file/bot`), TELEGRAM_ALLOWED_USERS
(comma-separated user ids; unset = everyone), TELEGRAM_REFUSAL (`reply` or `ignore`),
TELEGRAM_RATE_LIMIT (`N/SECONDS` per chat, default `6/60`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from june_pipelines.bots.common import ChatRateLimiter, allowed_users_from_env, split_html, visible_length
from june_pipelines.bots.inbox import Inbox, InboxItem
from june_pipelines.voice.audio import AudioLimits

if TYPE_CHECKING:
    from telegram import Bot, Update
    from telegram.ext import Application, ContextTypes

    from june_pipelines.voice.pipeline import TurnResult, VoicePipeline

log = logging.getLogger("june.bots.telegram")
PLATFORM = "telegram"
TEXT_LIMIT = 4096
VOICE_LIMIT = 1_000_000
REFUSAL = "Sorry, this is a private assistant and you are not on its list of users."
HANDOFF_ACK = "Working on it: I'll run that and send you the answer shortly."
FAILURE = "Sorry, something went wrong while answering. Please try again."


def file_base_url(base_url: str) -> str:
    """`http://host:8081/bot` -> `http://host:8081/file/bot` (the Bot API's download root)."""
    root = base_url.rstrip("/")
    if root.endswith("/bot"):
        return root[: -len("/bot")] + "/file/bot"
    return root + "/file/bot"


@dataclass
class TelegramConfig:
    token: str = field(repr=False)
    base_url: str | None = None
    allowed_users: frozenset[str] | None = None
    refusal: str = "reply"  # reply | ignore
    rate_limit: tuple[int, float] = (6, 60.0)
    limits: AudioLimits = AudioLimits()
    handoff: str = "inline"  # inline | dagster
    action_interval_s: float = 4.0  # a chat action shows for 5 s
    poll_interval_s: float = 0.0
    poll_timeout_s: int = 10

    @classmethod
    def from_env(cls, **overrides: Any) -> TelegramConfig:
        token = os.environ.get("TELEGRAM_BOT_TOKEN", "")
        if not token:
            raise SystemExit("TELEGRAM_BOT_TOKEN is not set (get one from @BotFather)")
        rate = os.environ.get("TELEGRAM_RATE_LIMIT", "6/60")
        n, _, window = rate.partition("/")
        cfg = cls(
            token=token,
            base_url=os.environ.get("TELEGRAM_API_BASE_URL") or None,
            allowed_users=allowed_users_from_env("TELEGRAM_ALLOWED_USERS"),
            refusal=os.environ.get("TELEGRAM_REFUSAL", "reply"),
            rate_limit=(int(n), float(window or 60)),
        )
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        return cfg


def make_bot(config: TelegramConfig) -> Bot:
    from telegram import Bot

    kwargs: dict[str, Any] = {}
    if config.base_url:
        kwargs = {"base_url": config.base_url, "base_file_url": file_base_url(config.base_url)}
    return Bot(config.token, **kwargs)


async def send_reply(
    bot: Bot, inbox: Inbox, item: InboxItem, text: str, audio: bytes | None = None, audio_s: float = 0.0,
    tag: str = "",
) -> None:
    """Send a voice note (if any) then the text, skipping parts this message already got.

    `tag` names a separate reply to the same message (e.g. the "ack" before a handed-over turn).
    """
    from telegram import ReplyParameters

    sent = inbox.already_sent(PLATFORM, item.message_id)
    chat_id = int(item.chat_id)
    reply_to = item.payload.get("message", {}).get("message_id")
    params = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
    if audio and f"{tag}voice" not in sent:
        if len(audio) > VOICE_LIMIT:
            log.warning("voice reply of %d bytes exceeds Telegram's voice-note limit; sending text only", len(audio))
        else:
            msg = await bot.send_voice(
                chat_id, voice=audio, duration=max(1, round(audio_s)), reply_parameters=params, filename="reply.ogg"
            )
            inbox.record_sent(PLATFORM, item.message_id, f"{tag}voice", "voice", chat_id, nbytes=len(audio),
                              audio_s=audio_s, platform_message_id=msg.message_id)
            params = None
    for i, piece in enumerate(split_html(text, TEXT_LIMIT)):
        part = f"{tag}text:{i}"
        if part in sent:
            continue
        msg = await bot.send_message(chat_id, piece, parse_mode="HTML", reply_parameters=params)
        problems = inbox.record_sent(PLATFORM, item.message_id, part, "text", chat_id, text=piece,
                                     parse_mode="HTML", platform_message_id=msg.message_id,
                                     visible_chars=visible_length(piece))
        if problems:
            log.error("message %s part %s broke Telegram's limits: %s", item.message_id, part, problems)
        params = None


class TelegramGateway:
    def __init__(self, config: TelegramConfig, pipeline: VoicePipeline, inbox: Inbox) -> None:
        self.config = config
        self.pipeline = pipeline
        self.inbox = inbox
        self.limiter = ChatRateLimiter(*config.rate_limit)
        self.application: Application | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- wiring --------------------------------------------------------------------------------
    def build_application(self) -> Application:
        from telegram.ext import ApplicationBuilder, CommandHandler, MessageHandler, filters

        builder = ApplicationBuilder().token(self.config.token).concurrent_updates(True)
        if self.config.base_url:
            builder = builder.base_url(self.config.base_url).base_file_url(file_base_url(self.config.base_url))
        builder = builder.post_init(self._post_init)
        app = builder.build()
        app.add_handler(CommandHandler("start", self.on_start))
        app.add_handler(MessageHandler((filters.VOICE | filters.AUDIO | filters.TEXT) & ~filters.COMMAND, self.on_message))
        app.add_error_handler(self.on_error)
        self.application = app
        return app

    async def _post_init(self, app: Application) -> None:
        """After a restart: reprocess what a previous process left unanswered (once)."""
        items = self.inbox.recover(PLATFORM)
        if items:
            log.info("recovering %d unanswered message(s) from the inbox", len(items))
        for item in items:
            self._spawn(self.process(item, app.bot))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

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
        await app.shutdown()

    def run(self) -> None:  # pragma: no cover - blocks until interrupted
        app = self.build_application()
        app.run_polling(poll_interval=self.config.poll_interval_s, timeout=self.config.poll_timeout_s)

    # -- handlers ------------------------------------------------------------------------------
    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_chat and self._allowed(update):
            await context.bot.send_message(update.effective_chat.id, "Hi! Send me a voice message or text, and I'll answer.")

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling an update: %s", context.error, exc_info=context.error)

    def _allowed(self, update: Update) -> bool:
        user = update.effective_user
        return self.config.allowed_users is None or (user is not None and str(user.id) in self.config.allowed_users)

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg, chat, user = update.effective_message, update.effective_chat, update.effective_user
        if msg is None or chat is None:
            return
        kind = "voice" if msg.voice else "audio" if msg.audio else "text"
        item = self.inbox.receive(
            PLATFORM, f"{chat.id}:{msg.message_id}", chat.id, user.id if user else "", kind, update.to_dict()
        )
        if not item.is_new:
            log.info("message %s delivered again (status %s): not answering twice", item.message_id, item.status)
            return
        if not self._allowed(update):
            log.info("refusing user %s", user.id if user else "?")
            if self.config.refusal == "reply":
                await context.bot.send_message(chat.id, REFUSAL)
                self.inbox.record_sent(PLATFORM, item.message_id, "refusal", "text", chat.id, text=REFUSAL)
            self.inbox.finish(PLATFORM, item.message_id, "refused")
            return
        ok, wait_s = self.limiter.allow(chat.id)
        if not ok:
            if self.limiter.should_warn(chat.id):
                note = f"You're sending messages faster than I can answer. Please wait {wait_s:.0f} s."
                await context.bot.send_message(chat.id, note)
                self.inbox.record_sent(PLATFORM, item.message_id, "rate_limit", "text", chat.id, text=note)
            self.inbox.finish(PLATFORM, item.message_id, "rate_limited")
            return
        task = asyncio.ensure_future(self.process(item, context.bot))
        self._tasks.add(task)
        try:
            await task
        finally:
            self._tasks.discard(task)

    # -- one turn ------------------------------------------------------------------------------
    async def _keep_action(self, bot: Bot, chat_id: int, action: str) -> None:
        while True:
            with contextlib.suppress(Exception):
                await bot.send_chat_action(chat_id, action)
            await asyncio.sleep(self.config.action_interval_s)

    async def process(self, item: InboxItem, bot: Bot) -> None:
        from telegram import Message
        from telegram.constants import ChatAction

        from june_pipelines.voice.audio import AudioError

        if not self.inbox.claim(PLATFORM, item.message_id):
            return
        msg = Message.de_json(item.payload.get("message") or {}, bot)
        is_voice = bool(msg.voice or msg.audio)
        action = ChatAction.RECORD_VOICE if is_voice else ChatAction.TYPING
        keeper = asyncio.get_running_loop().create_task(self._keep_action(bot, int(item.chat_id), action))
        user_key = f"{PLATFORM}:{item.user_id}"
        try:
            audio: bytes | None = None
            result: TurnResult | None = None
            if is_voice:
                media = msg.voice or msg.audio
                try:
                    self.config.limits.check_size(media.file_size or 1)
                    tg_file = await bot.get_file(media.file_id)
                    audio = bytes(await tg_file.download_as_bytearray())
                except AudioError as exc:
                    await send_reply(bot, self.inbox, item, str(exc))
                    self.inbox.finish(PLATFORM, item.message_id, "done", {"error": type(exc).__name__})
                    return
            result = await asyncio.to_thread(
                self.pipeline.turn,
                user_key,
                audio=audio,
                text=None if is_voice else (msg.text or ""),
                want_audio=is_voice,
                platform=PLATFORM,
                message_id=item.message_id,
                allow_handoff=self.config.handoff == "dagster",
            )
            if result.handoff:
                self.inbox.hand_over(PLATFORM, item.message_id, result.transcript, {"input_kind": result.input_kind})
                await send_reply(bot, self.inbox, item, HANDOFF_ACK, tag="ack:")
                return
            await send_reply(bot, self.inbox, item, result.reply, result.audio, result.audio_duration_s)
            self.inbox.finish(PLATFORM, item.message_id, "done", result.summary())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed turn gets an apology, not a silent drop
            log.exception("turn %s failed", item.message_id)
            with contextlib.suppress(Exception):
                await send_reply(bot, self.inbox, item, FAILURE)
            self.inbox.finish(PLATFORM, item.message_id, "failed", {"error": repr(exc)})
        finally:
            keeper.cancel()
