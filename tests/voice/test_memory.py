"""Conversation memory: the same behaviour on SQLite (the default) and on a real PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from postgres_support import fresh_database

from june_pipelines.agent.memory import ConversationMemory, MemoryClosed, MemorySettings, TurnRecord, search_terms
from june_pipelines.agent.tools import recall

OpenMemory = Callable[[], ConversationMemory]


@pytest.fixture(params=["sqlite", "postgres"])
def open_memory(request: pytest.FixtureRequest, tmp_path) -> Iterator[OpenMemory]:
    """Opens a memory on one database (the same database each call): a SQLite file or a fresh PostgreSQL."""
    opened: list[ConversationMemory] = []

    def opener(**kwargs: str) -> OpenMemory:
        def open_() -> ConversationMemory:
            memory = ConversationMemory(**kwargs)  # type: ignore[arg-type]  # path= or postgres_url=
            opened.append(memory)
            return memory

        return open_

    if request.param == "sqlite":
        yield opener(path=str(tmp_path / "memory.sqlite"))
    else:
        with fresh_database("june_memory") as url:
            yield opener(postgres_url=url)
    for memory in opened:
        memory.close()


def test_history_is_per_user_oldest_first_and_persists(open_memory: OpenMemory) -> None:
    memory = open_memory()
    memory.record(TurnRecord("telegram:1", "first", "one"))
    memory.record(TurnRecord("telegram:2", "someone else", "x"))
    memory.record(TurnRecord("telegram:1", "second", "two"))
    memory.record(TurnRecord("telegram:1", "third", "three"))
    assert memory.history("telegram:1", n=2) == [("second", "two"), ("third", "three")]
    memory.close()
    again = open_memory()  # the schema exists now: opening it again keeps the rows
    assert again.history("telegram:1", n=5) == [("first", "one"), ("second", "two"), ("third", "three")]
    assert again.history("telegram:9") == []


def test_full_text_search_ranks_matches_and_stems(open_memory: OpenMemory) -> None:
    memory = open_memory()
    memory.record(TurnRecord("u1", "My favourite colour is green.", "Nice!"))
    memory.record(TurnRecord("u1", "I have two cats at home.", "Lovely."))
    memory.record(TurnRecord("u1", "The weather is nice today.", "Indeed."))
    memory.record(TurnRecord("u2", "My favourite colour is red.", "Nice!"))
    for i in range(30):  # more history than any 'last turns' window
        memory.record(TurnRecord("u1", f"filler question number {i}", "filler answer"))
    hits = memory.search("u1", "What did I say earlier about my favourite colour?", k=2)
    assert hits[0][0] == "My favourite colour is green."
    assert all("red" not in said for said, _, _ in hits)  # another user's history stays out
    assert memory.search("u1", "do you remember my cat?")[0][0] == "I have two cats at home."  # cat ~ cats
    best = memory.search("u1", "Nice weather?", k=1)
    assert [(said, replied) for said, replied, _ in best] == [("The weather is nice today.", "Indeed.")]
    assert memory.search("u1", "zebra giraffe") == []
    # A question without content words gets the most recent turns.
    assert [s for s, _, _ in memory.search("u1", "what did I say?", k=1)] == ["filler question number 29"]


def test_search_survives_hostile_queries(open_memory: OpenMemory) -> None:
    memory = open_memory()
    memory.record(TurnRecord("u", "I like 'quotes' and \"doubles\"", "ok"))
    for query in ['"); DROP TABLE turns; --', "a OR b NOT c*", "!!! & | :*", "quotes' OR 1=1 --", "NEAR(x y)"]:
        memory.search("u", query)  # no SQL or full-text syntax error
    assert memory.search("u", "quotes?")[0][0].startswith("I like")
    assert memory.history("u") == [("I like 'quotes' and \"doubles\"", "ok")]


def test_every_outcome_is_logged_but_only_answers_are_context(open_memory: OpenMemory) -> None:
    memory = open_memory()
    day = datetime(2026, 5, 4, 12, tzinfo=UTC).timestamp()
    memory.record(TurnRecord("u", "my dog is called Rex", "Nice name.", ts=day))
    memory.record(TurnRecord("u", "", "I could not read that audio file.", decision="none", outcome="refused",
                             error="AudioCorrupt", input_kind="voice", ts=day + 1,
                             latency_ms={"decode": 3.0, "total": 4.0}))
    memory.record(TurnRecord("u", "", "I didn't hear any speech.", decision="none", outcome="no_speech",
                             error="NoSpeech", input_kind="voice", ts=day + 2))
    memory.record(TurnRecord("u", "run my dog program", "", decision="agentic", outcome="handed_over", ts=day + 3,
                             tools=["python"]))
    memory.record(TurnRecord("u", "later", "later", ts=day + 86400, steps=[{"stage": "act", "ms": 1.5}]))
    assert memory.history("u", n=10) == [("my dog is called Rex", "Nice name."), ("later", "later")]
    assert [s for s, _, _ in memory.search("u", "my dog?", k=5)] == ["my dog is called Rex"]
    turns = memory.turns("2026-05-04")
    assert [t["outcome"] for t in turns] == ["answered", "refused", "no_speech", "handed_over"]
    assert turns[1]["error"] == "AudioCorrupt" and turns[1]["latency_ms"] == {"decode": 3.0, "total": 4.0}
    assert turns[3]["tools"] == ["python"] and turns[3]["decision"] == "agentic"
    assert memory.turns()[-1]["steps"] == [{"stage": "act", "ms": 1.5}]
    assert memory.days() == ["2026-05-04", "2026-05-05"]
    assert set(turns[0]) >= {"id", "ts", "day", "user_key", "platform", "message_id", "input_kind", "transcript",
                             "reply", "decision", "outcome", "latency_ms", "tools", "steps", "audio_s",
                             "reply_audio_s", "error"}


def test_recall_tool_searches_the_whole_history(open_memory: OpenMemory) -> None:
    memory = open_memory()
    memory.record(TurnRecord("u1", "My sister lives in Lisbon.", "Lovely city."))
    for i in range(50):
        memory.record(TurnRecord("u1", f"what is {i} plus one", f"{i + 1}"))
    obs = recall(memory, "u1", "Where did I say my sister lives?")
    assert obs.ok and "Lisbon" in obs.value
    assert not recall(memory, "u2", "Where did I say my sister lives?").ok


def test_processes_opening_a_new_database_at_once_agree_on_the_schema(open_memory: OpenMemory) -> None:
    errors: list[BaseException] = []
    opened: list[ConversationMemory] = []

    def open_and_write(i: int) -> None:
        try:
            memory = open_memory()
            opened.append(memory)
            memory.record(TurnRecord("u", f"turn {i}", "ok"))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(s for s, _ in opened[0].history("u", n=10)) == [f"turn {i}" for i in range(4)]


def test_close_is_idempotent_and_final(open_memory: OpenMemory) -> None:
    with open_memory() as memory:
        memory.record(TurnRecord("u", "a", "b"))
    memory.close()
    with pytest.raises(MemoryClosed, match="closed"):
        memory.history("u")


def test_an_old_sqlite_log_is_migrated(tmp_path) -> None:
    """A file written before outcomes and full-text search existed keeps its rows and gains both."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, day TEXT NOT NULL,"
        " user_key TEXT NOT NULL, platform TEXT NOT NULL, message_id TEXT NOT NULL, input_kind TEXT NOT NULL,"
        " transcript TEXT NOT NULL, reply TEXT NOT NULL, decision TEXT NOT NULL, latency_json TEXT NOT NULL,"
        " tools_json TEXT NOT NULL, steps_json TEXT NOT NULL, audio_s REAL NOT NULL, reply_audio_s REAL NOT NULL,"
        " error TEXT NOT NULL);"
        "INSERT INTO turns VALUES (1, 1.0, '1970-01-01', 'u', 'local', '', 'text', 'I play the cello', 'Nice.',"
        " 'direct', '{}', '[]', '[]', 0, 0, '');"
        "INSERT INTO turns VALUES (2, 2.0, '1970-01-01', 'u', 'local', '', 'voice', '', 'bad audio', 'none',"
        " '{}', '[]', '[]', 0, 0, 'AudioCorrupt');"
    )
    conn.commit()
    conn.close()
    with ConversationMemory(path) as memory:
        assert [t["outcome"] for t in memory.turns()] == ["answered", "refused"]
        assert memory.search("u", "which instrument, the cello?")[0][0] == "I play the cello"
        memory.record(TurnRecord("u", "I also play piano", "Great."))
        assert memory.search("u", "piano")[0][0] == "I also play piano"


