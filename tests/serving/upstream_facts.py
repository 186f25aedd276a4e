"""Facts TensorRT-LLM 1.2's Triton backend fixes, recorded from upstream's files (names only, no code).

Sources. TensorRT-LLM keeps the Triton backend under `triton_backend/` (tensorrtllm_backend branch
r26.04 has only a `tensorrt_llm` submodule, commit 2fdb9e66, and its Dockerfile installs
`release/1.2.1`). The TensorRT-LLM repository is too large to fetch here, so the files were read from
the stored versions of NVIDIA/TensorRT-LLM named below (commit 0c8de69 reports
`tensorrt_llm/version.py` 1.2.0rc8, the 1.2 release line). On a GPU host, re-check them against the
v1.2.1 tag (docs/GPU_RUNBOOK.md, "Upstream facts").

A tensor is written "name TYPE [dims] flags", flags among: opt (optional), ragged
(allow_ragged_batch), scalar (reshape to []). `${...}` types are given as June fills them.
"""

from __future__ import annotations

from dataclasses import dataclass

TRTLLM = "NVIDIA/TensorRT-LLM"
SOURCES = {
    "tensorrt_llm": f"{TRTLLM}@0c8de69 triton_backend/all_models/inflight_batcher_llm/tensorrt_llm/config.pbtxt",
    "ensemble": f"{TRTLLM}@2a9abd9 triton_backend/all_models/inflight_batcher_llm/ensemble/config.pbtxt",
    "preprocessing": f"{TRTLLM}@08dc37e triton_backend/all_models/inflight_batcher_llm/preprocessing/config.pbtxt",
    "postprocessing": f"{TRTLLM}@89fd9b7 triton_backend/all_models/inflight_batcher_llm/postprocessing/config.pbtxt",
    "tensorrt_llm_bls": (
        f"{TRTLLM}@0193dbd triton_backend/all_models/inflight_batcher_llm/tensorrt_llm_bls/config.pbtxt"
    ),
    "llmapi": f"{TRTLLM}@c8c6df0 triton_backend/all_models/llmapi/tensorrt_llm/config.pbtxt and 1/model.yaml",
    "backend_reads": f"{TRTLLM}@0c8de69 triton_backend/inflight_batcher_llm/src/model_instance_state.cc; "
    f"{TRTLLM}@5cdd692 triton_backend/inflight_batcher_llm/src/model_state.cc",
    "containers": "triton-inference-server/server@r26.04 docs/introduction/compatibility.md (trtllm-python-py3); "
    "main@e1db8a6 for 26.05-26.07",
}


@dataclass(frozen=True)
class TensorFact:
    name: str
    data_type: str
    dims: tuple[int, ...]
    optional: bool
    ragged: bool
    scalar: bool


def _parse(lines: str) -> list[TensorFact]:
    out = []
    for line in filter(str.strip, lines.splitlines()):
        name, dtype, dims, *flags = line.split()
        out.append(TensorFact(name, "TYPE_" + dtype, tuple(int(d) for d in dims.strip("[]").split(",")),
                              "opt" in flags, "ragged" in flags, "scalar" in flags))
    return out


