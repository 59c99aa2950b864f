"""Parity component ``generate``: ``pyggml.LLM``'s token streams against the reference's
``common_sampler`` loop over ``llama_decode`` (``pyggml.reference.generate``), on SmolLM2.

Cases (each compares whole token streams plus how they ended):

* ``single/<family>``: one prompt, one sampler configuration per sampler family (default
  chain, greedy, top-k/top-p/min-p/typical/XTC/top-n-sigma/dynamic temperature, mirostat 1
  and 2, penalties with the prompt as history, DRY, logit bias, adaptive-p), seeded;
* ``grammar/<name>``: the reference's grammars (json, arithmetic, list, ...), a lazy grammar
  with a trigger word, and JSON schemas (each side converts the schema itself);
* ``chat/<i>``: ``LLM.chat`` on real conversations: the prompt tokens (template + tokenizer
  of each side) and the reply tokens;
* ``batch/<i>/<k>``: prompts generated together (one decode per step): stream k against the
  reference doing the same batched decodes; ``alone/<i>/<k>``: that prompt generated alone on
  both sides, and whether each side's batched stream equals its alone stream (the reference's
  batched decode is not batch-invariant: see ``_batched``);
* ``error/<name>``: requests both sides refuse (a grammar that does not parse).

Prompts are chunks of real, non-repeating text: the reference tree's Markdown documentation.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

from ..errors import PyggmlError
from . import Case, Options, corpus

# (family, common_params_sampling overrides); seeds are drawn per stream
FAMILIES: list[tuple[str, dict[str, Any]]] = [
    ("default", {}),
    ("greedy", {"temp": 0.0}),
    ("top_k", {"samplers": ["top_k", "temperature"], "top_k": 5, "temp": 0.9}),
    ("top_p", {"samplers": ["top_p", "temperature"], "top_p": 0.8, "temp": 1.0}),
    ("min_p", {"samplers": ["min_p", "temperature"], "min_p": 0.1, "temp": 1.1}),
    ("typical", {"typ_p": 0.7}),
    ("xtc", {"xtc_probability": 0.5, "xtc_threshold": 0.1}),
    ("top_n_sigma", {"top_n_sigma": 1.5}),
    ("dynatemp", {"dynatemp_range": 0.5, "dynatemp_exponent": 1.5, "temp": 0.9}),
    ("mirostat1", {"mirostat": 1, "mirostat_tau": 4.0}),
    ("mirostat2", {"mirostat": 2, "mirostat_tau": 5.0, "mirostat_eta": 0.2}),
    ("penalties", {"penalty_repeat": 1.3, "penalty_freq": 0.2, "penalty_present": 0.3,
                   "penalty_last_n": 64}),
    ("dry", {"dry_multiplier": 0.8, "dry_allowed_length": 2, "dry_penalty_last_n": -1}),
    ("logit_bias", {"logit_bias": [[13, 3.0], [28, -5.0], [198, -100.0]]}),
    ("adaptive_p", {"samplers": ["top_k", "adaptive_p"], "adaptive_target": 0.4}),
]

GRAMMARS = ("json.gbnf", "arithmetic.gbnf", "list.gbnf", "json_arr.gbnf", "chess.gbnf")

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
     "required": ["name", "age"]},
    {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 4},
    {"type": "object", "properties": {"ok": {"type": "boolean"},
                                      "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}}}},
]

CONVERSATIONS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are a terse assistant."},
     {"role": "user", "content": "Name three primary colors."}],
    [{"role": "user", "content": "Write a haiku about autumn leaves."}],
    [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Explain what a hash table is in two sentences."}],
    [{"role": "user", "content": "Translate 'good morning' into Spanish and German."}],
    [{"role": "user", "content": "List the planets of the solar system in order."}],
]

N_CTX = 2048


def _texts(rng: random.Random, n: int, lo: int = 200, hi: int = 1200) -> list[str]:
    """``n`` chunks of the reference's Markdown docs, cut at seeded places (never the same
    chunk twice: real text, not a repeating corpus)."""
    docs = sorted((corpus.reference_tree() / "docs").rglob("*.md"))
    if not docs:
        raise corpus.FixtureError("no docs/*.md in the reference tree")
    out: list[str] = []
    seen: set[tuple[str, int]] = set()
    while len(out) < n:
        path = rng.choice(docs)
        text = path.read_text(encoding="utf-8", errors="replace")
        if len(text) < lo + 10:
            continue
        size = rng.randint(lo, min(hi, len(text) - 1))
        start = rng.randrange(0, len(text) - size)
        if (str(path), start) in seen:
            continue
        seen.add((str(path), start))
        out.append(text[start:start + size])
    return out


class _Sides:
    """pyggml's LLM and the reference's model over the same GGUF, same context parameters."""

    def __init__(self) -> None:
        from ..llm import LLM
        from ..model import Model
        from ..reference.decode import RefModel

        path = corpus.smollm2()
        self.model = Model.load(path)
        self.llm = LLM.from_model(self.model, n_ctx=N_CTX)
        self.ref = RefModel(path)
        n = self.llm.ctx.params.n_threads
        self.cparams = {"n_ctx": N_CTX, "n_threads": n, "n_threads_batch": n}

    def ours(self, prompt: list[int], n: int, sampling: dict[str, Any]) -> dict[str, Any]:
        kw = _ours_kw(sampling)
        try:
            c = self.llm.generate(prompt, max_tokens=n, cache_prompt=False, **kw)
        except PyggmlError as exc:
            return {"error": _error_kind(str(exc))}
        return {"tokens": c.tokens, "finish": c.finish_reason}

    def theirs(self, prompts: list[list[int]], n: int, sampling: dict[str, Any],
               **cparams: Any) -> list[dict[str, Any]]:
        from ..reference.generate import ref_generate

        res = ref_generate(self.ref, prompts, n_predict=n, samplings=sampling,
                           **{**self.cparams, **cparams})
        out = []
        for s in res["streams"]:
            if s["finish"] == "error":
                out.append({"error": _error_kind(s.get("error", ""))})
            else:
                out.append({"tokens": s["tokens"], "finish": s["finish"]})
        return out

    def close(self) -> None:
        self.llm.close()
        self.model.close()
        self.ref.close()


def _ours_kw(sampling: dict[str, Any]) -> dict[str, Any]:
    """The same request for pyggml: grammar keys by LLM.generate's names, logit_bias as pairs."""
    kw = dict(sampling)
    if "logit_bias" in kw:
        kw["logit_bias"] = [(int(t), float(b)) for t, b in kw["logit_bias"]]
    return kw


