"""GGUF parsing, hparams, model and weight loading (llama.cpp: gguf.cpp, llama-model-loader, llama-model)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loader import Model

__all__ = ["Model"]


def __getattr__(name: str) -> Any:
    # lazy: pyggml.model.gguf must import without the loader's dependencies
    if name == "Model":
        from .loader import Model

        return Model
    raise AttributeError(f"module 'pyggml.model' has no attribute {name!r}")
