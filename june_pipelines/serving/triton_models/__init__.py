"""Python-backend models copied into generated Triton repositories as `<model>/1/model.py`.

They run inside Triton's python backend stub, where `triton_python_backend_utils` exists; they
tokenize with the `tokenizers` library only (no transformers), from `tokenizer.json` files the
repository generator puts in place. Nothing in June imports these modules.
"""

from pathlib import Path

MODEL_DIR = Path(__file__).parent


def source(name: str) -> str:
    """The text of one model file (preprocessing, postprocessing, bls)."""
    return (MODEL_DIR / f"{name}.py").read_text()
