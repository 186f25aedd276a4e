"""The Telegram gateway end to end: the real python-telegram-bot client against a fake Bot API
server on loopback (tests/bots/fake_telegram_api.py), with the real voice pipeline."""

from __future__ import annotations

import asyncio
import html
import re
import threading

import pytest
from fake_telegram_api import TOKEN, FakeBotAPI

from june_pipelines.bots.inbox import Inbox
from june_pipelines.bots.telegram import (
    TelegramConfig,
    TelegramGateway,
    file_base_url,
    send_reply,
)
from june_pipelines.voice.audio import probe_audio

pytestmark = pytest.mark.asyncio(loop_scope="function")

ALICE, MALLORY = 111, 222


def gateway(api: FakeBotAPI, pipeline, inbox: Inbox, **kw) -> TelegramGateway:
    config = TelegramConfig(token=TOKEN, base_url=api.base_url, allowed_users=frozenset({str(ALICE)}),
                            poll_timeout_s=1, **kw)
    return TelegramGateway(config, pipeline, inbox)


async def test_file_url_follows_the_api_base():
    assert file_base_url("http://127.0.0.1:8081/bot") == "http://127.0.0.1:8081/file/bot"


async def test_voice_in_voice_and_text_out(api, make_pipeline, spoken_question, tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite")
    gw = gateway(api, make_pipeline(), inbox)
    await gw.start()
    try:
        await api.send_voice_update(ALICE, spoken_question)
        await api.wait_for(lambda: api.sent("sendMessage", ALICE))
    finally:
        await gw.stop()
    voices = api.sent("sendVoice", ALICE)
    assert len(voices) == 1
    ogg = voices[0].files["voice"]
    info = probe_audio(ogg)
    assert (info.container, info.codec) == ("ogg", "opus") and info.duration_s > 0.5
    assert len(ogg) <= 1_000_000
    text = api.sent("sendMessage", ALICE)[0].params["text"]
    assert "391" in text
    assert api.sent("sendMessage", ALICE)[0].params["parse_mode"] == "HTML"
    assert any(c.params.get("action") == "record_voice" for c in api.sent("sendChatAction", ALICE))
    assert [c.method for c in api.calls if c.method == "getFile"] == ["getFile"]
    (item,) = inbox.items("telegram")
    # Piper's synthesis is stochastic ("what is" is sometimes heard as "what are"); the numbers are not.
    assert item.status == "done" and re.search(r"\b17\b.*\b23\b", item.result["transcript"])
    history = inbox.history("telegram", item.message_id)
    assert [h["part"] for h in history] == ["voice", "text:0"]
    assert all(h["within_limits"] for h in history)


async def test_text_in_text_out_and_whitelist(api, make_pipeline, tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite")
    gw = gateway(api, make_pipeline(), inbox)
    await gw.start()
    try:
        await api.send_text_update(ALICE, "What is 6 times 7?")
        await api.send_text_update(MALLORY, "What is 6 times 7?")
        await api.wait_for(lambda: api.sent("sendMessage", ALICE) and api.sent("sendMessage", MALLORY))
    finally:
        await gw.stop()
    assert "42" in api.sent("sendMessage", ALICE)[0].params["text"]
    assert not api.sent("sendVoice")  # a text message gets a text reply
    (refusal,) = api.sent("sendMessage", MALLORY)
    assert "not on its list" in refusal.params["text"]
    assert {i.user_id: i.status for i in inbox.items()} == {str(ALICE): "done", str(MALLORY): "refused"}


async def test_others_can_be_ignored(api, make_pipeline, tmp_path):
    gw = gateway(api, make_pipeline(), Inbox(tmp_path / "inbox.sqlite"), refusal="ignore")
    await gw.start()
    try:
        await api.send_text_update(MALLORY, "hello")
        await api.send_text_update(ALICE, "What is 1 plus 1?")
        await api.wait_for(lambda: api.sent("sendMessage", ALICE))
    finally:
        await gw.stop()
    assert not api.sent("sendMessage", MALLORY)


async def test_per_chat_rate_limit(api, make_pipeline, tmp_path):
    inbox = Inbox(tmp_path / "inbox.sqlite")
    gw = gateway(api, make_pipeline(), inbox, rate_limit=(2, 60.0))
    await gw.start()
    try:
        for i in range(4):
            await api.send_text_update(ALICE, f"What is {i} plus 1?")
        await api.wait_for(lambda: len([i for i in inbox.items() if i.status in ("done", "rate_limited")]) == 4)
    finally:
        await gw.stop()
    texts = [c.params["text"] for c in api.sent("sendMessage", ALICE)]
    assert sum("faster than I can answer" in t for t in texts) == 1  # one note per window, not per message
    statuses = sorted(i.status for i in inbox.items() if i.user_id == str(ALICE))
    assert statuses == ["done", "done", "rate_limited", "rate_limited"]


async def test_oversized_and_corrupt_audio_get_clear_replies(api, make_pipeline, spoken_question, tmp_path):
    gw = gateway(api, make_pipeline(), Inbox(tmp_path / "inbox.sqlite"))
    await gw.start()
    try:
        await api.send_voice_update(ALICE, spoken_question, file_size=30 * 1024 * 1024)
        await api.wait_for(lambda: len(api.sent("sendMessage", ALICE)) >= 1)
        await api.send_voice_update(ALICE, b"this is not audio at all " * 40)
        await api.wait_for(lambda: len(api.sent("sendMessage", ALICE)) >= 2)
    finally:
        await gw.stop()
    too_large, corrupt = (c.params["text"] for c in api.sent("sendMessage", ALICE))
    assert "too large" in too_large
    assert "could not" in corrupt.lower()
    assert len([c for c in api.calls if c.method == "getFile"]) == 1  # the oversized file is never fetched


async def test_restart_mid_turn_answers_once(api, make_pipeline, spoken_question, tmp_path):
    """The first gateway dies in the middle of a turn; the second reprocesses it exactly once."""
    release = threading.Event()
    real = make_pipeline()

    class Stuck:
        memory = real.memory

        def turn(self, *a, **kw):
            release.wait(30)
            raise RuntimeError("this process is dead")

    db = tmp_path / "inbox.sqlite"
    # A short lease: the second gateway may take the message over once the first stops renewing it.
    first = gateway(api, Stuck(), Inbox(db, lease_s=1.0), action_interval_s=0.2)
    await first.start()
    update = await api.send_voice_update(ALICE, spoken_question)
    await api.wait_for(lambda: len(api.sent("sendChatAction", ALICE)) >= 3)  # the action is refreshed
    assert Inbox(db).items()[0].status == "processing"
    # Crash: polling and the inbox sweeps stop and the turn is abandoned without any reply.
    await first.application.updater.stop()
    first._sweeper.cancel()
    for task in list(first._tasks):
        task.cancel()
    await asyncio.sleep(0.1)
    assert not api.sent("sendMessage") and not api.sent("sendVoice")

    second = gateway(api, real, Inbox(db), sweep_interval_s=0.2)
    await second.start()
    try:
        await api.wait_for(lambda: api.sent("sendMessage", ALICE))
        await api.redeliver(update)  # Telegram sends the unconfirmed update again
        await asyncio.sleep(1.5)
        await second.wait_idle()
    finally:
        release.set()
        await second.stop()
        await first.application.stop()
        await first.application.shutdown()
    assert len(api.sent("sendVoice", ALICE)) == 1
    assert len(api.sent("sendMessage", ALICE)) == 1
    (item,) = Inbox(db).items()
    assert item.status == "done" and item.attempts == 2


async def test_long_replies_are_split_and_escaped(api, tmp_path):
    from telegram import Bot

    inbox = Inbox(tmp_path / "inbox.sqlite")
    item = inbox.receive("telegram", "5:1", 5, 5, "text", {"message": {"message_id": 1}})
    text = ("if a < b && c > d: print('<ok>') " * 400).strip()  # ~13,000 characters
    await api.wait_for(lambda: True)
    async with Bot(TOKEN, base_url=api.base_url, base_file_url=file_base_url(api.base_url)) as bot:
        await send_reply(bot, inbox, item, text)
        await send_reply(bot, inbox, item, text)  # a retry sends nothing twice
    parts = [c.params["text"] for c in api.sent("sendMessage", 5)]
    assert len(parts) >= 4 and all(len(p) <= 4096 for p in parts)
    assert all("<" not in p and ">" not in p for p in parts)  # nothing left unescaped for HTML mode
    assert " ".join(html.unescape(p) for p in parts).split() == text.split()
    assert all(h["within_limits"] for h in inbox.history("telegram"))


async def test_different_users_are_served_concurrently(api, make_pipeline, tmp_path):
    import time

    real = make_pipeline()

    class Slow:  # the real pipeline behind a 1.5 s think, to make overlap visible
        memory = real.memory

        def turn(self, *a, **kw):
            time.sleep(1.5)
            return real.turn(*a, **kw)

    config = TelegramConfig(token=TOKEN, base_url=api.base_url, poll_timeout_s=1)
    gw = TelegramGateway(config, Slow(), Inbox(tmp_path / "inbox.sqlite"))
    await gw.start()
    try:
        started = time.monotonic()
        await api.send_text_update(ALICE, "What is 2 plus 3?")
        await api.send_text_update(MALLORY, "What is 4 plus 5?")
        await api.wait_for(lambda: api.sent("sendMessage", ALICE) and api.sent("sendMessage", MALLORY))
        elapsed = time.monotonic() - started
    finally:
        await gw.stop()
    assert "5" in api.sent("sendMessage", ALICE)[0].params["text"]
    assert "9" in api.sent("sendMessage", MALLORY)[0].params["text"]
    assert elapsed < 2.9  # two 1.5 s turns overlapped
