"""The reference's JSON schema -> GBNF converter (common/json-schema-to-grammar.cpp) through
the probe: the schema text is parsed with common_json::parse, then json_schema_to_grammar.

``outcome(text)`` is the canonical value shared with ``pyggml.parity.json_schema``:
``{"ok": True, "grammar": str, "warning": str | None}`` or
``{"ok": False, "error": str}`` where ``error`` is the ``what()`` of the exception, or
``"<json parse error>"`` when the text is not JSON for the reference (nlohmann's wording is
not compared).  The converter's stderr warning line is returned without its prefix.
"""

from __future__ import annotations

from typing import Any

from .._native import ffi, probe
from ._canon import uncanon_str
from ._probe import take_json

JSON_PARSE_ERROR = "<json parse error>"
_WARN_PREFIX = b"WARNING: JSON schema conversion was incomplete: "


def _text(s: str) -> str:
    return uncanon_str(s).decode("utf-8", "surrogateescape")


def _cstr(s: str | bytes) -> bytes:
    if isinstance(s, str):
        s = s.encode("utf-8", "surrogateescape")
    nul = s.find(b"\0")
    return s if nul < 0 else s[:nul]


def outcome(schema_text: str | bytes, force_gbnf: bool = True) -> dict[str, Any]:
    """json_schema_to_grammar(common_json::parse(schema_text), force_gbnf)."""
    out = ffi.new("char **")
    probe().ps_json_schema_to_grammar(_cstr(schema_text), 1 if force_gbnf else 0, out)
    return _decode(take_json(out))


def build_outcome(schema_text: str | bytes, name: str, dotall: bool) -> dict[str, Any]:
    """build_grammar(cb, {dotall}) where cb is ``add_schema(name, *doc.root)`` of the schema
    document (common_chat_schema_from_json); same outcome shape as ``outcome``."""
    out = ffi.new("char **")
    probe().ps_json_schema_build_grammar(_cstr(schema_text), _cstr(name), 1 if dotall else 0, out)
    return _decode(take_json(out))


def _decode(j: dict[str, Any] | None) -> dict[str, Any]:
    if j is None:
        raise RuntimeError("probe: ps_json_schema_to_grammar returned no result")
    if j["ok"]:
        log = uncanon_str(j["stderr"])
        warning = None
        if log:
            if not (log.startswith(_WARN_PREFIX) and log.endswith(b"\n")):
                raise RuntimeError(f"probe: unexpected converter output on stderr: {log[:200]!r}")
            warning = log[len(_WARN_PREFIX) : -1].decode("utf-8", "surrogateescape")
        return {"ok": True, "grammar": _text(j["grammar"]), "warning": warning}
    if j["stage"] == "parse":
        return {"ok": False, "error": JSON_PARSE_ERROR}
    return {"ok": False, "error": _text(j["error"])}


def json_schema_to_grammar(schema_text: str | bytes) -> str:
    """The grammar text; raises ValueError with the reference's message when it throws."""
    o = outcome(schema_text)
    if not o["ok"]:
        raise ValueError(o["error"])
    return o["grammar"]
