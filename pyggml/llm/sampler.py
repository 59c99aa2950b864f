"""The reference tools' sampler: common/sampling.cpp ``common_sampler``.

A ``common_sampler`` is the chain ``common_sampler_init`` builds (``pyggml.sampling.
default_chain``) plus an optional grammar kept *outside* the chain:

* ``sample(logits)`` (common_sampler_sample, grammar_first=false): run the chain on all
  candidates; if the grammar rejects the pick, rebuild the candidates, apply the grammar, then
  the chain again (grammar-based rejection sampling: the chain's RNG draws twice then, as the
  reference's does).  It does not accept.
* ``accept(token, is_generated)`` (common_sampler_accept): the grammar sees generated tokens
  only, the chain (penalty history, RNG-free state) sees every token.

Not here: the reasoning-budget sampler, llguidance grammars, backend (in-graph) sampling.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GrammarError, SamplerError
from ..grammar import GrammarSampler
from ..grammar.tokens import TokenIndex, VocabPieces
from ..sampling import Candidates, SamplingParams, default_chain


@dataclass(frozen=True)
class Trigger:
    """common_grammar_trigger: ``kind`` is "word", "pattern", "pattern_full" or "token"."""

    kind: str
    value: str = ""
    token: int = -1


# common/common.cpp regex_escape: these ECMAScript metacharacters get a backslash
_REGEX_SPECIAL = re.compile(r"[.^$|()*+?\[\]{}\\]")


def _trigger_patterns(triggers: Sequence[Trigger]) -> tuple[list[str], list[int]]:
    """common_sampler_init's trigger translation: words are escaped, full patterns anchored
    (an empty one becomes "^$"), tokens kept apart."""
    patterns: list[str] = []
    tokens: list[int] = []
    for t in triggers:
        if t.kind == "word":
            patterns.append(_REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), t.value))
        elif t.kind == "pattern":
            patterns.append(t.value)
        elif t.kind == "pattern_full":
            p = t.value
            anchored = ("" if p[:1] == "^" else "^") + p + ("" if p[-1:] == "$" else "$")
            patterns.append(anchored if p else "^$")
        elif t.kind == "token":
            tokens.append(int(t.token))
        else:  # the reference asserts on an unknown trigger type
            raise SamplerError(f"unknown grammar trigger type {t.kind!r}")
    return patterns, tokens


class CommonSampler:
    """``common_sampler_init(model, params)`` over ``vocab`` (a ``pyggml.vocab.Vocab``).

    ``grammar``: GBNF text (user grammar: nothing is prefilled), lazy with ``triggers`` when
    ``grammar_lazy``; ``grammar_vocab`` / ``grammar_index`` (the vocabulary's pieces and token
    trie) may be shared between samplers of one vocabulary, they are built once otherwise.
    Raises ``SamplerError`` where the reference throws ("failed to parse grammar", invalid
    penalties)."""

    def __init__(self, vocab: Any, params: SamplingParams, *, grammar: str | None = None,
                 grammar_lazy: bool = False, triggers: Sequence[Trigger] = (),
                 grammar_vocab: VocabPieces | None = None, grammar_index: TokenIndex | None = None) -> None:
        self.params = params
        self.n_vocab = vocab.n_tokens
        self.chain = default_chain(self.n_vocab, params, vocab=vocab)
        self.grammar: GrammarSampler | None = None
        if grammar:
            patterns, tokens = _trigger_patterns(triggers)
            gv = grammar_vocab or VocabPieces(vocab)
            try:
                self.grammar = GrammarSampler(gv, grammar, "root", lazy=grammar_lazy,
                                              trigger_patterns=patterns, trigger_tokens=tokens,
                                              index=grammar_index or TokenIndex(gv, self.n_vocab))
            except GrammarError as exc:
                raise SamplerError(f"failed to parse grammar: {exc}") from exc
    def sample(self, logits: np.ndarray) -> int:
        cur = Candidates.of_row(logits)  # common_sampler::set_logits: all tokens, id order
        self.chain.apply(cur)
        token = self._selected(cur)
        if self.grammar is None:
            return token
        one = Candidates(np.array([token], np.int32), np.ones(1, np.float32), np.zeros(1, np.float32))
        self.grammar.apply(one)
        if one.logits[0] != -np.inf:
            return token
        cur = Candidates.of_row(logits)
        self.grammar.apply(cur)
        self.chain.apply(cur)
        return self._selected(cur)

    @staticmethod
    def _selected(cur: Candidates) -> int:
        if not 0 <= cur.selected < cur.size:  # the reference asserts here
            raise SamplerError("no selected token during sampling - check your sampling configuration")
        return int(cur.ids[cur.selected])

    def accept(self, token: int, is_generated: bool) -> None:
        if self.grammar is not None and is_generated:
            self.grammar.accept(token)
        self.chain.accept(token)

    def reset(self) -> None:
        if self.grammar is not None:
            self.grammar.reset()
        self.chain.reset()
