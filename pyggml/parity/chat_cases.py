"""The reference's own engine cases (tests/test-jinja.cpp ``test_template(t, name, tmpl, vars,
expect)`` calls), read from the reference tree: template and variables are translated from their
C++ spelling (string literal concatenation, ``json::object()``, ``json::array({...})``, brace
lists), and each case is rendered by both engines (the ``expect`` strings are not used: the
running reference is the oracle).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_TOKEN = re.compile(r'''
    (?P<ws>\s+|//[^\n]*)
  | (?P<str>(?:u8)?"(?:\\.|[^"\\])*")
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<id>[A-Za-z_][A-Za-z0-9_:]*)
  | (?P<p>[{}(),])
''', re.VERBOSE)

_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "b": "\b", "f": "\f",
        "v": "\v", "a": "\a", "?": "?"}


class _Unsupported(Exception):
    pass


def _unescape(lit: str) -> str:
    body = lit[lit.index('"') + 1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        e = body[i + 1]
        if e == "x":
            m = re.match(r"[0-9a-fA-F]+", body[i + 2:])
            assert m is not None
            out.append(int(m.group(), 16) & 0xFF)
            i += 2 + len(m.group())
        elif e == "u":
            out += chr(int(body[i + 2:i + 6], 16)).encode("utf-8")
            i += 6
        elif e in _ESC:
            out += _ESC[e].encode("utf-8")
            i += 2
        else:
            raise _Unsupported(f"escape \\{e}")
    return out.decode("utf-8", "surrogateescape")


def _tokens(src: str) -> list[tuple[str, str]]:
    out = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise _Unsupported(f"unexpected {src[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup or "", m.group()))
    return out


class _Parser:
    def __init__(self, toks: list[tuple[str, str]]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i] if self.i < len(self.toks) else ("eof", "")

    def take(self, val: str | None = None) -> tuple[str, str]:
        t = self.peek()
        if val is not None and t[1] != val:
            raise _Unsupported(f"expected {val!r}, got {t[1]!r}")
        self.i += 1
        return t

    def value(self) -> Any:
        kind, val = self.peek()
        if kind == "str":
            s = ""
            while self.peek()[0] == "str":
                s += _unescape(self.take()[1])
            return s
        if kind == "num":
            self.take()
            return float(val) if any(c in val for c in ".eE") else int(val)
        if kind == "id":
            self.take()
            if val in ("true", "false"):
                return val == "true"
            if val == "nullptr":
                return None
            if val in ("json::object", "json::array"):
                self.take("(")
                items: list[Any] = []
                if self.peek()[1] == "{":
                    items = self.brace()
                self.take(")")
                return {} if val == "json::object" else list(items)
            if val == "json" and self.peek()[1] == "(":
                self.take("(")
                v = self.value()
                self.take(")")
                return v
            raise _Unsupported(f"identifier {val}")
        if val == "{":
            items = self.brace()
            return _as_json(items)
        raise _Unsupported(f"token {val!r}")

    def brace(self) -> list[Any]:
        self.take("{")
        items = []
        while self.peek()[1] != "}":
            items.append(self.value())
            if self.peek()[1] == ",":
                self.take()
        self.take("}")
        return items


class _Pair(list):
    pass


def _as_json(items: list[Any]) -> Any:
    # nlohmann's rule: a brace list whose elements are all [string, value] pairs is an object
    if items and all(isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) for x in items):
        return {k: v for k, v in items}
    return items


def ported_cases(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, template, variables) of every test_template call that translates."""
    text = path.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"\btest_template\(t,", text):
        depth, j = 1, m.end()
        in_str = False
        while depth and j < len(text):
            c = text[j]
            if in_str:
                if c == "\\":
                    j += 1
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            j += 1
        args_src = text[m.end():j - 1].replace("\\\n", "")  # C++ line continuations
        try:
            p = _Parser(_tokens(args_src))
            name = p.value()
            p.take(",")
            tmpl = p.value()
            p.take(",")
            vars_ = p.value()
        except (_Unsupported, AssertionError, ValueError, IndexError):
            continue
        if isinstance(name, str) and isinstance(tmpl, str) and isinstance(vars_, dict):
            out.append((name, tmpl, vars_))
    return out
