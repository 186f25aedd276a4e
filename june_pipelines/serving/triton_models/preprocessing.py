"""Triton python model: text -> token ids for the TensorRT-LLM inflight-batching ensemble.

Its config declares upstream's tensors (TensorRT-LLM 1.2 `all_models/inflight_batcher_llm/
preprocessing`); this model serves the text path of decoder-only models:
Inputs (per request, batched): QUERY [1] BYTES, REQUEST_OUTPUT_LEN [1] INT32, optional
STOP_WORDS_DICT / BAD_WORDS_DICT [-1] BYTES, END_ID / PAD_ID [1] INT32. Image, video, decoder-query
and embedding-bias inputs are refused with a clear error.
Outputs, as upstream's text path sends them: INPUT_ID [-1], REQUEST_INPUT_LEN [1], DECODER_INPUT_ID
(the pad id) and REQUEST_DECODER_INPUT_LEN (1), REQUEST_OUTPUT_LEN, STOP_WORDS_IDS / BAD_WORDS_IDS
[2, -1] (TensorRT-LLM word-list format: flat ids, then end offsets padded with -1), EMBEDDING_BIAS
(empty FP32), OUT_END_ID, OUT_PAD_ID [1].
"""

import json
from pathlib import Path

import numpy as np

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported outside Triton (never by June itself)
    pb_utils = None


def _param(config, key, default=None):
    value = config.get("parameters", {}).get(key, {}).get("string_value")
    return default if value in (None, "") else value


def load_tokenizer(args, config):
    """Tokenizer from the `tokenizer_dir` parameter; a relative path is taken from the repository root."""
    from tokenizers import Tokenizer

    tokenizer_dir = Path(_param(config, "tokenizer_dir"))
    if not tokenizer_dir.is_absolute():
        tokenizer_dir = Path(args["model_repository"]).parent / tokenizer_dir
    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    special = {}
    cfg_path = tokenizer_dir / "tokenizer_config.json"
    if cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text())
        for role in ("eos", "pad", "bos"):
            token = cfg.get(f"{role}_token")
            if isinstance(token, dict):
                token = token.get("content")
            if token is not None and tokenizer.token_to_id(token) is not None:
                special[role] = tokenizer.token_to_id(token)
    special.setdefault("eos", 0)
    special.setdefault("pad", special["eos"])
    return tokenizer, special


def word_list(tokenizer, words_per_item):
    """[batch, 2, L] INT32: flat token ids of all words, and each word's end offset, padded (0 / -1)."""
    rows = []
    for words in words_per_item:
        ids, offsets = [], []
        for word in words:
            if not word:
                continue
            piece = tokenizer.encode(word, add_special_tokens=False).ids
            if piece:
                ids.extend(piece)
                offsets.append(len(ids))
        rows.append((ids, offsets))
    width = max([1] + [max(len(i), len(o)) for i, o in rows])
    out = np.zeros((len(rows), 2, width), dtype=np.int32)
    out[:, 1, :] = -1
    for n, (ids, offsets) in enumerate(rows):
        out[n, 0, : len(ids)] = ids
        out[n, 1, : len(offsets)] = offsets
    return out


def _words(request, name, batch):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return [[] for _ in range(batch)]
    return [[w.decode("utf-8") if isinstance(w, bytes) else str(w) for w in row] for row in tensor.as_numpy()]


def _ids(request, name, default, batch):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return np.full((batch, 1), default, dtype=np.int32)
    return tensor.as_numpy().astype(np.int32).reshape(batch, 1)


UNSUPPORTED = ("DECODER_QUERY", "IMAGE_BYTES", "IMAGE_URL", "IMAGES", "VIDEO_BYTES", "EMBEDDING_BIAS_WORDS",
               "EMBEDDING_BIAS_WEIGHTS", "PROMPT_TABLE_EXTRA_ID")


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.tokenizer, self.special = load_tokenizer(args, config)
        self.add_special_tokens = _param(config, "add_special_tokens", "false").lower() in ("1", "true", "yes")

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                given = [n for n in UNSUPPORTED if pb_utils.get_input_tensor_by_name(request, n) is not None]
                if given:
                    raise ValueError(f"{', '.join(given)} not supported by June's preprocessing (text only)")
                queries = pb_utils.get_input_tensor_by_name(request, "QUERY").as_numpy()
                batch = queries.shape[0]
                texts = [q[0].decode("utf-8") if isinstance(q[0], bytes) else str(q[0]) for q in queries]
                encoded = [self.tokenizer.encode(t, add_special_tokens=self.add_special_tokens).ids for t in texts]
                pad_id = _ids(request, "PAD_ID", self.special["pad"], batch)
                end_id = _ids(request, "END_ID", self.special["eos"], batch)
                width = max(1, max(len(e) for e in encoded))
                input_ids = np.full((batch, width), pad_id[0, 0], dtype=np.int32)
                for n, ids in enumerate(encoded):
                    input_ids[n, : len(ids)] = ids
                lengths = np.array([[len(e)] for e in encoded], dtype=np.int32)
                out_len = pb_utils.get_input_tensor_by_name(request, "REQUEST_OUTPUT_LEN").as_numpy()
                tensors = [
                    pb_utils.Tensor("INPUT_ID", input_ids),
                    pb_utils.Tensor("REQUEST_INPUT_LEN", lengths),
                    pb_utils.Tensor("DECODER_INPUT_ID", np.array(pad_id, dtype=np.int32).reshape(batch, 1)),
                    pb_utils.Tensor("REQUEST_DECODER_INPUT_LEN", np.ones((batch, 1), dtype=np.int32)),
                    pb_utils.Tensor("EMBEDDING_BIAS", np.empty((batch, 0), dtype=np.float32)),
                    pb_utils.Tensor("REQUEST_OUTPUT_LEN", out_len.astype(np.int32).reshape(batch, 1)),
                    pb_utils.Tensor(
                        "STOP_WORDS_IDS", word_list(self.tokenizer, _words(request, "STOP_WORDS_DICT", batch))
                    ),
                    pb_utils.Tensor(
                        "BAD_WORDS_IDS", word_list(self.tokenizer, _words(request, "BAD_WORDS_DICT", batch))
                    ),
                    pb_utils.Tensor("OUT_END_ID", end_id),
                    pb_utils.Tensor("OUT_PAD_ID", pad_id),
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except Exception as exc:  # one bad request must not fail the batch
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"preprocessing: {exc}")))
        return responses
