"""JSON schema -> GBNF, producing the reference's text for the same schema.

llama.cpp: common/json-schema-to-grammar.cpp json_schema_to_grammar and
common_chat_schema_converter.  The schema is first read into the reference's typed tree
(``json_schema_doc``), then visited: every rule goes through ``_add_rule`` (name sanitized to
``[a-zA-Z0-9-]``, a clash with a different body gets the first free numeric suffix), primitives
bring their dependencies, and the grammar lists the rules sorted by name (a ``std::map``)::

    from pyggml.grammar import json_schema_to_grammar
    json_schema_to_grammar({"type": "integer", "minimum": 0})
    # 'root ::= ([0] | [1-9] [0-9]{0,15})\\nspace ::= | " " | "\\\\n"{1,2} [ \\\\t]{0,20}\\n'

``build_grammar(callback, dotall=...)`` is the reference's other entry (common_grammar_builder:
``add_rule`` / ``add_schema``), used to assemble tool-call grammars.

Errors raise ``pyggml.errors.JSONSchemaError`` with the reference's ``what()``.  Unsupported
patterns degrade to any string as in the reference; its stderr warning is not printed but kept
in ``Conversion.warnings``.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import JSONSchemaError
from .json_schema_doc import (
    ALL_OF,
    ANY,
    ANY_OF,
    ARRAY,
    BOOLEAN,
    CONST,
    ENUM,
    FORMAT_DATE,
    FORMAT_NONE,
    FORMAT_TIME,
    FORMAT_UUID,
    INTEGER,
    MAX_NODE_DEPTH,
    NULL,
    NUMBER,
    OBJECT,
    REF,
    STRING,
    TUPLE,
    Document,
    Node,
    SchemaFail,
    schema_from_json,
)
from .json_schema_ints import RangeFail, build_min_max_int, build_repetition
from .json_schema_pattern import InvalidPattern, UnsupportedPattern, pattern_to_rule
from .json_schema_value import INT64_MAX, INT64_MIN, INT_MAX, dumps, from_python, loads

SPACE_RULE = '| " " | "\\n"{1,2} [ \\t]{0,20}'

# name -> (content, deps); llama.cpp: PRIMITIVE_RULES / STRING_FORMAT_RULES
PRIMITIVE_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "boolean": ('("true" | "false")', ()),
    "decimal-part": ("[0-9]{1,16}", ()),
    "integral-part": ("[0] | [1-9] [0-9]{0,15}", ()),
    "number": (
        '("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)?',
        ("integral-part", "decimal-part"),
    ),
    "integer": ('("-"? integral-part)', ("integral-part",)),
    "value": (
        "object | array | string | number | boolean | null",
        ("object", "array", "string", "number", "boolean", "null"),
    ),
    "object": (
        '"{" space ( string ":" space value ("," space string ":" space value)* )? space "}"',
        ("string", "value"),
    ),
    "array": ('"[" space ( value ("," space value)* )? space "]"', ("value",)),
    "uuid": (
        '"\\"" [0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" '
        '[0-9a-fA-F]{12} "\\""',
        (),
    ),
    "char": ('[^"\\\\\\x7F\\x00-\\x1F] | [\\\\] (["\\\\bfnrt] | "u" [0-9a-fA-F]{4})', ()),
    "string": ('"\\"" char* "\\""', ("char",)),
    "null": ('"null"', ()),
}

STRING_FORMAT_RULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "date": ('[0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )', ()),
    "time": (
        '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{3} )? '
        '( "Z" | ( "+" | "-" ) ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )',
        (),
    ),
    "date-time": ('date "T" time', ("date", "time")),
    "date-string": ('"\\"" date "\\""', ("date",)),
    "time-string": ('"\\"" time "\\""', ("time",)),
    "date-time-string": ('"\\"" date-time "\\""', ("date-time",)),
}

RESERVED_NAMES = frozenset({"root", *PRIMITIVE_RULES, *STRING_FORMAT_RULES})

_INVALID_RULE_CHARS_RE = re.compile(r"[^a-zA-Z0-9-]+")
# llama.cpp: GRAMMAR_LITERAL_ESCAPE_RE / GRAMMAR_LITERAL_ESCAPES (only \r \n " \\ are matched)
_GRAMMAR_LITERAL_ESCAPES = str.maketrans({"\r": "\\r", "\n": "\\n", '"': '\\"', "\\": "\\\\"})


def format_literal(literal: str) -> str:
    """llama.cpp: format_literal / gbnf_format_literal -- a GBNF string literal."""
    return '"' + literal.translate(_GRAMMAR_LITERAL_ESCAPES) + '"'


@functools.lru_cache(maxsize=4096)
def _sanitize(name: str) -> str:
    return _INVALID_RULE_CHARS_RE.sub("-", name)


def _utf8_key(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


@dataclass
class Conversion:
    grammar: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Family:
    """Rules named <name>0, <name>1, ...: how far they were scanned, and the first index of
    each body seen there."""

    scanned: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


class SchemaConverter:
    """llama.cpp: common_chat_schema_converter (``_dotall`` false for json_schema_to_grammar)."""

    def __init__(self, dotall: bool = False) -> None:
        self._dotall = dotall
        self._rules: dict[str, str] = {"space": SPACE_RULE}
        self._refs_being_resolved: set[str] = set()
        self._errors: list[str] = []
        self.warnings: list[str] = []
        self._depth = 0
        self._families: dict[str, _Family] = {}

    # --- rule table ---------------------------------------------------------------------

    def _add_rule(self, name: str, rule: str) -> str:
        esc_name = _sanitize(name)
        if esc_name not in self._rules or self._rules[esc_name] == rule:
            self._rules[esc_name] = rule
            return esc_name
        # the first esc_name<i> that is free or already holds this rule.  A rule once added keeps
        # its body, so the scanned prefix of the numbered family is remembered (the reference
        # rescans from 0: quadratic when thousands of rules share a name)
        fam = self._families.get(esc_name)
        if fam is None:
            fam = self._families[esc_name] = _Family()
        i = fam.by_rule.get(rule)
        if i is None:
            i = fam.scanned
            while (body := self._rules.get(esc_name + str(i))) is not None:
                fam.by_rule.setdefault(body, i)
                fam.scanned = i + 1
                if body == rule:
                    break
                i += 1
        key = esc_name + str(i)
        self._rules[key] = rule
        return key

    def _add_primitive(self, name: str, rule: tuple[str, tuple[str, ...]]) -> str:
        n = self._add_rule(name, rule[0])
        for dep in rule[1]:
            dep_rule = PRIMITIVE_RULES.get(dep) or STRING_FORMAT_RULES.get(dep)
            if dep_rule is None:
                self._errors.append(f"Rule {dep} not known")
                continue
            if dep not in self._rules:
                self._add_primitive(dep, dep_rule)
        return n

    def format_grammar(self) -> str:
        # std::map<std::string, std::string>: names in byte order
        return "".join(f"{k} ::= {self._rules[k]}\n" for k in sorted(self._rules, key=_utf8_key))

    def check_errors(self) -> None:
        if self._errors:
            raise JSONSchemaError(
                "JSON schema conversion failed:\n" + "\n".join(self._errors), reason="conversion"
            )

    # --- pieces ---------------------------------------------------------------------------

    def _generate_union_rule(self, name: str, alts: list[Node]) -> str:
        return " | ".join(
            self.visit(alt, name + ("alternative-" if not name else "-") + str(i))
            for i, alt in enumerate(alts)
        )

    def _visit_pattern(self, pattern: str, name: str) -> str:
        snapshot = dict(self._rules)
        try:
            return pattern_to_rule(pattern, name, self._add_rule, self._dotall)
        except UnsupportedPattern as e:
            self._rules = snapshot
            self._families = {}  # rules were removed: the remembered scans no longer hold
            self.warnings.append(f"pattern {pattern} is not supported ({e}), accepting any string")
            return self._add_rule(name, self._add_primitive("string", PRIMITIVE_RULES["string"]))
        except InvalidPattern as e:
            self._rules = snapshot
            self._families = {}
            self._errors.append(f"Invalid pattern {pattern}: {e}")
            return ""

    def _not_strings(self, strings: list[str]) -> str:
        """A JSON string that is none of ``strings`` (llama.cpp: _not_strings over a common_trie).

        Walked with an explicit stack: a property name thousands of characters long must not
        exhaust Python's recursion limit."""
        # trie over code points; children visited in code point order (std::map<uint32_t, ...>)
        children: list[dict[int, int]] = [{}]
        ends: list[bool] = [False]
        for word in strings:
            cur = 0
            for ch in word:
                nxt = children[cur].get(ord(ch))
                if nxt is None:
                    nxt = len(children)
                    children.append({})
                    ends.append(False)
                    children[cur][ord(ch)] = nxt
                cur = nxt
            ends[cur] = True

        char_rule = self._add_primitive("char", PRIMITIVE_RULES["char"])
        out: list[str] = ['["] ( ']
        # frame: (node, sorted child code points, next index, rejects so far)
        stack: list[list[Any]] = [[0, sorted(children[0]), 0, ""]]
        while stack:
            frame = stack[-1]
            node, keys, idx, rejects = frame
            if idx < len(keys):
                cpt = keys[idx]
                child = children[node][cpt]
                c = chr(cpt)
                frame[3] = rejects + c
                frame[2] = idx + 1
                if idx:
                    out.append(" | ")
                out.append("[" + c + "]")
                if children[child]:
                    out.append(" (")
                    stack.append([child, sorted(children[child]), 0, ""])
                else:
                    out.append(" " + char_rule + "+")
                continue
            stack.pop()
            if keys:
                out.append(' | [^"' + rejects + "] " + char_rule + "*")
            if stack:
                out.append(")")
        out.append(" )")
        if not ends[0]:
            out.append("?")
        out.append(' ["]')
        return "".join(out)

    def _resolve_ref(self, node: Node) -> str:
        ref = node.ref
        frag = ref[ref.index("#") + 1 :] if "#" in ref else ref
        ref_name = "ref" + _INVALID_RULE_CHARS_RE.sub("-", frag)
        if ref_name not in self._rules and ref not in self._refs_being_resolved:
            if node.target is None:
                self._errors.append("Unresolved $ref " + ref)
                return ""
            self._refs_being_resolved.add(ref)
            ref_name = self.visit(node.target, ref_name)
            self._refs_being_resolved.discard(ref)
        return ref_name

    def _build_object_rule(
        self, properties: list[tuple[str, Node]], required: set[str], name: str, additional: Node | None
    ) -> str:
        required_props: list[str] = []
        optional_props: list[str] = []
        kv_names: dict[str, str] = {}
        prop_names: list[str] = []
        pre = name + ("-" if name else "")
        for prop_name, prop_schema in properties:
            prop_rule = self.visit(prop_schema, pre + prop_name)
            kv_names[prop_name] = self._add_rule(
                pre + prop_name + "-kv", format_literal(dumps(prop_name)) + ' space ":" space ' + prop_rule
            )
            (required_props if prop_name in required else optional_props).append(prop_name)
            prop_names.append(prop_name)
        if additional is not None:
            sub_name = pre + "additional"
            value_rule = (
                self.visit(additional, sub_name + "-value")
                if additional.kind != ANY
                else self._add_primitive("value", PRIMITIVE_RULES["value"])
            )
            key_rule = (
                self._add_primitive("string", PRIMITIVE_RULES["string"])
                if not prop_names
                else self._add_rule(sub_name + "-k", self._not_strings(prop_names))
            )
            # the key "*" stands for additional properties (a real "*" property collides, as there)
            kv_names["*"] = self._add_rule(sub_name + "-kv", key_rule + ' ":" space ' + value_rule)
            optional_props.append("*")

        if not required_props and not optional_props:
            return '"{" space "}"'

        rule = '"{" space ' + ' "," space '.join(kv_names.get(p, "") for p in required_props)
        if optional_props:
            rule += " ("
            if required_props:
                rule += ' "," space ( '
            alts = self._optional_alternatives(optional_props, kv_names, pre)
            rule += " | ".join(alts)
            if required_props:
                rule += " )"
            rule += " )?"
        rule += ' space "}"'
        return rule

    def _optional_alternatives(self, ks: list[str], kv_names: dict[str, str], pre: str) -> list[str]:
        """get_recursive_refs(ks[i:], false) for every i: key i, then a "-rest" rule holding the
        keys after it (each optional).

        The reference rebuilds the chain of rest rules for every i (quadratic in the number of
        optional keys); the chain after key j does not depend on i and adding the same rule
        twice is a no-op, so each rest rule is added once here, innermost first -- the order
        of the reference's first chain, the one that creates them."""

        def piece(k: str, first_is_optional: bool) -> str:
            kv = kv_names.get(k, "")
            comma_ref = '( "," space ' + kv + " )"
            if first_is_optional:
                return comma_ref + ("*" if k == "*" else "?")
            return kv + (" " + comma_ref + "*" if k == "*" else "")

        n = len(ks)
        tails = [""] * n  # tails[j]: " <rest rule>" after key j (none after the last)
        for j in range(n - 2, -1, -1):
            tails[j] = " " + self._add_rule(pre + ks[j] + "-rest", piece(ks[j + 1], True) + tails[j + 1])
        return [piece(ks[i], False) + tails[i] for i in range(n)]

    def _visit_all_of(self, node: Node, name: str, rule_name: str) -> str:
        required: set[str] = set()
        properties: list[tuple[str, Node]] = []
        enum_values: dict[str, int] = {}

        def add_component(comp: Node, is_required: bool) -> None:
            seen: set[int] = set()
            while comp.kind == REF:  # a $ref chain; a cycle of refs recurses forever in the reference
                if comp.target is None or id(comp) in seen:
                    if comp.target is not None:
                        raise JSONSchemaError("allOf through a cycle of $refs", reason="too-deep")
                    return
                seen.add(id(comp))
                comp = comp.target
            if comp.kind == OBJECT:
                for pname, pschema, _ in comp.properties:
                    properties.append((pname, pschema))
                    if is_required:
                        required.add(pname)
            elif comp.kind == ENUM:
                for v in comp.values:
                    key = format_literal(dumps(v))
                    enum_values[key] = enum_values.get(key, 0) + 1

        for child in node.children:
            if child.kind == ANY_OF:
                for alt in child.children:
                    add_component(alt, False)
            else:
                add_component(child, True)
        if enum_values:
            inter = [k for k in sorted(enum_values, key=_utf8_key) if enum_values[k] == len(node.children)]
            if inter:
                return self._add_rule(rule_name, "(" + " | ".join(inter) + ")")
        return self._add_rule(rule_name, self._build_object_rule(properties, required, name, None))

    # --- the visitor ----------------------------------------------------------------------

    def _visit_primitive(self, rule_name: str, typ: str) -> str:
        return self._add_primitive("root" if rule_name == "root" else typ, PRIMITIVE_RULES[typ])

    def visit(self, node: Node, name: str) -> str:
        self._depth += 1
        try:
            if self._depth > MAX_NODE_DEPTH:
                raise JSONSchemaError("schema nesting too deep", reason="too-deep")
            return self._visit(node, name)
        finally:
            self._depth -= 1

    def _visit(self, node: Node, name: str) -> str:
        rule_name = name + "-" if name in RESERVED_NAMES else (name or "root")
        sub_name = name + ("-" if name else "")
        k = node.kind
        if k == REF:
            return self._add_rule(rule_name, self._resolve_ref(node))
        if k == ANY_OF:
            return self._add_rule(rule_name, self._generate_union_rule(name, node.children))
        if k == ALL_OF:
            return self._visit_all_of(node, name, rule_name)
        if k == CONST:
            return self._add_rule(rule_name, format_literal(dumps(node.value)))
        if k == ENUM:
            return self._add_rule(
                rule_name, "(" + " | ".join(format_literal(dumps(v)) for v in node.values) + ")"
            )
        if k == OBJECT:
            if not node.properties and node.additional is not None and node.additional.kind == ANY:
                return self._add_rule(rule_name, self._add_primitive("object", PRIMITIVE_RULES["object"]))
            required = {p[0] for p in node.properties if p[2]}
            return self._add_rule(
                rule_name,
                self._build_object_rule(
                    [(p[0], p[1]) for p in node.properties], required, name, node.additional
                ),
            )
        if k == TUPLE:
            parts = [self.visit(item, sub_name + "tuple-" + str(i)) for i, item in enumerate(node.children)]
            return self._add_rule(rule_name, '"[" space ' + ' "," space '.join(parts) + ' space "]"')
        if k == ARRAY:
            assert node.items is not None
            if node.items.kind == ANY and node.min_items == 0 and node.max_items < 0:
                return self._visit_primitive(rule_name, "array")
            item_rule = self.visit(node.items, sub_name + "item")
            max_items = INT_MAX if node.max_items < 0 else node.max_items
            return self._add_rule(
                rule_name,
                '"[" space '
                + build_repetition(item_rule, node.min_items, max_items, '"," space')
                + ' space "]"',
            )
        if k == STRING:
            if node.pattern:
                return self._visit_pattern(node.pattern, rule_name)
            if node.format == FORMAT_UUID:
                return self._visit_primitive(rule_name, "uuid")
            if node.format != FORMAT_NONE:
                prim = (
                    "date"
                    if node.format == FORMAT_DATE
                    else "time"
                    if node.format == FORMAT_TIME
                    else "date-time"
                ) + "-string"
                return self._add_rule(rule_name, self._add_primitive(prim, STRING_FORMAT_RULES[prim]))
            if node.min_length > 0 or node.max_length >= 0:
                char_rule = self._add_primitive("char", PRIMITIVE_RULES["char"])
                max_len = INT_MAX if node.max_length < 0 else node.max_length
                return self._add_rule(
                    rule_name, '"\\"" ' + build_repetition(char_rule, node.min_length, max_len) + ' "\\""'
                )
            return self._visit_primitive(rule_name, "string")
        if k == INTEGER:
            if node.minimum == INT64_MIN and node.maximum == INT64_MAX:
                return self._visit_primitive(rule_name, "integer")
            out = ["("]
            build_min_max_int(node.minimum, node.maximum, out)
            out.append(")")
            return self._add_rule(rule_name, "".join(out))
        if k == NUMBER:
            return self._visit_primitive(rule_name, "number")
        if k == BOOLEAN:
            return self._visit_primitive(rule_name, "boolean")
        if k == NULL:
            return self._visit_primitive(rule_name, "null")
        return self._add_rule(rule_name, self._add_primitive("value", PRIMITIVE_RULES["value"]))


