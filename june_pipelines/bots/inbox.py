"""The persistent inbox and message history shared by the gateways and the bot sensor.

SQLite by default (`JUNE_INBOX_DB`, else `JUNE_HOME/bots/inbox.sqlite`); PostgreSQL when
`JUNE_POSTGRES_URL` is set, so gateways, the daemon and run workers on different hosts share one
source of truth. The schema is created, or migrated from an older file, on first use. The same SQL
runs on both; every state change is one conditional `UPDATE`, so a claim is atomic across
processes and hosts, and timestamps come from the database's clock, so hosts need not agree on
the time.

Every inbound message is written here before it is processed and marked done after the reply is
sent. Statuses:

    received -> processing -> done
             -> refused | rate_limited           (answered, or ignored, without a turn)
    processing -> queued -> processing ...       (a failed turn, retried after a backoff)
               -> dead_letter                    (after `max_attempts`, with the reason; `june bot dlq`)
               -> handed_over -> running -> done | failed   (a Dagster run answers)
                                 running -> handed_over (the step's retry) | dead_letter

Claims are leases: `received` and `processing` rows belong to one process (`owner`) until
`lease_until`, and the owner renews the lease while its turn runs. Another gateway takes a message
over only when the lease has expired, that is after its owner stopped (crashed, killed, lost its
host); it then counts as another attempt. What was sent for a message (voice, text parts) is kept
in `bot_sent`, one row per part: a reprocessed turn skips parts already delivered, and every part is
checked against the platform's limits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from june_pipelines.bots.settings import LIMITS, inbox_lease_s
from june_pipelines.db import connect_postgres, postgres_url, redacted
from june_pipelines.paths import june_home

PENDING = ("received", "queued", "processing", "handed_over", "running")
FINAL = ("done", "failed", "refused", "rate_limited", "dead_letter")
SCHEMA_VERSION = 2  # 1: tables `messages`/`sent` without leases (before PostgreSQL support)
_PG_SCHEMA_LOCK = 0x6A756E01  # advisory lock ids ("jun" + n): schema creation, hand-over numbering
_PG_HANDOVER_LOCK = 0x6A756E02


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
    last_error: str = ""
    is_new: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.platform, self.message_id)

    @property
    def run_key(self) -> str:
        return f"{self.platform}:{self.message_id}"


@dataclass(frozen=True)
class Sweep:
    """What `Inbox.sweep` found: messages out of attempts (now dead letters) and messages to process."""

    dead: list[InboxItem]
    ready: list[InboxItem]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS bot_messages (
    id {pk},
    platform TEXT NOT NULL,
    message_id TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT NOT NULL DEFAULT '',
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    available_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    received_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    handed_over_seq BIGINT,
    transcript TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL DEFAULT '{{}}',
    last_error TEXT NOT NULL DEFAULT '',
    UNIQUE (platform, message_id)
);
CREATE INDEX IF NOT EXISTS bot_messages_status ON bot_messages (platform, status);
CREATE INDEX IF NOT EXISTS bot_messages_handover ON bot_messages (handed_over_seq);
CREATE TABLE IF NOT EXISTS bot_sent (
    id {pk},
    platform TEXT NOT NULL,
    message_id TEXT NOT NULL,
    part TEXT NOT NULL,
    kind TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    parse_mode TEXT NOT NULL DEFAULT '',
    chars INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    audio_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    platform_message_id TEXT NOT NULL DEFAULT '',
    sent_at DOUBLE PRECISION NOT NULL,
    within_limits INTEGER NOT NULL,
    UNIQUE (platform, message_id, part)
);
CREATE TABLE IF NOT EXISTS bot_inbox_schema (version INTEGER NOT NULL);
"""
# Columns added since schema version 1 (SQLite files written before leases).
_ADDED_COLUMNS = {
    "lease_until": "DOUBLE PRECISION NOT NULL DEFAULT 0",
    "available_at": "DOUBLE PRECISION NOT NULL DEFAULT 0",
    "last_error": "TEXT NOT NULL DEFAULT ''",
}

_COLS = (
    "id, platform, message_id, chat_id, user_id, kind, payload, status, attempts, owner, received_at,"
    " updated_at, transcript, result, last_error"
)


