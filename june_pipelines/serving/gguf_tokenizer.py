"""Read a GGUF file's metadata and rebuild its BPE tokenizer as a Hugging Face `tokenizer.json`.

Why: the Triton preprocessing/postprocessing models tokenize with `tokenizers`, and a model that
ships only as GGUF (the bundled SmolLM2) has no tokenizer files. Its vocabulary and merges are in
the GGUF header, so the repository can carry a tokenizer with exactly the ids llama.cpp uses.
Only byte-level BPE vocabularies (`tokenizer.ggml.model == "gpt2"`) are supported.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

# GGUF value types (gguf spec v2/v3).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class GGUFError(ValueError):
    pass


def _read(fh: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise GGUFError("truncated GGUF header")
    return struct.unpack(fmt, data)[0]


def _read_string(fh: BinaryIO) -> str:
    n = _read(fh, "<Q")
    return fh.read(n).decode("utf-8", errors="replace")


def _read_value(fh: BinaryIO, vtype: int) -> Any:
    if vtype in _SCALARS:
        return _read(fh, _SCALARS[vtype])
    if vtype == _STRING:
        return _read_string(fh)
    if vtype == _ARRAY:
        etype = _read(fh, "<I")
        count = _read(fh, "<Q")
        return [_read_value(fh, etype) for _ in range(count)]
    raise GGUFError(f"unknown GGUF value type {vtype}")


def read_metadata(path: Path) -> dict[str, Any]:
    """All key/value pairs of a GGUF file's header (tensor data is not read)."""
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise GGUFError(f"{path} is not a GGUF file")
        version = _read(fh, "<I")
        if version < 2:
            raise GGUFError(f"{path}: GGUF version {version} is not supported")
        _read(fh, "<Q")  # tensor count
        n_kv = _read(fh, "<Q")
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = _read_string(fh)
            meta[key] = _read_value(fh, _read(fh, "<I"))
        return meta


def write_tokenizer_files(gguf_path: Path, out_dir: Path) -> dict[str, int]:
    """Write `tokenizer.json` and `tokenizer_config.json`; return the special token ids."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    meta = read_metadata(gguf_path)
    kind = meta.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise GGUFError(f"{gguf_path}: tokenizer model {kind!r} is not byte-level BPE ('gpt2')")
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges", [])]
    token_types: list[int] = meta.get("tokenizer.ggml.token_type", [1] * len(tokens))
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    # Control tokens (type 3) such as <|im_start|> must be matched whole and skipped on decode.
    from tokenizers import AddedToken

    specials = [
        AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, token_types, strict=True) if ty == 3
    ]
    tok.add_special_tokens(specials)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_dir / "tokenizer.json"))
    ids: dict[str, int] = {
        "bos_token_id": int(meta.get("tokenizer.ggml.bos_token_id", -1)),
        "eos_token_id": int(meta.get("tokenizer.ggml.eos_token_id", -1)),
        "pad_token_id": int(meta.get("tokenizer.ggml.padding_token_id", meta.get("tokenizer.ggml.eos_token_id", -1))),
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": tokens[ids["bos_token_id"]] if ids["bos_token_id"] >= 0 else None,
        "eos_token": tokens[ids["eos_token_id"]] if ids["eos_token_id"] >= 0 else None,
        "pad_token": tokens[ids["pad_token_id"]] if ids["pad_token_id"] >= 0 else None,
        "chat_template": meta.get("tokenizer.chat_template"),
        "source": f"extracted from {Path(gguf_path).name} by june_pipelines.serving.gguf_tokenizer",
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return ids
