"""Per-user conversation memory and the turn log, persisted in SQLite.

One row per turn: who, what was heard, what was answered, the decision, tools used and per-stage
latencies. The agent reads recent turns as context and searches them for the `recall` tool; the
conversation assets read the same table for analysts.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from june_pipelines.paths import june_home


def default_memory_path() -> Path:
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

    @property
    def day(self) -> str:
        return datetime.fromtimestamp(self.ts, tz=timezone.utc).strftime("%Y-%m-%d")


_SCHEMA = """
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
    error TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS turns_user ON turns (user_key, id);
CREATE INDEX IF NOT EXISTS turns_day ON turns (day);
"""

_WORD = re.compile(r"[a-z0-9']+")
_STOP = frozenset(
    "a an the i you me my your is are was were do did does what which who how to of in on for and or "
    "it that this be can could would please tell say said ask asked about earlier before remember "
    "again last time".split()
)


class ConversationMemory:
    """Thread-safe SQLite store of turns, keyed by user (e.g. `telegram:12345`)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_memory_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def record(self, turn: TurnRecord) -> int:
        with self._lock, self._conn:
            cur = self._conn.execute(
                "INSERT INTO turns (ts, day, user_key, platform, message_id, input_kind, transcript, reply,"
                " decision, latency_json, tools_json, steps_json, audio_s, reply_audio_s, error)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    turn.ts, turn.day, turn.user_key, turn.platform, turn.message_id, turn.input_kind,
                    turn.transcript, turn.reply, turn.decision, json.dumps(turn.latency_ms),
                    json.dumps(turn.tools), json.dumps(turn.steps, default=str), turn.audio_s,
                    turn.reply_audio_s, turn.error,
                ),
            )
            return int(cur.lastrowid or 0)

    def history(self, user_key: str, n: int = 3) -> list[tuple[str, str]]:
        """The last `n` (user said, assistant replied) pairs, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT transcript, reply FROM turns WHERE user_key=? AND error='' ORDER BY id DESC LIMIT ?",
                (user_key, n),
            ).fetchall()
        return [(r[0], r[1]) for r in reversed(rows)]

    def search(self, user_key: str, query: str, k: int = 2, scan: int = 200) -> list[tuple[str, str, float]]:
        """Earlier turns sharing the most content words with `query`: (said, replied, ts)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT transcript, reply, ts FROM turns WHERE user_key=? AND error='' ORDER BY id DESC LIMIT ?",
                (user_key, scan),
            ).fetchall()
        words = {w for w in _WORD.findall(query.lower()) if w not in _STOP}
        scored = []
        for i, (said, replied, ts) in enumerate(rows):
            overlap = len(words & set(_WORD.findall(said.lower()))) if words else 0
            scored.append((overlap, -i, said, replied, ts))
        scored.sort(reverse=True)
        return [(s, r, ts) for overlap, _, s, r, ts in scored[:k] if overlap or not words]

    def turns(self, day: str | None = None) -> list[dict[str, Any]]:
        """Every turn (of one UTC day, `YYYY-MM-DD`), as plain dicts for analysis."""
        q = "SELECT * FROM turns" + (" WHERE day=?" if day else "") + " ORDER BY id"
        with self._lock:
            cur = self._conn.execute(q, (day,) if day else ())
            cols = [c[0] for c in cur.description]
            rows = cur.fetchall()
        out = []
        for row in rows:
            d = dict(zip(cols, row))
            d["latency_ms"] = json.loads(d.pop("latency_json"))
            d["tools"] = json.loads(d.pop("tools_json"))
            d["steps"] = json.loads(d.pop("steps_json"))
            out.append(d)
        return out

    def days(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT day FROM turns ORDER BY day")]
