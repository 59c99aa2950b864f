"""End-to-end bench cases: SmolLM2 prompt processing and token generation, pyggml's
``Context.decode`` against the reference's ``llama_decode`` (2 threads, the same weight
placement on both sides: the reference's defaults, use_extra_bufts on).

``e2e-pp512-smollm2``: one 512-token prompt into an empty cache (the memory is cleared first).
``e2e-tg128-smollm2``: 128 tokens decoded one at a time after an 8-token prompt, each logits row
read back (as a generation loop does); the token fed is fixed, so both sides do the same work.
``e2e-tg128-gemma3``: the same with gemma-3-270m Q4_K_M (iSWA memory, the default swa_full).
The note reports pyggml's Python time per token: everything outside ggml's graph compute.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from . import Pair, time_compute

N_THREADS = 2


def _pair(n_prompt: int, n_gen: int, model_name: str = "smollm2") -> Pair:
    from ..batch import Batch
    from ..context import Context
    from ..model import Model
    from ..parity import corpus
    from ..reference.decode import RefContext, RefModel
    from ..vocab import Vocab

    path = getattr(corpus, model_name)()
    model, rmodel = Model.load(path), RefModel(str(path))
    cp = {
        "n_ctx": 1024,
        "n_batch": 512,
        "n_ubatch": 512,
        "n_threads": N_THREADS,
        "n_threads_batch": N_THREADS,
    }
    ctx, rctx = Context(model, **cp), RefContext(rmodel, **cp)
    with open(__file__, encoding="utf-8") as f:  # real prose and code, read once, not repeated
        all_toks = Vocab.from_gguf(path).tokenize(f.read(), add_special=True)
    if len(all_toks) < n_prompt + n_gen:
        raise RuntimeError(f"bench text too short: {len(all_toks)} tokens for {n_prompt} + {n_gen}")
    toks, gen = all_toks[:n_prompt], all_toks[n_prompt : n_prompt + n_gen]
    spent = {"compute": 0.0, "total": 0.0, "tokens": 0}
    time_compute(ctx, spent)

    def ours() -> None:
        t0 = time.perf_counter()
        ctx.memory.clear()
        ctx.decode(Batch(tokens=toks))
        for i, t in enumerate(gen):
            ctx.decode(Batch(tokens=[t], pos=[n_prompt + i]))
            ctx.logits(-1)
        spent["total"] += time.perf_counter() - t0
        spent["tokens"] += max(1, len(gen))

    def reference() -> None:
        rctx.memory("clear", 1)
        rctx.decode(toks)
        for i, t in enumerate(gen):
            rctx.decode([t], pos=[n_prompt + i])
            rctx.logits(-1)

    def note() -> str:
        per = (spent["total"] - spent["compute"]) / max(1, spent["tokens"]) * 1e6
        return (
            f"Python time per {'token' if gen else 'prompt'} (outside ggml compute): {per:.0f} us; "
            f"graphs built/reused {ctx.stats()['graphs_built']}/{ctx.stats()['graphs_reused']}, "
            f"reference reused {rctx.stats()['n_reused']}"
        )

    return Pair(ours, reference, note=note)


CASES: dict[str, Callable[[], Pair]] = {
    "e2e-pp512-smollm2": lambda: _pair(512, 0),
    "e2e-tg128-smollm2": lambda: _pair(8, 128),
    "e2e-tg128-gemma3": lambda: _pair(8, 128, "gemma3"),
}
