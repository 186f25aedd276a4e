"""Stand-in for the tensorrt_llm package (the GPU boundary): only its version."""

__version__ = "1.2.1"
