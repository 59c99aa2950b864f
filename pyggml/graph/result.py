"""A built graph and what is needed to run it again: its ggml context, the cgraph, the inputs,
the output tensors and the parameters it was built for.

llama.cpp: src/llama-graph.{h,cpp} ``llm_graph_params`` (``allow_reuse``) and
``llm_graph_result`` (``reset``, ``set_inputs``, ``can_reuse``, ``set_outputs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._native import ffi, ggml
from ..batch import UBatch
from ..memory.kv_cache import SlotInfo


@dataclass
class GraphParams:
    """What decides a graph's topology (the llama subset of llm_graph_params)."""

    ubatch: UBatch
    n_outputs: int
    sinfo: SlotInfo | None
    n_kv: int
    n_stream: int  # attention streams of the KQ mask (1 with a unified cache)
    embeddings: bool
    causal: bool
    sinfo_swa: SlotInfo | None = None  # the SWA cache's slot and n_kv (iSWA memory)
    n_kv_swa: int = 0

    def allow_reuse(self, other: GraphParams) -> bool:
        """llm_graph_params::allow_reuse: same ubatch shape (and, for equal splits, the same
        sequences), same number of outputs, same context flags."""
        a, b = self.ubatch, other.ubatch
        ok = (
            a.equal_seqs == b.equal_seqs
            and a.n_tokens == b.n_tokens
            and a.n_seq_tokens == b.n_seq_tokens
            and a.n_seqs == b.n_seqs
            and a.n_seqs_unq == b.n_seqs_unq
            and (
                (a.token is None and b.token is None)
                or (a.embd is None and b.embd is None)
                or (a.token is not None and b.token is not None and a.embd is not None and b.embd is not None)
            )
        )
        if ok and a.equal_seqs:
            ok = list(a.seq_id_unq) == list(b.seq_id_unq)
        return (
            ok
            and self.n_outputs == other.n_outputs
            and self.embeddings == other.embeddings
            and self.causal == other.causal
        )


class GraphResult:
    """llm_graph_result: one reusable slot for a graph (the context keeps two, with and without
    outputs, as the reference does)."""

    def __init__(self, max_nodes: int) -> None:
        lib = ggml()
        self.max_nodes = max_nodes
        self._meta = ffi.new(
            "char[]",
            lib.ggml_tensor_overhead() * max_nodes + lib.ggml_graph_overhead_custom(max_nodes, False),
        )
        self.ctx: Any = ffi.NULL
        self.gf: Any = ffi.NULL
        self.inputs: list[Any] = []
        self.t_logits: Any = None
        self.t_embd: Any = None
        self.t_embd_pooled: Any = None  # build_pooling's output
        self.params: GraphParams | None = None

    def reset(self) -> None:
        lib = ggml()
        if self.ctx != ffi.NULL:
            lib.ggml_free(self.ctx)
        self.inputs = []
        self.t_logits = self.t_embd = self.t_embd_pooled = None
        self.params = None
        self.ctx = lib.ggml_init({"mem_size": len(self._meta), "mem_buffer": self._meta, "no_alloc": True})
        self.gf = lib.ggml_new_graph_custom(self.ctx, self.max_nodes, False)

    def close(self) -> None:
        if self.ctx != ffi.NULL:
            ggml().ggml_free(self.ctx)
            self.ctx = self.gf = ffi.NULL

    def set_inputs(self, ub: UBatch, p: GraphParams) -> None:
        for inp in self.inputs:
            inp.set_input(ub, p)

    def set_outputs(self) -> None:
        lib = ggml()
        for t in (self.t_logits, self.t_embd, self.t_embd_pooled):
            if t is not None:
                lib.ggml_set_output(t)

    def can_reuse(self, p: GraphParams) -> bool:
        if self.params is None or not self.params.allow_reuse(p):
            return False
        ok = True
        for inp in self.inputs:  # every input is asked (each rebinds its memory context)
            ok = inp.can_reuse(p) and ok
        return ok
