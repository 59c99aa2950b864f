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
                 causal: bool, sinfo: SlotInfo) -> None:
        self.kv, self.kvt = kv, kvt
        self.k_idxs, self.v_idxs, self.kq_mask = k_idxs, v_idxs, kq_mask
        self.causal = causal
        self.sinfo = sinfo
        self._views: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def set_input(self, ub: UBatch, p: Any) -> None:
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
        self.sinfo = p.sinfo  # the reference rebinds its memory context here
        m = self.kq_mask
        return (self.k_idxs.ne[0] == p.ubatch.n_tokens and m.ne[0] == p.n_kv
                and m.ne[1] == p.ubatch.n_tokens // p.n_stream and m.ne[2] == 1 and m.ne[3] == p.n_stream)
