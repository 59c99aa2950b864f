"""The grammar's pushdown stacks: init, advance, accept characters / strings / tokens, and the
candidates filter.

llama.cpp: src/llama-grammar.cpp (llama_grammar_init_impl, llama_grammar_advance_stack,
llama_grammar_match_char, llama_grammar_match_partial_char, llama_grammar_accept*,
llama_grammar_reject_candidates*, llama_grammar_apply_impl, llama_grammar_accept_impl).

Where the reference keeps ``const llama_grammar_element *`` pointers into its rules, a
position here is an index into one flat element array (``Rules.types`` / ``Rules.values``,
rule ``r`` starting at ``Rules.base[r]``); a stack is a tuple of positions, bottom first.
``Rules.locate`` turns a position back into the reference's (rule id, element offset).

Differences on purpose, each where the reference never returns or runs out of memory:
- a rule reaching itself through rules that can be empty (missed by the reference's
  left-recursion check, which only sees literally empty alternatives) makes advance_stack grow
  stacks forever there; here it raises ``GrammarError(reason="hidden-left-recursion")``;
- more than ``MAX_STACKS`` (``Grammar.max_stacks``) live stacks raise ``GrammarError(reason="stack-limit")``.
Where the reference aborts (GGML_ASSERT/ABORT), ``GrammarError`` is raised instead.
"""

from __future__ import annotations

import array
import bisect
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import GrammarError
from .parser import (
    ALT,
    CHAR,
    CHAR_ALT,
    CHAR_ANY,
    CHAR_NOT,
    CHAR_RNG_UPPER,
    END,
    RULE_REF,
    TOKEN,
    TOKEN_NOT,
    Rule,
    TokenizerVocab,
    parse,
)

Stack = tuple[int, ...]
Partial = tuple[int, int]  # llama_partial_utf8: (value so far, bytes remaining; -1 = invalid)

_TERMINALS = frozenset((CHAR, CHAR_NOT, CHAR_ANY, TOKEN, TOKEN_NOT))

# Ambiguous grammars (nested repetitions of nullable items) can multiply the stacks with every
# character; the reference keeps them all until memory runs out.  Past this many stacks pyggml
# raises GrammarError(reason="stack-limit") instead (real grammars keep a handful).
MAX_STACKS = 20_000
_UTF8_LEN = (1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4)


class GrammarVocab(TokenizerVocab, Protocol):
    """What token-level use needs from a vocabulary (the reference's ``llama_vocab``):
    the cached piece of a token (``token_to_piece(id)``, special tokens rendered) and
    whether it ends generation."""

    def piece(self, token: int) -> bytes: ...

    def is_eog(self, token: int) -> bool: ...


def decode_utf8(src: bytes, partial: Partial) -> tuple[list[int], Partial]:
    """llama.cpp: decode_utf8 (the runtime's variant): code points of ``src`` continuing a
    partial sequence, terminated by a 0, and the partial sequence left at its end."""
    nul = src.find(b"\0")
    if nul >= 0:
        src = src[:nul]
    out: list[int] = []
    value, n_remain = partial
    pos, n = 0, len(src)
    while pos < n and n_remain > 0:
        b = src[pos]
        if b >> 6 != 2:
            out.append(0)
            return out, (0, -1)
        value = (value << 6) + (b & 0x3F)
        pos += 1
        n_remain -= 1
    if partial[1] > 0 and n_remain == 0:
        out.append(value)
    while pos < n:
        b = src[pos]
        n_remain = _UTF8_LEN[b >> 4] - 1
        if n_remain < 0:
            return [0], (0, n_remain)
        value = b & ((1 << (7 - n_remain)) - 1)
        pos += 1
        while pos < n and n_remain > 0:
            value = (value << 6) + (src[pos] & 0x3F)
            pos += 1
            n_remain -= 1
        if n_remain == 0:
            out.append(value)
    out.append(0)
    return out, (value, n_remain)


