"""pyggml.Context against the running reference (llama_decode through the probe): unit behaviour,
a seeded slice of the decode parity matrix, and a randomized differential test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyggml
from pyggml.context import ContextError
from pyggml.model import buft
from pyggml.parity import decode as pd
from pyggml.reference.decode import RefContext, RefModel


@pytest.fixture(scope="module")
def smollm2(smollm2_path):
    m = pyggml.Model.load(smollm2_path)
    r = RefModel(str(smollm2_path))
    yield m, r
    m.close()
    r.close()


@pytest.fixture(scope="module")
def tiny():
    path = pd.tiny_path("q8_0-bias")
    m = pyggml.Model.load(path)
    r = RefModel(str(path))
    yield m, r
    m.close()
    r.close()


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


# ---- unit -------------------------------------------------------------------------------------

def test_context_params_follow_the_reference(smollm2):
    m, r = smollm2
    for cp in ({}, {"n_ctx": 300, "n_batch": 1000}, {"n_ctx": 600, "n_seq_max": 3}, {"flash_attn": "off"}):
        ours = pyggml.Context(m, **pd._ours_params(cp))
        with RefContext(r, **cp) as ref:
            info = ref.info
            assert (ours.n_ctx, ours.n_batch, ours.n_ubatch, ours.n_seq_max, ours.flash_attn) == (
                info["n_ctx"], info["n_batch"], info["n_ubatch"], info["n_seq_max"], info["flash_attn"])
        ours.close()


def test_bad_params_raise(smollm2):
    m, _ = smollm2
    with pytest.raises(ContextError):
        pyggml.Context(m, n_ctxx=5)
    with pytest.raises(ContextError):
        pyggml.Context(m, type_k="q4_0")


def test_decode_errors_carry_the_reference_code(tiny):
    m, r = tiny
    with pyggml.Context(m, n_ctx=256) as ctx, RefContext(r, n_ctx=256) as ref:
        for tokens in ([99999], [1, 2, 3], [4]):
            want = ref.decode(tokens)
            if want == 0:
                ctx.decode(tokens)
            else:
                with pytest.raises(pyggml.DecodeError) as e:
                    ctx.decode(tokens)
                assert e.value.code == want
        with pytest.raises(pyggml.DecodeError) as e:
            ctx.decode(pyggml.Batch(tokens=[1] * 300))   # past n_batch: the reference asserts
        assert e.value.abort


def test_logits_index_errors(tiny):
    m, r = tiny
    with pyggml.Context(m) as ctx, RefContext(r) as ref:
        ctx.decode(pyggml.Batch(tokens=[1, 2, 3], output=[True, False, True]))
        ref.decode([1, 2, 3], logits=[1, 0, 1])
        for i in (0, 1, 2, -1, -2, -3, 7):
            want = ref.logits(i)
            if want is None:
                with pytest.raises(IndexError):
                    ctx.logits(i)
            else:
                assert (_bits(ctx.logits(i)) == _bits(want)).all()
        with pytest.raises(IndexError, match="batch.logits\\[1\\] != true"):
            ctx.logits(1)


def test_unsorted_outputs_are_reordered(tiny):
    # per-sequence streams split the batch with split_equal: outputs come out of order
    m, r = tiny
    cp = {"n_ctx": 512, "n_seq_max": 2, "n_ubatch": 8}
    toks = [5, 6, 7, 8, 9, 10]
    seqs = [[1], [0], [1], [0], [1], [0]]
    pos = [0, 0, 1, 1, 2, 2]
    with pyggml.Context(m, **cp) as ctx, RefContext(r, **cp) as ref:
        ctx.decode(pyggml.Batch(tokens=toks, pos=pos, seq_ids=seqs, output=True))
        assert ref.decode(toks, pos=pos, seq_ids=seqs, logits=[1] * 6) == 0
        assert ctx.outputs.swaps   # the reference's lazy swaps are pending
        assert (_bits(ctx.logits_all()) == _bits(ref.logits_all())).all()


def test_placement_matches_and_amx_is_skipped(tiny):
    m, r = tiny
    assert sorted([n, b, s] for n, b, s in m.placement) == sorted(
        [t["name"], t["buft"], t["nbytes"]] for t in r.placement)
    assert "AMX" not in [b.name for b in buft.cpu_buft_list(True)]


def test_graph_reuse_counts(smollm2):
    m, r = smollm2
    toks = m.vocab.tokenize("Hello there, general Kenobi.", add_special=True)
    with pyggml.Context(m, n_threads=2) as ctx, RefContext(r, n_threads=2) as ref:
        ctx.decode(toks)
        ref.decode(toks)
        for i in range(6):
            ctx.decode(pyggml.Batch(tokens=[42], pos=[len(toks) + i]))
            ref.decode([42], pos=[len(toks) + i])
        ref.logits(-1)   # the reference's perf counters catch up on a read
        assert ctx.stats()["graphs_reused"] == ref.stats()["n_reused"] == 5


# ---- a seeded slice of the parity matrix ---------------------------------------------------------

_SLICE = ("smollm2-p7-t2-faauto", "smollm2-split32x7-p30", "tiny-q4_0-tied-x1-t1", "tiny-f16-qkv-bias-x0",
          "multi1-", "multi2-", "fail-noslot", "fail-abort", "fail-invalid", "smollm2-greedy0", "kvtype-",
          "rope2-")


def test_parity_slice():
    opts = pyggml.parity.Options()
    n_rows = 0
    progs = [p for p in pd._programs(opts) if p[0].startswith(_SLICE)]
    assert len(progs) >= len(_SLICE)
    pairs: dict = {}
    try:
        for name, key, load, cp, prog in progs:
            extra = load.get("use_extra_bufts", True)
            if (key, extra) not in pairs:
                path = pd.corpus.smollm2() if key == "smollm2" else pd.tiny_path(key)
                pairs[(key, extra)] = (pyggml.Model.load(path, use_extra_bufts=extra),
                                       RefModel(str(path), use_extra_bufts=extra))
            om, rm = pairs[(key, extra)]
            ours, ref = pd._Ours(om, cp), pd._Ref(rm, cp)
            try:
                for case in pd.run_program(ours, ref, pd._resolve(prog, ref), name):
                    assert case.ours == case.reference, case.name
                    n_rows += case.name.startswith("row/")
            finally:
                ours.close()
                ref.close()
    finally:
        for om, rm in pairs.values():
            om.close()
            rm.close()
    assert n_rows >= 50


# ---- randomized differential ----------------------------------------------------------------------

@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_batches_match_the_reference(tiny, data):
    m, r = tiny
    n_seq = data.draw(st.integers(1, 3))
    unified = data.draw(st.booleans())
    cp = {"n_ctx": 256 * (1 if unified else n_seq), "n_batch": 64, "n_seq_max": n_seq, "kv_unified": unified,
          "n_ubatch": data.draw(st.sampled_from([4, 16, 64])),
          "flash_attn": data.draw(st.sampled_from(["auto", "off"])),
          "n_threads": 1, "n_threads_batch": data.draw(st.sampled_from([1, 2]))}
    ours, ref = pd._Ours(m, cp), pd._Ref(r, cp)
    nxt = [0] * n_seq
    steps = []
    for _ in range(data.draw(st.integers(1, 3))):
        n = data.draw(st.integers(1, 12))
        toks, pos, seqs = [], [], []
        for _ in range(n):
            s = data.draw(st.integers(0, n_seq - 1))
            toks.append(data.draw(st.integers(0, 39)))
            pos.append(nxt[s])
            nxt[s] += 1
            seqs.append([s])
        out = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
        steps.append({"op": "decode", "tokens": toks, "pos": pos, "seq_ids": seqs, "output": out})
    try:
        for case in pd.run_program(ours, ref, {"steps": steps}, "random", graphs=False):
            assert case.ours == case.reference, case.name
    finally:
        ours.close()
        ref.close()


# ---- MoE ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["q8_0-moe8x2"])
def test_moe_logits_and_graph_match_the_reference(key):
    # a tiny MoE llama (8 experts, 2 used): router softmax, top-k, mul_mat_id experts
    path = pd.tiny_path(key)
    m, r = pyggml.Model.load(path), RefModel(str(path))
    cp = {"n_ctx": 256, "n_ubatch": 8, "n_threads": 2, "n_threads_batch": 2, "flash_attn": "off"}
    toks = [1, 5, 9, 3, 7, 22, 31, 11, 2, 17, 8]
    prog = {"steps": [{"op": "decode", "tokens": toks, "output": [True] * len(toks)},
                      {"op": "decode", "tokens": [4], "pos": [len(toks)]}]}
    ours, ref = pd._Ours(m, cp), pd._Ref(r, cp)
    names = []
    try:
        for case in pd.run_program(ours, ref, prog, "moe"):
            assert case.ours == case.reference, case.name
            names.append(case.name)
            if case.name.startswith("graph/"):
                assert any(n["op"] == "MUL_MAT_ID" for n in case.ours["nodes"])
    finally:
        ours.close()
        ref.close()
        m.close()
        r.close()
    assert sum(n.startswith("row/") for n in names) == 12
    assert sum(n.startswith("graph/") for n in names) == 2


def test_closed_context_or_model_raises():
    path = pd.tiny_path("f32")
    m = pyggml.Model.load(path)
    ctx = pyggml.Context(m)
    ctx.decode([1, 2])
    m.close()
    with pytest.raises(ContextError):
        ctx.decode([3])
    ctx.close()
    with pytest.raises(ContextError):
        ctx.decode([3])
