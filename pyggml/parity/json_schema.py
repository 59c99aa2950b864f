"""Parity of JSON schema -> GBNF (common/json-schema-to-grammar.cpp json_schema_to_grammar).

Each case compares the outcome for one schema text: the grammar text and the converter's
warning line, or the error message (``pyggml.reference.json_schema.outcome``).  Corpora:
``tests/``: every schema of the reference's tests/test-json-schema-to-grammar.cpp;
``integration/``: the ``test_schema`` calls of tests/test-grammar-integration.cpp;
``generated/``: seeded random schemas over all keywords (``json_schema_gen``), 2,000 by default,
20,000 with ``--full``; ``build/``: every fourth generated schema through ``build_grammar``'s
``add_schema`` under various rule names, with and without ``dotall``.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

from ..errors import JSONSchemaError
from ..grammar.json_schema import build_conversion, convert
from . import Case, Options
from .json_schema_gen import generated_texts, integration_test_schemas, reference_test_schemas

N_DEFAULT = 2000
N_FULL = 20_000


# A schema pyggml refuses as too deep (reason "too-deep": unbounded nesting, or an allOf that
# inlines its own properties through a $ref) is one the reference recurses on until its C stack
# overflows: compared as this outcome, the reference side run in a throwaway worker.  Only a
# death by SIGSEGV (the stack overflow) is this outcome; any other death of the worker (an
# abort, a kill, a Python error) is reported as itself and cannot match.
CRASH = "<no result: stack exhausted>"


def _worker_death(r: dict[str, Any]) -> dict[str, Any]:
    """The outcome of a reference worker that died (``pyggml.reference.isolated`` result)."""
    sig = r.get("signal")
    if sig == signal.SIGSEGV and r.get("exit_code", -sig) == -sig:
        return {"ok": False, "error": CRASH}
    return {"ok": False, "error": f"<worker died: signal/exit {sig}>", "stderr": r.get("stderr", "")[-300:]}


def ours(schema_text: str | bytes) -> dict[str, Any]:
    """pyggml's outcome, in the shape of ``pyggml.reference.json_schema.outcome``."""
    return _outcome(lambda: convert(schema_text))


def _outcome(fn: Any) -> dict[str, Any]:
    from ..reference.json_schema import JSON_PARSE_ERROR

    try:
        conv = fn()
    except JSONSchemaError as e:
        if e.reason == "too-deep":
            return {"ok": False, "error": CRASH}
        return {"ok": False, "error": JSON_PARSE_ERROR if e.reason == "json" else e.message}
    return {"ok": True, "grammar": conv.grammar, "warning": "; ".join(conv.warnings) or None}


def ours_build(schema_text: str, name: str, dotall: bool) -> dict[str, Any]:
    """build_grammar with one add_schema(name, schema) call, in ``ours``' outcome shape."""
    return _outcome(lambda: build_conversion(lambda b: b.add_schema(name, schema_text), dotall=dotall))


def build_pair(schema_text: str, name: str, dotall: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    o = ours_build(schema_text, name, dotall)
    if o.get("error") == CRASH:
        from ..reference.isolated import call

        r = call("json_schema.build_outcome", schema_text, name, dotall)
        return o, (_worker_death(r) if isinstance(r, dict) and r.get("aborted") else r)
    from ..reference.json_schema import build_outcome

    return o, build_outcome(schema_text, name, dotall)


BUILD_NAMES = ("root", "", "tool", "string", "a b", "root-x", "é")


def reference(schema_text: str | bytes, isolated: bool = False) -> dict[str, Any]:
    if not isolated:
        from ..reference.json_schema import outcome

        return outcome(schema_text)
    from ..reference.isolated import call

    out = call("json_schema.outcome", schema_text)
    if isinstance(out, dict) and out.get("aborted"):
        return _worker_death(out)
    return out


def pair(schema_text: str | bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    o = ours(schema_text)
    return o, reference(schema_text, isolated=o.get("error") == CRASH)


def cases(opts: Options) -> Iterator[Case]:
    n = 0
    for t in reference_test_schemas():
        if opts.limit is not None and n >= opts.limit:
            return
        n += 1
        yield Case(f"tests/{t.name}", *pair(t.schema))
    for j, it in enumerate(integration_test_schemas()):
        if opts.limit is not None and n >= opts.limit:
            return
        n += 1
        yield Case(f"integration/{j}", *pair(it.schema))
    count = N_FULL if opts.full else N_DEFAULT
    for i, text in enumerate(generated_texts(opts.seed, count)):
        if opts.limit is not None and n >= opts.limit:
            return
        n += 1
        yield Case(f"generated/{i}", *pair(text))
        if i % 4 == 0:
            # build_grammar's add_schema path: rule names under a given name, dotall "."
            name = BUILD_NAMES[(i // 4) % len(BUILD_NAMES)]
            dotall = (i // 4) % 2 == 1
            n += 1
            yield Case(f"build/{i}", *build_pair(text, name, dotall))