class _Backend:
    """One database connection: SQL is written with `?` placeholders and `{now}` for the DB clock."""

    kind = ""
    now = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    @property
    def location(self) -> str:
        raise NotImplementedError

    def ensure_schema(self) -> None:
        raise NotImplementedError

    def sql(self, query: str) -> str:
        return query.replace("{now}", self.now)

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield

    def close(self) -> None:
        raise NotImplementedError


class _SQLite(_Backend):
    kind = "sqlite"
    now = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA busy_timeout=30000")

    @property
    def location(self) -> str:
        return str(self.path)

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.sql(query), tuple(params))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def ensure_schema(self) -> None:
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        with self.transaction():
            if "messages" in tables and "bot_messages" not in tables:  # a version 1 file
                self.conn.execute("ALTER TABLE messages RENAME TO bot_messages")
                self.conn.execute("ALTER TABLE sent RENAME TO bot_sent")
                have = {r[1] for r in self.conn.execute("PRAGMA table_info(bot_messages)")}
                for column, decl in _ADDED_COLUMNS.items():
                    if column not in have:
                        self.conn.execute(f"ALTER TABLE bot_messages ADD COLUMN {column} {decl}")
            for statement in _SCHEMA.format(pk="INTEGER PRIMARY KEY AUTOINCREMENT").split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            if self.conn.execute("SELECT COUNT(*) FROM bot_inbox_schema").fetchone()[0] == 0:
                self.conn.execute("INSERT INTO bot_inbox_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            else:
                self.conn.execute("UPDATE bot_inbox_schema SET version=?", (SCHEMA_VERSION,))

    def close(self) -> None:
        self.conn.close()


class _Postgres(_Backend):
    kind = "postgresql"
    now = "(EXTRACT(EPOCH FROM clock_timestamp())::double precision)"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.closed = False
        self.conn = self._connect()

    def _connect(self) -> Any:
        conn = connect_postgres(self.url)
        conn.autocommit = True
        return conn

    @property
    def location(self) -> str:
        return redacted(self.url)

    def execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        if self.closed:
            raise RuntimeError("the inbox is closed")
        if self.conn.closed:  # the server went away since the last statement: connect again
            self.conn = self._connect()
        cursor = self.conn.cursor()
        cursor.execute(self.sql(query).replace("?", "%s"), tuple(params))
        return cursor

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def ensure_schema(self) -> None:
        # Two processes starting at once must not both create the tables: an advisory lock orders them.
        with self.transaction():
            self.execute("SELECT pg_advisory_xact_lock(?)", (_PG_SCHEMA_LOCK,))
            for statement in _SCHEMA.format(pk="BIGSERIAL PRIMARY KEY").split(";"):
                if statement.strip():
                    self.execute(statement)
            for column, decl in _ADDED_COLUMNS.items():
                self.execute(f"ALTER TABLE bot_messages ADD COLUMN IF NOT EXISTS {column} {decl}")
            if self.execute("SELECT COUNT(*) FROM bot_inbox_schema").fetchone()[0] == 0:
                self.execute("INSERT INTO bot_inbox_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            else:
                self.execute("UPDATE bot_inbox_schema SET version=?", (SCHEMA_VERSION,))

    def close(self) -> None:
        self.closed = True
        self.conn.close()


class LimitExceeded(ValueError):
    pass


def check_limits(platform: str, kind: str, chars: int = 0, nbytes: int = 0) -> list[str]:
    """Violations of the platform's limits for one outgoing part (empty list: fine)."""
    limits = LIMITS.get(platform)
    problems = []
    if kind == "text" and chars == 0:
        problems.append("empty text")
    if limits is None:
        return problems
    if kind == "text" and chars > limits.text_chars:
        problems.append(f"text of {chars} characters exceeds {limits.text_chars}")
    if kind in ("voice", "file") and nbytes > limits.voice_bytes:
        problems.append(f"{kind} of {nbytes} bytes exceeds {limits.voice_bytes}")
    return problems


class Inbox:
    """Thread-safe; any number of processes (and, on PostgreSQL, hosts) may share one inbox.

    `Inbox(path)` opens that SQLite file; `Inbox()` uses PostgreSQL when JUNE_POSTGRES_URL (or
    `url`) is set, else the default SQLite file. Close it, or use it as a context manager.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        owner: str | None = None,
        max_attempts: int = 3,
        lease_s: float | None = None,
        url: str | None = None,
    ) -> None:
        self.lease_s = lease_s if lease_s is not None else inbox_lease_s()  # settings first: fail before opening
        self.owner = owner or f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.max_attempts = max_attempts
        pg = None if path else postgres_url(url)
        self._db: _Backend = _Postgres(pg) if pg else _SQLite(Path(path) if path else default_inbox_path())
        try:
            self._db.ensure_schema()
        except BaseException:
            self._db.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        return self._db.kind

    @property
    def location(self) -> str:
        """The SQLite path or the PostgreSQL URL without its password."""
        return self._db.location

    def close(self) -> None:
        with self._db.lock:
            self._db.close()

    def __enter__(self) -> Inbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self._db.lock:
                return bool(self._db.execute("SELECT 1").fetchone()[0] == 1)
        except Exception:
            return False

    # -- helpers -----------------------------------------------------------------------------
    def _run(self, query: str, params: Sequence[Any] = ()) -> int:
        with self._db.lock:
            return int(self._db.execute(query, params).rowcount)

    def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._db.lock:
            return list(self._db.execute(query, params).fetchall())

    @staticmethod
    def _row(row: Sequence[Any] | None, is_new: bool = False) -> InboxItem | None:
        if row is None:
            return None
        (id_, platform, mid, chat, user, kind, payload, status, attempts, owner, rec, upd, transcript, result,
         last_error) = row
        return InboxItem(
            int(id_), platform, mid, chat, user, kind, json.loads(payload), status, int(attempts), owner, float(rec),
            float(upd), transcript, json.loads(result), last_error, is_new,
        )

    def _items(self, query: str, params: Sequence[Any] = ()) -> list[InboxItem]:
        return [item for item in (self._row(r) for r in self._fetch(query, params)) if item is not None]

    def get(self, platform: str, message_id: str) -> InboxItem | None:
        query = f"SELECT {_COLS} FROM bot_messages WHERE platform=? AND message_id=?"
        rows = self._fetch(query, (platform, message_id))
        return self._row(rows[0]) if rows else None

    def get_by_id(self, row_id: int) -> InboxItem | None:
        rows = self._fetch(f"SELECT {_COLS} FROM bot_messages WHERE id=?", (row_id,))
        return self._row(rows[0]) if rows else None

    def now(self) -> float:
        """The database's clock (epoch seconds), which every lease and timestamp uses."""
        return float(self._fetch("SELECT {now}")[0][0])

    # -- the message lifecycle ---------------------------------------------------------------
    def receive(
        self, platform: str, message_id: str, chat_id: Any, user_id: Any, kind: str, payload: dict[str, Any]
    ) -> InboxItem:
        """Store an inbound message (idempotent), leased to this owner. `is_new` is False for a redelivery."""
        inserted = self._run(
            "INSERT INTO bot_messages (platform, message_id, chat_id, user_id, kind, payload, status, owner,"
            " lease_until, received_at, updated_at) VALUES (?,?,?,?,?,?, 'received', ?, {now} + ?, {now}, {now})"
            " ON CONFLICT (platform, message_id) DO NOTHING",
            (platform, message_id, str(chat_id), str(user_id), kind, json.dumps(payload, default=str), self.owner,
             self.lease_s),
        )
        item = self.get(platform, message_id)
        if item is None:  # pragma: no cover - the row was inserted or already there
            raise RuntimeError(f"message {platform}:{message_id} vanished from the inbox")
        return dataclasses.replace(item, is_new=inserted == 1)

    def claim(self, platform: str, message_id: str) -> bool:
        """Lease the message to this owner for a turn (one attempt). False if someone else holds it,
        it is finished, it waits for a retry later, or it is out of attempts."""
        return self._run(
            "UPDATE bot_messages SET status='processing', attempts=attempts+1, owner=?, lease_until={now} + ?,"
            " updated_at={now} WHERE platform=? AND message_id=? AND attempts < ? AND ("
            " (status='received' AND owner=?) OR (status='queued' AND available_at <= {now})"
            " OR (status IN ('received', 'processing') AND lease_until < {now}))",
            (self.owner, self.lease_s, platform, message_id, self.max_attempts, self.owner),
        ) == 1

    def renew(self, platform: str, message_id: str) -> bool:
        """Extend this owner's lease; False means the message is no longer ours (do not answer it)."""
        return self._run(
            "UPDATE bot_messages SET lease_until={now} + ? WHERE platform=? AND message_id=? AND owner=?"
            " AND status IN ('received', 'processing')",
            (self.lease_s, platform, message_id, self.owner),
        ) == 1

    def release(self, platform: str, message_id: str, error: str, retry_in_s: float = 0.0) -> str:
        """A turn failed: queue it for another attempt after `retry_in_s`, or, out of attempts,
        make it a dead letter with the reason. Returns the new status ('' if it was not ours)."""
        self._run(
            "UPDATE bot_messages SET status=CASE WHEN attempts >= ? THEN 'dead_letter' ELSE 'queued' END,"
            " owner='', available_at={now} + ?, last_error=?, updated_at={now}"
            " WHERE platform=? AND message_id=? AND owner=? AND status='processing'",
            (self.max_attempts, retry_in_s, error, platform, message_id, self.owner),
        )
        item = self.get(platform, message_id)
        return item.status if item is not None and item.status in ("queued", "dead_letter") else ""

    def finish(
        self, platform: str, message_id: str, status: str = "done", result: dict[str, Any] | None = None
    ) -> bool:
        """Mark a message finished. Messages under a lease or a run can only be finished by their owner."""
        if status not in FINAL:
            raise ValueError(f"not a final status: {status}")
        return self._run(
            "UPDATE bot_messages SET status=?, result=?, owner='', updated_at={now} WHERE platform=? AND"
            " message_id=? AND (status IN ('queued', 'handed_over') OR (status IN ('received', 'processing',"
            " 'running') AND owner=?))",
            (status, json.dumps(result or {}, default=str), platform, message_id, self.owner),
        ) == 1

    def hand_over(self, platform: str, message_id: str, transcript: str, result: dict[str, Any] | None = None) -> bool:
        """processing -> handed_over: a Dagster run will answer (the bot sensor launches it).

        The hand-over sequence number is the sensor's cursor, so numbers must become visible in
        order: on PostgreSQL an advisory lock serializes hand-overs (a number is taken only after
        the previous one committed); SQLite serializes writers itself.
        """
        with self._db.lock, self._db.transaction():
            if self._db.kind == "postgresql":
                self._db.execute("SELECT pg_advisory_xact_lock(?)", (_PG_HANDOVER_LOCK,))
            changed = self._db.execute(
                "UPDATE bot_messages SET status='handed_over', owner='', updated_at={now}, transcript=?, result=?,"
                " handed_over_seq=(SELECT COALESCE(MAX(handed_over_seq), 0) + 1 FROM bot_messages)"
                " WHERE platform=? AND message_id=? AND status='processing' AND owner=?",
                (transcript, json.dumps(result or {}, default=str), platform, message_id, self.owner),
            ).rowcount
        return int(changed) == 1

    def start_run(self, platform: str, message_id: str) -> bool:
        """handed_over -> running (exactly one run wins)."""
        return self._run(
            "UPDATE bot_messages SET status='running', attempts=attempts+1, owner=?, updated_at={now}"
            " WHERE platform=? AND message_id=? AND status='handed_over'",
            (self.owner, platform, message_id),
        ) == 1

    def release_run(self, platform: str, message_id: str, error: str) -> str:
        """A run's attempt at a handed-over message failed: back to `handed_over` for the step's
        retry, or, out of attempts, a dead letter with the reason (listed and retried by `june bot
        dlq`). Returns the new status ('' if the message was not this run's)."""
        self._run(
            "UPDATE bot_messages SET status=CASE WHEN attempts >= ? THEN 'dead_letter' ELSE 'handed_over' END,"
            " owner='', last_error=?, updated_at={now}"
            " WHERE platform=? AND message_id=? AND owner=? AND status='running'",
            (self.max_attempts, error, platform, message_id, self.owner),
        )
        item = self.get(platform, message_id)
        return item.status if item is not None and item.status in ("handed_over", "dead_letter") else ""

    def handed_over_after(self, seq: int, limit: int = 100) -> list[tuple[int, InboxItem]]:
        """Messages handed over after cursor `seq`, oldest first: (seq, item)."""
        rows = self._fetch(
            f"SELECT handed_over_seq, {_COLS} FROM bot_messages WHERE handed_over_seq > ? ORDER BY handed_over_seq"
            " LIMIT ?",
            (seq, limit),
        )
        return [(int(r[0]), item) for r in rows if (item := self._row(r[1:])) is not None]

    def sweep(self, platform: str, limit: int = 50) -> Sweep:
        """Take over messages whose owner is gone (lease expired) and list those ready to process.

        A message out of attempts becomes a dead letter instead (returned in `dead`, so the gateway
        can tell the user); the others are queued again. `ready`: queued messages whose retry time
        has come, oldest first. Processing them still goes through `claim`, so when several gateways
        sweep at once, each message is taken by one.
        """
        with self._db.lock:
            dead = [
                item for r in self._db.execute(
                    "UPDATE bot_messages SET status='dead_letter', owner='', updated_at={now}, last_error=?"
                    " WHERE platform=? AND status IN ('received', 'processing') AND lease_until < {now}"
                    f" AND attempts >= ? RETURNING {_COLS}",
                    (f"the gateway processing it stopped {self.max_attempts} times", platform, self.max_attempts),
                ).fetchall() if (item := self._row(r)) is not None
            ]
            self._db.execute(
                "UPDATE bot_messages SET status='queued', owner='', available_at={now}, updated_at={now}"
                " WHERE platform=? AND status IN ('received', 'processing') AND lease_until < {now}",
                (platform,),
            )
        ready = self._items(
            f"SELECT {_COLS} FROM bot_messages WHERE platform=? AND status='queued' AND available_at <= {{now}}"
            " ORDER BY id LIMIT ?",
            (platform, limit),
        )
        return Sweep(dead, ready)

    def items(self, platform: str | None = None) -> list[InboxItem]:
        q = f"SELECT {_COLS} FROM bot_messages" + (" WHERE platform=?" if platform else "") + " ORDER BY id"
        return self._items(q, (platform,) if platform else ())

    def pending(self, platform: str) -> tuple[int, float]:
        """(messages not yet answered, age in seconds of the oldest of them; 0 when none)."""
        marks = ",".join("?" * len(PENDING))
        count, oldest, now = self._fetch(
            f"SELECT COUNT(*), MIN(received_at), {{now}} FROM bot_messages WHERE platform=? AND status IN ({marks})",
            (platform, *PENDING),
        )[0]
        return int(count), (float(now) - float(oldest)) if oldest is not None else 0.0

    # -- dead letters ------------------------------------------------------------------------
    def dead_letters(self, platform: str | None = None) -> list[InboxItem]:
        q = f"SELECT {_COLS} FROM bot_messages WHERE status='dead_letter'" + (" AND platform=?" if platform else "")
        return self._items(q + " ORDER BY id", (platform,) if platform else ())

    def retry(self, row_id: int) -> InboxItem | None:
        """A dead letter back in the queue with fresh attempts, for a running gateway to pick up.

        None when `row_id` is not a dead letter."""
        changed = self._run(
            "UPDATE bot_messages SET status='queued', attempts=0, owner='', available_at={now}, updated_at={now}"
            " WHERE id=? AND status='dead_letter'",
            (row_id,),
        )
        return self.get_by_id(row_id) if changed == 1 else None

    # -- message history: what was sent ---------------------------------------------------------
    def already_sent(self, platform: str, message_id: str) -> set[str]:
        rows = self._fetch("SELECT part FROM bot_sent WHERE platform=? AND message_id=?", (platform, message_id))
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
        self._run(
            "INSERT INTO bot_sent (platform, message_id, part, kind, chat_id, text, parse_mode, chars, bytes, audio_s,"
            " platform_message_id, sent_at, within_limits) VALUES (?,?,?,?,?,?,?,?,?,?,?,{now},?)"
            " ON CONFLICT (platform, message_id, part) DO UPDATE SET kind=excluded.kind, chat_id=excluded.chat_id,"
            " text=excluded.text, parse_mode=excluded.parse_mode, chars=excluded.chars, bytes=excluded.bytes,"
            " audio_s=excluded.audio_s, platform_message_id=excluded.platform_message_id, sent_at=excluded.sent_at,"
            " within_limits=excluded.within_limits",
            (platform, message_id, part, kind, str(chat_id), text, parse_mode, chars, nbytes, audio_s,
             str(platform_message_id), int(not problems)),
        )
        return problems

    def history(self, platform: str | None = None, message_id: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT * FROM bot_sent WHERE 1=1" + (" AND platform=?" if platform else "") + (
            " AND message_id=?" if message_id else ""
        ) + " ORDER BY id"
        args = tuple(a for a in (platform, message_id) if a)
        with self._db.lock:
            cur = self._db.execute(q, args)
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
