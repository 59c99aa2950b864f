"""Token-level grammar parity on the llama-spm vocabulary (the fast one to load): apply over
the whole vocabulary during a constrained generation, ``<[id]>`` / ``<text>`` token references
(pyggml's tokenizer against the reference's), and lazy grammars with trigger tokens and
trigger patterns.  The SmolLM2 sweep runs in ``pyggml parity grammar --full``."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pyggml.grammar import Grammar
from pyggml.grammar.tokens import TokenIndex
from pyggml.parity import Options, corpus, first_difference
from pyggml.parity import grammar as pg
from pyggml.reference import grammar as ref
from pyggml.reference import model as ref_model


@pytest.fixture(scope="module")
def spm():
    [path] = [p for p in corpus.vocab_ggufs() if p.name == "ggml-vocab-llama-spm.gguf"]
    handle, _, log = ref_model.load(str(path), vocab_only=True)
    assert handle != ref.ffi.NULL, log[-300:]
    vocab = pg.TableVocab(*ref.vocab_pieces(handle))
    n = len(vocab.pieces)
    yield pg._VocabCtx("llama-spm", handle, vocab, TokenIndex(vocab, n), np.arange(n, dtype=np.int32)), path
    ref_model.free(handle)


def _check(cases):
    n = 0
    for c in cases:
        n += 1
        assert c.ours == c.reference, (c.name, first_difference(c.ours, c.reference))
    return n


def test_generation_json(spm):
    ctx, _ = spm
    text = dict(pg.grammar_files())["json.gbnf"]
    ours = Grammar.from_text(text, vocab=ctx.vocab)
    theirs = ref.Grammar(text, model=ctx.handle)
    assert _check(pg._generation(ctx, random.Random(5), "t", ours, theirs, 12, walk_first=True)) >= 2
    theirs.close()


def test_token_references(spm):
    from pyggml.vocab import Vocab

    ctx, path = spm
    # every grammar of the table (the default slice takes one in four)
    cases = pg._tokref_cases(Options(full=True), random.Random(2), ctx, Vocab.from_gguf(str(path)))
    assert _check(cases) > 60


def test_lazy_triggers(spm):
    ctx, _ = spm
    text = dict(pg.grammar_files())["json.gbnf"]
    # every trigger configuration (patterns, tokens, both), one round each
    opts = Options(full=True)
    assert _check(pg._lazy_cases(opts, random.Random(3), ctx, text, rounds=1)) > 20
