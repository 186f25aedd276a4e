"""The stages of a voice turn, each with one job, run in order over one `TurnState`.

    decode -> stt -> decide -> agent -> tts -> encode

A stage says whether it has work to do for this turn (`wanted`) and does it (`run`), returning
its typed metric; `run_stages` times every stage the same way. A stage that finds nothing to answer
(bad audio, silence, an empty message) or hands the turn over settles its `outcome`; the stages
that look for an answer then stand aside, and the reply (an apology, say) is still spoken.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from june_pipelines.agent.memory import ANSWERED, Outcome
from june_pipelines.voice.metrics import (
    AgentMetric,
    DecideMetric,
    DecodeMetric,
    EncodeMetric,
    StageMetric,
    SynthesizeMetric,
    TranscribeMetric,
)
from june_pipelines.voice.settings import DEFAULT_OPUS, VOICE_NOTE_MAX_BYTES, OpusSettings

if TYPE_CHECKING:
    import numpy as np

    from june_pipelines.agent.decision import Decision
    from june_pipelines.agent.loop import Agent, AgentReply
    from june_pipelines.voice.audio import AudioLimits
    from june_pipelines.voice.stt import SpeechToText
    from june_pipelines.voice.tts import TextToSpeech

NO_SPEECH_REPLY = "I didn't hear any speech in that message. Could you try again?"
EMPTY_REPLY = "Say or write something and I'll answer."


@dataclass(frozen=True)
class TurnRequest:
    """What arrived, and how to answer it."""

    user_key: str
    audio: bytes | None = None
    text: str | None = None
    want_audio: bool = True
    platform: str = "local"
    message_id: str = ""
    allow_handoff: bool = False
    input_kind: str = "text"  # voice | text


@dataclass
class TurnState:
    """What the stages know so far about one turn (Pipecat passes frames; one turn is one state here)."""

    request: TurnRequest
    transcript: str = ""
    samples: np.ndarray | None = None  # decoded input, 16 kHz mono
    input_duration_s: float = 0.0
    stt_path: str = ""
    decision: Decision | None = None
    answer: AgentReply | None = None
    reply: str = ""
    outcome: Outcome | None = None  # None while an answer is still being looked for
    error: str | None = None
    speech: np.ndarray | None = None  # the synthesized reply
    speech_rate: int = 0
    audio: bytes | None = None  # the encoded reply
    audio_duration_s: float = 0.0
    metrics: list[StageMetric] = field(default_factory=list)

    @property
    def answering(self) -> bool:
        return self.outcome is None

    def settle(self, outcome: Outcome, reply: str, error: str | None = None) -> None:
        self.outcome, self.reply, self.error = outcome, reply, error


class Stage(ABC):
    """One job of a turn."""

    @abstractmethod
    def wanted(self, turn: TurnState) -> bool:
        """Whether this stage has work to do for `turn`."""

    @abstractmethod
    def run(self, turn: TurnState) -> StageMetric:
        """Do the work, update `turn`, and say what was seen (times are filled in by `run_stages`)."""


def run_stages(stages: Sequence[Stage], turn: TurnState) -> TurnState:
    for stage in stages:
        if not stage.wanted(turn):
            continue
        t, c = time.perf_counter(), time.process_time()
        metric = stage.run(turn)
        wall_ms, cpu_ms = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
        turn.metrics.append(replace(metric, wall_ms=wall_ms, cpu_ms=cpu_ms))
    return turn


class DecodeStage(Stage):
    """Received bytes (OGG/Opus, MP3, WAV, ...) -> 16 kHz mono samples; bad audio settles the turn."""

    def __init__(self, limits: AudioLimits) -> None:
        self.limits = limits

    def wanted(self, turn: TurnState) -> bool:
        return turn.answering and turn.request.audio is not None

    def run(self, turn: TurnState) -> DecodeMetric:
        from june_pipelines.voice.audio import AudioError, decode_audio

        data = turn.request.audio or b""
        try:
            decoded = decode_audio(data, self.limits)
        except AudioError as exc:
            turn.settle("refused", str(exc), type(exc).__name__)
            return DecodeMetric(input_bytes=len(data), error=type(exc).__name__)
        turn.samples, turn.input_duration_s = decoded.samples, decoded.duration_s
        return DecodeMetric(
            input_bytes=len(data), audio_s=decoded.duration_s, codec=decoded.codec, container=decoded.container
        )


class TranscribeStage(Stage):
    """Samples -> transcript (faster-whisper); no speech settles the turn."""

    def __init__(self, stt: SpeechToText | None) -> None:
        self.stt = stt

    def wanted(self, turn: TurnState) -> bool:
        return turn.answering and turn.samples is not None

    def run(self, turn: TurnState) -> TranscribeMetric:
        if self.stt is None:
            raise RuntimeError("this pipeline has no speech-to-text model")
        assert turn.samples is not None
        tr = self.stt.transcribe(turn.samples)
        turn.transcript, turn.stt_path = tr.text.strip(), tr.path
        if not turn.transcript:
            turn.settle("no_speech", NO_SPEECH_REPLY, "NoSpeech")
        return TranscribeMetric(
            audio_s=tr.duration_s, speech_s=tr.speech_s, path=tr.path, no_speech_prob=tr.no_speech_prob
        )


class DecideStage(Stage):
    """Transcript -> direct answer or agentic loop; heavy agentic turns are handed over when allowed."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def wanted(self, turn: TurnState) -> bool:
        return turn.answering

    def run(self, turn: TurnState) -> DecideMetric:
        if not turn.transcript:
            turn.settle("empty", EMPTY_REPLY, "Empty")
            return DecideMetric()
        decision = self.agent.decide(turn.transcript, user_key=turn.request.user_key)
        turn.decision = decision
        if turn.request.allow_handoff and decision.kind == "agentic" and decision.heavy:
            turn.settle("handed_over", "")
        return DecideMetric(kind=decision.kind, reason=decision.reason, tools=tuple(decision.tools))


