"""pyggml's batch allocator on its own: the behaviours tests/test-batch-alloc.cpp asserts."""

from __future__ import annotations

import numpy as np
import pytest

from pyggml.batch import Batch, BatchAllocr, BatchExt, PosRanges, from_legacy, split
from pyggml.errors import BatchError


def _embd_batch(entries, *, n_seq_max=4, mem=None, n_pos=1):
    b = BatchExt(n_tokens_max=64, n_embd_inp=2, n_seq_max=n_seq_max, mem=mem, n_vocab=0, n_pos_per_embd=n_pos)
    for i, (p, seqs, out) in enumerate(entries):
        assert b.add_token(seqs[0]) == i
        for s in seqs[1:]:
            assert b.add_seq(i, s)
        assert b.set_token_embd(i, [100.0 * i, 100.0 * i + 1], 1, 2)
        assert b.set_token_pos(i, p if isinstance(p, list) else [p])
        assert b.set_output(i, out)
    return b


def _init(b, n_pos=1, output_all=False):
    a = BatchAllocr(n_pos)
    a.init(b, output_all=output_all)
    return a


def test_copies_pos_seq_output():
    a = _init(_embd_batch([(i, [0], i == 3) for i in range(4)]))
    assert a.n_tokens == 4 and a.n_outputs == 1
    assert a.pos.tolist() == [0, 1, 2, 3]
    assert (a.seq_pos_min(0), a.seq_pos_max(0), a.seq_pos_min(1)) == (0, 3, -1)


def test_output_all_overrides_with_a_warning():
    a = _init(_embd_batch([(i, [0], False) for i in range(4)]), output_all=True)
    assert a.n_outputs == 4
    assert "overriding" in a.log[0]


@pytest.mark.parametrize(("entries", "mem", "reason"), [
    ([(11, [0], False)], {0: (0, 9)}, "memory-pos"),
    ([(9, [0], False)], {0: (0, 9)}, "memory-pos"),
    ([(0, [0], False), (1, [0], False), (3, [0], True)], None, "non-continuous"),
    ([(p, [s], False) for p, s in zip([4, 5, 0, 1, 6, 2, 3], [0, 0, 1, 1, 0, 1, 0], strict=True)], None,
     "decreasing"),
    ([(6, [0, 1], True)], {0: (0, 5), 1: (2, 5)}, "diverged"),
])
def test_init_rejections(entries, mem, reason):
    with pytest.raises(BatchError) as e:
        _init(_embd_batch(entries, mem=PosRanges(mem) if mem else None))
    assert e.value.reason == reason
    assert e.value.message.startswith("init: ")


def _accepted_like_the_reference(entries, mem=None):
    """init accepts the batch on both sides, and every split of it is the reference's."""
    from pyggml.parity import batch as pb
    from pyggml.parity import first_difference
    from pyggml.reference import batch as ref

    a = _init(_embd_batch(entries, mem=PosRanges(mem) if mem else None))
    spec = pb._seq_batch(entries, mem=[[s, lo, hi] for s, (lo, hi) in mem.items()] if mem else None)
    ours, theirs = pb.ours(spec), ref.run(spec)
    assert first_difference(ours, theirs) is None, first_difference(ours, theirs)
    assert theirs["init"] is True and a.n_tokens == theirs["n_tokens"]
    return a, theirs


def test_incompatible_sets_check_never_fires():
    # every set of seq s contains s, so the reference's intersection is never empty: the
    # "incompatible sequence sets" error is unreachable (its own comment's example is accepted)
    _accepted_like_the_reference([(0, [0, 1, 2], False), (0, [0, 1], False), (0, [1, 2], False)])


@pytest.mark.parametrize(("entries", "mem"), [
    ([(0, [0], False), (0, [0], False), (1, [0], True)], None),
    ([(10, [0], False), (11, [0], True)], {0: (0, 9)}),
    ([(6, [0, 1], True)], {0: (0, 5), 1: (0, 5)}),
])
def test_equal_positions_and_continuation_are_accepted(entries, mem):
    _accepted_like_the_reference(entries, mem)


def test_split_simple_chunks_and_out_ids():
    a = _init(_embd_batch([(i, [0], i == 4) for i in range(5)]))
    ubs = split(a, "simple", 2)
    assert [u.n_tokens for u in ubs] == [2, 2, 1]
    assert not ubs[0].equal_seqs and ubs[0].seq_id_unq == [0]
    assert ubs[0].embd[1].tolist() == [100.0, 101.0]
    assert a.n_used == 5 and a.out_ids == [4]


def test_split_equal_unequal_lengths():
    a = _init(_embd_batch([(i, [0], i == 3) for i in range(4)] + [(i, [1], i == 1) for i in range(2)]))
    ubs = split(a, "equal", 8)
    assert [(u.n_tokens, u.n_seq_tokens, u.n_seqs) for u in ubs] == [(4, 2, 2), (2, 2, 1)]
    assert [s[0] for s in ubs[0].seq_id] == [0, 0, 1, 1]
    assert ubs[0].pos.tolist() == [0, 1, 0, 1]


def test_split_equal_overshoot_quirk():
    # three single-token sequences with n_ubatch=2 give one ubatch of 3 tokens (the reference
    # pushes the sequence set before checking the size)
    a = _init(_embd_batch([(0, [s], True) for s in range(3)]))
    assert [u.n_tokens for u in split(a, "equal", 2)] == [3]


