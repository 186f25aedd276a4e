"""The inbox on both backends (SQLite file, real PostgreSQL): leases, retries, dead letters, the
hand-over sequence, migration of an old file, and claims racing from many threads and processes."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import threading
import time

from june_pipelines.bots.inbox import Inbox


def test_backend_is_chosen_by_postgres_url(inbox_target, monkeypatch, tmp_path):
    if "url" in inbox_target:
        monkeypatch.setenv("JUNE_POSTGRES_URL", inbox_target["url"])
        with Inbox() as inbox:
            assert inbox.backend == "postgresql" and "june_inbox" in inbox.location
    else:
        monkeypatch.delenv("JUNE_POSTGRES_URL", raising=False)
        monkeypatch.setenv("JUNE_INBOX_DB", inbox_target["path"])
        with Inbox() as inbox:
            assert inbox.backend == "sqlite" and inbox.location == inbox_target["path"]


def test_receive_is_idempotent_and_a_lease_keeps_others_out(inbox_target):
    with Inbox(owner="a", lease_s=0.5, **inbox_target) as a, Inbox(owner="b", lease_s=0.5, **inbox_target) as b:
        first = a.receive("telegram", "1", 5, 6, "text", {"message": {"text": "hi"}})
        again = b.receive("telegram", "1", 5, 6, "text", {})
        assert first.is_new and not again.is_new and again.payload == {"message": {"text": "hi"}}
        assert not b.claim("telegram", "1")  # received by a, still under a's lease
        assert a.claim("telegram", "1")
        assert not b.claim("telegram", "1") and not a.claim("telegram", "1")
        for _ in range(4):  # the owner renews: the lease never runs out while it works
            time.sleep(0.2)
            assert a.renew("telegram", "1")
        assert not b.sweep("telegram").ready
        time.sleep(0.7)  # a stopped renewing: gone
        (ready,) = b.sweep("telegram").ready
        assert ready.message_id == "1" and ready.status == "queued"
        assert b.claim("telegram", "1")
        assert not a.renew("telegram", "1")  # a learns it no longer holds the message
        assert not a.finish("telegram", "1", "done")  # and cannot finish b's message
        assert b.finish("telegram", "1", "done", {"reply": "hello"})
        item = a.get("telegram", "1")
        assert item.status == "done" and item.attempts == 2 and item.result == {"reply": "hello"}


def test_failed_turns_are_retried_then_dead_lettered_and_can_be_retried_by_hand(inbox_target):
    with Inbox(owner="a", max_attempts=2, **inbox_target) as inbox:
        inbox.receive("discord", "9", 1, 2, "text", {})
        assert inbox.claim("discord", "9")
        assert inbox.release("discord", "9", "RuntimeError: model server down", retry_in_s=60) == "queued"
        assert not inbox.claim("discord", "9")  # not before its retry time
        assert not inbox.sweep("discord").ready
        with Inbox(owner="b", max_attempts=2, **inbox_target) as other:
            other._run("UPDATE bot_messages SET available_at = 0")  # the backoff has passed
            (ready,) = other.sweep("discord").ready
            assert other.claim("discord", "9")
            assert other.release("discord", "9", "RuntimeError: still down") == "dead_letter"
        (dead,) = inbox.dead_letters()
        assert dead.message_id == "9" and dead.attempts == 2 and dead.last_error == "RuntimeError: still down"
        assert inbox.dead_letters("telegram") == []
        assert inbox.retry(dead.id + 1000) is None
        again = inbox.retry(dead.id)
        assert again.status == "queued" and again.attempts == 0
        assert inbox.retry(dead.id) is None  # no longer a dead letter
        assert inbox.claim("discord", "9")


def test_an_owner_that_keeps_dying_makes_a_dead_letter(inbox_target):
    with Inbox(owner="x", max_attempts=2, lease_s=0.1, **inbox_target) as inbox:
        inbox.receive("telegram", "3", 1, 2, "voice", {})
        for _ in range(2):
            assert inbox.claim("telegram", "3")  # ... and the process dies mid-turn
            time.sleep(0.2)
            sweep = inbox.sweep("telegram")
        assert [i.message_id for i in sweep.dead] == ["3"] and not sweep.ready
        assert "stopped 2 times" in inbox.get("telegram", "3").last_error
        assert inbox.sweep("telegram").dead == []  # reported once


def test_hand_over_numbers_increase_and_runs_start_once(inbox_target):
    with Inbox(**inbox_target) as inbox:
        for mid in ("1", "2", "3"):
            inbox.receive("telegram", mid, 1, 1, "text", {})
            assert inbox.claim("telegram", mid)
            assert inbox.hand_over("telegram", mid, f"transcript {mid}")
        assert not inbox.hand_over("telegram", "1", "again")
        found = inbox.handed_over_after(0)
        assert [(seq, item.message_id) for seq, item in found] == [(1, "1"), (2, "2"), (3, "3")]
        assert [item.message_id for _, item in inbox.handed_over_after(2)] == ["3"]
        assert inbox.start_run("telegram", "2") and not inbox.start_run("telegram", "2")
        assert inbox.finish("telegram", "2", "done")


def test_pending_depth_and_age(inbox_target):
    with Inbox(**inbox_target) as inbox:
        assert inbox.pending("telegram") == (0, 0.0)
        inbox.receive("telegram", "1", 1, 1, "text", {})
        time.sleep(0.3)
        inbox.receive("telegram", "2", 1, 1, "text", {})
        inbox.receive("discord", "7", 1, 1, "text", {})
        depth, age = inbox.pending("telegram")
        assert depth == 2 and 0.25 <= age < 60
        inbox.finish("telegram", "1", "refused")
        assert inbox.pending("telegram")[0] == 1


def test_sent_parts_are_recorded_once_and_checked_against_limits(inbox_target):
    with Inbox(**inbox_target) as inbox:
        inbox.receive("telegram", "1", 5, 5, "text", {})
        assert inbox.record_sent("telegram", "1", "text:0", "text", 5, text="x" * 10) == []
        problems = inbox.record_sent("telegram", "1", "text:0", "text", 5, text="x" * 5000)
        assert problems == ["text of 5000 characters exceeds 4096"]
        assert inbox.record_sent("telegram", "1", "voice", "voice", 5, nbytes=2_000_000)
        history = inbox.history("telegram", "1")
        assert [(h["part"], h["within_limits"]) for h in history] == [("text:0", 0), ("voice", 0)]
        assert inbox.already_sent("telegram", "1") == {"text:0", "voice"}


def test_closing_releases_the_connection(inbox_target):
    inbox = Inbox(**inbox_target)
    with inbox:
        assert inbox.ping()
    assert not inbox.ping()


def test_an_inbox_file_from_before_leases_is_migrated(tmp_path):
    """Version 1 files (tables `messages`/`sent`, no leases) open with their rows, and a message a
    crashed old gateway left `processing` is recovered."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, platform TEXT NOT NULL, message_id TEXT NOT NULL,
            chat_id TEXT NOT NULL, user_id TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, owner TEXT NOT NULL DEFAULT '',
            received_at REAL NOT NULL, updated_at REAL NOT NULL, handed_over_seq INTEGER,
            transcript TEXT NOT NULL DEFAULT '', result TEXT NOT NULL DEFAULT '{}', UNIQUE (platform, message_id));
        CREATE TABLE sent (id INTEGER PRIMARY KEY AUTOINCREMENT, platform TEXT NOT NULL, message_id TEXT NOT NULL,
            part TEXT NOT NULL, kind TEXT NOT NULL, chat_id TEXT NOT NULL, text TEXT NOT NULL DEFAULT '',
            parse_mode TEXT NOT NULL DEFAULT '', chars INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,
            audio_s REAL NOT NULL DEFAULT 0, platform_message_id TEXT NOT NULL DEFAULT '', sent_at REAL NOT NULL,
            within_limits INTEGER NOT NULL, UNIQUE (platform, message_id, part));
        """
    )
    now = time.time()
    conn.execute("INSERT INTO messages (platform, message_id, chat_id, user_id, kind, payload, status, attempts,"
                 " owner, received_at, updated_at) VALUES ('telegram', '5:1', '5', '5', 'text', ?, 'processing', 1,"
                 " 'old-gateway', ?, ?)", (json.dumps({"message": {"text": "hi"}}), now, now))
    conn.execute("INSERT INTO messages (platform, message_id, chat_id, user_id, kind, payload, status, attempts,"
                 " owner, received_at, updated_at) VALUES ('telegram', '5:0', '5', '5', 'text', '{}', 'done', 1,"
                 " '', ?, ?)", (now, now))
    conn.execute("INSERT INTO sent (platform, message_id, part, kind, chat_id, sent_at, within_limits)"
                 " VALUES ('telegram', '5:0', 'text:0', 'text', '5', ?, 1)", (now,))
    conn.commit()
    conn.close()
    with Inbox(path) as inbox:
        assert [i.message_id for i in inbox.items()] == ["5:1", "5:0"]
        assert inbox.already_sent("telegram", "5:0") == {"text:0"}
        (ready,) = inbox.sweep("telegram").ready
        assert ready.message_id == "5:1" and ready.payload == {"message": {"text": "hi"}}
        assert inbox.claim("telegram", "5:1")
    with Inbox(path) as again:  # opening a migrated file twice changes nothing
        assert again.get("telegram", "5:1").status == "processing"


def test_claims_race_between_threads(inbox_target):
    """Eight workers with their own connections claim the same 40 messages: each is claimed once."""
    with Inbox(**inbox_target) as setup:
        for i in range(40):
            setup.receive("telegram", str(i), 1, 1, "text", {})
        setup._run("UPDATE bot_messages SET status='queued', owner=''")
    won: list[tuple[int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        with Inbox(owner=f"w{n}", **inbox_target) as inbox:
            barrier.wait()
            for i in range(40):
                if inbox.claim("telegram", str(i)):
                    with lock:
                        won.append((n, str(i)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(mid for _, mid in won) == sorted(str(i) for i in range(40))


def _claim_all(inbox_target: dict[str, str], owner: str, start: multiprocessing.synchronize.Event, out) -> None:
    with Inbox(owner=owner, **inbox_target) as inbox:
        start.wait()
        mine = [str(i) for i in range(60) if inbox.claim("telegram", str(i))]
        for mid in mine:
            assert inbox.hand_over("telegram", mid, "t")
    out.put(mine)


def test_claims_and_hand_overs_race_between_processes(inbox_target):
    """Four processes (as four gateways on four hosts would): every message claimed once, and the
    hand-over numbers the sensor's cursor follows are unique and gap-free."""
    with Inbox(**inbox_target) as setup:
        for i in range(60):
            setup.receive("telegram", str(i), 1, 1, "text", {})
        setup._run("UPDATE bot_messages SET status='queued', owner=''")
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(inbox_target, f"p{n}", start, out)) for n in range(4)]
    for p in procs:
        p.start()
    start.set()
    claimed = [mid for _ in procs for mid in out.get(timeout=120)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sorted(claimed, key=int) == [str(i) for i in range(60)]
    with Inbox(**inbox_target) as inbox:
        seqs = [seq for seq, _ in inbox.handed_over_after(0, limit=1000)]
    assert seqs == list(range(1, 61))
