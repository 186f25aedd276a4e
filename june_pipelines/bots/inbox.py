"""The persistent inbox and message history shared by the gateways and the bot sensor (SQLite).

Every inbound message is written here before it is processed and marked done after the reply is
sent. Statuses:

    received -> processing -> done | failed
                           -> handed_over -> running -> done | failed   (a Dagster run answers)
    refused | rate_limited (answered, or ignored, without a turn)

Each gateway process has an `owner` id. A message left `processing` by another owner (the process
crashed or restarted mid-turn) is reprocessed once by `recover()`; after `max_attempts` it is
marked failed, so nothing loops forever. What was sent for a message (voice, text parts) is kept
in `sent`, one row per part: a reprocessed turn skips parts already delivered, so nothing is
answered twice, and every part is checked against the platform's limits.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from june_pipelines.paths import june_home

ACTIVE = ("received", "processing")
FINAL = ("done", "failed", "refused", "rate_limited")

# What each platform accepts (checked for every part sent).
LIMITS: dict[str, dict[str, int]] = {
    "telegram": {"text_chars": 4096, "voice_bytes": 1_000_000, "caption_chars": 1024},
    "discord": {"text_chars": 2000, "file_bytes": 10 * 1024 * 1024},
}


def default_inbox_path() -> Path:
    return Path(os.environ.get("JUNE_INBOX_DB") or june_home() / "bots" / "inbox.sqlite")


@dataclass(frozen=True)
class InboxItem:
    id: int
    platform: str
    message_id: str
    chat_id: str
    user_id: str
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    owner: str
    received_at: float
    updated_at: float
    transcript: str
    result: dict[str, Any]
    is_new: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.platform, self.message_id)

    @property
    def run_key(self) -> str:
        return f"{self.platform}:{self.message_id}"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    platform TEXT NOT NULL,
    message_id TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT NOT NULL DEFAULT '',
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    handed_over_seq INTEGER,
    transcript TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '{}',
    UNIQUE (platform, message_id)
);
CREATE INDEX IF NOT EXISTS messages_status ON messages (status);
CREATE INDEX IF NOT EXISTS messages_handover ON messages (handed_over_seq);
CREATE TABLE IF NOT EXISTS sent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    platform TEXT NOT NULL,
    message_id TEXT NOT NULL,
    part TEXT NOT NULL,
    kind TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    parse_mode TEXT NOT NULL DEFAULT '',
    chars INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    audio_s REAL NOT NULL DEFAULT 0,
    platform_message_id TEXT NOT NULL DEFAULT '',
    sent_at REAL NOT NULL,
    within_limits INTEGER NOT NULL,
    UNIQUE (platform, message_id, part)
);
"""

_COLS = (
    "id, platform, message_id, chat_id, user_id, kind, payload, status, attempts, owner, received_at,"
    " updated_at, transcript, result"
)


class LimitExceeded(ValueError):
    pass


def check_limits(platform: str, kind: str, chars: int = 0, nbytes: int = 0) -> list[str]:
    """Violations of the platform's limits for one outgoing part (empty list: fine)."""
    lim = LIMITS.get(platform, {})
    problems = []
    if kind == "text" and chars > lim.get("text_chars", 1 << 30):
        problems.append(f"text of {chars} characters exceeds {lim['text_chars']}")
    if kind == "text" and chars == 0:
        problems.append("empty text")
    if kind == "voice" and nbytes > lim.get("voice_bytes", lim.get("file_bytes", 1 << 40)):
        problems.append(f"voice of {nbytes} bytes exceeds {lim.get('voice_bytes', lim.get('file_bytes'))}")
    if kind == "file" and nbytes > lim.get("file_bytes", 1 << 40):
        problems.append(f"file of {nbytes} bytes exceeds {lim['file_bytes']}")
    return problems


