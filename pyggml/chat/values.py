"""The value model of the reference's Jinja engine (common/jinja/value.h), in Python.

Python value  <->  reference value_t
  None            value_none
  UNDEFINED       value_undefined (``Undefined`` carries a hint, like the reference's)
  bool            value_bool      (checked before int: bool is an int subclass in Python)
  int             value_int       (int64)
  float           value_float
  JStr            value_string    (a ``str`` that also carries its ``(text, is_input)`` parts)
  list / tuple    value_array / value_tuple
  Obj             value_object    (insertion-ordered; ``builtins`` False for context/loop objects)
  Func            value_func      (``this`` is the bound first argument of a builtin method)
  Kwarg           value_kwarg

Strings of the reference are byte strings; lengths, indexes and slices count UTF-8 bytes
(``blen``/``bindex``/``bslice``), and text that a byte operation splits keeps its bytes through
``surrogateescape``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..errors import TemplateError

# Every TemplateError raised by pyggml.chat says which kind of failure it is (``kind``), so that
# parity compares kinds: "parse" (the reference's lexer/parser throws), "runtime" (its runtime
# throws; the message is the reference's own text), "input" (variables/messages that are not
# JSON-like), and pyggml's own guards the reference does not have: "budget" (time, size,
# nesting), "sandbox" (a refused name), "internal" (a Python exception inside the renderer,
# which is a bug).  A TemplateError without a kind is unclassified.


class TemplateSyntaxError(TemplateError):
    """The template does not parse (the reference's lexer or parser throws)."""

    kind = "parse"


class TemplateInputError(TemplateError):
    """Variables or messages the chat layer cannot take."""

    kind = "input"


class TemplateInternalError(TemplateError):
    """A Python exception inside the renderer (a pyggml bug, reported as a TemplateError)."""

    kind = "internal"


class TemplateSandboxError(TemplateError):
    """A name the sandbox refuses (pyggml's guard; the reference has none)."""

    kind = "sandbox"


class EngineError(TemplateError):
    """A runtime error of the template (the reference throws std::runtime_error)."""

    kind = "runtime"


class NotImplementedInEngine(EngineError):
    """The reference throws not_implemented_exception for this construct."""


class RaisedException(EngineError):
    """raise_exception() called by the template (the reference's raised_exception)."""


class JStr(str):
    """A string with input marking: ``parts`` is the reference's list of string_part
    ``(text, is_input)`` (jinja/string.h); ``str(self)`` is their concatenation."""

    __slots__ = ("parts",)
    parts: list[tuple[str, bool]]

    def __new__(cls, text: str, parts: list[tuple[str, bool]] | None = None) -> JStr:
        self = super().__new__(cls, text)
        self.parts = [(text, False)] if parts is None else parts
        return self

    @classmethod
    def join_parts(cls, parts: list[tuple[str, bool]]) -> JStr:
        return cls("".join(p[0] for p in parts), parts)

    def all_input(self) -> bool:
        # llama.cpp: common/jinja/string.cpp string::all_parts_are_input
        return all(flag for _, flag in self.parts)

    def append(self, other: JStr) -> JStr:
        return JStr(str.__add__(self, other), self.parts + other.parts)

    def marked_like(self, source: JStr) -> JStr:
        # llama.cpp: string::mark_input_based_on — input only when ALL source parts are input
        if source.all_input():
            return JStr(str(self), [(t, True) for t, _ in self.parts])
        return self


def mk(text: str, is_input: bool = False) -> JStr:
    return JStr(text, [(text, is_input)])


class Undefined:
    __slots__ = ("hint",)

    def __init__(self, hint: str = "") -> None:
        self.hint = hint

    def type_name(self) -> str:
        return f"Undefined (hint: '{self.hint}')" if self.hint else "Undefined"

    def __repr__(self) -> str:
        return self.type_name()


UNDEFINED = Undefined()


class Obj(dict):
    """value_object: insertion-ordered; replacing a key keeps its position and its first key."""

    __slots__ = ("builtins",)

    def __init__(self, *args: Any, builtins: bool = True) -> None:
        super().__init__(*args)
        self.builtins = builtins


class Func:
    """``this`` is the value a builtin method is bound to (``bound`` tells None apart)."""

    __slots__ = ("name", "fn", "this", "bound")

    def __init__(self, name: str, fn: Callable[..., Any], *this: Any) -> None:
        self.name = name
        self.fn = fn
        self.bound = bool(this)
        self.this = this[0] if this else None


class Kwarg:
    __slots__ = ("key", "val")

    def __init__(self, key: str, val: Any) -> None:
        self.key = key
        self.val = val


# --- type predicates (the reference's is_val<...>) ---------------------------------------

def is_int(v: Any) -> bool:
    return type(v) is int


def is_float(v: Any) -> bool:
    return type(v) is float


def is_num(v: Any) -> bool:
    t = type(v)
    return t is int or t is float


def is_str(v: Any) -> bool:
    return type(v) is JStr


def is_arr(v: Any) -> bool:
    t = type(v)
    return t is list or t is tuple


def is_obj(v: Any) -> bool:
    return type(v) is Obj


def is_undef(v: Any) -> bool:
    return type(v) is Undefined


def type_name(v: Any) -> str:
    # llama.cpp: value_t::type() of each value kind
    t = type(v)
    if v is None:
        return "None"
    if t is Undefined:
        return v.type_name()
    return {bool: "Boolean", int: "Integer", float: "Float", JStr: "String", list: "Array",
            tuple: "Tuple", Obj: "Object", Func: "Function", Kwarg: "KwArg"}.get(t, "?")


# --- conversions --------------------------------------------------------------------------

def float_str(v: float) -> str:
    # llama.cpp: value_float_t::as_string — std::to_string ("%f") minus trailing zeros, keeps ".0"
    out = f"{v:f}"
    out = out.rstrip("0")
    if out.endswith("."):
        out += "0"
    return out


def as_string(v: Any) -> JStr:
    t = type(v)
    if t is JStr:
        return v
    if t is bool:
        return mk("True" if v else "False")
    if t is int:
        return mk(str(v))
    if t is float:
        return mk(float_str(v))
    if v is None:
        return mk("None")
    if t is list or t is tuple:
        inner = ", ".join(string_repr(x) for x in v)
        if t is tuple:
            return mk("(" + inner + ("," if len(v) == 1 else "") + ")")
        return mk("[" + inner + "]")
    if t is Obj:
        return mk("{" + ", ".join(string_repr(k) + ": " + string_repr(x) for k, x in v.items()) + "}")
    raise EngineError(f"{type_name(v)} is not a string value")


def as_repr(v: Any) -> str:
    # llama.cpp: value_t::as_repr (debug text, also used when arrays/objects print themselves)
    t = type(v)
    if t is JStr:
        return "".join(("INPUT: " if f else "TMPL:  ") + s + "\n" for s, f in v.parts)
    if v is None:
        return "None"
    if t is Undefined:
        return v.type_name()
    if t is Func:
        return f"Function<{v.name}>(" + (as_repr(v.this) if v.bound else "") + ")"
    if t is Kwarg:
        return "KwArg"
    return str(as_string(v))


def string_repr(v: Any) -> str:
    # llama.cpp: value.cpp value_to_string_repr
    if type(v) is JStr:
        return to_json(v) if "'" in v else "'" + str(v) + "'"
    return as_repr(v)


def as_bool(v: Any) -> bool:
    t = type(v)
    if t is bool:
        return v
    if t is int or t is float:
        return v != 0
    if t is JStr:
        return len(v) > 0
    if t is list or t is tuple or t is Obj:
        return len(v) > 0
    if v is None or t is Undefined:
        return False
    raise EngineError(f"{type_name(v)} is not a bool value")


def as_int(v: Any) -> int:
    t = type(v)
    if t is int:
        return v
    if t is bool:
        return int(v)
    if t is float:
        return int(v) if math.isfinite(v) else 0
    raise EngineError(f"{type_name(v)} is not an int value")


def as_float(v: Any) -> float:
    t = type(v)
    if t is int:
        return float(v)
    if t is float:
        return v
    raise EngineError(f"{type_name(v)} is not a float value")


def to_int64(x: float) -> int:
    # static_cast<int64_t>(double) on x86-64 (cvttsd2si): truncation; NaN and out-of-range
    # values give INT64_MIN
    if not math.isfinite(x) or not -(2.0**63) <= x < 2.0**63:
        return -(2**63)
    return int(x)


# --- byte-level string helpers ---------------------------------------------------------------

def enc(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def dec(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def blen(s: str) -> int:
    return len(s) if s.isascii() else len(enc(s))


# --- equality, hashing, comparison ----------------------------------------------------------

def _hashable(v: Any) -> bool:
    t = type(v)
    if t is list:
        return False  # mutable: value_array_t::is_immutable() is false
    if t is Obj:
        return False
    if t is tuple:
        return all(_hashable(x) for x in v)
    return t is not Func and t is not Undefined  # value_undefined_t is not hashable


def _arr_hashable(v: list | tuple) -> bool:
    # llama.cpp: value_array_t::is_hashable — every element immutable and hashable
    return all(_hashable(x) for x in v)


def _obj_hashable(v: Obj) -> bool:
    return all(_hashable(x) for x in v.values())


def equal(a: Any, b: Any) -> bool:
    """``*a == *b`` (value_t::equivalent of a)."""
    ta, tb = type(a), type(b)
    if ta in (int, float, bool):
        if tb not in (int, float, bool):
            return False
        return _num_pair(a) == _num_pair(b)
    if ta is JStr:
        return tb is JStr and str.__eq__(a, b)
    if ta is list or ta is tuple:
        return (ta is tb and _arr_hashable(a) and _arr_hashable(b) and len(a) == len(b)
                and all(equal(x, y) for x, y in zip(a, b, strict=True)))
    if ta is Obj:
        return (tb is Obj and _obj_hashable(a) and _obj_hashable(b) and len(a) == len(b)
                and all(equal(k1, k2) and equal(v1, v2)
                        for (k1, v1), (k2, v2) in zip(a.items(), b.items(), strict=True)))
    if a is None:
        return b is None
    if ta is Undefined:
        return tb is Undefined
    if ta is Func:
        return tb is Func and a.fn is b.fn
    if ta is Kwarg:
        return tb is Kwarg and a.key == b.key and a.val is b.val
    return False


def _num_pair(v: Any) -> tuple[int, float]:
    # (val_int, val_flt) as the reference stores them
    t = type(v)
    if t is float:
        return (int(v) if math.isfinite(v) else 0, v)
    iv = int(v)
    fv = float(iv)
    if int(fv) != iv:
        fv = -math.inf if iv < 0 else math.inf
    return (iv, fv)


def compare(a: Any, b: Any, op: str) -> bool:
    """llama.cpp: value.cpp value_compare (used by tests, sort, min/max, dictsort)."""
    if is_num(a) and is_num(b):
        x, y = as_float(a), as_float(b)
        return {"eq": x == y, "ge": x >= y, "gt": x > y, "lt": x < y, "ne": x != y}[op]
    if (is_str(b) and is_num(a)) or (is_str(a) and is_num(b)) or (is_str(a) and is_str(b)):
        x, y = enc(str(as_string(a))), enc(str(as_string(b)))
        return {"eq": x == y, "ge": x >= y, "gt": x > y, "lt": x < y, "ne": x != y}[op]
    if type(a) is bool and type(b) is bool:
        if op == "eq":
            return a == b
        if op == "ne":
            return a != b
        raise EngineError("Unsupported comparison operator for bool type")
    return False


# --- JSON ------------------------------------------------------------------------------------

_JSON_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_str(s: str) -> str:
    out = []
    for c in s:
        e = _JSON_ESC.get(c)
        if e is not None:
            out.append(e)
        elif c < " ":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def to_json(v: Any, indent: int = -1, item_sep: str = ", ", key_sep: str = ": ", lvl: int = 0) -> str:
    """llama.cpp: value.cpp value_to_json_internal (numbers as ``std::ostream << double``)."""
    t = type(v)
    if v is None or t is Undefined:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is float:
        return _ostream_double(v)
    if t is JStr:
        return _json_str(str(v))
    nl = "\n" if indent >= 0 else ""
    pad = " " * (lvl * indent) if indent > 0 else ""
    step = " " * indent if indent > 0 else ""
    if t is list or t is tuple:
        if not v:
            return "[]"
        items = [pad + step + to_json(x, indent, item_sep, key_sep, lvl + 1) for x in v]
        return "[" + nl + (item_sep + nl).join(items) + nl + pad + "]"
    if t is Obj:
        if not v:
            return "{}"
        items = [pad + step + _json_str(str(as_string(k))) + key_sep
                 + to_json(x, indent, item_sep, key_sep, lvl + 1) for k, x in v.items()]
        return "{" + nl + (item_sep + nl).join(items) + nl + pad + "}"
    return "null"


def _ostream_double(v: float) -> str:
    if math.isnan(v):
        return "-nan" if math.copysign(1.0, v) < 0 else "nan"
    if math.isinf(v):
        return "-inf" if v < 0 else "inf"
    return f"{v:g}"


def json_ensure_ascii(s: str) -> str:
    # llama.cpp: value.cpp json_ensure_ascii_preserving_format — escapes non-ASCII inside strings
    out = []
    in_string = escaped = False
    for c in s:
        if not in_string:
            out.append(c)
            in_string = c == '"'
        elif escaped:
            out.append(c)
            escaped = False
        elif c == "\\":
            out.append(c)
            escaped = True
        elif c == '"':
            out.append(c)
            in_string = False
        elif ord(c) < 0x80:
            out.append(c)
        elif 0xDC80 <= ord(c) <= 0xDCFF:  # an invalid byte kept by surrogateescape
            out.append("\\ufffd")
        elif ord(c) <= 0xFFFF:
            out.append(f"\\u{ord(c):04x}")
        else:
            cp = ord(c) - 0x10000
            out.append(f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}")
    return "".join(out)


def from_json(j: Any, mark_input: bool) -> Any:
    """llama.cpp: value.cpp from_json — every string is marked when ``mark_input``;
    object keys never are."""
    t = type(j)
    if j is None or t is bool or t is int or t is float:
        return j
    if isinstance(j, str):
        return mk(str(j), mark_input)
    if isinstance(j, list | tuple):
        return [from_json(x, mark_input) for x in j]
    if isinstance(j, dict):
        out = Obj()
        for k, x in j.items():
            if not isinstance(k, str):
                raise TemplateInputError(f"object keys must be strings, got {type(k).__name__}")
            obj_insert(out, mk(k), from_json(x, mark_input))
        return out
    raise TemplateInputError(f"unsupported value of type {type(j).__name__} in template variables")


# Python's dict equality already matches the reference's object-key equivalence
# (value_hasher/value_equivalence): 1, 1.0 and True collide, strings compare by text, tuples
# elementwise; a replaced key keeps its position and its first key object.

def obj_insert(o: Obj, key: Any, val: Any) -> None:
    try:
        o[key] = val
    except TypeError:
        raise EngineError(f"Object key of unhashable type: {type_name(key)}") from None


def obj_get(o: Obj, key: Any, default: Any) -> Any:
    if type(key) in (list, Obj, Func, Undefined):
        raise EngineError(f"Object key of unhashable type: {type_name(key)}")
    try:
        return o.get(key, default)
    except TypeError:
        raise EngineError(f"Object key of unhashable type: {type_name(key)}") from None


def obj_has(o: Obj, key: Any) -> bool:
    return obj_get(o, key, _MISSING) is not _MISSING


_MISSING = object()
