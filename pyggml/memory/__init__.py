"""Memory modules (llama.cpp: src/llama-memory.h, llama-kv-cells.h, llama-kv-cache.{h,cpp},
llama-kv-cache-iswa.{h,cpp}, llama-memory-recurrent.{h,cpp}).

``KVCells`` (per-cell metadata), ``KVCache`` (streams, slot search, ubatch placement, sequence
operations, n_kv, KQ mask, shift bookkeeping and updates), ``KVCacheISWA`` (base + sliding-window
cache pair), ``MemoryRecurrent`` (one state cell per sequence), ``Memory`` (the user-facing
``ctx.memory`` with checked arguments), ``context_sizes`` (how n_ctx becomes cache sizes), SWA rules
and memory statuses.  The K/V tensors and the shift graph come with the decoder.
"""

from __future__ import annotations

from .api import ContextSizes, Memory, MemoryError_, context_sizes
from .iswa import KVCacheISWA, swa_size
from .kv_cache import KVCache, KVCacheError, KVUpdate, SlotInfo
from .kv_cells import MAX_SEQ, KVCells, KVCellsError
from .recurrent import MemoryRecurrent, RecurrentError
from .status import MemoryStatus, combine
from .swa import SWAType, is_masked

__all__ = ["MAX_SEQ", "ContextSizes", "KVCache", "KVCacheError", "KVCacheISWA", "KVCells", "KVCellsError",
           "KVUpdate", "Memory", "MemoryError_", "MemoryRecurrent", "MemoryStatus", "RecurrentError",
           "SWAType", "SlotInfo", "combine", "context_sizes", "is_masked", "swa_size"]
