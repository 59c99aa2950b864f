"""The token trie (pyggml.grammar.tokens) equals the reference-shaped candidate walk, and the
grammar sampler plugs into a sampling chain."""

from __future__ import annotations

import random

import numpy as np

from pyggml.grammar import Grammar, GrammarSampler
from pyggml.grammar.tokens import TokenIndex, apply_all
from pyggml.parity.grammar import TableVocab, grammar_files, walk

PIECES = [b"a", b"b", b"ab", b"", b"\0x", b"</s>", b"\xc3", b"\xa9", b"\xc3\xa9", b"\xe4\xb8",
          b"\xe4\xb8\xad", b"{", b"}", b'"', b'"a', b"1", b"12", b" ", b"\n", b"true", b"\x80", b"\xff",
          b"[", b"]", b",", "中文".encode(), "é1".encode(), b"null", b"-", b"e"]
EOG = [p == b"</s>" for p in PIECES]


def _vocab() -> TableVocab:
    return TableVocab(PIECES, EOG)


def test_trie_matches_walk_on_random_states():
    vocab = _vocab()
    index = TokenIndex(vocab, len(PIECES))
    rng = random.Random(3)
    texts = dict(grammar_files())
    grammars = [texts["json.gbnf"], texts["arithmetic.gbnf"], 'root ::= ([a-b] | "é" | <[2]> | !<[0]>)+',
                'root ::= [^a]* "中"', 'root ::= "a" | ""']
    for text in grammars:
        for _ in range(15):
            g = Grammar.from_text(text, vocab=vocab)
            try:
                g.accept_str(walk(rng, g, rng.randint(0, 6)))
            except Exception:
                continue
            expect = g.apply(list(range(len(PIECES))))
            assert apply_all(g, index).tolist() == expect, text


def test_sampler_in_a_chain():
    from pyggml.sampling import Candidates, Chain

    vocab = _vocab()
    smpl = GrammarSampler(vocab, 'root ::= "a" "b"', n_vocab=len(PIECES))
    chain = Chain([smpl])
    cur = Candidates.from_logits(np.zeros(len(PIECES), np.float32))
    chain.apply(cur)
    finite = [int(t) for t, lg in zip(cur.ids, cur.logits, strict=True) if np.isfinite(lg)]
    assert finite == [0, 2]
    chain.accept(0)
    cur = Candidates.from_logits(np.zeros(len(PIECES), np.float32))
    chain.apply(cur)
    assert [int(t) for t, lg in zip(cur.ids, cur.logits, strict=True) if np.isfinite(lg)] == [1]
    clone = smpl.clone()
    smpl.reset()
    assert clone.grammar.stacks != smpl.grammar.stacks


def test_long_pieces_do_not_recurse():
    long_piece = b"a" * 5000
    vocab = TableVocab([b"a", long_piece, b"b" + long_piece], [False] * 3)
    g = Grammar.from_text('root ::= "a"*', vocab=vocab)
    assert g.apply([0, 1, 2]) == [True, True, False]
    index = TokenIndex(vocab, 3)
    assert apply_all(g, index).tolist() == [True, True, False]


def test_single_candidate_walk_matches_batched(monkeypatch):
    from pyggml.grammar import runtime

    vocab = _vocab()
    rng = random.Random(5)
    text = dict(grammar_files())["json.gbnf"]
    for _ in range(10):
        g = Grammar.from_text(text, vocab=vocab)
        g.accept_str(walk(rng, g, rng.randint(0, 8)))
        ids = list(range(len(PIECES)))
        batched = g.apply(ids)
        monkeypatch.setattr(runtime, "_BATCH_MAX_CPS", 0)
        assert g.apply(ids) == batched
        monkeypatch.setattr(runtime, "_BATCH_MAX_CPS", 200)