@dataclass
class Rules:
    """The rule table flattened: element ``i`` is ``(types[i], values[i])``."""

    rules: list[Rule]
    types: list[int] = field(init=False)
    values: list[int] = field(init=False)
    base: list[int] = field(init=False)
    # per char-element start position: (positive, ranges, position after the element)
    charsets: dict[int, tuple[bool, tuple[tuple[int, int], ...], int]] = field(init=False)
    # per rule: the start position of each alternative
    alternatives: list[tuple[int, ...]] = field(init=False)

    def __post_init__(self) -> None:
        self.types, self.values, self.base = [], [], []
        for rule in self.rules:
            self.base.append(len(self.types))
            for t, v in rule:
                self.types.append(t)
                self.values.append(v)
        self.charsets = {}
        self.alternatives = []
        for r, rule in enumerate(self.rules):
            b = self.base[r]
            alts = [b]
            for i, (t, _) in enumerate(rule):
                if t == ALT:
                    alts.append(b + i + 1)
                elif t in (CHAR, CHAR_NOT, CHAR_ANY):
                    self.charsets[b + i] = self._charset(b + i)
            self.alternatives.append(tuple(alts))

    def _charset(self, pos: int) -> tuple[bool, tuple[tuple[int, int], ...], int]:
        # llama.cpp: llama_grammar_match_char's walk over CHAR/CHAR_ALT/CHAR_RNG_UPPER
        types, values = self.types, self.values
        positive = types[pos] in (CHAR, CHAR_ANY)
        ranges = []
        while True:
            if types[pos + 1] == CHAR_RNG_UPPER:
                ranges.append((values[pos], values[pos + 1]))
                pos += 2
            elif types[pos] == CHAR_ANY:
                ranges.append((0, 0xFFFFFFFF))
                pos += 1
            else:
                ranges.append((values[pos], values[pos]))
                pos += 1
            if types[pos] != CHAR_ALT:
                break
        return positive, tuple(ranges), pos

    def locate_words(self) -> list[tuple[int, int]]:
        """(rule id, element offset) of every flat position, computed once."""
        loc = self.__dict__.get("_loc")
        if loc is None:
            loc = [(r, i) for r, rule in enumerate(self.rules) for i in range(len(rule))]
            self.__dict__["_loc"] = loc
        return loc

    def is_end(self, pos: int) -> bool:
        return self.types[pos] in (END, ALT)

    def locate(self, pos: int) -> tuple[int, int]:
        """(rule id, element offset) of a flat position."""
        r = bisect.bisect_right(self.base, pos) - 1
        # rules are never empty, so equal bases cannot occur
        return r, pos - self.base[r]

    def stack_pairs(self, stack: Stack) -> list[list[int]]:
        return [list(self.locate(p)) for p in stack]


def match_char(rules: Rules, pos: int, chr_: int) -> tuple[bool, int]:
    """llama.cpp: llama_grammar_match_char."""
    positive, ranges, after = rules.charsets[pos]
    found = False
    for lo, hi in ranges:
        if lo <= chr_ <= hi:
            found = True
            break
    return found == positive, after


def match_partial_char(rules: Rules, pos: int, partial: Partial) -> bool:
    """llama.cpp: llama_grammar_match_partial_char: could some completion of ``partial``
    satisfy the char element at ``pos``?"""
    positive, ranges, _ = rules.charsets[pos]
    value, n_remain = partial
    if n_remain < 0 or (n_remain == 1 and value < 2):
        return False
    low = (value << (n_remain * 6)) & 0xFFFFFFFF
    high = low | ((1 << (n_remain * 6)) - 1)
    if low == 0:
        if n_remain == 2:
            low = 1 << 11
        elif n_remain == 3:
            low = 1 << 16
    for lo, hi in ranges:
        if lo <= high and low <= hi:
            return positive
    return not positive


def match_token(rules: Rules, pos: int, token: int) -> bool:
    """llama.cpp: llama_grammar_match_token."""
    if rules.types[pos] == TOKEN:
        return rules.values[pos] == (token & 0xFFFFFFFF)
    return rules.values[pos] != (token & 0xFFFFFFFF)


