"""`june voice ...` refuses bad input before any work: one line naming the option or file, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from june_pipelines.cli import main
from june_pipelines.voice.audio import encode_ogg_opus, encode_wav, probe_audio


@pytest.fixture(scope="module")
def question(tmp_path_factory) -> Path:
    """A short spoken question (Piper), as a voice note."""
    from june_pipelines.voice.resources import TTSResource

    tts = TTSResource().load(warmup=False)
    path = tmp_path_factory.mktemp("q") / "q.ogg"
    path.write_bytes(encode_ogg_opus(tts.synthesize("What is six times seven?"), tts.sample_rate))
    return path


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def assert_usage_error(result: Result, *expected: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no usage banner, no traceback
    for text in expected:
        assert text in lines[0], lines[0]
    assert result.stdout == ""


def test_bad_input_audio_is_refused_in_one_line(tmp_path):
    empty, garbage, long = tmp_path / "empty.ogg", tmp_path / "garbage.ogg", tmp_path / "long.wav"
    empty.write_bytes(b"")
    garbage.write_bytes(b"\x00\x01garbage" * 500)
    long.write_bytes(encode_wav(np.zeros(16000 * 125, np.float32), 16000))
    assert_usage_error(run("voice", "reply", tmp_path / "nope.ogg", "--text-only"), "INPUT_AUDIO", "nope.ogg",
                       "does not exist")
    assert_usage_error(run("voice", "reply", tmp_path, "--text-only"), "INPUT_AUDIO", "not a file")
    assert_usage_error(run("voice", "reply", empty, "--text-only"), "INPUT_AUDIO", "empty.ogg", "empty")
    assert_usage_error(run("voice", "reply", garbage, "--text-only"), "INPUT_AUDIO", "garbage.ogg", "could not")
    assert_usage_error(run("voice", "reply", long, "--text-only"), "INPUT_AUDIO", "too long")
    assert_usage_error(run("voice", "transcribe", garbage), "INPUT_AUDIO", "garbage.ogg")
    assert_usage_error(run("voice", "reply"), "Missing argument 'INPUT_AUDIO'")
    assert_usage_error(run("voice", "reply", garbage, "--bogus"), "No such option '--bogus'")


def test_bad_options_are_refused_before_any_work(question, tmp_path):
    memory = tmp_path / "memory.sqlite"
    existing = tmp_path / "reply.ogg"
    existing.write_bytes(b"an earlier reply")
    reply = ("voice", "reply", question, "--memory", memory)
    assert_usage_error(run(*reply), "give --out REPLY.ogg, or --text-only")
    assert_usage_error(run(*reply, "--text-only", "--out", tmp_path / "r.ogg"), "--out", "--text-only")
    assert_usage_error(run(*reply, "--out", tmp_path / "r.wav"), "--out", "r.wav", ".ogg")
    assert_usage_error(run(*reply, "--out", tmp_path / "d.ogg", "--user", ""), "--user")
    (tmp_path / "d.ogg").mkdir()
    assert_usage_error(run(*reply, "--out", tmp_path / "d.ogg"), "--out", "is a directory")
    assert_usage_error(run(*reply, "--out", existing), "--out", "exists", "--overwrite")
    assert existing.read_bytes() == b"an earlier reply"  # nothing lost
    assert_usage_error(run(*reply, "--text-only", "--stt-model", tmp_path / "none"), "--stt-model", "not a directory")
    assert_usage_error(run(*reply, "--text-only", "--stt-model", tmp_path), "--stt-model", "model.bin")
    onnx = tmp_path / "voice.onnx"
    onnx.write_bytes(b"x")
    assert_usage_error(run(*reply, "--out", tmp_path / "r.ogg", "--voice", tmp_path / "v.onnx"), "--voice")
    assert_usage_error(run(*reply, "--out", tmp_path / "r.ogg", "--voice", onnx), "--voice", "voice.onnx.json")
    assert_usage_error(run(*reply, "--text-only", env={"JUNE_LLM_BACKEND": "bogus"}), "JUNE_LLM_BACKEND")
    assert not memory.exists()  # every check ran before the memory (or any model) was opened
    assert not (tmp_path / "r.ogg").exists()


def test_bad_memory_is_refused_and_left_alone(question, tmp_path, monkeypatch):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a database\n" * 200)
    assert_usage_error(run("voice", "reply", question, "--text-only", "--memory", notes), "--memory", "notes.txt")
    assert notes.read_text() == "my notes, not a database\n" * 200
    assert_usage_error(run("voice", "reply", question, "--text-only", "--memory", tmp_path), "--memory", "directory")
    monkeypatch.setenv("JUNE_POSTGRES_URL", "mysql://june@db/june")
    assert_usage_error(run("voice", "reply", question, "--text-only", "--no-llm"), "JUNE_POSTGRES_URL")


def test_say_refuses_bad_input(tmp_path):
    assert_usage_error(run("voice", "say", "  ", "--out", tmp_path / "q.ogg"), "TEXT", "empty")
    assert_usage_error(run("voice", "say", "Hi", "--out", tmp_path / "q.mp3"), "--out", ".wav")
    assert_usage_error(run("voice", "say", "Hi", "--out", tmp_path / "q.ogg", "--length-scale", "0"), "--length-scale")
    assert_usage_error(run("voice", "say", "Hi"), "--out")


def test_reply_overwrites_only_when_asked_and_writes_whole_files(question, tmp_path):
    out, memory = tmp_path / "out" / "reply.ogg", tmp_path / "memory.sqlite"
    first = run("voice", "reply", question, "--out", out, "--memory", memory, "--no-llm")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["out"] == str(out) and summary["outcome"] == "answered" and "42" in summary["reply"]
    assert [m["stage"] for m in summary["metrics"]] == ["decode", "stt", "decide", "agent", "tts", "encode"]
    assert probe_audio(out.read_bytes()).codec == "opus"
    assert_usage_error(run("voice", "reply", question, "--out", out, "--memory", memory), "--out", "exists")
    out.write_bytes(b"stale")
    again = run("voice", "reply", question, "--out", out, "--memory", memory, "--no-llm", "--overwrite")
    assert again.exit_code == 0, again.output
    assert probe_audio(out.read_bytes()).codec == "opus"
    assert sorted(p.name for p in out.parent.iterdir()) == ["reply.ogg"]  # no temporary file left
    from june_pipelines.agent.memory import ConversationMemory

    with ConversationMemory(memory) as log:
        assert [t["outcome"] for t in log.turns()] == ["answered", "answered"]
