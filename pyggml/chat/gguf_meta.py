"""A model's chat templates from its GGUF metadata (``tokenizer.chat_template`` and the named
variants ``tokenizer.chat_template.<name>``, as llama_model_chat_template reads them)."""

from __future__ import annotations

import os

from ..model.gguf import parse_file
from ..model.hparams import templates_from_kv


def chat_templates(path: str | os.PathLike[str]) -> dict[str, str]:
    """Every chat template of the file: ``{"": default, "tool_use": ..., ...}`` (empty when
    the file has none).  Raises GGUFError for a file gguf.cpp would reject."""
    return templates_from_kv(parse_file(path).kv)
