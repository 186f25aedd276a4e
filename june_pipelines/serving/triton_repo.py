"""Generate Triton model repositories for TensorRT-LLM from typed settings.

Two layouts:
- `inflight` (engine flow): `ensemble` -> `preprocessing` (text -> ids) -> `tensorrt_llm` (the
  TensorRT-LLM backend over a built engine) -> `postprocessing` (ids -> text), plus an optional
  `tensorrt_llm_bls` model doing the same chain in Python. Tensor names follow the TensorRT-LLM
  backend (`text_input` [1] BYTES, `max_tokens` INT32, `text_output`, sampling inputs), so clients
  written for NVIDIA's repository work unchanged.
- `llmapi` (PyTorch backend, no engine): one python model `tensorrt_llm` with `1/model.yaml` for the
  LLM API; its `model.py` comes from the TensorRT-LLM container (see `LLMAPI_MODEL_PY`).

Model names carry an optional prefix (`<prefix>ensemble`, ...) so several models can live in one
repository and be switched with explicit model control. The tokenizer is copied into
`<prefix>preprocessing/tokenizer/` and referenced relative to the repository root, so the repository
can be mounted anywhere. Every `config.pbtxt` written is validated with Triton's protobuf schema.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from june_pipelines.serving import triton_models
from june_pipelines.serving.pbtxt import (
    ConfigError,
    Step,
    Tensor,
    render_ensemble_scheduling,
    render_model,
    scalar,
    validate,
)

Layout = Literal["inflight", "llmapi"]
# Where the llmapi model.py lives inside the TensorRT-LLM Triton container (copied at deploy time).
LLMAPI_MODEL_PY = "/app/all_models/llmapi/tensorrt_llm/1/model.py"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")


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
    logits_datatype: str = "TYPE_FP32"
    encoder_input_features_data_type: str = "TYPE_FP16"
    preprocessing_instances: int = 1
    postprocessing_instances: int = 1
    add_special_tokens: bool = False
    skip_special_tokens: bool = True
    bls: bool = False
    bls_instances: int = 1
    # llmapi layout
    hf_model: str = "/model"  # checkpoint path (or hub id) as the server sees it
    tensor_parallel_size: int = 1
    llmapi_extra: dict[str, object] = field(default_factory=dict)

    def name(self, component: str) -> str:
        return f"{self.name_prefix}{component}"

    @property
    def entry_model(self) -> str:
        """The model clients call."""
        return self.name("ensemble") if self.layout == "inflight" else self.name("tensorrt_llm")


@dataclass(frozen=True)
class GeneratedRepo:
    root: Path
    settings: TritonRepoSettings
    models: tuple[str, ...]
    configs: tuple[Path, ...]

    def metadata(self) -> dict[str, object]:
        return {
            "path": str(self.root),
            "layout": self.settings.layout,
            "entry_model": self.settings.entry_model,
            "models": list(self.models),
            "config_count": len(self.configs),
            "settings": json.dumps(asdict(self.settings), sort_keys=True),
        }


# ---- tensors ---------------------------------------------------------------------------------

def _ensemble_inputs() -> list[Tensor]:
    return [
        Tensor("text_input", "TYPE_STRING", (1,)),
        Tensor("max_tokens", "TYPE_INT32", (1,)),
        Tensor("bad_words", "TYPE_STRING", (-1,), optional=True),
        Tensor("stop_words", "TYPE_STRING", (-1,), optional=True),
        scalar("end_id", "TYPE_INT32", reshape=False),
        scalar("pad_id", "TYPE_INT32", reshape=False),
        scalar("top_k", "TYPE_INT32", reshape=False),
        scalar("top_p", "TYPE_FP32", reshape=False),
        scalar("temperature", "TYPE_FP32", reshape=False),
        scalar("length_penalty", "TYPE_FP32", reshape=False),
        scalar("repetition_penalty", "TYPE_FP32", reshape=False),
        scalar("min_tokens", "TYPE_INT32", reshape=False),
        scalar("presence_penalty", "TYPE_FP32", reshape=False),
        scalar("frequency_penalty", "TYPE_FP32", reshape=False),
        scalar("random_seed", "TYPE_UINT64", reshape=False),
        scalar("return_log_probs", "TYPE_BOOL", reshape=False),
        scalar("beam_width", "TYPE_INT32", reshape=False),
        scalar("stream", "TYPE_BOOL", reshape=False),
    ]


def _ensemble_outputs() -> list[Tensor]:
    return [
        Tensor("text_output", "TYPE_STRING", (-1,)),
        Tensor("cum_log_probs", "TYPE_FP32", (-1,)),
        Tensor("output_log_probs", "TYPE_FP32", (-1, -1)),
        Tensor("batch_index", "TYPE_INT32", (1,)),
        # Generated token count for usage accounting (not in NVIDIA's ensemble; clients may ignore
        # it). The prompt length cannot be an output too: on a decoupled repository an ensemble's
        # outputs must all come from the same decoupled branch.
        Tensor("sequence_length", "TYPE_INT32", (-1,)),
    ]


def _trtllm_inputs(s: TritonRepoSettings) -> list[Tensor]:
    return [
        Tensor("input_ids", "TYPE_INT32", (-1,), optional=True, ragged=True),
        Tensor("encoder_input_features", s.encoder_input_features_data_type, (-1, -1), optional=True, ragged=True),
        scalar("input_lengths", "TYPE_INT32", optional=False),
        scalar("request_output_len", "TYPE_INT32", optional=False),
        scalar("end_id", "TYPE_INT32"),
        scalar("pad_id", "TYPE_INT32"),
        Tensor("stop_words_list", "TYPE_INT32", (2, -1), optional=True, ragged=True),
        Tensor("bad_words_list", "TYPE_INT32", (2, -1), optional=True, ragged=True),
        Tensor("embedding_bias", "TYPE_FP32", (-1,), optional=True, ragged=True),
        scalar("beam_width", "TYPE_INT32"),
        scalar("temperature", "TYPE_FP32"),
        scalar("runtime_top_k", "TYPE_INT32"),
        scalar("runtime_top_p", "TYPE_FP32"),
        scalar("len_penalty", "TYPE_FP32"),
        scalar("repetition_penalty", "TYPE_FP32"),
        scalar("min_tokens", "TYPE_INT32"),
        scalar("presence_penalty", "TYPE_FP32"),
        scalar("frequency_penalty", "TYPE_FP32"),
        scalar("seed", "TYPE_UINT64"),
        scalar("return_log_probs", "TYPE_BOOL"),
        scalar("return_context_logits", "TYPE_BOOL"),
        scalar("return_generation_logits", "TYPE_BOOL"),
        scalar("exclude_input_in_output", "TYPE_BOOL"),
        scalar("stop", "TYPE_BOOL"),
        scalar("streaming", "TYPE_BOOL"),
    ]


def _trtllm_outputs(s: TritonRepoSettings) -> list[Tensor]:
    return [
        Tensor("output_ids", "TYPE_INT32", (-1, -1)),
        Tensor("sequence_length", "TYPE_INT32", (-1,)),
        Tensor("cum_log_probs", "TYPE_FP32", (-1,)),
        Tensor("output_log_probs", "TYPE_FP32", (-1, -1)),
        Tensor("context_logits", s.logits_datatype, (-1, -1)),
        Tensor("generation_logits", s.logits_datatype, (-1, -1, -1)),
        Tensor("batch_index", "TYPE_INT32", (1,)),
    ]


# ---- configs ---------------------------------------------------------------------------------

def tensorrt_llm_config(s: TritonRepoSettings) -> str:
    params: dict[str, object] = {
        "max_beam_width": s.max_beam_width,
        "FORCE_CPU_ONLY_INPUT_TENSORS": "no",
        "gpt_model_type": s.batching_strategy,
        "gpt_model_path": s.engine_dir,
        "batch_scheduler_policy": s.batch_scheduler_policy,
        "kv_cache_free_gpu_mem_fraction": s.kv_cache_free_gpu_mem_fraction,
        "max_tokens_in_paged_kv_cache": s.max_tokens_in_paged_kv_cache,
        "max_attention_window_size": s.max_attention_window_size,
        "exclude_input_in_output": s.exclude_input_in_output,
        "enable_kv_cache_reuse": s.enable_kv_cache_reuse,
        "enable_chunked_context": s.enable_chunked_context,
        "gpu_device_ids": s.gpu_device_ids,
    }
    return render_model(
        s.name("tensorrt_llm"),
        backend=s.triton_backend,
        max_batch_size=s.max_batch_size,
        decoupled=s.decoupled,
        dynamic_batching={
            "preferred_batch_size": s.max_batch_size,
            "max_queue_delay_microseconds": s.max_queue_delay_microseconds,
            "max_queue_size": s.max_queue_size,
        },
        inputs=_trtllm_inputs(s),
        outputs=_trtllm_outputs(s),
        parameters=params,
    )


def preprocessing_config(s: TritonRepoSettings, tokenizer_dir: str) -> str:
    return render_model(
        s.name("preprocessing"),
        backend="python",
        max_batch_size=s.max_batch_size,
        inputs=[
            Tensor("QUERY", "TYPE_STRING", (1,)),
            Tensor("REQUEST_OUTPUT_LEN", "TYPE_INT32", (1,)),
            Tensor("BAD_WORDS_DICT", "TYPE_STRING", (-1,), optional=True),
            Tensor("STOP_WORDS_DICT", "TYPE_STRING", (-1,), optional=True),
            Tensor("END_ID", "TYPE_INT32", (1,), optional=True),
            Tensor("PAD_ID", "TYPE_INT32", (1,), optional=True),
        ],
        outputs=[
            Tensor("INPUT_ID", "TYPE_INT32", (-1,)),
            Tensor("REQUEST_INPUT_LEN", "TYPE_INT32", (1,)),
            Tensor("REQUEST_OUTPUT_LEN", "TYPE_INT32", (1,)),
            Tensor("STOP_WORDS_IDS", "TYPE_INT32", (2, -1)),
            Tensor("BAD_WORDS_IDS", "TYPE_INT32", (2, -1)),
            Tensor("OUT_END_ID", "TYPE_INT32", (1,)),
            Tensor("OUT_PAD_ID", "TYPE_INT32", (1,)),
        ],
        instance_count=s.preprocessing_instances,
        parameters={"tokenizer_dir": tokenizer_dir, "add_special_tokens": s.add_special_tokens},
    )


def postprocessing_config(s: TritonRepoSettings, tokenizer_dir: str) -> str:
    return render_model(
        s.name("postprocessing"),
        backend="python",
        max_batch_size=s.max_batch_size,
        inputs=[
            Tensor("TOKENS_BATCH", "TYPE_INT32", (-1, -1)),
            Tensor("SEQUENCE_LENGTH", "TYPE_INT32", (-1,)),
        ],
        outputs=[Tensor("OUTPUT", "TYPE_STRING", (-1,))],
        instance_count=s.postprocessing_instances,
        parameters={"tokenizer_dir": tokenizer_dir, "skip_special_tokens": s.skip_special_tokens},
    )


def ensemble_config(s: TritonRepoSettings) -> str:
    steps = [
        Step(
            s.name("preprocessing"),
            {
                "QUERY": "text_input",
                "REQUEST_OUTPUT_LEN": "max_tokens",
                "BAD_WORDS_DICT": "bad_words",
                "STOP_WORDS_DICT": "stop_words",
                "END_ID": "end_id",
                "PAD_ID": "pad_id",
            },
            {
                "INPUT_ID": "_INPUT_ID",
                "REQUEST_INPUT_LEN": "_REQUEST_INPUT_LEN",
                "REQUEST_OUTPUT_LEN": "_REQUEST_OUTPUT_LEN",
                "STOP_WORDS_IDS": "_STOP_WORDS_IDS",
                "BAD_WORDS_IDS": "_BAD_WORDS_IDS",
                "OUT_END_ID": "_PREPROCESSOR_END_ID",
                "OUT_PAD_ID": "_PREPROCESSOR_PAD_ID",
            },
        ),
        Step(
            s.name("tensorrt_llm"),
            {
                "input_ids": "_INPUT_ID",
                "input_lengths": "_REQUEST_INPUT_LEN",
                "request_output_len": "_REQUEST_OUTPUT_LEN",
                "end_id": "_PREPROCESSOR_END_ID",
                "pad_id": "_PREPROCESSOR_PAD_ID",
                "stop_words_list": "_STOP_WORDS_IDS",
                "bad_words_list": "_BAD_WORDS_IDS",
                "runtime_top_k": "top_k",
                "runtime_top_p": "top_p",
                "temperature": "temperature",
                "len_penalty": "length_penalty",
                "repetition_penalty": "repetition_penalty",
                "min_tokens": "min_tokens",
                "presence_penalty": "presence_penalty",
                "frequency_penalty": "frequency_penalty",
                "seed": "random_seed",
                "return_log_probs": "return_log_probs",
                "beam_width": "beam_width",
                "streaming": "stream",
            },
            {
                "output_ids": "_TOKENS_BATCH",
                "sequence_length": "sequence_length",
                "cum_log_probs": "cum_log_probs",
                "output_log_probs": "output_log_probs",
                "batch_index": "batch_index",
            },
        ),
        Step(
            s.name("postprocessing"),
            {"TOKENS_BATCH": "_TOKENS_BATCH", "SEQUENCE_LENGTH": "sequence_length"},
            {"OUTPUT": "text_output"},
        ),
    ]
    return render_model(
        s.name("ensemble"),
        platform="ensemble",
        max_batch_size=s.max_batch_size,
        inputs=_ensemble_inputs(),
        outputs=_ensemble_outputs(),
        instance_count=None,
        extra=[render_ensemble_scheduling(steps)],
    )


def bls_config(s: TritonRepoSettings) -> str:
    return render_model(
        s.name("tensorrt_llm_bls"),
        backend="python",
        max_batch_size=s.max_batch_size,
        decoupled=s.decoupled,
        inputs=_ensemble_inputs(),
        outputs=[Tensor("text_output", "TYPE_STRING", (-1,))],
        instance_count=s.bls_instances,
        parameters={
            "preprocessing_model": s.name("preprocessing"),
            "tensorrt_llm_model": s.name("tensorrt_llm"),
            "postprocessing_model": s.name("postprocessing"),
        },
    )


def llmapi_config(s: TritonRepoSettings) -> str:
    inputs = [
        Tensor("text_input", "TYPE_STRING", (-1,)),
        Tensor("streaming", "TYPE_BOOL", (1,), optional=True),
        Tensor("sampling_param_temperature", "TYPE_FP32", (1,), optional=True),
        Tensor("sampling_param_top_k", "TYPE_INT32", (1,), optional=True),
        Tensor("sampling_param_top_p", "TYPE_FP32", (1,), optional=True),
        Tensor("sampling_param_frequency_penalty", "TYPE_FP32", (1,), optional=True),
        Tensor("sampling_param_presence_penalty", "TYPE_FP32", (1,), optional=True),
        Tensor("sampling_param_max_tokens", "TYPE_INT32", (1,), optional=True),
        Tensor("sampling_param_stop", "TYPE_STRING", (-1,), optional=True),
        Tensor("sampling_param_seed", "TYPE_UINT64", (1,), optional=True),
        Tensor("sampling_param_exclude_input_from_output", "TYPE_BOOL", (1,), optional=True),
        Tensor("return_finish_reason", "TYPE_BOOL", (1,), optional=True),
        Tensor("stop", "TYPE_BOOL", (1,), optional=True),
    ]
    outputs = [
        Tensor("text_output", "TYPE_STRING", (-1,)),
        Tensor("finish_reason", "TYPE_STRING", (-1,)),
    ]
    # max_batch_size and decoupled come from model.yaml's triton_config for this model (see upstream).
    return render_model(s.name("tensorrt_llm"), backend="python", inputs=inputs, outputs=outputs)


def llmapi_model_yaml(s: TritonRepoSettings) -> str:
    import yaml

    doc: dict[str, object] = {
        "model": s.hf_model,
        "backend": "pytorch",
        "tensor_parallel_size": s.tensor_parallel_size,
        "pipeline_parallel_size": 1,
        "triton_config": {"max_batch_size": s.max_batch_size, "decoupled": s.decoupled},
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


def generate(root: Path, settings: TritonRepoSettings, tokenizer_source: Path | None = None) -> GeneratedRepo:
    """Write this model's entries into the repository `root` (other models' entries are kept).

    Existing entries with the same names are replaced whole, so a regenerated repository never
    mixes old and new files.
    """
    root = Path(root)
    s = settings
    names = (
        [s.name("ensemble"), s.name("preprocessing"), s.name("tensorrt_llm"), s.name("postprocessing")]
        + ([s.name("tensorrt_llm_bls")] if s.bls else [])
        if s.layout == "inflight"
        else [s.name("tensorrt_llm")]
    )
    for name in names:
        shutil.rmtree(root / name, ignore_errors=True)
    configs: list[Path] = []
    if s.layout == "llmapi":
        configs.append(_write(root / s.name("tensorrt_llm") / "config.pbtxt", llmapi_config(s)))
        (root / s.name("tensorrt_llm") / "1").mkdir(parents=True, exist_ok=True)
        (root / s.name("tensorrt_llm") / "1" / "model.yaml").write_text(llmapi_model_yaml(s))
        return GeneratedRepo(root, s, tuple(names), tuple(configs))
    if tokenizer_source is None:
        raise ConfigError("the inflight layout needs a tokenizer source (the model's weights directory)")
    tokenizer_rel = f"{s.name('preprocessing')}/tokenizer"
    place_tokenizer(Path(tokenizer_source), root / tokenizer_rel)
    configs.append(_write(root / s.name("ensemble") / "config.pbtxt", ensemble_config(s)))
    (root / s.name("ensemble") / "1").mkdir(parents=True, exist_ok=True)
    configs.append(_write(root / s.name("preprocessing") / "config.pbtxt", preprocessing_config(s, tokenizer_rel)))
    configs.append(_write(root / s.name("postprocessing") / "config.pbtxt", postprocessing_config(s, tokenizer_rel)))
    configs.append(_write(root / s.name("tensorrt_llm") / "config.pbtxt", tensorrt_llm_config(s)))
    (root / s.name("tensorrt_llm") / "1").mkdir(parents=True, exist_ok=True)
    for component in ("preprocessing", "postprocessing"):
        (root / s.name(component) / "1").mkdir(parents=True, exist_ok=True)
        (root / s.name(component) / "1" / "model.py").write_text(triton_models.source(component))
    if s.bls:
        configs.append(_write(root / s.name("tensorrt_llm_bls") / "config.pbtxt", bls_config(s)))
        (root / s.name("tensorrt_llm_bls") / "1").mkdir(parents=True, exist_ok=True)
        (root / s.name("tensorrt_llm_bls") / "1" / "model.py").write_text(triton_models.source("bls"))
    return GeneratedRepo(root, s, tuple(names), tuple(configs))


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