def test_sequential_split_refuses_coupled_sequences():
    a = _init(_embd_batch([(0, [0, 1], False), (1, [0, 1], True)]))
    assert split(a, "equal", 4, sequential=True) == []
    assert "coupled" in a.log[-1]
    ubs = split(a, "equal", 4)
    assert (ubs[0].n_tokens, ubs[0].n_seqs, ubs[0].n_seqs_unq) == (2, 1, 2)


def test_split_seq_per_sequence():
    a = _init(_embd_batch([(p, [s], p == 1) for s in range(3) for p in range(2)]))
    ubs = split(a, "seq", 8)
    assert [(u.n_tokens, u.seq_id_unq) for u in ubs] == [(2, [0]), (2, [1]), (2, [2])]


@pytest.mark.parametrize(("lengths", "n_ub", "seq", "expect"), [
    ([2, 3], 4, True, [2, 3]),
    ([3, 3], 4, False, [3, 3]),
    ([5], 4, False, [3, 2]),
    ([6], 4, False, [4, 2]),
])
def test_keep_tail(lengths, n_ub, seq, expect):
    a = _init(_embd_batch([(i, [s], i == n - 1) for s, n in enumerate(lengths) for i in range(n)]))
    assert [u.n_tokens for u in split(a, "equal", n_ub, sequential=seq, keep_tail=2)] == expect


def test_aborts_become_errors():
    a = _init(_embd_batch([(i, [0], False) for i in range(3)]))
    with pytest.raises(BatchError) as e:
        split(a, "equal", 2, keep_tail=2)
    assert e.value.abort and e.value.reason == "keep-tail"
    with pytest.raises(BatchError) as e:
        BatchAllocr().init(BatchExt(n_tokens_max=4, n_embd_inp=2, n_seq_max=1, n_vocab=10))
    assert e.value.abort and e.value.reason == "empty"


def test_mrope_layout():
    a = _init(_embd_batch([([10, 5, 7, 0], [0], False), ([11, 6, 8, 0], [0], True)], n_pos=4), n_pos=4)
    ub = split(a, "simple", 2)[0]
    assert ub.pos.tolist() == [10, 11, 5, 6, 7, 8, 0, 0] and ub.is_pos_2d


def test_builder_refusals():
    b = BatchExt(n_tokens_max=1, n_embd_inp=2, n_embd_inp_enc=6, n_seq_max=4, n_vocab=10)
    assert b.add_token(4) == -3 and b.add_token(-1) == -3
    assert b.add_token(0) == 0 and b.add_token(0) == -1
    assert not b.set_token_id(0, 10) and b.set_token_id(0, 9)
    assert not b.set_token_embd(0, [1.0] * 3, 1, 3)
    assert not b.set_token_embd(0, None, 1, 2)
    assert b.set_token_embd(0, [1.0] * 2, 2, 1)
    assert not b.set_token_embd(0, [1.0] * 2, 1, 2)  # already set
    assert not b.set_output(3, True) and not b.set_token_pos(0, None)


def test_legacy_defaults():
    mem = PosRanges({0: (0, 9)})
    ext = BatchExt(n_tokens_max=8, n_embd_inp=2, n_seq_max=4, mem=mem, n_vocab=100)
    from_legacy(ext, n_tokens=4, token=[5, 6, 7, 8], n_seq_id=[1, 1, 1, 1], seq_id=[[0], [1], [0], [1]])
    assert [p[0] for p in ext.pos] == [10, 0, 11, 1]
    assert ext.output == [False, False, False, True]


def test_legacy_token_id_minus_one_is_no_token():
    ext = Batch(tokens=[3, -1]).to_ext(n_seq_max=1, n_vocab=10)
    with pytest.raises(BatchError) as e:
        BatchAllocr().init(ext)
    assert e.value.reason == "content-types"


def test_legacy_auto_pos_with_bad_seq_id_is_rejected():
    # the reference indexes out of bounds here (undefined behaviour); pyggml rejects the seq id
    ext = Batch(tokens=[1, 2], seq_ids=[5, 0]).to_ext(n_seq_max=2, n_vocab=10)
    with pytest.raises(BatchError) as e:
        BatchAllocr().init(ext)
    assert e.value.reason == "seq_id"


def test_batch_type_numpy_friendly():
    toks = np.arange(6, dtype=np.int64)
    b = Batch(tokens=toks, seq_ids=np.array([0, 0, 0, 1, 1, 1]), pos=np.array([0, 1, 2, 0, 1, 2]),
              output=np.array([0, 0, 1, 0, 0, 1], dtype=bool))
    a = BatchAllocr()
    a.init(b.to_ext(n_seq_max=2, n_vocab=10))
    ubs = split(a, "equal", 6)
    assert ubs[0].n_seqs == 2 and ubs[0].token.tolist() == [0, 1, 2, 3, 4, 5]
    assert a.out_ids == [2, 5]
    shared = Batch(tokens=[1, 2], seq_ids=[[0, 1], [0, 1]])
    a.init(shared.to_ext(n_seq_max=2, n_vocab=10))
    assert a.seq_id == [(1, 0), (1, 0)]  # the reference's unordered_set order
    emb = Batch(embd=np.ones((3, 4)), output=True)
    a.init(emb.to_ext(n_seq_max=1, n_vocab=0, n_embd_inp=4))
    assert a.n_outputs == 3 and a.embd.shape == (3, 4)


@pytest.mark.parametrize("kw", [
    {"tokens": [1, 2], "pos": [0]},
    {"tokens": [1, 2], "seq_ids": [0]},
    {"tokens": [1, 2], "output": [True]},
    {"tokens": [1], "embd": np.zeros((2, 2))},
    {},
])
def test_batch_shape_errors(kw):
    with pytest.raises(BatchError):
        Batch(**kw)