def advance_stack(rules: Rules, stack: Stack, new_stacks: list[Stack], present: set[Stack]) -> None:
    """llama.cpp: llama_grammar_advance_stack: expand rule references (depth first, last
    pushed first, skipping stacks already seen) until every stack is empty or ends at a
    terminal; append those not already in ``new_stacks`` (``present`` mirrors it)."""
    types, values, alternatives = rules.types, rules.values, rules.alternatives
    todo = [stack]
    seen: set[Stack] = set()
    # No input is consumed here, so a stack can only grow by one continuation per distinct
    # rule-reference position; growing past that means a rule reaches itself through rules
    # that can be empty without saying so (``x ::= y x "c"``, ``y ::= z``, ``z ::= ""``): the
    # reference's left-recursion check misses it and this loop never ends there.
    max_len = len(stack) + len(types)
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.add(cur)
        if len(cur) > max_len:
            raise GrammarError("unsupported grammar, left recursion through rules that can be empty "
                               "(the reference never returns on this grammar)",
                               reason="hidden-left-recursion")
        if not cur:
            if cur not in present:
                present.add(cur)
                new_stacks.append(cur)
            continue
        pos = cur[-1]
        t = types[pos]
        if t == RULE_REF:
            below = cur[:-1]
            if types[pos + 1] not in (END, ALT):
                below = below + (pos + 1,)
            for sub in alternatives[values[pos]]:
                todo.append(below if types[sub] in (END, ALT) else below + (sub,))
        elif t in _TERMINALS:
            if cur not in present:
                present.add(cur)
                new_stacks.append(cur)
        else:
            # the reference aborts (GGML_ABORT): unreachable with parsed rules
            raise GrammarError(f"grammar stack left on element type {t}", reason="internal")


def _check_left_recursion(rules: list[Rule]) -> int | None:
    """llama.cpp: llama_grammar_detect_left_recursion, over every rule as init does; returns
    the index the reference reports, or None.  Iterative (the reference recurses), and a rule
    already fully visited is not walked again: its walk can only repeat its earlier false."""
    n = len(rules)
    visited = [False] * n
    in_progress = [False] * n
    may_be_empty = [False] * n

    def enter(r: int) -> None:
        in_progress[r] = True
        at_start = True
        for t, _ in rules[r]:
            if t in (END, ALT):
                if at_start:
                    may_be_empty[r] = True
                    break
                at_start = True
            else:
                at_start = False

    for top in range(n):
        if visited[top]:
            continue
        enter(top)
        # frames: [rule, next element index, recurse flag, returning from a child]
        frames = [[top, 0, True, False]]
        while frames:
            fr = frames[-1]
            r, i, recurse, returning = fr
            rule = rules[r]
            if returning:
                if not may_be_empty[rule[i][1]]:
                    recurse = False
                i += 1
            pushed = False
            while i < len(rule):
                t, v = rule[i]
                if t == RULE_REF and recurse:
                    if in_progress[v]:
                        return top
                    if visited[v]:
                        if not may_be_empty[v]:
                            recurse = False
                        i += 1
                        continue
                    fr[1], fr[2], fr[3] = i, recurse, True
                    enter(v)
                    frames.append([v, 0, True, False])
                    pushed = True
                    break
                recurse = t in (END, ALT)
                i += 1
            if pushed:
                continue
            in_progress[r] = False
            visited[r] = True
            frames.pop()
    return None


@dataclass
class Candidate:
    """llama.cpp: llama_grammar_candidate: a token's decoded code points (0-terminated) and
    how far they have been matched."""

    index: int
    code_points: Sequence[int]
    offset: int
    partial: Partial
    id: int