class AgentStage(Stage):
    """Transcript + decision -> the reply text (the agent: LLM, tools, memory)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def wanted(self, turn: TurnState) -> bool:
        return turn.answering and turn.decision is not None

    def run(self, turn: TurnState) -> AgentMetric:
        answer = self.agent.respond(turn.request.user_key, turn.transcript, turn.decision)
        turn.answer = answer
        turn.settle(ANSWERED, answer.text)
        return AgentMetric(
            llm_ms=answer.llm_ms, tools_ms=answer.tools_ms, tools=tuple(answer.tools), steps=len(answer.steps)
        )


class SynthesizeStage(Stage):
    """Reply text -> speech (Piper). Answers are spoken when audio is wanted; apologies only to voice input."""

    def __init__(self, tts: TextToSpeech | None) -> None:
        self.tts = tts

    def wanted(self, turn: TurnState) -> bool:
        spoken = turn.outcome == ANSWERED or (turn.outcome != "handed_over" and turn.request.input_kind == "voice")
        return self.tts is not None and turn.request.want_audio and spoken and bool(turn.reply.strip())

    def run(self, turn: TurnState) -> SynthesizeMetric:
        assert self.tts is not None
        turn.speech, turn.speech_rate = self.tts.synthesize(turn.reply), self.tts.sample_rate
        return SynthesizeMetric(characters=len(turn.reply), audio_s=len(turn.speech) / turn.speech_rate)


class EncodeStage(Stage):
    """Speech -> an OGG/Opus voice note under the size limit."""

    def __init__(self, opus: OpusSettings = DEFAULT_OPUS, max_bytes: int = VOICE_NOTE_MAX_BYTES) -> None:
        self.opus = opus
        self.max_bytes = max_bytes

    def wanted(self, turn: TurnState) -> bool:
        return turn.speech is not None and len(turn.speech) > 0

    def run(self, turn: TurnState) -> EncodeMetric:
        from june_pipelines.voice.audio import encode_voice_note

        assert turn.speech is not None
        note = encode_voice_note(turn.speech, turn.speech_rate, self.opus, self.max_bytes)
        turn.audio, turn.audio_duration_s = note.ogg, note.duration_s
        return EncodeMetric(
            output_bytes=len(note.ogg), bitrate=note.bitrate, audio_s=note.duration_s, truncated=note.truncated
        )