# ---- tensorrt_llm (the C++ backend's model) ------------------------------------------------------
TENSORRT_LLM_INPUTS = _parse("""
input_ids INT32 [-1] opt ragged
encoder_input_features FP16 [-1,-1] opt ragged
encoder_output_lengths INT32 [1] opt scalar
input_lengths INT32 [1] scalar
request_output_len INT32 [1] scalar
num_return_sequences INT32 [1] opt scalar
draft_input_ids INT32 [-1] opt ragged
decoder_input_ids INT32 [-1] opt ragged
decoder_input_lengths INT32 [1] opt scalar
draft_logits FP32 [-1,-1] opt ragged
draft_acceptance_threshold FP32 [1] opt scalar
end_id INT32 [1] opt scalar
pad_id INT32 [1] opt scalar
stop_words_list INT32 [2,-1] opt ragged
bad_words_list INT32 [2,-1] opt ragged
embedding_bias FP32 [-1] opt ragged
beam_width INT32 [1] opt scalar
temperature FP32 [1] opt scalar
runtime_top_k INT32 [1] opt scalar
runtime_top_p FP32 [1] opt scalar
runtime_top_p_min FP32 [1] opt scalar
runtime_top_p_decay FP32 [1] opt scalar
runtime_top_p_reset_ids INT32 [1] opt scalar
len_penalty FP32 [1] opt scalar
early_stopping BOOL [1] opt scalar
repetition_penalty FP32 [1] opt scalar
min_tokens INT32 [1] opt scalar
beam_search_diversity_rate FP32 [1] opt scalar
presence_penalty FP32 [1] opt scalar
frequency_penalty FP32 [1] opt scalar
seed UINT64 [1] opt scalar
return_log_probs BOOL [1] opt scalar
return_context_logits BOOL [1] opt scalar
return_generation_logits BOOL [1] opt scalar
return_perf_metrics BOOL [1] opt scalar
return_num_input_tokens BOOL [1] opt scalar
return_num_output_tokens BOOL [1] opt scalar
exclude_input_in_output BOOL [1] opt scalar
stop BOOL [1] opt scalar
streaming BOOL [1] opt scalar
prompt_embedding_table FP16 [-1,-1] opt ragged
prompt_table_extra_ids UINT64 [-1] opt ragged
prompt_vocab_size INT32 [1] opt scalar
cross_attention_mask BOOL [-1,-1] opt ragged
mrope_rotary_cos_sin FP32 [-1] opt
mrope_position_deltas INT64 [1] opt
lora_task_id UINT64 [1] opt scalar
lora_weights FP16 [-1,-1] opt ragged
lora_config INT32 [-1,3] opt ragged
context_phase_params UINT8 [-1] opt ragged
skip_cross_attn_blocks BOOL [1] opt ragged
retention_token_range_starts INT32 [-1] opt ragged
retention_token_range_ends INT32 [-1] opt ragged
retention_token_range_priorities INT32 [-1] opt ragged
retention_token_range_durations_ms INT32 [-1] opt ragged
retention_decode_priority INT32 [1] opt ragged
retention_decode_duration_ms INT32 [1] opt ragged
guided_decoding_guide_type STRING [1] opt ragged
guided_decoding_guide STRING [1] opt ragged
lookahead_window_size INT32 [1] opt ragged
lookahead_ngram_size INT32 [1] opt ragged
lookahead_verification_set_size INT32 [1] opt ragged
""")
# Request timings and draft-token counts: the llmapi model reports them too.
_TIMINGS = """
arrival_time_ns INT64 [1]
first_scheduled_time_ns INT64 [1]
first_token_time_ns INT64 [1]
last_token_time_ns INT64 [1]
acceptance_rate FP32 [1]
total_accepted_draft_tokens INT32 [1]
total_draft_tokens INT32 [1]
"""
_STATS = """
kv_cache_alloc_new_blocks INT32 [1]
kv_cache_reused_blocks INT32 [1]
kv_cache_alloc_total_blocks INT32 [1]
""" + _TIMINGS + """
num_input_tokens INT32 [1]
num_output_tokens INT32 [1]
"""
# Log probs, logits and indices of the tensorrt_llm model, which the ensemble and the BLS model pass on.
_PASSED_ON = """
cum_log_probs FP32 [-1]
output_log_probs FP32 [-1,-1]
context_logits FP32 [-1,-1]
generation_logits FP32 [-1,-1,-1]
batch_index INT32 [1]
sequence_index INT32 [1]
"""
TENSORRT_LLM_OUTPUTS = _parse("""
output_ids INT32 [-1,-1]
sequence_length INT32 [-1]
""" + _PASSED_ON + """
context_phase_params UINT8 [-1]
""" + _STATS)

