"""The reference's Jinja engine (common/jinja) and chat layer (common/chat.cpp) via the probe."""

from __future__ import annotations

import json
from typing import Any

from .._native import ffi, probe
from ._probe import take_json, take_log


def jinja_render(template: str, variables: dict[str, Any], *, mark_input: bool = True) -> dict[str, Any]:
    """The engine pipeline of tests/test-jinja.cpp.  Returns ``{"ok": True, "parts":
    [(text, is_input), ...]}`` or ``{"ok": False, "error": message}``."""
    out = ffi.new("char **")
    probe().ps_jinja_render(template.encode("utf-8", "surrogateescape"),
                            json.dumps(variables, ensure_ascii=False).encode("utf-8", "surrogateescape"),
                            int(mark_input), out)
    take_log()
    res = take_json(out)
    if res.get("ok"):
        res["parts"] = [(bytes.fromhex(h).decode("utf-8", "surrogateescape"), bool(f))
                        for h, f in res["parts"]]
    return res


def jinja_render_raw(template: bytes, variables_json: bytes) -> bool:
    """Render without decoding the result (the bench's reference side)."""
    out = ffi.new("char **")
    ok = probe().ps_jinja_render(template, variables_json, 1, out)
    probe().ps_free(out[0])
    return bool(ok)


def chat_apply(template: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """common_chat_templates_init(template) + common_chat_templates_apply(inputs).  ``inputs``:
    messages, tools, add_generation_prompt, bos_token, eos_token, enable_thinking,
    chat_template_kwargs (values are JSON text).  Returns ``{"ok": True, "prompt": str}`` or
    ``{"ok": False, "error": message}``."""
    out = ffi.new("char **")
    probe().ps_chat_apply_common(template.encode("utf-8", "surrogateescape"),
                                 json.dumps(inputs, ensure_ascii=False).encode("utf-8", "surrogateescape"),
                                 out)
    take_log()
    res = take_json(out)
    if res.get("ok"):
        res["prompt"] = bytes.fromhex(res["prompt"]).decode("utf-8", "surrogateescape")
        res["generation_prompt"] = bytes.fromhex(res["generation_prompt"]).decode("utf-8", "surrogateescape")
    return res
