"""`june voice ...`: the voice pipeline offline, without any chat platform.

Every input and option is checked before a model loads: a problem is one line on stderr that names
the option or file, and exit code 2. Replies are written atomically, and an existing file is only
replaced with `--overwrite`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.voice.resources import STTResource, TTSResource

REPLY_SUFFIXES = (".ogg", ".oga", ".opus")
MAX_USER_KEY = 200


class OneLineUsageError(click.UsageError):
    """A usage error shown as one line (`Error: ...`), exit code 2, without the usage banner."""

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True, file=file)


class OneLineErrors(click.Command):
    """Turns click's own usage errors (a missing argument, an unknown option) into one line too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if isinstance(exc, OneLineUsageError):
                raise
            raise OneLineUsageError(exc.format_message(), ctx) from None


def bad(option: str, message: str) -> OneLineUsageError:
    return OneLineUsageError(f"{option}: {message}")


def read_input_audio(path: Path, option: str = "INPUT_AUDIO") -> bytes:
    """The file's bytes, refused unless PyAV can decode them within the voice limits."""
    from june_pipelines.voice.audio import AudioError, decode_audio

    if not path.exists():
        raise bad(option, f"{path} does not exist")
    if not path.is_file():
        raise bad(option, f"{path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise bad(option, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        decode_audio(data)
    except AudioError as exc:
        raise bad(option, f"{path}: {exc}") from None
    return data


def _writable_target(path: Path, option: str, overwrite: bool) -> None:
    if path.is_dir():
        raise bad(option, f"{path} is a directory")
    if path.exists() and not overwrite:
        raise bad(option, f"{path} exists; pass --overwrite to replace it")
    folder = path.parent
    while not folder.exists():  # the nearest folder that exists must let us create the rest
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise bad(option, f"cannot write into {folder}")


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file beside it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stt_resource(model: Path | None) -> STTResource:
    from june_pipelines.voice.resources import STTResource

    if model is None:
        return STTResource()
    if not model.is_dir():
        raise bad("--stt-model", f"{model} is not a directory")
    if not (model / "model.bin").is_file():
        raise bad("--stt-model", f"{model} has no model.bin (a CTranslate2 Whisper model directory)")
    return STTResource(model_path=str(model))


def _tts_resource(voice: Path | None, **kwargs: Any) -> TTSResource:
    from june_pipelines.voice.resources import TTSResource

    if voice is None:
        return TTSResource(**kwargs)
    if not voice.is_file():
        raise bad("--voice", f"{voice} is not a file")
    if voice.suffix != ".onnx":
        raise bad("--voice", f"{voice} is not a Piper voice (.onnx)")
    if not Path(f"{voice}.json").is_file():
        raise bad("--voice", f"{voice}.json (the voice's config) is missing")
    return TTSResource(model_path=str(voice), **kwargs)


def _open_memory(path: Path | None) -> ConversationMemory:
    import sqlite3

    from june_pipelines.agent.memory import ConversationMemory, MemorySettings
    from june_pipelines.db import DatabaseConfigError

    if path is not None:
        if path.is_dir():
            raise bad("--memory", f"{path} is a directory")
        try:
            return ConversationMemory(path)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise bad("--memory", f"{path} is not a usable SQLite file ({exc})") from None
    try:
        settings = MemorySettings.from_env()
    except DatabaseConfigError as exc:
        raise OneLineUsageError(str(exc)) from None
    try:
        return ConversationMemory(settings=settings)
    except DatabaseConfigError as exc:  # the server does not answer: not a usage error
        raise click.ClickException(str(exc)) from None
    except (sqlite3.DatabaseError, OSError) as exc:
        raise OneLineUsageError(f"conversation memory {settings.describe()} is not usable ({exc})") from None


def _shared_resources() -> dict[str, Any]:
    """The LLM and sandbox the code location would use (JUNE_LLM_BACKEND, JUNE_SANDBOX)."""
    from june_pipelines.resources import default_resources

    try:
        return default_resources()
    except ValueError as exc:  # an environment variable names something that does not exist
        raise OneLineUsageError(str(exc)) from None


@click.group("voice")
def voice_group() -> None:
    """Talk to the model offline: speech-to-text, the agent, text-to-speech."""


_audio_path = click.Path(path_type=Path)  # checked by read_input_audio, in one line


@voice_group.command("reply", cls=OneLineErrors)
@click.argument("input_audio", type=_audio_path)
@click.option("--out", type=click.Path(path_type=Path), help="Where to write the OGG/Opus reply (.ogg).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--text-only", is_flag=True, help="Skip speech synthesis; print the reply only.")
@click.option("--user", default="local:cli", show_default=True, help="Whose conversation memory to use.")
@click.option("--memory", "memory_path", type=click.Path(path_type=Path),
              help="Memory SQLite file (default: JUNE_POSTGRES_URL, else JUNE_HOME/voice/conversations.sqlite).")
@click.option("--stt-model", type=click.Path(path_type=Path),
              help="CTranslate2 Whisper model directory (default: bundled tiny.en).")
@click.option("--voice", type=click.Path(path_type=Path), help="Piper voice .onnx (default: bundled en_US-joe-medium).")
@click.option("--no-llm", is_flag=True, help="Answer without the LLM (tools and echo only); for quick checks.")
def reply_command(
    input_audio: Path, out: Path | None, overwrite: bool, text_only: bool, user: str, memory_path: Path | None,
    stt_model: Path | None, voice: Path | None, no_llm: bool,
) -> None:
    """Run one turn on INPUT_AUDIO (OGG/Opus, MP3, M4A, WAV) and write the spoken reply.

    Prints a JSON object on the last line: transcript, reply, decision, outcome, per-stage latency_ms
    and the typed stage metrics.
    """
    from june_pipelines.voice.pipeline import build_pipeline

    if text_only and out is not None:
        raise bad("--out", "cannot be used with --text-only (there is no audio to write)")
    if not text_only and out is None:
        raise OneLineUsageError("give --out REPLY.ogg, or --text-only")
    if out is not None:
        if out.suffix.lower() not in REPLY_SUFFIXES:
            raise bad("--out", f"{out} must end in .ogg (the reply is OGG/Opus)")
        _writable_target(out, "--out", overwrite)
    if not user.strip() or len(user) > MAX_USER_KEY or not user.isprintable():
        raise bad("--user", f"must be 1-{MAX_USER_KEY} printable characters")
    audio = read_input_audio(input_audio)
    stt, tts = _stt_resource(stt_model), None if text_only else _tts_resource(voice)
    res = _shared_resources()
    memory = _open_memory(memory_path)

    try:
        pipeline = build_pipeline(stt, tts, None if no_llm else res["llm"], res.get("sandbox"), memory=memory)
    except BaseException:
        memory.close()
        raise
    with pipeline:
        result = pipeline.turn(user, audio=audio, want_audio=not text_only, platform="cli",
                               message_id=input_audio.name)
    summary = result.summary()
    summary["out"] = None
    click.echo(f"heard: {result.transcript!r}", err=True)
    click.echo(f"reply: {result.reply!r}", err=True)
    write_error = None
    if out is not None and result.audio:
        try:
            write_atomically(out, result.audio)
            summary["out"] = str(out)
        except OSError as exc:
            write_error = f"could not write --out {out}: {exc.strerror or exc} (the reply is in the JSON above)"
    click.echo(json.dumps(summary, default=str))
    sys.stdout.flush()
    if write_error:
        raise click.ClickException(write_error)


@voice_group.command("transcribe", cls=OneLineErrors)
@click.argument("input_audio", type=_audio_path)
@click.option("--stt-model", type=click.Path(path_type=Path),
              help="CTranslate2 Whisper model directory (default: bundled tiny.en).")
def transcribe_command(input_audio: Path, stt_model: Path | None) -> None:
    """Print the transcript of INPUT_AUDIO as JSON."""
    import time

    from june_pipelines.voice.audio import decode_audio

    data = read_input_audio(input_audio)
    model = _stt_resource(stt_model).load()
    t = time.perf_counter()
    audio = decode_audio(data)
    tr = model.transcribe(audio.samples)
    ms = round((time.perf_counter() - t) * 1000, 1)
    click.echo(json.dumps({"text": tr.text, "duration_s": round(tr.duration_s, 2), "path": tr.path,
                           "no_speech_prob": round(tr.no_speech_prob, 3), "ms": ms}))


@voice_group.command("say", cls=OneLineErrors)
@click.argument("text")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="OGG/Opus (.ogg) or WAV (.wav) file.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--voice", type=click.Path(path_type=Path), help="Piper voice .onnx (default: bundled en_US-joe-medium).")
@click.option("--length-scale", type=click.FloatRange(0.1, 10.0), default=None, help="Speaking rate (>1 slower).")
def say_command(text: str, out: Path, overwrite: bool, voice: Path | None, length_scale: float | None) -> None:
    """Synthesize TEXT with Piper (e.g. to make test questions)."""
    from june_pipelines.voice.audio import encode_ogg_opus, encode_wav

    if not text.strip():
        raise bad("TEXT", "is empty")
    if out.suffix.lower() not in (*REPLY_SUFFIXES, ".wav"):
        raise bad("--out", f"{out} must end in .ogg or .wav")
    _writable_target(out, "--out", overwrite)
    tts = _tts_resource(voice, length_scale=length_scale).load(warmup=False)
    samples = tts.synthesize(text)
    if len(samples) == 0:
        raise bad("TEXT", "has nothing to say aloud")
    if out.suffix.lower() == ".wav":
        data = encode_wav(samples, tts.sample_rate)
    else:
        data = encode_ogg_opus(samples, tts.sample_rate)
    write_atomically(out, data)
    click.echo(json.dumps({"out": str(out), "seconds": round(len(samples) / tts.sample_rate, 2), "bytes": len(data)}))
