"""Parity component ``embed``: BERT encoders and pooling against the reference's ``llama_encode``.

Both sides load the same model and encode the same batches (several sequences per batch,
tokens of different sequences interleaved or not, explicit or automatic positions) through
``encode`` or through ``decode`` (which encodes for a model without memory).  Compared:
- the return code of every batch;
- every token embedding (pooling ``none``) and every pooled embedding or rank score (``mean``,
  ``cls``, ``last``, ``rank``), **bit for bit** (one case per vector, a hash of its bytes), and
  the getters' answers for an index without output / a sequence not in the batch (None);
- the graph of the first batches of each context, node for node;
- the converted MiniLM GGUF: every tensor's name, type and shape as the reference loader sees
  it, and its vocabulary against the reference tree's ``ggml-vocab-bert-bge.gguf`` (the same
  WordPiece vocab, converted by the reference's converter).

Corpus: all-MiniLM-L6-v2 converted by ``pyggml convert bert`` (real sentences); seeded tiny
BERTs (F32/F16, with and without token types, a pooling type in the file or none, rerankers
with 1 and 3 outputs); a tiny llama decoding with ``embeddings`` on (the pooling layer on a
causal graph with a KV cache, pooled per ubatch).  The matrix: every pooling type, flash
attention on/off, 1/2/4 threads, embeddings off (tiny BERTs).  ``--full`` adds batches: over
10,000 vectors compared.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import Case, Options, corpus
from . import tinybert as tb
from .tinymodels import gguf_bytes

EncBatch = dict[str, Any]  # {"tokens", "pos" | None, "seq_ids"}


def _rowhash(row: np.ndarray | None) -> str | None:
    if row is None:
        return None
    return hashlib.blake2b(np.ascontiguousarray(row, np.float32).tobytes(), digest_size=12).hexdigest()


def tiny_path(spec: tb.BertSpec) -> Path:
    """The tiny BERT of ``spec``, written once into a temp folder named after the spec."""
    digest = hashlib.blake2b(repr(spec).encode(), digest_size=6).hexdigest()
    root = Path(tempfile.gettempdir()) / "pyggml-embed-tiny"
    path = root / f"{spec.tag}-{spec.seed}-{digest}.gguf"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkstemp(dir=root, suffix=".part")[1])
        m = tb.build(spec)
        tmp.write_bytes(gguf_bytes(m.kv, m.tensors))
        try:
            tmp.rename(path)
        except OSError:  # another process wrote it first
            tmp.unlink(missing_ok=True)
    return path


# ---- batches ----------------------------------------------------------------------------------


def random_batch(rng: random.Random, n_vocab: int, *, cls_id: int, sep_id: int, max_seqs: int = 4,
                 max_len: int = 12) -> EncBatch:
    """Several sequences ([CLS] words [SEP]), interleaved or one after the other."""
    n_seq = rng.randint(1, max_seqs)
    seq_ids = rng.sample(range(max_seqs), n_seq)
    seqs = [[cls_id] + [rng.randrange(5, n_vocab) for _ in range(rng.randint(0, max_len - 2))] + [sep_id]
            for _ in seq_ids]
    return from_sequences(rng, seq_ids, seqs)


def from_sequences(rng: random.Random, seq_ids: list[int], seqs: list[list[int]]) -> EncBatch:
    order = [(s, i) for s, toks in zip(seq_ids, seqs, strict=True) for i in range(len(toks))]
    if rng.random() < 0.5:  # interleave the sequences, keeping each one's order
        order.sort(key=lambda x: (x[1] + rng.random() * 3, x[0]))
    tokens = [seqs[seq_ids.index(s)][i] for s, i in order]
    pos = [i for _, i in order] if rng.random() < 0.7 else None  # None: the reference fills them
    return {"tokens": tokens, "pos": pos, "seq_ids": [[s] for s, _ in order]}


# ---- the two sides ----------------------------------------------------------------------------


class _Ours:
    def __init__(self, model: Any, cp: dict[str, Any]) -> None:
        from ..context import Context

        p = dict(cp)
        p["flash_attn"] = {"auto": None, "on": True, "off": False}[p.pop("flash_attn", "auto")]
        self.ctx = Context(model, **p)

    def run(self, b: EncBatch, entry: str) -> int:
        from ..batch import Batch
        from ..errors import DecodeError

        try:
            getattr(self.ctx, entry)(Batch(tokens=b["tokens"], pos=b["pos"], seq_ids=b["seq_ids"]))
        except DecodeError as exc:
            return -999 if exc.abort else exc.code
        return 0

    def embeddings(self, i: int) -> np.ndarray | None:
        try:
            return self.ctx.embeddings(i)
        except IndexError:
            return None

    def embeddings_seq(self, s: int) -> np.ndarray | None:
        return self.ctx.embeddings_seq(s)

    def graph(self) -> Any:
        from ..reference.decode import graph_dump

        res = self.ctx._res_active
        return None if res is None else graph_dump(res.gf)

    def close(self) -> None:
        self.ctx.close()


class _Ref:
    def __init__(self, model: Any, cp: dict[str, Any]) -> None:
        from ..reference.decode import RefContext

        p = dict(cp)
        if p.get("pooling_type") is not None:
            p["pooling_type"] = tb.POOLING[p["pooling_type"]]
        else:
            p.pop("pooling_type", None)
        self.ctx = RefContext(model, **p)

    def run(self, b: EncBatch, entry: str) -> int:
        return getattr(self.ctx, entry)(b["tokens"], pos=b["pos"], seq_ids=b["seq_ids"])

    def embeddings(self, i: int) -> np.ndarray | None:
        return self.ctx.embeddings(i)

    def embeddings_seq(self, s: int) -> np.ndarray | None:
        return self.ctx.embeddings_seq(s)

    def graph(self) -> Any:
        return self.ctx.graph()

    def close(self) -> None:
        self.ctx.close()


def run_context(ours: _Ours, ref: _Ref, batches: list[EncBatch], name: str, *, entry: str = "encode",
                n_graphs: int = 1) -> Iterator[Case]:
    """Encode each batch on both sides; yield the code, every vector and the first graphs."""
    pooled = ours.ctx.cparams.pooling_type != 0
    for k, b in enumerate(batches):
        if ours.ctx.memory is not None:  # a decoder: every batch starts from an empty cache
            ours.ctx.memory.clear()
            ref.ctx.memory("clear", 1)
        rc_o, rc_r = ours.run(b, entry), ref.run(b, entry)
        yield Case(f"{name}/b{k}/rc", rc_o, rc_r)
        if rc_r != 0:
            continue
        n = len(b["tokens"])
        if pooled:
            seqs = sorted({s for row in b["seq_ids"] for s in row})
            absent = next(s for s in range(8) if s not in seqs)
            for s in [*seqs, absent]:
                yield Case(f"{name}/b{k}/seq{s}", _rowhash(ours.embeddings_seq(s)),
                           _rowhash(ref.embeddings_seq(s)))
        else:
            for i in [*range(n), n]:  # n: an index without output
                yield Case(f"{name}/b{k}/tok{i}", _rowhash(ours.embeddings(i)), _rowhash(ref.embeddings(i)))
        if k < n_graphs:
            yield Case(f"{name}/b{k}/graph", ours.graph(), ref.graph())


# ---- the corpus -------------------------------------------------------------------------------

SENTENCES = (
    "The cat sits on the mat.",
    "A dog is playing in the park with a red ball.",
    "Embeddings map sentences to vectors; similar meanings end up close together.",
    "llama.cpp runs large language models on ordinary CPUs.",
    "Paris is the capital of France, and Berlin is the capital of Germany.",
    "How do I bake a loaf of sourdough bread at home?",
    "Quantum computers use qubits instead of classical bits.",
    "I love pizza!",
    "The quick brown fox jumps over the lazy dog.",
    "Stock markets fell sharply after the announcement on Tuesday.",
    "Unicode: café, naïve, 東京, emojis 🎉 and symbols ∑ ≠.",
    "Short.",
)

_POOLINGS = ("none", "mean", "cls", "last")


def _configs(opts: Options, spec: tb.BertSpec | None, *, decoder: bool = False
             ) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(label, context params, entry point) for one model (a decoder is only decoded)."""
    poolings: list[str | None] = [None, *_POOLINGS]
    if spec is not None and spec.reranker:
        poolings = [None, "rank", "none", "mean"]
    for i, pooling in enumerate(poolings):
        fa = ("auto", "off", "on")[i % 3]
        threads = (4, 1, 2)[i % 3] if opts.full or i < 3 else 4
        entry = "decode" if i % 2 or decoder else "encode"
        cp = {"embeddings": True, "pooling_type": pooling, "n_seq_max": 4, "flash_attn": fa,
              "n_threads": threads, "n_threads_batch": threads}
        yield f"{pooling or 'model'}-fa{fa}-t{threads}-{entry}", cp, entry
    if spec is not None:  # embeddings off: an encoder still runs, and no getter answers
        yield "noembd", {"embeddings": False, "n_seq_max": 4}, "encode"


