"""Fixtures for the gateway tests: real models (loaded once), a question spoken by Piper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from fake_cdn import FakeCDN
from fake_telegram_api import FakeBotAPI
from postgres_support import fresh_database


@pytest.fixture(scope="session")
def speech_models():
    from june_pipelines.voice.resources import STTResource, TTSResource

    return STTResource().load(), TTSResource().load()


@pytest.fixture(scope="session")
def spoken_question(speech_models) -> bytes:
    """'What is seventeen times twenty three?' as an OGG/Opus voice note (about 3 s)."""
    from june_pipelines.voice.audio import encode_ogg_opus
    from june_pipelines.voice.tts import TextToSpeech, TTSOptions

    voice = TextToSpeech(TTSOptions(length_scale=1.3))
    samples = voice.synthesize("What is seventeen times twenty three?")
    pad = np.zeros(int(0.3 * voice.sample_rate), np.float32)
    return encode_ogg_opus(np.concatenate([pad, samples, pad]), voice.sample_rate)


@pytest.fixture
def make_pipeline(speech_models, smollm2_client, tmp_path: Path):
    from june_pipelines.agent.loop import Agent
    from june_pipelines.agent.memory import ConversationMemory
    from june_pipelines.voice.pipeline import VoicePipeline

    def make(**kwargs):
        memory = ConversationMemory(tmp_path / "memory.sqlite")
        stt, tts = speech_models
        return VoicePipeline(Agent(smollm2_client, memory=memory), stt=stt, tts=tts, memory=memory, **kwargs)

    return make


@pytest_asyncio.fixture
async def api():
    """A fake Telegram Bot API server on loopback, one per test."""
    server = FakeBotAPI()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def cdn():
    """A loopback file server for attachment downloads (counts the bytes it sent)."""
    server = FakeCDN()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def inbox_target(request, tmp_path: Path):
    """Keyword arguments that open one shared inbox: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield {"path": str(tmp_path / "inbox.sqlite")}
    else:
        with fresh_database("june_inbox") as url:
            yield {"url": url}
