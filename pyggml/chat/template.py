"""Compiling and rendering a chat template, with input marking and a budget.

Parsing is jinja2's, in a ``SandboxedEnvironment`` configured like the reference's Python setup
(tests/test-jinja.cpp ``py_script``: trim_blocks, lstrip_blocks, loopcontrols), plus the
``{% generation %}`` tags the reference's parser ignores (common/jinja/parser.cpp).  Execution is
``runtime.Runtime``: the reference engine's semantics over jinja2's AST.  Compiled templates are
cached per template text.

Differences between jinja2 and the reference engine that pyggml bridges (it follows the
reference in each):

1. Printing: ``{{ none }}``, undefined values and objects print nothing; arrays print their
   items back to back; booleans print ``True``/``False``; floats print like ``std::to_string``
   without trailing zeros (``0.1``, ``2.0``).
2. Filters are methods of the value's type (``value.cpp get_builtins``): an unknown filter for a
   type is an error; ``x.items`` on an object is the builtin even when the key exists;
   ``|string``/``|safe`` of a number is its JSON text; ``|int`` of a string follows
   ``std::stoi`` (leading digits, 32-bit range, default 0), ``|float`` follows ``std::stod``.
3. ``tojson`` formats like ``value_to_json``: ``", "``/``": "`` separators, floats as
   ``std::ostream`` prints doubles (``%g``), non-ASCII kept unless ``ensure_ascii``;
   ``sort_keys=true`` is an error.  Its output is template text, never input.
4. Strings are byte strings: ``length``, indexes and slices count UTF-8 bytes; ``upper``,
   ``lower``, ``title``, ``capitalize`` change ASCII letters only, per input part; ``strip``
   without arguments strips C whitespace; ``split()`` without a separator splits on ``" "``.
5. Arithmetic goes through doubles (``int + int`` is ``(int64)(double + double)``); ``/`` is
   always a float; ``//`` and ``**`` are errors; ``~`` needs a string on one side; ``<`` and
   friends only compare numbers; ``none``/undefined concatenate with strings as ``""``.
6. ``==`` is the reference's ``equivalent``: arrays/objects holding mutable values are never
   equal, objects compare in key order.
7. Iterating an object binds its keys (or ``key, value`` pairs); a string is not iterable in a
   for loop; a loop's ``else`` also runs when every iteration ended in ``continue``/``break``.
8. Macros see the caller's variables (dynamic scope); keyword arguments count as inputs when
   binding parameters.
9. ``a ~ b`` chains and comparison chains fold left; ``{% generation %}`` tags are dropped.
10. Input marking: every string of the variables is input; transformations keep or drop the
    mark as ``jinja/string.h`` says (``split``/``replace``/``indent`` keep it only when all of
    the source is input; ``join`` and ``tojson`` make template text).
11. Safety (pyggml only): dunder names (``__class__``...) are refused; no Python attribute of a
    value is ever reached; time, string-size and item-count budgets stop runaway templates.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from ..errors import TemplateError
from .runtime import Budget, BudgetExceeded, Context, Root, Runtime, gather
from .values import JStr, TemplateInputError, TemplateInternalError, TemplateSyntaxError, from_json

DEFAULT_TIMEOUT = 1.0            # CPU seconds per render (thread time)
DEFAULT_MAX_BYTES = 16 << 20     # largest string a render may build
DEFAULT_MAX_ITEMS = 1 << 20      # largest list/range a render may build


class _GenerationTags(jinja2.ext.Extension):
    """``{% generation %}`` / ``{% endgeneration %}`` (a transformers extension): the reference's
    parser treats both as no-ops, so their content stays in place."""

    tags = {"generation", "endgeneration"}

    def parse(self, parser: Any) -> nodes.Node:
        lineno = next(parser.stream).lineno
        return nodes.Output([], lineno=lineno)


@functools.cache
def _environment() -> SandboxedEnvironment:
    # Whitespace control (trim_blocks, lstrip_blocks, "-" markers) is applied by ``prelex``
    # exactly as the reference lexer applies it, so jinja2 itself must leave text untouched.
    return SandboxedEnvironment(trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True,
                                extensions=[jinja2.ext.loopcontrols, _GenerationTags])


_C_SPACE = " \t\n\v\f\r"


def prelex(source: str) -> str:
    """Rewrite ``source`` so that jinja2 (without whitespace options) sees the text segments the
    reference lexer produces (llama.cpp: common/jinja/lexer.cpp lexer::tokenize): newlines
    normalized, one trailing newline dropped, lstrip_blocks/trim_blocks and the ``-`` markers
    applied (with its quirks: the first text segment is emptied when the walk back from a block
    reaches its second character), comments dropped, tags re-emitted without ``-``."""
    if not source:
        return ""
    src = source.replace("\r\n", "\n").replace("\r", "\n")
    if source[-1] == "\n":
        src = src[:-1]
    n = len(src)

    def at(i: int) -> str:
        return src[i] if 0 <= i < n else "\0"

    def next_is(i: int, chars: str, k: int = 1) -> bool:
        return i + k < n and src[i + k] in chars

    out: list[str] = []
    pos = 0
    while pos < n:
        # text, up to the next {% {{ {#
        start = pos
        rstrip_prev = can_rm_newline = False
        if pos > 3:
            c0, c1, c2 = src[pos - 3], src[pos - 2], src[pos - 1]
            rstrip_prev = c0 == "-" and c1 in "%}#" and c2 == "}"
            can_rm_newline = c1 in "#%-" and c2 == "}"
        while pos < n and not (src[pos] == "{" and next_is(pos, "%{#")):
            pos += 1
        end = pos
        if at(pos) == "{" and next_is(pos, "%#-"):
            cur = end
            while cur > start:
                c = src[cur - 1]
                if cur == 1:
                    end = 0
                    break
                if c == "\n":
                    end = cur
                    break
                if c not in _C_SPACE:
                    break
                cur -= 1
        text = src[start:end]
        if can_rm_newline and text.startswith("\n"):
            text = text[1:]
        if rstrip_prev:
            text = text.lstrip(" \t\r\n")
        if at(pos) == "{" and next_is(pos, "{%#") and next_is(pos, "-", 2):
            text = text.rstrip(" \t\r\n")
        if text:
            out.append(_text(text))
        if pos >= n:
            break
        # a comment, a statement or an expression
        kind = src[pos + 1]
        if kind == "#":
            close = src.find("#}", pos + 2)
            if close < 0:
                raise TemplateSyntaxError("missing end of comment tag")
            pos = close + 2
            continue
        pos += 2
        if at(pos) == "-":
            pos += 1
        body_start = pos
        depth = 0
        while True:
            if pos >= n:
                raise TemplateSyntaxError("unexpected end of template inside a tag")
            c = src[pos]
            if c in "'\"":
                close = pos + 1
                while close < n and src[close] != c:
                    close += 2 if src[close] == "\\" else 1
                pos = close + 1
                continue
            if c == "-" and (src.startswith("%}", pos + 1) or src.startswith("}}", pos + 1)):
                body_end, pos = pos, pos + 3
                break
            if c == "%" and at(pos + 1) == "}":
                body_end, pos = pos, pos + 2
                break
            if c == "}" and at(pos + 1) == "}" and depth == 0:
                body_end, pos = pos, pos + 2
                break
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            pos += 1
        body = src[body_start:body_end]
        _check_syntax(body, kind)
        out.append(("{%" + body + "%}") if kind == "%" else ("{{" + body + "}}"))
    return "".join(out)


_STRINGS = re.compile(r"'[^']*'|\"[^\"]*\"")
_BAD_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?[eE_]")


_BAD_OPERATOR = re.compile(r"//|\*\*|,\s*\)")
_STATEMENTS = {"set", "endset", "if", "elif", "else", "endif", "for", "endfor", "macro", "endmacro",
               "call", "endcall", "filter", "endfilter", "break", "continue", "generation", "endgeneration"}


def _check_syntax(body: str, kind: str) -> None:
    """Reject at compile time what the reference's lexer/parser rejects but jinja2 accepts
    (common/jinja/lexer.cpp, parser.cpp)."""
    code = _STRINGS.sub("''", body)
    # numbers are digits[.digits] only (lexer.cpp consume_numeric): no 1e5, no 1_000
    if _BAD_NUMBER.search(code):
        raise TemplateSyntaxError("template syntax error: numeric literal the reference does not accept")
    # no // or ** operators, no trailing comma before ")" (f(a,), (1,))
    if _BAD_OPERATOR.search(code):
        raise TemplateSyntaxError("template syntax error: operator the reference does not accept")
    if kind == "%":
        word = code.split(None, 1)[0] if code.split() else ""
        word = re.match(r"[A-Za-z_]*", word).group()  # type: ignore[union-attr]
        if word not in _STATEMENTS:
            raise TemplateSyntaxError(f"template syntax error: unknown statement {word!r}")


def _text(text: str) -> str:
    if "{" in text or "}" in text or "%" in text or "#" in text:
        return "{% raw %}" + text + "{% endraw %}"
    return text


@dataclass(frozen=True)
class Part:
    text: str
    is_input: bool


@dataclass(frozen=True)
class Rendered:
    """A rendered prompt: ``text`` and the same text as ``parts`` (neighbouring parts with the
    same mark merged, like the reference's ``runtime::gather_string_parts``)."""

    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts)

    def mask(self) -> list[tuple[str, bool]]:
        """Parts with empty pieces dropped and neighbours merged: a per-character input mask."""
        return normalize_parts((p.text, p.is_input) for p in self.parts)