@contextmanager
def _recursion_headroom(frames: int) -> Iterator[None]:
    # Nesting is bounded by MAX_NODE_DEPTH; make sure Python's own limit is not hit first.
    # (Python-to-Python calls do not grow the C stack on 3.11+.)
    old = sys.getrecursionlimit()
    if old < frames:
        sys.setrecursionlimit(frames)
    try:
        yield
    except RecursionError:
        # a safety net only (e.g. another thread lowered the limit meanwhile)
        raise JSONSchemaError("schema nesting too deep", reason="too-deep") from None
    finally:
        if sys.getrecursionlimit() == frames and old < frames:
            sys.setrecursionlimit(old)


def _load(schema: Any) -> Any:
    if isinstance(schema, str | bytes | bytearray):
        return loads(schema)
    return from_python(schema)


def convert_document(doc: Document) -> Conversion:
    """llama.cpp: json_schema_to_grammar(const common_chat_schema_document &)."""
    conv = SchemaConverter(dotall=False)
    try:
        conv.visit(doc.root, "")
    except RangeFail as e:
        # build_min_max_int's runtime_error, caught and rewrapped by json_schema_to_grammar
        raise JSONSchemaError("JSON schema conversion failed:\n" + str(e), reason="conversion") from None
    conv.check_errors()
    return Conversion(conv.format_grammar(), conv.warnings)


