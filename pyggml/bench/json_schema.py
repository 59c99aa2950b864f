"""Bench cases of JSON schema -> GBNF: a few schemas of the reference's tests (a large object
with optional properties, integer ranges, patterns, recursive $refs) converted by pyggml and by
the reference (json_schema_to_grammar inside the probe, which also parses the JSON text and
hex-encodes its result: a small fixed cost on its side).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..grammar.json_schema import json_schema_to_grammar
from . import Pair

_SCHEMAS: dict[str, object] = {
    "object": {
        "type": "object",
        "properties": {
            f"p{i}": t
            for i, t in enumerate(
                [
                    {"type": "string"},
                    {"type": "integer", "minimum": -50, "maximum": 12345},
                    {"type": "number"},
                    {"type": "boolean"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
                    {"enum": ["a", "b", 3, None]},
                    {"type": "string", "format": "date-time"},
                    {"const": {"k": [1, 2]}},
                ]
            )
        },
        "required": ["p0", "p2"],
        "additionalProperties": {"type": "string", "maxLength": 8},
    },
    "int_ranges": {
        "anyOf": [
            {"type": "integer", "minimum": lo, "maximum": hi}
            for lo, hi in [(-123456, 987654321), (15, 300), (-5, 10**12), (0, 23)]
        ]
    },
    "patterns": {
        "type": "array",
        "prefixItems": [
            {"type": "string", "pattern": "^(\\([0-9]{1,3}\\))?[0-9]{3}-[0-9]{4} [a-z]+ (ext\\.[0-9]{2,})?$"},
            {"type": "string", "pattern": "^[a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+\\.[a-zA-Z0-9-.]+$"},
            {"type": "string", "pattern": "^(?:a|bc|def){2,5}x?y*z+\\.$"},
        ],
    },
    "recursive_refs": {
        "$ref": "#/$defs/node",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    "meta": {"$ref": "#/$defs/meta"},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
            "meta": {
                "type": "object",
                "properties": {"id": {"type": "integer", "minimum": 1}},
                "additionalProperties": True,
            },
        },
    },
}


def _case(name: str) -> Callable[[], Pair]:
    def factory() -> Pair:
        from ..reference import json_schema as ref

        text = json.dumps(_SCHEMAS[name])
        assert json_schema_to_grammar(text) == ref.json_schema_to_grammar(text)
        return Pair(
            ours=lambda: json_schema_to_grammar(text),
            reference=lambda: ref.json_schema_to_grammar(text),
            note="both sides parse the JSON text",
        )

    return factory


CASES: dict[str, Callable[[], Pair]] = {f"json_schema.{name}": _case(name) for name in _SCHEMAS}
