"""Graph inputs: each knows how to fill its tensors from a ubatch (``set_input``) and whether a
built graph can serve another ubatch (``can_reuse``).

llama.cpp: src/llama-graph.cpp ``llm_graph_input_embd``, ``_pos``, ``_out_ids``, ``_attn_kv``
(set_input / can_reuse).  Inputs live in host memory (CPU compute buffers), so they are written
through numpy views of the tensors' data, made once per built graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gguf import GGMLQuantizationType as QT

from .._native import ffi
from ..batch import UBatch
from ..memory.kv_cache import KVCache, SlotInfo
from ..memory.kv_tensors import KVTensors


def host_view(t: Any, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A writable numpy view of an allocated host tensor's data (numpy order ``shape``)."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.frombuffer(ffi.buffer(ffi.cast("char *", t.data), n), dtype=dtype).reshape(shape)


class InpEmbd:
    """inp_tokens I32 [n_tokens] and inp_embd F32 [n_embd, n_tokens]."""

    def __init__(self, tokens: Any, embd: Any) -> None:
        self.tokens, self.embd = tokens, embd
        self._tok: np.ndarray | None = None

    def set_input(self, ub: UBatch, p: Any) -> None:
        if ub.token is not None:
            if self._tok is None:
                self._tok = host_view(self.tokens, np.int32, (int(self.tokens.ne[0]),))
            self._tok[:] = ub.token
        if ub.embd is not None:
            host_view(self.embd, np.float32, (ub.n_tokens, int(self.embd.ne[0])))[:] = ub.embd

    def can_reuse(self, p: Any) -> bool:
        ub = p.ubatch
        return ((ub.token is None or self.tokens.ne[0] == ub.n_tokens)
                and (ub.embd is None or self.embd.ne[1] == ub.n_tokens))


class InpPos:
    """inp_pos I32 [n_tokens * n_pos_per_embd]."""

    def __init__(self, pos: Any, n_pos_per_embd: int) -> None:
        self.pos, self.n_pos_per_embd = pos, n_pos_per_embd
        self._view: np.ndarray | None = None

    def set_input(self, ub: UBatch, p: Any) -> None:
        if self._view is None:
            self._view = host_view(self.pos, np.int32, (int(self.pos.ne[0]),))
        self._view[:] = ub.pos[: self._view.shape[0]]

    def can_reuse(self, p: Any) -> bool:
        return self.pos.ne[0] == p.ubatch.n_tokens * self.n_pos_per_embd


class InpOutIds:
    """out_ids I32 [n_outputs]: the ubatch rows whose outputs are kept."""

    def __init__(self, out_ids: Any, n_outputs: int) -> None:
        self.out_ids, self.n_outputs = out_ids, n_outputs
        self._view: np.ndarray | None = None
        self._all = np.arange(n_outputs, dtype=np.int32)  # every row kept

    def set_input(self, ub: UBatch, p: Any) -> None:
        if self._view is None:
            self._view = host_view(self.out_ids, np.int32, (self.n_outputs,))
        view = self._view
        if self.n_outputs == ub.n_tokens:
            view[:] = self._all
        else:
            view[:] = np.flatnonzero(ub.output)[: self.n_outputs]

    def can_reuse(self, p: Any) -> bool:
        return self.n_outputs == p.n_outputs


class InpAttnKV:
    """attn_inp_k_idxs, attn_inp_v_idxs (I64) and attn_inp_kq_mask ([n_kv, n_tokens/n_stream, 1,
    n_stream], F16 with flash attention): the slot and the mask of the current memory context."""

    def __init__(self, kv: KVCache, kvt: KVTensors, *, k_idxs: Any, v_idxs: Any, kq_mask: Any,
                 causal: bool, sinfo: SlotInfo, swa: bool = False) -> None:
        self.kv, self.kvt = kv, kvt
        self.swa = swa  # the SWA cache of an iSWA pair (its slots and n_kv are p.*_swa)
        self.k_idxs, self.v_idxs, self.kq_mask = k_idxs, v_idxs, kq_mask
        self.causal = causal
        self.sinfo = sinfo
        self._views: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def set_input(self, ub: UBatch, p: Any) -> None:
        if self.kq_mask.buffer == ffi.NULL:
            return  # no layer of this cache in the graph (an iSWA model without global layers)
        if self._views is None:
            m = self.kq_mask
            f16 = m.type == QT.F16
            self._views = (host_view(self.k_idxs, np.int64, (int(self.k_idxs.ne[0]),)),
                           host_view(self.v_idxs, np.int64, (int(self.v_idxs.ne[0]),)),
                           host_view(m, np.float16 if f16 else np.float32,
                                     (int(m.ne[3]), int(m.ne[1]), int(m.ne[0]))))
        k, v, mask = self._views
        self.kvt.k_idxs(self.sinfo, k)
        self.kvt.v_idxs(self.sinfo, v)
        self.kv.kq_mask(ub, mask.shape[2], mask.shape[0], causal=self.causal, f16=mask.dtype == np.float16,
                        out=mask)

    def can_reuse(self, p: Any) -> bool:
        # the reference rebinds its memory context here
        self.sinfo, n_kv = (p.sinfo_swa, p.n_kv_swa) if self.swa else (p.sinfo, p.n_kv)
        m = self.kq_mask
        if m.buffer == ffi.NULL:
            return True  # unallocated (no layer uses it): the reference skips its checks
        return (self.k_idxs.ne[0] == p.ubatch.n_tokens and m.ne[0] == n_kv
                and m.ne[1] == p.ubatch.n_tokens // p.n_stream and m.ne[2] == 1 and m.ne[3] == p.n_stream)


class InpAttnNoCache:
    """self_kq_mask [n_tokens, n_tokens, 1, 1] (F16 with flash attention) of a model without
    memory: a token sees the tokens of its first sequence (and, if causal, not later ones).
    The reference implements no can_reuse for it: such graphs are rebuilt every time."""

    def __init__(self, kq_mask: Any, causal: bool) -> None:
        self.kq_mask, self.causal = kq_mask, causal

    def set_input(self, ub: UBatch, p: Any) -> None:
        m = self.kq_mask
        n = ub.n_tokens
        seq = np.fromiter((s[0] for s in ub.seq_id[:n]), np.int32, n)
        pos = np.asarray(ub.pos[:n])
        ok = seq[:, None] == seq[None, :]  # [query i1, key i0]
        if self.causal:
            ok &= pos[None, :] <= pos[:, None]
        dtype = np.float16 if m.type == QT.F16 else np.float32
        host_view(m, dtype, (n, n))[:] = np.where(ok, dtype(0.0), dtype(-np.inf))

    def can_reuse(self, p: Any) -> bool:
        return False


class InpMean:
    """mean F32 [n_tokens, n_seqs_unq]: row s holds 1/len(s) at the tokens of sequence s."""

    def __init__(self, mean: Any) -> None:
        self.mean = mean

    def set_input(self, ub: UBatch, p: Any) -> None:
        n, n_seq_tok, n_unq, idx = ub.n_tokens, ub.n_seq_tokens, ub.n_seqs_unq, ub.seq_idx
        sums = np.zeros(n_unq, np.uint64)
        for i in range(0, n, n_seq_tok):
            for s in ub.seq_id[i]:
                sums[idx[s]] += n_seq_tok
        div = np.zeros(n_unq, np.float32)
        div[sums > 0] = np.float32(1.0) / sums[sums > 0].astype(np.float32)  # 1.0f/float(sum)
        data = host_view(self.mean, np.float32, (n_unq, n))
        data[:] = 0.0
        for i in range(0, n, n_seq_tok):
            for s in ub.seq_id[i]:
                data[idx[s], i:i + n_seq_tok] = div[idx[s]]

    def can_reuse(self, p: Any) -> bool:
        return False


class InpCls:
    """cls I32 [n_seqs_unq]: the row of each sequence's first token (``last``: its last one)."""

    def __init__(self, cls: Any, last: bool) -> None:
        self.cls, self.last = cls, last

    def set_input(self, ub: UBatch, p: Any) -> None:
        n_unq, idx = ub.n_seqs_unq, ub.seq_idx
        target_pos = [-1] * n_unq
        target_row = [-1] * n_unq
        for i in range(ub.n_tokens):
            pos = int(ub.pos[i])
            for s in ub.seq_id[i]:
                j = idx[s]
                tp = target_pos[j]
                if tp == -1 or (self.last and pos >= tp) or (not self.last and pos < tp):
                    target_pos[j], target_row[j] = pos, i
        data = host_view(self.cls, np.int32, (n_unq,))
        data[:] = 0
        for j, r in enumerate(target_row):
            if r >= 0:
                data[j] = r

    def can_reuse(self, p: Any) -> bool:
        return False
