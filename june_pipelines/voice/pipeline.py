"""One conversational turn, end to end: audio bytes (or text) in, reply text and OGG/Opus out.

    decode (PyAV) -> stt (faster-whisper) -> decide -> agent (LLM, tools) -> tts (Piper) -> encode (Opus)

Each step is a stage of `june_pipelines.voice.stages` with a typed metric; every turn, whatever its
outcome (answered, handed over, refused audio, no speech, empty), is recorded in conversation
memory. Failures a user can cause (bad audio, silence) produce a clear reply, never an exception.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from june_pipelines.agent.memory import ConversationMemory, Outcome, TurnRecord
from june_pipelines.voice.audio import AudioLimits
from june_pipelines.voice.metrics import LATENCY_KEYS, TurnMetrics
from june_pipelines.voice.settings import DEFAULT_OPUS, VOICE_NOTE_MAX_BYTES, OpusSettings
from june_pipelines.voice.stages import (
    NO_SPEECH_REPLY,
    AgentStage,
    DecideStage,
    DecodeStage,
    EncodeStage,
    Stage,
    SynthesizeStage,
    TranscribeStage,
    TurnRequest,
    TurnState,
    run_stages,
)

if TYPE_CHECKING:
    from june_pipelines.agent.loop import Agent
    from june_pipelines.inference.base import LLMClient
    from june_pipelines.inference.resources import LLMResource
    from june_pipelines.sandboxes.resources import SandboxResource
    from june_pipelines.voice.resources import STTResource, TTSResource
    from june_pipelines.voice.stt import SpeechToText
    from june_pipelines.voice.tts import TextToSpeech

TELEGRAM_VOICE_MAX_BYTES = VOICE_NOTE_MAX_BYTES
DEFAULT_LIMITS = AudioLimits()
STAGES = LATENCY_KEYS  # the keys of `TurnResult.latency_ms`
__all__ = ["NO_SPEECH_REPLY", "STAGES", "SpokenReply", "TurnResult", "VoicePipeline", "build_pipeline"]


@dataclass
class TurnResult:
    transcript: str
    reply: str
    decision: str  # direct | agentic | none (nothing to answer: bad audio, silence)
    latency_ms: dict[str, float]  # every key of LATENCY_KEYS, derived from `metrics`
    audio: bytes | None = None
    audio_duration_s: float = 0.0
    input_kind: str = "text"
    input_duration_s: float = 0.0
    error: str | None = None  # AudioTooLarge, AudioCorrupt, NoSpeech, Empty when there was nothing to answer
    handoff: bool = False  # the turn needs a Dagster run (agentic with heavy tools)
    tools: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    stt_path: str = ""
    cpu_ms: dict[str, float] = field(default_factory=dict)  # process CPU time per stage that ran, and total
    outcome: Outcome = "answered"  # answered | handed_over | refused | no_speech | empty
    metrics: TurnMetrics = field(default_factory=TurnMetrics)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("audio")
        d["audio_bytes"] = len(self.audio or b"")
        d["latency_ms"] = {k: round(v, 1) for k, v in self.latency_ms.items()}
        d["cpu_ms"] = {k: round(v, 1) for k, v in self.cpu_ms.items()}
        d["metrics"] = self.metrics.as_dicts()
        return d


@dataclass(frozen=True)
class SpokenReply:
    """`VoicePipeline.speak()`: the voice note for a text, and what making it took."""

    audio: bytes | None  # OGG/Opus; None when there is no voice or nothing to say
    duration_s: float = 0.0
    tts_ms: float = 0.0
    encode_ms: float = 0.0
    bitrate: int = 0
    truncated: bool = False  # cut to fit the voice-note size limit


class VoicePipeline:
    """Shared by the gateways, the bot sensor's runs and `june voice reply`. Thread-safe.

    The pipeline owns the memory it is given (and its agent's warm sandbox): `close()` releases both.
    """

    def __init__(
        self,
        agent: Agent,
        stt: SpeechToText | None = None,
        tts: TextToSpeech | None = None,
        memory: ConversationMemory | None = None,
        limits: AudioLimits = DEFAULT_LIMITS,
        opus: OpusSettings = DEFAULT_OPUS,
        max_voice_bytes: int = VOICE_NOTE_MAX_BYTES,
    ) -> None:
        self.agent = agent
        self.stt = stt
        self.tts = tts
        self.memory = memory if memory is not None else agent.memory
        self.limits = limits
        self.opus = opus
        self.max_voice_bytes = max_voice_bytes
        self._speaking: tuple[Stage, ...] = (SynthesizeStage(tts), EncodeStage(opus, max_voice_bytes))
        self.stages: tuple[Stage, ...] = (
            DecodeStage(limits), TranscribeStage(stt), DecideStage(agent), AgentStage(agent), *self._speaking,
        )

    def close(self) -> None:
        """Release the memory's database handle and the agent's sandbox. Idempotent."""
        self.agent.close()
        if self.memory is not None:
            self.memory.close()

    def __enter__(self) -> VoicePipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def speak(self, text: str) -> SpokenReply:
        """Synthesize and encode `text` as a voice note."""
        turn = TurnState(TurnRequest("", want_audio=True), reply=text, outcome="answered")
        metrics = TurnMetrics(run_stages(self._speaking, turn).metrics)
        tts, encode = metrics.get("tts"), metrics.get("encode")
        return SpokenReply(
            turn.audio, turn.audio_duration_s, tts.wall_ms if tts else 0.0, encode.wall_ms if encode else 0.0,
            getattr(encode, "bitrate", 0), getattr(encode, "truncated", False),
        )

    def turn(
        self,
        user_key: str,
        audio: bytes | None = None,
        text: str | None = None,
        want_audio: bool = True,
        platform: str = "local",
        message_id: str = "",
        allow_handoff: bool = False,
        record: bool = True,
        input_kind: str | None = None,
    ) -> TurnResult:
        t0, c0 = time.perf_counter(), time.process_time()
        request = TurnRequest(
            user_key, audio, text, want_audio, platform, message_id, allow_handoff,
            input_kind or ("voice" if audio is not None else "text"),
        )
        state = run_stages(self.stages, TurnState(request, transcript=(text or "").strip()))
        metrics = TurnMetrics(state.metrics, (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000)
        result = self._result(state, metrics)
        if record and self.memory is not None:
            self.memory.record(self._record(state, result))
        return result

    @staticmethod
    def _result(state: TurnState, metrics: TurnMetrics) -> TurnResult:
        answer = state.answer
        return TurnResult(
            transcript=state.transcript,
            reply=state.reply,
            decision=state.decision.kind if state.decision is not None else "none",
            latency_ms=metrics.latency_ms(),
            audio=state.audio,
            audio_duration_s=state.audio_duration_s,
            input_kind=state.request.input_kind,
            input_duration_s=state.input_duration_s,
            error=state.error,
            handoff=state.outcome == "handed_over",
            tools=answer.tools if answer else list(state.decision.tools) if state.decision else [],
            steps=answer.steps if answer else [],
            stt_path=state.stt_path,
            cpu_ms=metrics.cpu_ms(),
            outcome=state.outcome or "empty",
            metrics=metrics,
        )

    @staticmethod
    def _record(state: TurnState, result: TurnResult) -> TurnRecord:
        request = state.request
        return TurnRecord(
            user_key=request.user_key, transcript=result.transcript, reply=result.reply, decision=result.decision,
            platform=request.platform, message_id=request.message_id, input_kind=request.input_kind,
            latency_ms={k: round(v, 1) for k, v in result.latency_ms.items()}, tools=result.tools,
            steps=result.steps, audio_s=result.input_duration_s, reply_audio_s=result.audio_duration_s,
            error=result.error or "", outcome=result.outcome,
        )


# -- building a pipeline from the shared resources (one per process, models kept warm) ---------
_LLM_CACHE: dict[str, LLMClient] = {}
_LLM_LOCK = threading.Lock()


def load_llm(resource: LLMResource, warmup: bool = True) -> LLMClient:
    """One LLM client per resource configuration per process (the model stays loaded)."""
    from june_pipelines.inference.base import ChatMessage, SamplingParams

    dump = getattr(resource, "model_dump_json", None)
    key = type(resource).__name__ + dump() if dump is not None else repr(resource)
    with _LLM_LOCK:
        if key not in _LLM_CACHE:
            client = resource.client()
            if warmup:
                client.chat([ChatMessage("user", "Hi")], SamplingParams(max_tokens=2))
            _LLM_CACHE[key] = client
        return _LLM_CACHE[key]


def build_pipeline(
    stt: STTResource | None,
    tts: TTSResource | None,
    llm: LLMResource | None,
    sandbox: SandboxResource | None = None,
    memory: ConversationMemory | None = None,
    limits: AudioLimits = DEFAULT_LIMITS,
    **agent_kwargs: Any,
) -> VoicePipeline:
    from june_pipelines.agent.loop import Agent

    memory = memory if memory is not None else ConversationMemory()
    agent = Agent(load_llm(llm) if llm is not None else None, memory=memory, sandbox=sandbox, **agent_kwargs)
    return VoicePipeline(
        agent,
        stt=stt.load() if stt is not None else None,
        tts=tts.load() if tts is not None else None,
        memory=memory,
        limits=limits,
        opus=tts.opus() if tts is not None else DEFAULT_OPUS,
    )
