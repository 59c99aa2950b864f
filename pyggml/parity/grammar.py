"""Parity component "grammar": GBNF parsing and the grammar runtime against the reference.

Cases (every expectation comes from the running reference, src/llama-grammar.cpp), grouped by
the first part of their name:
- ``parse.<source>``: the parser's outcome (accept/reject, error text, symbol table, rule
  table) for every grammars/*.gbnf (``file``), every grammar text in the reference's grammar
  tests (``test``, read out of the vendored C++ sources), hostile grammars (``hostile``:
  ``HOSTILE_DEFINED``, and ``HOSTILE_REFUSED`` but for the parse pyggml refuses) and generated
  grammars, valid and mutated (``gen``);
- ``accept.<source>``: grammar creation (NULL reasons, initial stacks) then a string accepted
  step by step (per code point, per byte, or in chunks; accept_str or accept_token),
  comparing the stacks and the partial UTF-8 state after every step.  Strings are the
  reference tests' own, walks of the grammar (in the language) and one-edit near misses.
  Stacks are compared as (rule, offset) pairs, or by count and digest of the same canonical
  bytes built on both sides when large (``reference.grammar.canon_stacks``);
- ``token``: with the SmolLM2 (BPE) and llama-spm (SPM) vocabularies loaded by the reference,
  the tokens ``apply`` leaves over the whole vocabulary at every step of constrained
  generations driven by random choices, and the stacks after each accepted token;
- ``tokref``: ``<[id]>`` / ``<text>`` token references parsed with the vocabulary (pyggml's
  tokenizer against the reference's), then a short generation;
- ``lazy``: lazy grammars with trigger tokens and trigger patterns (search and ``^...$`` full
  match with a group): the state, trigger buffer included, after each token, and the replay.

- ``refused.<source>``: grammars and steps pyggml refuses where the reference never returns
  (``{m,n}`` with n < m, left recursion hidden behind rules that can be empty): the reference
  runs them in a throwaway child under a memory cap and a CPU-time cap, and must refuse, run
  out of memory, hit the CPU cap or die there; a reference that creates the grammar or
  completes the step is a mismatch.  ``HOSTILE_REFUSED`` keeps such grammars in every run.

Sessions end after the first step that leaves more than ``SESSION_MAX_STACKS`` stacks, on each
side by its own count; the step index is compared (their group is ``accept.<source>.capped``).
Nesting deeper than the reference's C stack is left to tests/grammar/test_grammar_hostile.py.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GrammarError
from ..grammar.parser import CHAR_ANY, TOKEN, TOKEN_NOT, Parser
from ..grammar.runtime import Grammar
from ..grammar.tokens import TokenIndex, apply_all
from . import Case, Options, corpus


def vendor_dir() -> Path:
    return corpus.reference_tree()


def grammar_files() -> list[tuple[str, bytes]]:
    files = sorted((vendor_dir() / "grammars").glob("*.gbnf"))
    if not files:
        raise corpus.FixtureError("no grammars/*.gbnf in the reference tree")
    return [(f.name, f.read_bytes()) for f in files]


# --- C++ string literals of the reference's tests ---------------------------------------------
_SIMPLE_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "?": "?"}


def _literals(src: str) -> list[tuple[int, int, str]]:
    """(start, end, value) of every string literal outside comments: raw ``R"d(...)d"`` and
    ordinary ones (escapes \\n \\t \\r \\\\ \\" \\xHH \\uHHHH decoded)."""
    out: list[tuple[int, int, str]] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            i = src.find("\n", i)
            i = n if i < 0 else i
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "'":
            j = i + 1
            while j < n and src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            i = j + 1
        elif c == "R" and i + 1 < n and src[i + 1] == '"' and not (src[i - 1].isalnum() or src[i - 1] == "_"):
            p = src.find("(", i + 2)
            delim = src[i + 2:p]
            end = src.find(")" + delim + '"', p)
            out.append((i, end + len(delim) + 2, src[p + 1:end]))
            i = end + len(delim) + 2
        elif c == '"':
            j, buf = i + 1, []
            while j < n and src[j] != '"':
                if src[j] == "\\":
                    e = src[j + 1]
                    if e == "x":
                        m = re.match(r"[0-9a-fA-F]+", src[j + 2:])
                        assert m
                        buf.append(chr(int(m.group(0), 16)))
                        j += 2 + len(m.group(0))
                        continue
                    if e == "u":
                        buf.append(chr(int(src[j + 2:j + 6], 16)))
                        j += 6
                        continue
                    buf.append(_SIMPLE_ESC.get(e, e))
                    j += 2
                else:
                    buf.append(src[j])
                    j += 1
            out.append((i, j + 1, "".join(buf)))
            i = j + 1
        else:
            i += 1
    return out


@dataclass
class TestGrammar:
    name: str
    text: str
    strings: list[str]


def test_grammars() -> list[TestGrammar]:
    """Every grammar text of tests/test-grammar-parser.cpp and test-grammar-integration.cpp
    (raw strings containing ``::=``), with the passing and failing strings of each
    ``test_grammar(...)`` call attached."""
    out: list[TestGrammar] = []
    seen: set[str] = set()
    for fname in ("test-grammar-parser.cpp", "test-grammar-integration.cpp", "test-llama-grammar.cpp"):
        path = vendor_dir() / "tests" / fname
        src = path.read_text()
        lits = _literals(src)
        # strings attached to test_grammar(...) calls: the literals between this call and the next
        calls = [m.start() for m in re.finditer(r"\btest_grammar\(", src)]
        for k, lit in enumerate(lits):
            start, _, value = lit
            if "::=" not in value or value in seen:
                continue
            seen.add(value)
            strings: list[str] = []
            owner = [c for c in calls if c < start]
            if owner and fname == "test-grammar-integration.cpp":
                nxt = [c for c in calls if c > start]
                limit = nxt[0] if nxt else len(src)
                for s2, _, v2 in lits[k + 1:]:
                    if s2 >= limit or "::=" in v2:
                        break
                    strings.append(v2)
            out.append(TestGrammar(f"{fname}:{src.count(chr(10), 0, start) + 1}", value, strings))
    if not out:
        raise corpus.FixtureError("no grammar texts found in the reference's tests")
    return out


# --- generated grammars ------------------------------------------------------------------------
_CHARS = ["a", "b", "c", "x", "0", "9", " ", "-", "é", "中", "😀", "\\n", "\\t", "\\\\", '\\"', "\\x41",
          "\\u00e9", "\\U0001F600", "\\]", "\\-", "[", "]", "^"]


class GrammarGen:
    """Random GBNF from a small generator: a few rules over literals, classes, ``.``, groups,
    alternatives, quantifiers, token references; ``broken`` mutates a valid text."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _char(self, in_class: bool) -> str:
        c = self.rng.choice(_CHARS)
        return "\\]" if in_class and c == "]" else c

    def _atom(self, depth: int, names: list[str]) -> str:
        r = self.rng.random()
        if r < 0.25:
            return '"' + "".join(self._char(False) for _ in range(self.rng.randint(0, 3))) + '"'
        if r < 0.45:
            body = ""
            for _ in range(self.rng.randint(1, 3)):
                lo = self._char(True)
                body += lo
                if self.rng.random() < 0.4:
                    body += "-" + self._char(True)
            return "[" + ("^" if self.rng.random() < 0.3 else "") + body + "]"
        if r < 0.55:
            return "."
        if r < 0.72:
            return self.rng.choice(names)
        if r < 0.77:
            return ("!" if self.rng.random() < 0.3 else "") + f"<[{self.rng.randint(0, 20)}]>"
        if depth < 3:
            return "(" + self._alts(depth + 1, names) + ")"
        return '"z"'

    def _item(self, depth: int, names: list[str]) -> str:
        a = self._atom(depth, names)
        r = self.rng.random()
        if r < 0.1:
            a += "*"
        elif r < 0.2:
            a += "+"
        elif r < 0.3:
            a += "?"
        elif r < 0.38:
            m = self.rng.randint(0, 3)
            a += self.rng.choice([f"{{{m}}}", f"{{{m},}}", f"{{{m},{m + self.rng.randint(0, 3)}}}",
                                  f"{{ {m} , }}"])
        return a

    def _seq(self, depth: int, names: list[str]) -> str:
        return " ".join(self._item(depth, names) for _ in range(self.rng.randint(1, 4)))

    def _alts(self, depth: int, names: list[str]) -> str:
        sep = self.rng.choice([" | ", " |\n  ", "|"]) if depth else self.rng.choice([" | ", " |\n  "])
        return sep.join(self._seq(depth, names) if self.rng.random() > 0.1 else ""
                        for _ in range(self.rng.randint(1, 3)))

    def valid(self) -> str:
        n = self.rng.randint(1, 4)
        pool = ["a", "b-c", "x1", "item", "root-1", "Root2", "ws", "root_1"]
        names = ["root"] + self.rng.sample(pool, n - 1)
        lines = []
        for name in names:
            if self.rng.random() < 0.1:
                lines.append("# comment " + name)
            lines.append(f"{name} ::= {self._alts(0, names)}")
        if self.rng.random() < 0.2:
            self.rng.shuffle(lines)
        return "\n".join(lines) + self.rng.choice(["", "\n", "\r\n", "\n\n"])

    def broken(self) -> str:
        text = self.valid()
        for _ in range(self.rng.randint(1, 3)):
            i = self.rng.randrange(len(text) + 1)
            op = self.rng.random()
            if op < 0.4 and text:
                text = text[:i] + text[i + 1:]
            elif op < 0.8:
                text = text[:i] + self.rng.choice('()[]{}"|*+?:=\\^-,<>!#\n x9') + text[i:]
            else:
                text = text[:i]
        return text


# --- strings in and around a grammar's language -------------------------------------------------
def _pick_char(rng: random.Random, g: Grammar, pos: int) -> int | None:
    positive, ranges, _ = g.rules.charsets[pos]
    if positive:
        lo, hi = rng.choice(ranges)
        hi = min(hi, 0x10FFFF)
        lo = min(lo, hi)
        for _ in range(4):
            c = rng.randint(lo, hi) if rng.random() < 0.7 or lo == hi else rng.choice((lo, hi))
            if c and not 0xD800 <= c <= 0xDFFF:
                return c
        return None
    for _ in range(8):
        c = rng.choice((rng.randint(0x20, 0x7E), rng.randint(0x80, 0x7FF), rng.randint(0x800, 0xFFFF),
                        rng.randint(0x10000, 0x10FFFF)))
        if 0xD800 <= c <= 0xDFFF:
            continue
        if not any(lo <= c <= hi for lo, hi in ranges):
            return c
    return None


def walk(rng: random.Random, g: Grammar, max_len: int = 24) -> str:
    """A string the grammar accepts (or a prefix of one): follow random live stacks."""
    g = g.clone()
    g.max_stacks = SESSION_MAX_STACKS
    out: list[str] = []
    for _ in range(max_len):
        if g.is_complete() and rng.random() < 0.25:
            break
        live = [s for s in g.stacks if s and g.rules.types[s[-1]] not in (TOKEN, TOKEN_NOT)]
        if not live:
            break
        pos = rng.choice(live)[-1]
        c = _pick_char(rng, g, pos) if g.rules.types[pos] != CHAR_ANY else rng.choice((97, 0x4E2D, 0x1F600))
        if c is None:
            break
        try:
            g.accept_char(c)
        except GrammarError:
            break  # too ambiguous to follow further
        out.append(chr(c))
        if not g.stacks:
            break
    return "".join(out)


def near_miss(rng: random.Random, s: str) -> str:
    """The string with one random edit: likely just outside the language."""
    extra = rng.choice("a0 \n\"}]é中😀" + "\udcff")
    i = rng.randrange(len(s) + 1)
    op = rng.random()
    if op < 0.35:
        return s + extra
    if op < 0.6 and s:
        return s[:i] + s[i + 1:]
    if op < 0.85:
        return s[:i] + extra + s[i:]
    return s[:i]


def steps_for(rng: random.Random, s: str) -> list[tuple[int, int, bytes]]:
    """Split ``s`` into accept steps: per code point, per byte (partial UTF-8) or in chunks;
    as accept_str (kind 0) or as accept_token with token 0 (kind 1, as the integration test)."""
    data = s.encode("utf-8", "surrogateescape")
    mode = rng.random()
    kind = 0 if rng.random() < 0.6 else 1
    if mode < 0.5:
        parts = [ch.encode("utf-8", "surrogateescape") for ch in s]
    elif mode < 0.75:
        parts = [data[i:i + 1] for i in range(len(data))]
    else:
        parts, i = [], 0
        while i < len(data):
            k = rng.randint(1, 4)
            parts.append(data[i:i + k])
            i += k
    return [(kind, 0, p) for p in parts if p]


def strings_for(rng: random.Random, g: Grammar, n: int) -> list[str]:
    out: list[str] = []
    for _ in range(n):
        s = walk(rng, g)
        out.append(s)
        out.append(near_miss(rng, s))
    return out


def try_grammar(text: str | bytes, root: str = "root") -> Grammar | None:
    try:
        return Grammar.from_text(text, root)
    except GrammarError:
        return None


# --- the two sides ------------------------------------------------------------------------------
def ours_parse(text: str | bytes) -> dict[str, Any]:
    p = Parser(text)
    try:
        out = p.parse()
    except GrammarError as e:
        return {"ok": False, "symbols": sorted([k, v] for k, v in p.out.symbol_ids.items()), "rules": [],
                "error": e.message}
    return {"ok": True, "symbols": sorted([k, v] for k, v in out.symbol_ids.items()),
            "rules": [[list(e) for e in r] for r in out.rules], "error": None}


def _ours_state(g: Grammar) -> dict[str, Any]:
    from ..reference.grammar import canon_stacks

    return {"stacks": canon_stacks(g.stacks_raw()), "partial": list(g.partial_utf8)}


def _accept_state(g: Grammar, token: int, state: Callable[[Grammar], dict[str, Any]]) -> dict[str, Any]:
    """Accept ``token``, then the state; a refusal is recorded as the state plus its message."""
    try:
        g.accept(token)
    except GrammarError as e:
        return {**state(g), "error": e.message}
    return state(g)


# pyggml's refusals where the reference never returns (or exhausts memory): such grammars and
# steps go to the reference only in an isolated child (``_refused_case``)
_NOT_FOR_REFERENCE = frozenset(("repetition-bounds", "hidden-left-recursion", "stack-limit"))
# the one refusal of pyggml's parser: the reference's parser itself never returns
_PARSE_NEVER_RETURNS = "repetition-bounds"


# Sessions end after the first step that leaves more than this many stacks, on both sides:
# ambiguous generated grammars multiply their stacks with every character, and the
# reference's per-stack linear dedup makes each step quadratic in their number.  Real
# grammars keep a handful.
SESSION_MAX_STACKS = 512


def ours_session(text: str | bytes, root: str, steps: list[tuple[int, int, bytes]],
                 max_stacks: int | None = None, base: Grammar | None = None) -> dict[str, Any]:
    """pyggml's side of ``reference.grammar.session``.  With ``max_stacks`` (parity runs),
    the session ends at the first step that leaves more stacks than that (or more than
    ``Grammar.max_stacks``): ``"capped"`` holds its index and that step's state is left out,
    as the reference's side does; a step pyggml refuses where the reference never returns
    ends it with ``"refused"`` (its index, not compared: see ``_refused_case``).
    ``base``: the grammar already created from ``text`` and ``root``; the session runs on a
    clone (sharing its transition caches)."""
    if base is not None:
        g = base.clone()
    else:
        try:
            g = Grammar.from_text(text, root)
        except GrammarError as e:
            if e.reason in _NOT_FOR_REFERENCE:
                raise
            return {"init": {"ok": False, "error": e.message}}
    res: dict[str, Any] = {"init": {"ok": True, "rules": [[list(e) for e in r] for r in g.rules.rules],
                                    **_ours_state(g)}, "steps": []}
    for k, (kind, token, piece) in enumerate(steps):
        err = None
        try:
            if kind == 0:
                g.accept_str(piece)
            else:
                g.accept_token(token, piece)
        except GrammarError as e:
            if e.reason == "stack-limit" and max_stacks is not None:
                res["capped"] = k
                break
            if e.reason in _NOT_FOR_REFERENCE:
                if max_stacks is None:
                    raise
                res["refused"] = k
                break
            err = e.message
        if max_stacks is not None and len(g.stacks) > max_stacks:
            res["capped"] = k
            break
        st = _ours_state(g)
        if err is not None:
            st["error"] = err
        res["steps"].append(st)
        if err is not None:
            break
    return res


def _refuses(text: str | bytes) -> bool:
    """Grammars pyggml refuses at creation where the reference never returns (``{m,n}`` with
    n < m; hidden left recursion in its initial stacks): the reference runs them only
    isolated (``reference_ending``)."""
    try:
        Grammar.from_text(text)
    except GrammarError as e:
        return e.reason in _NOT_FOR_REFERENCE
    return False


def _token_steps(rng: random.Random, g: Grammar) -> list[tuple[int, int, bytes]]:
    steps: list[tuple[int, int, bytes]] = []
    for _ in range(rng.randint(1, 6)):
        if rng.random() < 0.5:
            t = rng.randint(0, 20)
            steps.append((1, t, f"<[{t}]>".encode()))
        else:
            steps.extend(steps_for(rng, walk(rng, g, 4)))
    return steps


HOSTILE_DEFINED = {
    "huge-repetition": 'root ::= "a"{2000000000,2147483647}',
    "left-recursion": 'root ::= root "a" | "b"',
    "left-recursion-indirect": 'root ::= x "a"\nx ::= y\ny ::= "" | root',
    "star-of-star": 'root ::= ("a"*)*',
    "empty": "",
    "only-comments": "# nothing here\n\n",
    "dies-on-first": 'root ::= "a"',
    "nested-2000": "root ::= " + "(" * 2000 + '"a"' + ")" * 2000,
    "repetition-product": 'root ::= ("a"{50}){50}',
    "max-over-threshold": 'root ::= "a"{0,5000}',
    "stoull-overflow": 'root ::= "a"{99999999999999999999999}',
    "token-id-too-big": "root ::= <[4294967296]>",
    "token-without-vocab": "root ::= <hello>",
    "root-named-generated": 'root ::= ("a" | "b")+\nroot_1 ::= "c"',
    "nul-inside": 'root ::= "a"\0 junk',
}


# grammars pyggml refuses where the reference never returns: the parse ({m,n} with n < m),
# the initial stacks, or the stacks after "a" (hidden left recursion)
HOSTILE_REFUSED = {
    "min-above-max": 'root ::= "a"{5,0}',
    "hidden-left-recursion": 'root ::= x "b"\nx ::= y x "c" | "d"\ny ::= z\nz ::= ""',
    "hidden-left-recursion-after-a": 'root ::= "a" x "b"\nx ::= y x "c" | "d"\ny ::= z\nz ::= ""',
}

# the reference child's caps for a refused grammar: an address space a runaway exhausts in
# about a second, a CPU-time cap far above that (reaching it counts as "hangs", whatever the
# machine's load), and a wall clock that only guards against a starved child (on a timeout
# the child runs again with a longer one; twice is "inconclusive", a mismatch)
REFUSED_MEM_MB = 512
REFUSED_CPU_S = 60
REFUSED_WALL_S = (600, 2400)
REFUSED = {"outcome": "refused, hangs or aborts"}
# how the reference ended each refused case of the last run (read by the tests and the report)
REFUSED_ENDINGS: Counter[str] = Counter()


def reference_ending(text: str | bytes, steps: list[tuple[int, int, bytes]]) -> dict[str, Any]:
    """The reference's outcome for a grammar (and steps) pyggml refuses, from an isolated
    child: ``REFUSED`` when it refuses, fails the last step, runs out of memory, hits the
    CPU-time cap or dies; otherwise what it did instead (a mismatch)."""
    from ..reference import grammar as ref

    for wall in REFUSED_WALL_S:
        r = ref.isolated_call("ending", text, "root", steps, timeout=wall, mem_mb=REFUSED_MEM_MB,
                              cpu_s=REFUSED_CPU_S)
        if r != {"abnormal": "timeout"}:
            break
    else:
        return {"outcome": "inconclusive: wall-clock timeout without reaching the CPU cap"}
    if "abnormal" in r:
        # SIGXCPU, or SIGKILL at the hard CPU limit: the CPU cap; any other death: it crashed
        ending = "hangs" if r["abnormal"] in ("signal 24", "signal 9") else f"died: {r['abnormal']}"
    elif not r["created"]:
        ending = f"refused: {r['error']}" if r["created"] is False else "out of memory (Python)"
    elif r["error"] is None:
        return {"outcome": "created the grammar and completed every step"}
    elif r["steps_done"] < len(steps) - 1:
        return {"outcome": f"step {r['steps_done']} failed: {r['error']}"}
    else:
        ending = f"step failed: {r['error']}"
    REFUSED_ENDINGS[ending] += 1
    return REFUSED


def _refused_case(name: str, text: str | bytes, steps: list[tuple[int, int, bytes]]) -> Case:
    return Case(name, REFUSED, reference_ending(text, steps))


def _grammar_cases(rng: random.Random, name: str, text: str | bytes, strings: list[str],
                   n_walks: int) -> Iterator[Case]:
    from ..reference import grammar as ref

    source, _, rest = name.partition("/")
    try:
        g: Grammar | None = Grammar.from_text(text)
        refusal = None
    except GrammarError as e:
        g, refusal = None, e.reason
    if refusal != _PARSE_NEVER_RETURNS:
        yield Case(f"parse.{source}/{rest}", ours_parse(text), ref.parse_outcome(text))
    if refusal in _NOT_FOR_REFERENCE:
        yield _refused_case(f"refused.{source}/{rest}", text, [])
        return
    sessions: list[list[tuple[int, int, bytes]]] = [[]]
    for s in strings:
        sessions.append(steps_for(rng, s))
    if g is not None:
        for s in strings_for(rng, g, n_walks):
            sessions.append(steps_for(rng, s))
        if any(t in (TOKEN, TOKEN_NOT) for t in g.rules.types):
            sessions.append(_token_steps(rng, g))
    for i, steps in enumerate(sessions):
        ours = ours_session(text, "root", steps, SESSION_MAX_STACKS, base=g)
        refused = ours.pop("refused", None)
        if refused is not None:
            yield _refused_case(f"refused.accept.{source}/{rest}/{i}", text, steps[:refused + 1])
            continue
        theirs = ref.session(text, "root", steps, SESSION_MAX_STACKS)
        group = f"accept.{source}" + (".capped" if "capped" in ours or "capped" in theirs else "")
        yield Case(f"{group}/{rest}/{i}", ours, theirs)
        if g is None:
            break  # creation fails: one session says so


def cases(opts: Options) -> Iterator[Case]:
    REFUSED_ENDINGS.clear()
    rng = random.Random(opts.seed)
    full = opts.full
    for name, text in grammar_files():
        yield from _grammar_cases(rng, f"file/{name}", text, [], 150 if full else 4)
    for tg in test_grammars():
        yield from _grammar_cases(rng, f"test/{tg.name}", tg.text, tg.strings, 40 if full else 1)
    for name, text in (HOSTILE_DEFINED | HOSTILE_REFUSED).items():
        yield from _grammar_cases(rng, f"hostile/{name}", text, ["a", "aa", "b"], 2)
    yield from token_cases(opts, rng)
    gen = GrammarGen(rng)
    n_valid, n_broken = (1500, 800) if full else (120, 80)
    for i in range(n_valid + n_broken):
        text = gen.valid() if i < n_valid else gen.broken()
        yield from _grammar_cases(rng, f"gen/{i}", text, [], 30 if full else 2)


# --- token level: apply over a whole vocabulary, accept the chosen token ------------------------
class TableVocab:
    """A vocabulary as the grammar reads it (piece per token, EOG flags), taken from the
    reference's loaded vocab: the grammar is what is under test here, not the tokenizer."""

    def __init__(self, pieces: list[bytes], eog: list[bool]) -> None:
        self.pieces = pieces
        self.eog = eog
        self.eog_ids = frozenset(i for i, e in enumerate(eog) if e)

    def piece(self, token: int) -> bytes:
        return self.pieces[token]

    def is_eog(self, token: int) -> bool:
        return token in self.eog_ids

    def tokenize(self, text: bytes, add_special: bool = False, parse_special: bool = True) -> list[int]:
        raise GrammarError("TableVocab cannot tokenize", reason="no-vocab")


def _kept_summary(keep: np.ndarray) -> dict[str, Any]:
    """The kept token ids: count, digest, and the first few (for a readable diff)."""
    ids = np.flatnonzero(keep).astype("<i4")
    return {"n": int(ids.size), "blake2b": hashlib.blake2b(ids.tobytes(), digest_size=12).hexdigest(),
            "ids": ids[:32].tolist()}


TOKEN_GRAMMARS = ("json.gbnf", "arithmetic.gbnf", "list.gbnf", "c.gbnf", "chess.gbnf")


def _vocabs() -> list[tuple[str, Path]]:
    spm = [p for p in corpus.vocab_ggufs() if p.name == "ggml-vocab-llama-spm.gguf"]
    if not spm:
        raise corpus.FixtureError("ggml-vocab-llama-spm.gguf not in the reference's models/")
    return [("smollm2", corpus.smollm2()), ("llama-spm", spm[0])]


@dataclass
class _VocabCtx:
    name: str
    handle: Any
    vocab: TableVocab
    index: TokenIndex
    ids: np.ndarray


def _generation(ctx: _VocabCtx, rng: random.Random, name: str, ours: Grammar, theirs: Any, n_steps: int,
                walk_first: bool) -> Iterator[Case]:
    """One constrained generation driven by random choices among the reference's kept
    tokens: the kept set after every apply, the state after every accept."""
    for step in range(n_steps):
        # the trie path (what the sampler uses); the reference-shaped candidate walk once
        keep_o = (np.array(ours.apply(ctx.ids.tolist()), dtype=bool) if walk_first and step == 0
                  else apply_all(ours, ctx.index))
        keep_r = theirs.apply_np(ctx.ids)
        yield Case(f"{name}/{step}/apply", _kept_summary(keep_o), _kept_summary(keep_r))
        kept_r = np.flatnonzero(keep_r)
        if not kept_r.size:
            break
        tok = int(kept_r[rng.randrange(kept_r.size)])
        if ctx.vocab.is_eog(tok):
            break
        st_r = theirs.accept(2, tok, b"")
        st_o = _accept_state(ours, tok, _ours_state)
        yield Case(f"{name}/{step}/accept", st_o, st_r)
        if "error" in st_r:
            break


def token_cases(opts: Options, rng: random.Random) -> Iterator[Case]:
    from ..reference import grammar as ref
    from ..reference import model as ref_model
    from ..vocab import Vocab

    texts = dict(grammar_files())
    # full: 40 generations per grammar, 200 per vocabulary
    n_gen, n_steps = (40, 20) if opts.full else (1, 5)
    for vname, path in _vocabs():
        handle, _, log = ref_model.load(str(path), vocab_only=True)
        if handle == ref.ffi.NULL:
            raise corpus.FixtureError(f"the reference could not load {path}: {log[-300:]}")
        try:
            vocab = TableVocab(*ref.vocab_pieces(handle))
            n = len(vocab.pieces)
            ctx = _VocabCtx(vname, handle, vocab, TokenIndex(vocab, n), np.arange(n, dtype=np.int32))
            for gname in TOKEN_GRAMMARS if opts.full else TOKEN_GRAMMARS[:2]:
                for gi in range(n_gen):
                    ours = Grammar.from_text(texts[gname], vocab=vocab)
                    theirs = ref.Grammar(texts[gname], model=handle)
                    yield from _generation(ctx, rng, f"token/{vname}/{gname}/{gi}", ours, theirs, n_steps,
                                           walk_first=opts.full and gi == 0)
                    theirs.close()
            yield from _tokref_cases(opts, rng, ctx, Vocab.from_gguf(str(path)))
            yield from _lazy_cases(opts, rng, ctx, texts["json.gbnf"])
        finally:
            ref_model.free(handle)


# ``<text>`` token references (tokenized with the vocab: must give exactly one token) and
# ``<[id]>`` ids in and out of the vocabulary
TOKREF_TEXTS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<unk>", "<think>",
                "<hello>", "<a>", "< >", "<é>", "<<>", "<hello world>", "<>", "<|im_start|")


