"""The reference's generation loop, through the probe (probe_generate.cpp).

``ref_generate`` runs what the reference's tools run (examples/batched, tools/completion, the
server's slots): ``common_sampler_init`` per stream, the prompt through ``llama_decode``, then
``common_sampler_sample`` / ``common_sampler_accept`` and one ``llama_decode`` per step.  pyggml's
generate follows the same schedule, so the two token streams compare with ``==``.

Schedule (the contract both sides implement):

1. Context: ``llama_init_from_model(model, cparams)`` with RefContext's defaults and keys, except
   that ``n_seq_max`` defaults to the number of prompts (stream i is sequence i).
2. Samplers: per stream, ``common_sampler_init(model, params)`` from that stream's sampling dict
   (``common_params_sampling`` field names; plus ``"grammar"``: a GBNF string, typed as a user
   grammar, i.e. ``COMMON_GRAMMAR_TYPE_USER``, never prefilled; ``"grammar_lazy"``: bool;
   ``"grammar_triggers"``: ``[{"type": "word"|"pattern"|"pattern_full"|"token", "value": str,
   "token": int}]``; ``"logit_bias"``: ``[[token, bias], ...]``).  An empty prompt or a sampler that
   fails to build (its exception's ``what()``, e.g. "failed to parse grammar") ends that stream at
   once with ``finish="error"``; it takes no part in any batch below.  With ``accept_prompt``, every
   prompt token is fed to the sampler with ``common_sampler_accept(smpl, t, false)`` (penalty
   history only, no grammar), as llama-cli and llama-server do.
3. Prompt phase: all remaining streams' prompts laid out in one token list, in stream order;
   stream i's tokens carry seq_id i, positions 0..len-1, and an output only on its last token.
   The list is cut into consecutive batches of at most ``llama_n_batch(ctx)`` tokens (the
   context's n_batch after the reference's clamp, returned as ``n_batch``), each decoded with one
   ``llama_decode``.  Right after the batch holding stream i's last prompt token, stream i is
   sampled at that token's index within the batch (streams in stream order).
4. Sampling a stream: ``tok = common_sampler_sample(smpl, ctx, idx)`` (grammar_first=false: the
   chain picks, a grammar then checks the pick and, if it rejects it, the logits are re-read and
   the grammar applied before the chain picks again), then ``common_sampler_accept(smpl, tok,
   true)``, then ``tok`` is appended.  The stream ends with ``finish="eog"`` if
   ``llama_vocab_is_eog(tok)`` (the EOG token is kept in ``tokens``), else with
   ``finish="length"`` once it holds ``n_predict`` tokens.  An exception while sampling ends it
   with ``finish="error"``.
5. Generation: while any stream is active, one batch holding each active stream's last token in
   stream order (seq_id i, pos = len(prompt_i) + len(tokens_i) - 1, output on), one
   ``llama_decode``, then each of those streams sampled at its index in that batch, in stream
   order.
6. A ``llama_decode`` that returns nonzero stops everything: ``decode_rc`` is its code,
   ``decode_step`` the 0-based index of that call, ``log`` the reference's log, and every stream
   still active ends with ``finish="error"``.

Timing (``llama_time_us``): ``t_loop_us`` runs from just before the prompt phase's first
``llama_decode`` (samplers already built) to the end of the generation loop; ``t_prompt_us`` to
the end of the prompt phase (the last prompt chunk decoded and its streams sampled).

``ref_generate_ctx`` runs the same schedule on an existing ``RefContext`` (no context creation
in the timed path): ``llama_memory_clear(mem, true)`` first, then steps 2-6.  ``n_seq_max`` is
then the context's: more prompts than that and the first ``llama_decode`` refuses the batch
(step 6, ``decode_rc`` -1).

Greedy: ``temp <= 0`` is greedy in the reference's chain (the temperature sampler keeps only the
first highest logit, ``dist`` then picks it), with the other default samplers still in front of
it (top_k 40 etc. never drop the maximum).  ``{"temp": 0}`` therefore gives the argmax of each
row of logits.

Calls that can abort the process (a grammar that admits no token, GGML_ASSERT in a decode)
belong in ``pyggml.reference.isolated``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .._native import ffi, probe
from ._probe import take_json
from .decode import RefContext, RefError, RefModel

FINISH = ("eog", "length", "error")
_NPOS = 2**64 - 1  # std::string::npos (size_t is 64-bit on every platform the probe builds for)


def ref_generate(model: RefModel, prompts: Sequence[Sequence[int]], *, n_predict: int,
                 samplings: Sequence[dict[str, Any]] | dict[str, Any], accept_prompt: bool = True,
                 **cparams: Any) -> dict[str, Any]:
    """Generate from every prompt at once with the reference (schedule in the module doc).

    ``samplings``: one ``common_params_sampling`` dict per prompt, or one dict for all.
    ``cparams``: RefContext's context parameters (``n_seq_max`` defaults to ``len(prompts)``).

    Returns ``{"streams": [{"tokens": [int], "finish": "eog"|"length"|"error", "error": str
    (only on error), "log": str (stderr of a failed sampler init, where any)}], "n_decode": the
    llama_decode calls made, "decode_rc": 0 or the failing call's code, "n_batch": the context's
    n_batch, "t_prompt_us" and "t_loop_us" (module doc), and on a failed decode "decode_step" and
    "log"}``.

    Raises ``ValueError`` for n_predict < 1 or a samplings list of the wrong length, ``RefError``
    when the context cannot be made or the request is refused by the probe.
    """
    cparams.setdefault("n_seq_max", max(1, len(prompts)))
    request = _request(prompts, n_predict, samplings, accept_prompt)
    out = ffi.new("char **")
    status = probe().ps_gen_run(model.handle, json.dumps(cparams).encode(), json.dumps(request).encode(), out)
    return _result(status, out)


def ref_generate_ctx(ref_ctx: RefContext, prompts: Sequence[Sequence[int]], *, n_predict: int,
                     samplings: Sequence[dict[str, Any]] | dict[str, Any],
                     accept_prompt: bool = True) -> dict[str, Any]:
    """``ref_generate`` on an existing context: its memory is cleared (``llama_memory_clear(mem,
    true)``), then the loop runs on it, so a bench times generation without context creation
    and repeated calls on one context give the same result.

    Stream i is sequence i, so ``n_seq_max`` (and n_ctx, n_batch, ...) are ``ref_ctx``'s: make
    it with ``n_seq_max >= len(prompts)``, or the first decode fails (``decode_rc`` -1).  Returns
    and raises as ``ref_generate`` (``ValueError`` also for a closed context).
    """
    request = _request(prompts, n_predict, samplings, accept_prompt)
    if ref_ctx._h == ffi.NULL:  # noqa: SLF001 - same package; a NULL handle would crash the probe
        raise ValueError("the RefContext is closed")
    out = ffi.new("char **")
    return _result(probe().ps_gen_run_ctx(ref_ctx._h, json.dumps(request).encode(), out), out)  # noqa: SLF001


def _request(prompts: Sequence[Sequence[int]], n_predict: int,
             samplings: Sequence[dict[str, Any]] | dict[str, Any], accept_prompt: bool) -> dict[str, Any]:
    if n_predict < 1:
        raise ValueError(f"n_predict must be at least 1, not {n_predict}")
    per_stream = [samplings] * len(prompts) if isinstance(samplings, dict) else list(samplings)
    if len(per_stream) != len(prompts):
        raise ValueError(f"{len(per_stream)} samplings for {len(prompts)} prompts")
    return {"prompts": [[int(t) for t in p] for p in prompts], "n_predict": n_predict,
            "samplings": per_stream, "accept_prompt": accept_prompt}


def _result(status: int, out: Any) -> dict[str, Any]:
    res: dict[str, Any] = take_json(out) or {}
    if status != 0:
        raise RefError(res.get("error", "failed"), res.get("log", ""))
    return res


def ref_find_partial_stop(text: bytes, stop: bytes) -> int:
    """common/common.h ``string_find_partial_stop(text, stop)``: where the longest prefix of
    ``stop`` that ``text`` ends with starts (a byte offset), or -1 for npos."""
    pos = int(probe().ps_gen_find_partial_stop(text, len(text), stop, len(stop)))
    return -1 if pos == _NPOS else pos
