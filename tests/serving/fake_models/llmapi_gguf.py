"""Stand-in for NVIDIA's llmapi `tensorrt_llm` model (PyTorch backend) in the Triton tests: same
tensors (`text_input`, `sampling_param_*`, `streaming` -> `text_output`, `finish_reason`), runs the
bundled SmolLM2 GGUF with llama.cpp. Like the real model it takes max_batch_size and decoupled from
`model.yaml` through `auto_complete_config`; the GGUF path comes from `fake_engine.json`.
"""

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils
import yaml

HERE = Path(__file__).parent


def _get(request, name, default=None):
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return default if tensor is None else tensor.as_numpy().reshape(-1)[0]


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        triton = yaml.safe_load((HERE / "model.yaml").read_text()).get("triton_config", {})
        auto_complete_model_config.set_max_batch_size(int(triton.get("max_batch_size", 0)))
        auto_complete_model_config.set_model_transaction_policy({"decoupled": bool(triton.get("decoupled", False))})
        return auto_complete_model_config

    def initialize(self, args):
        from llama_cpp import Llama

        settings = json.loads((HERE / "fake_engine.json").read_text())
        self.llm = Llama(settings["gguf"], n_ctx=2048, n_threads=1, verbose=False)

    def _response(self, text, finish):
        return pb_utils.InferenceResponse(output_tensors=[
            pb_utils.Tensor("text_output", np.array([text.encode("utf-8")], dtype=object)),
            pb_utils.Tensor("finish_reason", np.array([finish.encode()], dtype=object)),
        ])

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            prompt = _get(request, "text_input").decode("utf-8")
            max_tokens = int(_get(request, "sampling_param_max_tokens", 64))
            temperature = float(_get(request, "sampling_param_temperature", 0.0))
            streaming = bool(_get(request, "streaming", False))
            tokens = self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            out, finish = [], "length"
            for token in self.llm.generate(tokens, temp=temperature, reset=True):
                if token == self.llm.token_eos():
                    finish = "stop"
                    break
                out.append(token)
                if streaming:
                    sender.send(self._response(self.llm.detokenize([token]).decode("utf-8", "replace"), ""))
                if len(out) >= max_tokens:
                    break
            if not streaming:
                sender.send(self._response(self.llm.detokenize(out).decode("utf-8", "replace"), finish))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
