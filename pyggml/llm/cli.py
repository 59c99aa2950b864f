"""``pyggml run | chat | embed``: the command-line face of ``pyggml.LLM``.

Flags carry llama.cpp's common argument names (common/arg.cpp): ``-m``, ``-p``, ``-n``, ``-t``,
``-c``, ``-b``, ``-ub``, ``-fa``, ``-nr``, ``-s``, the sampler flags, ``--grammar(-file)``,
``-j/--json-schema``, ``-jf/--json-schema-file``, ``-r/--reverse-prompt``.  Errors print one
line (no traceback) and exit 1; every command ends with a one-line timing summary on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import PyggmlError

# flag -> (dest, type, common_params_sampling field)
_SAMPLING_FLAGS = [
    (("--temp", "--temperature"), float, "temp"),
    (("--top-k",), int, "top_k"),
    (("--top-p",), float, "top_p"),
    (("--min-p",), float, "min_p"),
    (("--typical", "--typical-p"), float, "typ_p"),
    (("--repeat-last-n",), int, "penalty_last_n"),
    (("--repeat-penalty",), float, "penalty_repeat"),
    (("--presence-penalty",), float, "penalty_present"),
    (("--frequency-penalty",), float, "penalty_freq"),
    (("--dry-multiplier",), float, "dry_multiplier"),
    (("--xtc-probability",), float, "xtc_probability"),
    (("--xtc-threshold",), float, "xtc_threshold"),
    (("--dynatemp-range",), float, "dynatemp_range"),
    (("--dynatemp-exp",), float, "dynatemp_exponent"),
    (("--mirostat",), int, "mirostat"),
    (("--mirostat-lr",), float, "mirostat_eta"),
    (("--mirostat-ent",), float, "mirostat_tau"),
]


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", help="GGUF model (default: the built-in SmolLM2-135M-Instruct)")
    p.add_argument("-t", "--threads", type=int, default=None, help="threads (default: all CPUs)")
    p.add_argument("-c", "--ctx-size", type=int, default=4096, help="context size (default 4096)")
    p.add_argument("-b", "--batch-size", type=int, default=None, help="logical batch size")
    p.add_argument("-ub", "--ubatch-size", type=int, default=None, help="physical batch size")
    p.add_argument("-fa", "--flash-attn", choices=["on", "off", "auto"], default="auto")
    p.add_argument("-nr", "--no-repack", action="store_true", help="no weight repacking (CPU_REPACK)")
    p.add_argument("--no-mmap", action="store_true", help="read the weights instead of mapping them")
    p.add_argument("-s", "--seed", type=int, default=None, help="sampler seed")


def _sampling_args(p: argparse.ArgumentParser) -> None:
    for flags, typ, field in _SAMPLING_FLAGS:
        p.add_argument(*flags, dest=field, type=typ, default=None, help=f"common_params_sampling.{field}")
    p.add_argument("--samplers", help="sampler order, ';'-separated (as llama.cpp's --samplers)")
    p.add_argument("-n", "--predict", "--n-predict", dest="n_predict", type=int, default=-1,
                   help="tokens to generate (-1: until the end of the turn or a full context)")
    p.add_argument("-r", "--reverse-prompt", dest="stop", action="append", default=[],
                   help="stop at this string (repeatable)")
    p.add_argument("--grammar", help="GBNF grammar text")
    p.add_argument("--grammar-file", help="GBNF grammar file")
    p.add_argument("-j", "--json-schema", help="JSON schema text, or a file holding one")
    p.add_argument("-jf", "--json-schema-file", help="JSON schema file")


def _llm(args: argparse.Namespace) -> Any:
    from .llm import LLM

    params: dict[str, Any] = {"flash_attn": {"on": True, "off": False, "auto": None}[args.flash_attn]}
    if args.batch_size:
        params["n_batch"] = args.batch_size
    if args.ubatch_size:
        params["n_ubatch"] = args.ubatch_size
    if args.no_repack:
        params["use_extra_bufts"] = False
    if args.no_mmap:
        params["use_mmap"] = False
    if args.seed is not None:
        params["seed"] = args.seed
    return LLM(args.model, n_ctx=args.ctx_size, n_threads=args.threads, **params)


def _generation_kw(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {f: getattr(args, f) for _, _, f in _SAMPLING_FLAGS if getattr(args, f) is not None}
    if args.samplers:
        kw["samplers"] = args.samplers.split(";")
    kw["max_tokens"] = None if args.n_predict < 0 else args.n_predict
    kw["stop"] = args.stop
    grammar = args.grammar
    if args.grammar_file:
        grammar = Path(args.grammar_file).read_text()
    schema_text = args.json_schema
    if args.json_schema_file:
        schema_text = Path(args.json_schema_file).read_text()
    elif schema_text and not schema_text.lstrip().startswith("{") and Path(schema_text).is_file():
        schema_text = Path(schema_text).read_text()
    if schema_text:
        from ..grammar import json_schema_to_grammar

        try:
            grammar = json_schema_to_grammar(json.loads(schema_text))
        except json.JSONDecodeError as exc:
            raise PyggmlError(f"invalid JSON schema: {exc}") from None
    if grammar:
        from ..grammar import parse

        parse(grammar)  # a GrammarError now, before the model loads
        kw["grammar"] = grammar
    return kw


def _summary(llm: Any) -> None:
    t = llm.last_timings
    if not t:
        return

    def rate(n: float, s: float) -> str:
        return f"{n / s:.1f} t/s" if s > 0 else "- t/s"

    print(f"\nprompt: {t['prompt_tokens']} tokens, {rate(t['prompt_tokens'], t['prompt_s'])} | "
          f"generation: {t['gen_tokens']} tokens, {rate(t['gen_tokens'], t['gen_s'])}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    kw = _generation_kw(args)  # bad flags fail before the model loads
    with _llm(args) as llm:
        for chunk in llm.generate(args.prompt, stream=True, **kw):
            sys.stdout.write(chunk)
            sys.stdout.flush()
        sys.stdout.write("\n")
        _summary(llm)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    kw = _generation_kw(args)
    messages: list[dict[str, str]] = []
    if args.system_prompt:
        messages.append({"role": "system", "content": args.system_prompt})
    with _llm(args) as llm:
        print("chat with the model: /clear forgets the conversation, /exit (or Ctrl-D) quits, "
              "Ctrl-C stops a reply", file=sys.stderr)
        while True:
            try:
                line = input("> ")
            except (EOFError, KeyboardInterrupt):
                print(file=sys.stderr)
                return 0
            if line.strip() == "/exit":
                return 0
            if line.strip() == "/clear":
                messages = messages[:1] if args.system_prompt else []
                continue
            if not line.strip():
                continue
            messages.append({"role": "user", "content": line})
            reply = []
            try:
                for ev in llm.chat(messages, stream=True, **kw):
                    piece = ev["choices"][0]["delta"].get("content") or ""
                    reply.append(piece)
                    sys.stdout.write(piece)
                    sys.stdout.flush()
            except KeyboardInterrupt:
                sys.stdout.write(" [stopped]")
            sys.stdout.write("\n")
            messages.append({"role": "assistant", "content": "".join(reply)})
            _summary(llm)


def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    with _llm(args) as llm:
        vecs = np.asarray(llm.embed(args.texts, normalize=True, pooling_type=args.pooling))
        if args.vectors:
            for text, v in zip(args.texts, vecs, strict=True):
                print(json.dumps({"text": text, "embedding": [round(float(x), 6) for x in v]}))
        else:
            sims = vecs @ vecs.T
            width = max(len(t) for t in args.texts)
            for i, t in enumerate(args.texts):
                print(f"{t[:40]:<{min(width, 40)}}  " + "  ".join(f"{s:6.3f}" for s in sims[i]))
        _summary(llm)
    return 0


def add_commands(sub: Any) -> None:
    r = sub.add_parser("run", help="generate a continuation of a prompt (streams to stdout)")
    r.add_argument("-p", "--prompt", required=True, help="the prompt")
    _model_args(r)
    _sampling_args(r)
    r.set_defaults(func=_guarded(cmd_run))

    c = sub.add_parser("chat", help="interactive chat with the model's chat template")
    c.add_argument("-sys", "--system-prompt", help="system message")
    _model_args(c)
    _sampling_args(c)
    c.set_defaults(func=_guarded(cmd_chat))

    e = sub.add_parser("embed", help="embed texts with an embedding model; print cosine similarities")
    e.add_argument("texts", nargs="+", help="texts to embed")
    e.add_argument("--vectors", action="store_true", help="print the vectors (JSON lines) instead")
    e.add_argument("--pooling", choices=["none", "mean", "cls", "last", "rank"], default=None,
                   help="pooling type (default: the model's)")
    _model_args(e)
    e.set_defaults(func=_guarded(cmd_embed))


def _guarded(fn: Any) -> Any:
    """Run a command; a pyggml error (or a missing file) is one line on stderr and exit 1."""
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except (PyggmlError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return run
