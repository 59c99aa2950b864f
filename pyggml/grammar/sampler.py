"""The grammar sampler: llama.cpp src/llama-sampler.cpp llama_sampler_init_grammar_impl.

A chain stage that sets -inf on the logits of tokens the grammar cannot continue with
(``apply``) and advances the grammar with the chosen token (``accept``).  ``reset``
re-creates the grammar from its text, as llama_sampler_grammar_reset does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .runtime import Grammar, GrammarVocab


class GrammarSampler:
    """``apply(cur)`` takes candidates with ``ids`` (token ids) and ``logits`` (float array,
    changed in place) attributes -- or a dict with those keys; ``accept(token)`` advances."""

    name = "grammar"

    def __init__(self, vocab: GrammarVocab, grammar_str: str | bytes, grammar_root: str = "root", *,
                 lazy: bool = False, trigger_patterns: Sequence[str] = (),
                 trigger_tokens: Sequence[int] = ()) -> None:
        self.vocab = vocab
        self.grammar_str = grammar_str
        self.grammar_root = grammar_root
        self._lazy = lazy
        self._patterns = list(trigger_patterns)
        self._tokens = list(trigger_tokens)
        self.grammar = self._new()

    def _new(self) -> Grammar:
        return Grammar.from_text(self.grammar_str, self.grammar_root, vocab=self.vocab, lazy=self._lazy,
                                 trigger_patterns=self._patterns, trigger_tokens=self._tokens)

    def apply(self, cur: Any) -> None:
        ids = cur["ids"] if isinstance(cur, dict) else cur.ids
        logits = cur["logits"] if isinstance(cur, dict) else cur.logits
        keep = self.grammar.apply([int(t) for t in ids])
        logits[~np.asarray(keep, dtype=bool)] = -np.inf

    def accept(self, token: int) -> None:
        self.grammar.accept(int(token))

    def reset(self) -> None:
        self.grammar = self._new()

    def clone(self) -> GrammarSampler:
        out = GrammarSampler.__new__(GrammarSampler)
        out.__dict__.update(self.__dict__)
        out.grammar = self.grammar.clone()
        return out
