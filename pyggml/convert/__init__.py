"""Converters from Hugging Face checkpoints to GGUF, following the reference's
convert_hf_to_gguf.py (``pyggml convert ARCH SRC_DIR OUT.gguf``)."""

from __future__ import annotations

from .bert import convert_bert

__all__ = ["convert_bert"]
