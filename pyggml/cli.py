"""`pyggml` / `python -m pyggml`: run, chat, embed; parity, bench, inspect."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict


def _cmd_parity(args: argparse.Namespace) -> int:
    from . import parity

    names = args.components or list(parity.COMPONENTS)
    unknown = [n for n in names if n not in parity.COMPONENTS]
    if unknown:
        print(f"unknown component(s): {', '.join(unknown)}; known: {', '.join(parity.COMPONENTS)}",
              file=sys.stderr)
        return 2
    opts = parity.Options(full=args.full, seed=args.seed, limit=args.limit)
    reports = []
    width = max(len(n) for n in names)
    for name in names:
        try:
            report = parity.run_component(name, opts)
        except Exception as exc:  # a component that cannot run is a failure, never a pass
            report = parity.Report(name, error=f"{type(exc).__name__}: {exc}")
        reports.append(report)
        status = "ok" if report.ok else "FAIL"
        line = f"{name:<{width}}  cases {report.cases:>7}  mismatches {report.mismatches:>5}  {status}"
        if report.error:
            line += f"  error: {report.error}"
        elif report.cases == 0:
            line += "  (no cases ran)"
        print(line, flush=True)
        if report.first_mismatch:
            print(f"{'':<{width}}  first mismatch: {report.first_mismatch}", flush=True)
        if args.groups:
            for group, (n, bad) in report.groups.items():
                print(f"{'':<{width}}    {group:<40} cases {n:>7}  mismatches {bad:>5}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"options": asdict(opts), "components": [asdict(r) for r in reports]}, f, indent=1)
    return 0 if all(r.ok for r in reports) else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    from . import bench

    cases = bench.all_cases()
    names = args.cases or list(cases)
    unknown = [n for n in names if n not in cases]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(cases)}", file=sys.stderr)
        return 2
    results = []
    print(f"{'case':<34} {'pyggml ns/op':>15} {'reference ns/op':>16} {'ratio':>8}")
    for name in names:
        r = bench.run_case(name, cases[name], repeat=args.repeat)
        results.append(r)
        print(f"{name:<34} {r.ns_pyggml:>15,.0f} {r.ns_reference:>16,.0f} {r.ratio:>8.2f}", flush=True)
        if r.note:
            print(f"{'':<34} {r.note}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) | {"ratio": r.ratio} for r in results], f, indent=1)
    return 0


def _cmd_load(args: argparse.Namespace) -> int:
    """Load a model with a progress bar and print what was loaded (or the LoadError)."""
    from .errors import LoadError
    from .model.loader import load_with_bar

    try:
        model = load_with_bar(args.path, show=not args.quiet, desc="loading", vocab_only=args.vocab_only,
                              use_mmap=not args.no_mmap, check_tensors=args.check_tensors)
    except LoadError as exc:
        print(f"error loading model: {exc}", file=sys.stderr)
        return 1
    hp = model.hparams
    print(f"{model.arch} '{model.name}': {len(model.tensors)} tensors, "
          f"{model.tokenizer.n_tokens} tokens ({model.tokenizer.model})")
    if hp is not None:
        print(f"n_layer {hp.n_layer}  n_embd {hp.n_embd}  n_head {hp.n_head[0]}  "
              f"n_head_kv {hp.n_head_kv[0]}  n_ff {hp.n_ff[0]}  n_ctx_train {hp.n_ctx_train}")
    model.close()
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert_bert

    print(convert_bert(args.src, args.out))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pyggml", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("parity", help="diff pyggml against the reference (llama.cpp 0c1e57098)")
    p.add_argument("components", nargs="*", help="components to run (default: all)")
    p.add_argument("--full", action="store_true", help="run the complete corpora (slow)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated corpora")
    p.add_argument("--limit", type=int, default=None, help="at most N cases per component")
    p.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    p.add_argument("--groups", action="store_true",
                   help="also print counts per case group (sampler, template, vocab file, ...)")
    p.set_defaults(func=_cmd_parity)

    b = sub.add_parser("bench", help="time pyggml against the reference, interleaved")
    b.add_argument("cases", nargs="*", help="cases to run (default: all)")
    b.add_argument("--repeat", type=int, default=7, help="timed rounds per side (median reported)")
    b.add_argument("--json", metavar="PATH", help="write results as JSON")
    b.set_defaults(func=_cmd_bench)

    ld = sub.add_parser("load", help="load a GGUF model (progress bar) and print a summary")
    ld.add_argument("path", help="model file (the first split of a split model)")
    ld.add_argument("--vocab-only", action="store_true", help="metadata and vocab keys only")
    ld.add_argument("--no-mmap", action="store_true", help="read the weights instead of mapping them")
    ld.add_argument("--check-tensors", action="store_true", help="validate the weights' values")
    ld.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ld.set_defaults(func=_cmd_load)

    cv = sub.add_parser("convert", help="convert a Hugging Face checkpoint to GGUF (as the reference's "
                        "convert_hf_to_gguf.py)")
    cv.add_argument("arch", choices=["bert"], help="the checkpoint's architecture")
    cv.add_argument("src", help="the checkpoint folder (config.json, *.safetensors, vocab.txt, ...)")
    cv.add_argument("out", help="the GGUF file to write")
    cv.set_defaults(func=_cmd_convert)

    from .llm.cli import add_commands

    add_commands(sub)

    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
