"""``pyggml.Context``: llama_context's decode path, in Python, driving ggml through cffi.

llama.cpp: src/llama-context.cpp — the constructor (backends, scheduler, output buffer, memory),
``decode`` (validate -> memory update -> init_batch -> output reserve -> per ubatch: apply,
build or reuse the graph, set inputs, compute, extract -> output mapping), ``process_ubatch``,
``memory_update``, ``graph_compute`` and the getters.  The story reads top to bottom in
``decode``; each step is a method named after the reference's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .._native import ffi, ggml
from ..batch import Batch, BatchAllocr, UBatch
from ..errors import BatchError, DecodeError
from ..graph import GraphBuilder, GraphParams, GraphResult
from ..graph import bert as bert_graph
from ..graph import gemma3 as gemma3_graph
from ..graph import llama as llama_graph
from ..graph.builder import I32, POOLING_NONE, POOLING_RANK
from ..graph.inputs import host_view
from ..memory.api import Memory
from ..memory.iswa import KVCacheISWA
from ..memory.kv_cache import KVCache, KVCacheError, SlotInfo
from ..memory.kv_tensors import KVTensors
from ..memory.status import MemoryStatus
from .outputs import Outputs
from .params import ContextError, ContextParams, derive

_STATUS_SUCCESS, _STATUS_ALLOC_FAILED = 0, -2  # enum ggml_status (ABORTED 1, FAILED -1)
_CODE = {1: 2, -2: -2, -1: -3}  # ggml_status -> llama_decode's return code
_POS_MAX = 2**31 - 1
# llama_model::build_graph's architecture switch (the architectures pyggml decodes)
_GRAPHS = {"llama": llama_graph.build, "gemma3": gemma3_graph.build, "bert": bert_graph.build}
# encoders: llama_model::create_memory gives them no memory, so decode() encodes
_NO_MEMORY = frozenset({"bert"})
# one SlotInfo per KV cache of the memory (one, or base + SWA for iSWA), for one ubatch
Slots = tuple[SlotInfo, ...]


class ContextMemory(Memory):
    """``ctx.memory``: the KV cache's sequence operations; ``update`` and ``clear`` also act on
    the K/V tensors (stream copies, the RoPE shift, zeroing)."""

    def __init__(self, kv: KVCache, ctx: Context) -> None:
        super().__init__(kv)
        self._ctx = ctx

    def clear(self, data: bool = True) -> None:
        super().clear(data)
        if data:
            for _, kvt in self._ctx.caches:
                kvt.clear()

    def update(self, shift_fn=None) -> MemoryStatus:
        """llama_memory_update: run pending stream copies and the K-shift now."""
        return MemoryStatus.SUCCESS if self._ctx.memory_update() else MemoryStatus.NO_UPDATE


class Context:
    """A decoding (or, for an encoder, encoding) context over a loaded ``pyggml.Model`` of an
    architecture in ``_GRAPHS``.

    Keyword arguments are ``llama_context_params`` fields with the reference's defaults (see
    ``ContextParams``).  Raises ContextError for parameters the reference refuses."""

    def __init__(self, model: Any, **params: Any) -> None:
        unknown = set(params) - set(ContextParams.__dataclass_fields__)
        if unknown:
            raise ContextError(f"unknown context parameter(s): {', '.join(sorted(unknown))}")
        if model.hparams is None or model._buffers is None:
            raise ContextError("the model holds no weights (vocab_only, or closed)")
        if model.arch not in _GRAPHS:
            raise ContextError(f"pyggml: architecture '{model.arch}' cannot be decoded yet")
        self.model = model
        self.params = ContextParams(**params)
        d = derive(self.params, model.hparams)
        self.derived, self.cparams = d, d.graph
        hp = model.hparams
        self.n_vocab = hp.n_vocab
        lib = ggml()
        self._lib = lib
        # backends: one CPU backend (no GPU/ACCEL devices in a CPU build)
        self._backend = lib.ggml_backend_init_by_type(lib.GGML_BACKEND_DEVICE_TYPE_CPU, ffi.NULL)
        if self._backend == ffi.NULL:
            raise ContextError("failed to initialize CPU backend")
        self._abort_cb: Any = None
        self.set_abort_callback(self.params.abort_callback)
        self.outputs = Outputs(
            n_vocab=self.n_vocab,
            n_embd=hp.n_embd,
            n_batch=d.sizes.n_batch,
            n_seq_max=self.params.n_seq_max,
            has_embd=self.params.embeddings,
        )
        self.outputs.reserve(self.params.n_seq_max)
        self.embd_seq: dict[int, np.ndarray] = {}  # pooled embeddings by sequence id (embd_seq)
        # memory: the cells (a KVCache, or an iSWA pair) and each cache's tensors; encoders: none
        self.kv, self.caches = self.create_memory()
        self.memory = ContextMemory(self.kv, self) if self.kv is not None else None
        self.allocr = BatchAllocr(1)
        # the scheduler and the graph slots (graph_max_nodes: max(1024, 8 * n_tensors))
        self._max_nodes = max(1024, 8 * model.n_tensors)
        bufts = ffi.new("ggml_backend_buffer_type_t[1]", [lib.ggml_backend_cpu_buffer_type()])
        backends = ffi.new("ggml_backend_t[1]", [self._backend])
        self._sched = lib.ggml_backend_sched_new(backends, bufts, 1, self._max_nodes, False, True)
        self._keep = (bufts, backends)
        self._res_prev = [GraphResult(self._max_nodes), GraphResult(self._max_nodes)]
        self._res_reserve = GraphResult(self._max_nodes)
        self._res_active: GraphResult | None = None
        self.n_outputs = 0
        self._n_built = self._n_reused = 0
        self._n_p_eval = self._n_eval = 0

    def create_memory(self) -> tuple[KVCache | KVCacheISWA | None, list[tuple[KVCache, KVTensors]]]:
        """llama_model::create_memory: one KV cache, or for a sliding-window model an iSWA pair
        whose base cache stores the full-attention layers and whose SWA cache the sliding ones
        (sized by the window unless ``swa_full``).  Returns the memory and (cells, tensors) per
        cache."""
        hp, d, p = self.model.hparams, self.derived, self.params
        if self.model.arch in _NO_MEMORY:
            return None, []
        n_seq = max(1, p.n_seq_max)

        def tensors(kv: KVCache, layers: list[int]) -> KVTensors:
            return KVTensors(n_layer=hp.n_layer, n_embd_head_k=hp.n_embd_head_k,
                             n_embd_head_v=hp.n_embd_head_v, n_head_kv=hp.n_head_kv[0], kv_size=kv.size,
                             n_stream=d.sizes.n_stream, type_k=d.type_k, type_v=d.type_v, v_trans=d.v_trans,
                             layers=layers)

        layers = list(range(hp.n_layer))
        if hp.swa_type == 0:
            kv = KVCache(kv_size=d.sizes.kv_size, n_seq_max=n_seq, unified=p.kv_unified)
            return kv, [(kv, tensors(kv, layers))]
        mem = KVCacheISWA(kv_size=d.sizes.kv_size, n_seq_max=n_seq, n_ubatch=d.sizes.n_ubatch, n_swa=hp.n_swa,
                          swa_type=hp.swa_type, unified=p.kv_unified, swa_full=p.swa_full)
        base = [il for il in layers if not hp.is_swa(il)]
        swa = [il for il in layers if hp.is_swa(il)]
        return mem, [(mem.base, tensors(mem.base, base)), (mem.swa, tensors(mem.swa, swa))]

    # ------------------------------------------------------------------ properties
    @property
    def n_ctx(self) -> int:
        return self.derived.sizes.n_ctx

    @property
    def n_batch(self) -> int:
        return self.derived.sizes.n_batch

    @property
    def n_ubatch(self) -> int:
        return self.derived.sizes.n_ubatch

    @property
    def n_seq_max(self) -> int:
        return self.params.n_seq_max

    @property
    def flash_attn(self) -> bool:
        return self.cparams.flash_attn

    def set_n_threads(self, n_threads: int, n_threads_batch: int) -> None:
        """llama_set_n_threads: used from the next compute on."""
        if n_threads < 1 or n_threads_batch < 1:
            raise ContextError("n_threads and n_threads_batch must be >= 1")
        self.params.n_threads, self.params.n_threads_batch = int(n_threads), int(n_threads_batch)

    def set_abort_callback(self, fn: Callable[[], bool] | None) -> None:
        """llama_set_abort_callback: ``fn()`` is asked between graph nodes; True aborts the
        compute and ``decode`` raises DecodeError with code 2."""
        lib = self._lib
        if fn is None:
            self._abort_cb = None
            lib.ggml_backend_cpu_set_abort_callback(self._backend, ffi.NULL, ffi.NULL)
            return

        @ffi.callback("bool(void *)")
        def cb(_data: Any) -> bool:
            return bool(fn())

        self._abort_cb = cb
        lib.ggml_backend_cpu_set_abort_callback(self._backend, cb, ffi.NULL)

    def stats(self) -> dict[str, int]:
        """Graphs built and reused, and the tokens evaluated (llama_perf_context's counters)."""
        return {
            "graphs_built": self._n_built,
            "graphs_reused": self._n_reused,
            "n_p_eval": self._n_p_eval,
            "n_eval": self._n_eval,
        }

    # ------------------------------------------------------------------ decode
    def decode(self, batch: Batch | Sequence[int]) -> None:
        """llama_decode.  Returns None; raises DecodeError whose ``code`` is what llama_decode
        returns: 1 (no KV slot), 2 (aborted), -1 (invalid batch), -2/-3 (fatal).  The memory is
        left as the reference leaves it: after a failed ubatch, every position of that ubatch's
        sequences from its first position on is removed."""
        if self._sched == ffi.NULL or self.model._buffers is None:
            raise ContextError("the context or its model is closed")
        if self.kv is None:  # "cannot decode batches with this context (calling encode() instead)"
            return self.encode(batch)
        if not isinstance(batch, Batch):
            batch = Batch.single(batch)
        if batch.n_tokens == 0:
            raise DecodeError("decode: n_tokens == 0", code=-1)
        output_all = self.params.embeddings
        ext = batch.to_ext(
            n_seq_max=self.params.n_seq_max,
            n_vocab=self.n_vocab,
            n_embd_inp=self.model.hparams.n_embd,
            mem=self.kv,
        )
        try:
            self.allocr.init(ext, output_all=output_all)
        except BatchError as exc:
            raise DecodeError(exc.message.rstrip("\n"), code=-1, abort=exc.abort) from exc
        n_tokens_all, n_outputs_all = self.allocr.n_tokens, self.allocr.n_outputs
        if n_tokens_all > self.n_batch:
            raise DecodeError(
                f"GGML_ASSERT(n_tokens_all <= cparams.n_batch) failed ({n_tokens_all} > {self.n_batch})",
                code=-1,
                abort=True,
            )
        self.outputs.swaps.clear()
        self.embd_seq.clear()
        self.memory_update()
        slots, ubs = self._init_batch()
        self.outputs.reserve(n_outputs_all)
        n_outputs_prev = 0
        for slot, ub in zip(slots, ubs, strict=True):
            n_outputs = ub.n_tokens if n_outputs_all == n_tokens_all else int(np.count_nonzero(ub.output))
            self.n_outputs = n_outputs
            status, res = self.process_ubatch(ub, slot)
            if status != _STATUS_SUCCESS:
                self._rollback(ub)
                raise DecodeError(
                    f"process_ubatch: failed to compute graph, compute status: {status}", code=_CODE[status]
                )
            self._extract(res, ub, n_outputs, n_outputs_prev)
            n_outputs_prev += n_outputs
        self.n_outputs = n_outputs_all
        self.outputs.n_outputs = n_outputs_all
        if n_outputs_all > 0:
            self.outputs.map_outputs(self.allocr.out_ids)
        self._count_eval(n_tokens_all)

    def _count_eval(self, n_tokens: int) -> None:
        """The perf counters at synchronize: one token is an eval, more a prompt eval."""
        if n_tokens > 1:
            self._n_p_eval += n_tokens
        else:
            self._n_eval += n_tokens

    def encode(self, batch: Batch | Sequence[int]) -> None:
        """llama_encode: the whole batch as one ubatch through the encoder graph (non-causal
        attention), every token an output; then ``embeddings(i)`` (pooling none) or
        ``embeddings_seq(seq_id)`` (mean, cls, last, rank).  Raises DecodeError with
        llama_encode's code: -1 (empty or invalid batch; ``abort`` set where the reference
        asserts: more tokens than n_ubatch), 2 (aborted), -2/-3 (fatal)."""
        if self._sched == ffi.NULL or self.model._buffers is None:
            raise ContextError("the context or its model is closed")
        if not isinstance(batch, Batch):
            batch = Batch.single(batch)
        if batch.n_tokens == 0:
            raise DecodeError("encode: n_tokens == 0", code=-1)
        ext = batch.to_ext(n_seq_max=self.params.n_seq_max, n_vocab=self.n_vocab,
                           n_embd_inp=self.model.hparams.n_embd, mem=self.kv)
        try:  # every token is an output, no position continuity checks
            self.allocr.init(ext, output_all=True)
        except BatchError as exc:
            raise DecodeError(exc.message.rstrip("\n"), code=-1, abort=exc.abort) from exc
        n_tokens = self.allocr.n_tokens
        ub = self.allocr.split_simple(n_tokens)
        assert ub is not None
        if self.n_ubatch < n_tokens:  # micro-batching is not possible for non-causal encoding
            raise DecodeError(
                'GGML_ASSERT(cparams.n_ubatch >= n_tokens && "encoder requires n_ubatch >= n_tokens") '
                f"failed ({self.n_ubatch} < {n_tokens})", code=-1, abort=True)
        self.embd_seq.clear()
        self.outputs.swaps.clear()
        self.outputs.reserve(n_tokens)
        self.outputs.ids[:n_tokens] = np.arange(n_tokens, dtype=np.int32)
        self.n_outputs = self.outputs.n_outputs = n_tokens
        causal_org = self.cparams
        self.cparams = replace(self.cparams, causal_attn=False)  # encoder graphs are never causal
        try:
            status, res = self.process_ubatch(ub, ())
        finally:
            self.cparams = causal_org
        if status != _STATUS_SUCCESS:
            raise DecodeError(f"process_ubatch: failed to compute graph, compute status: {status}",
                              code=_CODE[status])
        self._extract(res, ub, n_tokens, 0)
        self._count_eval(n_tokens)

    def _init_batch(self) -> tuple[list[Slots], list[UBatch]]:
        """memory->init_batch with the one retry after an update (the reference asks for an
        "optimized" update, which the KV cache ignores: it never frees cells)."""
        did_optimize = False
        while True:
            try:
                if isinstance(self.kv, KVCacheISWA):
                    b = self.kv.init_batch(self.allocr, self.n_ubatch)
                    status, ubs = b.status, b.ubatches
                    slots = list(zip(b.sinfos_base, b.sinfos_swa, strict=True))
                else:
                    status, sinfos, ubs = self.kv.init_batch(self.allocr, self.n_ubatch)
                    slots = [(si,) for si in sinfos]
            except KVCacheError as exc:
                raise DecodeError(str(exc), code=-1, abort=True) from exc
            if status == MemoryStatus.SUCCESS:
                return slots, ubs
            if not did_optimize:
                did_optimize = True
                if self.memory_update():
                    continue
            raise DecodeError(
                f"decode: failed to find a memory slot for batch of size {self.allocr.n_tokens}", code=1
            )

    def _rollback(self, ub: UBatch) -> None:
        """Remove every position of the failed ubatch's sequences from its first one on."""
        pos_min: dict[int, int] = {}
        for i in range(ub.n_tokens):
            s = ub.seq_id[i][0]
            pos_min[s] = min(pos_min.get(s, _POS_MAX), int(ub.pos[i]))
        for s in sorted(pos_min):
            self.kv.seq_rm(s, pos_min[s], -1)

    def process_ubatch(self, ub: UBatch, slots: Slots) -> tuple[int, GraphResult | None]:
        """Apply the slots (each cache's), build the graph or reuse the previous one, set
        inputs, compute."""
        lib = self._lib
        for (kv, _), sinfo in zip(self.caches, slots, strict=True):
            kv.apply_ubatch(sinfo, ub)
        n_kv = [kv.get_n_kv(sinfo) for (kv, _), sinfo in zip(self.caches, slots, strict=True)]
        res = self._res_prev[1 if self.n_outputs > 0 else 0]
        p = GraphParams(
            ubatch=ub,
            n_outputs=self.n_outputs,
            sinfo=slots[0] if slots else None,
            n_kv=n_kv[0] if n_kv else 0,
            n_stream=1 if self.params.kv_unified else ub.n_seqs_unq,
            embeddings=self.params.embeddings,
            causal=self.cparams.causal_attn,
            sinfo_swa=slots[1] if len(slots) > 1 else None,
            n_kv_swa=n_kv[1] if len(n_kv) > 1 else 0,
        )
        if self._res_active is res and res.can_reuse(p):
            self._n_reused += 1
        else:
            self._res_active = None
            res.reset()
            lib.ggml_backend_sched_reset(self._sched)
            self._build(res, p)
            if not lib.ggml_backend_sched_alloc_graph(self._sched, res.gf):
                return _STATUS_ALLOC_FAILED, None
            self._res_active = res
            self._n_built += 1
        res.set_inputs(ub, p)
        status = self._compute(res.gf, ub.n_tokens > 1)
        return status, (res if status == _STATUS_SUCCESS else None)

    def _build(self, res: GraphResult, p: GraphParams) -> None:
        (kv, kvt), *swa = self.caches or [(None, None)]
        b = GraphBuilder(
            model=self.model,
            cparams=self.cparams,
            ubatch=p.ubatch,
            n_outputs=p.n_outputs,
            res=res,
            kv=kv,
            kvt=kvt,
            sinfo=p.sinfo,
            n_kv=p.n_kv,
            kv_swa=swa[0][0] if swa else None,
            kvt_swa=swa[0][1] if swa else None,
            sinfo_swa=p.sinfo_swa,
            n_kv_swa=p.n_kv_swa,
        )
        _GRAPHS[self.model.arch](b)
        b.pooling()
        res.params = p
        res.set_outputs()

    def _compute(self, gf: Any, batched: bool) -> int:
        """graph_compute: n_threads_batch for batches of several tokens, n_threads otherwise."""
        lib = self._lib
        n = self.params.n_threads_batch if batched else self.params.n_threads
        lib.ggml_backend_cpu_set_n_threads(self._backend, n)
        return int(lib.ggml_backend_sched_graph_compute_async(self._sched, gf))

    def _extract(self, res: GraphResult | None, ub: UBatch, n_outputs: int, row0: int) -> None:
        """Copy this ubatch's outputs: logits and token embeddings as rows of the output
        buffer, pooled embeddings (or rank scores) per sequence into ``embd_seq``."""
        if res is None or n_outputs == 0:
            return
        lib = self._lib
        if res.t_logits is not None:
            dst = self.outputs.logits[row0 : row0 + n_outputs]  # contiguous rows
            lib.ggml_backend_tensor_get(res.t_logits, ffi.from_buffer(dst), 0, dst.nbytes)
        t_embd = res.t_embd_pooled if res.t_embd_pooled is not None else res.t_embd
        if not self.params.embeddings or t_embd is None or self.outputs.embd is None:
            return
        pooling = self.cparams.pooling_type
        if pooling == POOLING_NONE:
            dst = self.outputs.embd[row0 : row0 + n_outputs]
            lib.ggml_backend_tensor_get(t_embd, ffi.from_buffer(dst), 0, dst.nbytes)
            return
        # one row per sequence of the ubatch: n_embd floats, or n_cls_out rank scores
        n = self.model.hparams.n_cls_out if pooling == POOLING_RANK else self.model.hparams.n_embd
        rows = np.empty((ub.n_seqs_unq, n), np.float32)
        lib.ggml_backend_tensor_get(t_embd, ffi.from_buffer(rows), 0, rows.nbytes)
        for j, seq_id in enumerate(ub.seq_id_unq):  # ubatch.seq_idx[seq_id] == j
            self.embd_seq[seq_id] = rows[j]

    # ------------------------------------------------------------------ memory update
    def memory_update(self) -> bool:
        """llama_context::memory_update: stream copies and the K-shift, cache by cache (iSWA:
        the base, then the SWA cache); True when work was done (the cached graphs are then
        dropped, as the reference's reserve does)."""
        if not any(kv.pending_copies or kv.has_shift for kv, _ in self.caches):
            return False  # init_update's NO_UPDATE: nothing to do
        # each cache checks its own ability to shift (llama_kv_cache::update aborts otherwise)
        if any(kv.has_shift and not kv.can_shift for kv, _ in self.caches):
            raise DecodeError(
                "The current KV cache / model configuration does not support K-shift", code=-1, abort=True
            )
        up = self.kv.init_update()
        for r in self._res_prev:
            r.reset()
        self._res_active = None
        parts = up.parts if isinstance(self.kv, KVCacheISWA) else (up,)
        for part, (_, kvt) in zip(parts, self.caches, strict=True):
            for src, dst in part.copies:
                kvt.copy_stream(src, dst)
            part.apply(self._k_shift)
        return True

    def _k_shift(self, kv: KVCache) -> bool:
        """build_graph_shift + compute: RoPE every cached K of this cache by its cell's pending
        shift (each layer with its own RoPE base/scale)."""
        lib, hp, cp = self._lib, self.model.hparams, self.cparams
        kvt = next(t for c, t in self.caches if c is kv)
        if not kvt.layers:
            # llama.cpp quirk: a cache without layers (an iSWA model whose layers all slide) leaves
            # the k_shift input unallocated, and setting it asserts
            raise DecodeError("GGML_ASSERT(buffer) failed (K-shift of a cache without layers)", code=-1,
                              abort=True)
        lib.ggml_backend_sched_reset(self._sched)
        res = self._res_reserve
        res.reset()
        k_shift = lib.ggml_new_tensor_1d(res.ctx, I32, kv.size * kvt.n_stream)
        lib.ggml_set_input(k_shift)
        freqs = self.model._buffers.tensors.get("rope_freqs.weight")
        factors = freqs.ptr if freqs is not None else ffi.NULL
        for il in kvt.layers:
            n_rot = hp.n_rot_swa if hp.is_swa(il) else hp.n_rot  # hparams.n_rot(il)
            view = kvt.shift_views(res.ctx, il, n_rot)
            rope_args = cp.layer_rope_args(hp, il, n_rot)
            cur = lib.ggml_rope_ext_inplace(res.ctx, view, k_shift, factors, *rope_args)
            lib.ggml_build_forward_expand(res.gf, cur)
        if not lib.ggml_backend_sched_alloc_graph(self._sched, res.gf):
            return False
        host_view(k_shift, np.int32, (kv.size * kvt.n_stream,))[:] = kv.k_shift()
        return self._compute(res.gf, False) == _STATUS_SUCCESS

    # ------------------------------------------------------------------ outputs
    def logits(self, i: int) -> np.ndarray:
        """llama_get_logits_ith: float32 [n_vocab] of batch index i (negative: from the last
        output).  IndexError (the reference's wording) when i has no output."""
        self.outputs.reorder()
        return self.outputs.logits[self.outputs.row(int(i), "llama_get_logits_ith")].copy()

    def logits_all(self) -> np.ndarray:
        """llama_get_logits: [n_outputs, n_vocab], rows in batch order (a copy)."""
        self.outputs.reorder()
        return self.outputs.logits[: self.n_outputs].copy()

    def embeddings(self, i: int) -> np.ndarray:
        """llama_get_embeddings_ith (``embeddings=True``): float32 [n_embd] of batch index i."""
        if self.outputs.embd is None:
            raise IndexError(f"llama_get_embeddings_ith: invalid embeddings id {i}, reason: no embeddings")
        self.outputs.reorder()
        return self.outputs.embd[self.outputs.row(int(i), "llama_get_embeddings_ith")].copy()

    def embeddings_seq(self, seq_id: int) -> np.ndarray | None:
        """llama_get_embeddings_seq: the pooled embedding of a sequence of the last batch,
        float32 [n_embd] (``rank`` pooling: [n_cls_out] scores); None with pooling "none" or
        for a sequence that was not in the batch."""
        row = self.embd_seq.get(int(seq_id))
        return None if row is None else row.copy()

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """llama_free: the scheduler, graphs, KV tensors and backend."""
        lib = self._lib
        if self._sched != ffi.NULL:
            for r in (*self._res_prev, self._res_reserve):
                r.close()
            lib.ggml_backend_sched_free(self._sched)
            self._sched = ffi.NULL
            for _, kvt in self.caches:
                kvt.close()
            lib.ggml_backend_free(self._backend)
            self._backend = ffi.NULL

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the libraries may be gone
            pass

    def __repr__(self) -> str:
        return (
            f"<pyggml.Context n_ctx={self.n_ctx} n_batch={self.n_batch} n_ubatch={self.n_ubatch} "
            f"n_seq_max={self.n_seq_max} flash_attn={self.flash_attn}>"
        )
