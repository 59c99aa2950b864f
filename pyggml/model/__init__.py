"""GGUF parsing, hparams, model and weight loading (llama.cpp: gguf.cpp, llama-model-loader, llama-model)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .gguf import GGUFFile
    from .loader import Model

__all__ = ["Model", "register_vocab_builder"]

# Data flows one way (model -> vocab): the vocab stage registers its constructor here when it is
# imported, so ``Model.vocab`` works without this package importing a later stage.
_vocab_builder: Callable[[GGUFFile], Any] | None = None


def register_vocab_builder(builder: Callable[[GGUFFile], Any]) -> None:
    global _vocab_builder
    _vocab_builder = builder


def vocab_builder() -> Callable[[GGUFFile], Any]:
    """The registered vocab constructor; before ``pyggml.vocab`` is imported, the package
    root's (``pyggml._build_vocab``: the root wires the stages, this package names none)."""
    if _vocab_builder is not None:
        return _vocab_builder
    from .. import _build_vocab

    return _build_vocab


def __getattr__(name: str) -> Any:
    # lazy: pyggml.model.gguf must import without the loader's dependencies
    if name == "Model":
        from .loader import Model

        return Model
    raise AttributeError(f"module 'pyggml.model' has no attribute {name!r}")