# Every parameter key in upstream's tensorrt_llm/config.pbtxt, plus `recv_poll_period_ms`, which
# model_instance_state.cc reads too.
TENSORRT_LLM_PARAMETERS = """
max_beam_width FORCE_CPU_ONLY_INPUT_TENSORS gpt_model_type gpt_model_path encoder_model_path
max_tokens_in_paged_kv_cache max_attention_window_size sink_token_length batch_scheduler_policy
kv_cache_free_gpu_mem_fraction cross_kv_cache_fraction kv_cache_host_memory_bytes kv_cache_onboard_blocks
enable_trt_overlap exclude_input_in_output cancellation_check_period_ms stats_check_period_ms
iter_stats_max_iterations request_stats_max_iterations enable_kv_cache_reuse normalize_log_probs
enable_chunked_context gpu_device_ids participant_ids num_nodes lora_cache_optimal_adapter_size
lora_cache_max_adapter_size lora_cache_gpu_memory_fraction lora_cache_host_memory_bytes lora_prefetch_dir
decoding_mode executor_worker_path lookahead_window_size lookahead_ngram_size lookahead_verification_set_size
medusa_choices eagle_choices gpu_weights_percent enable_context_fmha_fp32_acc multi_block_mode cuda_graph_mode
cuda_graph_cache_size speculative_decoding_fast_logits tokenizer_dir guided_decoding_backend
xgrammar_tokenizer_info_path recv_poll_period_ms
""".split()
# Read without a fallback: a missing key fails the model load ("Cannot find parameter with name").
TENSORRT_LLM_REQUIRED_PARAMETERS = [
    "gpt_model_type",
    "tokenizer_dir",
    "xgrammar_tokenizer_info_path",
    "guided_decoding_backend",
]
# model_state.cc: a `worker_path` key is no longer supported (executor_worker_path replaces it).
TENSORRT_LLM_FORBIDDEN_PARAMETERS = ["worker_path"]
EXECUTOR_WORKER_PATH = "/opt/tritonserver/backends/tensorrtllm/trtllmExecutorWorker"

# Word lists and sampling parameters: the ensemble and the BLS model list them alike.
_SAMPLING = """
bad_words STRING [-1] opt
stop_words STRING [-1] opt
exclude_input_in_output BOOL [1] opt
end_id INT32 [1] opt
pad_id INT32 [1] opt
top_k INT32 [1] opt
top_p FP32 [1] opt
temperature FP32 [1] opt
length_penalty FP32 [1] opt
repetition_penalty FP32 [1] opt
min_tokens INT32 [1] opt
presence_penalty FP32 [1] opt
frequency_penalty FP32 [1] opt
seed UINT64 [1] opt
"""

# ---- ensemble ------------------------------------------------------------------------------------
ENSEMBLE_INPUTS = _parse("""
text_input STRING [1]
decoder_text_input STRING [1] opt
max_tokens INT32 [1]
num_return_sequences INT32 [1] opt
""" + _SAMPLING + """
return_log_probs BOOL [1] opt
return_context_logits BOOL [1] opt
return_generation_logits BOOL [1] opt
return_perf_metrics BOOL [1] opt
return_num_input_tokens BOOL [1] opt
return_num_output_tokens BOOL [1] opt
beam_width INT32 [1] opt
stream BOOL [1] opt
prompt_embedding_table FP16 [-1,-1] opt
prompt_table_extra_id UINT64 [1] opt
prompt_vocab_size INT32 [1] opt
embedding_bias_words STRING [-1] opt
embedding_bias_weights FP32 [-1] opt
lora_task_id UINT64 [1] opt
lora_weights FP16 [-1,-1] opt ragged
lora_config INT32 [-1,3] opt ragged
guided_decoding_guide_type STRING [1] opt ragged
guided_decoding_guide STRING [1] opt ragged
""")
_TEXT_OUTPUTS = """
text_output STRING [-1]
""" + _PASSED_ON + """
""" + _STATS
# (upstream's ensemble lists kv_cache_alloc_total_blocks twice; Triton keeps one)
ENSEMBLE_OUTPUTS = _parse(_TEXT_OUTPUTS)
# ensemble step input_map of the tensorrt_llm step: tensorrt_llm input -> ensemble tensor
ENSEMBLE_TRTLLM_INPUT_MAP = {
    "input_ids": "_INPUT_ID", "decoder_input_ids": "_DECODER_INPUT_ID", "input_lengths": "_REQUEST_INPUT_LEN",
    "decoder_input_lengths": "_REQUEST_DECODER_INPUT_LEN", "exclude_input_in_output": "exclude_input_in_output",
    "request_output_len": "_REQUEST_OUTPUT_LEN", "end_id": "_PREPROCESSOR_END_ID", "pad_id": "_PREPROCESSOR_PAD_ID",
    "embedding_bias": "_EMBEDDING_BIAS", "runtime_top_k": "top_k", "runtime_top_p": "top_p",
    "temperature": "temperature", "len_penalty": "length_penalty", "repetition_penalty": "repetition_penalty",
    "min_tokens": "min_tokens", "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty",
    "seed": "seed", "return_log_probs": "return_log_probs", "return_context_logits": "return_context_logits",
    "return_generation_logits": "return_generation_logits", "return_perf_metrics": "return_perf_metrics",
    "return_num_input_tokens": "return_num_input_tokens", "return_num_output_tokens": "return_num_output_tokens",
    "num_return_sequences": "num_return_sequences", "beam_width": "beam_width", "streaming": "stream",
    "prompt_embedding_table": "prompt_embedding_table", "prompt_vocab_size": "prompt_vocab_size",
    "stop_words_list": "_STOP_WORDS_IDS", "bad_words_list": "_BAD_WORDS_IDS",
    "prompt_table_extra_ids": "_OUT_PROMPT_TABLE_EXTRA_IDS", "lora_task_id": "lora_task_id",
    "lora_weights": "lora_weights", "lora_config": "lora_config",
    "guided_decoding_guide_type": "guided_decoding_guide_type", "guided_decoding_guide": "guided_decoding_guide",
}

