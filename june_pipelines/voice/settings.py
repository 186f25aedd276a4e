"""Voice defaults defined once: the OGG/Opus encoding of replies and the voice-note size limit.

Light on purpose (no numpy, no PyAV): resources and the Dagster layer import it at load time.
"""

from __future__ import annotations

from dataclasses import dataclass

OPUS_RATES = (48_000, 24_000, 16_000, 12_000, 8_000)  # the sample rates libopus accepts
VOICE_NOTE_MAX_BYTES = 1_000_000  # Telegram shows an OGG/Opus file as a voice note only up to 1 MB


@dataclass(frozen=True)
class OpusSettings:
    """How replies are encoded. libopus' `compression_level` 5 encodes about 3x faster than the
    default 10 at no audible cost for speech at 32 kbit/s (25 ms instead of 85 ms for 4 s here)."""

    bitrate: int = 32_000
    sample_rate: int = 24_000
    complexity: int = 5

    def __post_init__(self) -> None:
        if self.sample_rate not in OPUS_RATES:
            raise ValueError(f"libopus accepts {OPUS_RATES} Hz, not {self.sample_rate}")
        if not 0 <= self.complexity <= 10:
            raise ValueError(f"libopus compression_level is 0-10, not {self.complexity}")
        if self.bitrate < 6_000:
            raise ValueError(f"an Opus bitrate below 6000 bit/s is not usable, got {self.bitrate}")


DEFAULT_OPUS = OpusSettings()
