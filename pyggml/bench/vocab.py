"""Bench of the tokenizers: tokenize/detokenize short (~50 B) and long (~100 KB) mixed text,
and vocabulary load, pyggml.vocab against llama_tokenize & co on the same vocab-only load."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from pathlib import Path

from ..parity import corpus
from ..parity.vocab import BUILTIN
from . import Pair

SHORT = "Hello world! It's 3.14 o'clock, über-fast 🦙 tokens.\n"


def long_text(n_bytes: int = 100_000, seed: int = 0) -> str:
    """Mixed text: the reference's own tokenizer test inputs and our built-in corpus, shuffled."""
    inp = corpus.reference_tree() / "models" / "ggml-vocab-llama-bpe.gguf.inp"
    pieces = inp.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n") + BUILTIN
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < n_bytes:
        p = rng.choice(pieces)
        out.append(p)
        size += len(p.encode()) + 1
    return " ".join(out)


def _vocab_path(name: str) -> Path:
    from ..parity.vocab import EXTRA_VOCABS  # converted, derived and synthesized vocabularies

    if name in EXTRA_VOCABS:
        return EXTRA_VOCABS[name]()
    return corpus.reference_tree() / "models" / f"ggml-vocab-{name}.gguf"


def _tokenize(name: str, text: str, cold: bool = False) -> Callable[[], Pair]:
    """``cold``: pyggml's per-word cache is emptied before every call (the warm numbers
    repeat one text, so after the first round every word comes from that cache)."""

    def factory() -> Pair:
        from ..reference.vocab import RefVocab
        from ..vocab import Vocab

        path = _vocab_path(name)
        ours = Vocab.from_gguf(path)
        ref = RefVocab(path)
        data = text.encode()
        if ours.tokenize(data) != ref.tokenize(data, True, False):
            raise RuntimeError(f"{name}: the two sides disagree on the bench text")
        def run_ours() -> object:
            if cold:
                ours._word_cache.clear()
                plamo = getattr(ours, "_plamo2", None)
                if plamo is not None:
                    plamo.cache.clear()
            return ours.tokenize(data)

        return Pair(
            ours=run_ours,
            reference=lambda: ref.tokenize(data, True, False),
            note=f"{len(data)} bytes, add_special" + (", cold word cache" if cold else ""),
        )

    return factory


def _detokenize(name: str, text: str) -> Callable[[], Pair]:
    def factory() -> Pair:
        from ..reference.vocab import RefVocab
        from ..vocab import Vocab

        path = _vocab_path(name)
        ours = Vocab.from_gguf(path)
        ref = RefVocab(path)
        ids = ref.tokenize(text.encode(), True, False)
        return Pair(
            ours=lambda: ours.detokenize_bytes(ids),
            reference=lambda: ref.detokenize(ids),
            note=f"{len(ids)} tokens",
        )

    return factory


def _load(name: str) -> Callable[[], Pair]:
    def factory() -> Pair:
        from ..reference.vocab import RefVocab
        from ..vocab import Vocab

        path = _vocab_path(name)

        def reference() -> object:
            RefVocab(path).close()
            return None

        return Pair(
            ours=lambda: Vocab.from_gguf(path),
            reference=reference,
            note="vocab-only load (reference: llama_model_load_from_file vocab_only)",
        )

    return factory


_LONG = None


def _long() -> str:
    global _LONG
    if _LONG is None:
        _LONG = long_text()
    return _LONG


def _lazy_long(kind: Callable[..., Callable[[], Pair]], name: str) -> Callable[[], Pair]:
    return lambda: kind(name, _long())()


CASES: dict[str, Callable[[], Pair]] = {}
# one vocabulary per vocab type (two for BPE: a custom splitter and a regex-list one)
for _name, _label in (
    ("llama-spm", "spm-llama"),
    ("smollm2", "bpe-smollm2"),
    ("qwen2", "bpe-qwen2"),
    ("bert-bge", "wpm-bert"),
    ("nomic-bert-moe", "ugm-nomic"),
    ("rwkv-world", "rwkv-world"),
    ("plamo2-synth", "plamo2-synth"),
    ("hybriddna-gpt-2", "bpe-hybriddna"),
    ("whitespace-gpt-2", "bpe-whitespace"),
    ("type-test", "test"),
):
    CASES[f"vocab-tokenize-short-{_label}"] = _tokenize(_name, SHORT)
    CASES[f"vocab-tokenize-long-{_label}"] = _lazy_long(_tokenize, _name)
    CASES[f"vocab-tokenize-long-cold-{_label}"] = _lazy_long(functools.partial(_tokenize, cold=True), _name)
    CASES[f"vocab-detokenize-short-{_label}"] = _detokenize(_name, SHORT)
    CASES[f"vocab-detokenize-long-{_label}"] = _lazy_long(_detokenize, _name)
CASES["vocab-load-smollm2"] = _load("smollm2")
CASES["vocab-load-gemma3"] = _load("gemma3")
CASES["vocab-load-llama-spm"] = _load("llama-spm")
