"""Typed per-stage metrics of a voice turn, in the spirit of Pipecat's `MetricsData`.

Each stage of `june_pipelines.voice.stages` reports one metric: its wall-clock and process CPU time
(measured by the runner, the same way for every stage) plus what that stage alone knows (how many
bytes came in, which STT path ran, which tools were used, how much speech went out). The flat
`latency_ms` dict that gateways, the turn log and the conversation assets use is derived from them;
its keys are `LATENCY_KEYS`, defined here once. Light on purpose: the Dagster layer imports it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

LatencyKey = Literal["decode", "stt", "llm", "tools", "tts", "encode", "total"]
LATENCY_KEYS: tuple[LatencyKey, ...] = ("decode", "stt", "llm", "tools", "tts", "encode", "total")


@dataclass(frozen=True, kw_only=True)
class StageMetric:
    """What one stage measured. `wall_ms` and `cpu_ms` (all threads of the process) are set by the runner."""

    stage: str
    wall_ms: float = 0.0
    cpu_ms: float = 0.0

    def latency(self) -> dict[LatencyKey, float]:
        """This stage's share of `latency_ms`."""
        return {}

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in asdict(self).items()}


@dataclass(frozen=True, kw_only=True)
class DecodeMetric(StageMetric):
    stage: str = "decode"
    input_bytes: int = 0
    audio_s: float = 0.0
    codec: str = ""
    container: str = ""
    error: str = ""  # AudioCorrupt, AudioTooLong, ... when the input was refused

    def latency(self) -> dict[LatencyKey, float]:
        return {"decode": self.wall_ms}


@dataclass(frozen=True, kw_only=True)
class TranscribeMetric(StageMetric):
    stage: str = "stt"
    audio_s: float = 0.0
    speech_s: float = 0.0
    path: str = ""  # fast | fast-30s | full | none (no speech found)
    no_speech_prob: float = 0.0

    def latency(self) -> dict[LatencyKey, float]:
        return {"stt": self.wall_ms}


@dataclass(frozen=True, kw_only=True)
class DecideMetric(StageMetric):
    stage: str = "decide"
    kind: str = "none"  # direct | agentic | none (nothing to answer)
    reason: str = ""
    tools: tuple[str, ...] = ()

    def latency(self) -> dict[LatencyKey, float]:
        return {"llm": self.wall_ms}


@dataclass(frozen=True, kw_only=True)
class AgentMetric(StageMetric):
    stage: str = "agent"
    llm_ms: float = 0.0  # generation time inside the agent (answer, plans, code)
    tools_ms: float = 0.0  # time the tools ran
    tools: tuple[str, ...] = ()
    steps: int = 0

    def latency(self) -> dict[LatencyKey, float]:
        return {"llm": self.llm_ms, "tools": self.tools_ms}


@dataclass(frozen=True, kw_only=True)
class SynthesizeMetric(StageMetric):
    stage: str = "tts"
    characters: int = 0
    audio_s: float = 0.0

    def latency(self) -> dict[LatencyKey, float]:
        return {"tts": self.wall_ms}


@dataclass(frozen=True, kw_only=True)
class EncodeMetric(StageMetric):
    stage: str = "encode"
    output_bytes: int = 0
    bitrate: int = 0
    audio_s: float = 0.0
    truncated: bool = False

    def latency(self) -> dict[LatencyKey, float]:
        return {"encode": self.wall_ms}


@dataclass
class TurnMetrics:
    """Every stage that ran, in order, and the turn's total wall and CPU time."""

    stages: list[StageMetric] = field(default_factory=list)
    total_ms: float = 0.0
    total_cpu_ms: float = 0.0

    def get(self, stage: str) -> StageMetric | None:
        return next((m for m in self.stages if m.stage == stage), None)

    def ran(self) -> list[str]:
        return [m.stage for m in self.stages]

    def latency_ms(self) -> dict[str, float]:
        """Every key of `LATENCY_KEYS`; a stage that did not run counts 0."""
        out: dict[str, float] = dict.fromkeys(LATENCY_KEYS, 0.0)
        for metric in self.stages:
            for key, ms in metric.latency().items():
                out[key] += ms
        out["total"] = self.total_ms
        return out

    def cpu_ms(self) -> dict[str, float]:
        """Process CPU time per stage that ran, and `total`."""
        out = {m.stage: m.cpu_ms for m in self.stages}
        out["total"] = self.total_cpu_ms
        return out

    def as_dicts(self) -> list[dict[str, Any]]:
        return [m.as_dict() for m in self.stages]
