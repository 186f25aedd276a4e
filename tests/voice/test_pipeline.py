"""The voice pipeline end to end on real speech, and its failure modes."""

from __future__ import annotations

import io
import json

import av
import numpy as np
import pytest
from voice_helpers import REFERENCE, wer

from june_pipelines.voice.audio import (
    AudioCorrupt,
    AudioEmpty,
    AudioLimits,
    AudioTooLarge,
    AudioTooLong,
    decode_audio,
    encode_ogg_opus,
    probe_audio,
)
from june_pipelines.voice.pipeline import NO_SPEECH_REPLY


def reencode(wav: bytes, fmt: str, codec: str) -> bytes:
    """The same speech in another container/codec, made with PyAV."""
    src = decode_audio(wav).samples
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=16000 if codec != "libopus" else 48000, layout="mono")
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=stream.rate)
        frame = av.AudioFrame.from_ndarray(src.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = 16000
        for f in list(resampler.resample(frame)) + list(resampler.resample(None)):
            for p in stream.encode(f):
                out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    return buf.getvalue()


def test_jfk_end_to_end(pipeline, stt, jfk_path):
    result = pipeline.turn("test:jfk", audio=jfk_path.read_bytes())
    assert wer(REFERENCE, result.transcript) < 0.15, result.transcript
    assert result.reply.strip() and result.decision in ("direct", "agentic")
    info = probe_audio(result.audio)
    assert (info.container, info.codec) == ("ogg", "opus")
    assert info.duration_s == pytest.approx(result.audio_duration_s, abs=0.1)
    # The reply is speech: transcribing it gives back (most of) the reply's words.
    heard = stt.transcribe(decode_audio(result.audio).samples).text
    assert wer(result.reply, heard) < 0.5, (result.reply, heard)
    assert set(result.latency_ms) >= {"decode", "stt", "llm", "tools", "tts", "encode", "total"}
    assert result.latency_ms["total"] >= result.latency_ms["stt"] + result.latency_ms["tts"]


@pytest.mark.parametrize(
    "fmt,codec", [("mp3", "libmp3lame"), ("ipod", "aac"), ("ogg", "libopus"), ("wav", "pcm_s16le")]
)
def test_decodes_common_formats(jfk_path, stt, fmt, codec):
    data = reencode(jfk_path.read_bytes(), fmt, codec)
    audio = decode_audio(data)
    assert audio.duration_s == pytest.approx(11.0, abs=0.3)
    assert wer(REFERENCE, stt.transcribe(audio.samples).text) < 0.15


def test_bad_audio_is_refused_clearly(jfk_path):
    wav = jfk_path.read_bytes()
    with pytest.raises(AudioEmpty):
        decode_audio(b"")
    with pytest.raises(AudioCorrupt, match="could not"):
        decode_audio(b"\x00\x01garbage" * 500)
    with pytest.raises(AudioTooLarge, match="too large"):
        decode_audio(wav, AudioLimits(max_bytes=1000))
    with pytest.raises(AudioTooLong, match="too long"):
        decode_audio(wav, AudioLimits(max_duration_s=5))


def test_pipeline_replies_instead_of_crashing(pipeline):
    corrupt = pipeline.turn("test:bad", audio=b"not audio" * 100, want_audio=False)
    assert corrupt.decision == "none" and corrupt.error == "AudioCorrupt" and "could not" in corrupt.reply
    silence = encode_ogg_opus(np.zeros(16000 * 3, np.float32), 16000)
    quiet = pipeline.turn("test:quiet", audio=silence)
    assert quiet.transcript == "" and quiet.reply == NO_SPEECH_REPLY
    assert probe_audio(quiet.audio).codec == "opus"  # the apology is spoken too


def test_noise_is_not_transcribed(stt):
    rng = np.random.default_rng(1)
    assert stt.transcribe((rng.standard_normal(16000 * 4) * 0.02).astype(np.float32)).text == ""


def test_reply_is_resampled_for_opus(tts):
    samples = tts.synthesize("One sentence. And another one!")
    assert tts.sample_rate == 22050
    info = probe_audio(encode_ogg_opus(samples, tts.sample_rate))
    assert info.codec == "opus" and info.duration_s == pytest.approx(len(samples) / 22050, abs=0.05)
    assert len(list(tts.stream("One sentence. And another one!"))) == 2  # sentence by sentence


def test_cli_voice_reply(jfk_path, tmp_path):
    from click.testing import CliRunner

    from june_pipelines.cli import main

    runner = CliRunner()
    question, out, memory = tmp_path / "q.ogg", tmp_path / "reply.ogg", str(tmp_path / "m.sqlite")
    said = runner.invoke(main, ["voice", "say", "What is seventeen times twenty three?", "--out", str(question)])
    assert said.exit_code == 0, said.output
    res = runner.invoke(main, ["voice", "reply", str(question), "--out", str(out), "--memory", memory])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert "17" in summary["transcript"] and "391" in summary["reply"] and summary["decision"] == "agentic"
    assert set(summary["latency_ms"]) >= {"decode", "stt", "llm", "tts", "encode", "total"}
    assert probe_audio(out.read_bytes()).codec == "opus"
    text_only = runner.invoke(main, ["voice", "reply", str(jfk_path), "--text-only", "--no-llm", "--memory", memory])
    summary = json.loads(text_only.stdout.strip().splitlines()[-1])
    assert summary["audio_bytes"] == 0 and wer(REFERENCE, summary["transcript"]) < 0.15


def test_every_turn_is_recorded_with_its_outcome_and_stage_metrics(pipeline, memory):
    from june_pipelines.voice.metrics import AgentMetric, DecodeMetric, EncodeMetric, TranscribeMetric

    corrupt = pipeline.turn("test:log", audio=b"not audio" * 100, message_id="1")
    assert (corrupt.outcome, corrupt.error, corrupt.decision) == ("refused", "AudioCorrupt", "none")
    assert corrupt.metrics.ran() == ["decode", "tts", "encode"]  # the apology is spoken
    decode = corrupt.metrics.get("decode")
    assert isinstance(decode, DecodeMetric) and decode.error == "AudioCorrupt" and decode.input_bytes == 900

    silence = encode_ogg_opus(np.zeros(16000 * 2, np.float32), 16000)
    quiet = pipeline.turn("test:log", audio=silence, want_audio=False, message_id="2")
    assert (quiet.outcome, quiet.error) == ("no_speech", "NoSpeech") and quiet.metrics.ran() == ["decode", "stt"]
    stt = quiet.metrics.get("stt")
    assert isinstance(stt, TranscribeMetric) and stt.path == "none" and stt.audio_s == pytest.approx(2.0, abs=0.1)

    empty = pipeline.turn("test:log", text="   ", message_id="3")
    assert (empty.outcome, empty.error, empty.audio) == ("empty", "Empty", None)  # text in: no spoken apology

    handed = pipeline.turn("test:log", text="Run this python:\n```python\nprint(1)\n```", allow_handoff=True,
                           message_id="4")
    assert handed.outcome == "handed_over" and handed.handoff and handed.reply == "" and handed.audio is None
    assert handed.metrics.ran() == ["decide"] and handed.tools == ["python"]

    answered = pipeline.turn("test:log", text="What is 6 times 7?", message_id="5")
    assert answered.outcome == "answered" and "42" in answered.reply and answered.error is None
    assert answered.metrics.ran() == ["decide", "agent", "tts", "encode"]
    agent, encode = answered.metrics.get("agent"), answered.metrics.get("encode")
    assert isinstance(agent, AgentMetric) and agent.tools == ("calc",)
    assert isinstance(encode, EncodeMetric) and encode.output_bytes == len(answered.audio) and not encode.truncated
    # latency_ms is derived from the typed metrics, with every key the gateways and the log use.
    lat = answered.latency_ms
    assert list(lat) == ["decode", "stt", "llm", "tools", "tts", "encode", "total"]
    assert lat["llm"] == pytest.approx(answered.metrics.get("decide").wall_ms + agent.llm_ms)
    assert lat["tools"] == agent.tools_ms and lat["encode"] == encode.wall_ms and lat["decode"] == 0.0
    assert lat["total"] >= sum(m.wall_ms for m in answered.metrics.stages if m.stage != "agent")
    assert set(answered.cpu_ms) == {"decide", "agent", "tts", "encode", "total"}
    assert answered.summary()["metrics"][1]["stage"] == "agent"

    logged = [t for t in memory.turns() if t["user_key"] == "test:log"]
    assert [(t["message_id"], t["outcome"], t["error"]) for t in logged] == [
        ("1", "refused", "AudioCorrupt"), ("2", "no_speech", "NoSpeech"), ("3", "empty", "Empty"),
        ("4", "handed_over", ""), ("5", "answered", ""),
    ]
    assert logged[0]["latency_ms"]["decode"] > 0 and logged[1]["latency_ms"]["stt"] > 0
    assert memory.history("test:log", n=10) == [("What is 6 times 7?", answered.reply)]  # only answers are context


def test_speak_returns_a_typed_voice_note(pipeline):
    from june_pipelines.voice.pipeline import SpokenReply

    spoken = pipeline.speak("Hello there. This is a test.")
    assert isinstance(spoken, SpokenReply) and spoken.bitrate == 32_000 and not spoken.truncated
    assert probe_audio(spoken.audio).duration_s == pytest.approx(spoken.duration_s, abs=0.1)
    assert spoken.tts_ms > 0 and spoken.encode_ms > 0
    assert pipeline.speak("   ") == SpokenReply(None)


def test_voice_notes_fit_the_size_limit(tts):
    from june_pipelines.voice.audio import encode_voice_note
    from june_pipelines.voice.settings import OpusSettings

    samples = tts.synthesize("This reply is long enough to need a lower bitrate. " * 3)
    seconds = len(samples) / tts.sample_rate
    full = encode_voice_note(samples, tts.sample_rate)
    assert (full.bitrate, full.truncated) == (32_000, False) and full.duration_s == pytest.approx(seconds)
    lowered = encode_voice_note(samples, tts.sample_rate, max_bytes=len(full.ogg) // 2)
    assert lowered.bitrate < 32_000 and not lowered.truncated and len(lowered.ogg) <= len(full.ogg) // 2
    cut = encode_voice_note(samples, tts.sample_rate, max_bytes=4_000)
    assert cut.truncated and len(cut.ogg) <= 4_000 and cut.duration_s < seconds
    assert probe_audio(cut.ogg).duration_s == pytest.approx(cut.duration_s, abs=0.1)
    with pytest.raises(ValueError, match="22050"):
        OpusSettings(sample_rate=22050)
