"""pyggml: llama.cpp's runtime in Python, diffed component by component against the reference.

Public names are imported lazily so that ``import pyggml`` stays light."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    BatchError,
    DecodeError,
    GenerationError,
    GGMLError,
    GGUFError,
    GrammarError,
    LoadError,
    PyggmlError,
    SamplerError,
    TemplateError,
    TokenizerError,
)

if TYPE_CHECKING:
    from .batch import Batch
    from .context import Context
    from .grammar import Grammar
    from .llm import LLM, Completion
    from .model import Model
    from .sampling import Sampler
    from .vocab import Vocab

# public name -> the module that defines it (imported on first use)
_LAZY = {
    "Model": "pyggml.model",
    "Batch": "pyggml.batch",
    "Context": "pyggml.context",
    "Grammar": "pyggml.grammar",
    "LLM": "pyggml.llm",
    "Completion": "pyggml.llm",
    "Sampler": "pyggml.sampling",
    "Vocab": "pyggml.vocab",
}

__all__ = [
    "Batch", "BatchError", "Completion", "Context", "DecodeError", "GGMLError", "GGUFError",
    "GenerationError", "Grammar", "GrammarError", "LLM", "LoadError", "Model", "PyggmlError",
    "Sampler", "SamplerError", "TemplateError", "TokenizerError", "Vocab",
]


def _build_vocab(gguf_file: Any) -> Any:
    """The vocabulary of a parsed GGUF, for ``pyggml.model`` (which imports no later stage:
    the package root wires them; see pyggml.model.vocab_builder)."""
    from .vocab import Vocab

    return Vocab.from_gguf(gguf_file)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pyggml' has no attribute {name!r}")
    if name == "Model":
        importlib.import_module("pyggml.vocab")  # registers the tokenizer behind Model.vocab
    return getattr(importlib.import_module(module), name)