def _tokref_grammars(n_vocab: int) -> list[str]:
    out = []
    for t in TOKREF_TEXTS:
        out.append(f'root ::= {t} "x"')
        out.append(f'root ::= ("a" | " " | !{t})+ {t}')
    for tid in (0, 1, 2, n_vocab - 1, n_vocab, 4294967295):
        out.append(f'root ::= ([a-z ]+ <[{tid}]>)+ | !<[{tid}]> "." root?')
    return out


def _tokref_cases(opts: Options, rng: random.Random, ctx: _VocabCtx, model_vocab: Any) -> Iterator[Case]:
    """Token references parsed with the vocabulary (pyggml's own tokenizer for ``<text>``),
    then a short generation over the whole vocabulary."""
    from ..grammar.tokens import VocabPieces
    from ..reference import grammar as ref

    mv = VocabPieces(model_vocab)
    grammars = _tokref_grammars(len(ctx.vocab.pieces))
    for gi, text in enumerate(grammars):
        if not opts.full and gi % 4:
            continue
        name = f"tokref/{ctx.name}/{gi}"
        theirs = ref.Grammar(text, model=ctx.handle)
        try:
            ours: Grammar | None = Grammar.from_text(text, vocab=mv)
            init_o: dict[str, Any] = {"ok": True, "rules": [[list(e) for e in r] for r in ours.rules.rules],
                                      **_ours_state(ours)}
        except GrammarError as e:
            ours, init_o = None, {"ok": False, "error": e.message}
        init_r = ({"ok": True, "rules": theirs.info["rules"], **theirs.state()} if theirs.ok
                  else {"ok": False, "error": theirs.init_error()})
        yield Case(name + "/init", init_o, init_r)
        if ours is not None and theirs.ok:
            ours.vocab = ctx.vocab  # pieces as the reference renders them (the same, see vocab parity)
            yield from _generation(ctx, rng, name, ours, theirs, 8 if opts.full else 3, walk_first=False)
        theirs.close()


