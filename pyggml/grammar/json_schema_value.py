"""JSON values as the reference's ``common_json`` (nlohmann::ordered_json) holds and dumps them.

The converter's output depends on two details of that library:
- the number kinds: an integer literal in [-2**63, 2**64) is an integer (``is_number_integer``),
  anything else numeric is a double (and a non-finite double is a parse error);
- ``dump()``: compact, keys in insertion order, non-ASCII kept as UTF-8, control characters as
  ``\\u00xx`` (lowercase hex), doubles through grisu2 with nlohmann's own layout
  (``1e+16``, ``1000.0``, ``1e-05``).

Here a value is plain Python: ``None``, ``bool``, ``int`` (only inside the integer range),
``float``, ``str``, ``list``, ``dict`` (insertion order = ordered_json order; a duplicate key keeps
its first position and its last value, as ordered_json's parser does).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..errors import JSONSchemaError
from .json_schema_grisu import grisu2

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
INT_MAX = (1 << 31) - 1

# Nesting of JSON containers pyggml accepts: the reference recurses without a bound (and
# overflows its C stack on hostile input); we refuse past this depth with reason "too-deep".
MAX_JSON_DEPTH = 2000


def is_int(v: Any) -> bool:
    """nlohmann ``is_number_integer`` (a Python bool is not a number here)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return (isinstance(v, int | float)) and not isinstance(v, bool)


def wrap64(v: int) -> int:
    """Two's complement int64 wrap (static_cast<int64_t>, signed overflow as the hardware does it)."""
    v &= UINT64_MAX
    return v - (1 << 64) if v > INT64_MAX else v


def wrap32(v: int) -> int:
    """static_cast<int> of a 64-bit integer."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v > INT_MAX else v


def _parse_int(s: str) -> int | float:
    v = int(s)
    if INT64_MIN <= v <= UINT64_MAX:
        return v
    f = float(s)  # nlohmann falls back to strtod when strtoll/strtoull overflow
    if not math.isfinite(f):
        raise JSONSchemaError(f"number overflow parsing '{s}'", reason="json")
    return f


def _parse_float(s: str) -> float:
    f = float(s)
    if not math.isfinite(f):
        # llama.cpp: vendor/nlohmann/json.hpp parser::sax_parse_internal ("number overflow")
        raise JSONSchemaError(f"number overflow parsing '{s}'", reason="json")
    return f


def _parse_constant(s: str) -> Any:
    raise JSONSchemaError(f"syntax error: invalid literal {s}", reason="json")


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _check_text(s: str) -> None:
    # nlohmann rejects a lone surrogate escape; Python's json accepts it
    if _SURROGATE_RE.search(s):
        raise JSONSchemaError(
            "invalid string: surrogate U+D800..U+DFFF must be followed by U+DC00..U+DFFF", reason="json"
        )


def loads(text: str | bytes) -> Any:
    """common_json::parse: the text as the reference reads it."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise JSONSchemaError(f"invalid UTF-8 in the schema text: {e}", reason="json") from None
    if text.startswith("\ufeff"):  # nlohmann skips a UTF-8 BOM
        text = text[1:]
    if "\0" in text:
        text = text[: text.index("\0")]  # the C string ends at the first NUL
    try:
        value = json.loads(
            text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
        )
    except JSONSchemaError:
        raise
    except RecursionError:
        raise JSONSchemaError("schema nesting too deep", reason="too-deep") from None
    except ValueError as e:
        raise JSONSchemaError(f"parse error: {e}", reason="json") from None
    check(value, strings=True)
    return value