def _error_kind(message: str) -> str:
    # both sides say "failed to parse grammar" first (pyggml adds the parser's reason)
    return "failed to parse grammar" if "failed to parse grammar" in message else message


def cases(opts: Options) -> Iterator[Case]:
    rng = random.Random(opts.seed + 14)
    sides = _Sides()
    try:
        yield from _single(sides, rng, opts)
        yield from _grammar(sides, rng, opts)
        yield from _chat(sides, rng, opts)
        yield from _batched(sides, rng, opts)
        yield from _errors(sides)
    finally:
        sides.close()


def _tok(sides: _Sides, text: str) -> list[int]:
    return sides.llm.tokenize(text)


def _single(sides: _Sides, rng: random.Random, opts: Options) -> Iterator[Case]:
    rounds = 40 if opts.full else 1
    for r in range(rounds):
        texts = _texts(rng, len(FAMILIES))
        for (family, params), text in zip(FAMILIES, texts, strict=True):
            n = 256 if opts.full or family in ("default", "greedy", "penalties") else 64
            sampling = {**params, "seed": rng.randrange(2**32)}
            prompt = _tok(sides, text)
            yield Case(f"single/{family}/{r}", sides.ours(prompt, n, sampling),
                       sides.theirs([prompt], n, sampling)[0])


def _grammar(sides: _Sides, rng: random.Random, opts: Options) -> Iterator[Case]:
    from ..grammar import json_schema_to_grammar
    from ..reference.json_schema import json_schema_to_grammar as ref_schema_to_grammar

    rounds = 12 if opts.full else 1
    n = 128 if opts.full else 48
    gdir = corpus.reference_tree() / "grammars"
    for r in range(rounds):
        for name in GRAMMARS:
            text = (gdir / name).read_text()
            prompt = _tok(sides, _texts(rng, 1, 100, 400)[0])
            sampling = {"grammar": text, "seed": rng.randrange(2**32)}
            yield Case(f"grammar/{name}/{r}", sides.ours(prompt, n, sampling),
                       sides.theirs([prompt], n, sampling)[0])
        prompt = _tok(sides, "Reply with JSON. " + _texts(rng, 1, 100, 300)[0])
        lazy = {"grammar": (gdir / "json.gbnf").read_text(), "grammar_lazy": True,
                "grammar_triggers": [{"type": "word", "value": "{"}], "seed": rng.randrange(2**32)}
        yield Case(f"grammar/lazy-word/{r}", sides.ours(prompt, n, lazy),
                   sides.theirs([prompt], n, lazy)[0])
        for k, schema in enumerate(SCHEMAS):
            prompt = _tok(sides, f"Answer in JSON matching {json.dumps(schema)}:\n")
            seed = rng.randrange(2**32)
            ours = sides.ours(prompt, n, {"json_schema": schema, "seed": seed})
            theirs = sides.theirs([prompt], n, {"grammar": ref_schema_to_grammar(json.dumps(schema)),
                                                "seed": seed})[0]
            yield Case(f"grammar/schema-{k}/{r}",
                       {"grammar": json_schema_to_grammar(schema), **ours},
                       {"grammar": ref_schema_to_grammar(json.dumps(schema)), **theirs})


