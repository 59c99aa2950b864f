"""The grammar sampler: llama.cpp src/llama-sampler.cpp llama_sampler_init_grammar_impl.

A chain stage (``pyggml.sampling.SamplerProtocol``) that sets -inf on the logits of tokens
the grammar cannot continue with (``apply``) and advances the grammar with the chosen token
(``accept``).  ``reset`` re-creates the grammar from its text, as
llama_sampler_grammar_reset does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .runtime import Grammar, GrammarVocab
from .tokens import TokenIndex, apply_all

# below this many candidates the reference-shaped walk beats a pass over the whole trie
_TRIE_MIN = 256


class GrammarSampler:
    """``apply(cur)`` takes ``pyggml.sampling.Candidates`` (``ids``, ``logits`` columns) and
    replaces ``cur.logits`` with a copy where rejected tokens are -inf (samplers never write
    into the arrays they were given); ``accept(token)`` advances the grammar.

    ``n_vocab`` enables the per-vocabulary token trie (``TokenIndex``, built once here and
    shared by clones); pass a prebuilt ``index`` to share it between samplers."""

    name = "grammar"

    def __init__(self, vocab: GrammarVocab, grammar_str: str | bytes, grammar_root: str = "root", *,
                 lazy: bool = False, trigger_patterns: Sequence[str] = (),
                 trigger_tokens: Sequence[int] = (), n_vocab: int | None = None,
                 index: TokenIndex | None = None) -> None:
        self.vocab = vocab
        self.grammar_str = grammar_str
        self.grammar_root = grammar_root
        self._lazy = lazy
        self._patterns = list(trigger_patterns)
        self._tokens = list(trigger_tokens)
        self.grammar = self._new()
        self.index = index if index is not None or n_vocab is None else TokenIndex(vocab, n_vocab)

    def _new(self) -> Grammar:
        return Grammar.from_text(self.grammar_str, self.grammar_root, vocab=self.vocab, lazy=self._lazy,
                                 trigger_patterns=self._patterns, trigger_tokens=self._tokens)

    def apply(self, cur: Any) -> None:
        ids = np.asarray(cur.ids)
        if self.index is not None and ids.size >= _TRIE_MIN:
            keep = apply_all(self.grammar, self.index)[ids]
        else:
            keep = np.asarray(self.grammar.apply(ids.tolist()), dtype=bool)
        if not keep.all():
            cur.logits = np.where(keep, cur.logits, np.float32(-np.inf)).astype(np.float32)

    def accept(self, token: int) -> None:
        self.grammar.accept(int(token))

    def reset(self) -> None:
        old = self.grammar
        self.grammar = self._new()
        # same text, same rules: keep what the rule-only caches learnt
        self.grammar._advance_cache = old._advance_cache
        self.grammar._accept_cache = old._accept_cache
        self.grammar._trie_cache = old._trie_cache

    def clone(self) -> GrammarSampler:
        out = GrammarSampler.__new__(GrammarSampler)
        out.__dict__.update(self.__dict__)
        out.grammar = self.grammar.clone()
        return out
