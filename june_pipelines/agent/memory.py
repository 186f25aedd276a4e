"""Per-user conversation memory and the turn log: SQLite by default, PostgreSQL when configured.

One row per turn, whatever its outcome: who, what was heard, what was answered, the decision, the
outcome (answered, handed over, refused audio, no speech), tools used and per-stage latencies. The
agent reads recent answered turns as context and searches them (full-text: SQLite FTS5, PostgreSQL
`tsvector` with a GIN index) for the `recall` tool; the conversation assets read every turn.

`MemorySettings.from_env()` is the one place that reads where memory lives (JUNE_POSTGRES_URL,
JUNE_MEMORY_DB, JUNE_HOME). Each store creates (or migrates) its schema on first use; close a
memory when done (`with ConversationMemory(...) as memory:`).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Outcome = Literal["answered", "handed_over", "refused", "no_speech", "empty"]
ANSWERED: Outcome = "answered"


@dataclass(frozen=True)
class MemorySettings:
    """Where conversation memory lives: a PostgreSQL URL, else a SQLite file."""

    postgres_url: str | None = None
    sqlite_path: Path | None = None

    @classmethod
    def from_env(cls) -> MemorySettings:
        from june_pipelines.db import postgres_url

        url = postgres_url()
        return cls(postgres_url=url) if url else cls(sqlite_path=default_memory_path())

    def describe(self) -> str:
        """Where, without secrets (for logs and metadata)."""
        if self.postgres_url:
            from june_pipelines.db import redacted

            return redacted(self.postgres_url)
        return str(self.sqlite_path)


def default_memory_path() -> Path:
    """The SQLite file used when no PostgreSQL is configured: JUNE_MEMORY_DB, else under JUNE_HOME."""
    import os

    from june_pipelines.paths import june_home

    return Path(os.environ.get("JUNE_MEMORY_DB") or june_home() / "voice" / "conversations.sqlite")


@dataclass
class TurnRecord:
    user_key: str
    transcript: str
    reply: str
    decision: str = "direct"
    platform: str = "local"
    message_id: str = ""
    input_kind: str = "text"  # voice | text
    latency_ms: dict[str, float] = field(default_factory=dict)
    tools: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    audio_s: float = 0.0
    reply_audio_s: float = 0.0
    error: str = ""
    ts: float = field(default_factory=time.time)
    outcome: Outcome = ANSWERED

    @property
    def day(self) -> str:
        return datetime.fromtimestamp(self.ts, tz=UTC).strftime("%Y-%m-%d")


# The columns every store keeps, in the order `turns()` returns them.
COLUMNS = (
    "id", "ts", "day", "user_key", "platform", "message_id", "input_kind", "transcript", "reply", "decision",
    "outcome", "latency_json", "tools_json", "steps_json", "audio_s", "reply_audio_s", "error",
)
_INSERTED = COLUMNS[1:]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the i you me my your is are was were do did does what which who how to of in on for and or "
    "it that this be can could would please tell say said ask asked about earlier before remember "
    "again last time s t don".split()
)


def search_terms(query: str) -> list[str]:
    """The content words of a recall question ('what did I say about my cat?' -> ['cat'])."""
    seen: list[str] = []
    for word in _WORD.findall(query.lower()):
        if word not in _STOP and word not in seen:
            seen.append(word)
    return seen[:16]


def _row(turn: TurnRecord) -> tuple[Any, ...]:
    return (
        turn.ts, turn.day, turn.user_key, turn.platform, turn.message_id, turn.input_kind, turn.transcript,
        turn.reply, turn.decision, turn.outcome, json.dumps(turn.latency_ms), json.dumps(turn.tools),
        json.dumps(turn.steps, default=str), turn.audio_s, turn.reply_audio_s, turn.error,
    )


def _as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(COLUMNS, row, strict=True))
    for stored, name in (("latency_json", "latency_ms"), ("tools_json", "tools"), ("steps_json", "steps")):
        value = d.pop(stored)
        d[name] = json.loads(value) if isinstance(value, str) else value  # PostgreSQL's jsonb arrives decoded
    return d


class MemoryClosed(RuntimeError):
    """The memory was used after `close()`."""


class TurnStore(ABC):
    """The SQL of one database; `ConversationMemory` holds the rules common to both."""

    @abstractmethod
    def insert(self, row: tuple[Any, ...]) -> int: ...

    @abstractmethod
    def recent(self, user_key: str, n: int) -> list[tuple[str, str, float]]:
        """The user's last `n` answered turns, newest first."""

    @abstractmethod
    def search(self, user_key: str, terms: list[str], k: int) -> list[tuple[str, str, float]]:
        """The user's answered turns matching any of `terms`, best first."""

    @abstractmethod
    def rows(self, day: str | None) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def days(self) -> list[str]: ...

    @abstractmethod
    def close(self) -> None: ...


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    user_key TEXT NOT NULL,
    platform TEXT NOT NULL,
    message_id TEXT NOT NULL,
    input_kind TEXT NOT NULL,
    transcript TEXT NOT NULL,
    reply TEXT NOT NULL,
    decision TEXT NOT NULL,
    latency_json TEXT NOT NULL,
    tools_json TEXT NOT NULL,
    steps_json TEXT NOT NULL,
    audio_s REAL NOT NULL,
    reply_audio_s REAL NOT NULL,
    error TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT 'answered'
);
CREATE INDEX IF NOT EXISTS turns_user ON turns (user_key, id);
CREATE INDEX IF NOT EXISTS turns_day ON turns (day);
"""
# External-content FTS5 index over what was said and answered, kept in step by a trigger.
_SQLITE_FTS = """
CREATE VIRTUAL TABLE IF NOT EXISTS turns_fts USING fts5(
    transcript, reply, content='turns', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS turns_fts_insert AFTER INSERT ON turns BEGIN
    INSERT INTO turns_fts (rowid, transcript, reply) VALUES (new.id, new.transcript, new.reply);
END;
INSERT INTO turns_fts (turns_fts) VALUES ('rebuild');
"""
_ANSWERED_SQL = "outcome = 'answered' AND error = ''"


class SQLiteTurnStore(TurnStore):
    """One SQLite file (WAL mode), shared by threads behind a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            with self._conn:
                self._migrate()
        except BaseException:
            self._conn.close()
            raise

    def _migrate(self) -> None:
        self._conn.executescript(_SQLITE_SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(turns)")}
        if "outcome" not in columns:  # a log written before outcomes were recorded: only answered turns then
            self._conn.execute("ALTER TABLE turns ADD COLUMN outcome TEXT NOT NULL DEFAULT 'answered'")
            self._conn.execute("UPDATE turns SET outcome = 'refused' WHERE error != ''")
        has_fts = self._conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'turns_fts'").fetchone()
        if not has_fts:
            self._conn.executescript(_SQLITE_FTS)

    def insert(self, row: tuple[Any, ...]) -> int:
        sql = f"INSERT INTO turns ({', '.join(_INSERTED)}) VALUES ({', '.join('?' * len(_INSERTED))})"
        with self._lock, self._conn:
            return int(self._conn.execute(sql, row).lastrowid or 0)

    def recent(self, user_key: str, n: int) -> list[tuple[str, str, float]]:
        with self._lock:
            return self._conn.execute(
                f"SELECT transcript, reply, ts FROM turns WHERE user_key = ? AND {_ANSWERED_SQL}"
                " ORDER BY id DESC LIMIT ?",
                (user_key, n),
            ).fetchall()

    def search(self, user_key: str, terms: list[str], k: int) -> list[tuple[str, str, float]]:
        match = " OR ".join(f'"{term}"' for term in terms)  # terms are [a-z0-9]+: nothing to escape
        with self._lock:
            return self._conn.execute(
                "SELECT t.transcript, t.reply, t.ts FROM turns_fts JOIN turns t ON t.id = turns_fts.rowid"
                " WHERE turns_fts MATCH ? AND t.user_key = ? AND t.outcome = 'answered' AND t.error = ''"
                " ORDER BY bm25(turns_fts, 2.0, 1.0), t.id DESC LIMIT ?",
                (match, user_key, k),
            ).fetchall()

    def rows(self, day: str | None) -> list[tuple[Any, ...]]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM turns" + (" WHERE day = ?" if day else "") + " ORDER BY id"
        with self._lock:
            return self._conn.execute(sql, (day,) if day else ()).fetchall()

    def days(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT day FROM turns ORDER BY day")]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


PG_TABLE = "conversation_turns"
_PG_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {PG_TABLE} (
    id BIGSERIAL PRIMARY KEY,
    ts DOUBLE PRECISION NOT NULL,
    day TEXT NOT NULL,
    user_key TEXT NOT NULL,
    platform TEXT NOT NULL,
    message_id TEXT NOT NULL,
    input_kind TEXT NOT NULL,
    transcript TEXT NOT NULL,
    reply TEXT NOT NULL,
    decision TEXT NOT NULL,
    outcome TEXT NOT NULL,
    latency_json JSONB NOT NULL,
    tools_json JSONB NOT NULL,
    steps_json JSONB NOT NULL,
    audio_s DOUBLE PRECISION NOT NULL,
    reply_audio_s DOUBLE PRECISION NOT NULL,
    error TEXT NOT NULL,
    search_doc tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', transcript), 'A') || setweight(to_tsvector('english', reply), 'B')
    ) STORED
);
CREATE INDEX IF NOT EXISTS {PG_TABLE}_user ON {PG_TABLE} (user_key, id);
CREATE INDEX IF NOT EXISTS {PG_TABLE}_day ON {PG_TABLE} (day);
CREATE INDEX IF NOT EXISTS {PG_TABLE}_search ON {PG_TABLE} USING GIN (search_doc);
"""
_PG_SCHEMA_LOCK = 0x6A756E65  # pg_advisory_xact_lock key: processes creating the schema at once take turns


class PostgresTurnStore(TurnStore):
    """One PostgreSQL connection (from `june_pipelines.db`), shared by threads behind a lock; a
    connection the server dropped is opened again once before an error is raised."""

    def __init__(self, url: str) -> None:
        from june_pipelines.db import connect_postgres

        self.url = url
        self._lock = threading.Lock()
        self._conn = connect_postgres(url)
        try:
            with self._conn, self._conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_SCHEMA_LOCK,))
                cur.execute(_PG_SCHEMA)
        except BaseException:
            self._conn.close()
            raise

    def _query(self, sql: str, params: tuple[Any, ...], fetch: bool = True) -> list[tuple[Any, ...]]:
        import psycopg2

        from june_pipelines.db import connect_postgres

        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn.closed:
                        self._conn = connect_postgres(self.url)
                    with self._conn, self._conn.cursor() as cur:
                        cur.execute(sql, params)
                        return cur.fetchall() if fetch else []
                except (psycopg2.OperationalError, psycopg2.InterfaceError):
                    if attempt == 2 or not self._conn.closed:
                        raise
        raise AssertionError("unreachable")

    def insert(self, row: tuple[Any, ...]) -> int:
        values = ", ".join("%s::jsonb" if c.endswith("_json") else "%s" for c in _INSERTED)
        sql = f"INSERT INTO {PG_TABLE} ({', '.join(_INSERTED)}) VALUES ({values}) RETURNING id"
        return int(self._query(sql, row)[0][0])

    def recent(self, user_key: str, n: int) -> list[tuple[str, str, float]]:
        return self._query(
            f"SELECT transcript, reply, ts FROM {PG_TABLE} WHERE user_key = %s AND {_ANSWERED_SQL}"
            " ORDER BY id DESC LIMIT %s",
            (user_key, n),
        )

    def search(self, user_key: str, terms: list[str], k: int) -> list[tuple[str, str, float]]:
        tsquery = " | ".join(terms)  # terms are [a-z0-9]+: valid tsquery lexemes, nothing to escape
        return self._query(
            f"SELECT transcript, reply, ts FROM {PG_TABLE}, to_tsquery('english', %s) AS q"
            f" WHERE search_doc @@ q AND user_key = %s AND {_ANSWERED_SQL}"
            " ORDER BY ts_rank(search_doc, q) DESC, id DESC LIMIT %s",
            (tsquery, user_key, k),
        )

    def rows(self, day: str | None) -> list[tuple[Any, ...]]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM {PG_TABLE}" + (" WHERE day = %s" if day else "") + " ORDER BY id"
        return self._query(sql, (day,) if day else ())

    def days(self) -> list[str]:
        return [r[0] for r in self._query(f"SELECT DISTINCT day FROM {PG_TABLE} ORDER BY day", ())]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class ConversationMemory:
    """Thread-safe store of turns, keyed by user (e.g. `telegram:12345`).

    `ConversationMemory(path)` is a SQLite file; `ConversationMemory(postgres_url=...)` a PostgreSQL
    database; `ConversationMemory()` whatever `MemorySettings.from_env()` says.
    """

    def __init__(
        self, path: str | Path | None = None, *, postgres_url: str | None = None, settings: MemorySettings | None = None
    ) -> None:
        if path is not None:
            settings = MemorySettings(sqlite_path=Path(path))
        elif postgres_url is not None:
            settings = MemorySettings(postgres_url=postgres_url)
        self.settings = settings or MemorySettings.from_env()
        self._store: TurnStore = (
            PostgresTurnStore(self.settings.postgres_url)
            if self.settings.postgres_url
            else SQLiteTurnStore(self.settings.sqlite_path or default_memory_path())
        )
        self._closed = False

    @property
    def backend(self) -> str:
        return "postgres" if self.settings.postgres_url else "sqlite"

    @property
    def path(self) -> Path | None:
        """The SQLite file (None on PostgreSQL)."""
        return None if self.settings.postgres_url else self.settings.sqlite_path

    def close(self) -> None:
        """Release the database connection. Idempotent."""
        if not self._closed:
            self._closed = True
            self._store.close()

    def __enter__(self) -> ConversationMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def _open_store(self) -> TurnStore:
        if self._closed:
            raise MemoryClosed(f"conversation memory at {self.settings.describe()} is closed")
        return self._store

    def record(self, turn: TurnRecord) -> int:
        return self._open_store.insert(_row(turn))

    def history(self, user_key: str, n: int = 3) -> list[tuple[str, str]]:
        """The last `n` answered (user said, assistant replied) pairs, oldest first."""
        return [(said, replied) for said, replied, _ in reversed(self._open_store.recent(user_key, n))]

    def search(self, user_key: str, query: str, k: int = 2) -> list[tuple[str, str, float]]:
        """The user's earlier answered turns that best match `query` (full-text): (said, replied, ts).

        A query without content words ('what did I say?') gets the most recent turns."""
        terms = search_terms(query)
        if not terms:
            return [(s, r, float(ts)) for s, r, ts in self._open_store.recent(user_key, k)]
        return [(s, r, float(ts)) for s, r, ts in self._open_store.search(user_key, terms, k)]

    def turns(self, day: str | None = None) -> list[dict[str, Any]]:
        """Every turn (of one UTC day, `YYYY-MM-DD`), whatever its outcome, as plain dicts for analysis."""
        return [_as_dict(tuple(row)) for row in self._open_store.rows(day)]

    def days(self) -> list[str]:
        return self._open_store.days()
