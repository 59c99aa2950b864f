"""JSON schema -> the reference's typed schema tree (the subset the converter understands).

llama.cpp: common/json-schema.cpp common_chat_schema_builder / common_chat_schema_from_json.
A schema is read once into nodes (``Node.kind`` mirrors ``common_chat_schema::node_kind``);
``$ref`` targets are built once each, keyed by the reference string, and a cycle back to a
``$ref`` under construction stops there (the ref node gets its target when the whole tree is
built).  Failures raise ``SchemaFail`` with the reference's ``"JSON schema error at <path>: <msg>"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import JSONSchemaError
from .json_schema_value import INT64_MAX, INT64_MIN, UINT64_MAX, is_int, is_number, wrap32, wrap64

ANY, REF, ANY_OF, ALL_OF, CONST, ENUM = "any", "ref", "anyOf", "allOf", "const", "enum"
NULL, BOOLEAN, NUMBER, INTEGER, STRING, ARRAY, TUPLE, OBJECT = (
    "null",
    "boolean",
    "number",
    "integer",
    "string",
    "array",
    "tuple",
    "object",
)

FORMAT_NONE, FORMAT_UUID, FORMAT_DATE, FORMAT_TIME, FORMAT_DATE_TIME = range(5)

# Schema nodes nested inside each other (through properties, items, alternatives or $ref
# chains) pyggml follows before giving up with reason "too-deep"; the reference has no bound.
MAX_NODE_DEPTH = 1000


class SchemaFail(Exception):
    """common_chat_schema_builder::fail (a std::runtime_error in the reference)."""


@dataclass(eq=False)
class Node:
    kind: str
    ref: str = ""
    target: Node | None = None
    children: list[Node] = field(default_factory=list)  # anyOf / allOf / tuple items
    value: Any = None  # const
    values: list[Any] = field(default_factory=list)  # enum
    minimum: int = INT64_MIN
    maximum: int = INT64_MAX
    pattern: str = ""
    format: int = FORMAT_NONE
    min_length: int = 0
    max_length: int = -1
    items: Node | None = None  # array
    min_items: int = 0
    max_items: int = -1
    properties: list[tuple[str, Node, bool]] = field(default_factory=list)  # (name, schema, required)
    additional: Node | None = None  # None: not allowed


@dataclass
class Document:
    root: Node
    refs: dict[str, Node]


def _fail(path: str, msg: str) -> SchemaFail:
    return SchemaFail(f"JSON schema error at {path}: {msg}")


def _get_count(schema: dict[str, Any], key: str, path: str, default: int) -> int:
    if key not in schema:
        return default
    v = schema[key]
    # value.get<int>() truncates a 64-bit integer to int before the sign test
    if not is_int(v) or wrap32(v) < 0:
        raise _fail(path, key + " must be a non-negative integer")
    return wrap32(v)


def _cast_i64(d: float) -> int:
    # (int64_t) of a double out of range: x86-64 cvttsd2si answers INT64_MIN
    if -9.223372036854775808e18 <= d < 9.223372036854775808e18:
        return int(d)
    return INT64_MIN


def _get_bound(schema: dict[str, Any], key: str, path: str, round_up: bool) -> int:
    v = schema[key]
    if is_int(v):
        return wrap64(v)  # get<int64_t>() of an unsigned above INT64_MAX wraps
    if not is_number(v):
        raise _fail(path, key + " must be a number")
    return _cast_i64(math.ceil(v) if round_up else math.floor(v))


def _get_format(schema: dict[str, Any], path: str) -> int:
    if "format" not in schema:
        return FORMAT_NONE
    v = schema["format"]
    if not isinstance(v, str):
        raise _fail(path, "format must be a string")
    if v == "date":
        return FORMAT_DATE
    if v == "time":
        return FORMAT_TIME
    if v == "date-time":
        return FORMAT_DATE_TIME
    # std::string size() counts bytes: "uuid" + one ASCII digit 1..5
    if v == "uuid" or (len(v) == 5 and v.startswith("uuid") and "1" <= v[4] <= "5"):
        return FORMAT_UUID
    return FORMAT_NONE


def _stoull_index(sel: str, size: int) -> int:
    """std::stoull(sel), with a failure mapped to ``size`` (out of range) as resolve_ref does."""
    i = 0
    while i < len(sel) and sel[i] in " \t\n\v\f\r":
        i += 1
    neg = False
    if i < len(sel) and sel[i] in "+-":
        neg = sel[i] == "-"
        i += 1
    j = i
    while j < len(sel) and "0" <= sel[j] <= "9":
        j += 1
    if j == i:
        return size  # std::invalid_argument
    v = int(sel[i:j])
    if v > UINT64_MAX:
        return size  # std::out_of_range
    return (-v) & UINT64_MAX if neg else v  # strtoull negates in unsigned arithmetic


class _Builder:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.refs: dict[str, Node | None] = {}
        self.pending: list[Node] = []
        self.depth = 0

    def resolve_ref(self, ref: str, path: str) -> Any:
        target = self.root
        tokens = ref[1:].split("/")
        for sel in tokens[1:]:
            if isinstance(target, dict) and sel in target:
                target = target[sel]
            elif isinstance(target, list):
                idx = _stoull_index(sel, len(target))
                if idx >= len(target):
                    raise _fail(path, f"cannot resolve $ref {ref}, {sel} is out of range")
                target = target[idx]
            else:
                raise _fail(path, f"cannot resolve $ref {ref}, {sel} not found")
        return target

    def build_ref(self, value: Any, path: str) -> Node:
        if not isinstance(value, str):
            raise _fail(path, "$ref must be a string")
        if not value.startswith("#/"):
            raise _fail(
                path, f"unsupported $ref {value}, only references into the same document are supported"
            )
        if value not in self.refs:
            self.refs[value] = None  # reserved first: a cycle back to this $ref stops here
            self.refs[value] = self.build_node(self.resolve_ref(value, path), value)
        node = Node(REF, ref=value)
        self.pending.append(node)
        return node

    def build_alternatives(self, kind: str, alts: Any, path: str) -> Node:
        if not isinstance(alts, list):
            raise _fail(path, "must be an array of schemas")
        if not alts:
            raise _fail(path, "must not be empty")
        node = Node(kind)
        for i, alt in enumerate(alts):
            node.children.append(self.build_node(alt, f"{path}/{i}"))
        return node

    def build_object(self, schema: dict[str, Any], path: str) -> Node:
        node = Node(OBJECT)
        required: set[str] = set()
        req = schema.get("required")
        if isinstance(req, list):
            required = {r for r in req if isinstance(r, str)}
        if "properties" in schema:
            props = schema["properties"]
            if not isinstance(props, dict):
                raise _fail(path, "properties must be an object")
            for name, prop in props.items():
                node.properties.append(
                    (name, self.build_node(prop, f"{path}/properties/{name}"), name in required)
                )
        if "additionalProperties" in schema:
            ap = schema["additionalProperties"]
            if isinstance(ap, bool):
                if ap:
                    node.additional = Node(ANY)
            elif isinstance(ap, dict):
                node.additional = self.build_node(ap, path + "/additionalProperties")
            else:
                raise _fail(path, "additionalProperties must be a boolean or a schema")
        elif "properties" not in schema:
            node.additional = Node(ANY)  # {"type": "object"} alone accepts any object
        return node

    def build_array(self, schema: dict[str, Any], path: str) -> Node:
        node = Node(ARRAY)
        if "items" in schema or "prefixItems" in schema:
            # "items" wins when both are present; an array of schemas is a tuple
            key = "items" if "items" in schema else "prefixItems"
            items = schema[key]
            if isinstance(items, list):
                tup = Node(TUPLE)
                for i, item in enumerate(items):
                    tup.children.append(self.build_node(item, f"{path}/{key}/{i}"))
                return tup
            node.items = self.build_node(items, f"{path}/{key}")
        else:
            node.items = Node(ANY)
        node.min_items = _get_count(schema, "minItems", path, 0)
        node.max_items = _get_count(schema, "maxItems", path, -1)
        return node

    def build_string(self, schema: dict[str, Any], path: str) -> Node:
        node = Node(STRING)
        if "pattern" in schema:
            p = schema["pattern"]
            if not isinstance(p, str):
                raise _fail(path, "pattern must be a string")
            node.pattern = p
        node.format = _get_format(schema, path)
        node.min_length = _get_count(schema, "minLength", path, 0)
        node.max_length = _get_count(schema, "maxLength", path, -1)
        return node

    def build_integer(self, schema: dict[str, Any], path: str) -> Node:
        node = Node(INTEGER)
        if "minimum" in schema:
            node.minimum = _get_bound(schema, "minimum", path, True)
        elif "exclusiveMinimum" in schema:
            node.minimum = wrap64(_get_bound(schema, "exclusiveMinimum", path, False) + 1)
        if "maximum" in schema:
            node.maximum = _get_bound(schema, "maximum", path, False)
        elif "exclusiveMaximum" in schema:
            node.maximum = wrap64(_get_bound(schema, "exclusiveMaximum", path, True) - 1)
        return node

    def build_node(self, schema: Any, path: str) -> Node:
        self.depth += 1
        try:
            if self.depth > MAX_NODE_DEPTH:
                raise JSONSchemaError("schema nesting too deep", reason="too-deep")
            return self._build_node(schema, path)
        finally:
            self.depth -= 1

    def _build_node(self, schema: Any, path: str) -> Node:
        if not isinstance(schema, dict):
            raise _fail(path, "schema must be an object")
        if "$ref" in schema:
            return self.build_ref(schema["$ref"], path)
        if "oneOf" in schema or "anyOf" in schema:
            key = "oneOf" if "oneOf" in schema else "anyOf"
            return self.build_alternatives(ANY_OF, schema[key], f"{path}/{key}")

        typ = schema.get("type")
        if isinstance(typ, list):
            # {"type": [a, b], ...} is {"anyOf": [{"type": a, ...}, {"type": b, ...}]}
            if not typ:
                raise _fail(path, "type must not be empty")
            node = Node(ANY_OF)
            for i, t in enumerate(typ):
                alt = dict(schema)
                alt["type"] = t
                node.children.append(self.build_node(alt, f"{path}/type/{i}"))
            return node
        if "const" in schema:
            return Node(CONST, value=schema["const"])
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise _fail(path, "enum must be a non-empty array")
            return Node(ENUM, values=list(values))
        if typ is not None and not isinstance(typ, str):
            raise _fail(path, "type must be a string or an array of strings")

        type_name = typ if isinstance(typ, str) else ""
        # `additionalProperties != true` compares JSON values: only the boolean true is equal
        has_properties = "properties" in schema or (
            "additionalProperties" in schema and schema["additionalProperties"] is not True
        )

        if not type_name:
            # without a type the structural keywords decide, in the converter's order
            if has_properties:
                return self.build_object(schema, path)
            if "allOf" in schema:
                return self.build_alternatives(ALL_OF, schema["allOf"], path + "/allOf")
            if "items" in schema or "prefixItems" in schema:
                return self.build_array(schema, path)
            if (
                "pattern" in schema
                or "minLength" in schema
                or "maxLength" in schema
                or _get_format(schema, path) != FORMAT_NONE
            ):
                return self.build_string(schema, path)
            return Node(ANY)
        if type_name == "object":
            if not has_properties and "allOf" in schema:
                return self.build_alternatives(ALL_OF, schema["allOf"], path + "/allOf")
            return self.build_object(schema, path)
        if type_name == "string":
            if "allOf" in schema:
                return self.build_alternatives(ALL_OF, schema["allOf"], path + "/allOf")
            return self.build_string(schema, path)
        if type_name == "array":
            return self.build_array(schema, path)
        if type_name == "integer":
            return self.build_integer(schema, path)
        if type_name == "number":
            return Node(NUMBER)
        if type_name == "boolean":
            return Node(BOOLEAN)
        if type_name == "null":
            return Node(NULL)
        raise _fail(path, "unrecognized type " + type_name)

    def build(self) -> Document:
        root = self.build_node(self.root, "#")
        refs: dict[str, Node] = {}
        for key in sorted(self.refs, key=lambda s: s.encode("utf-8")):  # std::map order
            target = self.refs[key]
            assert target is not None
            refs[key] = target
        for node in self.pending:
            node.target = refs[node.ref]
        return Document(root, refs)


def schema_from_json(schema: Any) -> Document:
    """llama.cpp: common/json-schema.cpp common_chat_schema_from_json."""
    return _Builder(schema).build()
