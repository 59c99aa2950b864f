"""The user-facing memory object (``ctx.memory``) and the context sizing rules that size it.

llama.cpp: include/llama.h llama_memory_* (seq_rm, seq_cp, seq_keep, seq_add, seq_div,
seq_pos_min, seq_pos_max, clear, can_shift), llama_context::memory_update, and the size rules of
llama_context's constructor (src/llama-context.cpp).

Where the reference only asserts (GGML_ASSERT aborts the process) or corrupts its state, the
methods here raise ``MemoryError_`` before touching anything, so a failed call leaves the memory
unchanged.  ``seq_rm`` returning False is not an error: it is the reference's answer for a range a
recurrent state cannot forget (and then nothing changed either).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from ..errors import PyggmlError
from .iswa import KVCacheISWA, pad
from .kv_cache import KVCache
from .kv_cells import MAX_SEQ
from .recurrent import MemoryRecurrent
from .status import MemoryStatus

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


class MemoryError_(PyggmlError, ValueError):  # noqa: N801 - MemoryError is a builtin
    """A memory call with arguments the reference cannot take (bad sequence id, partial copy
    across streams, a divisor < 1, shifting a model that cannot shift...)."""


@dataclass(frozen=True)
class ContextSizes:
    n_ctx: int
    n_ctx_seq: int
    n_batch: int
    n_ubatch: int
    kv_size: int
    n_stream: int


def context_sizes(*, n_ctx: int, n_ctx_train: int, n_seq_max: int = 1, kv_unified: bool = False,
                  n_batch: int = 2048, n_ubatch: int = 512, causal_attn: bool = True) -> ContextSizes:
    """The sizes llama_context derives from its parameters: n_ctx 0 means the training context;
    n_batch is capped by the (unpadded) n_ctx for causal models; n_ctx is padded to 256; without a
    unified cache each sequence gets PAD(n_ctx / n_seq_max, 256) cells and n_ctx becomes that times
    n_seq_max.  The KV cache has n_ctx_seq cells per stream (one stream, or one per sequence).
    llama.cpp: src/llama-context.cpp llama_context::llama_context (n_ctx, n_batch, n_ubatch,
    n_ctx_seq) and llama_model::create_memory (kv_size = n_ctx_seq)."""
    if n_batch == 0 and n_ubatch == 0:
        raise MemoryError_("n_batch and n_ubatch cannot both be zero")
    if n_ctx == 0 and n_ctx_train == 0:
        raise MemoryError_("n_ctx and n_ctx_train cannot both be zero")
    n_seq_max = max(1, n_seq_max)
    if n_seq_max > MAX_SEQ:
        raise MemoryError_(f"n_seq_max must be <= {MAX_SEQ}")
    ctx = n_ctx_train if n_ctx == 0 else n_ctx
    # the batch is capped before n_ctx is padded
    batch = min(ctx, n_batch) if causal_attn else n_batch
    ubatch = min(batch, batch if n_ubatch == 0 else n_ubatch)
    if n_seq_max > batch:
        # the output buffer reserved for one output per sequence must fit the batch
        # (llama_context::output_reserve asserts n_seq_max <= n_outputs_max = n_batch)
        raise MemoryError_(f"n_seq_max = {n_seq_max} is larger than n_batch = {batch} (the reference aborts: "
                           "GGML_ASSERT(n_outputs_max <= cparams.n_outputs_max) failed)")
    ctx = pad(ctx, 256)
    if kv_unified:
        ctx_seq = ctx
    else:
        ctx_seq = pad(ctx // n_seq_max, 256)
        if ctx_seq == 0:
            raise MemoryError_("n_ctx_seq == 0")
        ctx = ctx_seq * n_seq_max
    return ContextSizes(ctx, ctx_seq, batch, ubatch, ctx_seq, 1 if kv_unified else n_seq_max)


def _int(name: str, v, lo: int = _I32_MIN, hi: int = _I32_MAX) -> int:
    if isinstance(v, bool):
        raise MemoryError_(f"{name} must be an integer, got bool")
    try:
        i = operator.index(v)
    except TypeError:
        raise MemoryError_(f"{name} must be an integer, got {type(v).__name__}") from None
    if not lo <= i <= hi:
        raise MemoryError_(f"{name} = {i} out of range [{lo}, {hi}]")
    return i


class Memory:
    """``ctx.memory``: sequence operations over the context's memory (a KV cache, an iSWA cache
    pair or a recurrent memory), with arguments checked up front."""

    def __init__(self, impl: KVCache | KVCacheISWA | MemoryRecurrent) -> None:
        self.impl = impl

    # ------------------------------------------------------------------ argument checks
    @property
    def _kv(self) -> KVCache | None:
        """A KV cache whose stream layout decides the valid ids (the base cache for iSWA)."""
        if isinstance(self.impl, KVCacheISWA):
            return self.impl.base
        return self.impl if isinstance(self.impl, KVCache) else None

    def _seq(self, name: str, seq_id, allow_all: bool = False) -> int:
        s = _int(name, seq_id)
        kv = self._kv
        if kv is None:
            return s  # the recurrent memory answers out-of-range ids itself (False / no-op)
        n = len(kv.seq_to_stream)
        if allow_all and s == -1:
            return s
        if not 0 <= s < n:
            extra = " (or -1 for every sequence)" if allow_all else ""
            raise MemoryError_(f"{name} = {s} out of range [0, {n}){extra}")
        return s

    def _shiftable(self, what: str) -> None:
        kv = self._kv
        if kv is not None and kv.n_pos_per_embd != 1:
            raise MemoryError_(f"{what}() is only supported for models with one position per token")

    # ------------------------------------------------------------------ operations
    def clear(self, data: bool = True) -> None:
        """Empty the memory (``data``: also zero the tensors, which belong to the decoder)."""
        self.impl.clear()

    def seq_rm(self, seq_id: int, p0: int = -1, p1: int = -1) -> bool:
        """Remove ``seq_id``'s tokens (-1: every sequence's) with positions in [p0, p1); negative
        bounds are open.  False when the memory cannot forget that range (recurrent states)."""
        s = self._seq("seq_id", seq_id, allow_all=True)
        return self.impl.seq_rm(s, _int("p0", p0), _int("p1", p1))

    def seq_cp(self, src: int, dst: int, p0: int = -1, p1: int = -1) -> None:
        """Make ``dst`` share ``src``'s tokens in [p0, p1).  Between two streams (non-unified
        cache) only whole-sequence copies exist."""
        s0, s1 = self._seq("seq_id_src", src), self._seq("seq_id_dst", dst)
        p0, p1 = _int("p0", p0), _int("p1", p1)
        kv = self._kv
        if kv is not None and kv.seq_to_stream[s0] != kv.seq_to_stream[s1]:
            caches = self.impl.caches if isinstance(self.impl, KVCacheISWA) else (kv,)
            for c in caches:
                if (0 < p0 and p0 + 1 < c.size) or (0 < p1 and p1 + 1 < c.size):
                    raise MemoryError_("seq_cp() across streams is only supported for the full range "
                                       "(p0 <= 0 and p1 < 0)")
        self.impl.seq_cp(s0, s1, p0, p1)

    def seq_keep(self, seq_id: int) -> None:
        """Remove every token that does not belong to ``seq_id``."""
        self.impl.seq_keep(self._seq("seq_id", seq_id))

    def seq_add(self, seq_id: int, p0: int, p1: int, delta: int) -> None:
        """Add ``delta`` to the positions of ``seq_id`` in [p0, p1) (the K-shift is queued for the
        next update); tokens pushed below 0 are removed."""
        s = self._seq("seq_id", seq_id)
        self._shiftable("seq_add")
        self.impl.seq_add(s, _int("p0", p0), _int("p1", p1), _int("delta", delta))

    def seq_div(self, seq_id: int, p0: int, p1: int, d: int) -> None:
        """Divide the positions of ``seq_id`` in [p0, p1) by ``d`` (integer division)."""
        s = self._seq("seq_id", seq_id)
        self._shiftable("seq_div")
        d = _int("d", d)
        if d < 1:
            raise MemoryError_(f"d = {d}: positions can only be divided by a factor >= 1")
        self.impl.seq_div(s, _int("p0", p0), _int("p1", p1), d)

    def seq_pos_min(self, seq_id: int) -> int:
        """Smallest position of ``seq_id`` in the memory, -1 if it has none."""
        return self.impl.seq_pos_min(self._seq("seq_id", seq_id))

    def seq_pos_max(self, seq_id: int) -> int:
        return self.impl.seq_pos_max(self._seq("seq_id", seq_id))

    @property
    def can_shift(self) -> bool:
        return self.impl.can_shift

    def update(self, shift_fn=None) -> MemoryStatus:
        """Run pending work (stream copies, the K-shift): NO_UPDATE when there is none, else
        SUCCESS.  ``shift_fn(cache) -> bool`` computes the RoPE shift (the decoder's graph).
        llama.cpp: llama_context::memory_update."""
        if isinstance(self.impl, MemoryRecurrent):
            return self.impl.init_update()
        # each cache checks its own ability to shift when it has a shift pending (for iSWA that is
        # not the pair's can_shift, which also asks for equal sizes); checked before init_update
        # takes the pending copies, so a refused update changes nothing
        caches = self.impl.caches if isinstance(self.impl, KVCacheISWA) else (self.impl,)
        if any(c.has_shift and not c.can_shift for c in caches):
            raise MemoryError_("the current KV cache / model configuration does not support K-shift")
        up = self.impl.init_update()
        if up.status == MemoryStatus.SUCCESS:
            up.apply(shift_fn)
        return up.status