class Grammar:
    """llama.cpp: struct llama_grammar (rules, stacks, partial UTF-8, lazy triggers)."""

    def __init__(self, rules: Rules, stacks: list[Stack], *, vocab: GrammarVocab | None = None,
                 lazy: bool = False, trigger_tokens: Iterable[int] = (),
                 trigger_patterns: Iterable[str] = ()) -> None:
        self.rules = rules
        self.stacks = stacks
        self.vocab = vocab
        self.partial_utf8: Partial = (0, 0)
        self.lazy = lazy
        self.awaiting_trigger = lazy
        self.trigger_buffer = b""
        self.trigger_buffer_positions: list[tuple[int, int, int]] = []
        self.trigger_tokens = list(trigger_tokens)
        self.trigger_patterns = [TriggerPattern(p) for p in trigger_patterns]
        # past this many live stacks accepting raises GrammarError(reason="stack-limit")
        self.max_stacks = MAX_STACKS
        # caches that depend on the rules only (shared with clones)
        self._advance_cache: dict[Stack, tuple[Stack, ...]] = {}
        self._accept_cache: dict[tuple[tuple[Stack, ...], int], tuple[Stack, ...]] = {}
        # pyggml.grammar.tokens: (stack set, indexes of its char-topped stacks that match a
        # code point) -> the stack set after it
        self._trie_cache: dict[tuple[tuple[Stack, ...], tuple[int, ...]], tuple[Stack, ...]] = {}

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def from_text(cls, text: bytes | str, root: str = "root", *, vocab: GrammarVocab | None = None,
                  lazy: bool = False, trigger_patterns: Iterable[str] = (),
                  trigger_tokens: Iterable[int] = ()) -> Grammar:
        """llama.cpp: llama_grammar_init_impl (grammar text).  Raises ``GrammarError`` where the
        reference returns NULL: a parse error, no rules, no ``root`` symbol, left recursion."""
        parsed = parse(text, vocab)
        if not parsed.rules:
            raise GrammarError("failed to parse grammar", reason="no-rules")
        if root not in parsed.symbol_ids:
            raise GrammarError(f"grammar does not contain a '{root}' symbol", reason="missing-root")
        bad = _check_left_recursion(parsed.rules)
        if bad is not None:
            raise GrammarError(f"unsupported grammar, left recursion detected for nonterminal at index {bad}",
                               reason="left-recursion")
        rules = Rules(parsed.rules)
        stacks: list[Stack] = []
        present: set[Stack] = set()
        for alt in rules.alternatives[parsed.symbol_ids[root]]:
            advance_stack(rules, () if rules.is_end(alt) else (alt,), stacks, present)
        return cls(rules, stacks, vocab=vocab, lazy=lazy, trigger_tokens=trigger_tokens,
                   trigger_patterns=trigger_patterns)

    def clone(self) -> Grammar:
        g = Grammar(self.rules, list(self.stacks), vocab=self.vocab, lazy=self.lazy,
                    trigger_tokens=self.trigger_tokens, trigger_patterns=())
        g.trigger_patterns = self.trigger_patterns
        g.partial_utf8 = self.partial_utf8
        g.max_stacks = self.max_stacks
        g.awaiting_trigger = self.awaiting_trigger
        g.trigger_buffer = self.trigger_buffer
        g.trigger_buffer_positions = list(self.trigger_buffer_positions)
        g._advance_cache = self._advance_cache
        g._accept_cache = self._accept_cache
        g._trie_cache = self._trie_cache
        return g

    # --- state ------------------------------------------------------------------------------
    def stack_pairs(self) -> list[list[list[int]]]:
        """The stacks as the reference's (rule id, element offset) pairs, bottom first."""
        return [self.rules.stack_pairs(s) for s in self.stacks]

    def stacks_raw(self) -> bytes:
        """The stacks in the probe's canonical byte form (``stacks_raw`` of
        tools/paritychecker/probe/probe_grammar.cpp): int32 little-endian words, per stack its
        length then (rule id, element offset) per element, bottom first."""
        loc = self.rules.locate_words()
        words = array.array("i")
        for s in self.stacks:
            words.append(len(s))
            for p in s:
                words.extend(loc[p])
        if sys.byteorder != "little":
            words.byteswap()
        return words.tobytes()

    def is_complete(self) -> bool:
        """Some stack is empty: the text so far is a full sentence of the grammar."""
        return any(not s for s in self.stacks)

    def _advance(self, stack: Stack) -> tuple[Stack, ...]:
        hit = self._advance_cache.get(stack)
        if hit is None:
            out: list[Stack] = []
            advance_stack(self.rules, stack, out, set())
            hit = tuple(out)
            if len(self._advance_cache) > 200_000:
                self._advance_cache.clear()
            self._advance_cache[stack] = hit
        return hit

    def _accept_chr(self, stack: Stack, chr_: int, new_stacks: list[Stack], present: set[Stack]) -> None:
        # llama.cpp: llama_grammar_accept_chr
        if not stack:
            return
        pos = stack[-1]
        if self.rules.types[pos] in (TOKEN, TOKEN_NOT):
            return
        ok, after = match_char(self.rules, pos, chr_)
        if ok:
            nxt = stack[:-1] if self.rules.is_end(after) else stack[:-1] + (after,)
            for s in self._advance(nxt):
                if s not in present:
                    present.add(s)
                    new_stacks.append(s)

    def accept_char(self, chr_: int) -> None:
        """llama.cpp: llama_grammar_accept (one code point, no error when nothing survives).

        Transitions are cached per (stacks, code point): texts revisit the same states."""
        key = (tuple(self.stacks), chr_)
        hit = self._accept_cache.get(key)
        if hit is None:
            new: list[Stack] = []
            present: set[Stack] = set()
            for stack in self.stacks:
                self._accept_chr(stack, chr_, new, present)
                # checked per source stack: the limit also bounds the work of this step
                _check_stack_count(len(new), self.max_stacks)
            hit = tuple(new)
            if len(self._accept_cache) > 100_000:
                self._accept_cache.clear()
            self._accept_cache[key] = hit
        _check_stack_count(len(hit), self.max_stacks)
        self.stacks = list(hit)

    def accept_str(self, piece: bytes | str) -> None:
        """llama.cpp: llama_grammar_accept_str.  Raises ``GrammarError`` when no stack
        survives (the reference throws)."""
        if isinstance(piece, str):
            piece = piece.encode("utf-8", "surrogateescape")
        cps, partial = decode_utf8(piece, self.partial_utf8)
        for cp in cps[:-1]:
            self.accept_char(cp)
        self.partial_utf8 = partial
        if not self.stacks:
            raise GrammarError("Unexpected empty grammar stack after accepting piece: "
                               + _text(piece), reason="empty-stacks")

    def accept_token(self, token: int, piece: bytes | str) -> None:
        """llama.cpp: llama_grammar_accept_token.  Raises ``GrammarError`` when no stack
        survives."""
        if isinstance(piece, str):
            piece = piece.encode("utf-8", "surrogateescape")
        cps, partial = decode_utf8(piece, self.partial_utf8)
        rules = self.rules
        new: list[Stack] = []
        present: set[Stack] = set()
        for stack in self.stacks:
            if not stack:
                continue
            pos = stack[-1]
            if rules.types[pos] in (TOKEN, TOKEN_NOT):
                if match_token(rules, pos, token):
                    nxt = stack[:-1] if rules.is_end(pos + 1) else stack[:-1] + (pos + 1,)
                    for s in self._advance(nxt):
                        if s not in present:
                            present.add(s)
                            new.append(s)
                continue
            current = [stack]
            for cp in cps[:-1]:
                nxt_stacks: list[Stack] = []
                nxt_present: set[Stack] = set()
                for cur in current:
                    self._accept_chr(cur, cp, nxt_stacks, nxt_present)
                current = nxt_stacks
                _check_stack_count(len(current), self.max_stacks)
                if not current:
                    break
            for s in current:
                if s not in present:
                    present.add(s)
                    new.append(s)
        _check_stack_count(len(new), self.max_stacks)
        self.stacks = new
        self.partial_utf8 = partial
        if not self.stacks:
            raise GrammarError("Unexpected empty grammar stack after accepting piece: "
                               f"{_text(piece)} ({_i32(token)})", reason="empty-stacks")

    # --- candidates ---------------------------------------------------------------------------
    def reject_candidates(self, candidates: list[Candidate]) -> list[Candidate]:
        """llama.cpp: llama_grammar_reject_candidates over the current stacks."""
        return _reject(self, self.stacks, candidates)

    def reject_candidates_for_stack(self, stack: Stack, candidates: list[Candidate]) -> list[Candidate]:
        """llama.cpp: llama_grammar_reject_candidates_for_stack (one stack)."""
        return _reject_for_stack(self, stack, candidates)

    def apply(self, tokens: Sequence[int], logits: list[float] | None = None) -> list[bool]:
        """llama.cpp: llama_grammar_apply_impl.  Returns, per candidate token, whether it stays
        (False = the reference sets its logit to -inf); when ``logits`` is given, those
        entries are set to -inf in place.  Needs a vocabulary."""
        vocab = self._need_vocab()
        keep = [True] * len(tokens)
        if self.awaiting_trigger:
            return keep
        allow_eog = self.is_complete()
        cands: list[Candidate] = []
        for i, tok in enumerate(tokens):
            piece = vocab.piece(tok)
            if vocab.is_eog(tok):
                if not allow_eog:
                    keep[i] = False
            elif not piece or piece[0] == 0:
                keep[i] = False
            else:
                cps, partial = decode_utf8(piece, self.partial_utf8)
                cands.append(Candidate(i, cps, 0, partial, tok))
        # the batched walk recurses twice per code point: very long pieces go one by one
        short = [c for c in cands if len(c.code_points) <= _BATCH_MAX_CPS]
        if short:
            for c in self.reject_candidates(short):
                keep[c.index] = False
        for c in cands:
            if len(c.code_points) > _BATCH_MAX_CPS and not _accepts(self, c):
                keep[c.index] = False
        if logits is not None:
            for i, k in enumerate(keep):
                if not k:
                    logits[i] = float("-inf")
        return keep

    def accept(self, token: int) -> None:
        """llama.cpp: llama_grammar_accept_impl (lazy triggers, EOG, then the token).
        Accepting an end-of-generation token while no stack is complete raises
        ``GrammarError(reason="eog-not-allowed")`` where the reference aborts."""
        vocab = self._need_vocab()
        piece = vocab.piece(token)
        if self.awaiting_trigger:
            if token in self.trigger_tokens:
                self.awaiting_trigger = False
                self.trigger_buffer = b""
                self.accept_token(token, piece)
                return
            start_buf = len(self.trigger_buffer)
            self.trigger_buffer_positions.append((token, start_buf, start_buf + len(piece)))
            self.trigger_buffer += piece
            for pattern in self.trigger_patterns:
                start = pattern.find(self.trigger_buffer)
                if start is None:
                    continue
                self.awaiting_trigger = False
                # replay the buffered tokens that overlap [start, end)
                for tok, tok_start, tok_end in self.trigger_buffer_positions:
                    if tok_end <= start:
                        continue
                    piece_start = max(tok_start, start)
                    self.accept_token(tok, self.trigger_buffer[piece_start:tok_end])
                self.trigger_buffer = b""
                self.trigger_buffer_positions = []
                return
            return
        if vocab.is_eog(token):
            if self.is_complete():
                return
            raise GrammarError("end-of-generation token accepted while the grammar is incomplete "
                               "(the reference aborts)", reason="eog-not-allowed")
        self.accept_token(token, piece)

    def _need_vocab(self) -> GrammarVocab:
        if self.vocab is None:
            raise GrammarError("this grammar has no vocabulary (token-level use needs one)",
                               reason="no-vocab")
        return self.vocab


