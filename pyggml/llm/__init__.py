"""Generation for Python users: ``LLM`` (generate, stream, chat, batched generation) over the
decoder, with the reference tools' sampler (``CommonSampler``) and llama-server's text rules."""

from .llm import LLM, Completion
from .sampler import CommonSampler, Trigger

__all__ = ["LLM", "CommonSampler", "Completion", "Trigger"]
