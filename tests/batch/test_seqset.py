"""The libstdc++ unordered_set order that decides a token's primary sequence."""

from __future__ import annotations

import random

from pyggml.batch import seqset
from pyggml.parity import batch as parity_batch
from pyggml.reference import batch as ref


def test_two_ids_come_out_reversed():
    # 13 buckets after the first insertion: distinct buckets go to the front of the list
    assert seqset.order([0, 1]) == (1, 0)
    assert seqset.order([1, 0]) == (0, 1)


def test_same_bucket_and_duplicates():
    # 0 and 13 share bucket 0 of 13: the newer node goes first among its bucket's nodes
    assert seqset.order([0, 13]) == (13, 0)
    assert seqset.order([5, 5, 5]) == (5,)
    assert seqset.order([]) == ()


def test_orders_match_the_reference_across_rehashes():
    rng = random.Random(11)
    for k in (2, 7, 13, 14, 15, 29, 30, 31, 59, 60, 61, 127, 128, 129, 256):
        ids = rng.sample(range(256), k)
        spec = {"n_seq_max": 256, "n_vocab": 10, "n_embd_inp": 2,
                "legacy": {"n_tokens": 1, "token": [1], "embd": None, "pos": [0], "n_seq_id": [k],
                           "seq_id": [ids], "logits": None},
                "splits": [{"mode": "simple", "n_ubatch": 1}]}
        got = ref.run(spec)["splits"][0]["ubatches"][0]["seq_id"][0]
        assert list(seqset.order(ids)) == got, k
        assert parity_batch.ours(spec) == ref.run(spec)
