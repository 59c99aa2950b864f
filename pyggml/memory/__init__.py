"""Memory modules (llama.cpp: src/llama-memory.h, llama-kv-cells.h, llama-kv-cache.{h,cpp}).

So far: ``KVCells``, the per-cell metadata of the KV cache (positions, shifts, sequence sets).
"""

from __future__ import annotations

from .kv_cells import MAX_SEQ, KVCells, KVCellsError

__all__ = ["MAX_SEQ", "KVCells", "KVCellsError"]
