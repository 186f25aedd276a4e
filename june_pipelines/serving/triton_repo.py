"""Generate Triton model repositories for TensorRT-LLM from typed settings.

Two layouts, with the tensor names, types and parameter keys of TensorRT-LLM 1.2's Triton backend
(`triton_backend/all_models/`), so upstream clients work unchanged:
- `inflight` (engine flow): `ensemble` -> `preprocessing` (text -> ids) -> `tensorrt_llm` (the
  C++ TensorRT-LLM backend over a built engine) -> `postprocessing` (ids -> text), plus an optional
  `tensorrt_llm_bls` model doing the same chain in Python. Every parameter key the backend reads
  is written; unset ones as empty strings, which the backend treats as "not specified" (upstream
  leaves `${...}` placeholders there, which June rejects).
- `llmapi` (PyTorch backend, no engine): one python model `tensorrt_llm` whose `1/` folder
  (model.py, helpers.py) is copied from upstream, with June's `1/model.yaml`. Like upstream it
  does not batch (`max_batch_size` 0): requests send a 1-D `text_input`.

Model names carry a prefix (`<served name>-ensemble`, ...) so several models can live in one
repository and be switched with explicit model control. The tokenizer is copied into
`<prefix>preprocessing/tokenizer/` and referenced relative to the repository root, so the repository
can be mounted anywhere. Every `config.pbtxt` written is validated with Triton's protobuf schema.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from june_pipelines.serving import triton_models
from june_pipelines.serving.pbtxt import (
    ConfigError,
    Step,
    Tensor,
    render_ensemble_scheduling,
    render_model,
    validate,
)
from june_pipelines.serving.upstream_models import LLMAPI_MODEL, PYTHON_BACKEND_MODEL, UpstreamModels

Layout = Literal["inflight", "llmapi"]
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")
EXECUTOR_WORKER = "/opt/tritonserver/backends/tensorrtllm/trtllmExecutorWorker"  # upstream's default path
TP_REFUSAL = (
    "tensor parallelism above 1 on Triton needs one MPI rank per GPU (upstream's launch_triton_server.py "
    "--world_size, or orchestrator mode), which June does not launch; serve this model with "
    "trtllm_serve_deployment (`trtllm-serve --tp_size N`) or build it with tp_size 1"
)


@dataclass(frozen=True)
class TritonRepoSettings:
    """Settings for one model's repository entries (names follow the TensorRT-LLM backend's)."""

    layout: Layout = "inflight"
    name_prefix: str = ""
    max_batch_size: int = 8
    decoupled: bool = True  # streaming responses; unary requests then go over the gRPC stream too
    engine_dir: str = "/engines"  # as the server sees it
    triton_backend: Literal["tensorrtllm", "python"] = "tensorrtllm"
    batching_strategy: Literal["inflight_fused_batching", "V1"] = "inflight_fused_batching"
    batch_scheduler_policy: Literal["guaranteed_no_evict", "max_utilization"] = "guaranteed_no_evict"
    max_queue_delay_microseconds: int = 0
    max_queue_size: int = 0
    max_beam_width: int = 1
    kv_cache_free_gpu_mem_fraction: float = 0.9
    max_tokens_in_paged_kv_cache: int | None = None
    max_attention_window_size: int | None = None
    enable_kv_cache_reuse: bool = False
    enable_chunked_context: bool = False
    exclude_input_in_output: bool = True
    gpu_device_ids: str | None = None
    decoding_mode: str | None = None
    logits_datatype: str = "TYPE_FP32"
    encoder_input_features_data_type: str = "TYPE_FP16"
    prompt_embedding_table_data_type: str = "TYPE_FP16"
    preprocessing_instances: int = 1
    postprocessing_instances: int = 1
    add_special_tokens: bool = False
    skip_special_tokens: bool = True
    bls: bool = False
    bls_instances: int = 1
    accumulate_tokens: bool = False
    tensor_parallel_size: int = 1
    # llmapi layout
    hf_model: str = "/model"  # checkpoint path (or hub id) as the server sees it
    llmapi_extra: dict[str, object] = field(default_factory=dict)

    def name(self, component: str) -> str:
        return f"{self.name_prefix}{component}"

    @property
    def entry_model(self) -> str:
        """The model clients call."""
        return self.name("ensemble") if self.layout == "inflight" else self.name("tensorrt_llm")

    @property
    def models(self) -> tuple[str, ...]:
        if self.layout == "llmapi":
            return (self.name("tensorrt_llm"),)
        names = [
            self.name("ensemble"),
            self.name("preprocessing"),
            self.name("tensorrt_llm"),
            self.name("postprocessing"),
        ]
        return tuple(names + ([self.name("tensorrt_llm_bls")] if self.bls else []))

    def check(self) -> None:
        """Refuse what the generated repository could not serve (raises ConfigError)."""
        if self.tensor_parallel_size != 1:
            raise ConfigError(f"tensor_parallel_size {self.tensor_parallel_size}: {TP_REFUSAL}")
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be at least 1, got {self.max_batch_size}")
        if not 0 < self.kv_cache_free_gpu_mem_fraction <= 1:
            raise ConfigError(
                f"kv_cache_free_gpu_mem_fraction must be in (0, 1], got {self.kv_cache_free_gpu_mem_fraction}"
            )


@dataclass(frozen=True)
class GeneratedRepo:
    root: Path
    settings: TritonRepoSettings
    models: tuple[str, ...]
    configs: tuple[Path, ...]
    upstream_files: tuple[str, ...] = ()

    def metadata(self) -> dict[str, Any]:
        size = sum(p.stat().st_size for name in self.models for p in (self.root / name).rglob("*") if p.is_file())
        return {
            "path": str(self.root),
            "layout": self.settings.layout,
            "entry_model": self.settings.entry_model,
            "models": list(self.models),
            "config_count": len(self.configs),
            "size_bytes": size,
            "upstream_files": list(self.upstream_files),
            "settings": json.dumps(asdict(self.settings), sort_keys=True),
        }


# ---- tensors (names, types and shapes of TensorRT-LLM 1.2's all_models/inflight_batcher_llm) -----

def _t(name: str, data_type: str, dims: tuple[int, ...], optional: bool = True, ragged: bool = False) -> Tensor:
    return Tensor(name, data_type, dims, optional=optional, ragged=ragged)


def _scalar(name: str, data_type: str, optional: bool = True) -> Tensor:
    """[1] per request, reshaped to [] for the C++ backend."""
    return Tensor(name, data_type, (1,), optional=optional, reshape=())


def _sampling_inputs() -> list[Tensor]:
    """The word lists and sampling parameters of a request, taken alike by the ensemble and the BLS model."""
    return [
        _t("bad_words", "TYPE_STRING", (-1,)),
        _t("stop_words", "TYPE_STRING", (-1,)),
        _t("exclude_input_in_output", "TYPE_BOOL", (1,)),
        _t("end_id", "TYPE_INT32", (1,)),
        _t("pad_id", "TYPE_INT32", (1,)),
        _t("top_k", "TYPE_INT32", (1,)),
        _t("top_p", "TYPE_FP32", (1,)),
        _t("temperature", "TYPE_FP32", (1,)),
        _t("length_penalty", "TYPE_FP32", (1,)),
        _t("repetition_penalty", "TYPE_FP32", (1,)),
        _t("min_tokens", "TYPE_INT32", (1,)),
        _t("presence_penalty", "TYPE_FP32", (1,)),
        _t("frequency_penalty", "TYPE_FP32", (1,)),
        _t("seed", "TYPE_UINT64", (1,)),
    ]


def _ensemble_inputs() -> list[Tensor]:
    return [
        _t("text_input", "TYPE_STRING", (1,), optional=False),
        _t("decoder_text_input", "TYPE_STRING", (1,)),
        _t("max_tokens", "TYPE_INT32", (1,), optional=False),
        _t("num_return_sequences", "TYPE_INT32", (1,)),
        *_sampling_inputs(),
        _t("return_log_probs", "TYPE_BOOL", (1,)),
        _t("return_context_logits", "TYPE_BOOL", (1,)),
        _t("return_generation_logits", "TYPE_BOOL", (1,)),
        _t("return_perf_metrics", "TYPE_BOOL", (1,)),
        _t("return_num_input_tokens", "TYPE_BOOL", (1,)),
        _t("return_num_output_tokens", "TYPE_BOOL", (1,)),
        _t("beam_width", "TYPE_INT32", (1,)),
        _t("stream", "TYPE_BOOL", (1,)),
        _t("prompt_embedding_table", "TYPE_FP16", (-1, -1)),
        _t("prompt_table_extra_id", "TYPE_UINT64", (1,)),
        _t("prompt_vocab_size", "TYPE_INT32", (1,)),
        _t("embedding_bias_words", "TYPE_STRING", (-1,)),
        _t("embedding_bias_weights", "TYPE_FP32", (-1,)),
        _t("lora_task_id", "TYPE_UINT64", (1,)),
        _t("lora_weights", "TYPE_FP16", (-1, -1), ragged=True),
        _t("lora_config", "TYPE_INT32", (-1, 3), ragged=True),
        _t("guided_decoding_guide_type", "TYPE_STRING", (1,), ragged=True),
        _t("guided_decoding_guide", "TYPE_STRING", (1,), ragged=True),
    ]


# Per-request figures the backend returns (perf metrics, token counts); the ensemble and BLS pass them on.
_STATS_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("kv_cache_alloc_new_blocks", "TYPE_INT32"),
    ("kv_cache_reused_blocks", "TYPE_INT32"),
    ("kv_cache_alloc_total_blocks", "TYPE_INT32"),
    ("arrival_time_ns", "TYPE_INT64"),
    ("first_scheduled_time_ns", "TYPE_INT64"),
    ("first_token_time_ns", "TYPE_INT64"),
    ("last_token_time_ns", "TYPE_INT64"),
    ("acceptance_rate", "TYPE_FP32"),
    ("total_accepted_draft_tokens", "TYPE_INT32"),
    ("total_draft_tokens", "TYPE_INT32"),
    ("num_input_tokens", "TYPE_INT32"),
    ("num_output_tokens", "TYPE_INT32"),
)


def _passed_on_outputs(s: TritonRepoSettings) -> list[Tensor]:
    """Log probs, logits and indices of the tensorrt_llm model, which the ensemble and the BLS model pass on."""
    return [
        Tensor("cum_log_probs", "TYPE_FP32", (-1,)),
        Tensor("output_log_probs", "TYPE_FP32", (-1, -1)),
        Tensor("context_logits", s.logits_datatype, (-1, -1)),
        Tensor("generation_logits", s.logits_datatype, (-1, -1, -1)),
        Tensor("batch_index", "TYPE_INT32", (1,)),
        Tensor("sequence_index", "TYPE_INT32", (1,)),
    ]


def _text_outputs(s: TritonRepoSettings) -> list[Tensor]:
    """The outputs the ensemble and the BLS model share."""
    return [
        Tensor("text_output", "TYPE_STRING", (-1,)),
        *_passed_on_outputs(s),
        *(Tensor(name, dtype, (1,)) for name, dtype in _STATS_OUTPUTS),
    ]


_TRTLLM_SCALARS: tuple[tuple[str, str], ...] = (
    ("end_id", "TYPE_INT32"), ("pad_id", "TYPE_INT32"), ("beam_width", "TYPE_INT32"), ("temperature", "TYPE_FP32"),
    ("runtime_top_k", "TYPE_INT32"), ("runtime_top_p", "TYPE_FP32"), ("runtime_top_p_min", "TYPE_FP32"),
    ("runtime_top_p_decay", "TYPE_FP32"), ("runtime_top_p_reset_ids", "TYPE_INT32"), ("len_penalty", "TYPE_FP32"),
    ("early_stopping", "TYPE_BOOL"), ("repetition_penalty", "TYPE_FP32"), ("min_tokens", "TYPE_INT32"),
    ("beam_search_diversity_rate", "TYPE_FP32"), ("presence_penalty", "TYPE_FP32"), ("frequency_penalty", "TYPE_FP32"),
    ("seed", "TYPE_UINT64"), ("return_log_probs", "TYPE_BOOL"), ("return_context_logits", "TYPE_BOOL"),
    ("return_generation_logits", "TYPE_BOOL"), ("return_perf_metrics", "TYPE_BOOL"),
    ("return_num_input_tokens", "TYPE_BOOL"), ("return_num_output_tokens", "TYPE_BOOL"),
    ("exclude_input_in_output", "TYPE_BOOL"), ("stop", "TYPE_BOOL"), ("streaming", "TYPE_BOOL"),
)


def _trtllm_inputs(s: TritonRepoSettings) -> list[Tensor]:
    return [
        _t("input_ids", "TYPE_INT32", (-1,), ragged=True),
        _t("encoder_input_features", s.encoder_input_features_data_type, (-1, -1), ragged=True),
        _scalar("encoder_output_lengths", "TYPE_INT32"),
        _scalar("input_lengths", "TYPE_INT32", optional=False),
        _scalar("request_output_len", "TYPE_INT32", optional=False),
        _scalar("num_return_sequences", "TYPE_INT32"),
        _t("draft_input_ids", "TYPE_INT32", (-1,), ragged=True),
        _t("decoder_input_ids", "TYPE_INT32", (-1,), ragged=True),
        _scalar("decoder_input_lengths", "TYPE_INT32"),
        _t("draft_logits", s.logits_datatype, (-1, -1), ragged=True),
        _scalar("draft_acceptance_threshold", "TYPE_FP32"),
        _t("stop_words_list", "TYPE_INT32", (2, -1), ragged=True),
        _t("bad_words_list", "TYPE_INT32", (2, -1), ragged=True),
        _t("embedding_bias", "TYPE_FP32", (-1,), ragged=True),
        *(_scalar(name, dtype) for name, dtype in _TRTLLM_SCALARS),
        _t("prompt_embedding_table", s.prompt_embedding_table_data_type, (-1, -1), ragged=True),
        _t("prompt_table_extra_ids", "TYPE_UINT64", (-1,), ragged=True),
        _scalar("prompt_vocab_size", "TYPE_INT32"),
        _t("cross_attention_mask", "TYPE_BOOL", (-1, -1), ragged=True),
        _t("mrope_rotary_cos_sin", "TYPE_FP32", (-1,)),
        _t("mrope_position_deltas", "TYPE_INT64", (1,)),
        _scalar("lora_task_id", "TYPE_UINT64"),
        _t("lora_weights", "TYPE_FP16", (-1, -1), ragged=True),
        _t("lora_config", "TYPE_INT32", (-1, 3), ragged=True),
        _t("context_phase_params", "TYPE_UINT8", (-1,), ragged=True),
        _t("skip_cross_attn_blocks", "TYPE_BOOL", (1,), ragged=True),
        _t("retention_token_range_starts", "TYPE_INT32", (-1,), ragged=True),
        _t("retention_token_range_ends", "TYPE_INT32", (-1,), ragged=True),
        _t("retention_token_range_priorities", "TYPE_INT32", (-1,), ragged=True),
        _t("retention_token_range_durations_ms", "TYPE_INT32", (-1,), ragged=True),
        _t("retention_decode_priority", "TYPE_INT32", (1,), ragged=True),
        _t("retention_decode_duration_ms", "TYPE_INT32", (1,), ragged=True),
        _t("guided_decoding_guide_type", "TYPE_STRING", (1,), ragged=True),
        _t("guided_decoding_guide", "TYPE_STRING", (1,), ragged=True),
        _t("lookahead_window_size", "TYPE_INT32", (1,), ragged=True),
        _t("lookahead_ngram_size", "TYPE_INT32", (1,), ragged=True),
        _t("lookahead_verification_set_size", "TYPE_INT32", (1,), ragged=True),
    ]


def _trtllm_outputs(s: TritonRepoSettings) -> list[Tensor]:
    return [
        Tensor("output_ids", "TYPE_INT32", (-1, -1)),
        Tensor("sequence_length", "TYPE_INT32", (-1,)),
        *_passed_on_outputs(s),
        Tensor("context_phase_params", "TYPE_UINT8", (-1,)),
        *(Tensor(name, dtype, (1,)) for name, dtype in _STATS_OUTPUTS),
    ]


# ---- configs ---------------------------------------------------------------------------------

def _opt(value: object) -> object:
    """A parameter value; unset ones are written empty (the backend's "not specified")."""
    return "" if value is None else value


def tensorrt_llm_parameters(s: TritonRepoSettings) -> dict[str, object]:
    """Every parameter key TensorRT-LLM 1.2's backend reads (model_state.cc, model_instance_state.cc).

    The backend reads `gpt_model_type`, `tokenizer_dir`, `xgrammar_tokenizer_info_path` and
    `guided_decoding_backend` without a fallback ("Cannot find parameter with name"); the others
    are parsed in try blocks, where an empty string fails the conversion and selects the default.
    """
    params: dict[str, object] = {
        "max_beam_width": s.max_beam_width,
        "FORCE_CPU_ONLY_INPUT_TENSORS": "no",
        "gpt_model_type": s.batching_strategy,
        "gpt_model_path": s.engine_dir,
        "encoder_model_path": "",
        "max_tokens_in_paged_kv_cache": _opt(s.max_tokens_in_paged_kv_cache),
        "max_attention_window_size": _opt(s.max_attention_window_size),
        "sink_token_length": "",
        "batch_scheduler_policy": s.batch_scheduler_policy,
        "kv_cache_free_gpu_mem_fraction": s.kv_cache_free_gpu_mem_fraction,
        "cross_kv_cache_fraction": "",
        "kv_cache_host_memory_bytes": "",
        "kv_cache_onboard_blocks": "",
        "enable_trt_overlap": "",
        "exclude_input_in_output": s.exclude_input_in_output,
        "cancellation_check_period_ms": "",
        "stats_check_period_ms": "",
        "iter_stats_max_iterations": "",
        "request_stats_max_iterations": "",
        "enable_kv_cache_reuse": s.enable_kv_cache_reuse,
        "normalize_log_probs": "",
        "enable_chunked_context": s.enable_chunked_context,
        "gpu_device_ids": _opt(s.gpu_device_ids),
        "participant_ids": "",
        "num_nodes": "",
        "lora_cache_optimal_adapter_size": "",
        "lora_cache_max_adapter_size": "",
        "lora_cache_gpu_memory_fraction": "",
        "lora_cache_host_memory_bytes": "",
        "lora_prefetch_dir": "",
        "decoding_mode": _opt(s.decoding_mode),
        "executor_worker_path": EXECUTOR_WORKER,
        "lookahead_window_size": "",
        "lookahead_ngram_size": "",
        "lookahead_verification_set_size": "",
        "medusa_choices": "",
        "eagle_choices": "",
        "gpu_weights_percent": "",
        "enable_context_fmha_fp32_acc": "",
        "multi_block_mode": "",
        "cuda_graph_mode": "",
        "cuda_graph_cache_size": "",
        "speculative_decoding_fast_logits": "",
        "recv_poll_period_ms": "",
        "tokenizer_dir": "",
        "guided_decoding_backend": "",
        "xgrammar_tokenizer_info_path": "",
    }
    return params


def _dynamic_batching(s: TritonRepoSettings) -> dict[str, int]:
    return {
        "preferred_batch_size": s.max_batch_size,
        "max_queue_delay_microseconds": s.max_queue_delay_microseconds,
        "max_queue_size": s.max_queue_size,
    }


def tensorrt_llm_config(s: TritonRepoSettings) -> str:
    return render_model(
        s.name("tensorrt_llm"),
        backend=s.triton_backend,
        max_batch_size=s.max_batch_size,
        decoupled=s.decoupled,
        dynamic_batching=_dynamic_batching(s),
        inputs=_trtllm_inputs(s),
        outputs=_trtllm_outputs(s),
        parameters=tensorrt_llm_parameters(s),
    )


def preprocessing_config(s: TritonRepoSettings, tokenizer_dir: str) -> str:
    return render_model(
        s.name("preprocessing"),
        backend="python",
        max_batch_size=s.max_batch_size,
        dynamic_batching=_dynamic_batching(s),
        inputs=[
            _t("QUERY", "TYPE_STRING", (1,), optional=False),
            _t("DECODER_QUERY", "TYPE_STRING", (1,)),
            _t("IMAGE_BYTES", "TYPE_UINT8", (-1, -1, -1, -1)),
            _t("IMAGE_URL", "TYPE_STRING", (1,)),
            _t("IMAGES", "TYPE_STRING", (-1,)),
            _t("VIDEO_BYTES", "TYPE_UINT8", (-1, -1, -1, -1)),
            _t("REQUEST_OUTPUT_LEN", "TYPE_INT32", (1,), optional=False),
            _t("BAD_WORDS_DICT", "TYPE_STRING", (-1,)),
            _t("STOP_WORDS_DICT", "TYPE_STRING", (-1,)),
            _t("EMBEDDING_BIAS_WORDS", "TYPE_STRING", (-1,)),
            _t("EMBEDDING_BIAS_WEIGHTS", "TYPE_FP32", (-1,)),
            _t("END_ID", "TYPE_INT32", (1,)),
            _t("PAD_ID", "TYPE_INT32", (1,)),
            _t("PROMPT_TABLE_EXTRA_ID", "TYPE_UINT64", (1,)),
        ],
        outputs=[
            Tensor("INPUT_ID", "TYPE_INT32", (-1,)),
            Tensor("REQUEST_INPUT_LEN", "TYPE_INT32", (1,)),
            Tensor("DECODER_INPUT_ID", "TYPE_INT32", (-1,)),
            Tensor("REQUEST_DECODER_INPUT_LEN", "TYPE_INT32", (1,)),
            Tensor("BAD_WORDS_IDS", "TYPE_INT32", (2, -1)),
            Tensor("STOP_WORDS_IDS", "TYPE_INT32", (2, -1)),
            Tensor("EMBEDDING_BIAS", "TYPE_FP32", (-1,)),
            Tensor("REQUEST_OUTPUT_LEN", "TYPE_INT32", (-1,)),
            Tensor("OUT_END_ID", "TYPE_INT32", (1,)),
            Tensor("OUT_PAD_ID", "TYPE_INT32", (1,)),
            Tensor("OUT_PROMPT_TABLE_EXTRA_IDS", "TYPE_UINT64", (-1,)),
            Tensor("PIXEL_VALUES", "TYPE_FP16", (-1, -1, -1, -1)),
            Tensor("ASPECT_RATIO_IDS", "TYPE_INT64", (-1,)),
            Tensor("ASPECT_RATIO_MASK", "TYPE_INT64", (-1, -1)),
            Tensor("CROSS_ATTENTION_MASK", "TYPE_INT64", (-1, -1, -1)),
            Tensor("IMAGE_SIZES", "TYPE_INT64", (-1, 2)),
            Tensor("IS_VIDEO_INPUT", "TYPE_BOOL", (1,)),
            Tensor("ATTENTION_MASK", "TYPE_INT64", (-1,)),
            Tensor("IMAGE_GRID_THW", "TYPE_INT64", (3,)),
            Tensor("VISION_INPUT_ID", "TYPE_INT32", (-1,)),
        ],
        instance_count=s.preprocessing_instances,
        parameters={
            "tokenizer_dir": tokenizer_dir,
            "add_special_tokens": s.add_special_tokens,
            "multimodal_model_path": "",
            "gpt_model_path": s.engine_dir,
            "max_num_images": "",
            "hf_model_path": "",
        },
    )


def postprocessing_config(s: TritonRepoSettings, tokenizer_dir: str) -> str:
    return render_model(
        s.name("postprocessing"),
        backend="python",
        max_batch_size=s.max_batch_size,
        dynamic_batching={},
        inputs=[
            Tensor("TOKENS_BATCH", "TYPE_INT32", (-1, -1)),
            Tensor("SEQUENCE_LENGTH", "TYPE_INT32", (-1,)),
        ],
        outputs=[Tensor("OUTPUT", "TYPE_STRING", (-1,))],
        instance_count=s.postprocessing_instances,
        parameters={"tokenizer_dir": tokenizer_dir, "skip_special_tokens": s.skip_special_tokens},
    )


def ensemble_config(s: TritonRepoSettings) -> str:
    pre_in = {
        "QUERY": "text_input", "DECODER_QUERY": "decoder_text_input", "REQUEST_OUTPUT_LEN": "max_tokens",
        "BAD_WORDS_DICT": "bad_words", "STOP_WORDS_DICT": "stop_words", "EMBEDDING_BIAS_WORDS": "embedding_bias_words",
        "EMBEDDING_BIAS_WEIGHTS": "embedding_bias_weights", "END_ID": "end_id", "PAD_ID": "pad_id",
        "PROMPT_TABLE_EXTRA_ID": "prompt_table_extra_id",
    }
    pre_out = {
        "REQUEST_INPUT_LEN": "_REQUEST_INPUT_LEN",
        "INPUT_ID": "_INPUT_ID",
        "REQUEST_DECODER_INPUT_LEN": "_REQUEST_DECODER_INPUT_LEN",
        "DECODER_INPUT_ID": "_DECODER_INPUT_ID",
        "REQUEST_OUTPUT_LEN": "_REQUEST_OUTPUT_LEN",
        "STOP_WORDS_IDS": "_STOP_WORDS_IDS",
        "BAD_WORDS_IDS": "_BAD_WORDS_IDS",
        "EMBEDDING_BIAS": "_EMBEDDING_BIAS",
        "OUT_END_ID": "_PREPROCESSOR_END_ID",
        "OUT_PAD_ID": "_PREPROCESSOR_PAD_ID",
        "OUT_PROMPT_TABLE_EXTRA_IDS": "_OUT_PROMPT_TABLE_EXTRA_IDS",
    }
    passthrough = (
        "exclude_input_in_output", "temperature", "repetition_penalty", "min_tokens", "presence_penalty",
        "frequency_penalty", "seed", "return_log_probs", "return_context_logits", "return_generation_logits",
        "return_perf_metrics", "return_num_input_tokens", "return_num_output_tokens", "num_return_sequences",
        "beam_width", "prompt_embedding_table", "prompt_vocab_size", "lora_task_id", "lora_weights", "lora_config",
        "guided_decoding_guide_type", "guided_decoding_guide",
    )
    llm_in = {
        "input_ids": "_INPUT_ID", "decoder_input_ids": "_DECODER_INPUT_ID", "input_lengths": "_REQUEST_INPUT_LEN",
        "decoder_input_lengths": "_REQUEST_DECODER_INPUT_LEN", "request_output_len": "_REQUEST_OUTPUT_LEN",
        "end_id": "_PREPROCESSOR_END_ID", "pad_id": "_PREPROCESSOR_PAD_ID", "embedding_bias": "_EMBEDDING_BIAS",
        "runtime_top_k": "top_k", "runtime_top_p": "top_p", "len_penalty": "length_penalty", "streaming": "stream",
        "stop_words_list": "_STOP_WORDS_IDS", "bad_words_list": "_BAD_WORDS_IDS",
        "prompt_table_extra_ids": "_OUT_PROMPT_TABLE_EXTRA_IDS",
        **{name: name for name in passthrough},
    }
    llm_out = {
        "output_ids": "_TOKENS_BATCH", "sequence_length": "_SEQUENCE_LENGTH",
        **{t.name: t.name for t in _text_outputs(s) if t.name != "text_output"},
    }
    steps = [
        Step(s.name("preprocessing"), pre_in, pre_out),
        Step(s.name("tensorrt_llm"), llm_in, llm_out),
        Step(
            s.name("postprocessing"),
            {"TOKENS_BATCH": "_TOKENS_BATCH", "SEQUENCE_LENGTH": "_SEQUENCE_LENGTH"},
            {"OUTPUT": "text_output"},
        ),
    ]
    return render_model(
        s.name("ensemble"),
        platform="ensemble",
        max_batch_size=s.max_batch_size,
        inputs=_ensemble_inputs(),
        outputs=_text_outputs(s),
        instance_count=None,
        extra=[render_ensemble_scheduling(steps)],
    )


def _bls_inputs() -> list[Tensor]:
    return [
        _t("text_input", "TYPE_STRING", (1,), optional=False),
        _t("decoder_text_input", "TYPE_STRING", (1,)),
        _t("image_input", "TYPE_FP16", (-1, 3, -1, -1)),
        _t("image_bytes_input", "TYPE_UINT8", (-1, -1, -1, -1)),
        _t("image_url_input", "TYPE_STRING", (1,)),
        _t("video_bytes_input", "TYPE_UINT8", (-1, -1, -1, -1)),
        _t("max_tokens", "TYPE_INT32", (1,), optional=False),
        *_sampling_inputs(),
        _scalar("return_log_probs", "TYPE_BOOL"),
        _scalar("return_context_logits", "TYPE_BOOL"),
        _scalar("return_generation_logits", "TYPE_BOOL"),
        _scalar("num_return_sequences", "TYPE_INT32"),
        _t("beam_width", "TYPE_INT32", (1,)),
        _t("stream", "TYPE_BOOL", (1,)),
        _t("prompt_embedding_table", "TYPE_FP16", (-1, -1)),
        _t("prompt_vocab_size", "TYPE_INT32", (1,)),
        _t("prompt_table_extra_id", "TYPE_UINT64", (1,)),
        _t("embedding_bias_words", "TYPE_STRING", (-1,)),
        _t("embedding_bias_weights", "TYPE_FP32", (-1,)),
        _t("num_draft_tokens", "TYPE_INT32", (1,)),
        _scalar("use_draft_logits", "TYPE_BOOL"),
        _scalar("lora_task_id", "TYPE_UINT64"),
        _t("lora_weights", "TYPE_FP16", (-1, -1), ragged=True),
        _t("lora_config", "TYPE_INT32", (-1, 3), ragged=True),
        _scalar("return_perf_metrics", "TYPE_BOOL"),
        _scalar("return_num_input_tokens", "TYPE_BOOL"),
        _scalar("return_num_output_tokens", "TYPE_BOOL"),
        _t("guided_decoding_guide_type", "TYPE_STRING", (1,)),
        _t("guided_decoding_guide", "TYPE_STRING", (1,)),
    ]


def bls_config(s: TritonRepoSettings) -> str:
    return render_model(
        s.name("tensorrt_llm_bls"),
        backend="python",
        max_batch_size=s.max_batch_size,
        decoupled=s.decoupled,
        inputs=_bls_inputs(),
        outputs=_text_outputs(s),
        instance_count=s.bls_instances,
        parameters={
            # upstream's keys
            "accumulate_tokens": s.accumulate_tokens,
            "tensorrt_llm_model_name": s.name("tensorrt_llm"),
            "tensorrt_llm_draft_model_name": "",
            "multimodal_encoders_name": "",
            # June's BLS model also calls its (prefixed) pre- and post-processing models
            "preprocessing_model_name": s.name("preprocessing"),
            "postprocessing_model_name": s.name("postprocessing"),
        },
    )


def llmapi_config(s: TritonRepoSettings) -> str:
    inputs = [
        _t("text_input", "TYPE_STRING", (-1,), optional=False),
        _t("streaming", "TYPE_BOOL", (1,)),
        _t("sampling_param_best_of", "TYPE_INT32", (1,)),
        _t("sampling_param_temperature", "TYPE_FP32", (1,)),
        _t("sampling_param_top_k", "TYPE_INT32", (1,)),
        _t("sampling_param_top_p", "TYPE_FP32", (1,)),
        _t("sampling_param_frequency_penalty", "TYPE_FP32", (1,)),
        _t("sampling_param_presence_penalty", "TYPE_FP32", (1,)),
        _t("sampling_param_max_tokens", "TYPE_INT32", (1,)),
        _t("sampling_param_stop", "TYPE_STRING", (-1,)),
        _t("sampling_param_seed", "TYPE_UINT64", (1,)),
        _t("sampling_param_exclude_input_from_output", "TYPE_BOOL", (1,)),
        _t("sampling_param_return_perf_metrics", "TYPE_BOOL", (1,)),
        _t("return_finish_reason", "TYPE_BOOL", (1,)),
        _t("return_stop_reason", "TYPE_BOOL", (1,)),
        _t("return_cumulative_logprob", "TYPE_BOOL", (1,)),
        _t("stop", "TYPE_BOOL", (1,)),
    ]
    outputs = [
        Tensor("text_output", "TYPE_STRING", (-1,)),
        Tensor("finish_reason", "TYPE_STRING", (-1,)),
        Tensor("stop_reason", "TYPE_STRING", (-1,)),
        Tensor("cumulative_logprob", "TYPE_FP32", (-1,)),
        Tensor("kv_cache_reused_block", "TYPE_INT32", (-1,)),
        Tensor("kv_cache_missed_block", "TYPE_INT32", (-1,)),
        Tensor("kv_cache_alloc_new_blocks", "TYPE_INT32", (-1,)),
        Tensor("kv_cache_alloc_total_blocks", "TYPE_INT32", (-1,)),
        Tensor("kv_cache_hit_rate", "TYPE_FP32", (-1,)),
        *(Tensor(name, dtype, (1,)) for name, dtype in _STATS_OUTPUTS[3:10]),
    ]
    # max_batch_size and decoupled come from model.yaml's triton_config (upstream's model.py sets
    # them in auto_complete_config), so config.pbtxt leaves them out, as upstream's does.
    return render_model(
        s.name("tensorrt_llm"), backend="python", omit_max_batch_size=True, inputs=inputs, outputs=outputs
    )


def llmapi_model_yaml(s: TritonRepoSettings) -> str:
    import yaml

    doc: dict[str, object] = {
        "model": s.hf_model,
        "backend": "pytorch",
        "tensor_parallel_size": s.tensor_parallel_size,
        "pipeline_parallel_size": 1,
        # Upstream's model.py does not batch: text_input is one 1-D prompt per request.
        "triton_config": {"max_batch_size": 0, "decoupled": s.decoupled},
    }
    doc.update(s.llmapi_extra)
    return yaml.safe_dump(doc, sort_keys=False)


# ---- generation --------------------------------------------------------------------------------

def place_tokenizer(source: Path, dest: Path) -> list[str]:
    """Copy tokenizer files from a model directory, or extract them from the directory's GGUF."""
    dest.mkdir(parents=True, exist_ok=True)
    copied = [name for name in TOKENIZER_FILES if (source / name).is_file()]
    for name in copied:
        shutil.copy2(source / name, dest / name)
    if "tokenizer.json" not in copied:
        ggufs = sorted(source.glob("*.gguf"))
        if not ggufs:
            raise ConfigError(f"no tokenizer.json and no GGUF in {source}: cannot place a tokenizer")
        from june_pipelines.serving.gguf_tokenizer import write_tokenizer_files

        write_tokenizer_files(ggufs[0], dest)
        copied += ["tokenizer.json", "tokenizer_config.json"]
    return sorted(set(copied))


def _write(path: Path, text: str) -> Path:
    validate(text, where=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def needs_upstream_models(s: TritonRepoSettings) -> bool:
    return s.layout == "llmapi" or s.triton_backend == "python"


def generate(
    root: Path,
    settings: TritonRepoSettings,
    tokenizer_source: Path | None = None,
    upstream: UpstreamModels | None = None,
) -> GeneratedRepo:
    """Write this model's entries into the repository `root` (other models' entries are kept).

    Everything is checked before anything is written (settings, tokenizer source, upstream models);
    existing entries with the same names are then replaced whole, so a regenerated repository never
    mixes old and new files.
    """
    root = Path(root)
    s = settings
    s.check()
    if needs_upstream_models(s) and upstream is None:
        what = "the llmapi layout" if s.layout == "llmapi" else "the python backend"
        raise ConfigError(
            f"{what} needs upstream's tensorrt_llm model files: give the serving image or a copy of "
            "TensorRT-LLM's triton_backend/all_models (see docs/GPU_RUNBOOK.md)"
        )
    if s.layout == "inflight" and tokenizer_source is None:
        raise ConfigError("the inflight layout needs a tokenizer source (the model's weights directory)")
    for name in s.models:
        shutil.rmtree(root / name, ignore_errors=True)
    configs: list[Path] = []
    upstream_files: list[str] = []
    llm_version = root / s.name("tensorrt_llm") / "1"
    if s.layout == "llmapi":
        assert upstream is not None
        configs.append(_write(root / s.name("tensorrt_llm") / "config.pbtxt", llmapi_config(s)))
        upstream_files = upstream.copy(LLMAPI_MODEL, llm_version)
        (llm_version / "model.yaml").write_text(llmapi_model_yaml(s))
        return GeneratedRepo(root, s, s.models, tuple(configs), tuple(upstream_files))
    assert tokenizer_source is not None
    tokenizer_rel = f"{s.name('preprocessing')}/tokenizer"
    place_tokenizer(Path(tokenizer_source), root / tokenizer_rel)
    configs.append(_write(root / s.name("ensemble") / "config.pbtxt", ensemble_config(s)))
    (root / s.name("ensemble") / "1").mkdir(parents=True, exist_ok=True)
    configs.append(_write(root / s.name("preprocessing") / "config.pbtxt", preprocessing_config(s, tokenizer_rel)))
    configs.append(_write(root / s.name("postprocessing") / "config.pbtxt", postprocessing_config(s, tokenizer_rel)))
    configs.append(_write(root / s.name("tensorrt_llm") / "config.pbtxt", tensorrt_llm_config(s)))
    llm_version.mkdir(parents=True, exist_ok=True)
    if s.triton_backend == "python":
        assert upstream is not None
        upstream_files = upstream.copy(PYTHON_BACKEND_MODEL, llm_version)
    for component in ("preprocessing", "postprocessing"):
        (root / s.name(component) / "1").mkdir(parents=True, exist_ok=True)
        (root / s.name(component) / "1" / "model.py").write_text(triton_models.source(component))
    if s.bls:
        configs.append(_write(root / s.name("tensorrt_llm_bls") / "config.pbtxt", bls_config(s)))
        (root / s.name("tensorrt_llm_bls") / "1").mkdir(parents=True, exist_ok=True)
        (root / s.name("tensorrt_llm_bls") / "1" / "model.py").write_text(triton_models.source("bls"))
    return GeneratedRepo(root, s, s.models, tuple(configs), tuple(upstream_files))


def validate_repository(root: Path) -> dict[str, str]:
    """Parse every config.pbtxt under `root`; return {model: problem} for the ones that fail."""
    problems: dict[str, str] = {}
    for path in sorted(Path(root).glob("*/config.pbtxt")):
        try:
            config = validate(path.read_text(), where=str(path))
            if config.name != path.parent.name:
                problems[path.parent.name] = f"config name {config.name!r} differs from its directory"
        except ConfigError as exc:
            problems[path.parent.name] = str(exc)
    return problems
