"""Stand-in for the GPU `tensorrt_llm` model in the Triton tests: same inputs and outputs, runs the
bundled SmolLM2 GGUF with llama.cpp on the CPU inside Triton's python backend.

It sits where upstream's python-backend model sits (`all_models/inflight_batcher_llm/tensorrt_llm/1/`),
so the repository generator copies it like the real one (`triton_backend: python`). It reads
`fake_engine.json` beside this file ({"gguf": PATH}). Token ids come from the generated
preprocessing model, so the tokenizer extracted from the GGUF and llama.cpp agree on the vocabulary.
Decoupled: one response per token when `streaming` is true, else one response; then the final flag.
Like the C++ backend, `num_input_tokens` / `num_output_tokens` come back when
`return_num_input_tokens` / `return_num_output_tokens` ask for them.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils


def _get(request, name, default=None):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return default if tensor is None else tensor.as_numpy()


def _stop_sequences(words):
    """Word-list format [2, L] -> list of token sequences."""
    if words is None:
        return []
    ids, offsets = words[0], words[1]
    out, start = [], 0
    for end in offsets:
        if end < 0:
            break
        out.append([int(t) for t in ids[start:end]])
        start = end
    return [s for s in out if s]


class TritonPythonModel:
    def initialize(self, args):
        from llama_cpp import Llama

        config = json.loads(args["model_config"])
        self.decoupled = pb_utils.using_decoupled_model_transaction_policy(config)
        settings = json.loads((Path(__file__).parent / "fake_engine.json").read_text())
        self.llm = Llama(settings["gguf"], n_ctx=2048, n_threads=int(settings.get("n_threads", 1)), verbose=False)

    def _generate(self, request, n):
        ids = _get(request, "input_ids")[n]
        length = int(_get(request, "input_lengths").reshape(-1)[n])
        out_len = int(_get(request, "request_output_len").reshape(-1)[n])
        end_id = _get(request, "end_id")
        end_id = int(end_id.reshape(-1)[n]) if end_id is not None else self.llm.token_eos()
        temperature = _get(request, "temperature")
        temperature = float(temperature.reshape(-1)[n]) if temperature is not None else 0.0
        top_p = _get(request, "runtime_top_p")
        top_p = float(top_p.reshape(-1)[n]) if top_p is not None else 1.0
        top_k = _get(request, "runtime_top_k")
        top_k = int(top_k.reshape(-1)[n]) if top_k is not None else 0
        seed = _get(request, "seed")
        if seed is not None:
            self.llm.set_seed(int(seed.reshape(-1)[n]))
        stops = _stop_sequences(
            None if _get(request, "stop_words_list") is None else _get(request, "stop_words_list")[n]
        )
        generated = []
        for token in self.llm.generate(
            [int(t) for t in ids[:length]], temp=temperature, top_p=top_p, top_k=top_k, reset=True
        ):
            if token == end_id:
                break
            generated.append(int(token))
            yield int(token)
            if len(generated) >= out_len or any(generated[-len(s):] == s for s in stops):
                break

    @staticmethod
    def _flag(request, name):
        value = _get(request, name)
        return bool(value.reshape(-1)[0]) if value is not None else False

    def _response(self, request, tokens):
        tensors = [
            pb_utils.Tensor("output_ids", np.array([[tokens]], dtype=np.int32).reshape(1, 1, len(tokens))),
            pb_utils.Tensor("sequence_length", np.array([[len(tokens)]], dtype=np.int32)),
            pb_utils.Tensor("cum_log_probs", np.zeros((1, 1), dtype=np.float32)),
            pb_utils.Tensor("output_log_probs", np.zeros((1, 1, max(1, len(tokens))), dtype=np.float32)),
            pb_utils.Tensor("batch_index", np.zeros((1, 1), dtype=np.int32)),
        ]
        if self._flag(request, "return_num_input_tokens"):
            length = int(_get(request, "input_lengths").reshape(-1)[0])
            tensors.append(pb_utils.Tensor("num_input_tokens", np.array([[length]], dtype=np.int32)))
        if self._flag(request, "return_num_output_tokens"):
            tensors.append(pb_utils.Tensor("num_output_tokens", np.array([[len(tokens)]], dtype=np.int32)))
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def execute(self, requests):
        responses = []
        for request in requests:
            streaming = _get(request, "streaming")
            streaming = bool(streaming.reshape(-1)[0]) if streaming is not None else False
            try:
                if self.decoupled:
                    sender = request.get_response_sender()
                    if streaming:
                        for token in self._generate(request, 0):
                            sender.send(self._response(request, [token]))
                    else:
                        sender.send(self._response(request, list(self._generate(request, 0))))
                    sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                else:
                    responses.append(self._response(request, list(self._generate(request, 0))))
            except Exception as exc:
                error = pb_utils.InferenceResponse(error=pb_utils.TritonError(f"fake tensorrt_llm: {exc}"))
                if self.decoupled:
                    request.get_response_sender().send(error, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                else:
                    responses.append(error)
        return None if self.decoupled else responses
