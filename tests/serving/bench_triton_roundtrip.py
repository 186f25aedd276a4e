"""Triton round trip on CPU: the generated ensemble (GGUF stand-in for tensorrt_llm) vs the same
model embedded with llama.cpp, same prompt, greedy, interleaved runs; medians and the ratio.

    .venv/bin/python tests/serving/bench_triton_roundtrip.py [runs]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_triton_server import PROMPT, build_test_repository  # noqa: E402

from june_pipelines.inference.base import SamplingParams  # noqa: E402
from june_pipelines.inference.llama_cpp import LlamaCppClient  # noqa: E402
from june_pipelines.inference.triton import TritonLLMClient  # noqa: E402
from june_pipelines.registry import get_model  # noqa: E402
from june_pipelines.serving.triton_deploy import TritonRepositoryClient  # noqa: E402
from june_pipelines.serving.triton_local import LocalTritonServer  # noqa: E402


def main(runs: int = 7) -> None:
    root = Path(tempfile.mkdtemp(prefix="june-bench-"))
    build_test_repository(root, "smol-", decoupled=True)
    embedded = LlamaCppClient("smollm2", get_model("smollm2").gguf_path(), n_ctx=2048, n_threads=1)
    with LocalTritonServer(root) as server:
        TritonRepositoryClient(server.http_url).deploy("smol-ensemble")
        clients = {
            "embedded llama.cpp": embedded,
            "triton grpc": TritonLLMClient("smol-ensemble", server.grpc_url),
            "triton http /generate": TritonLLMClient("smol-ensemble", server.http_url, protocol="http"),
        }
        for max_tokens in (1, 32):
            params = SamplingParams(max_tokens=max_tokens)
            times: dict[str, list[float]] = {name: [] for name in clients}
            texts = {name: c.complete(PROMPT, params).text for name, c in clients.items()}  # warm-up
            for _ in range(runs):
                for name, client in clients.items():
                    started = time.perf_counter()
                    client.complete(PROMPT, params)
                    times[name].append(time.perf_counter() - started)
            base = statistics.median(times["embedded llama.cpp"])
            print(f"max_tokens={max_tokens} (median of {runs}, same greedy text: {len(set(texts.values())) == 1})")
            for name, values in times.items():
                med = statistics.median(values)
                print(f"  {name:24s} {med * 1000:8.1f} ms   x{med / base:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
