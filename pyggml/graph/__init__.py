"""Model graphs over ggml: the shared toolbox (builder), inputs, the reusable graph result and
one module per architecture (llama.cpp: src/llama-graph.*, src/models/*)."""

from __future__ import annotations

from .builder import CParams, GraphBuilder
from .result import GraphParams, GraphResult

__all__ = ["CParams", "GraphBuilder", "GraphParams", "GraphResult"]