# (trigger patterns, whether the "{"-like tokens are trigger tokens): a search, a full match
# with a group, two patterns, trigger tokens alone, and both
LAZY_TRIGGERS: tuple[tuple[list[str], bool], ...] = (
    ([r"\{"], False), ([r"^[\s\S]*?(\{[\s\S]*)$"], False), ([r"<tool_call>", r"\["], False),
    ([], True), ([r"\[x"], True))


def _lazy_full_state(g: Grammar) -> dict[str, Any]:
    return {**_ours_state(g), "awaiting_trigger": g.awaiting_trigger,
            "trigger_buffer": "s:" + g.trigger_buffer.hex()}


def _lazy_cases(opts: Options, rng: random.Random, ctx: _VocabCtx, text: bytes,
                rounds: int | None = None) -> Iterator[Case]:
    """Lazy grammars: free text (random ASCII-piece tokens) until a trigger token or pattern,
    then replay and constrained generation; the state (including the trigger buffer) is
    compared after every accept, the kept set after every apply."""
    from ..reference import grammar as ref

    vocab = ctx.vocab
    plain = [t for t, p in enumerate(vocab.pieces) if p and p.isascii() and p.isalnum()][:2000]
    braces = [t for t, p in enumerate(vocab.pieces) if p in (b" {", b"{", b'{"', b"[")]
    if rounds is None:
        rounds = 4 if opts.full else 1
    for pi, (patterns, by_token) in enumerate(LAZY_TRIGGERS if opts.full else LAZY_TRIGGERS[:3]):
        tokens = braces if by_token else []
        for r in range(rounds):
            ours = Grammar.from_text(text, vocab=vocab, lazy=True, trigger_patterns=patterns,
                                     trigger_tokens=tokens)
            theirs = ref.Grammar(text, model=ctx.handle, lazy=True, trigger_patterns=patterns,
                                 trigger_tokens=tokens)
            seq = [rng.choice(plain) for _ in range(rng.randint(0, 4))] + [rng.choice(braces)]
            for step in range(len(seq) + (12 if opts.full else 4)):
                name = f"lazy/{ctx.name}/{pi}/{r}/{step}"
                if step < len(seq):
                    tok = seq[step]
                else:
                    keep_r = theirs.apply_np(ctx.ids)
                    keep_o = apply_all(ours, ctx.index)
                    yield Case(name + "/apply", _kept_summary(keep_o), _kept_summary(keep_r))
                    kept_r = np.flatnonzero(keep_r)
                    if not kept_r.size:
                        break
                    tok = int(kept_r[rng.randrange(kept_r.size)])
                    if vocab.is_eog(tok):
                        break
                st_r = theirs.accept(2, tok, b"")
                full_r = theirs.full_state()
                st_o = _accept_state(ours, tok, _lazy_full_state)
                if "error" in st_r:
                    full_r["error"] = st_r["error"]
                yield Case(name + "/accept", st_o, full_r)
                if "error" in st_r:
                    break
            theirs.close()
