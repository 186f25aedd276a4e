"""Triton python model: token ids -> text for the TensorRT-LLM inflight-batching ensemble.

Inputs: TOKENS_BATCH [-1, -1] INT32 (beams x tokens per request), SEQUENCE_LENGTH [-1] INT32.
Output: OUTPUT [-1] BYTES, one string per beam. With `exclude_input_in_output` on the engine side
the tokens are the generated ones only; in streaming mode each response carries the new tokens.
"""

import json
from pathlib import Path

import numpy as np

try:
    import triton_python_backend_utils as pb_utils
except ImportError:
    pb_utils = None


def _param(config, key, default=None):
    value = config.get("parameters", {}).get(key, {}).get("string_value")
    return default if value in (None, "") else value


class TritonPythonModel:
    def initialize(self, args):
        from tokenizers import Tokenizer

        config = json.loads(args["model_config"])
        tokenizer_dir = Path(_param(config, "tokenizer_dir"))
        if not tokenizer_dir.is_absolute():
            tokenizer_dir = Path(args["model_repository"]).parent / tokenizer_dir
        self.tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
        self.skip_special = _param(config, "skip_special_tokens", "true").lower() in ("1", "true", "yes")

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                tokens = pb_utils.get_input_tensor_by_name(request, "TOKENS_BATCH").as_numpy()
                lengths = pb_utils.get_input_tensor_by_name(request, "SEQUENCE_LENGTH").as_numpy()
                texts = []
                for item_tokens, item_lengths in zip(tokens, lengths, strict=True):
                    beams = []
                    for beam, length in zip(item_tokens, item_lengths, strict=True):
                        ids = [int(t) for t in beam[: int(length)]]
                        beams.append(self.tokenizer.decode(ids, skip_special_tokens=self.skip_special).encode("utf-8"))
                    texts.append(beams)
                out = np.array(texts, dtype=object)
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUTPUT", out)]))
            except Exception as exc:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"postprocessing: {exc}")))
        return responses
