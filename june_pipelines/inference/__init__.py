"""LLM inference backends (embedded llama.cpp, OpenAI-compatible, Triton) and their resources."""
