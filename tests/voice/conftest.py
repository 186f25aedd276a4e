"""Fixtures for the voice pipeline tests: real models, loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def jfk_path() -> Path:
    path = Path(os.environ.get("JUNE_JFK_WAV") or REPO_ROOT / ".." / "shared" / "data" / "audio" / "jfk.wav")
    if not path.is_file():
        pytest.skip(f"jfk.wav not found at {path} (set JUNE_JFK_WAV)")
    return path


@pytest.fixture(scope="session")
def stt():
    from june_pipelines.voice.resources import STTResource

    return STTResource().load()


@pytest.fixture(scope="session")
def tts():
    from june_pipelines.voice.resources import TTSResource

    return TTSResource().load()


@pytest.fixture
def memory(tmp_path):
    from june_pipelines.agent.memory import ConversationMemory

    with ConversationMemory(tmp_path / "memory.sqlite") as memory:
        yield memory


@pytest.fixture
def pipeline(stt, tts, smollm2_client, memory):
    from june_pipelines.agent.loop import Agent
    from june_pipelines.voice.pipeline import VoicePipeline

    return VoicePipeline(Agent(smollm2_client, memory=memory), stt=stt, tts=tts, memory=memory)