def _chat(sides: _Sides, rng: random.Random, opts: Options) -> Iterator[Case]:
    from ..reference.chat import chat_apply
    from ..reference.vocab import RefVocab

    llm = sides.llm
    t = llm.chat_template_inputs()  # the reference renders from the same template and texts
    rounds = 20 if opts.full else 1
    n = 256 if opts.full else 96
    with RefVocab(corpus.smollm2()) as rv:
        for r in range(rounds):
            for i, messages in enumerate(CONVERSATIONS):
                seed = rng.randrange(2**32)
                temp = 0.0 if i % 3 == 0 else 0.8
                try:
                    llm.chat(messages, max_tokens=n, seed=seed, temp=temp, cache_prompt=False)
                    c = llm.last_completion
                    ours: dict[str, Any] = {"prompt": c.prompt_tokens, "tokens": c.tokens,
                                            "finish": c.finish_reason}
                except PyggmlError as exc:
                    ours = {"error": str(exc)}
                inputs = {"messages": messages, "add_generation_prompt": True,
                          "bos_token": t["bos_token"], "eos_token": t["eos_token"]}
                rendered = chat_apply(t["template"], inputs)
                if not rendered.get("ok"):
                    yield Case(f"chat/{i}/{r}", ours, {"error": rendered.get("error")})
                    continue
                prompt = rv.tokenize(rendered["prompt"].encode(), True, True)
                ref = sides.theirs([prompt], n, {"seed": seed, "temp": temp})[0]
                yield Case(f"chat/{i}/{r}", ours, {"prompt": prompt, **ref})


def _batched(sides: _Sides, rng: random.Random, opts: Options) -> Iterator[Case]:
    """Prompts generated together against the reference doing the same batched decodes, and
    each stream against generating its prompt alone.  llama.cpp's batched prompt decode does
    not reproduce the logits of the same prompt decoded alone (SmolLM2 here: max |delta| up
    to ~0.9 for every sequence but the first), so sensitive samplers may pick other tokens:
    ``alone/...`` compares pyggml's stream alone with the reference's, and whether the batched
    stream equals the alone one on pyggml's side with the same answer on the reference's."""
    groups = 125 if opts.full else 2
    n = 128 if opts.full else 40
    fam = dict(FAMILIES)
    for g in range(groups):
        size = rng.choice((2, 3, 4, 8)) if opts.full else (8 if g == 0 else 4)
        name = rng.choice(("default", "greedy", "penalties", "min_p", "mirostat2"))
        sampling = {**fam[name], "seed": rng.randrange(2**32)}
        texts = _texts(rng, size, 60, 600)
        prompts = [_tok(sides, t) for t in texts]
        batch = sides.llm.generate_batch(prompts, max_tokens=n, **_ours_kw(sampling))
        ours = [{"tokens": c.tokens, "finish": c.finish_reason} for c in batch]
        together = sides.theirs(prompts, n, sampling, n_seq_max=max(size, sides.llm.ctx.n_seq_max),
                                kv_unified=True)
        for k in range(size):
            yield Case(f"batch/{name}/{g}/{k}", ours[k], together[k])
            ours_alone = sides.ours(prompts[k], n, sampling)
            ref_alone = sides.theirs([prompts[k]], n, sampling)[0]
            yield Case(f"alone/{name}/{g}/{k}",
                       {"alone": ours_alone, "batched_is_alone": ours[k] == ours_alone},
                       {"alone": ref_alone, "batched_is_alone": together[k] == ref_alone})


def _errors(sides: _Sides) -> Iterator[Case]:
    prompt = _tok(sides, "Say something:")
    for name, grammar in (("undefined-rule", "root ::= foo"), ("unclosed", 'root ::= ("a"'),
                          ("empty-is-none", "")):
        sampling = {"grammar": grammar, "seed": 1}
        yield Case(f"error/{name}", sides.ours(prompt, 8, sampling),
                   sides.theirs([prompt], 8, sampling)[0])
