"""Schemas for the JSON schema -> GBNF parity: the reference's own test schemas and a seeded
generator over every keyword the converter reads (valid, unsupported and invalid ones).

- ``reference_test_schemas()``: the schemas of tests/test-json-schema-to-grammar.cpp, read from
  the C++ source (the ``test({STATUS, name, schema, expected})`` blocks and the schemas passed to
  ``common_json::parse`` in ``main``);
- ``generate(rng)``: one random schema (a Python value; ``json.dumps`` gives the text both sides
  read).  ``$ref`` cycles are generated, except the one shape that overflows the reference's stack
  (an ``allOf`` member reaching a cycle made only of ``$ref``s).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .corpus import FixtureError, reference_tree

TEST_FILE = "tests/test-json-schema-to-grammar.cpp"


@dataclass(frozen=True)
class RefTest:
    name: str
    expect_ok: bool
    schema: str
    expected: str  # the expected grammar ("" for failures and for the extra main() schemas)


_LIT_RE = re.compile(r'R"(?P<d>[^(\s]*)\((?P<raw>.*?)\)(?P=d)"|"(?P<s>(?:[^"\\\n]|\\.)*)"', re.S)
_CPP_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


def _cpp_string(m: re.Match[str]) -> str:
    if m.group("raw") is not None:
        return m.group("raw")
    return re.sub(r"\\(.)", lambda e: _CPP_ESC.get(e.group(1), e.group(1)), m.group("s"))


def _literals(src: str, start: int, count: int) -> tuple[list[str], int]:
    """The next ``count`` string arguments from ``start`` (adjacent literals concatenated)."""
    out: list[str] = []
    pos = start
    while len(out) < count:
        m = _LIT_RE.search(src, pos)
        if m is None:
            raise FixtureError(f"{TEST_FILE}: unexpected end of a test case")
        value = _cpp_string(m)
        pos = m.end()
        while True:  # "a" "b" is one literal
            nxt = re.compile(r"\s*").match(src, pos)
            assert nxt is not None
            m2 = _LIT_RE.match(src, nxt.end())
            if m2 is None:
                break
            value += _cpp_string(m2)
            pos = m2.end()
        out.append(value)
    return out, pos


def _reference_source(path: Path | None, rel: str) -> tuple[Path, str]:
    """``path`` (default: ``rel`` in the reference tree) and its text."""
    if path is None:
        path = reference_tree() / rel
    if not path.is_file():
        raise FixtureError(f"{path} is missing (the reference tree ships it as reference data)")
    return path, path.read_text(encoding="utf-8")


def reference_test_schemas(path: Path | None = None) -> list[RefTest]:
    path, src = _reference_source(path, TEST_FILE)
    tests: list[RefTest] = []
    for m in re.finditer(r"\btest\(\{\s*(SUCCESS|FAILURE)\s*,", src):
        (name, schema, expected), _ = _literals(src, m.end(), 3)
        tests.append(RefTest(name, m.group(1) == "SUCCESS", schema, expected))
    for i, m in enumerate(re.finditer(r"common_json::parse\(\s*R\"", src)):
        (schema,), _ = _literals(src, m.end() - 2, 1)
        tests.append(RefTest(f"main-{i}", True, schema, ""))
    if len(tests) < 50:
        raise FixtureError(f"{path}: only {len(tests)} test schemas found; has the file changed shape?")
    return tests


# Schemas the reference recurses on until its stack overflows (an allOf that inlines a $ref
# cycle); pyggml refuses them with JSONSchemaError("too-deep").
STACK_EXHAUSTING_SCHEMAS: tuple[dict[str, Any], ...] = (
    {"allOf": [{"$ref": "#/$defs/a"}], "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}},
    {
        "$ref": "#/$defs/d",
        "$defs": {
            "d": {
                "type": "object",
                "properties": {"p": {"allOf": [{"$ref": "#/$defs/d"}], "type": "object"}},
            }
        },
    },
)


INTEGRATION_FILE = "tests/test-grammar-integration.cpp"


@dataclass(frozen=True)
class IntegrationTest:
    name: str
    schema: str
    passing: tuple[str, ...]
    failing: tuple[str, ...]


def _call_args(src: str, pos: int) -> list[Any]:
    """The arguments of a C++ call from ``pos`` (just after its "("): string literals (adjacent
    ones concatenated) and brace lists of them; comments skipped."""
    args: list[Any] = []
    stack: list[list[Any]] = [args]
    last_was_literal = False
    while pos < len(src):
        if src.startswith("//", pos):
            pos = src.find("\n", pos)
            pos = len(src) if pos < 0 else pos
            continue
        c = src[pos]
        if c.isspace():
            pos += 1
            continue
        m = _LIT_RE.match(src, pos)
        if m is not None:
            if last_was_literal:
                stack[-1][-1] += _cpp_string(m)
            else:
                stack[-1].append(_cpp_string(m))
            last_was_literal = True
            pos = m.end()
            continue
        last_was_literal = False
        if c == "{":
            stack[-1].append([])
            stack.append(stack[-1][-1])
        elif c == "}":
            stack.pop()
        elif c == ")" and len(stack) == 1:
            return args
        elif c != ",":
            raise FixtureError(
                f"{INTEGRATION_FILE}: unexpected {src[pos : pos + 20]!r} in a test_schema call"
            )
        pos += 1
    raise FixtureError(f"{INTEGRATION_FILE}: unterminated test_schema call")


def integration_test_schemas(path: Path | None = None) -> list[IntegrationTest]:
    """The ``test_schema(desc, schema, passing, failing)`` calls of tests/test-grammar-integration.cpp."""
    path, src = _reference_source(path, INTEGRATION_FILE)
    tests: list[IntegrationTest] = []
    for m in re.finditer(r"\btest_schema\(\s*(?!const\b)", src):
        args = _call_args(src, m.end())
        if len(args) != 4 or not isinstance(args[2], list) or not isinstance(args[3], list):
            raise FixtureError(f"{path}: a test_schema call of an unexpected shape at offset {m.start()}")
        tests.append(IntegrationTest(args[0], args[1], tuple(args[2]), tuple(args[3])))
    if len(tests) < 20:
        raise FixtureError(f"{path}: only {len(tests)} test schemas found; has the file changed shape?")
    return tests


# --- the generator -------------------------------------------------------------------------

_NAMES = [
    "a",
    "b",
    "c",
    "name",
    "id",
    "root",
    "string",
    "number",
    "value",
    "char",
    "date",
    "x-y",
    "with space",
    "é",
    "日本",
    "a.b",
    "item",
    "kv",
    "additional",
    "1",
    "",
    "*",
    "tuple-0",
    'a"q',
    "back\\slash",
    "tab\t",
    "-rest",
    "dot",
    "uuid",
    "null",
]
_SAFE_NAMES = [n for n in _NAMES if not set(n) & set('"\\\t]-*')]
_FORMATS = ["date", "time", "date-time", "uuid", "uuid1", "uuid5", "uuid6", "email", "uri", 7]
_STRINGS = ["", "a", "foo", "é", "日本", 'q"uote', "back\\slash", "new\nline", "\t", "\x01", "]", "-"]
_FLOATS = [0.5, -1.25, 1e16, 1e15, 123456.75, 1e-5, 0.0001, -0.0, 2.5e-300, 1.5e300, 100.0, 0.1]


def _value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth < 2 and r < 0.12:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 2 and r < 0.22:
        return {rng.choice(_NAMES): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if r < 0.45:
        return rng.choice(_STRINGS)
    if r < 0.65:
        return rng.choice(
            [0, 1, -1, 42, 2**63 - 1, -(2**63), 2**64 - 1, 10**30, rng.randint(-(10**6), 10**6)]
        )
    if r < 0.8:
        return rng.choice(_FLOATS)
    return rng.choice([None, True, False])


def _int_bound(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.55:
        return rng.randint(-120, 1200)
    if r < 0.75:
        return rng.choice([0, 1, 9, 10, 99, 100, 1000, -1, -10, -99, 123456, -987654])
    if r < 0.85:
        return rng.randint(-(10**12), 10**12)
    if r < 0.93:
        return rng.choice([0.5, -2.5, 10.0, 3.75, -0.5])
    return rng.choice([2**63 - 1, -(2**63), 2**63, 2**64 - 1, 1e300, -1e300, 9.3e18])


_ATOMS = [
    "a",
    "b",
    "z",
    "0",
    "9",
    "-",
    "_",
    " ",
    "é",
    "\\.",
    "\\-",
    "\\x41",
    "\\u00e9",
    "\\n",
    "\\t",
    "\\\\",
    '"',
    "\\(",
    "\\[",
    "\\{",
    "\\*",
    "\\|",
    ".",
]
_CLASSES = ["[a-z]", "[0-9]", "[a-zA-Z0-9_]", "[^a]", "[\\-a]", "[a\\]]", "[\\x41-\\x5A]", "[.]", "[é-ü]"]
_BAD_PIECES = ["\\d", "\\w", "(?=a)", "(?<n>a)", "^", "$", "]", "}", "{2,3,4}", "{x}", "[\\d]", "\\"]


def _regex(rng: random.Random, depth: int = 0) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if depth < 3 and r < 0.15:
            piece = rng.choice(["(", "(?:"]) + _regex(rng, depth + 1) + ")"
        elif r < 0.3:
            piece = rng.choice(_CLASSES)
        elif r < 0.35:
            piece = "|"
        elif r < 0.38:
            piece = rng.choice(_BAD_PIECES)
        else:
            piece = rng.choice(_ATOMS)
        q = rng.random()
        if q < 0.12:
            piece += rng.choice("*+?")
        elif q < 0.22:
            a = rng.randint(0, 4)
            piece += rng.choice(
                [f"{{{a}}}", f"{{{a},}}", f"{{{a},{a + rng.randint(0, 3)}}}", f"{{,{a + 1}}}"]
            )
        parts.append(piece)
    return "".join(parts)


def _pattern(rng: random.Random) -> str:
    body = _regex(rng)
    r = rng.random()
    if r < 0.85:
        return "^" + body + "$"
    if r < 0.9:
        return body
    return rng.choice(["^(a$", "^a)$", "^[ab$", "^*a$", "^a\\$", "^{2}$", "^$", "^", ""])


class _Gen:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.defs: dict[str, Any] = {}
        self.def_names = [f"d{i}" for i in range(rng.randint(0, 3))] + (
            ["a b", "x/y"] if rng.random() < 0.1 else []
        )

    def ref(self) -> dict[str, Any]:
        rng = self.rng
        if not self.def_names or rng.random() < 0.05:
            return {"$ref": rng.choice(["#/$defs/missing", "http://x/y", "#/properties/0", "#/", 5])}
        return {"$ref": "#/$defs/" + rng.choice(self.def_names)}

    def object(self, depth: int, names: list[str]) -> dict[str, Any]:
        rng = self.rng
        s: dict[str, Any] = {}
        if rng.random() < 0.8:
            s["type"] = "object"
        props = {rng.choice(names): self.schema(depth + 1) for _ in range(rng.randint(0, 4))}
        if props or rng.random() < 0.3:
            s["properties"] = props
        if props and rng.random() < 0.7:
            s["required"] = rng.sample(list(props), rng.randint(0, len(props)))
            if rng.random() < 0.1:
                s["required"].append(rng.choice(["zz", 3]))
        r = rng.random()
        if r < 0.35:
            s["additionalProperties"] = False
        elif r < 0.5:
            s["additionalProperties"] = True
        elif r < 0.65:
            s["additionalProperties"] = self.schema(depth + 1)
        elif r < 0.67:
            s["additionalProperties"] = rng.choice([1, "no", None])
        return s

    def schema(self, depth: int = 0) -> Any:
        rng = self.rng
        r = rng.random()
        leaf = depth >= 3
        if r < 0.02:
            return rng.choice(
                [
                    {"type": "kaboom"},
                    {"type": 123},
                    {"type": []},
                    {"enum": []},
                    {"enum": 3},
                    {"anyOf": []},
                    {"oneOf": {}},
                    {"allOf": 5},
                    {"properties": []},
                    7,
                    [],
                    {"type": "array", "minItems": -1},
                    {"type": "string", "maxLength": 1.5},
                    {"type": "integer", "minimum": "3"},
                    {"type": "string", "format": 3},
                    {"type": "string", "pattern": 3},
                    {"type": "array", "items": 3},
                ]
            )
        if r < 0.25:
            t = rng.choice(["string", "number", "integer", "boolean", "null"])
            return {"type": t}
        if r < 0.4:
            s: dict[str, Any] = {"type": "integer"} if rng.random() < 0.9 else {}
            for key in rng.sample(
                ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"], rng.randint(1, 2)
            ):
                s[key] = _int_bound(rng)
            if "type" not in s:
                s["type"] = "integer"
            if (
                "minimum" in s
                and "maximum" in s
                and rng.random() < 0.9
                and all(isinstance(s[k], int) for k in ("minimum", "maximum"))
            ):
                lo, hi = sorted((s["minimum"], s["maximum"]))
                s["minimum"], s["maximum"] = lo, hi
            return s
        if r < 0.5:
            s = {"type": "string"} if rng.random() < 0.8 else {}
            x = rng.random()
            if x < 0.45:
                s["pattern"] = _pattern(rng)
            elif x < 0.7:
                s["format"] = rng.choice(_FORMATS)
            lo = rng.randint(0, 5)
            if rng.random() < 0.4:
                s["minLength"] = lo
            if rng.random() < 0.4:
                s["maxLength"] = lo + rng.randint(0, 5) if rng.random() < 0.95 else rng.randint(0, 2**31)
            return s
        if r < 0.57:
            return {"const": _value(rng)}
        if r < 0.63:
            s = {"enum": [_value(rng) for _ in range(rng.randint(1, 4))]}
            if rng.random() < 0.3:
                s["type"] = rng.choice(["string", "integer", ["string", "null"]])
            return s
        if r < 0.68:
            return self.ref()
        if leaf:
            return rng.choice([{}, {"type": "string"}, {"type": "object"}, {"type": "array"}])
        if r < 0.78:
            return self.object(depth, _NAMES if rng.random() < 0.3 else _SAFE_NAMES)
        if r < 0.86:
            s = {"type": "array"} if rng.random() < 0.85 else {}
            x = rng.random()
            if x < 0.6:
                s["items"] = self.schema(depth + 1)
            elif x < 0.8:
                s[rng.choice(["items", "prefixItems"])] = [
                    self.schema(depth + 1) for _ in range(rng.randint(0, 3))
                ]
            lo = rng.randint(0, 3)
            if rng.random() < 0.5:
                s["minItems"] = lo
            if rng.random() < 0.4:
                s["maxItems"] = lo + rng.randint(0, 3)
            if not s:
                s["items"] = {}
            return s
        if r < 0.92:
            key = rng.choice(["anyOf", "oneOf"])
            s = {key: [self.schema(depth + 1) for _ in range(rng.randint(1, 3))]}
            if rng.random() < 0.2:
                s["type"] = "object"
            return s
        if r < 0.97:
            members: list[Any] = []
            for _ in range(rng.randint(1, 3)):
                y = rng.random()
                if y < 0.45:
                    members.append(self.object(depth, _SAFE_NAMES))
                elif y < 0.6:
                    members.append(
                        {"enum": [rng.choice(["a", "b", 1, 2, None]) for _ in range(rng.randint(1, 3))]}
                    )
                elif y < 0.75:
                    members.append({"anyOf": [self.object(depth + 1, _SAFE_NAMES), {"enum": ["a", 1]}]})
                elif y < 0.85 and self.def_names:
                    members.append({"$ref": "#/$defs/" + rng.choice(self.def_names)})
                else:
                    members.append(self.schema(depth + 1))
            s = {"allOf": members}
            if rng.random() < 0.4:
                s["type"] = rng.choice(["object", "string"])
            return s
        return {
            "type": rng.sample(["string", "integer", "null", "object", "array", "boolean"], rng.randint(1, 3))
        }

    def document(self) -> Any:
        root = self.schema()
        if self.def_names and isinstance(root, dict):
            # a definition is a plain schema or an object that may refer back (recursion);
            # never a bare {"$ref"}: a cycle of bare refs under allOf overflows the reference
            defs = {}
            for name in self.def_names:
                d = self.schema(1)
                while isinstance(d, dict) and "$ref" in d:
                    d = self.schema(1)
                defs[name] = d
            root = dict(root)
            root["$defs"] = defs
        return root


def generate(rng: random.Random) -> Any:
    return _Gen(rng).document()


def generated_texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [json.dumps(generate(rng), ensure_ascii=False) for _ in range(n)]