_BATCH_MAX_CPS = 200


def _accepts(g: Grammar, c: Candidate) -> bool:
    """Whether some stack accepts one candidate: the reference's rejection rules walked
    iteratively for a single candidate (same answer as the batched walk)."""
    rules = g.rules
    cps, n_remain = c.code_points, c.partial[1]
    if not g.stacks:
        raise GrammarError("no grammar stacks to match candidates against", reason="internal")
    todo = [(s, c.offset) for s in g.stacks]
    seen: set[tuple[Stack, int]] = set()
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.add(item)
        s, off = item
        cp = cps[off]
        if not s:
            if cp == 0 and n_remain == 0:
                return True
            continue
        top = s[-1]
        if rules.types[top] in (TOKEN, TOKEN_NOT):
            if (n_remain == 0) if cp == 0 else match_token(rules, top, c.id):
                return True
            continue
        if cp == 0:
            if n_remain == 0 or match_partial_char(rules, top, c.partial):
                return True
            continue
        ok, after = match_char(rules, top, cp)
        if ok:
            for ns in g._advance(s[:-1] if rules.is_end(after) else s[:-1] + (after,)):
                todo.append((ns, off + 1))
    return False


def _reject(g: Grammar, stacks: Sequence[Stack], candidates: list[Candidate]) -> list[Candidate]:
    # llama.cpp: llama_grammar_reject_candidates: what every stack rejects
    if not candidates:
        return []
    if not stacks:
        # the reference asserts (GGML_ASSERT(!stacks.empty()))
        raise GrammarError("no grammar stacks to match candidates against", reason="internal")
    rejects = _reject_for_stack(g, stacks[0], candidates)
    for stack in stacks[1:]:
        rejects = _reject_for_stack(g, stack, rejects)
    return rejects


