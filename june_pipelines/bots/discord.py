"""The Discord transport (discord.py 2): voice-message attachments and text, in DMs and allowed channels.

The conversation flow is `core.GatewayCore`'s. discord.py cannot send a native voice message, so
a spoken reply goes out as an OGG/Opus file attached to the first text part; text is split at
2000 characters. The `message_content` intent is required (enable it for the bot in the Discord
developer portal).

discord.py parses gateway events in its websocket reader; an exception there (a payload it cannot
handle) would end the client. `guard_parsers` makes every parser log such a payload once, without
its content, count it and go on.

Configuration: see `settings.GatewayConfig` and docs/VOICE.md (DISCORD_* variables).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from june_pipelines.bots.common import split_text
from june_pipelines.bots.core import Gateway, Incoming, Media, PlatformAdapter
from june_pipelines.bots.core import send_reply as _send
from june_pipelines.bots.download import download_capped
from june_pipelines.bots.inbox import Inbox, InboxItem
from june_pipelines.bots.redaction import register_secret
from june_pipelines.bots.settings import GatewayConfig

if TYPE_CHECKING:
    import discord

    from june_pipelines.bots.metrics import GatewayMetrics
    from june_pipelines.voice.pipeline import VoicePipeline

log = logging.getLogger("june.bots.discord")
PLATFORM = "discord"


@dataclass
class DiscordConfig(GatewayConfig):
    platform: str = PLATFORM


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


def guard_parsers(client: discord.Client, on_bad_payload: Callable[[str], None]) -> None:
    """Wrap discord.py's event parsers so that one payload it cannot handle is skipped, not fatal.

    `ConnectionState.parsers` is the table the websocket reader dispatches from (shared by
    reference), so wrapping its entries before connecting covers every event.
    """
    parsers: dict[str, Callable[[Any], Any]] = client._connection.parsers  # noqa: SLF001 - no public hook

    def guarded(event: str, parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def run(data: Any) -> Any:
            try:
                return parse(data)
            except Exception as exc:
                # Once, and without the payload: it carries users' messages.
                log.warning("skipping a Discord %s payload discord.py cannot handle (%s)", event, type(exc).__name__)
                on_bad_payload(event)
                return None

        return run

    for event, parse in list(parsers.items()):
        parsers[event] = guarded(event, parse)


class DiscordAdapter(PlatformAdapter):
    platform = PLATFORM
    voice_kind = "file"
    voice_carries_text = True

    def __init__(self, client: Any = None) -> None:
        self.client = client  # discord.Client, to find channels of messages not seen live
        self._channels: dict[str, Any] = {}

    def remember(self, channel: Any) -> None:
        self._channels[str(channel.id)] = channel

    async def channel(self, chat_id: str) -> Any:
        if chat_id in self._channels:
            return self._channels[chat_id]
        if self.client is None:
            raise RuntimeError(f"no Discord client to reach channel {chat_id}")
        channel = self.client.get_channel(int(chat_id))
        if channel is None:
            channel = await self.client.fetch_channel(int(chat_id))
        self.remember(channel)
        return channel

    def split(self, text: str) -> list[str]:
        return split_text(text, self.limits.text_chars) or [""]

    @staticmethod
    def _attachment(item: InboxItem) -> dict[str, Any] | None:
        for att in item.payload.get("attachments") or []:
            if isinstance(att, dict) and (att.get("voice") or str(att.get("content_type") or "").startswith("audio/")):
                return att
        return None

    def media(self, item: InboxItem) -> Media | None:
        att = self._attachment(item)
        if att is None or not att.get("url"):
            return None
        size = att.get("size")
        return Media(str(att["url"]), size if isinstance(size, int) else None)

    def text(self, item: InboxItem) -> str:
        return str(item.payload.get("content") or "")

    async def download(self, media: Media, max_bytes: int) -> bytes:
        return await download_capped(media.ref, max_bytes, self.limits.download_mb)

    @staticmethod
    def _reference(item: InboxItem, reply: bool) -> Any:
        import discord

        if not reply:
            return None
        return discord.MessageReference(message_id=int(item.message_id), channel_id=int(item.chat_id),
                                        fail_if_not_exists=False)

    async def send_text(self, item: InboxItem, text: str, reply: bool) -> str:
        channel = await self.channel(item.chat_id)
        msg = await channel.send(content=text or None, reference=self._reference(item, reply), mention_author=False)
        return str(msg.id)

    async def send_voice(self, item: InboxItem, audio: bytes, audio_s: float, reply: bool, text: str | None) -> str:
        import discord

        channel = await self.channel(item.chat_id)
        file = discord.File(io.BytesIO(audio), filename="reply.ogg", description="spoken reply")
        msg = await channel.send(content=text or None, file=file, reference=self._reference(item, reply),
                                 mention_author=False)
        return str(msg.id)

    async def chat_action(self, item: InboxItem, voice: bool) -> None:
        channel = await self.channel(item.chat_id)
        await channel.typing()  # awaited once: "typing..." for 10 s

    async def post(self, chat_id: str, text: str) -> str:
        """A message to a channel outside any conversation (alerts)."""
        channel = await self.channel(chat_id)
        msg = await channel.send(content=text)
        return str(msg.id)


@contextlib.asynccontextmanager
async def rest_adapter(token: str) -> AsyncIterator[DiscordAdapter]:
    """An adapter for use outside the gateway (a Dagster run): log in over REST only, then close."""
    import discord

    register_secret(token)
    client = discord.Client(intents=discord.Intents.none())
    await client.login(token)
    try:
        yield DiscordAdapter(client)
    finally:
        await client.close()


async def send_reply(
    channel: Any, inbox: Inbox, item: InboxItem, text: str, audio: bytes | None = None, audio_s: float = 0.0,
    tag: str = "",
) -> None:
    """Send a reply to a stored message in `channel` (see `core.send_reply`)."""
    adapter = DiscordAdapter()
    adapter.remember(channel)
    await _send(adapter, inbox, item, text, audio, audio_s, tag)


class DiscordGateway(Gateway[DiscordAdapter]):
    """The discord.py client in front of the shared `GatewayCore`."""

    def __init__(
        self, config: GatewayConfig, pipeline: VoicePipeline, inbox: Inbox, metrics: GatewayMetrics | None = None
    ) -> None:
        super().__init__(config, DiscordAdapter(), pipeline, inbox, metrics)
        self.client: discord.Client | None = None
        self.bot_user_id: int | None = None

    def build_client(self) -> discord.Client:
        import discord

        intents = discord.Intents.default()
        intents.message_content = True
        intents.dm_messages = True
        client = discord.Client(intents=intents)
        guard_parsers(client, lambda event: self.core.metrics.bad_update())

        @client.event
        async def on_ready() -> None:
            self.bot_user_id = client.user.id if client.user else None
            log.info("connected to Discord as %s", client.user)
            await self.recover(client)

        @client.event
        async def on_message(message: discord.Message) -> None:
            await self.handle_message(message)

        self.client = client
        self.adapter.client = client
        return client

    def _connection_problem(self) -> str | None:
        """Connected to Discord's gateway?"""
        client = self.client
        if client is None or client.is_closed() or not client.is_ready():
            return "not connected to Discord"
        return None

    def run(self) -> None:  # pragma: no cover - needs Discord
        self.build_client().run(self.config.token, log_handler=None)

    async def recover(self, client: Any) -> None:
        """Pick up what a previous process left unanswered, then keep sweeping."""
        self.adapter.client = client
        await self._start_sweeping()

    async def stop(self) -> None:
        self._stop_sweeping()
        await self.core.wait_idle()

    def _served_channel(self, message: discord.Message) -> bool:
        import discord

        return isinstance(message.channel, discord.DMChannel) or str(message.channel.id) in self.config.allowed_channels

    def _incoming(self, message: discord.Message) -> Incoming | None:
        """The message as the core sees it; None for messages that are not for June."""
        if message.author.bot or (self.bot_user_id is not None and message.author.id == self.bot_user_id):
            return None
        if not self._served_channel(message):
            return None
        att = voice_attachment(message)
        if att is None and not message.content.strip():
            return None
        self.adapter.remember(message.channel)
        return Incoming(str(message.id), str(message.channel.id), str(message.author.id),
                        "voice" if att else "text", message_payload(message))

    async def handle_message(self, message: discord.Message) -> None:
        try:
            incoming = self._incoming(message)
        except Exception as exc:  # discord.py parsed it, but fields June needs are missing or malformed
            log.warning("skipping a Discord message June cannot handle (%s)", type(exc).__name__)
            self.core.metrics.bad_update()
            return
        if incoming is not None:
            await self.core.spawn(self.core.handle(incoming))