def check(value: Any, *, strings: bool = False) -> None:
    """Depth limit and value kinds, without recursion (hostile nesting must not overflow)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            if depth > MAX_JSON_DEPTH:
                raise JSONSchemaError("schema nesting too deep", reason="too-deep")
            for k, x in v.items():
                if not isinstance(k, str):
                    raise JSONSchemaError(f"object key {k!r} is not a string", reason="json")
                _check_text(k)
                stack.append((x, depth + 1))
        elif isinstance(v, list):
            if depth > MAX_JSON_DEPTH:
                raise JSONSchemaError("schema nesting too deep", reason="too-deep")
            stack.extend((x, depth + 1) for x in v)
        elif isinstance(v, str):
            _check_text(v)
        elif v is None or isinstance(v, bool | float):
            pass
        elif isinstance(v, int):
            if not INT64_MIN <= v <= UINT64_MAX:
                raise JSONSchemaError(f"integer {v} is outside the JSON integer range", reason="json")
        else:
            raise JSONSchemaError(f"{type(v).__name__} is not a JSON value", reason="json")


def from_python(value: Any) -> Any:
    """A Python schema as the reference would read its JSON text (``json.dumps`` round trip):
    integers outside [-2**63, 2**64) become doubles, tuples lists."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise JSONSchemaError(f"not a JSON value: {e}", reason="json") from None
    except RecursionError:
        raise JSONSchemaError("schema nesting too deep", reason="too-deep") from None
    return loads(text)


# --- dump (nlohmann serializer, indent -1, ensure_ascii false) --------------------------------

_ESC = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}
_ESC_TABLE = {c: _ESC.get(c, f"\\u{c:04x}") for c in range(0x20)}
_ESC_TABLE[0x22] = '\\"'
_ESC_TABLE[0x5C] = "\\\\"


def dump_str(s: str) -> str:
    # llama.cpp: vendor/nlohmann/json.hpp serializer::dump_escaped
    return '"' + s.translate(_ESC_TABLE) + '"'


def dump_float(x: float) -> str:
    """nlohmann serializer::dump_float -> to_chars -> format_buffer (kMinExp -4, kMaxExp 15),
    the digits from Grisu2 (``json_schema_grisu``)."""
    if not math.isfinite(x):
        return "null"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    x = abs(x)
    if x == 0.0:
        return sign + "0.0"
    digits, dec_exp = grisu2(x)
    k = len(digits)
    n = k + dec_exp  # value = digits * 10^(n - k)
    if k <= n <= 15:
        out = digits + "0" * (n - k) + ".0"
    elif 0 < n <= 15:
        out = digits[:n] + "." + digits[n:]
    elif -4 < n <= 0:
        out = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        out = digits if k == 1 else digits[0] + "." + digits[1:]
        ae = abs(e)
        out += "e" + ("-" if e < 0 else "+") + (f"{ae:02d}" if ae < 100 else str(ae))
    return sign + out


def dumps(value: Any) -> str:
    """common_json::dump() of a value (iterative: const/enum values may be deep)."""
    out: list[str] = []
    # work items: a value to emit, or a literal string
    stack: list[tuple[bool, Any]] = [(False, value)]
    while stack:
        is_text, v = stack.pop()
        if is_text:
            out.append(v)
        elif v is None:
            out.append("null")
        elif v is True:
            out.append("true")
        elif v is False:
            out.append("false")
        elif isinstance(v, int):
            out.append(str(v))
        elif isinstance(v, float):
            out.append(dump_float(v))
        elif isinstance(v, str):
            out.append(dump_str(v))
        elif isinstance(v, list):
            if not v:
                out.append("[]")
                continue
            items: list[tuple[bool, Any]] = [(True, "[")]
            for i, x in enumerate(v):
                if i:
                    items.append((True, ","))
                items.append((False, x))
            items.append((True, "]"))
            stack.extend(reversed(items))
        elif isinstance(v, dict):
            if not v:
                out.append("{}")
                continue
            items = [(True, "{")]
            for i, (k, x) in enumerate(v.items()):
                items.append((True, ("," if i else "") + dump_str(k) + ":"))
                items.append((False, x))
            items.append((True, "}"))
            stack.extend(reversed(items))
        else:  # pragma: no cover - check() rejects these first
            raise JSONSchemaError(f"{type(v).__name__} is not a JSON value", reason="json")
    return "".join(out)
