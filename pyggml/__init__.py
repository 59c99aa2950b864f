"""pyggml: llama.cpp's runtime in Python, diffed component by component against the reference.

Public names are imported lazily so that ``import pyggml`` stays light."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import LoadError

if TYPE_CHECKING:
    from .model import Model
    from .sampling import Sampler

__all__ = ["LoadError", "Model", "Sampler"]


def __getattr__(name: str) -> Any:
    if name == "Model":
        from .model import Model

        return Model
    if name == "Sampler":
        from .sampling import Sampler

        return Sampler
    raise AttributeError(f"module 'pyggml' has no attribute {name!r}")