def test_settings_come_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("JUNE_POSTGRES_URL", raising=False)
    monkeypatch.setenv("JUNE_MEMORY_DB", str(tmp_path / "m.sqlite"))
    assert MemorySettings.from_env() == MemorySettings(sqlite_path=tmp_path / "m.sqlite")
    monkeypatch.setenv("JUNE_POSTGRES_URL", "postgresql://june:secret@db.example:5432/june")
    settings = MemorySettings.from_env()
    assert settings.postgres_url and settings.sqlite_path is None
    assert "secret" not in settings.describe()
    monkeypatch.setenv("JUNE_POSTGRES_URL", "mysql://x@y/z")
    from june_pipelines.db import DatabaseConfigError

    with pytest.raises(DatabaseConfigError, match="JUNE_POSTGRES_URL"):
        MemorySettings.from_env()


def test_memory_resource_uses_postgres_when_configured(tmp_path) -> None:
    from june_pipelines.voice.resources import ConversationMemoryResource

    with fresh_database("june_memory") as url:
        with ConversationMemoryResource(postgres_url=url).open() as memory:
            assert memory.backend == "postgres"
            memory.record(TurnRecord("u", "hello", "hi"))
        with ConversationMemoryResource(postgres_url=url).open() as memory:
            assert memory.history("u") == [("hello", "hi")]
    with ConversationMemoryResource(path=str(tmp_path / "m.sqlite")).open() as memory:
        assert memory.backend == "sqlite" and memory.path == tmp_path / "m.sqlite"


def test_search_terms_keep_content_words() -> None:
    assert search_terms("What did I say earlier about my favourite colour?") == ["favourite", "colour"]
    assert search_terms("what did I say?") == []


def test_the_agents_recall_tool_finds_old_turns(open_memory: OpenMemory) -> None:
    from june_pipelines.agent.loop import Agent

    memory = open_memory()
    memory.record(TurnRecord("telegram:7", "My sister lives in Lisbon.", "Lovely city."))
    for i in range(40):
        memory.record(TurnRecord("telegram:7", f"what is {i} plus one", f"{i + 1}"))
    reply = Agent(None, memory=memory).respond("telegram:7", "Do you remember where my sister lives?")
    assert reply.tools == ["recall"] and "Lisbon" in reply.text
