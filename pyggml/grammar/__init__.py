"""GBNF grammars: the parser, the pushdown runtime and the grammar sampler.

Mirrors llama.cpp's src/llama-grammar.cpp (and the grammar sampler of src/llama-sampler.cpp)::

    from pyggml.grammar import Grammar, parse
    g = Grammar.from_text(open("json.gbnf").read())
    g.accept_str('{"a": 1}')
    g.is_complete()

Errors are ``pyggml.errors.GrammarError`` (nothing is printed).
"""

from __future__ import annotations

from .json_schema import json_schema_to_grammar  # JSON schema -> GBNF (common/json-schema-to-grammar)
from .parser import MAX_REPETITION_THRESHOLD, GreType, ParsedGrammar, parse
from .runtime import Grammar, Rules, decode_utf8
from .sampler import GrammarSampler

__all__ = ["MAX_REPETITION_THRESHOLD", "GreType", "Grammar", "GrammarSampler", "ParsedGrammar",
           "Rules", "decode_utf8", "json_schema_to_grammar", "parse"]