def convert(schema: Any) -> Conversion:
    """The grammar and the warnings the reference would print to stderr."""
    value = _load(schema)
    with _recursion_headroom(sys.getrecursionlimit() + 8 * MAX_NODE_DEPTH + 1000):
        try:
            doc = schema_from_json(value)
        except SchemaFail as e:
            raise JSONSchemaError("JSON schema conversion failed:\n" + str(e), reason="schema") from None
        return convert_document(doc)


def schema_document(schema: Any) -> Document:
    """llama.cpp: common_chat_schema_from_json -- a schema (value or JSON text) read into the
    typed tree ``build_grammar``'s ``add_schema`` takes.  Errors carry the reference's own
    ``"JSON schema error at <path>: ..."`` (not wrapped: build_grammar does not wrap them)."""
    value = _load(schema)
    with _recursion_headroom(sys.getrecursionlimit() + 8 * MAX_NODE_DEPTH + 1000):
        try:
            return schema_from_json(value)
        except SchemaFail as e:
            raise JSONSchemaError(str(e), reason="schema") from None


@dataclass
class GrammarBuilder:
    """llama.cpp: common_grammar_builder -- ``add_rule(name, rule)`` adds a raw GBNF rule,
    ``add_schema(name, schema)`` converts a schema (a value, JSON text, ``Document`` or ``Node``);
    both return the rule name actually used."""

    add_rule: Callable[[str, str], str]
    add_schema: Callable[[str, Any], str]


