"""The Discord gateway on discord.py objects built from real payloads; HTTP mocked at discord.py's
HTTP client (the boundary with Discord's servers); attachments served over HTTP by a fake CDN."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import pytest_asyncio

from june_pipelines.bots.discord import DiscordConfig, DiscordGateway
from june_pipelines.bots.inbox import Inbox
from june_pipelines.voice.audio import probe_audio

pytestmark = pytest.mark.asyncio(loop_scope="function")

BOT = {"id": "900", "username": "june", "discriminator": "0", "global_name": "June", "avatar": None, "bot": True}
ALICE = {"id": "111", "username": "alice", "discriminator": "0", "global_name": "Alice", "avatar": None}
MALLORY = {"id": "222", "username": "mallory", "discriminator": "0", "global_name": "M", "avatar": None}
DM_CHANNEL = "5001"


class FakeDiscordHTTP:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._next = 7000

    async def request(self, route, *, files=None, form=None, **kwargs):  # noqa: ANN001
        entry = {"method": route.method, "path": route.path, "url": route.url, "json": kwargs.get("json"),
                 "files": [f.fp.read() for f in files or []], "form": form}
        if form:
            import json

            for part in form:
                if part.get("name") == "payload_json":
                    entry["json"] = json.loads(part["value"])
        self.requests.append(entry)
        if route.method == "POST" and route.path.endswith("/messages"):
            self._next += 1
            return message_payload(str(self._next), BOT, (entry["json"] or {}).get("content") or "")
        return None

    def messages(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"].endswith("/messages")]


def message_payload(mid: str, author: dict[str, Any], content: str, attachments: list[dict[str, Any]] | None = None,
                    flags: int = 0) -> dict[str, Any]:
    return {
        "id": mid, "channel_id": DM_CHANNEL, "author": author, "content": content,
        "timestamp": "2026-11-21T12:00:00.000000+00:00", "edited_timestamp": None, "tts": False,
        "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": attachments or [],
        "embeds": [], "pinned": False, "type": 0, "flags": flags,
    }


@pytest_asyncio.fixture
async def discord_world(monkeypatch):
    import discord
    from discord.state import ConnectionState

    fake = FakeDiscordHTTP()
    monkeypatch.setattr(discord.http.HTTPClient, "request", fake.request, raising=True)
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    state = ConnectionState(dispatch=lambda *a, **k: None, handlers={}, hooks={}, http=http,
                            intents=discord.Intents.default())
    state.loop = asyncio.get_running_loop()  # set by discord.Client in a real gateway
    state.user = discord.ClientUser(state=state, data=BOT)
    dm = discord.DMChannel(me=state.user, state=state, data={"id": DM_CHANNEL, "type": 1, "recipients": [ALICE],
                                                               "last_message_id": None})

    def make_message(data: dict[str, Any]) -> discord.Message:
        return discord.Message(state=state, channel=dm, data=data)

    return fake, make_message


def gateway(pipeline, inbox, **kw) -> DiscordGateway:
    return DiscordGateway(DiscordConfig(token="x", allowed_users=frozenset({"111"}), **kw), pipeline, inbox)


async def test_voice_message_gets_an_ogg_and_text(discord_world, cdn, make_pipeline, spoken_question, tmp_path):
    fake, make_message = discord_world
    url = cdn.add("voice-message.ogg", spoken_question)
    attachment = {"id": "1", "filename": "voice-message.ogg", "size": len(spoken_question), "url": url,
                  "proxy_url": url, "content_type": "audio/ogg", "duration_secs": 3.1, "waveform": "AAAA"}
    message = make_message(message_payload("42", ALICE, "", [attachment], flags=1 << 13))
    assert message.attachments[0].is_voice_message()
    inbox = Inbox(tmp_path / "inbox.sqlite")
    gw = gateway(make_pipeline(), inbox)
    await gw.handle_message(message)
    await gw.handle_message(message)  # delivered twice: answered once
    (sent,) = fake.messages()
    assert "391" in sent["json"]["content"]
    assert int(sent["json"]["message_reference"]["message_id"]) == 42
    (ogg,) = sent["files"]
    info = probe_audio(ogg)
    assert (info.container, info.codec) == ("ogg", "opus") and info.duration_s > 0.5
    assert any(r["path"].endswith("/typing") for r in fake.requests)
    (item,) = inbox.items("discord")
    assert item.status == "done" and item.kind == "voice"
    assert [h["part"] for h in inbox.history("discord")] == ["voice", "text:0"]


async def test_text_whitelist_and_long_split(discord_world, make_pipeline, tmp_path):
    fake, make_message = discord_world
    inbox = Inbox(tmp_path / "inbox.sqlite")
    pipeline = make_pipeline()
    gw = gateway(pipeline, inbox)
    await gw.handle_message(make_message(message_payload("43", ALICE, "What is 6 times 7?")))
    await gw.handle_message(make_message(message_payload("44", MALLORY, "hi")))
    await gw.handle_message(make_message(message_payload("45", BOT, "my own message")))
    first, refusal = fake.messages()
    assert "42" in first["json"]["content"] and not first["files"]
    assert "not on its list" in refusal["json"]["content"]
    assert {i.message_id: i.status for i in inbox.items()} == {"43": "done", "44": "refused"}

    from june_pipelines.bots.discord import send_reply

    item = inbox.receive("discord", "46", DM_CHANNEL, "111", "text", {})
    long = "word " * 1000
    await send_reply(make_message(message_payload("46", ALICE, "x")).channel, inbox, item, long)
    parts = [m["json"]["content"] for m in fake.messages()[2:]]
    assert len(parts) == 3 and all(len(p) <= 2000 for p in parts)
    assert " ".join(parts).split() == long.split()


async def test_restart_reprocesses_an_unanswered_message_once(discord_world, make_pipeline, tmp_path):
    """A message left `processing` by a dead gateway is fetched again and answered once."""
    fake, make_message = discord_world
    db = tmp_path / "inbox.sqlite"
    dead = Inbox(db, lease_s=0.2)  # its lease runs out soon after it "died"
    message = make_message(message_payload("50", ALICE, "What is 3 times 3?"))
    from june_pipelines.bots.discord import message_payload as stored_payload

    dead.receive("discord", "50", DM_CHANNEL, "111", "text", stored_payload(message))
    assert dead.claim("discord", "50")  # ... and the process died here
    await asyncio.sleep(0.3)

    original_request = fake.request

    async def request(route, **kw):  # GET /channels/{id}/messages/{id}: Discord returns the message
        if route.method == "GET" and route.path.endswith("/messages/{message_id}"):
            fake.requests.append({"method": "GET", "path": route.path})
            return message_payload("50", ALICE, "What is 3 times 3?")
        return await original_request(route, **kw)

    class Client:  # what on_ready hands to recover(): discord.Client's channel lookup
        def get_channel(self, channel_id):
            return message.channel

    import discord

    fake_http_request = discord.http.HTTPClient.request
    discord.http.HTTPClient.request = lambda self, route, **kw: request(route, **kw)
    try:
        gw = gateway(make_pipeline(), Inbox(db))
        await gw.recover(Client())
        for _ in range(200):
            if Inbox(db).get("discord", "50").status == "done":
                break
            await asyncio.sleep(0.05)
        await gw.handle_message(message)  # Discord will not redeliver, but if it did: no second answer
    finally:
        discord.http.HTTPClient.request = fake_http_request
    (answer,) = fake.messages()
    assert "9" in answer["json"]["content"]
    item = Inbox(db).get("discord", "50")
    assert item.status == "done" and item.attempts == 2
