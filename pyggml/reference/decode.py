"""The reference's own ``llama_decode``, in process, through the probe (probe_decode.cpp).

``RefModel`` loads a model with ``llama_model_load_from_file`` and says where each weight went;
``RefContext`` wraps a ``llama_context``: decode a ``llama_batch``, read the logits, drive the
memory, dump the KV cells, the last graph and the perf counters.  ``graph_dump`` dumps any
``struct ggml_cgraph *`` (pyggml's own, built with the same libggml) in the same format as
``RefContext.graph``, so the two sides diff node by node.

Calls that can abort (GGML_ASSERT: a token past n_batch, a bad memory op) belong in
``pyggml.reference.isolated``.  Logits come back as float32 arrays: compare bits with
``a.view(np.uint32)``.

Graph dump: ``{"nodes": [...], "leafs": [...]}``, each entry ``{"op": ggml_op_desc, "name",
"type": ggml_type_name, "ne": [4], "nb": [4], "op_params": [16 int32], "flags", "src": [ref |
None, ...] (up to the last non-null), "view_src": ref | None, "view_offs"}``, where a ref is
``{"node": i}``, ``{"leaf": i}`` or ``{"tensor": name}`` (a tensor outside the graph).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._native import ffi, probe
from ._probe import take_json

MEMORY_OPS = ("clear", "seq_rm", "seq_cp", "seq_keep", "seq_add", "seq_div", "seq_pos_min", "seq_pos_max")
EXCEPTION = -1000  # PS_DEC_EXCEPTION: a C++ exception escaped the reference (see last_log)
POOLING_RANK = 4  # LLAMA_POOLING_TYPE_RANK


class RefError(RuntimeError):
    """The reference refused a model or context; ``log`` is everything it logged."""

    def __init__(self, error: str, log: str) -> None:
        super().__init__(error)
        self.log = log


def _checked(handle: Any, out: Any) -> dict[str, Any]:
    j = take_json(out) or {}
    if handle == ffi.NULL:
        raise RefError(j.get("error", "failed"), j.get("log", ""))
    return j


def _ptr(a: np.ndarray | None, ctype: str) -> Any:
    return ffi.NULL if a is None else ffi.cast(ctype, a.ctypes.data)


class _Handle:
    """A probe handle freed once: by close(), the end of a ``with`` block, or collection."""

    _h: Any = ffi.NULL
    _lib: Any

    def _release(self, free: str) -> None:
        if self._h != ffi.NULL:
            getattr(self._lib, free)(self._h)
            self._h = ffi.NULL

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_h", ffi.NULL) != ffi.NULL:
            self.close()


class RefModel(_Handle):
    """``llama_model_load_from_file`` with the reference's default model params, except
    ``n_gpu_layers=0`` (CPU).  ``placement``: every tensor of the model's contexts in
    ``tensors_by_name`` order, ``{"name", "buft", "nbytes", "type", "ne"}`` (a tied output in
    another buffer type than token_embd is a second "token_embd.weight"); ``buffers``: the
    weight buffers ``{"buft", "size"}``.  Raises ``RefError`` on a failed load."""

    def __init__(self, path: str | os.PathLike[str], *, use_extra_bufts: bool = True,
                 use_mmap: bool = True, check_tensors: bool = False) -> None:
        self._lib = probe()
        params = {"use_extra_bufts": use_extra_bufts, "use_mmap": use_mmap, "check_tensors": check_tensors}
        out = ffi.new("char **")
        self._h = self._lib.ps_dec_model_load(os.fsencode(path), json.dumps(params).encode(), out)
        j = _checked(self._h, out)
        self.placement: list[dict[str, Any]] = j["tensors"]
        self.buffers: list[dict[str, Any]] = j["buffers"]

    @property
    def handle(self) -> Any:
        return self._h

    def close(self) -> None:
        self._release("ps_dec_model_free")


class RefContext(_Handle):
    """``llama_init_from_model(model, params)`` where params are
    ``llama_context_default_params()`` with ``no_perf=False`` and these overrides: n_ctx,
    n_batch, n_ubatch, n_seq_max, n_threads, n_threads_batch, kv_unified, embeddings, swa_full,
    no_perf, flash_attn ("auto"|"on"|"off"), type_k/type_v (ggml type names: "f16", "q8_0"),
    pooling_type (llama_pooling_type: -1 unspecified .. 4 rank).
    ``info``: the context's n_ctx, n_ctx_seq, n_batch, n_ubatch, n_seq_max, the resolved
    flash_attn, kv_unified, n_threads, n_threads_batch, pooling_type, n_embd_out, n_cls_out.
    Keep ``model`` open while this lives."""

    def __init__(self, model: RefModel, **cparams: Any) -> None:
        self._lib = probe()
        self.model = model
        out = ffi.new("char **")
        self._h = self._lib.ps_dec_ctx_new(model.handle, json.dumps(cparams).encode(), out)
        self.info: dict[str, Any] = _checked(self._h, out)
        self.n_vocab = model_n_vocab(model)

    # -- decode ----------------------------------------------------------------------------

    def decode(self, tokens: Sequence[int] | np.ndarray, pos: Sequence[int] | None = None,
               seq_ids: Sequence[Sequence[int]] | None = None,
               logits: Sequence[bool] | None = None) -> int:
        """``llama_decode`` of a ``llama_batch`` of these tokens; None leaves that field NULL
        (the reference fills it: positions continue each sequence, seq 0, last token output).
        Returns the reference's code (0 ok, 1 no KV slot, 2 aborted, -1 invalid batch, < -1
        fatal; ``EXCEPTION``); ``last_log`` holds what it logged."""
        return self._run(self._lib.ps_dec_decode, tokens, pos, seq_ids, logits)

    def encode(self, tokens: Sequence[int] | np.ndarray, pos: Sequence[int] | None = None,
               seq_ids: Sequence[Sequence[int]] | None = None,
               logits: Sequence[bool] | None = None) -> int:
        """``llama_encode`` of the same batch as ``decode``; returns its code."""
        return self._run(self._lib.ps_dec_encode, tokens, pos, seq_ids, logits)

    def _run(self, fn: Any, tokens: Sequence[int] | np.ndarray, pos: Sequence[int] | None,
             seq_ids: Sequence[Sequence[int]] | None, logits: Sequence[bool] | None) -> int:
        tok = np.ascontiguousarray(tokens, dtype=np.int32)
        n = int(tok.size)
        p = None if pos is None else np.ascontiguousarray(pos, dtype=np.int32)
        n_seq = flat = None
        if seq_ids is not None:
            n_seq = np.array([len(s) for s in seq_ids], dtype=np.int32)
            flat = np.array([s for row in seq_ids for s in row] or [0], dtype=np.int32)
        out = None if logits is None else np.array([1 if x else 0 for x in logits], dtype=np.int8)
        for name, arr in (("pos", p), ("seq_ids", n_seq), ("logits", out)):
            if arr is not None and arr.size != n:
                raise ValueError(f"{name} has {arr.size} entries, tokens {n}")
        return fn(self._h, n, _ptr(tok, "int32_t *"), _ptr(p, "int32_t *"), _ptr(n_seq, "int32_t *"),
                  _ptr(flat, "int32_t *"), _ptr(out, "int8_t *"))

    @property
    def last_log(self) -> str:
        """The reference's log of the last call on this context (decode, logits, memory)."""
        text = ffi.new("char **")
        n = self._lib.ps_dec_last_log(self._h, text)
        try:
            return ffi.buffer(text[0], n)[:].decode("utf-8", "replace")
        finally:
            self._lib.ps_free(text[0])

    # -- outputs ---------------------------------------------------------------------------

    @property
    def n_outputs(self) -> int:
        """Output rows of the last decode."""
        return self._lib.ps_dec_n_outputs(self._h)

    def logits(self, i: int) -> np.ndarray | None:
        """``llama_get_logits_ith(ctx, i)`` (float32 [n_vocab]); None where the reference returns
        NULL (its error line is in ``last_log``)."""
        row = np.empty(self.n_vocab, dtype=np.float32)
        if self._lib.ps_dec_logits(self._h, i, _ptr(row, "float *")) != 0:
            return None
        return row

    def logits_all(self) -> np.ndarray:
        """``llama_get_logits(ctx)``: float32 [n_outputs, n_vocab], rows in batch order."""
        rows = np.empty((self.n_outputs, self.n_vocab), dtype=np.float32)
        if self._lib.ps_dec_logits_all(self._h, _ptr(rows, "float *")) != 0:
            return np.empty((0, self.n_vocab), dtype=np.float32)
        return rows

    def embeddings(self, i: int) -> np.ndarray | None:
        """``llama_get_embeddings_ith(ctx, i)`` (float32 [n_embd_out]); None where it returns NULL."""
        row = np.empty(self.info["n_embd_out"], dtype=np.float32)
        if self._lib.ps_dec_embeddings_ith(self._h, i, _ptr(row, "float *"), row.size) != 0:
            return None
        return row

    def embeddings_seq(self, seq_id: int) -> np.ndarray | None:
        """``llama_get_embeddings_seq(ctx, seq_id)``: float32 [n_cls_out] with RANK pooling,
        else [n_embd_out]; None where it returns NULL (pooling NONE, a sequence not in the
        last batch)."""
        n = self.info["n_cls_out"] if self.info["pooling_type"] == POOLING_RANK else self.info["n_embd_out"]
        row = np.empty(n, dtype=np.float32)
        if self._lib.ps_dec_embeddings_seq(self._h, seq_id, _ptr(row, "float *"), n) != 0:
            return None
        return row

    # -- memory and state ------------------------------------------------------------------

    def memory(self, op: str, *args: int) -> int:
        """``llama_memory_<op>`` on ``llama_get_memory(ctx)``: clear(data), seq_rm(seq, p0, p1)
        -> 0/1, seq_cp(src, dst, p0, p1), seq_keep(seq), seq_add(seq, p0, p1, delta),
        seq_div(seq, p0, p1, d), seq_pos_min(seq) / seq_pos_max(seq) -> the position.
        Void ops return 0."""
        if op not in MEMORY_OPS:
            raise ValueError(f"unknown memory op {op!r}")
        a = (list(args) + [0, 0, 0, 0])[:4]
        return self._lib.ps_dec_memory(self._h, op.encode(), *a)

    def kv_state(self) -> dict[str, Any]:
        """The memory's cells: ``{"kind": "kv"|"iswa"|"none"|"other", "caches": [{"name",
        "state": {"streams": [{"size", "used", "used_min", "used_max_p1", "has_shift", "head",
        "cells": [[i, pos, shift, x, y, tok, [seqs]], ...], "seq_pos": [[seq, min, max, [[pos,
        cell], ...]], ...]}], "seq_pos": [[min, max] per seq < n_seq_max], "has_shift"}}]}``."""
        out = ffi.new("char **")
        self._lib.ps_dec_kv_state(self._h, out)
        return take_json(out)

    def graph(self) -> dict[str, Any] | None:
        """The graph of the last computed ubatch (see the module doc for the format); None when
        the context holds none (before the first decode, after a K-shift or a failed alloc)."""
        out = ffi.new("char **")
        if self._lib.ps_dec_graph(self._h, out) != 0:
            return None
        return take_json(out)

    def stats(self) -> dict[str, Any]:
        """``llama_perf_context`` (t_*_ms, n_p_eval, n_eval, n_reused; n_p_eval and n_eval are
        at least 1 there) and abort_calls (calls of the probe's abort callback)."""
        out = ffi.new("char **")
        self._lib.ps_dec_stats(self._h, out)
        return take_json(out)

    # -- settings --------------------------------------------------------------------------

    def set_abort(self, after: int) -> None:
        """An abort callback that returns true from its (after+1)-th call on; after < 0 removes it."""
        self._lib.ps_dec_set_abort(self._h, after)

    def set_threads(self, n: int, n_batch: int) -> None:
        self._lib.ps_dec_set_threads(self._h, n, n_batch)

    def close(self) -> None:
        self._release("ps_dec_ctx_free")


def model_n_vocab(model: RefModel) -> int:
    from .._native import llama

    lib = llama()
    return lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(model.handle))


def graph_dump(cgraph: Any) -> dict[str, Any]:
    """Dump any cffi ``struct ggml_cgraph *`` in the format of ``RefContext.graph``."""
    out = ffi.new("char **")
    probe().ps_graph_dump(ffi.cast("void *", cgraph), out)
    return take_json(out)
