"""Triton python model `tensorrt_llm_bls`: the ensemble's chain (preprocessing -> tensorrt_llm ->
postprocessing) in Python through BLS calls, with the ensemble's inputs and `text_output`.

Why a BLS model next to the ensemble: it can stream through the decoupled tensorrt_llm model while
post-processing each chunk, and it is the place for request-level logic (e.g. speculative decoding)
that an ensemble cannot express. Composing model names come from the config parameters.
"""

import json
from typing import Any

try:
    import triton_python_backend_utils as pb_utils
except ImportError:
    pb_utils = None

# BLS input -> tensorrt_llm input (names as in upstream's ensemble; values passed through unchanged)
_SAMPLING = {
    "top_k": "runtime_top_k",
    "top_p": "runtime_top_p",
    "temperature": "temperature",
    "length_penalty": "len_penalty",
    "repetition_penalty": "repetition_penalty",
    "min_tokens": "min_tokens",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "seed": "seed",
    "exclude_input_in_output": "exclude_input_in_output",
    "num_return_sequences": "num_return_sequences",
    "return_log_probs": "return_log_probs",
    "return_num_input_tokens": "return_num_input_tokens",
    "return_num_output_tokens": "return_num_output_tokens",
    "beam_width": "beam_width",
    "stream": "streaming",
}
# tensorrt_llm outputs passed on to the client as they are
_PASS_ON = ("num_input_tokens", "num_output_tokens")


def _param(config, key):
    return config["parameters"][key]["string_value"]


def _check(response, what):
    if response.has_error():
        raise RuntimeError(f"{what}: {response.error().message()}")
    return response


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.decoupled = pb_utils.using_decoupled_model_transaction_policy(config)
        self.pre = _param(config, "preprocessing_model_name")
        self.llm = _param(config, "tensorrt_llm_model_name")
        self.post = _param(config, "postprocessing_model_name")

    def _get(self, request, name):
        return pb_utils.get_input_tensor_by_name(request, name)

    def _preprocess(self, request):
        inputs = [pb_utils.Tensor("QUERY", self._get(request, "text_input").as_numpy()),
                  pb_utils.Tensor("REQUEST_OUTPUT_LEN", self._get(request, "max_tokens").as_numpy())]
        for src, dst in (
            ("stop_words", "STOP_WORDS_DICT"),
            ("bad_words", "BAD_WORDS_DICT"),
            ("end_id", "END_ID"),
            ("pad_id", "PAD_ID"),
        ):
            tensor = self._get(request, src)
            if tensor is not None:
                inputs.append(pb_utils.Tensor(dst, tensor.as_numpy()))
        names = [
            "INPUT_ID",
            "REQUEST_INPUT_LEN",
            "REQUEST_OUTPUT_LEN",
            "STOP_WORDS_IDS",
            "BAD_WORDS_IDS",
            "OUT_END_ID",
            "OUT_PAD_ID",
        ]
        response = _check(
            pb_utils.InferenceRequest(model_name=self.pre, inputs=inputs, requested_output_names=names).exec(), self.pre
        )
        return {n: pb_utils.get_output_tensor_by_name(response, n).as_numpy() for n in names}

    def _llm_request(self, request, pre):
        inputs = [
            pb_utils.Tensor("input_ids", pre["INPUT_ID"]),
            pb_utils.Tensor("input_lengths", pre["REQUEST_INPUT_LEN"]),
            pb_utils.Tensor("request_output_len", pre["REQUEST_OUTPUT_LEN"]),
            pb_utils.Tensor("end_id", pre["OUT_END_ID"]),
            pb_utils.Tensor("pad_id", pre["OUT_PAD_ID"]),
            pb_utils.Tensor("stop_words_list", pre["STOP_WORDS_IDS"]),
            pb_utils.Tensor("bad_words_list", pre["BAD_WORDS_IDS"]),
        ]
        for src, dst in _SAMPLING.items():
            tensor = self._get(request, src)
            if tensor is not None:
                # some BLS inputs are reshaped to [] (arriving as [batch]); tensorrt_llm takes [batch, 1]
                value = tensor.as_numpy()
                inputs.append(pb_utils.Tensor(dst, value.reshape(value.shape[0] if value.ndim else 1, 1)))
        return pb_utils.InferenceRequest(
            model_name=self.llm, inputs=inputs, requested_output_names=["output_ids", "sequence_length", *_PASS_ON]
        )

    def _postprocess(self, llm_response):
        ids = pb_utils.get_output_tensor_by_name(llm_response, "output_ids")
        if ids is None:
            return None  # an empty final response of the decoupled stream
        lengths = pb_utils.get_output_tensor_by_name(llm_response, "sequence_length")
        response = _check(
            pb_utils.InferenceRequest(
                model_name=self.post,
                inputs=[
                    pb_utils.Tensor("TOKENS_BATCH", ids.as_numpy()),
                    pb_utils.Tensor("SEQUENCE_LENGTH", lengths.as_numpy()),
                ],
                requested_output_names=["OUTPUT"],
            ).exec(),
            self.post,
        )
        text = pb_utils.get_output_tensor_by_name(response, "OUTPUT").as_numpy()
        tensors = [pb_utils.Tensor("text_output", text.astype(object))]
        for name in _PASS_ON:
            value = pb_utils.get_output_tensor_by_name(llm_response, name)
            if value is not None:
                tensors.append(pb_utils.Tensor(name, value.as_numpy()))
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def execute(self, requests):
        responses = []
        for request in requests:
            sender: Any = request.get_response_sender() if self.decoupled else None  # set whenever decoupled
            try:
                llm_request = self._llm_request(request, self._preprocess(request))
                if self.decoupled:
                    for llm_response in llm_request.exec(decoupled=True):
                        out = self._postprocess(_check(llm_response, self.llm))
                        if out is not None:
                            sender.send(out)
                    sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                else:
                    responses.append(self._postprocess(_check(llm_request.exec(), self.llm)))
            except Exception as exc:
                error = pb_utils.InferenceResponse(error=pb_utils.TritonError(f"tensorrt_llm_bls: {exc}"))
                if self.decoupled:
                    sender.send(error, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                else:
                    responses.append(error)
        return None if self.decoupled else responses
