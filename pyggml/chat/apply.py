"""The chat layer: OpenAI-style messages and tools -> rendered prompt, with the message
pre-processing of llama.cpp's common/chat.cpp (common_chat_templates_init +
common_chat_templates_apply, jinja route, rendered by common_chat_template_direct_apply_impl).

Per-model handlers that rewrite messages before rendering are mirrored for Ministral/Devstral
(typed thinking blocks), GPT-OSS (``thinking``, ``<|return|>``) and outdated Gemma 4 templates
(tool responses folded into the assistant turn).  Not mirrored: the continuation of a final
message and the generated parsers/grammars.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .caps import Caps, caps_of
from .template import DEFAULT_TIMEOUT, Part, Rendered, Template, normalize_parts
from .values import EngineError, TemplateInputError

# llama.cpp: common/chat.cpp CHATML_TEMPLATE_SRC (used for an empty template or "chatml")
CHATML_TEMPLATE = (
    "{%- for message in messages -%}\n"
    "  {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\\n' -}}\n"
    "{%- endif -%}"
)

# source patches of common_chat_templates_init (templates that would otherwise raise)
_PATCHES = [
    (("<|channel|>", "in message.content or"),
     "{%- if \"<|channel|>analysis<|message|>\" in message.content or "
     "\"<|channel|>final<|message|>\" in message.content %}"),
    (("[TOOL_CALLS]", "if (message['content'] is none or"),
     "{%- if (message['content'] is none or message['content'] == '' or "
     "message['content']|length == 0) and (message['tool_calls'] is not defined or "
     "message['tool_calls'] is none or message['tool_calls']|length == 0) %}"),
]
_STEPFUN_MARKER = "You have access to the following functions in JSONSchema format"


def template_source(template: str) -> str:
    """The template text the reference renders for ``template`` (defaults and patches applied)."""
    src = template
    if not src or src == "chatml":
        src = CHATML_TEMPLATE
    for needles, old in _PATCHES:
        if all(n in src for n in needles):
            src = src.replace(old, "{%- if false %}")
    return src


def _c_trim(s: str) -> str:
    return s.strip(" \t\n\v\f\r")


def parse_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """llama.cpp: common_chat_msgs_parse_oaicompat, then common_chat_msg::to_json_oaicompat."""
    out = []
    for m in messages:
        if not isinstance(m, Mapping):
            raise TemplateInputError(
                f"Failed to parse messages: Expected 'message' to be an object, got {m!r}")
        if "role" not in m:
            raise TemplateInputError(f"Failed to parse messages: Missing 'role' in message: {m!r}")
        msg: dict[str, Any] = {"role": _string(m["role"], "role")}
        content = ""
        parts: list[dict[str, str]] = []
        if "content" in m:
            c = m["content"]
            if isinstance(c, str):
                content = c
            elif isinstance(c, list):
                for p in c:
                    if not isinstance(p, Mapping) or "type" not in p:
                        raise TemplateInputError(
                            f"Failed to parse messages: Missing content part type: {p!r}")
                    if p["type"] not in ("text", "media_marker"):
                        raise TemplateInputError("Failed to parse messages: Unsupported content part type: "
                                            f"{p['type']!r}")
                    parts.append({"type": p["type"], "text": _string(p.get("text"), "text")})
            elif c is not None:
                raise TemplateInputError("Failed to parse messages: Invalid 'content' type: "
                                    "expected string or array")
        calls = []
        for tc in m.get("tool_calls") or []:
            if not isinstance(tc, Mapping) or tc.get("type") != "function" or "function" not in tc:
                raise TemplateInputError(f"Failed to parse messages: Unsupported tool call: {tc!r}")
            fn = tc["function"]
            if "name" not in fn:
                raise TemplateInputError(f"Failed to parse messages: Missing tool call name: {tc!r}")
            if "arguments" not in fn:
                raise TemplateInputError(f"Failed to parse messages: Missing tool call arguments: {tc!r}")
            args = fn["arguments"]
            # common_json::dump(): compact separators, non-ASCII kept
            if not isinstance(args, str):
                args = json.dumps(args, ensure_ascii=False, separators=(",", ":"))
            call: dict[str, Any] = {"type": "function",
                                    "function": {"name": _string(fn["name"], "name"), "arguments": args}}
            if tc.get("id"):
                call["id"] = _string(tc["id"], "id")
            calls.append(call)
        if "content" not in m and "tool_calls" not in m:
            raise TemplateInputError("Failed to parse messages: Expected 'content' or 'tool_calls'")
        if content and parts:
            raise TemplateInputError("Cannot specify both content and content_parts")
        if content:
            msg["content"] = content
        elif parts:
            if any(p["type"] == "media_marker" for p in parts):
                msg["content"] = _concat_parts(parts)
            else:
                msg["content"] = parts
        else:
            msg["content"] = ""
        for key, out_key in (("reasoning_content", "reasoning_content"), ("name", "name"),
                             ("tool_call_id", "tool_call_id")):
            if key in m and _string(m[key], key):
                msg[out_key] = m[key]
        if calls:
            msg["tool_calls"] = calls
        out.append(msg)
    return out


def _string(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise TemplateInputError(f"Failed to parse messages: '{what}' must be a string, got {v!r}")
    return v


def _concat_parts(parts: Sequence[Mapping[str, Any]]) -> str:
    # llama.cpp: messages_inp_normalizer::concat_content_parts — newline between text parts,
    # none around media markers
    text = ""
    last_media = False
    for p in parts:
        t = p.get("type", "")
        if t == "text":
            add_nl = not last_media and bool(text)
            last_media = False
        elif t == "media_marker":
            add_nl = False
            last_media = True
        else:
            continue
        if add_nl:
            text += "\n"
        text += p.get("text", "")
    return text


def normalize(messages: list[dict[str, Any]], caps: Caps) -> list[dict[str, Any]]:
    """llama.cpp: messages_inp_normalizer::normalize (string <-> typed content per caps)."""
    only_string = caps.supports_string_content and not caps.supports_typed_content
    only_typed = caps.supports_typed_content and not caps.supports_string_content
    if not only_string and not only_typed:
        return messages
    out = []
    for m in messages:
        m = dict(m)
        c = m.get("content")
        if "content" in m:
            if only_typed and isinstance(c, str):
                m["content"] = [{"type": "text", "text": c}]
            elif only_string and isinstance(c, list):
                m["content"] = _concat_parts(c)
        out.append(m)
    return out


def parse_tools(tools: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]] | None:
    """llama.cpp: common_chat_tools_parse_oaicompat + common_chat_tools_to_json_oaicompat."""
    if not tools:
        return None
    out = []
    for t in tools:
        if not isinstance(t, Mapping) or t.get("type") != "function" or "function" not in t:
            raise TemplateInputError(f"Failed to parse tools: unsupported tool {t!r}")
        fn = t["function"]
        if "name" not in fn:
            raise TemplateInputError(f"Failed to parse tools: missing function name in {t!r}")
        out.append({"type": "function", "function": {
            "name": fn["name"], "description": fn.get("description", ""),
            "parameters": copy.deepcopy(fn.get("parameters", {}))}})
    return out


def prepare(template: str, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True,
            tools: Sequence[Mapping[str, Any]] | None = None, bos_token: str = "", eos_token: str = "",
            enable_thinking: bool = True, chat_template_kwargs: Mapping[str, str] | None = None,
            extra: Mapping[str, Any] | None = None,
            now: float | None = None) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The template source, the variables the reference renders it with, and the variables
    that are set before them unmarked (reasoning switches)."""
    src = template_source(template)
    caps = caps_of(src)
    msgs = parse_messages(messages)
    if _STEPFUN_MARKER in src:
        # llama.cpp: workaround::trim_all_content (StepFun)
        for m in msgs:
            if isinstance(m["content"], str):
                m["content"] = _c_trim(m["content"])
            else:
                for p in m["content"]:
                    if p["type"] == "text":
                        p["text"] = _c_trim(p["text"])
            if "reasoning_content" in m:
                m["reasoning_content"] = _c_trim(m["reasoning_content"])
                if not m["reasoning_content"]:
                    del m["reasoning_content"]
    msgs = normalize(msgs, caps)
    if "<|channel|>" not in src:
        for m in msgs:
            if m.get("role") == "developer":
                m["role"] = "system"
    if not caps.supports_system_role and msgs and msgs[0].get("role") == "system":
        first = msgs.pop(0)
        if msgs:
            msgs[0]["content"] = _text_of(first) + "\n" + _text_of(msgs[0])
    if caps.supports_tool_calls:
        for m in msgs:
            if "tool_calls" in m and "content" not in m:
                m["content"] = ""
    if caps.supports_object_arguments:
        for m in msgs:
            for tc in m.get("tool_calls", []):
                if isinstance(tc["function"].get("arguments"), str):
                    try:
                        tc["function"]["arguments"] = json.loads(tc["function"]["arguments"])
                    except ValueError as e:
                        raise EngineError(f"Failed to parse tool call arguments as JSON: {e}") from None
    t = time.localtime(time.time() if now is None else now)
    extra_ctx: dict[str, Any] = {"datetime": time.strftime("%b %d %Y", t),
                                 "date_string": time.strftime("%d %b %Y", t)}
    for k, v in (chat_template_kwargs or {}).items():
        try:
            extra_ctx[k] = json.loads(v)  # values are JSON text, as in the reference
        except (TypeError, ValueError) as e:
            raise EngineError(f"chat_template_kwargs[{k!r}] is not JSON text: {e}") from None
    extra_ctx.update(extra or {})
    # llama.cpp: common_chat_template_direct_apply_impl
    inp: dict[str, Any] = {"messages": normalize(msgs, caps), "bos_token": bos_token, "eos_token": eos_token,
                           "enable_thinking": enable_thinking}
    tools_json = parse_tools(tools)
    if tools_json is not None:
        inp["tools"] = tools_json
    inp.update(extra_ctx)
    if add_generation_prompt:
        inp["add_generation_prompt"] = True
    override = _specialized_messages(src, inp)
    if override is not None:
        inp["messages"] = override
    pre: dict[str, Any] = {}
    if isinstance(inp.get("preserve_reasoning"), bool):
        on = inp["preserve_reasoning"]
        pre.update(preserve_thinking=on, clear_thinking=not on, truncate_history_thinking=not on,
                   drop_thinking=not on)
    if isinstance(inp.get("reasoning_effort"), str) and inp["reasoning_effort"]:
        pre.update(reasoning_effort=inp["reasoning_effort"], reasoning_strength=inp["reasoning_effort"])
    return src, inp, pre


