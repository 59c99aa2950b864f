"""GBNF text -> rule table, mirroring the reference parser rule for rule.

llama.cpp: src/llama-grammar.cpp llama_grammar_parser (parse, parse_rule, parse_alternates,
parse_sequence, parse_char, parse_token, handle_repetitions).

The result is the same table the reference builds: symbol ids in order of first mention,
one rule per id (a flat list of ``(type, value)`` elements ending in END), and the same
synthesized rules for groups and repetitions (named ``<rule>_<id>``).

Differences on purpose, each for hostile input only:
- the reference recurses once per nested group (60,000 ``(`` overflow its C stack); this
  parser keeps its own stack of open groups, so nesting depth is bounded by memory only;
- ``{m,n}`` with ``n < m`` makes the reference loop ~2**64 times generating rules (it never
  returns); here it raises ``GrammarError(reason="repetition-bounds")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol

from ..errors import GrammarError

# llama.cpp: src/llama-grammar.cpp MAX_REPETITION_THRESHOLD
MAX_REPETITION_THRESHOLD = 2000
_UINT64_MAX = (1 << 64) - 1


class GreType(IntEnum):
    """llama.cpp: src/llama-grammar.h llama_gretype."""

    END = 0
    ALT = 1
    RULE_REF = 2
    CHAR = 3
    CHAR_NOT = 4
    CHAR_RNG_UPPER = 5
    CHAR_ALT = 6
    CHAR_ANY = 7
    TOKEN = 8
    TOKEN_NOT = 9


END, ALT, RULE_REF = GreType.END.value, GreType.ALT.value, GreType.RULE_REF.value
CHAR, CHAR_NOT, CHAR_RNG_UPPER = GreType.CHAR.value, GreType.CHAR_NOT.value, GreType.CHAR_RNG_UPPER.value
CHAR_ALT, CHAR_ANY = GreType.CHAR_ALT.value, GreType.CHAR_ANY.value
TOKEN, TOKEN_NOT = GreType.TOKEN.value, GreType.TOKEN_NOT.value

Element = tuple[int, int]  # (GreType, value): code point, rule id or token id
Rule = list[Element]


class TokenizerVocab(Protocol):
    """What ``<text>`` token references need: the reference's
    ``vocab->tokenize(text, len, tokens, 2, add_special=false, parse_special=true)``."""

    def tokenize(self, text: bytes, add_special: bool = ..., parse_special: bool = ...) -> list[int]: ...


@dataclass
class ParsedGrammar:
    """The parser's output: ``symbol_ids`` (name -> id; dict order = order of creation)
    and ``rules`` (indexed by id)."""

    symbol_ids: dict[str, int] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)

    def names(self) -> dict[int, str]:
        """id -> name; where two names share an id (see ``_generate_symbol_id``) the one that
        sorts last wins, as when the reference fills a ``std::map<uint32_t, std::string>``
        walking ``symbol_ids`` in key order."""
        out: dict[int, str] = {}
        for name in sorted(self.symbol_ids):
            out[self.symbol_ids[name]] = name
        return out


def _is_digit(c: int) -> bool:
    return 48 <= c <= 57


def _is_word(c: int) -> bool:
    # llama.cpp: is_word_char -- [A-Za-z0-9-]
    return 97 <= c <= 122 or 65 <= c <= 90 or c == 45 or 48 <= c <= 57


_SPACE = re.compile(rb"(?:[ \t]|#[^\r\n]*)*")
_SPACE_NL = re.compile(rb"(?:[ \t\r\n]|#[^\r\n]*)*")
_WORD = re.compile(rb"[A-Za-z0-9-]*")
_PLAIN_ASCII = re.compile(rb'[^"\\\x80-\xff]+')


class _Frame:
    """One open ``parse_alternates`` call: the rule being built and the state of the
    ``parse_sequence`` call in progress inside it."""

    __slots__ = ("rule_id", "is_nested", "rule", "last_sym_start", "n_prev_rules", "n_rules_before")

    def __init__(self, rule_id: int, is_nested: bool, n_rules_before: int) -> None:
        self.rule_id = rule_id
        self.is_nested = is_nested
        self.rule: Rule = []
        self.last_sym_start = 0
        self.n_prev_rules = 1
        self.n_rules_before = n_rules_before


class Parser:
    """llama.cpp: llama_grammar_parser.  ``parse`` raises ``GrammarError`` where the
    reference's ``parse`` prints the error and returns false."""

    def __init__(self, src: bytes | str, vocab: TokenizerVocab | None = None) -> None:
        if isinstance(src, str):
            src = src.encode("utf-8", "surrogateescape")
        nul = src.find(b"\0")
        # the reference reads a C string: it ends at the first NUL
        self.src = src if nul < 0 else src[:nul]
        self.vocab = vocab
        self.out = ParsedGrammar()

    # --- character level helpers (the C string's terminating NUL reads as 0) --------------
    def _at(self, i: int) -> int:
        return self.src[i] if i < len(self.src) else 0

    def _rest(self, i: int) -> str:
        return self.src[i:].decode("utf-8", "surrogateescape")

    def _fail(self, message: str, pos: int) -> GrammarError:
        return GrammarError(message, reason="parse", position=pos)

    def _space(self, pos: int, newline_ok: bool) -> int:
        # llama.cpp: parse_space: blanks, '#' comments to the end of the line, and newlines
        # when allowed (one regex match: the parser's hot spot)
        m = (_SPACE_NL if newline_ok else _SPACE).match(self.src, pos)
        return m.end() if m else pos

    def _name(self, pos: int) -> int:
        # llama.cpp: parse_name: is_word_char+
        start = pos
        m = _WORD.match(self.src, pos)
        pos = m.end() if m else pos
        if pos == start:
            raise self._fail("expecting name at " + self._rest(start), start)
        return pos

    def _int(self, pos: int) -> int:
        start = pos
        while _is_digit(self._at(pos)):
            pos += 1
        if pos == start:
            raise self._fail("expecting integer at " + self._rest(start), start)
        return pos

    def _hex(self, pos: int, size: int) -> tuple[int, int]:
        # llama.cpp: parse_hex
        start, end, value = pos, pos + size, 0
        while pos < end and self._at(pos):
            c = self._at(pos)
            if 97 <= c <= 102:
                value = (value << 4) + c - 87
            elif 65 <= c <= 70:
                value = (value << 4) + c - 55
            elif 48 <= c <= 57:
                value = (value << 4) + c - 48
            else:
                break
            pos += 1
        if pos != end:
            raise self._fail(f"expecting {size} hex chars at " + self._rest(start), start)
        return value & 0xFFFFFFFF, pos

    def _decode_utf8(self, pos: int) -> tuple[int, int]:
        # llama.cpp: decode_utf8 (the parser's variant): the length comes from the high
        # nibble only, so a stray continuation byte counts as a 1-byte char (value & 0x7F)
        first = self.src[pos]
        length = (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4)[first >> 4]
        value = first & ((1 << (8 - length)) - 1)
        end = pos + length
        pos += 1
        while pos < end and self._at(pos):
            value = (value << 6) + (self.src[pos] & 0x3F)
            pos += 1
        return value, pos

    def _char(self, pos: int) -> tuple[int, int]:
        # llama.cpp: parse_char
        c = self._at(pos)
        if c == 92:  # backslash
            e = self._at(pos + 1)
            if e == 120:  # x
                return self._hex(pos + 2, 2)
            if e == 117:  # u
                return self._hex(pos + 2, 4)
            if e == 85:  # U
                return self._hex(pos + 2, 8)
            if e == 116:
                return 9, pos + 2
            if e == 114:
                return 13, pos + 2
            if e == 110:
                return 10, pos + 2
            if e in (92, 34, 91, 93, 45):  # \ " [ ] -
                return e, pos + 2
            raise self._fail("unknown escape at " + self._rest(pos), pos)
        if c:
            return self._decode_utf8(pos)
        raise self._fail("unexpected end of input", pos)

    def _stoull(self, digits: bytes, name: str, pos: int) -> int:
        value = int(digits)
        if value > _UINT64_MAX:
            # std::stoull / std::stoul throw std::out_of_range whose what() is the name
            raise self._fail(name, pos)
        return value

    def _token(self, pos: int) -> tuple[int, int]:
        # llama.cpp: parse_token
        src_start = pos
        if self._at(pos) != 60:  # '<'
            raise self._fail("expecting '<' at " + self._rest(pos), pos)
        pos += 1
        if self._at(pos) == 91:  # '[': <[id]>
            pos += 1
            int_end = self._int(pos)
            tid = self._stoull(self.src[pos:int_end], "stoul", pos)
            if tid > 0xFFFFFFFF:
                raise self._fail("parsed token id is too big at " + self._rest(pos), pos)
            pos = int_end
            if self._at(pos) != 93:
                raise self._fail("expecting ']' at " + self._rest(pos), pos)
            pos += 1
            if self._at(pos) != 62:
                raise self._fail("expecting '>' at " + self._rest(pos), pos)
            return tid, pos + 1
        if self.vocab is None:
            raise self._fail("no vocab to parse token at " + self._rest(src_start), src_start)
        while self._at(pos) not in (0, 62):
            pos += 1
        if self._at(pos) != 62:
            raise self._fail("expecting '>' at " + self._rest(pos), pos)
        pos += 1
        text = self.src[src_start:pos]
        tokens = self.vocab.tokenize(text, add_special=False, parse_special=True)
        if len(tokens) != 1:
            raise self._fail("invalid token '" + text.decode("utf-8", "surrogateescape") + "'", src_start)
        return tokens[0], pos

    # --- symbols and rules ----------------------------------------------------------------
    def _symbol_id(self, name: str) -> int:
        # llama.cpp: get_symbol_id -- emplace: an existing name keeps its id
        ids = self.out.symbol_ids
        return ids.setdefault(name, len(ids))

    def _generate_symbol_id(self, base: str) -> int:
        # llama.cpp: generate_symbol_id: the new id is the map's size; ``_`` cannot occur in a
        # user's rule name, so ``<base>_<id>`` is always a new entry
        ids = self.out.symbol_ids
        next_id = len(ids)
        ids[f"{base}_{next_id}"] = next_id
        return next_id

    def _add_rule(self, rule_id: int, rule: Rule) -> None:
        rules = self.out.rules
        if len(rules) <= rule_id:
            rules.extend([] for _ in range(rule_id + 1 - len(rules)))
        rules[rule_id] = rule

    # --- grammar structure -----------------------------------------------------------------
    def parse(self) -> ParsedGrammar:
        """llama.cpp: llama_grammar_parser::parse (raises instead of printing)."""
        pos = self._space(0, True)
        while pos < len(self.src):
            pos = self._rule(pos)
        self._check_defined()
        return self.out

    def _check_defined(self) -> None:
        rules = self.out.rules
        for rule in rules:
            if not rule:
                raise GrammarError("Undefined rule", reason="undefined-rule")
            for t, v in rule:
                if t == RULE_REF and (v >= len(rules) or not rules[v]):
                    # the first name (in std::map key order) that has this id
                    for name in sorted(self.out.symbol_ids):
                        if self.out.symbol_ids[name] == v:
                            raise GrammarError(f"Undefined rule identifier '{name}'", reason="undefined-rule")

    def _rule(self, pos: int) -> int:
        # llama.cpp: parse_rule
        name_end = self._name(pos)
        name = self.src[pos:name_end].decode("ascii")
        after = self._space(name_end, False)
        rule_id = self._symbol_id(name)
        if self.src[after:after + 3] != b"::=":
            raise self._fail("expecting ::= at " + self._rest(after), after)
        pos = self._alternates(self._space(after + 3, True), name, rule_id)
        c = self._at(pos)
        if c == 13:
            pos += 2 if self._at(pos + 1) == 10 else 1
        elif c == 10:
            pos += 1
        elif c:
            raise self._fail("expecting newline or end at " + self._rest(pos), pos)
        return self._space(pos, True)

    def _alternates(self, pos: int, rule_name: str, rule_id: int) -> int:
        """parse_alternates of a top-level rule, with every nested group it opens.

        The reference recurses parse_alternates -> parse_sequence -> parse_alternates at
        each ``(``; here ``frames`` holds the open groups."""
        frames = [_Frame(rule_id, False, 0)]
        while True:
            f = frames[-1]
            pos, opened = self._sequence(pos, rule_name, f)
            if opened:
                # llama.cpp: parse_sequence, grouping: the group's rule id is generated
                # before its contents are parsed
                n_before = len(self.out.symbol_ids)
                sub_id = self._generate_symbol_id(rule_name)
                frames.append(_Frame(sub_id, True, n_before))
                continue
            if self._at(pos) == 124:  # '|'
                f.rule.append((ALT, 0))
                pos = self._space(pos + 1, True)
                f.last_sym_start, f.n_prev_rules = len(f.rule), 1
                continue
            f.rule.append((END, 0))
            self._add_rule(f.rule_id, f.rule)
            frames.pop()
            if not frames:
                return pos
            parent = frames[-1]
            parent.n_prev_rules = max(1, len(self.out.symbol_ids) - f.n_rules_before)
            parent.last_sym_start = len(parent.rule)
            parent.rule.append((RULE_REF, f.rule_id))
            if self._at(pos) != 41:  # ')'
                raise self._fail("expecting ')' at " + self._rest(pos), pos)
            pos = self._space(pos + 1, parent.is_nested)

    def _sequence(self, pos: int, rule_name: str, f: _Frame) -> tuple[int, bool]:
        """llama.cpp: parse_sequence, up to its end or up to a ``(`` (returns opened=True
        with ``pos`` past the ``(`` and its spaces)."""
        rule = f.rule
        nested = f.is_nested
        while pos < len(self.src):
            c = self.src[pos]
            if c == 34:  # '"' literal string
                pos += 1
                f.last_sym_start, f.n_prev_rules = len(rule), 1
                while self._at(pos) != 34:
                    plain = _PLAIN_ASCII.match(self.src, pos)
                    if plain:
                        # a run of ASCII without escapes: one element per byte (parse_char)
                        rule.extend((CHAR, b) for b in plain.group())
                        pos = plain.end()
                        continue
                    if not self._at(pos):
                        raise self._fail("unexpected end of input", pos)
                    cp, pos = self._char(pos)
                    rule.append((CHAR, cp))
                pos = self._space(pos + 1, nested)
            elif c == 91:  # '[' char class
                pos += 1
                start_type = CHAR
                if self._at(pos) == 94:  # '^'
                    pos += 1
                    start_type = CHAR_NOT
                f.last_sym_start, f.n_prev_rules = len(rule), 1
                while self._at(pos) != 93:
                    if not self._at(pos):
                        raise self._fail("unexpected end of input", pos)
                    cp, pos = self._char(pos)
                    rule.append((CHAR_ALT if f.last_sym_start < len(rule) else start_type, cp))
                    if self._at(pos) == 45 and self._at(pos + 1) != 93:  # '-' not before ']'
                        if not self._at(pos + 1):
                            raise self._fail("unexpected end of input", pos + 1)
                        cp, pos = self._char(pos + 1)
                        rule.append((CHAR_RNG_UPPER, cp))
                pos = self._space(pos + 1, nested)
            elif c in (60, 33):  # '<' or '!' token
                ttype = TOKEN
                if c == 33:
                    ttype = TOKEN_NOT
                    pos += 1
                tid, end = self._token(pos)
                f.last_sym_start, f.n_prev_rules = len(rule), 1
                rule.append((ttype, tid))
                pos = self._space(end, nested)
            elif _is_word(c):  # rule reference
                name_end = self._name(pos)
                ref = self._symbol_id(self.src[pos:name_end].decode("ascii"))
                pos = self._space(name_end, nested)
                f.last_sym_start, f.n_prev_rules = len(rule), 1
                rule.append((RULE_REF, ref))
            elif c == 40:  # '(' group
                return self._space(pos + 1, True), True
            elif c == 46:  # '.' any char
                f.last_sym_start, f.n_prev_rules = len(rule), 1
                rule.append((CHAR_ANY, 0))
                pos = self._space(pos + 1, nested)
            elif c == 42:  # '*'
                pos = self._space(pos + 1, nested)
                self._repeat(f, rule_name, 0, None, pos)
            elif c == 43:  # '+'
                pos = self._space(pos + 1, nested)
                self._repeat(f, rule_name, 1, None, pos)
            elif c == 63:  # '?'
                pos = self._space(pos + 1, nested)
                self._repeat(f, rule_name, 0, 1, pos)
            elif c == 123:  # '{'
                pos = self._space(pos + 1, nested)
                if not _is_digit(self._at(pos)):
                    raise self._fail("expecting an int at " + self._rest(pos), pos)
                int_end = self._int(pos)
                min_times = self._stoull(self.src[pos:int_end], "stoull", pos)
                pos = self._space(int_end, nested)
                max_times: int | None = None  # no maximum
                if self._at(pos) == 125:  # '}'
                    max_times = min_times
                    pos = self._space(pos + 1, nested)
                elif self._at(pos) == 44:  # ','
                    pos = self._space(pos + 1, nested)
                    if _is_digit(self._at(pos)):
                        int_end = self._int(pos)
                        max_times = self._stoull(self.src[pos:int_end], "stoull", pos)
                        pos = self._space(int_end, nested)
                    if self._at(pos) != 125:
                        raise self._fail("expecting '}' at " + self._rest(pos), pos)
                    pos = self._space(pos + 1, nested)
                else:
                    raise self._fail("expecting ',' at " + self._rest(pos), pos)
                if min_times > MAX_REPETITION_THRESHOLD:
                    raise self._fail("number of repetitions exceeds sane defaults, please reduce the "
                                     "number of repetitions", pos)
                if max_times == _UINT64_MAX or (max_times is not None
                                                and max_times > MAX_REPETITION_THRESHOLD):
                    max_times = None
                self._repeat(f, rule_name, min_times, max_times, pos)
            else:
                break
        return pos, False

    def _repeat(self, f: _Frame, rule_name: str, min_times: int, max_times: int | None, pos: int) -> None:
        """llama.cpp: parse_sequence's handle_repetitions: S{m,n} -> S (m times) then n-m
        nested optional rules; S{m,} -> S (m times) then one recursive rule."""
        rule = f.rule
        if f.last_sym_start == len(rule):
            raise self._fail("expecting preceding item to */+/?/{ at " + self._rest(pos), pos)
        no_max = max_times is None
        prev = rule[f.last_sym_start:]
        total = 1
        if not no_max and max_times > 0:  # type: ignore[operator]
            total = max_times  # type: ignore[assignment]
        elif min_times > 0:
            total = min_times
        if f.n_prev_rules * total > MAX_REPETITION_THRESHOLD:
            raise self._fail("number of rules that are going to be repeated multiplied by the new "
                             "repetition exceeds sane defaults, please reduce the number of "
                             "repetitions or rule complexity", pos)
        if not no_max and max_times < min_times:  # type: ignore[operator]
            # deliberate difference: the reference computes n - m in uint64 and loops ~2**64 times
            raise GrammarError(f"repetition {{{min_times},{max_times}}} has a maximum below its "
                               "minimum (the reference never returns on this grammar)",
                               reason="repetition-bounds", position=pos)
        if min_times == 0:
            del rule[f.last_sym_start:]
        else:
            for _ in range(1, min_times):
                rule.extend(prev)
        n_opt = 1 if no_max else max_times - min_times  # type: ignore[operator]
        last_rec_id = 0
        for i in range(n_opt):
            rec_id = self._generate_symbol_id(rule_name)
            rec = list(prev)
            if i > 0 or no_max:
                rec.append((RULE_REF, rec_id if no_max else last_rec_id))
            rec.append((ALT, 0))
            rec.append((END, 0))
            self._add_rule(rec_id, rec)
            last_rec_id = rec_id
        if n_opt > 0:
            rule.append((RULE_REF, last_rec_id))
        f.n_prev_rules *= total


def parse(src: bytes | str, vocab: TokenizerVocab | None = None) -> ParsedGrammar:
    """Parse GBNF text.  Raises ``GrammarError`` with the reference's message."""
    return Parser(src, vocab).parse()
