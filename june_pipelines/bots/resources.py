"""The bots' Dagster resources: the inbox, the platform clients, and the ops chats alerts go to.

Tokens and chat ids are `dg.EnvVar`s in the bots' `defs`, resolved when a run or a sensor tick
uses them, never at load time (the UI shows the variable's name, not its value). Each platform
has its own resource key, so a deployment that only uses Telegram never needs DISCORD_BOT_TOKEN.
Nothing heavy is imported until a client is used.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

import dagster as dg
from pydantic import Field

from june_pipelines.bots.settings import telegram_api_base_url

if TYPE_CHECKING:
    from june_pipelines.bots.core import PlatformAdapter
    from june_pipelines.bots.inbox import Inbox, InboxItem


class InboxResource(dg.ConfigurableResource):
    """The gateways' persistent inbox: PostgreSQL when JUNE_POSTGRES_URL (or `url`) is set, else SQLite
    (`path`, else JUNE_INBOX_DB, else JUNE_HOME/bots/inbox.sqlite). `open()` is a context manager."""

    path: str | None = Field(default=None, description="SQLite file (wins over PostgreSQL when set)")
    url: str | None = Field(default=None, description="postgresql://... (default: JUNE_POSTGRES_URL)")

    def open(self) -> Inbox:
        from june_pipelines.bots.inbox import Inbox

        return Inbox(self.path, url=self.url)


class ChatClientResource(dg.ConfigurableResource):
    """A chat platform's client, outside the gateway: answer a stored message, post to a chat."""

    platform: ClassVar[str] = ""

    def adapter(self) -> contextlib.AbstractAsyncContextManager[PlatformAdapter]:
        raise NotImplementedError

    def deliver(
        self, inbox: Inbox, item: InboxItem, text: str, audio: bytes | None = None, audio_s: float = 0.0,
        tag: str = "",
    ) -> None:
        """Send a reply to `item`, recording each part in the inbox (parts already sent are skipped;
        `tag` names parts of another kind, e.g. the apology for a dead letter)."""
        from june_pipelines.bots.core import send_reply

        async def send() -> None:
            async with self.adapter() as adapter:
                await send_reply(adapter, inbox, item, text, audio, audio_s, tag=tag)

        asyncio.run(send())

    def post(self, chat_id: str, text: str) -> str:
        """Post `text` to a chat, with every secret masked (this client's token included); the message id."""
        from june_pipelines.bots.redaction import redact, register_secret

        register_secret(getattr(self, "token", None))
        text = redact(text)

        async def send() -> str:
            async with self.adapter() as adapter:
                return await adapter.post(chat_id, text)

        return asyncio.run(send())


class TelegramClientResource(ChatClientResource):
    """The Telegram Bot API client (python-telegram-bot)."""

    platform: ClassVar[str] = "telegram"
    token: str = Field(description="The bot token (TELEGRAM_BOT_TOKEN)")
    base_url: str | None = Field(default=None, description="A local Bot API server (default: TELEGRAM_API_BASE_URL)")

    @contextlib.asynccontextmanager
    async def _adapter(self) -> AsyncIterator[PlatformAdapter]:
        from june_pipelines.bots.telegram import TelegramAdapter, make_bot

        async with make_bot(self.token, self.base_url or telegram_api_base_url()) as bot:
            yield TelegramAdapter(bot)

    def adapter(self) -> contextlib.AbstractAsyncContextManager[PlatformAdapter]:
        return self._adapter()


class DiscordClientResource(ChatClientResource):
    """The Discord REST client (discord.py, logged in without the gateway connection)."""

    platform: ClassVar[str] = "discord"
    token: str = Field(description="The bot token (DISCORD_BOT_TOKEN)")

    def adapter(self) -> contextlib.AbstractAsyncContextManager[PlatformAdapter]:
        from june_pipelines.bots.discord import rest_adapter

        return rest_adapter(self.token)


class OpsChatResource(dg.ConfigurableResource):
    """Where alerts go: one chat on one platform, and the Dagster UI that alert links point at."""

    client: ChatClientResource
    chat_id: str = Field(description="Telegram chat id or Discord channel id of the ops chat")
    webserver_url: str = Field(default="http://127.0.0.1:3000", description="The Dagster UI (JUNE_WEBSERVER_URL)")

    def post(self, text: str) -> str:
        return self.client.post(self.chat_id, text)

    def run_url(self, run_id: str) -> str:
        return f"{self.webserver_url.rstrip('/')}/runs/{run_id}"


def platform_clients() -> dict[str, Any]:
    """The resources the bots' `defs` bind: every secret an `EnvVar`, resolved at run time."""
    from june_pipelines.bots.settings import webserver_url

    telegram = TelegramClientResource(token=dg.EnvVar("TELEGRAM_BOT_TOKEN"))
    discord = DiscordClientResource(token=dg.EnvVar("DISCORD_BOT_TOKEN"))
    return {
        "inbox": InboxResource(),
        "telegram": telegram,
        "discord": discord,
        "telegram_ops": OpsChatResource(client=telegram, chat_id=dg.EnvVar("JUNE_ALERT_TELEGRAM_CHAT_ID"),
                                        webserver_url=webserver_url()),
        "discord_ops": OpsChatResource(client=discord, chat_id=dg.EnvVar("JUNE_ALERT_DISCORD_CHANNEL_ID"),
                                       webserver_url=webserver_url()),
    }
