"""Parity component "alloc": pyggml's graph allocator plan against the reference gallocr.

One case = one allocator scenario (the IR of ``pyggml.reference.alloc``); pyggml's outcome is
``pyggml.alloc.plan(scenario)``, the reference's comes from the probe's recording buffer types
(the technique of tests/test-alloc.cpp), run in the subprocess worker so that aborts are
outcomes.  Every placement (buffer id, chunk, offset), every chunk size, every step's result
is compared.  Corpus:

- ``test-alloc/...``: every scenario of the reference's tests/test-alloc.cpp;
- ``decode/...``: the decode graphs the reference builds (llama_context::graph_reserve) for
  SmolLM2 and tiny generated llama models at several ubatch and KV sizes, weights and KV cache
  pre-allocated, over the CPU buffer type, over buffer types with odd alignments and small
  max sizes (many chunks), and split over two buffer types by node halves;
- ``dag/...``: seeded random DAGs (``alloc_dags``): 400 by default, 6,000 with ``--full``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import Case, Options
from .alloc_dags import random_scenarios
from .alloc_scenarios import SCENARIOS, strip_checks

N_DAGS = 400
N_DAGS_FULL = 6000

# (n_ctx, n_ubatch, n_outputs (None: all tokens), flash_attn)
SMOLLM2_GRAPHS = [(256, 1, 1, 0), (512, 32, 1, 0)]
SMOLLM2_GRAPHS_FULL = SMOLLM2_GRAPHS + [(256, 8, None, 0), (1024, 64, 1, 0), (4096, 1, 1, 0),
                                        (4096, 512, 1, 0), (512, 16, 1, 1), (2048, 128, None, 1)]
TINY_GRAPHS = [(64, 1, 1, 0), (128, 16, None, 0)]
TINY_GRAPHS_FULL = TINY_GRAPHS + [(32, 4, 1, 0), (256, 64, 1, 0), (128, 7, None, 1), (512, 128, 1, 0)]

# buffer-type variants applied to a decode graph: the CPU buffer type as the reference reports
# it, then odd alignments with max sizes that force many chunks
BUFT_VARIANTS: list[tuple[str, dict[str, Any] | None]] = [
    ("cpu", None),
    ("a64-max64k", {"alignment": 64, "max_size": 64 * 1024}),
    ("a128-max4k", {"alignment": 128, "max_size": 4 * 1024}),
    ("split2", None),
]


def split_two_ways(sc: dict[str, Any]) -> dict[str, Any]:
    """The graph as a two-device split would plan it: the second half of the nodes (and the
    leafs they read first) on a second buffer type, explicit reserve_n then alloc_graph."""
    n = len(sc["nodes"])
    half = n // 2
    first_user: dict[int, int] = {}
    for i, node in enumerate(sc["nodes"]):
        for s in sc["tensors"][node]["src"]:
            first_user.setdefault(s, i)
    return {**sc, "bufts": [sc["bufts"][0], {"alignment": 256, "max_size": 1 << 20}],
            "node_buffer_ids": [0 if i < half else 1 for i in range(n)],
            "leaf_buffer_ids": [0 if first_user.get(leaf, 0) < half else 1 for leaf in sc["leafs"]],
            "steps": [{"call": "reserve"}, {"call": "alloc_graph"}, {"call": "get_buffer_size"}]}


def ours(scenario: dict[str, Any]) -> dict[str, Any]:
    from ..alloc import plan

    try:
        return plan(copy.deepcopy(scenario))
    except Exception as exc:  # a planner exception is a mismatch, not the end of the sweep
        return {"exception": f"{type(exc).__name__}: {exc}"}


def _tiny_models(full: bool) -> list[tuple[str, Path]]:
    from . import tinymodels
    from .corpus import cache_dir

    specs = tinymodels.spec_grid()
    specs = specs if full else specs[:1] + specs[3:4]
    out = []
    d = cache_dir() / "alloc_models"
    for spec in specs:
        if spec.n_split > 1:
            continue
        path = d / f"{spec.tag}-s{spec.seed}.gguf"
        if not path.exists():
            tinymodels.write(tinymodels.build(spec), d, path.stem)
        out.append((spec.tag, path))
    return out


def decode_scenarios(full: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, scenario) for every decode graph of the corpus and buffer-type variant."""
    from ..reference.alloc import decode_graph
    from .corpus import smollm2

    models = [("smollm2", smollm2(), SMOLLM2_GRAPHS_FULL if full else SMOLLM2_GRAPHS)]
    models += [(tag, path, TINY_GRAPHS_FULL if full else TINY_GRAPHS) for tag, path in _tiny_models(full)]
    variants = BUFT_VARIANTS if full else BUFT_VARIANTS[:1] + BUFT_VARIANTS[2:]  # all but a64-max64k
    for tag, path, grid in models:
        for n_ctx, n_ubatch, n_outputs, fa in grid:
            g = decode_graph(path, n_ctx=n_ctx, n_ubatch=n_ubatch, n_outputs=n_outputs or n_ubatch,
                             flash_attn=fa)
            base = {k: v for k, v in g.items() if k != "meta"}
            for vname, buft in variants:
                sc = dict(base)
                if vname == "split2":
                    sc = split_two_ways(sc)
                elif buft is not None:
                    sc["bufts"] = [buft]
                name = f"decode/{tag}/ctx{n_ctx}-ub{n_ubatch}-out{n_outputs or n_ubatch}-fa{fa}/{vname}"
                yield name, sc


def cases(opts: Options) -> Iterator[Case]:
    from ..reference.alloc import plan_many

    named: list[tuple[str, dict[str, Any]]] = [
        (f"test-alloc/{name}", strip_checks(f())) for name, f in SCENARIOS.items()]
    named += list(decode_scenarios(opts.full))
    n = N_DAGS_FULL if opts.full else N_DAGS
    named += [(f"dag/{opts.seed}-{i}", sc) for i, sc in enumerate(random_scenarios(opts.seed, n))]
    if opts.limit is not None:
        named = named[:opts.limit]
    # reference outcomes in batches (one worker round trip per batch), pyggml's per case
    batch = 256
    for i in range(0, len(named), batch):
        chunk = named[i:i + batch]
        refs = plan_many([sc for _, sc in chunk])
        for (name, sc), ref in zip(chunk, refs, strict=True):
            yield Case(name, ours(sc), ref)
