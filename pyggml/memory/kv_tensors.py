"""The KV cache's tensors: K and V per layer and stream, the SET_ROWS writes and the views the
attention reads, the index inputs, stream copies and the K-shift graph.

llama.cpp: src/llama-kv-cache.cpp (the constructor's per-layer tensors, ``get_k``/``get_v``,
``cpy_k``/``cpy_v``, ``build_input_k_idxs``/``v_idxs``, ``set_input_k_idxs``/``v_idxs``,
``update``'s stream copies, ``build_graph_shift``/``build_rope_shift``).  The cells (which cell
holds which token) are ``KVCache``'s; this module owns the memory behind them.

Shapes in ggml ``ne`` order: K of layer il is [n_embd_k_gqa, kv_size, n_stream]; V is
[n_embd_v_gqa, kv_size, n_stream] whether or not it is read transposed (``v_trans``, the layout
without flash attention, where the attention reads V as [n_kv, n_head_kv, n_embd_head_v]).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType as QT

from .._native import ffi, ggml
from .kv_cache import SlotInfo

F32, I32, I64 = int(QT.F32), int(QT.I32), int(QT.I64)


def _row(t: int, n: int) -> int:
    return int(ggml().ggml_row_size(t, n))


class KVTensors:
    """K/V storage of a ``KVCache``: zero-initialised CPU tensors ``cache_k_l{il}``/``cache_v_l{il}``."""

    def __init__(
        self,
        *,
        n_layer: int,
        n_embd_head_k: int,
        n_embd_head_v: int,
        n_head_kv: int,
        kv_size: int,
        n_stream: int,
        type_k: int,
        type_v: int,
        v_trans: bool,
        layers: Sequence[int] | None = None,
    ) -> None:
        """``layers``: the model layers this cache stores (all ``n_layer`` by default; an iSWA
        pair splits them between its two caches, each tensor keeping its layer's number)."""
        lib = ggml()
        self.kv_size, self.n_stream, self.v_trans = kv_size, n_stream, v_trans
        self.n_embd_head_k, self.n_embd_head_v, self.n_head_kv = n_embd_head_k, n_embd_head_v, n_head_kv
        self.n_embd_k_gqa = n_embd_head_k * n_head_kv
        self.n_embd_v_gqa = n_embd_head_v * n_head_kv
        self.type_k, self.type_v = type_k, type_v
        self._v_rows = np.arange(self.n_embd_v_gqa, dtype=np.int64) * kv_size  # j * kv_size (v_trans)
        self._ctx = lib.ggml_init(
            {
                "mem_size": lib.ggml_tensor_overhead() * (2 + 2 * n_stream) * n_layer,
                "mem_buffer": ffi.NULL,
                "no_alloc": True,
            }
        )
        self.layers = list(range(n_layer) if layers is None else layers)
        self.k: dict[int, Any] = {}
        self.v: dict[int, Any] = {}
        self.k_stream: dict[int, list[Any]] = {}
        self.v_stream: dict[int, list[Any]] = {}
        for il in self.layers:
            k = lib.ggml_new_tensor_3d(self._ctx, type_k, self.n_embd_k_gqa, kv_size, n_stream)
            v = lib.ggml_new_tensor_3d(self._ctx, type_v, self.n_embd_v_gqa, kv_size, n_stream)
            lib.ggml_set_name(k, f"cache_k_l{il}".encode())
            lib.ggml_set_name(v, f"cache_v_l{il}".encode())
            self.k[il] = k
            self.v[il] = v
            self.k_stream[il] = [
                lib.ggml_view_2d(self._ctx, k, self.n_embd_k_gqa, kv_size, k.nb[1], s * k.nb[2])
                for s in range(n_stream)
            ]
            self.v_stream[il] = [
                lib.ggml_view_2d(self._ctx, v, self.n_embd_v_gqa, kv_size, v.nb[1], s * v.nb[2])
                for s in range(n_stream)
            ]
        self._buf = ffi.NULL
        if not self.layers:  # a cache without layers (an iSWA model whose layers all slide) has no buffer
            return
        self._buf = lib.ggml_backend_alloc_ctx_tensors_from_buft(
            self._ctx, lib.ggml_backend_cpu_buffer_type()
        )
        if self._buf == ffi.NULL:
            raise MemoryError("failed to allocate buffer for kv cache")
        lib.ggml_backend_buffer_clear(self._buf, 0)  # no NaNs in the padding

    @property
    def nbytes(self) -> int:
        return int(ggml().ggml_backend_buffer_get_size(self._buf)) if self._buf != ffi.NULL else 0

    def clear(self) -> None:
        """llama_kv_cache::clear(data=true): zero every buffer."""
        if self._buf != ffi.NULL:
            ggml().ggml_backend_buffer_clear(self._buf, 0)

    def close(self) -> None:
        lib = ggml()
        if self._buf != ffi.NULL:
            lib.ggml_backend_buffer_free(self._buf)
            self._buf = ffi.NULL
        if self._ctx != ffi.NULL:
            lib.ggml_free(self._ctx)
            self._ctx = ffi.NULL

    # ------------------------------------------------------------------ graph pieces
    def get_k(self, ctx: Any, il: int, n_kv: int, sinfo: SlotInfo) -> Any:
        """[n_embd_head_k, n_head_kv, n_kv, ns] view of the streams s0..s1."""
        k = self.k[il]
        ns = sinfo.s1 - sinfo.s0 + 1
        t = self.type_k
        return ggml().ggml_view_4d(
            ctx,
            k,
            self.n_embd_head_k,
            self.n_head_kv,
            n_kv,
            ns,
            _row(t, self.n_embd_head_k),
            _row(t, self.n_embd_k_gqa),
            _row(t, self.n_embd_k_gqa * self.kv_size),
            _row(t, self.n_embd_k_gqa * self.kv_size) * sinfo.s0,
        )

    def get_v(self, ctx: Any, il: int, n_kv: int, sinfo: SlotInfo) -> Any:
        v = self.v[il]
        ns = sinfo.s1 - sinfo.s0 + 1
        t, size, gqa = self.type_v, self.kv_size, self.n_embd_v_gqa
        if not self.v_trans:
            return ggml().ggml_view_4d(
                ctx,
                v,
                self.n_embd_head_v,
                self.n_head_kv,
                n_kv,
                ns,
                _row(t, self.n_embd_head_v),
                _row(t, gqa),
                _row(t, gqa * size),
                _row(t, gqa * size) * sinfo.s0,
            )
        # transposed: [n_kv, n_head_kv, n_embd_head_v, ns] (v->nb[1] > v->nb[2])
        return ggml().ggml_view_4d(
            ctx,
            v,
            n_kv,
            self.n_head_kv,
            self.n_embd_head_v,
            ns,
            _row(t, size * self.n_embd_head_v),
            _row(t, size),
            _row(t, size * gqa),
            _row(t, size * gqa) * sinfo.s0,
        )

    def cpy_k(self, ctx: Any, k_cur: Any, k_idxs: Any, il: int) -> Any:
        """SET_ROWS of k_cur [n_embd_head, n_head, n_tokens] into the cache rows k_idxs."""
        lib = ggml()
        k = self.k[il]
        n_embd_gqa = k_cur.ne[0] * k_cur.ne[1]
        k_cur = lib.ggml_view_2d(ctx, k_cur, n_embd_gqa, k_cur.ne[2], k_cur.nb[2], 0)
        if self.n_stream > 1:  # the idxs are global over every stream
            k = lib.ggml_reshape_2d(ctx, k, n_embd_gqa, self.kv_size * self.n_stream)
        return lib.ggml_set_rows(ctx, k, k_cur, k_idxs)

    def cpy_v(self, ctx: Any, v_cur: Any, v_idxs: Any, il: int) -> Any:
        lib = ggml()
        v = self.v[il]
        n_tokens = v_cur.ne[2]
        n_embd_gqa = v_cur.ne[0] * v_cur.ne[1]
        if not self.v_trans:
            v_cur = lib.ggml_view_2d(ctx, v_cur, n_embd_gqa, n_tokens, v_cur.nb[2], 0)
            if self.n_stream > 1:
                v = lib.ggml_reshape_2d(ctx, v, n_embd_gqa, self.kv_size * self.n_stream)
            return lib.ggml_set_rows(ctx, v, v_cur, v_idxs)
        if _row(v_cur.type, n_embd_gqa) == v_cur.nb[2]:
            v_cur = lib.ggml_reshape_2d(ctx, v_cur, n_embd_gqa, n_tokens)
        else:
            v_cur = lib.ggml_cont_2d(ctx, v_cur, n_embd_gqa, n_tokens)
        # transposed: one row per element, the idxs address single elements
        v_view = lib.ggml_reshape_2d(ctx, v, 1, lib.ggml_nelements(v))
        v_cur = lib.ggml_reshape_2d(ctx, v_cur, 1, lib.ggml_nelements(v_cur))
        return lib.ggml_set_rows(ctx, v_view, v_cur, v_idxs)

    def build_input_k_idxs(self, ctx: Any, n_tokens: int) -> Any:
        lib = ggml()
        t = lib.ggml_new_tensor_1d(ctx, I64, n_tokens)
        lib.ggml_set_input(t)
        lib.ggml_set_name(t, b"attn_inp_k_idxs")
        return t

    def build_input_v_idxs(self, ctx: Any, n_tokens: int) -> Any:
        lib = ggml()
        n = n_tokens * self.n_embd_v_gqa if self.v_trans else n_tokens
        t = lib.ggml_new_tensor_1d(ctx, I64, n)
        lib.ggml_set_input(t)
        lib.ggml_set_name(t, b"attn_inp_v_idxs")
        return t

    def k_idxs(self, sinfo: SlotInfo, out: np.ndarray) -> None:
        """set_input_k_idxs: the global row of each token, stream by stream (int64 [n_tokens])."""
        if len(sinfo.strm) == 1 and len(sinfo.idxs[0]) == 1:  # the decode step: one scalar
            out[0] = sinfo.idxs[0][0] + sinfo.strm[0] * self.kv_size
            return
        size = len(sinfo.idxs[0])
        for s, strm in enumerate(sinfo.strm):
            out[s * size : (s + 1) * size] = np.asarray(sinfo.idxs[s], np.int64) + strm * self.kv_size

    def v_idxs(self, sinfo: SlotInfo, out: np.ndarray) -> None:
        if not self.v_trans:
            self.k_idxs(sinfo, out)
            return
        # one index per element: stream offset + j * kv_size + cell
        size, gqa = len(sinfo.idxs[0]), self.n_embd_v_gqa
        j = self._v_rows
        for s, strm in enumerate(sinfo.strm):
            base = strm * self.kv_size * gqa
            if size == 1:  # the decode step: one row of gqa indices
                np.add(j, base + sinfo.idxs[s][0], out=out[s * gqa : (s + 1) * gqa])
                continue
            cells = np.asarray(sinfo.idxs[s], np.int64)
            rows = base + j[None, :] + cells[:, None]
            out[s * size * gqa : (s + 1) * size * gqa] = rows.reshape(-1)

    # ------------------------------------------------------------------ update
    def copy_stream(self, src: int, dst: int) -> None:
        """llama_kv_cache::update: copy every layer's K/V of stream src over stream dst."""
        lib = ggml()
        for il in self.layers:
            lib.ggml_backend_tensor_copy(self.k_stream[il][src], self.k_stream[il][dst])
            lib.ggml_backend_tensor_copy(self.v_stream[il][src], self.v_stream[il][dst])

    def shift_views(self, ctx: Any, il: int, n_rot: int) -> Any:
        """build_graph_shift's view of layer il: the first n_rot dims of every head of every cell
        of every stream, [n_rot, n_head_kv, kv_size * n_stream]."""
        t = self.type_k
        return ggml().ggml_view_3d(
            ctx,
            self.k[il],
            n_rot,
            self.n_head_kv,
            self.kv_size * self.n_stream,
            _row(t, self.n_embd_head_k),
            _row(t, self.n_embd_k_gqa),
            0,
        )
