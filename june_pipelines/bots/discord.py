"""The Discord gateway (discord.py 2): voice-message attachments and text, in DMs and allowed channels.

discord.py cannot send a native voice message, so a spoken reply goes out as an OGG/Opus file
attached to the first text part; text is split at 2000 characters. The `message_content`
intent is required (enable it for the bot in the Discord developer portal).

Configuration (environment): DISCORD_BOT_TOKEN (required), DISCORD_ALLOWED_USERS (comma-separated
user ids; unset = everyone), DISCORD_ALLOWED_CHANNELS (channel ids served besides DMs),
DISCORD_REFUSAL (`reply` or `ignore`), DISCORD_RATE_LIMIT (`N/SECONDS` per channel).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from june_pipelines.bots.common import ChatRateLimiter, allowed_users_from_env, parse_user_ids, split_text
from june_pipelines.bots.inbox import Inbox, InboxItem
from june_pipelines.voice.audio import AudioError, AudioLimits

if TYPE_CHECKING:
    import discord

    from june_pipelines.voice.pipeline import VoicePipeline

log = logging.getLogger("june.bots.discord")
PLATFORM = "discord"
TEXT_LIMIT = 2000
FILE_LIMIT = 10 * 1024 * 1024
REFUSAL = "Sorry, this is a private assistant and you are not on its list of users."
HANDOFF_ACK = "Working on it: I'll run that and send you the answer shortly."
FAILURE = "Sorry, something went wrong while answering. Please try again."


@dataclass
class DiscordConfig:
    token: str = field(repr=False)
    allowed_users: frozenset[str] | None = None
    allowed_channels: frozenset[str] = frozenset()
    refusal: str = "reply"
    rate_limit: tuple[int, float] = (6, 60.0)
    limits: AudioLimits = AudioLimits(max_bytes=25 * 1024 * 1024)
    handoff: str = "inline"

    @classmethod
    def from_env(cls, **overrides: Any) -> DiscordConfig:
        token = os.environ.get("DISCORD_BOT_TOKEN", "")
        if not token:
            raise SystemExit("DISCORD_BOT_TOKEN is not set")
        n, _, window = os.environ.get("DISCORD_RATE_LIMIT", "6/60").partition("/")
        cfg = cls(
            token=token,
            allowed_users=allowed_users_from_env("DISCORD_ALLOWED_USERS"),
            allowed_channels=parse_user_ids(os.environ.get("DISCORD_ALLOWED_CHANNELS")) or frozenset(),
            refusal=os.environ.get("DISCORD_REFUSAL", "reply"),
            rate_limit=(int(n), float(window or 60)),
        )
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        return cfg


def voice_attachment(message: discord.Message) -> discord.Attachment | None:
    for att in message.attachments:
        if att.is_voice_message() or (att.content_type or "").startswith("audio/"):
            return att
    return None


def message_payload(message: discord.Message) -> dict[str, Any]:
    return {
        "channel_id": str(message.channel.id),
        "content": message.content,
        "attachments": [
            {"id": str(a.id), "filename": a.filename, "size": a.size, "url": a.url, "content_type": a.content_type,
             "voice": a.is_voice_message()}
            for a in message.attachments
        ],
    }


async def send_reply(
    channel: discord.abc.Messageable, inbox: Inbox, item: InboxItem, text: str, audio: bytes | None = None,
    audio_s: float = 0.0, reference: Any = None, tag: str = "",
) -> None:
    """Text split at 2000 characters; the OGG reply rides on the first part. Skips parts already sent."""
    import discord

    sent = inbox.already_sent(PLATFORM, item.message_id)
    pieces = split_text(text, TEXT_LIMIT) or [""]
    for i, piece in enumerate(pieces):
        part = f"{tag}text:{i}"
        if part in sent:
            continue
        file = None
        if i == 0 and audio and f"{tag}voice" not in sent and len(audio) <= FILE_LIMIT:
            file = discord.File(io.BytesIO(audio), filename="reply.ogg", description="spoken reply")
        msg = await channel.send(content=piece or None, file=file, reference=reference if i == 0 else None,
                                 mention_author=False)
        if file is not None:
            inbox.record_sent(PLATFORM, item.message_id, f"{tag}voice", "file", item.chat_id, nbytes=len(audio or b""),
                              audio_s=audio_s, platform_message_id=msg.id)
        problems = inbox.record_sent(PLATFORM, item.message_id, part, "text", item.chat_id, text=piece,
                                     platform_message_id=msg.id)
        if problems:
            log.error("message %s part %s broke Discord's limits: %s", item.message_id, part, problems)


class DiscordGateway:
    def __init__(self, config: DiscordConfig, pipeline: VoicePipeline, inbox: Inbox) -> None:
        self.config = config
        self.pipeline = pipeline
        self.inbox = inbox
        self.limiter = ChatRateLimiter(*config.rate_limit)
        self.client: discord.Client | None = None
        self.bot_user_id: int | None = None

    def build_client(self) -> discord.Client:
        import discord

        intents = discord.Intents.default()
        intents.message_content = True
        intents.dm_messages = True
        client = discord.Client(intents=intents)

        @client.event
        async def on_ready() -> None:
            self.bot_user_id = client.user.id if client.user else None
            log.info("connected to Discord as %s", client.user)
            await self.recover(client)

        @client.event
        async def on_message(message: discord.Message) -> None:
            await self.handle_message(message)

        self.client = client
        return client

    def run(self) -> None:  # pragma: no cover - needs Discord
        self.build_client().run(self.config.token, log_handler=None)

    async def recover(self, client: discord.Client) -> None:
        for item in self.inbox.recover(PLATFORM):
            try:
                channel = client.get_channel(int(item.chat_id)) or await client.fetch_channel(int(item.chat_id))
                message = await channel.fetch_message(int(item.message_id))  # type: ignore[union-attr]
            except Exception as exc:  # noqa: BLE001
                log.warning("cannot recover message %s: %s", item.message_id, exc)
                self.inbox.finish(PLATFORM, item.message_id, "failed", {"error": repr(exc)})
                continue
            asyncio.get_running_loop().create_task(self.process(item, message))

    def _served_channel(self, message: discord.Message) -> bool:
        import discord

        return isinstance(message.channel, discord.DMChannel) or str(message.channel.id) in self.config.allowed_channels

    async def handle_message(self, message: discord.Message) -> None:
        if message.author.bot or (self.bot_user_id is not None and message.author.id == self.bot_user_id):
            return
        if not self._served_channel(message):
            return
        att = voice_attachment(message)
        if att is None and not message.content.strip():
            return
        item = self.inbox.receive(
            PLATFORM, str(message.id), message.channel.id, message.author.id, "voice" if att else "text",
            message_payload(message),
        )
        if not item.is_new:
            return
        users = self.config.allowed_users
        if users is not None and str(message.author.id) not in users:
            if self.config.refusal == "reply":
                await message.channel.send(REFUSAL)
                self.inbox.record_sent(PLATFORM, item.message_id, "refusal", "text", item.chat_id, text=REFUSAL)
            self.inbox.finish(PLATFORM, item.message_id, "refused")
            return
        ok, wait_s = self.limiter.allow(message.channel.id)
        if not ok:
            if self.limiter.should_warn(message.channel.id):
                note = f"You're sending messages faster than I can answer. Please wait {wait_s:.0f} s."
                await message.channel.send(note)
                self.inbox.record_sent(PLATFORM, item.message_id, "rate_limit", "text", item.chat_id, text=note)
            self.inbox.finish(PLATFORM, item.message_id, "rate_limited")
            return
        await self.process(item, message)

    async def process(self, item: InboxItem, message: discord.Message) -> None:
        if not self.inbox.claim(PLATFORM, item.message_id):
            return
        att = voice_attachment(message)
        try:
            async with message.channel.typing():
                audio = None
                if att is not None:
                    try:
                        self.config.limits.check_size(att.size or 1)
                        audio = await att.read()
                    except AudioError as exc:
                        await send_reply(message.channel, self.inbox, item, str(exc), reference=message)
                        self.inbox.finish(PLATFORM, item.message_id, "done", {"error": type(exc).__name__})
                        return
                result = await asyncio.to_thread(
                    self.pipeline.turn, f"{PLATFORM}:{item.user_id}", audio=audio,
                    text=None if audio is not None else message.content, want_audio=audio is not None,
                    platform=PLATFORM, message_id=item.message_id, allow_handoff=self.config.handoff == "dagster",
                )
            if result.handoff:
                self.inbox.hand_over(PLATFORM, item.message_id, result.transcript, {"input_kind": result.input_kind})
                await send_reply(message.channel, self.inbox, item, HANDOFF_ACK, reference=message, tag="ack:")
                return
            await send_reply(message.channel, self.inbox, item, result.reply, result.audio, result.audio_duration_s,
                             reference=message)
            self.inbox.finish(PLATFORM, item.message_id, "done", result.summary())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            log.exception("turn %s failed", item.message_id)
            try:
                await send_reply(message.channel, self.inbox, item, FAILURE)
            except Exception:  # noqa: BLE001
                pass
            self.inbox.finish(PLATFORM, item.message_id, "failed", {"error": repr(exc)})


async def send_via_rest(token: str, item: InboxItem, text: str, audio: bytes | None, audio_s: float, inbox: Inbox) -> None:
    """Answer a message from outside the gateway (a Dagster run): log in over REST only, send, close."""
    import discord

    client = discord.Client(intents=discord.Intents.none())
    await client.login(token)
    try:
        channel = await client.fetch_channel(int(item.chat_id))
        ref = discord.MessageReference(message_id=int(item.message_id), channel_id=int(item.chat_id), fail_if_not_exists=False)
        await send_reply(channel, inbox, item, text, audio, audio_s, reference=ref)  # type: ignore[arg-type]
    finally:
        await client.close()
