"""A JSON schema ``pattern`` (an anchored regex) -> GBNF, the reference's small translator.

llama.cpp: common/json-schema-to-grammar.cpp common_chat_schema_converter::_pattern_to_rule and
gbnf_escape_length.  Two failure kinds, as there: ``UnsupportedPattern`` (a valid regex with no
grammar equivalent: the caller degrades to any string and records a warning) and
``InvalidPattern`` (not a regex at all: a conversion error).

The reference walks the pattern's UTF-8 bytes, and that shows: a quantifier after a multi-byte
character repeats only its last byte (``"é+"`` becomes ``"\xc3" "\xa9"+``, two literals).  So the
walk here is over bytes too (a str holding one byte per character, latin-1), and the rules are
decoded back with surrogateescape, which keeps such cut sequences as lone surrogates.
"""

from __future__ import annotations

from collections.abc import Callable

from .json_schema_ints import build_repetition
from .json_schema_value import INT_MAX

MAX_PATTERN_DEPTH = 100

NON_LITERAL_SET = frozenset("|.()[]{}*+?^$")
ESCAPED_IN_REGEXPS_BUT_NOT_IN_LITERALS = frozenset("^$.[](){}|*+?")
_HEX = frozenset("0123456789abcdefABCDEF")


class UnsupportedPattern(Exception):
    pass


class InvalidPattern(Exception):
    pass


def _to_bytes(s: str) -> str:
    return s.encode("utf-8", "surrogateescape").decode("latin-1")


def _from_bytes(s: str) -> str:
    return s.encode("latin-1").decode("utf-8", "surrogateescape")


def gbnf_escape_length(pattern: str, pos: int) -> int:
    """llama.cpp: gbnf_escape_length -- length of a GBNF-compatible escape at pos, else 0."""
    if pos + 1 >= len(pattern) or pattern[pos] != "\\":
        return 0
    c = pattern[pos + 1]
    if c == "x":
        n_hex = 2
    elif c == "u":
        n_hex = 4
    elif c == "U":
        n_hex = 8
    elif c in 'trn\\"[]-':
        return 2
    else:
        return 0
    if pos + 2 + n_hex > len(pattern):
        return 0
    if not all(h in _HEX for h in pattern[pos + 2 : pos + 2 + n_hex]):
        return 0
    return 2 + n_hex


def _stoi(s: str) -> int:
    """std::stoi: leading whitespace, a sign, decimal digits; ValueError where it throws."""
    i = 0
    while i < len(s) and s[i] in " \t\n\v\f\r":
        i += 1
    j = i
    if j < len(s) and s[j] in "+-":
        j += 1
    k = j
    while k < len(s) and "0" <= s[k] <= "9":
        k += 1
    if k == j:
        raise ValueError("invalid_argument")
    v = int(s[i:k])
    if not -(1 << 31) <= v <= INT_MAX:
        raise ValueError("out_of_range")
    return v


LiteralOrRule = tuple[str, bool]


def _to_rule(ls: LiteralOrRule) -> str:
    return '"' + ls[0] + '"' if ls[1] else ls[0]


def pattern_to_rule(pattern: str, name: str, add_rule: Callable[[str, str], str], dotall: bool) -> str:
    """Translate ``pattern`` into rules added through ``add_rule``; returns the rule name."""
    try:
        return _pattern_to_rule(
            _to_bytes(pattern), _to_bytes(name), lambda n, r: add_rule(_from_bytes(n), _from_bytes(r)), dotall
        )
    except UnsupportedPattern as e:
        raise UnsupportedPattern(_from_bytes(str(e))) from None
    except InvalidPattern as e:
        raise InvalidPattern(_from_bytes(str(e))) from None


