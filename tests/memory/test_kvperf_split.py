"""split_equal's set choice: the set-visiting fast path (BatchAllocr._pick_sets) against the
reference's token loop (BatchAllocr._pick_sets_scan) at every step of random splits.  The splits
themselves are compared with the running reference in pyggml/parity/batch.py."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pyggml.batch import Batch, BatchAllocr


def _batch(rng: np.random.Generator) -> Batch:
    n_seq = int(rng.integers(1, 9))
    n = int(rng.integers(1, 60))
    coupled = rng.random() < 0.3
    rows: list[list[int]] = []
    pos: list[int] = []
    nxt = [0] * n_seq  # each token continues its sequences; a coupled token needs them level
    for _ in range(n):
        r = [int(rng.integers(0, n_seq))]
        if coupled and rng.random() < 0.3:
            k = int(rng.integers(1, n_seq + 1))
            cand = sorted(int(v) for v in rng.choice(n_seq, k, replace=False))
            if len({nxt[v] for v in cand}) == 1:
                r = cand
        pos.append(nxt[r[0]])
        for v in r:
            nxt[v] += 1
        rows.append(r)
    return Batch(tokens=rng.integers(0, 100, n), pos=pos, seq_ids=rows)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_pick_sets_matches_token_loop(seed):
    rng = np.random.default_rng(seed)
    batch = _batch(rng)
    al = BatchAllocr()
    al.init(batch.to_ext(n_seq_max=8, n_vocab=100))
    al.split_reset()
    sequential = bool(rng.random() < 0.4) and not al.has_cpl
    n_ubatch = int(rng.choice([1, 2, 3, 8, 64]))
    keep_tail = int(rng.choice([0, 0, 1, 2])) if n_ubatch > 2 else 0
    for _ in range(200):
        want = al._pick_sets_scan(n_ubatch, sequential)
        assert al._pick_sets(n_ubatch, sequential) == want
        if al.split_equal(n_ubatch, sequential, keep_tail) is None:
            break