def build_conversion(callback: Callable[[GrammarBuilder], object], *, dotall: bool = False) -> Conversion:
    """``build_grammar`` with the warnings the reference prints to stderr."""
    conv = SchemaConverter(dotall=dotall)

    def add_schema(name: str, schema: Any) -> str:
        if isinstance(schema, Node):
            node = schema
        elif isinstance(schema, Document):
            node = schema.root
        else:
            node = schema_document(schema).root
        # the builder's add_schema maps "root" to the converter's top level ("")
        return conv.visit(node, "" if name == "root" else name)

    with _recursion_headroom(sys.getrecursionlimit() + 8 * MAX_NODE_DEPTH + 1000):
        try:
            callback(GrammarBuilder(conv._add_rule, add_schema))
        except RangeFail as e:
            # build_grammar lets build_min_max_int's runtime_error through unwrapped
            raise JSONSchemaError(str(e), reason="conversion") from None
    conv.check_errors()
    return Conversion(conv.format_grammar(), conv.warnings)


def build_grammar(callback: Callable[[GrammarBuilder], object], *, dotall: bool = False) -> str:
    """llama.cpp: build_grammar(cb, {dotall}) -- a grammar assembled by ``callback`` from raw
    rules and schemas (how the chat layer builds tool-call grammars)."""
    return build_conversion(callback, dotall=dotall).grammar


def gbnf_format_literal(literal: str) -> str:
    """llama.cpp: gbnf_format_literal."""
    return format_literal(literal)


def json_schema_to_grammar(schema: dict[str, Any] | str | bytes, force_gbnf: bool = False) -> str:
    """GBNF for a JSON schema (a parsed value, or its JSON text), as the reference's
    ``json_schema_to_grammar(schema, force_gbnf)``.

    ``force_gbnf`` only matters for a reference built with llguidance (not ours): the output is
    always GBNF.  Raises ``JSONSchemaError`` for an invalid or unsupported schema."""
    del force_gbnf
    return convert(schema).grammar
