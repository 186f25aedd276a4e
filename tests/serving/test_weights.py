"""Weights: local imports of the bundled models, manifest verification, offline and no-network failures."""

from __future__ import annotations

import hashlib
import json
import socket
import sys
from pathlib import Path

import pytest

from june_pipelines.registry import RegistryError, get_model
from june_pipelines.serving import weights as W

sys.path.insert(0, str(Path(__file__).parent))  # fake_hub


def test_import_bundled_gguf_writes_verified_manifest(local_registry, tmp_path):
    spec = get_model("smollm2-gguf")
    got = W.ensure_weights(spec, tmp_path / "store")
    assert got.path == tmp_path / "store" / "smollm2-gguf" / "local"
    assert [f.path for f in got.manifest.files] == ["SmolLM2-135M-Instruct.Q4_1.gguf"]  # __init__.py filtered out
    entry = got.manifest.files[0]
    assert entry.sha256 == W.sha256_file(spec.gguf_path())
    assert entry.size == spec.gguf_path().stat().st_size
    on_disk = json.loads((got.path / W.MANIFEST_NAME).read_text())
    assert on_disk["files"][0]["sha256"] == entry.sha256
    meta = got.metadata()
    assert meta["file_count"] == 1 and meta["size_bytes"] == entry.size and meta["revision"] == "local"
    # A second run reuses the verified entry instead of copying again.
    assert W.ensure_weights(spec, tmp_path / "store").reused


def test_import_whisper_directory_from_python_callable(local_registry, tmp_path):
    got = W.ensure_weights(get_model("whisper-tiny-en"), tmp_path / "store")
    names = {f.path for f in got.manifest.files}
    assert {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"} <= names
    assert W.verify(got.path).files == got.manifest.files


def test_verify_detects_tampering_and_missing_files(local_registry, tmp_path):
    got = W.ensure_weights(get_model("whisper-tiny-en"), tmp_path / "store")
    vocab = got.path / "vocabulary.txt"
    data = bytearray(vocab.read_bytes())
    data[0] ^= 0xFF
    vocab.write_bytes(bytes(data))
    with pytest.raises(W.WeightsError, match="sha256 of vocabulary.txt"):
        W.verify(got.path)
    (got.path / "config.json").unlink()
    with pytest.raises(W.WeightsError, match="missing config.json"):
        W.verify(got.path)
    # A cached hub entry is re-verified on use, so corruption is never served silently.


def test_import_dir_for_air_gapped_hub_model(local_registry, tmp_path):
    src = tmp_path / "transfer"
    src.mkdir()
    (src / "config.json").write_text('{"model_type": "llama"}')
    (src / "tokenizer.json").write_text("{}")
    (src / "notes.txt").write_text("not a model file")
    spec = get_model("hub-model")
    got = W.ensure_weights(spec, tmp_path / "store", import_dir=src)
    assert got.manifest.revision == spec.revision
    assert {f.path for f in got.manifest.files} == {"config.json", "tokenizer.json"}
    assert got.manifest.source == f"local:{src}"
    # Offline afterwards: the verified entry is found in the cache without the hub.
    again = W.ensure_weights(spec, tmp_path / "store", offline=True)
    assert again.reused and again.path == got.path


def test_offline_mode_fails_clearly_when_not_cached(local_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(W.WeightsError, match="offline mode and revision 12fd25f.* is not in the cache"):
        W.ensure_weights(get_model("hub-model"), tmp_path / "store")
    assert not (tmp_path / "store" / "hub-model").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hub_unreachable_gives_clear_error_and_no_partial_cache(local_registry, tmp_path):
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(W.WeightsError) as err:
        W.ensure_weights(get_model("hub-model"), tmp_path / "store", endpoint=endpoint)
    msg = str(err.value)
    assert "could not download HuggingFaceTB/SmolLM2-135M-Instruct@12fd25f" in msg
    assert endpoint in msg and "Nothing was added" in msg
    model_dir = tmp_path / "store" / "hub-model"
    assert not any(model_dir.iterdir()) if model_dir.exists() else True


def test_unpinned_and_unregistered_models_are_refused(local_registry, tmp_path):
    with pytest.raises(W.WeightsError, match="no pinned revision"):
        W.ensure_weights(get_model("unpinned"), tmp_path / "store")
    with pytest.raises(RegistryError, match="not registered"):
        get_model("someone/else")


def test_interrupted_download_keeps_completed_files_for_resume(local_registry, tmp_path):
    """Completed files from an earlier attempt stay in the staging directory (not in the cache)."""
    spec = get_model("hub-model")
    staging = tmp_path / "store" / "hub-model" / f".{spec.revision}.partial"
    staging.mkdir(parents=True)
    (staging / "config.json").write_text("{}")
    with pytest.raises(W.WeightsError, match="next attempt resumes"):
        W.download_from_hub(spec, tmp_path / "store", endpoint=f"http://127.0.0.1:{_closed_port()}")
    assert (staging / "config.json").is_file()
    assert not (tmp_path / "store" / "hub-model" / spec.revision).exists()


REV = "12fd25f77366fa6b3b4b768ec3050bf629380bac"
HUB_FILES = {
    "config.json": b'{"model_type": "llama"}',
    "model.safetensors": bytes(range(256)) * 40,
    "README.md": b"card",
}


@pytest.fixture
def hub():
    from fake_hub import FakeHub

    server = FakeHub("HuggingFaceTB/SmolLM2-135M-Instruct", REV, HUB_FILES, lfs={"model.safetensors"})
    yield server
    server.close()


def _hub_spec():
    from june_pipelines.registry import ModelSpec

    return ModelSpec(
        id="hub-model",
        hub_repo="HuggingFaceTB/SmolLM2-135M-Instruct",
        revision=REV,
        files=("config.json", "*.safetensors"),
    )


def test_hub_download_at_pinned_revision_checked_against_the_hub(hub, tmp_path):
    got = W.ensure_weights(_hub_spec(), tmp_path / "store", endpoint=hub.url)
    assert (
        got.path == tmp_path / "store" / "hub-model" / REV
        and got.manifest.source == "hub:HuggingFaceTB/SmolLM2-135M-Instruct"
    )
    assert {f.path: f.sha256 for f in got.manifest.files} == {
        "config.json": hashlib.sha256(HUB_FILES["config.json"]).hexdigest(),
        "model.safetensors": hashlib.sha256(HUB_FILES["model.safetensors"]).hexdigest(),
    }  # README.md is not in the registry's files
    assert all(f"/resolve/{REV}/" in r for r in hub.requests if "/resolve/" in r)  # only the pinned commit
    assert sorted(p.name for p in got.path.parent.iterdir()) == [REV]  # staging gone
    before = len(hub.requests)
    again = W.ensure_weights(_hub_spec(), tmp_path / "store", endpoint=hub.url, offline=True)
    assert again.reused and len(hub.requests) == before  # verified cache, no hub call


def test_hub_download_with_corrupt_file_is_not_published(tmp_path):
    from fake_hub import FakeHub

    server = FakeHub(
        "HuggingFaceTB/SmolLM2-135M-Instruct", REV, HUB_FILES, lfs={"model.safetensors"}, corrupt={"model.safetensors"}
    )
    try:
        with pytest.raises(W.WeightsError, match="sha256 differs from the hub's"):
            W.ensure_weights(_hub_spec(), tmp_path / "store", endpoint=server.url)
    finally:
        server.close()
    assert not (tmp_path / "store" / "hub-model" / REV).exists()