# ---- preprocessing / postprocessing --------------------------------------------------------------
PREPROCESSING_INPUTS = _parse("""
QUERY STRING [1]
DECODER_QUERY STRING [1] opt
IMAGE_BYTES UINT8 [-1,-1,-1,-1] opt
IMAGE_URL STRING [1] opt
IMAGES STRING [-1] opt
VIDEO_BYTES UINT8 [-1,-1,-1,-1] opt
REQUEST_OUTPUT_LEN INT32 [1]
BAD_WORDS_DICT STRING [-1] opt
STOP_WORDS_DICT STRING [-1] opt
EMBEDDING_BIAS_WORDS STRING [-1] opt
EMBEDDING_BIAS_WEIGHTS FP32 [-1] opt
END_ID INT32 [1] opt
PAD_ID INT32 [1] opt
PROMPT_TABLE_EXTRA_ID UINT64 [1] opt
""")
PREPROCESSING_OUTPUTS = _parse("""
INPUT_ID INT32 [-1]
REQUEST_INPUT_LEN INT32 [1]
DECODER_INPUT_ID INT32 [-1]
REQUEST_DECODER_INPUT_LEN INT32 [1]
BAD_WORDS_IDS INT32 [2,-1]
STOP_WORDS_IDS INT32 [2,-1]
EMBEDDING_BIAS FP32 [-1]
REQUEST_OUTPUT_LEN INT32 [-1]
OUT_END_ID INT32 [1]
OUT_PAD_ID INT32 [1]
OUT_PROMPT_TABLE_EXTRA_IDS UINT64 [-1]
PIXEL_VALUES FP16 [-1,-1,-1,-1]
ASPECT_RATIO_IDS INT64 [-1]
ASPECT_RATIO_MASK INT64 [-1,-1]
CROSS_ATTENTION_MASK INT64 [-1,-1,-1]
IMAGE_SIZES INT64 [-1,2]
IS_VIDEO_INPUT BOOL [1]
ATTENTION_MASK INT64 [-1]
IMAGE_GRID_THW INT64 [3]
VISION_INPUT_ID INT32 [-1]
""")
PREPROCESSING_PARAMETERS = ["tokenizer_dir", "add_special_tokens", "multimodal_model_path", "gpt_model_path",
                            "max_num_images", "hf_model_path"]
POSTPROCESSING_INPUTS = _parse("""
TOKENS_BATCH INT32 [-1,-1]
SEQUENCE_LENGTH INT32 [-1]
""")
POSTPROCESSING_OUTPUTS = _parse("OUTPUT STRING [-1]")
POSTPROCESSING_PARAMETERS = ["tokenizer_dir", "skip_special_tokens"]

