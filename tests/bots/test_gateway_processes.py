"""Real `june bot telegram` processes against the fake Bot API (issue 12, items 5 and 7; issue 9):
no token in the log at any verbosity; two gateways on one inbox (SQLite and PostgreSQL) answer
every message exactly once; a message is taken over only after its owner is gone."""

from __future__ import annotations

import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_telegram_api import TOKEN
from processes import GatewayProcess, ThreadedBotAPI, free_port, gateway_env

from june_pipelines.bots.inbox import Inbox

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent


@pytest.fixture
def bot_api() -> Iterator[ThreadedBotAPI]:
    with ThreadedBotAPI() as api:
        yield api


def replies_by_message(api) -> Counter[int]:
    """How many messages the bot sent in reply to each user message."""
    return Counter(
        int(c.params["reply_parameters"]["message_id"])
        for c in api.sent("sendMessage") if isinstance(c.params.get("reply_parameters"), dict)
    )


def test_no_token_in_the_log_of_a_verbose_run(bot_api, tmp_path):
    api = bot_api.api
    env = gateway_env(api, tmp_path / "home", {"path": str(tmp_path / "inbox.sqlite")})
    gateway = GatewayProcess.june(env, tmp_path / "gateway.log", "-v")
    try:
        bot_api.call(api.send_text_update(111, "What is 6 times 7?"))
        bot_api.wait_for(lambda: api.sent("sendMessage", 111) or gateway.proc.poll() is not None, timeout=300,
                         what="an answer")
        bot_api.call(api.send_text_update(111, "What is 2 plus 2?"))
        bot_api.wait_for(lambda: len(api.sent("sendMessage", 111)) == 2, what="a second answer")
    finally:
        gateway.stop()
    log = gateway.log_text()
    assert "42" in api.sent("sendMessage", 111)[0].params["text"]
    # The run was verbose: the Bot API client's and httpx's debug lines, with their URLs, are there ...
    assert "DEBUG telegram.ext.ExtBot: Set Bot API URL: " in log and "DEBUG httpcore" in log
    assert "httpx: HTTP Request: POST " in log and "/bot***/sendMessage" in log
    # ... and the token is not, in any form.
    assert TOKEN not in log and TOKEN.split(":")[1] not in log


def test_two_gateway_processes_on_one_inbox_answer_each_message_once(bot_api, inbox_target, tmp_path):
    """The second gateway starts while the first is busy with a backlog: nothing is answered twice,
    nothing is lost, and every turn is computed once (the two processes' turn counters add up)."""
    api = bot_api.api
    n = 24
    env = gateway_env(api, tmp_path / "home", inbox_target, JUNE_INBOX_LEASE_S="5")
    first = GatewayProcess.june(env, tmp_path / "first.log", "--memory", str(tmp_path / "m1.sqlite"),
                                metrics_port=free_port())
    second = None
    try:
        first.wait_healthy()
        sent = [bot_api.call(api.send_text_update(1000 + i, f"What is {i} plus {i}?")) for i in range(n)]
        second = GatewayProcess.june(env, tmp_path / "second.log", "--memory", str(tmp_path / "m2.sqlite"),
                                     metrics_port=free_port())
        second.wait_healthy()
        ids = [u["message"]["message_id"] for u in sent]
        bot_api.wait_for(lambda: set(replies_by_message(api)) >= set(ids), timeout=600, what="every answer")
        time.sleep(3)  # a duplicate answer, if any, would arrive now
        turns = sum(g.metric("june_bot_turns_total", {"platform": "telegram", "outcome": "answered"})
                    for g in (first, second))
    finally:
        first.stop()
        if second is not None:
            second.stop()
    answers = replies_by_message(api)
    assert {mid: answers[mid] for mid in ids} == dict.fromkeys(ids, 1)
    assert turns == n
    with Inbox(inbox_target.get("path"), url=inbox_target.get("url")) as inbox:
        items = inbox.items("telegram")
    assert len(items) == n and {i.status for i in items} == {"done"}
    assert {i.attempts for i in items} == {1}  # no turn was taken over from a live owner


def test_a_message_is_taken_over_only_after_its_owner_is_gone(bot_api, inbox_target, tmp_path):
    """The first gateway holds a message (its model hangs) and renews its lease; the second leaves
    it alone for three lease periods, and answers it once after the first is killed."""
    api = bot_api.api
    lease_s = 3
    env = gateway_env(api, tmp_path / "home", inbox_target, JUNE_INBOX_LEASE_S=str(lease_s))
    owner = GatewayProcess([sys.executable, str(HERE / "stalled_gateway.py")], env, tmp_path / "owner.log")
    taker = None
    try:
        update = bot_api.call(api.send_text_update(111, "What is 5 plus 5?"))
        mid = f"111:{update['message']['message_id']}"

        def held() -> bool:
            with Inbox(inbox_target.get("path"), url=inbox_target.get("url")) as inbox:
                item = inbox.get("telegram", mid)
            return item is not None and item.status == "processing"

        bot_api.wait_for(held, timeout=120, what="the first gateway to claim the message")
        taker = GatewayProcess.june(env, tmp_path / "taker.log", metrics_port=free_port())
        taker.wait_healthy()
        time.sleep(3 * lease_s)
        assert not api.sent("sendMessage") and held()  # the owner is alive: not taken
        owner.stop(signal.SIGKILL)
        bot_api.wait_for(lambda: api.sent("sendMessage", 111), timeout=120, what="the taken-over answer")
        time.sleep(2)
    finally:
        owner.stop(signal.SIGKILL)
        if taker is not None:
            taker.stop()
    (answer,) = api.sent("sendMessage", 111)
    assert "10" in answer.params["text"]
    with Inbox(inbox_target.get("path"), url=inbox_target.get("url")) as inbox:
        item = inbox.get("telegram", mid)
    assert item.status == "done" and item.attempts == 2
