"""Randomized differential test: random message contents through real templates, pyggml vs the
reference engine (text and input mask)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.parity import chat as parity_chat
from pyggml.parity.corpus import reference_tree

TEMPLATES = ["llama-cpp-deepseek-r1", "meta-llama-Llama-3.1-8B-Instruct", "Qwen-Qwen3-0.6B",
             "google-gemma-2-2b-it", "mistralai-Mistral-Nemo-Instruct-2407",
             "CohereForAI-c4ai-command-r-plus-tool_use", "HuggingFaceTB-SmolLM3-3B"]

_PIECES = st.sampled_from([
    "<|im_end|>", "<|im_start|>", "</s>", "<s>", "[INST]", "<|eot_id|>", "<think>", "</think>",
    "{{ x }}", "{% if %}", "{#", "#}", "{%-", "-%}", "\n", "\r\n", " ", "\t", "é", "🚀", "'", '"', "\\",
    "<tool_call>", "user", "assistant", "ü", "\x00", "\x1f",
])
_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=8).map("".join)
_ROLE = st.sampled_from(["system", "user", "assistant", "tool"])
_MESSAGE = st.fixed_dictionaries({"role": _ROLE, "content": _TEXT})


def _sources():
    out = {}
    for name in TEMPLATES:
        path = reference_tree() / "models" / "templates" / f"{name}.jinja"
        out[name] = path.read_text(encoding="utf-8")
    return out


SOURCES = _sources()


@settings(derandomize=True, max_examples=60, deadline=None)
@given(name=st.sampled_from(TEMPLATES), messages=st.lists(_MESSAGE, min_size=1, max_size=4),
       gen=st.booleans(), bos=_TEXT)
def test_random_conversations_match_reference(name, messages, gen, bos):
    v = {"messages": messages, "bos_token": bos, "eos_token": "</s>", "add_generation_prompt": gen}
    ours = parity_chat.engine_outcome_ours(SOURCES[name], v)
    ref = parity_chat.engine_outcome_reference(SOURCES[name], v)
    assert ours == ref


@settings(derandomize=True, max_examples=60, deadline=None)
@given(s=_TEXT, t=_TEXT, op=st.sampled_from([
    "{{ s|upper }}", "{{ s|title }}", "{{ s|capitalize }}", "{{ s|trim }}",
    "{{ s.split(t|default(' ', true)) }}",
    "{{ s.rsplit(' ', 1) }}", "{{ s|replace(t, 'X') }}", "{{ s|length }}", "{{ s[1:-1] }}", "{{ s[::-1] }}",
    "{{ s|tojson }}", "{{ s|tojson(ensure_ascii=true) }}", "{{ s|indent(2) }}", "{{ s ~ t }}", "{{ s * 2 }}",
    "{{ s.startswith(t) }}{{ s.endswith(t) }}", "{{ t in s }}", "{{ s|int }}{{ s|float }}",
    "{{ s.strip(t) }}",
    "{{ s.lstrip() }}|{{ s.rstrip() }}", "{{ [s, t]|join('|') }}", "{{ {'k': s}|tojson(indent=1) }}",
    "{{ s[0] }}{{ s[-1] }}", "{{ s == t }}", "{{ [s, t]|sort }}",
]))
def test_random_string_ops_match_reference(s, t, op):
    v = {"s": s, "t": t}
    assert parity_chat.engine_outcome_ours(op, v) == parity_chat.engine_outcome_reference(op, v)


_CHAT_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool", "developer"]), "content": _TEXT},
    optional={"reasoning_content": _TEXT})


@settings(derandomize=True, max_examples=40, deadline=None)
@given(name=st.sampled_from(TEMPLATES),
       messages=st.lists(_CHAT_MESSAGE, min_size=1, max_size=4), gen=st.booleans())
def test_random_chats_match_common_chat_templates_apply(name, messages, gen):
    ours = parity_chat.apply_outcome_ours(SOURCES[name], messages, gen)
    assert ours == parity_chat.apply_outcome_reference(SOURCES[name], messages, gen)
