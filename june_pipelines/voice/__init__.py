"""The voice pipeline: decode -> speech-to-text -> agent -> text-to-speech -> OGG/Opus.

A plain library, usable without any chat platform or Dagster. Heavy libraries (PyAV,
faster-whisper/CTranslate2, Piper/onnxruntime) are imported inside functions only.
"""
