"""Randomized differential test: pyggml's allocator plan == the reference gallocr's outcome
on random DAGs (views of views, in-place ops, inputs/outputs, pre-allocated tensors, several
buffer types, tiny max sizes, odd alignments, dependency nodes, step programs)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.alloc import plan
from pyggml.parity.alloc_dags import random_scenario
from pyggml.reference import alloc as ref


@settings(derandomize=True, max_examples=150, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), max_nodes=st.sampled_from([4, 12, 24, 40]))
def test_alloc_random_dag_matches_reference(seed: int, max_nodes: int) -> None:
    sc = random_scenario(random.Random(seed), max_nodes=max_nodes)
    assert plan(sc) == ref.plan(sc)


def test_alloc_random_dags_cover_the_outcomes() -> None:
    # the generator reaches what the parity sweep is meant to cover: failures, aborts,
    # several chunks, several buffer types, in-place reuse
    scs = [random_scenario(random.Random(s)) for s in range(300)]
    outs = ref.plan_many(scs)
    errors = {o["error"] for o in outs}
    assert {None, "alloc_graph failed", "reserve failed", "aborted"} <= errors
    assert any(o["buffers"] and any(len(b) > 1 for b in o["buffers"]) for o in outs)
    assert any(len(sc["bufts"]) > 1 for sc in scs)
    assert [plan(sc) for sc in scs] == outs
