"""Decoding contexts (llama.cpp: src/llama-context.*): ``Context``, its parameters and outputs."""

from __future__ import annotations

from .context import Context, ContextMemory
from .params import ContextError, ContextParams

__all__ = ["Context", "ContextError", "ContextMemory", "ContextParams"]
