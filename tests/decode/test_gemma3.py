"""gemma3 and its iSWA memory against the running reference: hparams and memory layout, a slice of
the gemma3 decode parity programs (tiny models and the real 270M), and a randomized differential
over tiny gemma3 programs with sequence operations."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyggml
from pyggml.memory.iswa import KVCacheISWA, swa_size
from pyggml.memory.kv_cache import KVCache
from pyggml.parity import Options, corpus
from pyggml.parity import decode as pd
from pyggml.reference.decode import RefContext, RefModel

_KEY = "g3-f32-w8p2"  # window 8, every 2nd layer global, RoPE base 5000 on the window, softcap 15


@pytest.fixture(scope="module")
def tiny():
    path = pd.tiny_path(_KEY)
    m, r = pyggml.Model.load(path), RefModel(str(path))
    yield m, r
    m.close()
    r.close()


def _run(m, r, cp, prog, name, graphs=True) -> int:
    ours, ref = pd._Ours(m, cp), pd._Ref(r, cp)
    n = 0
    try:
        for case in pd.run_program(ours, ref, pd._resolve(prog, ref), name, graphs=graphs):
            assert case.ours == case.reference, case.name
            n += case.name.startswith("row/")
    finally:
        ours.close()
        ref.close()
    return n


# ---- unit -------------------------------------------------------------------------------------

def test_hparams(tiny):
    hp = tiny[0].hparams
    assert hp.n_swa == 8 and hp.swa_type == 1
    assert hp.swa_layers == (True, False, True)  # pattern 2: the last of each pair is global
    assert hp.rope_type == 2 and hp.rope_freq_base_train_swa == 5000.0
    assert hp.f_final_logit_softcapping == 15.0
    assert hp.f_attention_scale == 0.25  # 1/sqrt(head_dim 16)


@pytest.mark.parametrize("swa_full", [False, True])
def test_iswa_memory_layout(tiny, swa_full):
    m, r = tiny
    cp = {"n_ctx": 1024, "n_ubatch": 16, "swa_full": swa_full}
    with pyggml.Context(m, **cp) as ctx, RefContext(r, **cp) as ref:
        assert isinstance(ctx.kv, KVCacheISWA)
        want = swa_size(1024, 8, n_seq_max=1, n_ubatch=16, unified=False, swa_full=swa_full)
        assert (ctx.kv.base.size, ctx.kv.swa.size) == (1024, want)
        assert want == (1024 if swa_full else 256)
        sizes = [c["state"]["streams"][0]["size"] for c in ref.kv_state()["caches"]]
        assert sizes == [1024, want]
        # each cache stores its own layers, the tensors keep the model's layer numbers
        (_, kvt_base), (_, kvt_swa) = ctx.caches
        assert (kvt_base.layers, kvt_swa.layers) == ([1], [0, 2])


def test_no_window_means_one_cache():
    path = pd.tiny_path("g3-f16-tied-nowin")
    with pyggml.Model.load(path) as m, pyggml.Context(m) as ctx:
        assert type(ctx.kv) is KVCache and m.hparams.swa_type == 0


def test_graph_has_the_gemma3_nodes(tiny):
    m, r = tiny
    ours = pd._Ours(m, {"n_ctx": 256})
    try:
        assert ours.decode({"tokens": [1, 2, 3, 4]}) == 0
        g = ours.graph()
    finally:
        ours.close()
    names = {n["name"] for n in g["nodes"]}
    assert {"inp_scaled", "Qcur_normed-0", "Kcur_normed-2", "ffn_geglu-1", "sa_out-0"} <= names
    assert sum(n["op"] == "TANH" for n in g["nodes"]) == 1  # final soft-capping
    masks = [t for t in g["leafs"] + g["nodes"] if t["name"] == "attn_inp_kq_mask"]
    assert len(masks) == 2  # base and SWA masks under one name


def test_memory_ops_act_on_both_caches(tiny):
    m, _ = tiny
    with pyggml.Context(m, n_ctx=256, swa_full=False) as ctx:
        ctx.decode(list(range(1, 31)))
        ctx.memory.seq_rm(0, 20, -1)
        assert ctx.kv.base.seq_pos_max(0) == ctx.kv.swa.seq_pos_max(0) == 19
        assert ctx.memory.seq_pos_min(0) == ctx.kv.swa.seq_pos_min(0)


# ---- a slice of the parity programs ----------------------------------------------------------------

_SLICE = ("tiny-g3-f32-", "tiny-g3-q8_0-", "multi0-g3-", "kshift-g3-f32-w8p2-swafull0")


def test_parity_slice():
    progs = [p for p in pd._gemma3_programs(Options()) if p[0].startswith(_SLICE)]
    assert len(progs) >= 6
    pairs: dict[tuple[str, bool], tuple] = {}
    n_rows = 0
    try:
        for name, key, load, cp, prog in progs:
            extra = load.get("use_extra_bufts", True)
            if (key, extra) not in pairs:
                path = pd.tiny_path(key)
                pairs[(key, extra)] = (pyggml.Model.load(path, use_extra_bufts=extra),
                                       RefModel(str(path), use_extra_bufts=extra))
            n_rows += _run(*pairs[(key, extra)], cp, prog, name)
    finally:
        for m, r in pairs.values():
            m.close()
            r.close()
    assert n_rows >= 60


def test_real_model_past_the_window():
    # gemma-3-270m Q4_K_M: a prompt past its 512-token window, then a short greedy stream
    path = corpus.gemma3()
    m, r = pyggml.Model.load(path), RefModel(str(path))
    try:
        want = sorted([t["name"], t["buft"], t["nbytes"]] for t in r.placement)
        assert sorted(map(list, m.placement)) == want
        prog = pd._prompt_program(pd._gemma3_tokens(520), outputs="last", n_gen=4)
        assert _run(m, r, {"n_ctx": 1024, "n_threads": 2, "n_threads_batch": 2}, prog, "real") == 5
    finally:
        m.close()
        r.close()


# ---- randomized differential ----------------------------------------------------------------------

_OPS = ("seq_rm", "seq_add", "seq_cp", "seq_keep", "seq_div")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_programs_match_the_reference(tiny, data):
    m, r = tiny
    n_seq = data.draw(st.integers(1, 3))
    unified = data.draw(st.booleans())
    cp = {"n_ctx": 256 * (1 if unified else n_seq), "n_batch": 64, "n_seq_max": n_seq, "kv_unified": unified,
          "n_ubatch": data.draw(st.sampled_from([4, 16, 64])), "swa_full": data.draw(st.booleans()),
          "flash_attn": data.draw(st.sampled_from(["auto", "off"])), "n_threads": 1, "n_threads_batch": 2}
    # a prompt batch past the window: each token continues its sequence
    seqs = data.draw(st.lists(st.integers(0, n_seq - 1), min_size=1, max_size=40))
    nxt = [0] * n_seq
    pos = []
    for s in seqs:
        pos.append(nxt[s])
        nxt[s] += 1
    steps: list[dict] = [{"op": "decode", "tokens": [(3 * i + 1) % 40 for i in range(len(seqs))], "pos": pos,
                          "seq_ids": [[s] for s in seqs], "output": data.draw(st.booleans())}]
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(_OPS))
        s = data.draw(st.integers(0, n_seq - 1))
        k = data.draw(st.integers(0, 20))
        args = {"seq_rm": [s, k, -1], "seq_add": [s, 2, -1, k % 7 - 3], "seq_cp": [s, (s + 1) % n_seq, 0, -1],
                "seq_keep": [s], "seq_div": [s, 0, -1, 2]}[op]
        steps.append({"op": "mem", "name": op, "args": args})
        steps.append({"op": "decode_cont", "seqs": list(range(n_seq)), "n": data.draw(st.integers(1, 10))})
    _run(m, r, cp, {"steps": steps}, "random", graphs=False)
