"""Bench cases of the GBNF grammar: parse each reference grammar file, accept a JSON document
character by character, and the candidates filter over the whole SmolLM2 vocabulary at
representative states of json.gbnf, arithmetic.gbnf and c.gbnf.

The reference side runs inside the probe: parse includes dumping the rule table to JSON;
accept runs llama_grammar_accept_str per character in one probe call; apply runs
llama_grammar_apply_impl over preallocated buffers.  pyggml's apply uses its per-vocabulary
token trie (built once, outside the timing).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

from ..grammar import Grammar, parse
from ..grammar.tokens import TokenIndex, apply_all
from . import Pair

JSON_DOC = ('{"name": "pyggml", "version": [0, 1, 2], "ok": true, "ratio": -1.25e-3, '
            '"nested": {"list": [null, false, "a\\u00e9\\n", {"k": "v"}], "empty": {}}, '
            '"text": "The quick brown fox jumps over the lazy dog."}')


@functools.cache
def _files() -> dict[str, bytes]:
    from ..parity.grammar import grammar_files

    return dict(grammar_files())


def _parse_case(name: str) -> Callable[[], Pair]:
    def factory() -> Pair:
        from ..reference import grammar as ref

        text = _files()[name]
        return Pair(ours=lambda: parse(text), reference=lambda: ref.parse_outcome(text),
                    note="reference includes the JSON dump of its rules")
    return factory


def _accept_json(warm: bool) -> Callable[[], Pair]:
    def factory() -> Pair:
        from ..reference import grammar as ref

        text = _files()["json.gbnf"]
        chars = list(JSON_DOC)
        doc = JSON_DOC.encode()
        base = Grammar.from_text(text)
        base_ref = ref.Grammar(text)

        def ours() -> None:
            g = base.clone()
            if not warm:  # fresh rule-only caches: every transition computed
                g._advance_cache, g._accept_cache = {}, {}
            for ch in chars:
                g.accept_str(ch)

        def theirs() -> None:
            g = base_ref.clone()
            g.accept_chars(doc)
            g.close()

        note = f"clone + {len(chars)} chars, " + ("transition caches kept across runs" if warm
                                                  else "fresh caches")
        return Pair(ours=ours, reference=theirs, note=note)
    return factory


@functools.cache
def _vocab():
    from ..parity import corpus
    from ..parity.grammar import TableVocab
    from ..reference import grammar as ref
    from ..reference import model as ref_model

    handle, _, log = ref_model.load(str(corpus.smollm2()), vocab_only=True)
    if handle == ref.ffi.NULL:
        raise corpus.FixtureError(f"the reference could not load SmolLM2: {log[-300:]}")
    vocab = TableVocab(*ref.vocab_pieces(handle))
    return handle, vocab, TokenIndex(vocab, len(vocab.pieces))


# (grammar file, seed of the random walk giving the state, walk length)
APPLY_STATES = {
    "json-start": ("json.gbnf", None, 0),
    "json-in-string": ("json.gbnf", '{"key": "some te', None),
    "json-after-value": ("json.gbnf", '{"a": 12', None),
    "arithmetic-mid": ("arithmetic.gbnf", "(1+2)*", None),
    "c-walk": ("c.gbnf", 3, 12),
}


def _apply_case(state: str) -> Callable[[], Pair]:
    def factory() -> Pair:
        from ..parity.grammar import walk
        from ..reference import grammar as ref

        handle, vocab, index = _vocab()
        gname, arg, length = APPLY_STATES[state]
        text = _files()[gname]
        ours_g = Grammar.from_text(text, vocab=vocab)
        prefix = arg if isinstance(arg, str) else ""
        if isinstance(arg, int):
            prefix = walk(random.Random(arg), ours_g, length)
        ours_g.accept_str(prefix)
        theirs = ref.Grammar(text, model=handle)
        theirs.accept(0, 0, prefix.encode())
        n = len(vocab.pieces)
        ids = ref.ffi.new("int32_t[]", list(range(n)))
        keep = ref.ffi.new("uint8_t[]", n)
        def ours() -> None:
            # the stack-set transitions learnt by earlier calls are dropped: every call walks
            # the trie from scratch (the per-vocabulary trie itself is built once)
            ours_g._trie_cache.clear()
            apply_all(ours_g, index)

        return Pair(ours=ours, reference=lambda: theirs.apply_keep(ids, keep),
                    note=f"{n} tokens after {prefix!r}, transition cache cleared per call")
    return factory


CASES: dict[str, Callable[[], Pair]] = {
    **{f"grammar.parse.{name.removesuffix('.gbnf')}": _parse_case(name)
       for name in ("json.gbnf", "c.gbnf", "arithmetic.gbnf", "chess.gbnf", "japanese.gbnf")},
    "grammar.accept.json_doc": _accept_json(False),
    "grammar.accept.json_doc_warm": _accept_json(True),
    **{f"grammar.apply.{state}": _apply_case(state) for state in APPLY_STATES},
}
