"""One conversational turn, end to end: audio bytes (or text) in, reply text and OGG/Opus out.

    decode (PyAV) -> STT (faster-whisper) -> decide + agent (LLM, tools) -> TTS (Piper) -> encode (Opus)

Each stage is timed; the turn is recorded in conversation memory. Failures a user can cause
(bad audio, silence) produce a clear reply, never an exception.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from june_pipelines.agent.memory import ConversationMemory, TurnRecord
from june_pipelines.voice.audio import AudioError, AudioLimits

if TYPE_CHECKING:
    from june_pipelines.agent.loop import Agent
    from june_pipelines.inference.base import LLMClient
    from june_pipelines.inference.resources import LLMResource
    from june_pipelines.sandboxes.resources import SandboxResource
    from june_pipelines.voice.resources import STTResource, TTSResource
    from june_pipelines.voice.stt import SpeechToText
    from june_pipelines.voice.tts import TextToSpeech

TELEGRAM_VOICE_MAX_BYTES = 1_000_000
NO_SPEECH_REPLY = "I didn't hear any speech in that message. Could you try again?"
STAGES = ("decode", "stt", "llm", "tools", "tts", "encode", "total")


@dataclass
class TurnResult:
    transcript: str
    reply: str
    decision: str  # direct | agentic | none (nothing to answer: bad audio, silence)
    latency_ms: dict[str, float]
    audio: bytes | None = None
    audio_duration_s: float = 0.0
    input_kind: str = "text"
    input_duration_s: float = 0.0
    error: str | None = None  # AudioTooLarge, AudioCorrupt, ... when the input was refused
    handoff: bool = False  # the turn needs a Dagster run (agentic with heavy tools)
    tools: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    stt_path: str = ""
    cpu_ms: dict[str, float] = field(default_factory=dict)  # process CPU time: stt, agent, speak, total

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("audio")
        d["audio_bytes"] = len(self.audio or b"")
        d["latency_ms"] = {k: round(v, 1) for k, v in self.latency_ms.items()}
        d["cpu_ms"] = {k: round(v, 1) for k, v in self.cpu_ms.items()}
        return d


class VoicePipeline:
    """Shared by the gateways, the bot sensor's runs and `june voice reply`. Thread-safe."""

    def __init__(
        self,
        agent: Agent,
        stt: SpeechToText | None = None,
        tts: TextToSpeech | None = None,
        memory: ConversationMemory | None = None,
        limits: AudioLimits = AudioLimits(),
        bitrate: int = 32_000,
        opus_rate: int = 24_000,
        max_voice_bytes: int = TELEGRAM_VOICE_MAX_BYTES,
        opus_complexity: int = 5,
    ) -> None:
        self.agent = agent
        self.stt = stt
        self.tts = tts
        self.memory = memory if memory is not None else agent.memory
        self.limits = limits
        self.bitrate = bitrate
        self.opus_rate = opus_rate
        self.max_voice_bytes = max_voice_bytes
        self.opus_complexity = opus_complexity

    # -- stages --------------------------------------------------------------------------------
    def speak(self, text: str) -> tuple[bytes | None, float, float, float]:
        """Synthesize and encode `text`: (ogg bytes, seconds of audio, tts ms, encode ms)."""
        import numpy as np

        from june_pipelines.voice.audio import encode_ogg_opus

        if self.tts is None or not text.strip():
            return None, 0.0, 0.0, 0.0
        t = time.perf_counter()
        samples = self.tts.synthesize(text)
        tts_ms = (time.perf_counter() - t) * 1000
        if len(samples) == 0:
            return None, 0.0, tts_ms, 0.0
        t = time.perf_counter()
        rate = self.tts.sample_rate
        bitrate = self.bitrate
        ogg = encode_ogg_opus(samples, rate, bitrate=bitrate, target_rate=self.opus_rate, complexity=self.opus_complexity)
        while len(ogg) > self.max_voice_bytes and bitrate > 8_000:
            bitrate //= 2
            ogg = encode_ogg_opus(samples, rate, bitrate=bitrate, target_rate=self.opus_rate, complexity=self.opus_complexity)
        if len(ogg) > self.max_voice_bytes:  # still too long: keep the part that fits
            keep = int(len(samples) * self.max_voice_bytes / len(ogg) * 0.95)
            samples = np.asarray(samples[:keep])
            ogg = encode_ogg_opus(samples, rate, bitrate=bitrate, target_rate=self.opus_rate, complexity=self.opus_complexity)
        return ogg, len(samples) / rate, tts_ms, (time.perf_counter() - t) * 1000

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
        cpu: dict[str, float] = {}
        lat = dict.fromkeys(STAGES, 0.0)
        kind = input_kind or ("voice" if audio is not None else "text")
        transcript = (text or "").strip()
        input_s = 0.0
        stt_path = ""
        error: str | None = None
        reply_text: str | None = None

        if audio is not None:
            from june_pipelines.voice.audio import decode_audio

            try:
                decoded = decode_audio(audio, self.limits)
                input_s = decoded.duration_s
            except AudioError as exc:
                error, reply_text = type(exc).__name__, str(exc)
            lat["decode"] = (time.perf_counter() - t0) * 1000
            if error is None:
                if self.stt is None:
                    raise RuntimeError("this pipeline has no speech-to-text model")
                t, c = time.perf_counter(), time.process_time()
                tr = self.stt.transcribe(decoded.samples)
                lat["stt"] = (time.perf_counter() - t) * 1000
                cpu["stt"] = (time.process_time() - c) * 1000
                transcript, stt_path = tr.text.strip(), tr.path
                if not transcript:
                    error, reply_text = "NoSpeech", NO_SPEECH_REPLY

        if reply_text is not None or not transcript:
            reply = reply_text or "Say or write something and I'll answer."
            result = TurnResult(transcript, reply, "none", lat, input_kind=kind, input_duration_s=input_s, error=error or "Empty", stt_path=stt_path)
            if want_audio and kind == "voice":
                result.audio, result.audio_duration_s, lat["tts"], lat["encode"] = self.speak(reply)
            lat["total"] = (time.perf_counter() - t0) * 1000
            return result

        t, c = time.perf_counter(), time.process_time()
        decision = self.agent.decide(transcript)
        decide_ms = (time.perf_counter() - t) * 1000
        if allow_handoff and decision.kind == "agentic" and decision.heavy:
            lat["llm"] = decide_ms
            lat["total"] = (time.perf_counter() - t0) * 1000
            return TurnResult(
                transcript, "", decision.kind, lat, input_kind=kind, input_duration_s=input_s, handoff=True,
                tools=list(decision.tools), stt_path=stt_path,
            )
        answer = self.agent.respond(user_key, transcript, decision)
        cpu["agent"] = (time.process_time() - c) * 1000
        lat["llm"] = decide_ms + answer.llm_ms
        lat["tools"] = answer.tools_ms
        result = TurnResult(
            transcript, answer.text, decision.kind, lat, input_kind=kind, input_duration_s=input_s,
            tools=answer.tools, steps=answer.steps, stt_path=stt_path,
        )
        if want_audio:
            c = time.process_time()
            result.audio, result.audio_duration_s, lat["tts"], lat["encode"] = self.speak(answer.text)
            cpu["speak"] = (time.process_time() - c) * 1000
        lat["total"] = (time.perf_counter() - t0) * 1000
        cpu["total"] = (time.process_time() - c0) * 1000
        result.cpu_ms = cpu
        if record and self.memory is not None:
            self.memory.record(
                TurnRecord(
                    user_key=user_key, transcript=transcript, reply=answer.text, decision=decision.kind,
                    platform=platform, message_id=message_id, input_kind=kind,
                    latency_ms={k: round(v, 1) for k, v in lat.items()}, tools=answer.tools, steps=answer.steps,
                    audio_s=input_s, reply_audio_s=result.audio_duration_s,
                )
            )
        return result


# -- building a pipeline from the shared resources (one per process, models kept warm) ---------
_LLM_CACHE: dict[str, LLMClient] = {}
_LLM_LOCK = threading.Lock()


def load_llm(resource: LLMResource, warmup: bool = True) -> LLMClient:
    """One LLM client per resource configuration per process (the model stays loaded)."""
    from june_pipelines.inference.base import ChatMessage, SamplingParams

    key = type(resource).__name__ + resource.model_dump_json() if hasattr(resource, "model_dump_json") else repr(resource)
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
    limits: AudioLimits = AudioLimits(),
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
        bitrate=tts.bitrate if tts is not None else 32_000,
        opus_rate=tts.opus_rate if tts is not None else 24_000,
        opus_complexity=tts.opus_complexity if tts is not None else 5,
    )