def _is_ministral(src: str) -> bool:
    return "[SYSTEM_PROMPT]" in src and "[TOOL_CALLS]" in src and "[ARGS]" in src and "[CALL_ID]" not in src


def _is_gemma4(src: str) -> bool:
    return "'<|tool_call>call:'" in src


def _is_gpt_oss(src: str) -> bool:
    return not _is_ministral(src) and "<|channel|>" in src


def _specialized_messages(src: str, inp: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The messages a specialized handler of common_chat_try_specialized_template renders
    instead (None: the normalized messages are rendered)."""
    msgs = inp["messages"]
    if _is_ministral(src):
        # llama.cpp: common/parsers/ministral3.cpp — system/assistant content as typed blocks
        out = []
        for m in msgs:
            if m.get("role") not in ("system", "assistant"):
                out.append(m)
                continue
            blocks: list[Any] = []
            if isinstance(m.get("reasoning_content"), str):
                blocks.append({"type": "thinking", "thinking": m["reasoning_content"]})
            if "content" in m:
                if isinstance(m["content"], str):
                    blocks.append({"type": "text", "text": m["content"]})
                elif isinstance(m["content"], list):
                    blocks.extend(m["content"])
            adj = dict(m)
            adj["content"] = blocks
            adj.pop("reasoning_content", None)
            out.append(adj)
        return out
    if _is_gpt_oss(src):
        # llama.cpp: common/parsers/gpt-oss.cpp — reasoning goes to "thinking"
        out = []
        for m in msgs:
            m = dict(m)
            if isinstance(m.get("reasoning_content"), str):
                m["thinking"] = m["reasoning_content"]
                if isinstance(m.get("tool_calls"), list) and m["tool_calls"]:
                    m.pop("content", None)
            out.append(m)
        return out
    if _is_gemma4(src) and "{#- OpenAI Chat Completions:" not in src:
        # llama.cpp: common/parsers/gemma4.cpp convert_tool_responses_gemma4 (outdated templates)
        inp["messages"] = _gemma4_fold_tool_responses(msgs)
    return None


def _gemma4_fold_tool_responses(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(msgs):
        m = msgs[i]
        if m.get("role") != "assistant" or not (isinstance(m.get("tool_calls"), list) and m["tool_calls"]):
            out.append(m)
            i += 1
            continue
        reasoning = m["reasoning_content"] if isinstance(m.get("reasoning_content"), str) else None
        calls = list(m["tool_calls"])
        responses: list[dict[str, Any]] = []
        i += 1
        while i < len(msgs) and msgs[i].get("role") == "tool":
            cur = msgs[i]
            response: Any = None
            if "content" in cur:
                c = cur["content"]
                response = _json_or_raw(c) if isinstance(c, str) else c
            name = ""
            idx = len(responses)
            if idx < len(calls) and "function" in calls[idx]:
                name = calls[idx]["function"].get("name", "")
            if not name:
                name = cur.get("tool_call_id", "")
            responses.append({"name": name, "response": response})
            i += 1
        content: Any = None
        if i < len(msgs) and msgs[i].get("role") == "assistant":
            nxt = msgs[i]
            has_calls = isinstance(nxt.get("tool_calls"), list) and bool(nxt["tool_calls"])
            c = nxt.get("content")
            if not has_calls and ((isinstance(c, str) and c) or (isinstance(c, list) and c)):
                content = c
                i += 1
        turn: dict[str, Any] = {"role": "assistant", "tool_calls": calls}
        if responses:
            turn["tool_responses"] = responses
        if content is not None:
            turn["content"] = content
        if reasoning is not None:
            turn["reasoning_content"] = reasoning
        out.append(turn)
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _json_or_raw(s: str) -> Any:
    try:
        return json.loads(s, parse_constant=_reject_constant)
    except ValueError:
        return s


def _text_of(m: Mapping[str, Any]) -> str:
    c = m.get("content")
    if not isinstance(c, str):
        raise EngineError("cannot merge a system message with typed content (the reference throws)")
    return c


def apply_template(template: str, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True,
                   tools: Sequence[Mapping[str, Any]] | None = None, bos_token: str = "", eos_token: str = "",
                   *, enable_thinking: bool = True, chat_template_kwargs: Mapping[str, str] | None = None,
                   timeout: float = DEFAULT_TIMEOUT, now: float | None = None, **extra: Any) -> Rendered:
    """Render ``messages`` (OpenAI chat format) with ``template`` like llama.cpp's
    ``common_chat_templates_apply`` renders its prompt.

    Returns a ``Rendered``: ``.text`` is the prompt, ``.parts`` its ``(text, is_input)`` pieces
    (every string that came from the caller is input; tokenize input parts without parsing
    special tokens).  ``extra`` keys are template variables, like the values of
    ``chat_template_kwargs`` (whose values are JSON text, as llama.cpp takes them).  Raises
    ``TemplateError`` for invalid messages, template errors and exhausted budgets.
    """
    src, inp, pre = prepare(template, messages, add_generation_prompt=add_generation_prompt, tools=tools,
                            bos_token=bos_token, eos_token=eos_token, enable_thinking=enable_thinking,
                            chat_template_kwargs=chat_template_kwargs, extra=extra, now=now)
    out = Template.compile(src).render(inp, pre_variables=pre, timeout=timeout, now=now)
    if _is_gpt_oss(src) and not add_generation_prompt:
        # llama.cpp: common/parsers/gpt-oss.cpp — at inference the last <|return|> becomes <|end|>
        out = _replace_last(out, "<|return|>", "<|end|>")
    if _is_gemma4(src) and add_generation_prompt and out.text.endswith("<turn|>\n"):
        # llama.cpp: common/parsers/gemma4.cpp — a turn that ended on a tool call gets the
        # model's next turn opened
        parts = [(p.text, p.is_input) for p in out.parts] + [("<|turn>model\n", False)]
        out = Rendered(tuple(Part(t, f) for t, f in normalize_parts(parts)))
    return out


def _replace_last(r: Rendered, old: str, new: str) -> Rendered:
    text = r.text
    pos = text.rfind(old)
    if pos < 0:
        return r
    parts: list[tuple[str, bool]] = []
    offset = 0
    for p in r.parts:
        start, end = offset, offset + len(p.text)
        offset = end
        if end <= pos or start >= pos + len(old):
            parts.append((p.text, p.is_input))
            continue
        # the replaced span is template text; what the part keeps outside it keeps its mark
        if start < pos:
            parts.append((p.text[: pos - start], p.is_input))
        if start <= pos < end:
            parts.append((new, False))
        if end > pos + len(old):
            parts.append((p.text[pos + len(old) - start:], p.is_input))
    return Rendered(tuple(Part(t, f) for t, f in normalize_parts(parts)))
