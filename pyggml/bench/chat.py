"""Chat template rendering: compile + render on both sides (pyggml.chat vs the reference's
Jinja engine through the probe, which also lexes and parses on every call)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import Pair

_LONG_TURNS = 24


def _conversation() -> dict[str, Any]:
    from ..parity.chat import _TOOL_CALL, _TOOLS

    msgs: list[dict[str, Any]] = [{"role": "system", "content": "You are a helpful assistant. " * 8}]
    for i in range(_LONG_TURNS):
        msgs.append({"role": "user", "content": f"Question {i}: what about <|im_end|> and {{{{ x }}}}? " * 4})
        if i % 6 == 5:
            msgs.append({"role": "assistant", "content": "", "tool_calls": [_TOOL_CALL]})
            msgs.append({"role": "tool", "tool_call_id": "call00001", "content": "{\"temp\": 20}"})
        msgs.append({"role": "assistant", "content": f"Answer {i}: " + "lorem ipsum dolor sit amet " * 6})
    return {"messages": msgs, "tools": _TOOLS, "bos_token": "<s>", "eos_token": "</s>",
            "add_generation_prompt": True}


def _case(source_of: Callable[[], str], cached: bool) -> Callable[[], Pair]:
    def factory() -> Pair:
        from ..chat.template import Template
        from ..reference.chat import jinja_render_raw

        source = source_of()
        variables = _conversation()
        tmpl_b = source.encode("utf-8")
        vars_b = json.dumps(variables, ensure_ascii=False).encode("utf-8")
        compiled = Template.compile(source)

        def ours() -> object:
            t = compiled if cached else Template(source)
            return t.render(variables, timeout=60.0)

        def reference() -> object:
            return jinja_render_raw(tmpl_b, vars_b)

        return Pair(ours, reference, "compile + render" if not cached else "render (compiled cached)")
    return factory


def _file(name: str) -> Callable[[], str]:
    def read() -> str:
        from ..parity.corpus import reference_tree

        return (reference_tree() / "models" / "templates" / f"{name}.jinja").read_text(encoding="utf-8")
    return read


def _smollm2() -> str:
    from ..chat.gguf_meta import chat_templates
    from ..parity.corpus import smollm2

    return chat_templates(smollm2())[""]


CASES: dict[str, Callable[[], Pair]] = {
    "chat_smollm2_chatml": _case(_smollm2, cached=False),
    "chat_llama3.1_tools": _case(_file("meta-llama-Llama-3.1-8B-Instruct"), cached=False),
    "chat_qwen3": _case(_file("Qwen-Qwen3-0.6B"), cached=False),
    "chat_deepseek_v3.1": _case(_file("deepseek-ai-DeepSeek-V3.1"), cached=False),
    "chat_qwen3_cached": _case(_file("Qwen-Qwen3-0.6B"), cached=True),
}
