"""Memory modules (llama.cpp: src/llama-memory.h, llama-kv-cells.h, llama-kv-cache.{h,cpp}).

``KVCells`` (per-cell metadata), ``KVCache`` (streams, slot search, ubatch placement, sequence
operations, n_kv, KQ mask), SWA rules and memory statuses.  The K/V tensors, the shift graph
and ``update`` come with the decoder.
"""

from __future__ import annotations

from .kv_cache import KVCache, KVCacheError, SlotInfo
from .kv_cells import MAX_SEQ, KVCells, KVCellsError
from .status import MemoryStatus, combine
from .swa import SWAType, is_masked

__all__ = ["MAX_SEQ", "KVCache", "KVCacheError", "KVCells", "KVCellsError", "MemoryStatus", "SWAType",
           "SlotInfo", "combine", "is_masked"]
