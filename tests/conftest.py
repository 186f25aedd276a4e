"""Shared fixtures: an isolated JUNE_HOME per test session, shared data, and the bundled model."""

from __future__ import annotations

import os

import pytest
from shared_data import MBPP_JSONL


@pytest.fixture(autouse=True, scope="session")
def _isolated_june_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never write into a developer's .june folder."""
    home = tmp_path_factory.mktemp("june_home")
    os.environ["JUNE_HOME"] = str(home)
    os.environ.pop("DAGSTER_HOME", None)


@pytest.fixture(scope="session")
def mbpp_source() -> str:
    if not MBPP_JSONL.exists():
        pytest.skip(f"MBPP test data not found at {MBPP_JSONL} (set JUNE_SHARED_DATA)")
    return str(MBPP_JSONL)


@pytest.fixture(scope="session")
def smollm2_client():
    """The bundled SmolLM2 GGUF, loaded once for the whole session."""
    from june_pipelines.inference.resources import LlamaCppLLMResource

    client = LlamaCppLLMResource().client("smollm2")
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _no_stale_dagster_state_storage():
    """Dagster 1.13 keeps the current defs-state storage in a context variable that a
    DagsterInstance sets on `__enter__`. Entering an instance that is already entered (for example
    `materialize(instance=...)` inside `instance_for_test()`) loses the reset, and a later test that
    loads definitions then reaches a garbage-collected instance. Every test starts without one."""
    from dagster._core.storage.defs_state.base import _current_storage

    token = _current_storage.set(None)
    yield
    try:
        _current_storage.reset(token)
    except ValueError:  # reset from another context (async fixtures): clearing is what matters
        _current_storage.set(None)
