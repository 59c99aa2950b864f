"""Built-in functions, filters and tests of the reference engine (common/jinja/value.cpp).

Filters are per-type methods in the reference: ``x | f(a)`` and ``x.f(a)`` both call the
builtin ``f`` of x's type with x as first argument.  Each table below mirrors one
``value_*_t::get_builtins``; ``GLOBALS`` mirrors ``global_builtins`` (functions reachable by
name, and the ``test_is_*`` tests).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from typing import Any

from .values import (
    UNDEFINED,
    EngineError,
    Func,
    JStr,
    Kwarg,
    NotImplementedInEngine,
    Obj,
    RaisedException,
    Undefined,
    as_bool,
    as_float,
    as_int,
    as_string,
    blen,
    compare,
    dec,
    enc,
    equal,
    is_arr,
    is_float,
    is_int,
    is_num,
    is_obj,
    is_str,
    is_undef,
    json_ensure_ascii,
    mk,
    obj_get,
    obj_has,
    obj_insert,
    to_json,
    type_name,
)

Builtin = Callable[["Args"], Any]


class Args:
    """func_args: positional values (kwargs stay in place as ``Kwarg``), the calling context."""

    __slots__ = ("args", "ctx", "name")

    def __init__(self, args: list[Any], ctx: Any, name: str = "") -> None:
        self.args = args
        self.ctx = ctx
        self.name = name

    def count(self) -> int:
        return len(self.args)

    def pos(self, i: int, *default: Any) -> Any:
        if i < len(self.args):
            return self.args[i]
        if default:
            return default[0]
        raise RaisedException(f"Function '{self.name}' expected at least {i + 1} arguments, "
                              f"got {len(self.args)}")

    def kwarg(self, key: str, default: Any) -> Any:
        for a in self.args:
            if type(a) is Kwarg and a.key == key:
                return a.val
        return default

    def kwarg_or_pos(self, key: str, i: int) -> Any:
        # llama.cpp: func_args::get_kwarg_or_pos
        v = self.kwarg(key, UNDEFINED)
        if is_undef(v) and i < len(self.args) and type(self.args[i]) is not Kwarg:
            return self.args[i]
        return v

    def ensure_count(self, lo: int, hi: int = 999) -> None:
        n = len(self.args)
        if n < lo or n > hi:
            raise EngineError(f"Function '{self.name}' expected between {lo} and {hi} arguments, got {n}")

    def ensure(self, *checks: tuple[Callable[[Any], bool], bool]) -> None:
        # llama.cpp: func_args::ensure_vals — count of required values, then their types
        self.ensure_count(sum(1 for _, req in checks if req))
        for i, (check, req) in enumerate(checks):
            if req and i < len(self.args) and not check(self.args[i]):
                raise EngineError(f"Function '{self.name}' expected another type, got "
                                  f"{type_name(self.args[i])}")


def R(check: Callable[[Any], bool]) -> tuple[Callable[[Any], bool], bool]:
    return (check, True)


def O(check: Callable[[Any], bool]) -> tuple[Callable[[Any], bool], bool]:  # noqa: E743
    return (check, False)


def is_bool(v: Any) -> bool:
    return type(v) is bool


def is_none(v: Any) -> bool:
    return v is None


def is_func(v: Any) -> bool:
    return type(v) is Func


def _empty(kind: str) -> Builtin:
    # llama.cpp: value.cpp empty_value_fn<T>
    def fn(_: Args) -> Any:
        return {"int": 0, "str": mk(""), "arr": [], "undef": UNDEFINED, "bool": False}[kind]
    return fn


# --- python-style slicing (llama.cpp: value.cpp slice<T>) ------------------------------------

def py_slice(seq: Any, start: int, stop: int, step: int) -> list[Any] | bytes:
    n = len(seq)
    if step == 0:
        return seq[:0]
    if step > 0:
        s = max(n + start, 0) if start < 0 else min(start, n)
        e = max(n + stop, 0) if stop < 0 else min(stop, n)
    else:
        s = max(n + start, 0) if start < 0 else min(start, n - 1)
        e = max(n + stop, -1) if stop < -1 else min(stop, n - 1)
    idx = []
    i = s
    while (i < e) if step > 0 else (i > e):
        if 0 <= i < n:
            idx.append(i)
        i += step
    if isinstance(seq, bytes):
        return bytes(seq[i] for i in idx)
    return [seq[i] for i in idx]


def _slice_args(a: Args) -> tuple[int, int, int]:
    arg0 = a.pos(1)
    arg1 = a.pos(2, UNDEFINED)
    arg2 = a.pos(3, UNDEFINED)
    if a.count() == 1:
        start, stop, step = 0, as_int(arg0), 1
    elif a.count() == 2:
        start, stop, step = as_int(arg0), as_int(arg1), 1
    else:
        start, stop, step = as_int(arg0), as_int(arg1), as_int(arg2)
    if step == 0:
        raise RaisedException("slice step cannot be zero")
    return start, stop, step


# --- shared builtins --------------------------------------------------------------------------

def tojson(a: Args) -> JStr:
    a.ensure_count(1, 5)
    v_ascii = a.kwarg_or_pos("ensure_ascii", 1)
    v_indent = a.kwarg_or_pos("indent", 2)
    v_seps = a.kwarg_or_pos("separators", 3)
    v_sort = a.kwarg_or_pos("sort_keys", 4)
    indent = as_int(v_indent) if is_int(v_indent) else -1
    if as_bool(v_sort):
        raise NotImplementedInEngine("NotImplemented: tojson sort_keys=true not implemented")
    seps = list(v_seps) if is_arr(v_seps) else []
    item_sep = str(as_string(seps[0])) if len(seps) > 0 else (", " if indent < 0 else ",")
    key_sep = str(as_string(seps[1])) if len(seps) > 1 else ": "
    out = to_json(a.pos(0), indent, item_sep, key_sep)
    if as_bool(v_ascii):
        out = json_ensure_ascii(out)
    return mk(out)


def get_attribute(val: Any, attr: Any, default: Any) -> Any:
    # llama.cpp: value.cpp get_attribute (used by selectattr/map/join/sort/min/max)
    if is_undef(attr):
        return default
    if is_arr(val):
        idx = attr
        if is_str(attr):
            s = str(attr)
            if s and s.isascii() and s.isdigit():
                v = int(s)
                idx = v if v < 2**63 else UNDEFINED
        return array_at(val, idx, default)
    if is_obj(val):
        return obj_get(val, attr, default)
    return default


def array_at(arr: Any, idx: Any, default: Any) -> Any:
    if not (is_int(idx) or type(idx) is bool):
        return default
    i = int(idx)
    if i < 0:
        i += len(arr)
    return arr[i] if 0 <= i < len(arr) else default


def _named_test(a: Args, i: int) -> Any:
    """The test named by argument ``i`` of select/rejectattr (``is_<name>``)."""
    test = GLOBALS.get("test_is_" + str(as_string(a.pos(i))))
    if test is None:
        raise RaisedException(f"selectattr: unknown test '{a.pos(i)}'")
    return test


def _selectattr(reject: bool) -> Builtin:
    def fn(a: Args) -> list[Any]:
        a.ensure_count(2, 4)
        a.ensure(R(is_arr), R(is_str), O(is_str), O(is_str))
        arr, attribute = a.pos(0), a.pos(1)
        out = []
        if a.count() == 2:
            for item in arr:
                sel = as_bool(get_attribute(item, attribute, UNDEFINED))
                if sel != reject:
                    out.append(item)
            return out
        if a.count() == 3:
            test = _named_test(a, 1)
            for item in arr:
                sel = as_bool(test(Args([item, a.pos(2)], a.ctx)))
                if sel != reject:
                    out.append(item)
            return out
        if a.count() == 4:
            test = _named_test(a, 2)
            for item in arr:
                sel = as_bool(test(Args([get_attribute(item, attribute, UNDEFINED), a.pos(3)], a.ctx)))
                if sel != reject:
                    out.append(item)
            return out
        raise RaisedException("selectattr: invalid number of arguments")
    return fn


def default_value(a: Args) -> Any:
    a.ensure_count(2, 3)
    check_bool = as_bool(a.kwarg_or_pos("boolean", 2))
    v = a.pos(0)
    no_value = (not as_bool(v)) if check_bool else (is_undef(v) or v is None)
    return a.pos(1) if no_value else v


def toobject(a: Args) -> Obj:
    # llama.cpp: value.cpp toobject (dict() and namespace())
    out = Obj()
    it = a.pos(0, UNDEFINED)
    iter_first = False
    if is_arr(it):
        iter_first = True
        for x in it:
            if is_arr(x) and len(x) == 2:
                obj_insert(out, x[0], x[1])
            else:
                raise RaisedException("namespace/dict() iterable argument must consist of tuples, not "
                                      + type_name(x))
    elif is_obj(it):
        iter_first = True
        for k, v in it.items():
            obj_insert(out, k, v)
    for arg in a.args:
        if type(arg) is Kwarg:
            obj_insert(out, mk(arg.key), arg.val)
        elif not iter_first:
            raise RaisedException("namespace/dict() arguments must be kwargs, dict and/or iterable of "
                                  "tuples, not " + type_name(arg))
        iter_first = False
    return out


def _raise_exception(a: Args) -> Any:
    a.ensure(R(is_str))
    raise RaisedException("Jinja Exception: " + str(as_string(a.pos(0))))


def _strftime_now(a: Args) -> JStr:
    a.ensure(R(is_str))
    fmt = str(as_string(a.pos(0)))
    try:
        out = time.strftime(fmt, time.localtime(a.ctx.root.current_time)) if fmt else ""
    except ValueError:
        out = ""
    if not out or len(enc(out)) >= 100:  # strftime into char[100] returning 0
        raise RaisedException("strftime_now: failed to format time")
    return mk(out)


def _range(a: Args) -> list[int]:
    a.ensure_count(1, 3)
    a.ensure(R(is_int), O(is_int), O(is_int))
    vals = [as_int(x) for x in a.args]
    if len(vals) == 1:
        start, stop, step = 0, vals[0], 1
    elif len(vals) == 2:
        start, stop, step = vals[0], vals[1], 1
    else:
        start, stop, step = vals
    if step == 0:
        raise RaisedException("range() step argument must not be zero")
    a.ctx.root.budget.charge(max(0, (stop - start) // step if step else 0))
    return list(range(start, stop, step))


def _type_test(*checks: Callable[[Any], bool]) -> Builtin:
    def fn(a: Args) -> bool:
        a.ensure_count(1)
        v = a.pos(0)
        return any(c(v) for c in checks)
    return fn


def _cmp_test(op: str) -> Builtin:
    def fn(a: Args) -> bool:
        a.ensure_count(2, 2)
        return compare(a.pos(0), a.pos(1), op)
    return fn


def test_in(a: Args) -> bool:
    a.ensure_count(2)
    needle, hay = a.pos(0), a.pos(1)
    if is_undef(hay):
        return False
    if is_arr(hay):
        return any(equal(needle, x) for x in hay)
    if is_str(hay):
        if not is_str(needle):
            raise RaisedException("'in' test expects args[1] as string when args[0] is string, "
                                  "got args[1] as " + type_name(needle))
        return str(needle) in str(hay)
    if is_obj(hay):
        return obj_has(hay, needle)
    raise RaisedException("'in' test expects iterable as first argument, got " + type_name(hay))


def _sameas(a: Args) -> bool:
    a.ensure_count(2)
    x, y = a.pos(0), a.pos(1)
    if is_undef(x) or is_undef(y):
        return False
    if x is None and y is None:
        return True
    if type(x) is bool and type(y) is bool:
        return x == y
    if is_int(x) and is_int(y):
        return -5 <= x <= 256 and x == y  # CPython's small-int cache
    return x is y


def _not_impl(msg: str) -> Builtin:
    def fn(_: Args) -> Any:
        raise NotImplementedInEngine("NotImplemented: " + msg)
    return fn


def _odd_even(even: bool) -> Builtin:
    def fn(a: Args) -> bool:
        a.ensure(R(is_int))
        return (as_int(a.pos(0)) % 2 == 0) == even if as_int(a.pos(0)) >= 0 else \
            ((abs(as_int(a.pos(0))) % 2 == 0) == even)
    return fn


def _divisibleby(a: Args) -> bool:
    a.ensure(R(is_int), R(is_int))
    x, y = as_int(a.pos(0)), as_int(a.pos(1))
    if y == 0:
        raise EngineError("integer division by zero")
    return abs(x) % abs(y) == 0


def _test_test(a: Args) -> bool:
    a.ensure(R(is_str))
    return ("test_is_" + str(a.pos(0))) in GLOBALS


def _lower_upper(upper: bool) -> Builtin:
    def fn(a: Args) -> bool:
        a.ensure(R(is_str))
        s = a.pos(0)
        if upper:
            return all(not any("a" <= c <= "z" for c in t) for t, _ in s.parts)
        return all(not any("A" <= c <= "Z" for c in t) for t, _ in s.parts)
    return fn


GLOBALS: dict[str, Builtin] = {
    "raise_exception": _raise_exception,
    "dict": toobject,
    "namespace": toobject,
    "strftime_now": _strftime_now,
    "range": _range,
    "tojson": tojson,
    "test_is_boolean": _type_test(is_bool),
    "test_is_callable": _type_test(is_func),
    "test_is_odd": _odd_even(False),
    "test_is_even": _odd_even(True),
    "test_is_false": lambda a: (a.ensure_count(1), type(a.pos(0)) is bool and not a.pos(0))[1],
    "test_is_true": lambda a: (a.ensure_count(1), type(a.pos(0)) is bool and a.pos(0))[1],
    "test_is_divisibleby": _divisibleby,
    "test_is_string": _type_test(is_str),
    "test_is_integer": _type_test(is_int),
    "test_is_float": _type_test(is_float),
    "test_is_number": _type_test(is_int, is_float),
    "test_is_iterable": _type_test(is_obj, is_arr, is_str, is_undef),
    "test_is_sequence": _type_test(is_obj, is_arr, is_str, is_undef),
    "test_is_mapping": _type_test(is_obj),
    "test_is_lower": _lower_upper(False),
    "test_is_upper": _lower_upper(True),
    "test_is_none": _type_test(is_none),
    "test_is_defined": lambda a: (a.ensure_count(1), not is_undef(a.pos(0)))[1],
    "test_is_undefined": _type_test(is_undef),
    "test_is_eq": _cmp_test("eq"),
    "test_is_equalto": _cmp_test("eq"),
    "test_is_ge": _cmp_test("ge"),
    "test_is_gt": _cmp_test("gt"),
    "test_is_greaterthan": _cmp_test("gt"),
    "test_is_lt": _cmp_test("lt"),
    "test_is_lessthan": _cmp_test("lt"),
    "test_is_ne": _cmp_test("ne"),
    "test_is_in": test_in,
    "test_is_test": _test_test,
    "test_is_sameas": _sameas,
    "test_is_escaped": _not_impl("escaped test not implemented"),
    "test_is_filter": _not_impl("filter test not implemented"),
}


# --- numbers ------------------------------------------------------------------------------------

def _num_builtins(kind: Callable[[Any], bool]) -> dict[str, Builtin]:
    def _abs(a: Args) -> Any:
        a.ensure(R(kind))
        return abs(a.pos(0))

    def _int(a: Args) -> int:
        a.ensure(R(kind))
        return as_int(a.pos(0))

    def _float(a: Args) -> float:
        a.ensure(R(kind))
        return float(a.pos(0))

    return {"default": default_value, "abs": _abs, "int": _int, "float": _float,
            "safe": tojson, "string": tojson, "tojson": tojson}


INT_BUILTINS = _num_builtins(is_int)
FLOAT_BUILTINS = _num_builtins(is_float)


# --- strings ------------------------------------------------------------------------------------

_UPPER = {c: c - 32 for c in range(ord("a"), ord("z") + 1)}
_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
C_SPACE = " \t\n\v\f\r"


def _per_part(s: JStr, fn: Callable[[str], str]) -> JStr:
    # llama.cpp: string.cpp apply_transform — one-to-one per part, flags kept
    return JStr.join_parts([(fn(t), f) for t, f in s.parts])


def c_upper(t: str) -> str:
    return t.translate(_UPPER)


def c_lower(t: str) -> str:
    return t.translate(_LOWER)


def _capitalize(t: str) -> str:
    return c_upper(t[:1]) + c_lower(t[1:]) if t else t


def _title(t: str) -> str:
    out = []
    cap = True
    for c in t:
        if c in C_SPACE:
            cap = True
            out.append(c)
        elif cap:
            out.append(c_upper(c))
            cap = False
        else:
            out.append(c_lower(c))
    return "".join(out)


def strip_jstr(s: JStr, left: bool, right: bool, chars: str | None = None) -> JStr:
    # llama.cpp: string.cpp string::strip — strip first/last parts, dropping parts emptied
    parts = list(s.parts)
    if not parts:
        return s
    cset = enc(chars) if chars is not None else enc(C_SPACE)

    def strip_part(t: str, lft: bool) -> str:
        if chars is None or chars.isascii() and t.isascii():
            c = chars if chars is not None else C_SPACE
            return t.lstrip(c) if lft else t.rstrip(c)
        b = enc(t)
        return dec(b.lstrip(cset) if lft else b.rstrip(cset))

    if left:
        while parts:
            t = strip_part(parts[0][0], True)
            if t:
                parts[0] = (t, parts[0][1])
                break
            parts.pop(0)
    if right:
        while parts:
            t = strip_part(parts[-1][0], False)
            if t:
                parts[-1] = (t, parts[-1][1])
                break
            parts.pop()
    return JStr.join_parts(parts)


def _strip(left: bool, right: bool, check_first: bool = False) -> Builtin:
    def fn(a: Args) -> JStr:
        if check_first:
            if not is_str(a.pos(0)):
                raise RaisedException("strip() first argument must be a string")
        else:
            a.ensure(R(is_str))
        chars = a.kwarg_or_pos("chars", 1)
        return strip_jstr(a.pos(0), left, right, None if is_undef(chars) else str(as_string(chars)))
    return fn


def _split(reverse: bool) -> Builtin:
    def fn(a: Args) -> list[JStr]:
        a.ensure_count(1, 3)
        v = a.pos(0)
        if not is_str(v):
            raise RaisedException(("rsplit" if reverse else "split") + "() first argument must be a string")
        s = str(v)
        delim = str(as_string(a.pos(1))) if a.count() > 1 else " "
        if not delim:
            raise RaisedException("empty separator")
        maxsplit = as_int(a.pos(2)) if a.count() > 2 else -1
        pieces = s.rsplit(delim, maxsplit) if reverse else s.split(delim, maxsplit)
        # every piece but the remainder is template text; the remainder inherits the marks
        if reverse:
            out = [mk(p) for p in pieces[1:]]
            out.insert(0, mk(pieces[0]).marked_like(v))
            return out
        out = [mk(p) for p in pieces[:-1]]
        out.append(mk(pieces[-1]).marked_like(v))
        return out
    return fn


def _replace(a: Args) -> JStr:
    a.ensure(R(is_str), R(is_str), R(is_str), O(is_int))
    s, old, new = str(a.pos(0)), str(as_string(a.pos(1))), str(as_string(a.pos(2)))
    count = as_int(a.pos(3)) if a.count() > 3 else -1
    if count > 0:
        raise NotImplementedInEngine("NotImplemented: String replace with count argument not implemented")
    if old != new:
        if not old:
            b, nb = enc(s), enc(new)
            s = dec(nb + b"".join(bytes([c]) + nb for c in b))
        else:
            a.ctx.root.budget.charge_bytes(len(s) + len(new) * s.count(old))
            s = s.replace(old, new)
    return mk(s).marked_like(a.pos(0))


def _format(a: Args) -> JStr:
    v = a.pos(0)
    if not is_str(v):
        raise RaisedException("format() first argument must be a string")
    fmt_input = v.all_input()
    s = str(v)
    parts: list[tuple[str, bool]] = []
    lit: list[str] = []
    argi = 1
    i = 0
    while i < len(s):
        if s[i] != "{":
            lit.append(s[i])
            i += 1
            continue
        if i + 1 >= len(s) or s[i + 1] != "}":
            raise NotImplementedInEngine("NotImplemented: format() only supports simple '{}' placeholders")
        i += 2
        if lit:
            parts.append(("".join(lit), fmt_input))
            lit = []
        parts.extend(as_string(a.pos(argi)).parts)
        argi += 1
    if lit:
        parts.append(("".join(lit), fmt_input))
    return JStr.join_parts(parts)


_STOI = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX])?([0-9a-zA-Z]*)")


def c_stoi(s: str, base: int) -> int | None:
    """std::stoi: leading space, sign, base prefix, longest digit run; None when it throws."""
    m = _STOI.match(s)
    assert m is not None
    sign, prefix, rest = m.group(1), m.group(2), m.group(3)
    if base == 0:
        if prefix:
            base = 16
        elif rest.startswith("0"):
            base = 8
        else:
            base = 10
    elif prefix and base != 16:
        rest = "0"  # "0x" with another base parses the single "0"
        prefix = None
    if prefix and base == 16 and not rest[:1] or prefix and not _digit_ok(rest[:1], 16):
        rest = "0"  # strtol falls back to the "0" before a bare "0x"
    digits = ""
    for c in rest:
        if _digit_ok(c, base):
            digits += c
        else:
            break
    if not digits:
        return None
    v = int(digits, base) * (-1 if sign == "-" else 1)
    if not -(2**31) <= v < 2**31:
        return None
    return v


def _digit_ok(c: str, base: int) -> bool:
    if not c:
        return False
    if c.isdigit() and c.isascii():
        return int(c) < base
    if c.isascii() and c.isalpha():
        return ord(c.lower()) - ord("a") + 10 < base
    return False


_STOD = re.compile(r"[ \t\n\v\f\r]*([+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan))",
                   re.IGNORECASE)


def c_stod(s: str) -> float | None:
    m = _STOD.match(s)
    if not m:
        return None
    v = float(m.group(1))
    if v in (float("inf"), float("-inf")) and "inf" not in m.group(1).lower():
        return None  # std::stod throws out_of_range on overflow
    return v


def _str_int(a: Args) -> int:
    v = a.pos(0)
    dflt = a.kwarg_or_pos("default", 1)
    vbase = a.kwarg_or_pos("base", 2)
    base = 10 if is_undef(vbase) else as_int(vbase)
    if base != 0 and (base < 2 or base > 36):
        raise RaisedException("int() base must be 0 or between 2 and 36")
    if not is_str(v):
        raise RaisedException("int() first argument must be a string")
    r = c_stoi(str(v), base)
    if r is None:
        return 0 if is_undef(dflt) else as_int(dflt)
    return r


def _str_float(a: Args) -> float:
    a.ensure(R(is_str))
    dflt = a.kwarg_or_pos("default", 1)
    r = c_stod(str(a.pos(0)))
    if r is None:
        return 0.0 if is_undef(dflt) else as_float(dflt)
    return r


def _str_slice(a: Args) -> JStr:
    a.ensure_count(1, 4)
    a.ensure(R(is_str), R(is_int), O(is_int), O(is_int))
    start, stop, step = _slice_args(a)
    v = a.pos(0)
    b = enc(str(v))
    out = py_slice(b, start, stop, step)
    assert isinstance(out, bytes)
    return mk(dec(out)).marked_like(v)


def _indent_exact(a: Args) -> JStr:
    # mirrors the reference loop literally: "first" is decided by `indented.empty()`
    a.ensure_count(1, 4)
    v = a.pos(0)
    width = a.kwarg_or_pos("width", 1)
    first = as_bool(a.kwarg_or_pos("first", 2))
    blank = as_bool(a.kwarg_or_pos("blank", 3))
    if not is_str(v):
        raise RaisedException("indent() first argument must be a string")
    if is_int(width):
        ind = " " * max(as_int(width), 0)
    elif is_str(width):
        ind = str(width)
    else:
        ind = "    "
    s = str(v)
    lines = s.split("\n")
    if s.endswith("\n") or not s:
        lines.pop()
    out: list[str] = []
    n = 0
    for line in lines:
        if n:
            out.append("\n")
            n += 1
        if (first if n == 0 else (line != "" or blank)):
            out.append(ind)
            n += len(ind)
        out.append(line)
        n += len(line)
    text = "".join(out)
    if s.endswith("\n"):
        text += "\n"
        if blank:
            text += ind
    return mk(text).marked_like(v)


def _str_default(a: Args) -> Any:
    return default_value(a)


def _safe_str(a: Args) -> Any:
    a.ensure(R(is_str))
    return a.pos(0)


def _string_str(a: Args) -> JStr:
    a.ensure(R(is_str))
    return a.pos(0)


def _startswith(end: bool) -> Builtin:
    def fn(a: Args) -> bool:
        a.ensure(R(is_str), R(is_str))
        s, x = str(a.pos(0)), str(a.pos(1))
        return s.endswith(x) if end else s.startswith(x)
    return fn


def _str_len(a: Args) -> int:
    a.ensure(R(is_str))
    return blen(str(a.pos(0)))


def _transform(fn: Callable[[str], str]) -> Builtin:
    def f(a: Args) -> JStr:
        a.ensure(R(is_str))
        return _per_part(a.pos(0), fn)
    return f


STRING_BUILTINS: dict[str, Builtin] = {
    "default": _str_default,
    "upper": _transform(c_upper),
    "lower": _transform(c_lower),
    "strip": _strip(True, True, check_first=True),
    "rstrip": _strip(False, True),
    "lstrip": _strip(True, False),
    "title": _transform(_title),
    "capitalize": _transform(_capitalize),
    "length": _str_len,
    "startswith": _startswith(False),
    "endswith": _startswith(True),
    "split": _split(False),
    "rsplit": _split(True),
    "replace": _replace,
    "format": _format,
    "int": _str_int,
    "float": _str_float,
    "string": _string_str,
    "slice": _str_slice,
    "safe": _safe_str,
    "tojson": tojson,
    "indent": _indent_exact,
    "join": _not_impl("String join builtin not implemented"),
}


# --- bools --------------------------------------------------------------------------------------

def _bool_str(a: Args) -> JStr:
    a.ensure(R(is_bool))
    return mk("True" if a.pos(0) else "False")


BOOL_BUILTINS: dict[str, Builtin] = {
    "default": default_value,
    "int": lambda a: (a.ensure(R(is_bool)), int(a.pos(0)))[1],
    "float": lambda a: (a.ensure(R(is_bool)), float(a.pos(0)))[1],
    "safe": _bool_str,
    "string": _bool_str,
    "tojson": tojson,
}


# --- arrays -------------------------------------------------------------------------------------

def _same_kind(src: Any, items: list[Any]) -> Any:
    return tuple(items) if type(src) is tuple else items


def _arr_list(a: Args) -> list[Any]:
    a.ensure(R(is_arr))
    return list(a.pos(0))


def _first_last(last: bool) -> Builtin:
    def fn(a: Args) -> Any:
        a.ensure(R(is_arr))
        arr = a.pos(0)
        if not arr:
            return UNDEFINED
        return arr[-1] if last else arr[0]
    return fn


def _arr_slice(a: Args) -> Any:
    a.ensure_count(1, 4)
    a.ensure(R(is_arr), R(is_int), O(is_int), O(is_int))
    start, stop, step = _slice_args(a)
    out = py_slice(list(a.pos(0)), start, stop, step)
    assert isinstance(out, list)
    return _same_kind(a.pos(0), out)


def _arr_join(a: Args) -> JStr:
    a.ensure_count(1, 3)
    if not is_arr(a.pos(0)):
        raise RaisedException("join() first argument must be an array")
    delim_v = a.kwarg_or_pos("d", 1)
    attribute = a.kwarg_or_pos("attribute", 2)
    delim = "" if is_undef(delim_v) else str(as_string(delim_v))
    out = []
    for x in a.pos(0):
        if not is_undef(attribute):
            x = get_attribute(x, attribute, UNDEFINED)
        if not (is_str(x) or is_int(x) or is_float(x)):
            raise RaisedException("join() can only join arrays of strings or numerics")
        out.append(str(as_string(x)))
    # many-to-one: the result is a new template string (input marks are not kept)
    return mk(delim.join(out))


def _arr_string(a: Args) -> JStr:
    a.ensure(R(is_arr))
    return as_string(a.pos(0))


def _map(a: Args) -> Any:
    a.ensure_count(2)
    if not is_arr(a.pos(0)):
        raise RaisedException("map: first argument must be an array")
    if type(a.args[1]) is not Kwarg:
        raise NotImplementedInEngine("NotImplemented: map: filter-mapping not implemented")
    attribute = a.kwarg_or_pos("attribute", 1)
    dflt = a.kwarg("default", UNDEFINED)
    return _same_kind(a.pos(0), [get_attribute(x, attribute, dflt) for x in a.pos(0)])


def _append(a: Args) -> Any:
    a.ensure_count(2)
    arr = a.pos(0)
    if not is_arr(arr):
        raise RaisedException("append: first argument must be an array")
    if type(arr) is tuple:
        raise EngineError("Attempting to modify immutable type")
    arr.append(a.pos(1))
    return arr


def _pop(a: Args) -> Any:
    a.ensure_count(1, 2)
    a.ensure(R(is_arr), O(is_int))
    arr = a.pos(0)
    idx = as_int(a.pos(1)) if a.count() == 2 else -1
    if type(arr) is tuple:
        raise EngineError("Attempting to modify immutable type")
    if idx < 0:
        idx += len(arr)
    if idx < 0 or idx >= len(arr):
        raise EngineError(f"Index {idx} out of bounds for array of size {len(arr)}")
    return arr.pop(idx)


def _cmp_key(lt: Callable[[Any, Any], bool]) -> Callable[[Any], Any]:
    return functools.cmp_to_key(lambda x, y: -1 if lt(x, y) else (1 if lt(y, x) else 0))


def _sort(a: Args) -> Any:
    a.ensure_count(1, 4)
    if not is_arr(a.pos(0)):
        raise RaisedException("sort: first argument must be an array")
    reverse = as_bool(a.kwarg_or_pos("reverse", 1))
    attribute = a.kwarg_or_pos("attribute", 3)
    op = "gt" if reverse else "lt"

    def get(x: Any) -> Any:
        return x if is_undef(attribute) else get_attribute(x, attribute, UNDEFINED)

    # std::sort; stable for the short arrays templates sort (insertion sort below 16)
    items = sorted(a.pos(0), key=_cmp_key(lambda x, y: compare(get(x), get(y), op)))
    return _same_kind(a.pos(0), items)


def _reverse(a: Args) -> Any:
    a.ensure(R(is_arr))
    return _same_kind(a.pos(0), list(reversed(a.pos(0))))


def _minmax(op: str) -> Builtin:
    def fn(a: Args) -> Any:
        a.ensure_count(1, 4)
        a.ensure(R(is_arr))
        attribute = a.kwarg_or_pos("attribute", 2)
        arr = a.pos(0)
        if not arr:
            return UNDEFINED
        res = arr[0]
        for x in arr:
            xa, ra = x, res
            if not is_undef(attribute):
                xa = get_attribute(xa, attribute, UNDEFINED)
                ra = get_attribute(ra, attribute, UNDEFINED)
            if compare(xa, ra, op):
                res = x
        return res
    return fn


ARRAY_BUILTINS: dict[str, Builtin] = {
    "default": default_value,
    "list": _arr_list,
    "first": _first_last(False),
    "last": _first_last(True),
    "length": lambda a: (a.ensure(R(is_arr)), len(a.pos(0)))[1],
    "slice": _arr_slice,
    "selectattr": _selectattr(False),
    "select": _selectattr(False),
    "rejectattr": _selectattr(True),
    "reject": _selectattr(True),
    "join": _arr_join,
    "string": _arr_string,
    "tojson": tojson,
    "map": _map,
    "append": _append,
    "pop": _pop,
    "sort": _sort,
    "reverse": _reverse,
    "min": _minmax("lt"),
    "max": _minmax("gt"),
    "unique": _not_impl("Array unique builtin not implemented"),
}


# --- objects ------------------------------------------------------------------------------------

def _get(a: Args) -> Any:
    a.ensure_count(2, 3)
    if not is_obj(a.pos(0)):
        raise RaisedException("get: first argument must be an object")
    if not is_str(a.pos(1)):
        raise RaisedException("get: second argument must be a string (key)")
    dflt = a.pos(2) if a.count() == 3 else None
    return obj_get(a.pos(0), a.pos(1), dflt)


def _dictsort(a: Args) -> Obj:
    v = a.pos(0)
    by = a.kwarg_or_pos("by", 2)
    reverse = as_bool(a.kwarg_or_pos("reverse", 3))
    by_value = is_str(by) and str(by) == "value"
    op = "gt" if reverse else "lt"
    if not is_obj(v):
        raise EngineError(f"{type_name(v)} is not an object value")
    pairs = sorted(v.items(), key=_cmp_key(lambda x, y: compare(x[1] if by_value else x[0],
                                                                  y[1] if by_value else y[0], op)))
    out = Obj()
    for k, x in pairs:
        obj_insert(out, k, x)
    return out


def _obj_items(a: Args) -> list[tuple[Any, Any]]:
    a.ensure(R(is_obj))
    return [(k, x) for k, x in a.pos(0).items()]


OBJECT_BUILTINS: dict[str, Builtin] = {
    "get": _get,
    "keys": lambda a: (a.ensure(R(is_obj)), list(a.pos(0).keys()))[1],
    "values": lambda a: (a.ensure(R(is_obj)), list(a.pos(0).values()))[1],
    "items": _obj_items,
    "tojson": tojson,
    "string": lambda a: (a.ensure(R(is_obj)), as_string(a.pos(0)))[1],
    "length": lambda a: (a.ensure(R(is_obj)), len(a.pos(0)))[1],
    "dictsort": _dictsort,
    "join": _not_impl("object join not implemented"),
}


# --- none / undefined ---------------------------------------------------------------------------

NONE_BUILTINS: dict[str, Builtin] = {
    "default": default_value,
    "tojson": tojson,
    "string": lambda a: mk("None"),
    "safe": lambda a: mk("None"),
    "items": _empty("arr"),
    "map": _empty("arr"),
    "reject": _empty("arr"),
    "rejectattr": _empty("arr"),
    "select": _empty("arr"),
    "selectattr": _empty("arr"),
    "unique": _empty("arr"),
}

UNDEFINED_BUILTINS: dict[str, Builtin] = {
    "default": default_value,
    "capitalize": _empty("str"),
    "first": _empty("undef"),
    "items": _empty("arr"),
    "join": _empty("str"),
    "last": _empty("undef"),
    "length": _empty("int"),
    "list": _empty("arr"),
    "lower": _empty("str"),
    "map": _empty("arr"),
    "max": _empty("undef"),
    "min": _empty("undef"),
    "reject": _empty("arr"),
    "rejectattr": _empty("arr"),
    "replace": _empty("str"),
    "reverse": _empty("arr"),
    "safe": _empty("str"),
    "select": _empty("arr"),
    "selectattr": _empty("arr"),
    "sort": _empty("arr"),
    "string": _empty("str"),
    "strip": _empty("str"),
    "sum": _empty("int"),
    "title": _empty("str"),
    "truncate": _empty("str"),
    "unique": _empty("arr"),
    "upper": _empty("str"),
    "wordcount": _empty("int"),
}


def builtins_of(v: Any) -> dict[str, Builtin]:
    """value_t::get_builtins of v's type (raises like the reference for types without)."""
    t = type(v)
    if t is JStr:
        return STRING_BUILTINS
    if t is list or t is tuple:
        return ARRAY_BUILTINS
    if t is Obj:
        return OBJECT_BUILTINS if v.builtins else {}
    if t is bool:
        return BOOL_BUILTINS
    if t is int:
        return INT_BUILTINS
    if t is float:
        return FLOAT_BUILTINS
    if v is None:
        return NONE_BUILTINS
    if t is Undefined:
        return UNDEFINED_BUILTINS
    raise EngineError(f"{type_name(v)} has no builtins")


__all__ = ["GLOBALS", "Args", "builtins_of", "get_attribute", "array_at", "test_in", "is_num"]
