"""The conversation assets: per-day transcripts (Parquet) and the latency summary with a plot."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from june_pipelines.agent.memory import ConversationMemory, TurnRecord
from june_pipelines.assets.conversations import (
    conversation_latency_summary,
    conversation_transcripts,
)
from june_pipelines.voice.resources import ConversationMemoryResource


def test_transcripts_and_latency_summary(tmp_path):
    path = tmp_path / "memory.sqlite"
    memory = ConversationMemory(path)
    day_ts = datetime(2026, 5, 4, 12, tzinfo=UTC).timestamp()
    for i, decision in enumerate(["direct", "agentic", "direct"]):
        memory.record(TurnRecord(
            user_key=f"telegram:{i % 2}", transcript=f"question {i}", reply=f"answer {i}", decision=decision,
            platform="telegram", input_kind="voice", audio_s=3.0, reply_audio_s=2.0, ts=day_ts + i,
            latency_ms={"decode": 10, "stt": 150 + i, "llm": 200, "tools": 0, "tts": 150, "encode": 30,
                        "total": 560 + i},
        ))
    memory.record(TurnRecord("telegram:0", "other day", "x", ts=day_ts + 86400))
    resources = {"memory": ConversationMemoryResource(path=str(path))}

    result = dg.materialize([conversation_transcripts], partition_key="2026-05-04", resources=resources)
    (mat,) = result.asset_materializations_for_node("conversation_transcripts")
    assert mat.metadata["turns"].value == 3
    assert mat.metadata["decisions"].value == {"direct": 2, "agentic": 1}
    frame = pd.read_parquet(mat.metadata["path"].value)
    assert list(frame["transcript"]) == ["question 0", "question 1", "question 2"]
    assert frame["total_ms"].tolist() == [560.0, 561.0, 562.0]

    summary = dg.materialize([conversation_latency_summary], resources=resources)
    (mat,) = summary.asset_materializations_for_node("conversation_latency_summary")
    assert mat.metadata["turns"].value == 3
    assert "data:image/png;base64," in mat.metadata["plot"].value
    assert abs(mat.metadata["stt_rtf_median"].value - 0.0503) < 0.001
    table = pd.read_parquet(mat.metadata["path"].value)
    row = table[(table["decision"] == "all") & (table["stage"] == "total")].iloc[0]
    assert row["p50_ms"] == 561.0 and row["turns"] == 3


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_refused_and_silent_turns_reach_the_latency_asset(pipeline, tmp_path, backend, monkeypatch):
    """Bad audio and silence are turns too: logged with their outcome, counted in the summary."""
    import contextlib

    from postgres_support import fresh_database

    from june_pipelines.voice.audio import encode_ogg_opus

    monkeypatch.setenv("JUNE_HOME", str(tmp_path / "home"))  # this test's own transcripts folder
    with contextlib.ExitStack() as stack:
        if backend == "postgres":
            url = stack.enter_context(fresh_database("june_conv"))
            memory_resource = ConversationMemoryResource(postgres_url=url)
        else:
            memory_resource = ConversationMemoryResource(path=str(tmp_path / "log.sqlite"))
        pipeline.memory = stack.enter_context(memory_resource.open())
        pipeline.turn("telegram:5", audio=b"not audio" * 100, platform="telegram", message_id="m1")
        pipeline.turn("telegram:5", audio=encode_ogg_opus(np.zeros(16000 * 2, np.float32), 16000), message_id="m2")
        pipeline.turn("telegram:5", text="What is 6 times 7?", platform="telegram", message_id="m3")
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        resources = {"memory": memory_resource}
        result = dg.materialize([conversation_transcripts], partition_key=day, resources=resources)
        (mat,) = result.asset_materializations_for_node("conversation_transcripts")
        assert mat.metadata["turns"].value == 3
        assert mat.metadata["outcomes"].value == {"refused": 1, "no_speech": 1, "answered": 1}
        frame = pd.read_parquet(mat.metadata["path"].value)
        assert list(frame["error"]) == ["AudioCorrupt", "NoSpeech", ""]
        assert frame["decode_ms"].iloc[0] > 0 and frame["stt_ms"].iloc[1] > 0 and frame["tts_ms"].iloc[1] > 0
        summary = dg.materialize([conversation_latency_summary], resources=resources)
        (mat,) = summary.asset_materializations_for_node("conversation_latency_summary")
        table = pd.read_parquet(mat.metadata["path"].value)
        totals = table[table["stage"] == "total"].set_index(["decision", "outcome"])["turns"]
        assert totals[("all", "all")] == 3 and totals[("all", "refused")] == 1 and totals[("none", "all")] == 2


def test_the_voice_domain_binds_its_own_resources():
    from june_pipelines.definitions import defs as code_location
    from june_pipelines.resources import default_resources
    from june_pipelines.voice.defs import defs
    from june_pipelines.voice.resources import STTResource, TTSResource

    assert isinstance(defs.resources["stt"], STTResource) and isinstance(defs.resources["tts"], TTSResource)
    assert isinstance(defs.resources["memory"], ConversationMemoryResource)
    assert not {"stt", "tts", "memory"} & set(default_resources())  # bound once, by the domain
    for job in ("bot_agentic_turn_telegram", "bot_agentic_turn_discord"):  # their tts and memory resolve
        assert code_location.resolve_job_def(job) is not None
    assert {"conversation_transcripts", "conversation_latency_summary"} <= {
        k.to_user_string() for k in code_location.resolve_asset_graph().get_all_asset_keys()
    }
