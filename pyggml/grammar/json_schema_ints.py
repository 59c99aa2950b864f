"""Repetitions and integer ranges as GBNF text.

llama.cpp: common/json-schema-to-grammar.cpp build_repetition, build_min_max_int.
Values are int64 (the reference negates with two's complement wrap-around: ``-INT64_MIN`` is
INT64_MIN again) and the range generator works on decimal strings, one digit position at a time.
"""

from __future__ import annotations

import functools

from .json_schema_value import INT64_MAX, INT64_MIN, INT_MAX, wrap64


class RangeFail(Exception):
    """build_min_max_int's std::runtime_error (neither bound set)."""


def build_repetition(item_rule: str, min_items: int, max_items: int, separator_rule: str = "") -> str:
    """llama.cpp: build_repetition (``max_items == INT_MAX`` means unbounded)."""
    has_max = max_items != INT_MAX
    if max_items == 0:
        return ""
    if min_items == 0 and max_items == 1:
        return item_rule + "?"
    if not separator_rule:
        if min_items == 1 and not has_max:
            return item_rule + "+"
        if min_items == 0 and not has_max:
            return item_rule + "*"
        return item_rule + "{" + str(min_items) + "," + (str(max_items) if has_max else "") + "}"
    result = (
        item_rule
        + " "
        + build_repetition(
            "(" + separator_rule + " " + item_rule + ")",
            0 if min_items == 0 else min_items - 1,
            max_items - 1 if has_max else max_items,
        )
    )
    if min_items == 0:
        result = "(" + result + ")?"
    return result


def _digit_range(out: list[str], a: str, b: str) -> None:
    out.append("[" + (a if a == b else a + "-" + b) + "]")


def _more_digits(out: list[str], min_digits: int, max_digits: int) -> None:
    out.append("[0-9]")
    if min_digits == max_digits == 1:
        return
    out.append("{" + str(min_digits))
    if max_digits != min_digits:
        out.append(",")
        if max_digits != INT_MAX:
            out.append(str(max_digits))
    out.append("}")


def _ch(c: str, d: int) -> str:
    return chr(ord(c) + d)  # char arithmetic of the reference ('0' - 1 is '/')


def _uniform_range(out: list[str], frm: str, to: str) -> None:
    out.append(_uniform_range_text(frm, to))


@functools.lru_cache(maxsize=4096)
def _uniform_range_text(frm: str, to: str) -> str:
    """The text uniform_range writes for two digit strings (a pure function: cached, the
    same sub-ranges recur across the digit lengths of one range and across schemas)."""
    out: list[str] = []
    i = 0
    while i < len(frm) and i < len(to) and frm[i] == to[i]:
        i += 1
    if i > 0:
        out.append('"' + frm[:i] + '"')
    if i < len(frm) and i < len(to):
        if i > 0:
            out.append(" ")
        sub_len = len(frm) - i - 1
        if sub_len > 0:
            from_sub = frm[i + 1 :]
            to_sub = to[i + 1 :]
            sub_zeros = "0" * sub_len
            sub_nines = "9" * sub_len
            to_reached = False
            out.append("(")
            if from_sub == sub_zeros:
                _digit_range(out, frm[i], _ch(to[i], -1))
                out.append(" ")
                _more_digits(out, sub_len, sub_len)
            else:
                out.append("[" + frm[i] + "] ")
                out.append("(")
                _uniform_range(out, from_sub, sub_nines)
                out.append(")")
                if ord(frm[i]) < ord(to[i]) - 1:
                    out.append(" | ")
                    if to_sub == sub_nines:
                        _digit_range(out, _ch(frm[i], 1), to[i])
                        to_reached = True
                    else:
                        _digit_range(out, _ch(frm[i], 1), _ch(to[i], -1))
                    out.append(" ")
                    _more_digits(out, sub_len, sub_len)
            if not to_reached:
                out.append(" | ")
                _digit_range(out, to[i], to[i])
                out.append(" ")
                _uniform_range(out, sub_zeros, to_sub)
            out.append(")")
        else:
            out.append("[" + frm[i] + "-" + to[i] + "]")
    return "".join(out)


def build_min_max_int(
    min_value: int, max_value: int, out: list[str], decimals_left: int = 16, top_level: bool = True
) -> None:
    """llama.cpp: build_min_max_int (INT64_MIN / INT64_MAX stand for an absent bound)."""
    has_min = min_value != INT64_MIN
    has_max = max_value != INT64_MAX

    if has_min and has_max:
        if min_value < 0 and max_value < 0:
            out.append('"-" (')
            build_min_max_int(wrap64(-max_value), wrap64(-min_value), out, decimals_left, True)
            out.append(")")
            return
        if min_value < 0:
            out.append('"-" (')
            build_min_max_int(0, wrap64(-min_value), out, decimals_left, True)
            out.append(") | ")
            min_value = 0
        min_s = str(min_value)
        max_s = str(max_value)
        for digits in range(len(min_s), len(max_s)):
            _uniform_range(out, min_s, "9" * digits)
            min_s = "1" + "0" * digits
            out.append(" | ")
        _uniform_range(out, min_s, max_s)
        return

    less_decimals = max(decimals_left - 1, 1)

    if has_min:
        if min_value < 0:
            out.append('"-" (')
            build_min_max_int(INT64_MIN, wrap64(-min_value), out, decimals_left, False)
            out.append(") | [0] | [1-9] ")
            _more_digits(out, 0, decimals_left - 1)
        elif min_value == 0:
            if top_level:
                out.append("[0] | [1-9] ")
                _more_digits(out, 0, less_decimals)
            else:
                _more_digits(out, 1, decimals_left)
        elif min_value <= 9:
            c = chr(ord("0") + min_value)
            range_start = "1" if top_level else "0"
            if c > range_start:
                _digit_range(out, range_start, _ch(c, -1))
                out.append(" ")
                _more_digits(out, 1, less_decimals)
                out.append(" | ")
            _digit_range(out, c, "9")
            out.append(" ")
            _more_digits(out, 0, less_decimals)
        else:
            min_s = str(min_value)
            n = len(min_s)
            c = min_s[0]
            if c > "1":
                _digit_range(out, "1" if top_level else "0", _ch(c, -1))
                out.append(" ")
                _more_digits(out, n, less_decimals)
                out.append(" | ")
            _digit_range(out, c, c)
            out.append(" (")
            build_min_max_int(int(min_s[1:]), INT64_MAX, out, less_decimals, False)
            out.append(")")
            if c < "9":
                out.append(" | ")
                _digit_range(out, _ch(c, 1), "9")
                out.append(" ")
                _more_digits(out, n - 1, less_decimals)
        return

    if has_max:
        if max_value >= 0:
            if top_level:
                out.append('"-" [1-9] ')
                _more_digits(out, 0, less_decimals)
                out.append(" | ")
            build_min_max_int(0, max_value, out, decimals_left, True)
        else:
            out.append('"-" (')
            build_min_max_int(wrap64(-max_value), INT64_MAX, out, decimals_left, False)
            out.append(")")
        return

    raise RangeFail("At least one of min_value or max_value must be set")
