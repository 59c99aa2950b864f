"""What a template supports, found by rendering it with probe conversations and watching which
input values it touches (llama.cpp: common/jinja/caps.cpp caps_get).

Only the capabilities the chat layer's message pre-processing reads are derived (content
shape, system role, tool calls, object arguments); their probes are the reference's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ..errors import TemplateError
from .runtime import Budget, Context, Root, Runtime, Stats, gather
from .template import Template
from .values import from_json


@dataclass(frozen=True)
class Caps:
    supports_tools: bool = True
    supports_tool_calls: bool = True
    supports_system_role: bool = True
    supports_string_content: bool = True
    supports_typed_content: bool = False
    supports_object_arguments: bool = False


_MARKER = "STRING_MARKER"


def _try(tmpl: Template, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
         ) -> tuple[bool, str, Any, Any, Stats]:
    # llama.cpp: caps.cpp caps_try_execute — errors only mean "not supported"
    root = Root(Budget(5.0, 1 << 24, 1 << 20), 0.0)
    ctx = Context(root)
    inp = {"messages": messages, "tools": tools if tools is not None else [], "bos_token": "",
           "eos_token": "", "add_generation_prompt": True}
    for k, v in inp.items():
        ctx.env[k] = from_json(v, True)
    msgs, tls = ctx.env["messages"], ctx.env["tools"]
    stats = Stats()
    try:
        rt = Runtime(root, stats)
        results = [rt.execute(stmt, ctx) for stmt in tmpl.ast.body]
        parts: list[tuple[str, bool]] = []
        gather(results, parts)
        return True, "".join(t for t, _ in parts), msgs, tls, stats
    except (TemplateError, RecursionError, ArithmeticError, ValueError, TypeError, IndexError, KeyError):
        return False, "", msgs, tls, stats


def _tool_conversation(args: Any) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "User message"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call00001", "type": "function", "function": {"name": "tool1", "arguments": args}}]},
        {"role": "tool", "content": "Tool response", "tool_call_id": "call00001"},
        {"role": "assistant", "content": "The tool response was 'tool response'"},
        {"role": "user", "content": "User message"},
    ]


_PROBE_TOOLS = [{
    "name": "tool", "type": "function",
    "function": {"name": "tool1", "description": "Tool description",
                 "parameters": {"type": "object",
                                "properties": {"arg": {"type": "string", "description": "Arg description"}},
                                "required": ["arg"]}},
}]


@functools.lru_cache(maxsize=64)
def caps_of(source: str) -> Caps:
    """The capabilities of a template (cached per template text)."""
    tmpl = Template.compile(source)
    c: dict[str, bool] = {}

    # typed content
    ok, out, msgs, _, st = _try(tmpl, [{"role": "user", "content": _MARKER}])
    content = msgs[0]["content"]
    checks_for_string = "test_is_string" in st.ops(content)
    used_as_array = bool({"selectattr", "array_access"} & st.ops(content))
    if used_as_array:
        c["supports_typed_content"] = True
    if not ok or (used_as_array and _MARKER not in out):
        c["supports_string_content"] = False
    if checks_for_string:
        ok, _, msgs, _, st = _try(tmpl, [{"role": "user", "content": []}])
        content = msgs[0]["content"]
        if ok and {"selectattr", "array_access"} & st.ops(content):
            c["supports_typed_content"] = True

    # system role
    _, _, msgs, _, st = _try(tmpl, [{"role": "system", "content": "System message"},
                                    {"role": "user", "content": "User message"}])
    if not st.used(msgs[0]["content"]):
        c["supports_system_role"] = False

    # tools, object arguments
    ok, _, msgs, tools, st = _try(tmpl, _tool_conversation({"arg": "value"}), _PROBE_TOOLS)
    object_args = False
    if ok:
        if not st.used(tools[0]["function"]["name"]):
            c["supports_tools"] = False
        tool_calls = msgs[1]["tool_calls"]
        if not st.used(tool_calls):
            c["supports_tool_calls"] = False
        elif st.used(tool_calls[0]["function"]["arguments"]["arg"]):
            object_args = True
            c["supports_object_arguments"] = True
    if not object_args:
        ok, _, msgs, tools, st = _try(tmpl, _tool_conversation('{"arg": "value"}'), _PROBE_TOOLS)
        if not ok:
            c["supports_tool_calls"] = False
            c["supports_tools"] = False
        else:
            if not st.used(tools[0]["function"]["name"]):
                c["supports_tools"] = False
            if not st.used(msgs[1]["tool_calls"]):
                c["supports_tool_calls"] = False
    return Caps(**c)
