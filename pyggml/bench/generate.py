"""Generation bench cases: ``pyggml.LLM`` against the reference tools' loop (common_sampler over
llama_decode, ``pyggml.reference.generate.ref_generate_ctx``), same model, same context
parameters (2 threads), each side on a context made once (its memory cleared per call).

``e2e-chat-smollm2``: a ChatML conversation rendered by each side's chat template, then a
128-token reply with the default sampler chain (seeded; EOG banned by a logit bias so every
run decodes the same 128 tokens on both sides: the streams are identical, see ``parity
generate``).
``e2e-batch8-smollm2``: 8 different prompts (about 100 tokens each) generated together, 64
tokens each, one decode per step, prompts included.  The note gives pyggml's generation-phase
throughput against one sequence generating alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import Pair

N_THREADS = 2
N_CTX = 2048

_CHAT = [
    {"role": "system", "content": "You are a helpful assistant who answers in detail."},
    {"role": "user", "content": "Explain how a CPU cache hierarchy works, why it matters for "
                                "performance, and give two examples of cache-friendly code."},
]


def _sides() -> tuple[Any, Any, Any, dict[str, Any]]:
    from ..llm import LLM
    from ..model import Model
    from ..parity import corpus
    from ..reference.decode import RefContext, RefModel

    path = corpus.smollm2()
    model = Model.load(path)
    llm = LLM.from_model(model, n_ctx=N_CTX, n_threads=N_THREADS)
    rmodel = RefModel(str(path))
    cp = {"n_ctx": N_CTX, "n_threads": N_THREADS, "n_threads_batch": N_THREADS}
    return llm, rmodel, RefContext, cp


def _no_eog(llm: Any, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The default chain seeded, with every EOG token biased away (so each run decodes the
    requested number of tokens): pyggml's keywords and the reference's sampling dict."""
    ban = [(t, -1e30) for t in range(llm.vocab.n_tokens) if llm.vocab.is_eog(t)]
    return {"seed": seed, "logit_bias": ban}, {"seed": seed, "logit_bias": [list(b) for b in ban]}


def _chat() -> Pair:
    from ..reference.generate import ref_generate_ctx

    llm, rmodel, RefContext, cp = _sides()
    rctx = RefContext(rmodel, **cp)
    prompt = llm.tokenize(llm.chat_prompt(_CHAT))
    kw, sampling = _no_eog(llm, 1234)

    def ours() -> None:
        llm.chat(_CHAT, max_tokens=128, cache_prompt=False, **kw)
        assert len(llm.last_completion.tokens) == 128

    def reference() -> None:
        res = ref_generate_ctx(rctx, [prompt], n_predict=128, samplings=sampling)
        assert len(res["streams"][0]["tokens"]) == 128

    def note() -> str:
        t = llm.last_timings
        return (f"prompt {t['prompt_tokens']} tokens, reply {t['gen_tokens']} tokens; "
                f"pyggml {t['gen_tokens'] / t['gen_s']:.1f} t/s generating")

    return Pair(ours, reference, note=note)


def _batch8() -> Pair:
    from ..reference.generate import ref_generate_ctx

    llm, rmodel, RefContext, cp = _sides()
    rctx = RefContext(rmodel, n_seq_max=8, kv_unified=True, **cp)
    with open(__file__, encoding="utf-8") as f:  # 8 different real prompts, read once
        lines = [ln.strip() for ln in f.read().splitlines() if len(ln.strip()) > 30]
    prompts = [llm.tokenize(" ".join(lines[i::8])[:400]) for i in range(8)]
    kw, sampling = _no_eog(llm, 99)
    spent: dict[str, float] = {}

    def ours() -> None:
        out = llm.generate_batch(prompts, max_tokens=64, **kw)
        spent["batch"] = llm.last_timings["gen_tokens"] / llm.last_timings["gen_s"]
        assert all(len(c.tokens) == 64 for c in out)

    def reference() -> None:
        ref_generate_ctx(rctx, prompts, n_predict=64, samplings=sampling)

    def note() -> str:
        llm.generate(prompts[0], max_tokens=64, cache_prompt=False, **kw)
        one = llm.last_timings["gen_tokens"] / llm.last_timings["gen_s"]
        return (f"generation phase (prompts excluded): pyggml 8 sequences together {spent['batch']:.1f} t/s, "
                f"one sequence alone {one:.1f} t/s ({spent['batch'] / one:.2f}x)")

    return Pair(ours, reference, note=note)


CASES: dict[str, Callable[[], Pair]] = {
    "e2e-chat-smollm2": _chat,
    "e2e-batch8-smollm2": _batch8,
}