def _tiny_runs(opts: Options) -> Iterator[tuple[str, Path, tb.BertSpec | None, list[EncBatch]]]:
    n_batches = 100 if opts.full else 6
    for spec in tb.spec_grid(opts.seed):
        rng = random.Random(f"{opts.seed}-{spec.tag}")
        batches = [random_batch(rng, spec.n_vocab, cls_id=tb.CLS_ID, sep_id=tb.SEP_ID)
                   for _ in range(n_batches)]
        yield f"tiny/{spec.tag}", tiny_path(spec), spec, batches


def _llama_runs(opts: Options) -> Iterator[tuple[str, Path, tb.BertSpec | None, list[EncBatch]]]:
    """A decoder with ``embeddings`` on: the pooling layer on the llama graph, pooled per ubatch."""
    from .decode import tiny_path as llama_path

    rng = random.Random(f"{opts.seed}-llama")
    batches = [random_batch(rng, 40, cls_id=1, sep_id=2) for _ in range(20 if opts.full else 3)]
    yield "llama/q8_0-bias", llama_path("q8_0-bias", opts.seed), None, batches


def _minilm_runs(opts: Options) -> Iterator[tuple[str, Path, tb.BertSpec | None, list[EncBatch]]]:
    from ..model import Model

    path = corpus.minilm_gguf()
    with Model.load(path, vocab_only=True) as m:
        toks = [m.vocab.tokenize(s, add_special=True) for s in SENTENCES]
    rng = random.Random(opts.seed)
    batches = []
    for _ in range(30 if opts.full else 4):
        picks = rng.sample(range(len(toks)), rng.randint(2, 4))
        batches.append(from_sequences(rng, list(range(len(picks))), [toks[p] for p in picks]))
    yield "minilm", path, None, batches


