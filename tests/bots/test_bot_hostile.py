"""What servers and users may send (issue 12, items 4-6): updates the client library cannot parse,
tokens in logs, audio larger than it claims. The real python-telegram-bot against the fake Bot API;
discord.py's own parsers and HTTP client with Discord's servers replaced at its HTTP boundary."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path

import pytest
from fake_telegram_api import TOKEN, FakeBotAPI

from june_pipelines.bots import redaction
from june_pipelines.bots.inbox import Inbox
from june_pipelines.bots.settings import LIMITS
from june_pipelines.bots.telegram import TelegramConfig, TelegramGateway

pytestmark = pytest.mark.asyncio(loop_scope="function")

ALICE = 111
REPO = Path(__file__).resolve().parents[2]


def telegram_gateway(api: FakeBotAPI, pipeline, inbox: Inbox) -> TelegramGateway:
    config = TelegramConfig(token=TOKEN, base_url=api.base_url, allowed_users=frozenset({str(ALICE)}),
                            poll_timeout_s=1)
    return TelegramGateway(config, pipeline, inbox)


async def serve_until_alice_is_answered(api: FakeBotAPI, pipeline, tmp_path: Path) -> None:
    """Run a gateway (a fresh inbox) until it has sent Alice a message, then stop it."""
    gw = telegram_gateway(api, pipeline, Inbox(tmp_path / "inbox.sqlite"))
    await gw.start()
    try:
        await api.wait_for(lambda: api.sent("sendMessage", ALICE))
    finally:
        await gw.stop()


def bad_update(text: str) -> dict:
    """A `message` without `date`: python-telegram-bot fails to parse the whole batch it is in."""
    return {"message": {"message_id": 77, "chat": {"id": ALICE, "type": "private"},
                        "from": {"id": ALICE, "is_bot": False, "first_name": "a"}, "text": text}}


def all_log_text(records: list[logging.LogRecord]) -> str:
    return "\n".join(r.getMessage() + (r.exc_text or "") for r in records)


async def test_an_update_that_cannot_be_parsed_is_skipped_once_and_the_gateway_keeps_answering(
    api, make_pipeline, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    inbox = Inbox(tmp_path / "inbox.sqlite")
    gw = telegram_gateway(api, make_pipeline(), inbox)
    first_bad = await api.push(bad_update("my secret plan, part one"))
    await gw.start()
    try:
        await api.send_text_update(ALICE, "What is 6 times 7?")
        await api.wait_for(lambda: api.sent("sendMessage", ALICE))
        last_bad = await api.push(bad_update("my secret plan, part two"))  # alone, the last of its batch
        await api.wait_for(lambda: any(int(c.params.get("offset") or 0) > last_bad["update_id"]
                                       for c in api.sent("getUpdates")))
        await api.send_text_update(ALICE, "What is 2 plus 2?")
        await api.wait_for(lambda: len(api.sent("sendMessage", ALICE)) == 2)
    finally:
        await gw.stop()
    first, second = (c.params["text"] for c in api.sent("sendMessage", ALICE))
    assert "42" in first and "4" in second
    # Both bad updates were acknowledged: Telegram will not send them again.
    assert {first_bad["update_id"], last_bad["update_id"]}.isdisjoint(u["update_id"] for u in api.updates)
    skipped = [r for r in caplog.records if "cannot parse" in r.getMessage()]
    assert [str(first_bad["update_id"]) in skipped[0].getMessage(), len(skipped)] == [True, 2]  # once each
    assert "secret plan" not in all_log_text(caplog.records)
    assert max(r.levelno for r in caplog.records if r.name.startswith("telegram")) < logging.ERROR
    sample = gw.metrics.registry.get_sample_value
    assert sample("june_bot_unparseable_updates_total", {"platform": "telegram"}) == 2
    assert {i.status for i in inbox.items()} == {"done"}


async def test_voice_download_stops_at_the_limit_whatever_sizes_are_declared(api, make_pipeline, tmp_path):
    limit = LIMITS["telegram"]
    huge = b"\x00" * (64 * 1024 * 1024)
    update = await api.send_voice_update(ALICE, huge, file_size=1000)  # the update lies ...
    file_id = update["message"]["voice"]["file_id"]
    api.file_size_override[file_id] = 1000  # ... and so does getFile
    await serve_until_alice_is_answered(api, make_pipeline(), tmp_path)
    (reply,) = (c.params["text"] for c in api.sent("sendMessage", ALICE))
    assert reply == f"That audio file is too large; the limit is {limit.download_mb}."
    (served,) = api.served.values()
    # Aborted soon after the limit (loopback socket buffers hold a few MB more), far from the 64 MB.
    assert limit.download_bytes < served < limit.download_bytes + 16 * 1024 * 1024
    assert not api.sent("sendVoice")


async def test_the_size_limit_is_one_number_in_docs_and_messages(api, make_pipeline, spoken_question, tmp_path):
    limit = LIMITS["telegram"]
    await api.send_voice_update(ALICE, spoken_question, file_size=limit.download_bytes + 1)
    await serve_until_alice_is_answered(api, make_pipeline(), tmp_path)
    assert limit.download_mb == "20 MB"
    assert api.sent("sendMessage", ALICE)[0].params["text"].endswith(f"the limit is {limit.download_mb}.")
    docs = (REPO / "docs" / "VOICE.md").read_text()
    assert f"Telegram up to {limit.download_mb}" in docs
    assert f"Discord up to {LIMITS['discord'].download_mb}" in docs
    assert not re.search(r"\b21 MB\b", docs)


async def test_discord_voice_download_stops_at_the_limit(make_pipeline, cdn, tmp_path, monkeypatch):
    import discord
    from discord.state import ConnectionState
    from test_discord import ALICE as DISCORD_ALICE
    from test_discord import BOT, message_payload

    sent: list[dict] = []

    async def request(self, route, **kwargs):  # Discord's servers: accept every message
        sent.append({"path": route.path, "json": kwargs.get("json")})
        return message_payload(str(9000 + len(sent)), DISCORD_ALICE, "")

    monkeypatch.setattr(discord.http.HTTPClient, "request", request)
    limit = LIMITS["discord"]
    url = cdn.add("voice-message.ogg", b"\x00" * (64 * 1024 * 1024))
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    state = ConnectionState(dispatch=lambda *a, **k: None, handlers={}, hooks={}, http=http,
                            intents=discord.Intents.default())
    state.loop = asyncio.get_running_loop()
    state.user = discord.ClientUser(state=state, data=BOT)
    dm = discord.DMChannel(me=state.user, state=state, data={"id": "5001", "type": 1, "recipients": [DISCORD_ALICE],
                                                               "last_message_id": None})
    attachment = {"id": "1", "filename": "voice-message.ogg", "size": 1000, "url": url, "proxy_url": url,
                  "content_type": "audio/ogg", "duration_secs": 3.1, "waveform": "AAAA"}
    message = discord.Message(state=state, channel=dm,
                              data=message_payload("42", DISCORD_ALICE, "", [attachment], flags=1 << 13))
    gw = discord_gateway_for(make_pipeline(), Inbox(tmp_path / "inbox.sqlite"))
    await gw.handle_message(message)
    replies = [s["json"]["content"] for s in sent if s["path"].endswith("/messages")]
    assert replies == [f"That audio file is too large; the limit is {limit.download_mb}."]
    served = cdn.served["voice-message.ogg"]
    assert limit.download_bytes < served < limit.download_bytes + 16 * 1024 * 1024


async def test_a_discord_payload_discordpy_cannot_handle_is_skipped(make_pipeline, tmp_path, monkeypatch, caplog):
    """MESSAGE_CREATE payloads without an id (discord.py's parser fails) or an author (June's handler
    cannot use it) go through discord.py's real parser: each skipped, logged once without its
    content, counted; the next message is answered."""
    import discord
    from test_discord import ALICE as DISCORD_ALICE
    from test_discord import BOT, FakeDiscordHTTP, message_payload

    caplog.set_level(logging.DEBUG)
    fake = FakeDiscordHTTP()
    original = fake.request

    async def request(route, **kwargs):
        if route.method == "GET" and route.path == "/users/@me":  # the login
            return BOT
        if route.method == "GET" and route.path == "/oauth2/applications/@me":
            return {"id": BOT["id"], "name": "june", "description": "", "icon": None, "bot_public": False,
                    "bot_require_code_grant": False, "owner": DISCORD_ALICE, "verify_key": "k", "flags": 0}
        return await original(route, **kwargs)

    monkeypatch.setattr(discord.http.HTTPClient, "request", lambda self, route, **kw: request(route, **kw))
    inbox = Inbox(tmp_path / "inbox.sqlite")
    gw = discord_gateway_for(make_pipeline(), inbox)
    client = gw.build_client()
    await client.login("x")
    try:
        no_id = message_payload("59", DISCORD_ALICE, "my secret plan")
        del no_id["id"]
        no_author = message_payload("60", DISCORD_ALICE, "my secret plan")
        del no_author["author"]
        parse = client._connection.parsers["MESSAGE_CREATE"]
        parse(no_id)  # discord.py's websocket reader calls this; an exception here would end the client
        parse(no_author)
        parse(message_payload("61", DISCORD_ALICE, "What is 6 times 7?"))
        deadline = time.monotonic() + 120
        while not fake.messages() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await gw.stop()
    finally:
        await client.close()
    (answer,) = fake.messages()
    assert "42" in answer["json"]["content"]
    skipped = [r.getMessage() for r in caplog.records if "cannot handle" in r.getMessage()]
    assert len(skipped) == 2 and "MESSAGE_CREATE" in skipped[0] and "AttributeError" in skipped[1]
    assert "secret plan" not in all_log_text(caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert gw.metrics.registry.get_sample_value("june_bot_unparseable_updates_total", {"platform": "discord"}) == 2
    assert [i.message_id for i in inbox.items()] == ["61"]


def discord_gateway_for(pipeline, inbox):
    from test_discord import gateway as discord_gateway

    return discord_gateway(pipeline, inbox)


async def test_redaction_covers_every_logger_handler_and_traceback():
    """Loggers and handlers created after install(), messages with arguments, exception text."""
    import io

    secret = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    redaction.install()
    redaction.register_secret(secret)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("some.library.created.later")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("Set Bot API URL: %s", f"https://api.telegram.org/bot{secret}")
        logger.info("token %s and url http://127.0.0.1/bot123:abc/getMe", secret)
        logger.info("connecting to postgresql://june:hunter2@db:5432/june")
        try:
            raise ValueError(f"request to /bot{secret}/getFile failed")
        except ValueError:
            logger.exception("download failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert secret not in out and secret.split(":")[1] not in out and "bot123:abc" not in out
    assert "hunter2" not in out
    assert out.count("***") >= 5 and "ValueError" in out and "Traceback" in out