# ---- tensorrt_llm_bls ----------------------------------------------------------------------------
BLS_INPUTS = _parse("""
text_input STRING [1]
decoder_text_input STRING [1] opt
image_input FP16 [-1,3,-1,-1] opt
image_bytes_input UINT8 [-1,-1,-1,-1] opt
image_url_input STRING [1] opt
video_bytes_input UINT8 [-1,-1,-1,-1] opt
max_tokens INT32 [1]
""" + _SAMPLING + """
return_log_probs BOOL [1] opt scalar
return_context_logits BOOL [1] opt scalar
return_generation_logits BOOL [1] opt scalar
num_return_sequences INT32 [1] opt scalar
beam_width INT32 [1] opt
stream BOOL [1] opt
prompt_embedding_table FP16 [-1,-1] opt
prompt_vocab_size INT32 [1] opt
prompt_table_extra_id UINT64 [1] opt
embedding_bias_words STRING [-1] opt
embedding_bias_weights FP32 [-1] opt
num_draft_tokens INT32 [1] opt
use_draft_logits BOOL [1] opt scalar
lora_task_id UINT64 [1] opt scalar
lora_weights FP16 [-1,-1] opt ragged
lora_config INT32 [-1,3] opt ragged
return_perf_metrics BOOL [1] opt scalar
return_num_input_tokens BOOL [1] opt scalar
return_num_output_tokens BOOL [1] opt scalar
guided_decoding_guide_type STRING [1] opt
guided_decoding_guide STRING [1] opt
""")
BLS_OUTPUTS = _parse(_TEXT_OUTPUTS)
BLS_PARAMETERS = [
    "accumulate_tokens",
    "tensorrt_llm_model_name",
    "tensorrt_llm_draft_model_name",
    "multimodal_encoders_name",
]

# ---- llmapi --------------------------------------------------------------------------------------
LLMAPI_INPUTS = _parse("""
text_input STRING [-1]
streaming BOOL [1] opt
sampling_param_best_of INT32 [1] opt
sampling_param_temperature FP32 [1] opt
sampling_param_top_k INT32 [1] opt
sampling_param_top_p FP32 [1] opt
sampling_param_frequency_penalty FP32 [1] opt
sampling_param_presence_penalty FP32 [1] opt
sampling_param_max_tokens INT32 [1] opt
sampling_param_stop STRING [-1] opt
sampling_param_seed UINT64 [1] opt
sampling_param_exclude_input_from_output BOOL [1] opt
sampling_param_return_perf_metrics BOOL [1] opt
return_finish_reason BOOL [1] opt
return_stop_reason BOOL [1] opt
return_cumulative_logprob BOOL [1] opt
stop BOOL [1] opt
""")
LLMAPI_OUTPUTS = _parse("""
text_output STRING [-1]
finish_reason STRING [-1]
stop_reason STRING [-1]
cumulative_logprob FP32 [-1]
kv_cache_reused_block INT32 [-1]
kv_cache_missed_block INT32 [-1]
kv_cache_alloc_new_blocks INT32 [-1]
kv_cache_alloc_total_blocks INT32 [-1]
kv_cache_hit_rate FP32 [-1]
""" + _TIMINGS)
LLMAPI_VERSION_FILES = ["helpers.py", "model.py", "model.yaml"]  # all_models/llmapi/tensorrt_llm/1/
LLMAPI_MAX_BATCH_SIZE = 0  # model.yaml triton_config: "does not support batching"; config.pbtxt leaves it out
LLMAPI_MODEL_YAML_KEYS = ["model", "backend", "tensor_parallel_size", "pipeline_parallel_size", "triton_config"]

# ---- containers ----------------------------------------------------------------------------------
TRITON_TRTLLM_VERSIONS = {
    "25.10": "1.0.0", "25.11": "1.0.3.2510", "25.12": "1.1.0", "26.01": "1.1.0", "26.02": "1.1.0",
    "26.03": "1.2.0", "26.04": "1.2.1", "26.05": "1.2.1", "26.06": "1.2.1", "26.07": "1.2.1",
}
# tensorrtllm_backend r26.04 dockerfile/Dockerfile.triton.trt_llm_backend: TENSORRTLLM_VER and where
# the image keeps TensorRT-LLM's examples and the backend's models.
BACKEND_R26_04_TRTLLM = "1.2.1"
IMAGE_EXAMPLES = "/app/examples"
IMAGE_ALL_MODELS = "/app/all_models"