class Inbox:
    """Thread-safe; several processes may share the file (SQLite WAL, short transactions)."""

    def __init__(self, path: str | Path | None = None, owner: str | None = None, max_attempts: int = 2) -> None:
        self.path = Path(path) if path else default_inbox_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = owner or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- helpers -----------------------------------------------------------------------------
    def _row(self, row: tuple[Any, ...] | None, is_new: bool = False) -> InboxItem | None:
        if row is None:
            return None
        (id_, platform, mid, chat, user, kind, payload, status, attempts, owner, rec, upd, transcript, result) = row
        return InboxItem(
            id_, platform, mid, chat, user, kind, json.loads(payload), status, attempts, owner, rec, upd,
            transcript, json.loads(result), is_new,
        )

    def get(self, platform: str, message_id: str) -> InboxItem | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLS} FROM messages WHERE platform=? AND message_id=?", (platform, message_id)
            ).fetchone()
        return self._row(row)

    def _transition(self, platform: str, message_id: str, to: str, from_: tuple[str, ...], **extra: Any) -> bool:
        sets = ["status=?", "updated_at=?"] + [f"{k}=?" for k in extra]
        values: list[Any] = [to, time.time()] + [
            json.dumps(v, default=str) if k == "result" else v for k, v in extra.items()
        ]
        q = (
            f"UPDATE messages SET {', '.join(sets)} WHERE platform=? AND message_id=? "
            f"AND status IN ({','.join('?' * len(from_))})"
        )
        with self._lock:
            cur = self._conn.execute(q, (*values, platform, message_id, *from_))
        return cur.rowcount == 1

    # -- the message lifecycle ---------------------------------------------------------------
    def receive(
        self, platform: str, message_id: str, chat_id: Any, user_id: Any, kind: str, payload: dict[str, Any]
    ) -> InboxItem:
        """Store an inbound message (idempotent). `is_new` is False for a redelivery."""
        now = time.time()
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO messages (platform, message_id, chat_id, user_id, kind, payload, status,"
                " received_at, updated_at) VALUES (?,?,?,?,?,?, 'received', ?, ?)",
                (platform, message_id, str(chat_id), str(user_id), kind, json.dumps(payload, default=str), now, now),
            )
            is_new = cur.rowcount == 1
            row = self._conn.execute(
                f"SELECT {_COLS} FROM messages WHERE platform=? AND message_id=?", (platform, message_id)
            ).fetchone()
        item = self._row(row, is_new)
        assert item is not None
        return item

    def claim(self, platform: str, message_id: str) -> bool:
        """received -> processing, by this owner. False if someone else has it or it is finished."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE messages SET status='processing', attempts=attempts+1, owner=?, updated_at=? "
                "WHERE platform=? AND message_id=? AND status='received' AND attempts < ?",
                (self.owner, time.time(), platform, message_id, self.max_attempts),
            )
        return cur.rowcount == 1

    def finish(self, platform: str, message_id: str, status: str = "done", result: dict[str, Any] | None = None) -> bool:
        if status not in FINAL:
            raise ValueError(f"not a final status: {status}")
        return self._transition(
            platform, message_id, status, ("received", "processing", "handed_over", "running"), result=result or {}
        )

    def hand_over(self, platform: str, message_id: str, transcript: str, result: dict[str, Any] | None = None) -> bool:
        """processing -> handed_over: a Dagster run will answer (the bot sensor launches it).

        The hand-over sequence number (the sensor's cursor) is assigned in the same statement, so
        concurrent hand-overs get distinct, increasing numbers.
        """
        with self._lock:
            cur = self._conn.execute(
                "UPDATE messages SET status='handed_over', updated_at=?, transcript=?, result=?, "
                "handed_over_seq=(SELECT COALESCE(MAX(handed_over_seq), 0) + 1 FROM messages) "
                "WHERE platform=? AND message_id=? AND status='processing'",
                (time.time(), transcript, json.dumps(result or {}, default=str), platform, message_id),
            )
        return cur.rowcount == 1

    def start_run(self, platform: str, message_id: str) -> bool:
        """handed_over -> running (exactly one run wins)."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE messages SET status='running', attempts=attempts+1, owner=?, updated_at=? "
                "WHERE platform=? AND message_id=? AND status='handed_over'",
                (self.owner, time.time(), platform, message_id),
            )
        return cur.rowcount == 1

    def handed_over_after(self, seq: int, limit: int = 100) -> list[tuple[int, InboxItem]]:
        """Messages handed over after cursor `seq`, oldest first: (seq, item)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT handed_over_seq, {_COLS} FROM messages WHERE handed_over_seq > ? "
                "ORDER BY handed_over_seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [(r[0], self._row(r[1:])) for r in rows]  # type: ignore[misc]

    def recover(self, platform: str) -> list[InboxItem]:
        """Messages to (re)process after a restart: received, or left processing by a dead owner.

        Each is reset to `received` (so `claim` counts the attempt); those out of attempts fail.
        """
        now = time.time()
        with self._lock:
            self._conn.execute(
                "UPDATE messages SET status='failed', updated_at=?, result=? WHERE platform=? "
                "AND status IN ('received','processing') AND owner != ? AND attempts >= ?",
                (now, json.dumps({"error": "gave up after repeated crashes"}), platform, self.owner, self.max_attempts),
            )
            self._conn.execute(
                "UPDATE messages SET status='received', updated_at=? WHERE platform=? AND status='processing' "
                "AND owner != ?",
                (now, platform, self.owner),
            )
            rows = self._conn.execute(
                f"SELECT {_COLS} FROM messages WHERE platform=? AND status='received' ORDER BY id", (platform,)
            ).fetchall()
        return [self._row(r) for r in rows]  # type: ignore[misc]

    def items(self, platform: str | None = None) -> list[InboxItem]:
        q = f"SELECT {_COLS} FROM messages" + (" WHERE platform=?" if platform else "") + " ORDER BY id"
        with self._lock:
            rows = self._conn.execute(q, (platform,) if platform else ()).fetchall()
        return [self._row(r) for r in rows]  # type: ignore[misc]

    # -- message history: what was sent ---------------------------------------------------------
    def already_sent(self, platform: str, message_id: str) -> set[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT part FROM sent WHERE platform=? AND message_id=?", (platform, message_id)
            ).fetchall()
        return {r[0] for r in rows}

    def record_sent(
        self,
        platform: str,
        message_id: str,
        part: str,
        kind: str,
        chat_id: Any,
        text: str = "",
        parse_mode: str = "",
        nbytes: int = 0,
        audio_s: float = 0.0,
        platform_message_id: Any = "",
        visible_chars: int | None = None,
    ) -> list[str]:
        chars = visible_chars if visible_chars is not None else len(text)
        problems = check_limits(platform, kind, chars=chars, nbytes=nbytes)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO sent (platform, message_id, part, kind, chat_id, text, parse_mode, chars,"
                " bytes, audio_s, platform_message_id, sent_at, within_limits) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (platform, message_id, part, kind, str(chat_id), text, parse_mode, chars, nbytes, audio_s,
                 str(platform_message_id), time.time(), int(not problems)),
            )
        return problems

    def history(self, platform: str | None = None, message_id: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM sent WHERE 1=1" + (" AND platform=?" if platform else "") + (
            " AND message_id=?" if message_id else ""
        ) + " ORDER BY id"
        args = tuple(a for a in (platform, message_id) if a)
        with self._lock:
            cur = self._conn.execute(q, args)
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]
