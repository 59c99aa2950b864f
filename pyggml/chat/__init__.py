"""Chat templates: the reference's Jinja engine semantics over jinja2's parser, input marking.

``render(template, variables)`` is the engine (common/jinja); ``apply_template(...)`` is the chat
layer (common/chat.cpp common_chat_templates_apply: message pre-processing, then render).
"""

from __future__ import annotations

from ..errors import TemplateError
from .apply import apply_template
from .gguf_meta import chat_templates
from .template import Part, Rendered, Template, render

__all__ = ["Part", "Rendered", "Template", "TemplateError", "apply_template", "chat_templates", "render"]