def _reject_for_stack(g: Grammar, stack: Stack, candidates: list[Candidate]) -> list[Candidate]:
    # llama.cpp: llama_grammar_reject_candidates_for_stack
    rules = g.rules
    if not stack:
        return [c for c in candidates if c.code_points[c.offset] != 0 or c.partial[1] != 0]
    pos = stack[-1]
    rejects: list[Candidate] = []
    if rules.types[pos] in (TOKEN, TOKEN_NOT):
        for c in candidates:
            if c.code_points[c.offset] == 0:
                if c.partial[1] != 0:
                    rejects.append(c)
            elif not match_token(rules, pos, c.id):
                rejects.append(c)
        return rejects
    positive, ranges, after = rules.charsets[pos]
    nxt: list[Candidate] = []
    for c in candidates:
        cp = c.code_points[c.offset]
        if cp == 0:
            if c.partial[1] != 0 and not match_partial_char(rules, pos, c.partial):
                rejects.append(c)
            continue
        found = False
        for lo, hi in ranges:
            if lo <= cp <= hi:
                found = True
                break
        if found == positive:
            nxt.append(Candidate(c.index, c.code_points, c.offset + 1, c.partial, c.id))
        else:
            rejects.append(c)
    if nxt:
        stack_after = stack[:-1] if rules.is_end(after) else stack[:-1] + (after,)
        for c in _reject(g, g._advance(stack_after), nxt):
            rejects.append(Candidate(c.index, c.code_points, c.offset - 1, c.partial, c.id))
    return rejects