def _pattern_to_rule(pattern: str, name: str, add_rule: Callable[[str, str], str], dotall: bool) -> str:
    if len(pattern) < 2 or pattern[0] != "^" or pattern[-1] != "$":
        raise UnsupportedPattern("not anchored with '^' and '$'")
    sp = pattern[1:-1]
    length = len(sp)
    sub_rule_ids: dict[str, str] = {}
    state = {"i": 0, "depth": 0}

    def get_dot() -> str:
        return add_rule("dot", "[\\U00000000-\\U0010FFFF]" if dotall else "[^\\x0A\\x0D]")

    def join_seq(seq: list[LiteralOrRule]) -> LiteralOrRule:
        # consecutive literals merge into one
        ret: list[LiteralOrRule] = []
        literal = ""
        for text, is_literal in seq:
            if is_literal:
                literal += text
            else:
                if literal:
                    ret.append((literal, True))
                    literal = ""
                ret.append((text, False))
        if literal:
            ret.append((literal, True))
        return " ".join(_to_rule(x) for x in ret), False

    def transform() -> LiteralOrRule:
        seq: list[LiteralOrRule] = []
        while state["i"] < length:
            i = state["i"]
            c = sp[i]
            if c == ".":
                seq.append((get_dot(), False))
                state["i"] = i + 1
            elif c == "(":
                i += 1
                if i < length and sp[i] == "?":
                    if i + 1 < length and sp[i + 1] == ":":
                        i += 2  # non-capturing group: a plain group here
                    else:
                        raise UnsupportedPattern("unsupported group syntax")
                state["i"] = i
                state["depth"] += 1
                if state["depth"] > MAX_PATTERN_DEPTH:
                    raise UnsupportedPattern("pattern nesting too deep")
                seq.append(("(" + _to_rule(transform()) + ")", False))
            elif c == ")":
                state["i"] = i + 1
                if state["depth"] == 0:
                    raise InvalidPattern("unbalanced parentheses")
                state["depth"] -= 1
                return join_seq(seq)
            elif c in "^$":
                raise UnsupportedPattern("anchor inside the pattern")
            elif c == "[":
                sq = c
                i += 1
                while i < length and sp[i] != "]":
                    if sp[i] == "\\":
                        n = gbnf_escape_length(sp, i)
                        if n == 0:
                            raise UnsupportedPattern(
                                "unsupported escape in character class: " + sp[i : i + 2]
                            )
                        sq += sp[i : i + n]
                        i += n
                    else:
                        sq += sp[i]
                        i += 1
                if i >= length:
                    raise InvalidPattern("unterminated character class")
                sq += "]"
                state["i"] = i + 1
                seq.append((sq, False))
            elif c == "|":
                seq.append(("|", False))
                state["i"] = i + 1
            elif c in "*+?":
                if not seq:
                    raise InvalidPattern("nothing to repeat")
                seq[-1] = (_to_rule(seq[-1]) + c, False)
                state["i"] = i + 1
            elif c == "{":
                curly = c
                i += 1
                while i < length and sp[i] != "}":
                    curly += sp[i]
                    i += 1
                if i >= length:
                    raise UnsupportedPattern("unterminated curly brackets")
                curly += "}"
                state["i"] = i + 1
                nums = curly[1:-1].split(",")
                min_times, max_times = 0, INT_MAX
                if len(nums) not in (1, 2):
                    raise UnsupportedPattern("wrong number of values in curly brackets")
                try:
                    if len(nums) == 1:
                        min_times = max_times = _stoi(nums[0])
                    else:
                        if nums[0]:
                            min_times = _stoi(nums[0])
                        if nums[1]:
                            max_times = _stoi(nums[1])
                except ValueError:
                    raise UnsupportedPattern("invalid number in curly brackets") from None
                if not seq:
                    raise InvalidPattern("nothing to repeat")
                sub, sub_is_literal = seq[-1]
                if not sub_is_literal:
                    sub_id = sub_rule_ids.get(sub, "")
                    if not sub_id:
                        # operator[] inserts before size() is read: the first sub-rule is name-1
                        sub_rule_ids[sub] = ""
                        sub_id = add_rule(name + "-" + str(len(sub_rule_ids)), sub)
                        sub_rule_ids[sub] = sub_id
                    sub = sub_id
                seq[-1] = (
                    build_repetition('"' + sub + '"' if sub_is_literal else sub, min_times, max_times, ""),
                    False,
                )
            else:
                literal = ""
                while i < length:
                    ch = sp[i]
                    if ch == "\\":
                        if i == length - 1:
                            raise InvalidPattern("trailing backslash")
                        nxt = sp[i + 1]
                        if nxt in ESCAPED_IN_REGEXPS_BUT_NOT_IN_LITERALS:
                            literal += nxt
                            i += 2
                        else:
                            n = gbnf_escape_length(sp, i)
                            if n == 0:
                                raise UnsupportedPattern("unsupported escape: " + sp[i : i + 2])
                            literal += sp[i : i + n]
                            i += n
                    elif ch == '"':
                        literal += '\\"'
                        i += 1
                    elif ch not in NON_LITERAL_SET and (
                        i == length - 1 or not literal or sp[i + 1] == "." or sp[i + 1] not in NON_LITERAL_SET
                    ):
                        literal += ch
                        i += 1
                    else:
                        break
                state["i"] = i
                if not literal:  # nothing consumed, e.g. a stray ']' or '}'
                    raise UnsupportedPattern("unsupported character: " + c)
                seq.append((literal, True))
        return join_seq(seq)

    rule = _to_rule(transform())
    if state["depth"] != 0:
        raise InvalidPattern("unbalanced parentheses")
    return add_rule(name, '"\\"" (' + rule + ') "\\""')
