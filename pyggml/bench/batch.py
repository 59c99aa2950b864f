"""Bench: validate + split a 512-token batch of 8 sequences (64 tokens each, one output per
sequence), once per split mode, on pyggml's allocator and on llama_batch_allocr.

Both sides start from an already converted batch (llama_batch_ext) and do init + a full split,
the work llama_decode repeats for every call.
"""

from __future__ import annotations

import numpy as np

from ..batch import Batch, BatchAllocr, split
from . import Pair

N_SEQ = 8
N_PER_SEQ = 64
N_UBATCH = 128


def _arrays() -> dict:
    n = N_SEQ * N_PER_SEQ
    rng = np.random.default_rng(0)
    seq = np.repeat(np.arange(N_SEQ), N_PER_SEQ)
    pos = np.tile(np.arange(N_PER_SEQ), N_SEQ)
    out = (pos == N_PER_SEQ - 1).astype(np.int8)
    tokens = rng.integers(0, 32000, n)
    return {"tokens": tokens, "seq": seq, "pos": pos, "out": out}


def _factory(mode: str, sequential: bool = False):
    def make() -> Pair:
        from ..reference.batch import BenchBatch

        a = _arrays()
        n = a["tokens"].size
        batch = Batch(tokens=a["tokens"], pos=a["pos"], seq_ids=a["seq"], output=a["out"].astype(bool))
        ext = batch.to_ext(n_seq_max=N_SEQ, n_vocab=32000, n_embd_inp=2)
        allocr = BatchAllocr()

        def ours() -> int:
            allocr.init(ext)
            return len(split(allocr, mode, N_UBATCH, sequential=sequential))

        spec = {"n_tokens_max": n, "n_embd_inp": 2, "n_seq_max": N_SEQ, "n_vocab": 32000,
                "legacy": {"n_tokens": n, "token": a["tokens"].tolist(), "embd": None,
                           "pos": a["pos"].tolist(),
                           "n_seq_id": [1] * n, "seq_id": [[int(s)] for s in a["seq"]],
                           "logits": a["out"].tolist()}}
        ref = BenchBatch(spec)
        ref_mode = "equal-seq" if sequential else mode
        if ours() != ref.run(ref_mode, N_UBATCH):
            raise AssertionError(f"batch bench {mode}: ubatch counts differ")
        return Pair(ours=ours, reference=lambda: ref.run(ref_mode, N_UBATCH),
                    note=f"512 tokens, 8 seqs, n_ubatch={N_UBATCH}")

    return make


CASES = {
    "batch.split_simple.512x8": _factory("simple"),
    "batch.split_equal.512x8": _factory("equal"),
    "batch.split_equal_seq.512x8": _factory("equal", sequential=True),
    "batch.split_seq.512x8": _factory("seq"),
}
