"""Embedding bench case: all-MiniLM-L6-v2 (converted by ``pyggml convert bert``), pyggml's
``Context.encode`` against the reference's ``llama_encode`` (2 threads, the model's mean
pooling).

``embed-minilm-batch32``: 32 sentences (lines of real text, tokenized once beforehand) as 32
sequences of one batch, encoded, and every pooled embedding read back.  The reference builds
the encoder graph anew for every batch (its no-cache attention input cannot be reused), and so
does pyggml; the note reports pyggml's Python time per batch outside ggml's compute.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from . import Pair, time_compute

N_THREADS = 2
N_SEQ = 32


def _pair() -> Pair:
    from ..batch import Batch
    from ..context import Context
    from ..model import Model
    from ..parity import corpus
    from ..reference.decode import RefContext, RefModel

    path = corpus.minilm_gguf()
    model, rmodel = Model.load(path), RefModel(str(path))
    with open(__file__, encoding="utf-8") as f:  # real prose and code
        lines = [ln.strip() for ln in f if len(ln.strip()) >= 24]
    toks = [model.vocab.tokenize(ln, add_special=True) for ln in lines[:N_SEQ]]
    tokens = [t for ts in toks for t in ts]
    pos = [i for ts in toks for i in range(len(ts))]
    seq_ids = [[s] for s, ts in enumerate(toks) for _ in ts]
    n = len(tokens)
    # the whole batch in one ubatch; a multiple of n_seq_max: the reference's worst-case reserve
    # rounds n_ubatch up to one and then fails an assert in the mean pooling otherwise
    n_ub = -(-n // N_SEQ) * N_SEQ
    cp = {"embeddings": True, "n_seq_max": N_SEQ, "n_batch": n_ub, "n_ubatch": n_ub,
          "n_threads": N_THREADS, "n_threads_batch": N_THREADS}
    ctx, rctx = Context(model, **cp), RefContext(rmodel, **cp)
    batch = Batch(tokens=tokens, pos=pos, seq_ids=seq_ids)
    spent = {"compute": 0.0, "total": 0.0, "runs": 0}
    time_compute(ctx, spent)

    def ours() -> None:
        t0 = time.perf_counter()
        ctx.encode(batch)
        for s in range(N_SEQ):
            ctx.embeddings_seq(s)
        spent["total"] += time.perf_counter() - t0
        spent["runs"] += 1

    def reference() -> None:
        rctx.encode(tokens, pos=pos, seq_ids=seq_ids)
        for s in range(N_SEQ):
            rctx.embeddings_seq(s)

    def note() -> str:
        per = (spent["total"] - spent["compute"]) / max(1, spent["runs"]) * 1e3
        return f"{n} tokens in {N_SEQ} sequences; Python time per batch (outside ggml compute): {per:.2f} ms"

    return Pair(ours, reference, note=note)


CASES: dict[str, Callable[[], Pair]] = {
    "embed-minilm-batch32": _pair,
}