def normalize_parts(parts: Iterable[tuple[str, bool]]) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for text, flag in parts:
        if not text:
            continue
        if out and out[-1][1] == flag:
            out[-1] = (out[-1][0] + text, flag)
        else:
            out.append((text, flag))
    return out


class Template:
    """A compiled chat template (``Template.compile`` caches by source text)."""

    def __init__(self, source: str) -> None:
        if not isinstance(source, str):
            raise TemplateInputError(f"template source must be a str, got {type(source).__name__}")
        self.source = source
        try:
            self.ast = _environment().parse(prelex(source))
        except jinja2.TemplateSyntaxError as e:
            raise TemplateSyntaxError(f"template syntax error: {e}") from None
        except RecursionError:
            raise BudgetExceeded("template nests too deeply") from None

    @staticmethod
    def compile(source: str) -> Template:
        return _compile_cached(source)

    def render(self, variables: Mapping[str, Any], *, mark_input: bool = True,
               timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES,
               max_items: int = DEFAULT_MAX_ITEMS, now: float | None = None,
               pre_variables: Mapping[str, Any] | None = None) -> Rendered:
        """Render with ``variables`` (JSON-like values).  Raises ``TemplateError`` when the
        template raises, fails the way the reference engine fails, or runs past its budget."""
        root = Root(Budget(timeout, max_bytes, max_items), time.time() if now is None else now)
        ctx = Context(root)
        try:
            for k, v in (pre_variables or {}).items():
                ctx.env[str(k)] = from_json(v, False)
            for k, v in variables.items():
                ctx.env[str(k)] = from_json(v, mark_input)
            rt = Runtime(root)
            results = [rt.execute(stmt, ctx) for stmt in self.ast.body]
        except TemplateError:
            raise
        except RecursionError:
            raise BudgetExceeded("template recursion too deep") from None
        except (ArithmeticError, ValueError, TypeError, IndexError, KeyError, OverflowError,
                AttributeError) as e:
            # a failure our mirror does not model (a pyggml bug): still a TemplateError for the
            # caller, of kind "internal" so that parity never takes it for the reference's error
            raise TemplateInternalError(f"template error: {type(e).__name__}: {e}") from None
        parts: list[tuple[str, bool]] = []
        gather(results, parts)
        return Rendered(tuple(Part(t, f) for t, f in _merge_like_reference(parts)))


def _merge_like_reference(parts: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    # llama.cpp: runtime.h runtime::gather_string_parts — join neighbours with the same mark
    out: list[tuple[str, bool]] = []
    for text, flag in parts:
        if out and out[-1][1] == flag:
            out[-1] = (out[-1][0] + text, flag)
        else:
            out.append((text, flag))
    return out


@functools.lru_cache(maxsize=64)
def _compile_cached(source: str) -> Template:
    return Template(source)


def render(source: str, variables: Mapping[str, Any], *, mark_input: bool = True, **kw: Any) -> Rendered:
    """Compile (cached) and render ``source`` with ``variables``."""
    return Template.compile(source).render(variables, mark_input=mark_input, **kw)


__all__ = ["Template", "Rendered", "Part", "render", "normalize_parts", "JStr"]