def cases(opts: Options) -> Iterator[Case]:
    from ..model import Model
    from ..reference.decode import RefModel

    yield from convert_cases()
    for name, path, spec, batches in (*_minilm_runs(opts), *_tiny_runs(opts), *_llama_runs(opts)):
        om, rm = Model.load(path), RefModel(str(path))
        try:
            for label, cp, entry in _configs(opts, spec, decoder=name.startswith("llama")):
                ours, ref = _Ours(om, cp), _Ref(rm, cp)
                try:
                    yield from run_context(ours, ref, batches, f"{name}/{label}", entry=entry)
                finally:
                    ours.close()
                    ref.close()
        finally:
            om.close()
            rm.close()


# ---- the converted GGUF -----------------------------------------------------------------------


def convert_cases() -> Iterator[Case]:
    """The converted MiniLM as the reference loader sees it, and its vocab against the
    reference converter's output for the same WordPiece vocab (ggml-vocab-bert-bge.gguf; made
    by an older converter, which also wrote a cls_token_id key: today's gguf-py has no writer
    for it and skips it, as pyggml's converter does)."""
    from gguf import GGUFReader

    from ..reference.decode import RefModel

    path = corpus.minilm_gguf()
    ours = GGUFReader(path)
    with RefModel(str(path)) as rm:
        yield Case("convert/tensors",
                   [[t.name, t.tensor_type.name.lower(), [int(x) for x in t.shape] + [1] * (4 - len(t.shape))]
                    for t in sorted(ours.tensors, key=lambda t: t.name)],
                   [[t["name"], t["type"], t["ne"]] for t in sorted(rm.placement, key=lambda t: t["name"])])
    bge = GGUFReader(corpus.reference_tree() / "models" / "ggml-vocab-bert-bge.gguf")
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                "tokenizer.ggml.token_type", "tokenizer.ggml.token_type_count",
                "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
                "tokenizer.ggml.padding_token_id", "tokenizer.ggml.mask_token_id", "bert.attention.causal",
                "bert.attention.layer_norm_epsilon", "bert.context_length", "bert.embedding_length",
                "bert.feed_forward_length", "bert.attention.head_count", "general.file_type"):
        ref = _field(bge, key)
        if key == "tokenizer.ggml.tokens":
            # the older converter left every bracketed token bare ("[unused0]"); today's adds the
            # word-start mark to every non-control token ("\u2581[unused0]"), as pyggml does
            types = _field(bge, "tokenizer.ggml.token_type")
            ref = ["\u2581" + t if ty == 1 and t.startswith("[") and t.endswith("]") else t
                   for t, ty in zip(ref, types, strict=True)]
        yield Case(f"convert/{key}", _field(ours, key), ref)


def _field(r: Any, key: str) -> Any:
    f = r.fields.get(key)
    if f is None:
        return None
    v = f.contents()
    return v if not isinstance(v, float) else float(np.float32(v))

