"""Exceptions of the public API; each carries the reference's status where one exists."""

from __future__ import annotations


class PyggmlError(Exception):
    """Base class of every error pyggml raises on purpose."""


class GGMLError(PyggmlError, ValueError):
    """Invalid input to a ggml operation, caught before it reaches C (where ggml would abort)."""


class GGUFError(PyggmlError, ValueError):
    """A GGUF file or buffer that ggml/src/gguf.cpp would reject (gguf_init_* returns NULL).

    ``reason`` names the rule that failed (a short stable identifier), ``offset`` the byte
    position where reading stopped, when known.
    """

    def __init__(self, message: str, *, reason: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.offset = offset


class LoadError(PyggmlError):
    """A model load that llama_model_load_from_file answers with NULL.

    ``status`` is the reference's internal load status: -1 (error) or -2 (cancelled by the
    progress callback).  ``key`` names the metadata key or tensor involved, when there is one.
    """

    ERROR = -1
    CANCELLED = -2

    def __init__(self, message: str, *, status: int = ERROR, key: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.key = key
