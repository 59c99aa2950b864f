"""pyggml's allocator against the running reference: every ported test-batch-alloc scenario,
a seeded random slice of the paritychecker corpus, and a hypothesis differential."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.parity import Options, first_difference
from pyggml.parity import batch as pb
from pyggml.reference import batch as ref

PORTED = list(pb.ported())


@pytest.mark.parametrize(("name", "spec"), PORTED, ids=[n for n, _ in PORTED])
def test_ported_scenario(name, spec):
    ours, theirs = pb.ours(spec), ref.run(spec)
    assert first_difference(ours, theirs) is None, first_difference(ours, theirs)


def test_random_slice():
    rng = random.Random(1234)
    for k in range(300):
        spec = pb.random_spec(rng)
        diff = first_difference(pb.ours(spec), ref.run(spec))
        assert diff is None, (k, diff, spec)


def test_component_yields_cases():
    cases = list(itertools.islice(pb.cases(Options()), len(PORTED) + 5))
    assert len(cases) == len(PORTED) + 5
    assert all(c.ours == c.reference for c in cases)


@st.composite
def specs(draw):
    n_seq_max = draw(st.sampled_from([1, 2, 4, 16, 256]))
    seqs = st.integers(0, n_seq_max - 1)
    n = draw(st.integers(1, 24))
    groups = draw(st.lists(st.lists(seqs, min_size=1, max_size=4), min_size=n, max_size=n))
    nxt: dict[int, int] = {}
    positions = []
    for g in groups:
        p = max(nxt.get(s, 0) for s in g) + draw(st.sampled_from([0, 0, 0, 0, 1, -1]))
        for s in g:
            nxt[s] = p + 1
        positions.append(p)
    mem = draw(st.one_of(st.none(), st.lists(
        st.tuples(seqs, st.integers(0, 3), st.integers(0, 6)).map(lambda t: [t[0], t[1], t[1] + t[2]]),
        max_size=3, unique_by=lambda r: r[0])))
    tokens = draw(st.lists(st.integers(-1, 12), min_size=n, max_size=n))
    logits = draw(st.one_of(st.none(), st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    auto = draw(st.booleans())
    plans = draw(st.lists(st.fixed_dictionaries({
        "mode": st.sampled_from(["simple", "equal", "seq"]), "n_ubatch": st.integers(1, 9),
        "sequential": st.booleans()}), min_size=1, max_size=3))
    return {"n_seq_max": n_seq_max, "n_vocab": 12, "n_embd_inp": 2, "mem": mem,
            "output_all": draw(st.booleans()),
            "legacy": {"n_tokens": n, "token": tokens, "embd": None, "pos": None if auto else positions,
                       "n_seq_id": [len(g) for g in groups], "seq_id": groups, "logits": logits},
            "splits": plans}


@settings(derandomize=True, max_examples=150, deadline=None)
@given(specs())
def test_hypothesis_differential(spec):
    diff = first_difference(pb.ours(spec), ref.run(spec))
    assert diff is None, diff
