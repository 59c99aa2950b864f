"""Interleaved-SWA KV cache: one full-attention cache for the non-SWA layers and one sliding-window
cache for the SWA layers, driven together.

llama.cpp: src/llama-kv-cache-iswa.{h,cpp} llama_kv_cache_iswa, llama_kv_cache_iswa_context.

Sizing: the base cache has ``kv_size`` cells; the SWA cache only needs the window of every
sequence that can be in flight plus one ubatch, padded to 256 cells (the reference pads it for
performance), unless ``swa_full`` asks for a full-size SWA cache.  Sequence operations go to both
caches; positions are read from the SWA cache (its sequences are a subset of the base's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..batch import BatchAllocr, UBatch
from .kv_cache import KVCache, KVCacheError, SlotInfo
from .status import MemoryStatus, combine
from .swa import SWAType

_U32 = 0xFFFFFFFF


def pad(x: int, n: int) -> int:
    """GGML_PAD on uint32 values (wraps like the reference's unsigned arithmetic)."""
    return ((x + n - 1) & ~(n - 1)) & _U32


def swa_size(kv_size: int, n_swa: int, *, n_seq_max: int, n_ubatch: int, unified: bool,
             swa_full: bool) -> int:
    """Cells of the SWA cache.  llama.cpp: llama_kv_cache_iswa::llama_kv_cache_iswa."""
    if swa_full:
        return kv_size
    need = (n_swa * (n_seq_max if unified else 1) + n_ubatch) & _U32
    return pad(min(kv_size, need), 256)


@dataclass
class ISWABatch:
    """The outcome of ``init_batch``: the status, the ubatches and each cache's slots; ``apply``
    / ``next`` walk the ubatches (llama_kv_cache_iswa_context)."""

    status: MemoryStatus
    ubatches: list[UBatch] = field(default_factory=list)
    sinfos_base: list[SlotInfo] = field(default_factory=list)
    sinfos_swa: list[SlotInfo] = field(default_factory=list)
    i_next: int = 0
    n_kv: tuple[int, int] = (0, 0)


class KVCacheISWA:
    def __init__(self, *, kv_size: int, n_seq_max: int, n_ubatch: int, n_swa: int,
                 swa_type: SWAType | int, unified: bool = True, swa_full: bool = False, n_pad: int = 1,
                 alibi: bool = False, n_pos_per_embd: int = 1, arch_can_shift: bool = True) -> None:
        if SWAType(swa_type) == SWAType.NONE:
            raise KVCacheError("an iSWA cache needs an SWA type")
        self.unified = unified
        self.swa_full = swa_full
        common = {"n_seq_max": n_seq_max, "unified": unified, "n_pad": n_pad, "alibi": alibi,
                  "n_pos_per_embd": n_pos_per_embd, "arch_can_shift": arch_can_shift}
        size_swa = swa_size(kv_size, n_swa, n_seq_max=n_seq_max, n_ubatch=n_ubatch, unified=unified,
                            swa_full=swa_full)
        self.base = KVCache(kv_size=kv_size, n_swa=0, swa_type=SWAType.NONE, **common)
        self.swa = KVCache(kv_size=size_swa, n_swa=n_swa, swa_type=swa_type, **common)
        self.n_seq_max = n_seq_max

    @property
    def caches(self) -> tuple[KVCache, KVCache]:
        return self.base, self.swa

    # ------------------------------------------------------------------ sequence operations
    def clear(self) -> None:
        self.base.clear()
        self.swa.clear()

    def seq_rm(self, seq_id: int, p0: int, p1: int) -> bool:
        # both caches run even when the first one says no (the reference ANDs the results)
        a = self.base.seq_rm(seq_id, p0, p1)
        b = self.swa.seq_rm(seq_id, p0, p1)
        return a and b

    def seq_cp(self, src: int, dst: int, p0: int, p1: int) -> None:
        self.base.seq_cp(src, dst, p0, p1)
        self.swa.seq_cp(src, dst, p0, p1)

    def seq_keep(self, seq_id: int) -> None:
        self.base.seq_keep(seq_id)
        self.swa.seq_keep(seq_id)

    def seq_add(self, seq_id: int, p0: int, p1: int, shift: int) -> None:
        self.base.seq_add(seq_id, p0, p1, shift)
        self.swa.seq_add(seq_id, p0, p1, shift)

    def seq_div(self, seq_id: int, p0: int, p1: int, d: int) -> None:
        self.base.seq_div(seq_id, p0, p1, d)
        self.swa.seq_div(seq_id, p0, p1, d)

    def seq_pos_min(self, seq_id: int) -> int:
        return self.swa.seq_pos_min(seq_id)

    def seq_pos_max(self, seq_id: int) -> int:
        return self.swa.seq_pos_max(seq_id)

    @property
    def can_shift(self) -> bool:
        """A shift needs both caches able to shift and of the same size (so: swa_full)."""
        return self.base.can_shift and self.swa.can_shift and self.base.size == self.swa.size

    @property
    def has_shift(self) -> bool:
        return self.base.has_shift or self.swa.has_shift

    # ------------------------------------------------------------------ batches and updates
    def init_batch(self, allocr: BatchAllocr, n_ubatch: int) -> ISWABatch:
        """Simple splits first (unified only), then equal splits (sequential unless unified);
        each attempt must fit both caches.  llama.cpp: llama_kv_cache_iswa::init_batch."""
        attempts = ([lambda: allocr.split_simple(n_ubatch)] if self.unified else []) + \
            [lambda: allocr.split_equal(n_ubatch, not self.unified, 0)]
        for split in attempts:
            allocr.split_reset()
            ubs: list[UBatch] = []
            while (ub := split()) is not None:
                ubs.append(ub)
            if allocr.n_used < allocr.n_tokens:
                continue
            if any(int(ub.pos.min()) < 0 for ub in ubs):
                raise KVCacheError("negative positions cannot be stored in the KV cache")
            sb = self.base.prepare(ubs)
            if sb is None:
                continue
            ss = self.swa.prepare(ubs)
            if ss is None:
                continue
            return ISWABatch(MemoryStatus.SUCCESS, ubs, sb, ss)
        return ISWABatch(MemoryStatus.FAILED_PREPARE)

    def apply(self, b: ISWABatch) -> UBatch:
        """Place the current ubatch in both caches; ``b.n_kv`` = (base, swa) n_kv."""
        if b.status != MemoryStatus.SUCCESS:
            raise KVCacheError(f"cannot apply a memory context with status {b.status.name}")
        ub = b.ubatches[b.i_next]
        self.base.apply_ubatch(b.sinfos_base[b.i_next], ub)
        self.swa.apply_ubatch(b.sinfos_swa[b.i_next], ub)
        b.n_kv = (self.base.get_n_kv(b.sinfos_base[b.i_next]), self.swa.get_n_kv(b.sinfos_swa[b.i_next]))
        return ub

    @staticmethod
    def next(b: ISWABatch) -> bool:
        b.i_next += 1
        return b.i_next < len(b.ubatches)

    def init_update(self) -> ISWAUpdate:
        return ISWAUpdate(self.base.init_update(), self.swa.init_update())

    def describe(self) -> dict:
        return {"base": self.base.describe(), "swa": self.swa.describe(),
                "seq_pos": [[self.seq_pos_min(s), self.seq_pos_max(s)] for s in range(self.n_seq_max)]}


class ISWAUpdate:
    """Both caches' updates; the status is their combination."""

    def __init__(self, base, swa) -> None:
        self.parts = (base, swa)
        self.status = combine(base.status, swa.status)

    def apply(self, shift_fn=None) -> bool:
        if self.status.is_fail:
            raise KVCacheError(f"cannot apply a memory context with status {self.status.name}")
        ok = True
        for p in self.parts:
            ok = p.apply(shift_fn) and ok
        return ok
