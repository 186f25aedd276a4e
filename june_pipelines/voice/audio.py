"""Audio in and out: decode any container PyAV understands to 16 kHz mono float32; encode OGG/Opus.

Every failure a user can cause (too large, too long, empty, corrupt) raises an `AudioError` whose
message is fit to show to that user.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np

from june_pipelines.voice.settings import DEFAULT_OPUS, VOICE_NOTE_MAX_BYTES, OpusSettings

SAMPLE_RATE = 16_000


class AudioError(ValueError):
    """Bad input audio; `str(exc)` is a message for the person who sent it."""


class AudioTooLarge(AudioError):
    pass


class AudioTooLong(AudioError):
    pass


class AudioEmpty(AudioError):
    pass


class AudioCorrupt(AudioError):
    pass


@dataclass(frozen=True)
class AudioLimits:
    max_bytes: int = 20_000_000  # Telegram bots may download files up to 20 MB (the bots' own limit: bots/settings.py)
    max_duration_s: float = 120.0

    def check_size(self, size: int) -> None:
        if size <= 0:
            raise AudioEmpty("The audio message is empty.")
        if size > self.max_bytes:
            raise AudioTooLarge(
                f"That audio file is too large ({size / 1e6:.1f} MB); the limit is "
                f"{self.max_bytes / 1e6:.0f} MB."
            )

    def too_long(self, duration_s: float) -> AudioTooLong:
        return AudioTooLong(
            f"That recording is too long ({duration_s:.0f} s); please keep voice messages under "
            f"{self.max_duration_s:.0f} seconds."
        )


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32, mono, 16 kHz, in [-1, 1]
    codec: str
    container: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def decode_audio(data: bytes, limits: AudioLimits = AudioLimits()) -> DecodedAudio:
    """Decode OGG/Opus, MP3, M4A/AAC, WAV, ... to 16 kHz mono float32."""
    import av

    limits.check_size(len(data))
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise AudioCorrupt("I could not read that audio file; it seems to be damaged or not audio.") from exc
    try:
        streams = container.streams.audio
        if not streams:
            raise AudioCorrupt("That file has no audio track.")
        stream = streams[0]
        if container.duration is not None and container.duration / 1e6 > limits.max_duration_s + 1:
            raise limits.too_long(container.duration / 1e6)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        pieces: list[np.ndarray] = []
        n = 0
        max_samples = int((limits.max_duration_s + 1) * SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().reshape(-1)
                    pieces.append(arr)
                    n += len(arr)
                if n > max_samples:
                    raise limits.too_long(n / SAMPLE_RATE)
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().reshape(-1))
        except AudioError:
            raise
        except (av.error.FFmpegError, ValueError) as exc:
            if n < SAMPLE_RATE // 10:
                raise AudioCorrupt("I could not decode that audio; the file seems to be damaged.") from exc
            # A truncated tail: keep what decoded.
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        fmt = container.format.name
    finally:
        container.close()
    samples = np.concatenate(pieces).astype(np.float32, copy=False) if pieces else np.zeros(0, np.float32)
    if len(samples) < SAMPLE_RATE // 10:
        raise AudioEmpty("The audio message is empty or too short to understand.")
    if len(samples) > limits.max_duration_s * SAMPLE_RATE:
        raise limits.too_long(len(samples) / SAMPLE_RATE)
    return DecodedAudio(samples=np.clip(samples, -1.0, 1.0), codec=codec, container=fmt)


def encode_ogg_opus(samples: np.ndarray, sample_rate: int, opus: OpusSettings = DEFAULT_OPUS) -> bytes:
    """Encode mono float32 samples as OGG/Opus (a Telegram voice note), resampled to `opus.sample_rate`."""
    import av

    buf = io.BytesIO()
    samples = np.ascontiguousarray(np.clip(samples, -1.0, 1.0).astype(np.float32).reshape(1, -1))
    with av.open(buf, mode="w", format="ogg") as out:
        stream = out.add_stream(
            "libopus", rate=opus.sample_rate, layout="mono", options={"compression_level": str(opus.complexity)}
        )
        stream.bit_rate = opus.bitrate
        resampler = av.AudioResampler(format="s16", layout="mono", rate=opus.sample_rate)
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate = sample_rate
        frames = list(resampler.resample(frame)) + list(resampler.resample(None))
        for f in frames:
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@dataclass(frozen=True)
class VoiceNote:
    ogg: bytes
    duration_s: float  # of the audio kept
    bitrate: int  # the bitrate it was encoded at
    truncated: bool  # the audio was cut to fit the size limit


def encode_voice_note(
    samples: np.ndarray, sample_rate: int, opus: OpusSettings = DEFAULT_OPUS, max_bytes: int = VOICE_NOTE_MAX_BYTES
) -> VoiceNote:
    """OGG/Opus under `max_bytes`: the bitrate is halved (down to 8 kbit/s), then the audio cut, to fit."""
    ogg = encode_ogg_opus(samples, sample_rate, opus)
    while len(ogg) > max_bytes and opus.bitrate > 8_000:
        opus = replace(opus, bitrate=opus.bitrate // 2)
        ogg = encode_ogg_opus(samples, sample_rate, opus)
    truncated = len(ogg) > max_bytes
    if truncated:  # still too long: keep the part that fits
        keep = int(len(samples) * max_bytes / len(ogg) * 0.95)
        samples = np.asarray(samples[:keep])
        ogg = encode_ogg_opus(samples, sample_rate, opus)
    return VoiceNote(ogg, len(samples) / sample_rate, opus.bitrate, truncated)


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    import wave

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return buf.getvalue()


@dataclass(frozen=True)
class AudioInfo:
    container: str
    codec: str
    sample_rate: int
    duration_s: float


def probe_audio(data: bytes) -> AudioInfo:
    """Container, codec, rate and decoded duration of an encoded file (for checks and history)."""
    import av

    with av.open(io.BytesIO(data), mode="r") as c:
        stream = c.streams.audio[0]
        rate = stream.codec_context.sample_rate
        n = sum(frame.samples for frame in c.decode(stream))
        return AudioInfo(
            container=c.format.name, codec=stream.codec_context.name, sample_rate=rate, duration_s=n / rate
        )
