"""Stand-in for NVIDIA's llmapi `tensorrt_llm` model (PyTorch backend) in the Triton tests.

Behaves as upstream's model.py does at the request boundary (TensorRT-LLM 1.2
`triton_backend/all_models/llmapi/tensorrt_llm/1/model.py`): max_batch_size and decoupled come from
`model.yaml`'s triton_config through `auto_complete_config`; `text_input` must be 1-D (one prompt);
scalars are [1] tensors; streaming needs a decoupled model; each streamed response carries the
whole text so far (the LLM API's `CompletionOutput.text`), not the new piece; `finish_reason` is
sent only when `return_finish_reason` asks for it. It imports `helpers` beside it, as upstream's
does. It runs the bundled SmolLM2 GGUF with llama.cpp; the GGUF path comes from `fake_engine.json`.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils
import yaml
from helpers import get_input_scalar, get_prompt

HERE = Path(__file__).parent


def _triton_config():
    return yaml.safe_load((HERE / "model.yaml").read_text())["triton_config"]


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        triton = _triton_config()
        auto_complete_model_config.set_model_transaction_policy({"decoupled": bool(triton["decoupled"])})
        auto_complete_model_config.set_max_batch_size(int(triton["max_batch_size"]))
        return auto_complete_model_config

    def initialize(self, args):
        from llama_cpp import Llama

        self.decoupled = bool(_triton_config()["decoupled"])
        settings = json.loads((HERE / "fake_engine.json").read_text())
        self.llm = Llama(settings["gguf"], n_ctx=2048, n_threads=1, verbose=False)

    def _response(self, text, finish, with_finish):
        tensors = [pb_utils.Tensor("text_output", np.array([text.encode("utf-8")], dtype=object))]
        if with_finish:
            tensors.append(pb_utils.Tensor("finish_reason", np.array([str(finish).encode()], dtype=object)))
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def _generate(self, request, sender):
        prompt = get_prompt(request)
        max_tokens = int(get_input_scalar(request, "sampling_param_max_tokens", 64))
        temperature = float(get_input_scalar(request, "sampling_param_temperature", 0.0))
        streaming = bool(get_input_scalar(request, "streaming", False))
        with_finish = bool(get_input_scalar(request, "return_finish_reason", False))
        if streaming and not self.decoupled:
            raise pb_utils.TritonModelException("Streaming is only supported in decoupled mode.")
        tokens = self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        out, finish = [], "length"
        for token in self.llm.generate(tokens, temp=temperature, reset=True):
            if token == self.llm.token_eos():
                finish = "stop"
                break
            out.append(token)
            if len(out) >= max_tokens:
                break
            if streaming:  # the whole text so far, as CompletionOutput.text
                sender.send(self._response(self.llm.detokenize(out).decode("utf-8", "replace"), None, with_finish))
        text = self.llm.detokenize(out).decode("utf-8", "replace")
        sender.send(self._response(text, finish, with_finish), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            try:
                self._generate(request, sender)
            except Exception as exc:
                error = pb_utils.InferenceResponse(error=pb_utils.TritonError(f"Error generating request: {exc}"))
                sender.send(error, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
