"""Keyword arguments of ``pyggml.LLM``: which llama.h / common struct each one belongs to."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ..context.params import ContextParams
from ..errors import ParamError, SamplerParamError
from ..sampling import SamplingParams

# llama_model_params fields Model.load takes
MODEL_PARAMS = frozenset({"use_mmap", "use_extra_bufts", "check_tensors"})
CONTEXT_PARAMS = frozenset(f.name for f in fields(ContextParams))
SAMPLING_PARAMS = frozenset(f.name for f in fields(SamplingParams))

# the names users know from OpenAI / llama-server requests -> common_params_sampling's
SAMPLING_ALIASES = {
    "temperature": "temp",
    "typical_p": "typ_p",
    "repeat_penalty": "penalty_repeat",
    "repeat_last_n": "penalty_last_n",
    "frequency_penalty": "penalty_freq",
    "presence_penalty": "penalty_present",
}


def sampling_params(defaults: dict[str, Any], given: dict[str, Any]) -> SamplingParams:
    """``SamplingParams`` from ``defaults`` overridden by ``given`` (aliases resolved); an
    unknown name is a ``SamplerParamError`` listing the known ones."""
    out = dict(defaults)
    for name, value in given.items():
        key = SAMPLING_ALIASES.get(name, name)
        if key not in SAMPLING_PARAMS:
            known = ", ".join(sorted(SAMPLING_PARAMS | set(SAMPLING_ALIASES)))
            raise SamplerParamError(f"unknown sampling parameter {name!r} (known: {known})")
        out[key] = value
    return SamplingParams(**out)


def split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model, context, sampling) keyword arguments; anything else is an error."""
    model, ctx, smpl = {}, {}, {}
    for name, value in params.items():
        if name in MODEL_PARAMS:
            model[name] = value
        elif name in CONTEXT_PARAMS:
            ctx[name] = value
        elif SAMPLING_ALIASES.get(name, name) in SAMPLING_PARAMS:
            smpl[SAMPLING_ALIASES.get(name, name)] = value
        else:
            raise ParamError(
                f"unknown parameter {name!r}: not a llama_model_params ({', '.join(sorted(MODEL_PARAMS))}), "
                "llama_context_params or common_params_sampling field")
    return model, ctx, smpl
