"""The bench cases run, and both sides pick the same tokens (they share seeds and logits)."""

from __future__ import annotations

import pytest

from pyggml.bench import sampling as B


@pytest.mark.parametrize("name", list(B.CASES))
def test_bench_pair_agrees(name):
    pair = B.CASES[name]()
    assert [pair.ours() for _ in range(3)] == [pair.reference() for _ in range(3)]
