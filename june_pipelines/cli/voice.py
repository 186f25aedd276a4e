"""`june voice ...`: the voice pipeline offline, without any chat platform."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def _resources(stt_model: str | None, voice: str | None):  # noqa: ANN202
    from june_pipelines.resources import default_resources
    from june_pipelines.voice.resources import STTResource, TTSResource

    res = default_resources()
    stt = STTResource(model_path=stt_model) if stt_model else res.get("stt") or STTResource()
    tts = TTSResource(model_path=voice) if voice else res.get("tts") or TTSResource()
    return res, stt, tts


@click.group("voice")
def voice_group() -> None:
    """Talk to the model offline: speech-to-text, the agent, text-to-speech."""


@voice_group.command("reply")
@click.argument("input_audio", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the OGG/Opus reply.")
@click.option("--text-only", is_flag=True, help="Skip speech synthesis; print the reply only.")
@click.option("--user", default="local:cli", show_default=True, help="Whose conversation memory to use.")
@click.option("--memory", "memory_path", type=click.Path(dir_okay=False, path_type=Path), help="Memory SQLite file (default: JUNE_HOME/voice/conversations.sqlite).")
@click.option("--stt-model", help="CTranslate2 Whisper model directory (default: bundled tiny.en).")
@click.option("--voice", help="Piper voice .onnx (default: bundled en_US-joe-medium).")
@click.option("--no-llm", is_flag=True, help="Answer without the LLM (tools and echo only); for quick checks.")
def reply_command(
    input_audio: Path, out: Path | None, text_only: bool, user: str, memory_path: Path | None,
    stt_model: str | None, voice: str | None, no_llm: bool,
) -> None:
    """Run one turn on INPUT_AUDIO (OGG/Opus, MP3, M4A, WAV) and write the spoken reply.

    Prints a JSON object on the last line: transcript, reply, decision and per-stage latency_ms.
    """
    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.voice.pipeline import build_pipeline

    if not text_only and out is None:
        raise click.UsageError("give --out REPLY.ogg, or --text-only")
    res, stt, tts = _resources(stt_model, voice)
    pipeline = build_pipeline(
        stt, None if text_only else tts, None if no_llm else res["llm"], res.get("sandbox"),
        memory=ConversationMemory(memory_path) if memory_path else None,
    )
    result = pipeline.turn(user, audio=input_audio.read_bytes(), want_audio=not text_only, platform="cli",
                           message_id=input_audio.name)
    if out is not None and result.audio:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(result.audio)
    summary = result.summary()
    summary["out"] = str(out) if out is not None and result.audio else None
    click.echo(f"heard: {result.transcript!r}", err=True)
    click.echo(f"reply: {result.reply!r}", err=True)
    click.echo(json.dumps(summary, default=str))
    sys.stdout.flush()


@voice_group.command("transcribe")
@click.argument("input_audio", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--stt-model", help="CTranslate2 Whisper model directory (default: bundled tiny.en).")
def transcribe_command(input_audio: Path, stt_model: str | None) -> None:
    """Print the transcript of INPUT_AUDIO as JSON."""
    import time

    from june_pipelines.voice.audio import decode_audio

    _, stt, _ = _resources(stt_model, None)
    model = stt.load()
    t = time.perf_counter()
    audio = decode_audio(input_audio.read_bytes())
    tr = model.transcribe(audio.samples)
    click.echo(json.dumps({"text": tr.text, "duration_s": round(tr.duration_s, 2), "path": tr.path,
                           "no_speech_prob": round(tr.no_speech_prob, 3), "ms": round((time.perf_counter() - t) * 1000, 1)}))


@voice_group.command("say")
@click.argument("text")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="OGG/Opus (.ogg) or WAV (.wav) file.")
@click.option("--voice", help="Piper voice .onnx (default: bundled en_US-joe-medium).")
@click.option("--length-scale", type=float, default=None, help="Speaking rate (>1 slower).")
def say_command(text: str, out: Path, voice: str | None, length_scale: float | None) -> None:
    """Synthesize TEXT with Piper (e.g. to make test questions)."""
    from june_pipelines.voice.audio import encode_ogg_opus, encode_wav
    from june_pipelines.voice.resources import TTSResource

    tts = TTSResource(model_path=voice, length_scale=length_scale).load(warmup=False)
    samples = tts.synthesize(text)
    data = encode_wav(samples, tts.sample_rate) if out.suffix == ".wav" else encode_ogg_opus(samples, tts.sample_rate)
    out.write_bytes(data)
    click.echo(json.dumps({"out": str(out), "seconds": round(len(samples) / tts.sample_rate, 2), "bytes": len(data)}))