class TriggerPattern:
    """llama.cpp: llama_grammar_trigger_pattern: a full match when the pattern is ``^...$``,
    else a search; the constrained text starts at the first non-empty capture group (else at
    the match).  Python's ``re`` stands in for ``std::regex`` (ECMAScript); the patterns the
    reference's chat templates produce use the common subset."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        try:
            self.regex = re.compile(pattern.encode("utf-8"))
        except re.error as e:
            # the reference's std::regex constructor throws std::regex_error here
            raise GrammarError(f"invalid trigger pattern {pattern!r}: {e}", reason="trigger-pattern") from e

    def find(self, text: bytes) -> int | None:
        m = None
        if self.pattern.startswith("^") and self.pattern.endswith("$"):
            m = self.regex.fullmatch(text)
        if m is None:
            m = self.regex.search(text)
        if m is None:
            return None
        for i in range(1, (m.re.groups or 0) + 1):
            if m.start(i) >= 0 and m.end(i) - m.start(i) > 0:
                return m.start(i)
        return m.start(0)


def _check_stack_count(n: int, limit: int) -> None:
    if n > limit:
        raise GrammarError(f"too many grammar stacks ({n} > {limit}): the grammar is too ambiguous",
                           reason="stack-limit")


def _text(piece: bytes) -> str:
    nul = piece.find(b"\0")
    return (piece if nul < 0 else piece[:nul]).decode("utf-8", "surrogateescape")


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v
