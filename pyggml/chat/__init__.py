"""Chat templates: the reference's Jinja engine (llama.cpp common/jinja) over jinja2's parser.

- ``render(template, variables)`` renders like the reference engine (byte-identical), returning
  a ``Rendered``: ``.text`` and ``.parts`` (``Part(text, is_input)``; every string that came from
  ``variables`` is input).  ``Template.compile`` caches compiled templates per text.
- ``apply_template(template, messages, add_generation_prompt=True, tools=None, bos_token="",
  eos_token="", **extra)`` is the chat layer (common/chat.cpp common_chat_templates_apply): the
  same message pre-processing, then the same render.
- ``chat_templates(gguf_path)`` reads ``tokenizer.chat_template`` (and named variants) from a
  GGUF file.

Templates are untrusted input: no Python attribute of any value is reachable, dunder names are
refused, and renders have time/size budgets; every failure is a ``TemplateError``.
"""

from __future__ import annotations

from ..errors import TemplateError
from .apply import apply_template
from .gguf_meta import chat_templates
from .template import Part, Rendered, Template, render

__all__ = ["Part", "Rendered", "Template", "TemplateError", "apply_template", "chat_templates", "render"]
