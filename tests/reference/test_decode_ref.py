"""The reference's own llama_decode through the probe (pyggml.reference.decode): outcomes, outputs
and state dumps of SmolLM2 and tiny generated models.  No logit values are hard-coded (they
depend on the host's kernels); the tests check what the reference guarantees."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from gguf import GGMLQuantizationType as QT

from pyggml.ggml import Context, GGMLType, Graph
from pyggml.model import gguf
from pyggml.parity import tinymodels as tm
from pyggml.reference.decode import RefContext, RefError, RefModel, graph_dump
from pyggml.vocab.vocab import Vocab

CTX = {"n_ctx": 256, "n_threads": 2, "n_threads_batch": 2}
CPU_BUFTS = {"CPU", "CPU_Mapped"}


@pytest.fixture(scope="module")
def smol(smollm2_path):
    with RefModel(smollm2_path) as m:
        yield m


@pytest.fixture(scope="module")
def prompt(smollm2_path) -> list[int]:
    return Vocab.from_gguf(smollm2_path).tokenize("The capital of France is", add_special=True)


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32)


def check_placement(m: RefModel, file_names: list[str], use_extra_bufts: bool) -> None:
    names = Counter(t["name"] for t in m.placement)
    assert set(names) == set(file_names)
    # only a tied output is a second tensor of the same name, in another buffer type
    dups = {n for n, k in names.items() if k > 1}
    assert dups <= {"token_embd.weight"}
    for n in dups:
        assert len({t["buft"] for t in m.placement if t["name"] == n}) == 2
    assert all(t["nbytes"] > 0 for t in m.placement)
    assert {t["buft"] for t in m.placement} == {b["buft"] for b in m.buffers}
    if not use_extra_bufts:
        assert {t["buft"] for t in m.placement} <= CPU_BUFTS
        assert not dups


@pytest.mark.parametrize("use_extra_bufts", [True, False])
def test_placement_lists_every_tensor(smollm2_path, use_extra_bufts):
    file_names = [t.name.decode() for t in gguf.parse_file(smollm2_path).tensors]
    with RefModel(smollm2_path, use_extra_bufts=use_extra_bufts) as m:
        check_placement(m, file_names, use_extra_bufts)


def test_bad_path_raises(tmp_path):
    with pytest.raises(RefError, match="."):
        RefModel(tmp_path / "missing.gguf")


def test_context_params(smol):
    with RefContext(smol, flash_attn="off", n_ctx=300, n_ubatch=64, n_threads=2) as c:
        info = c.info
        assert info["flash_attn"] is False
        assert info["n_ctx"] == 512  # padded to 256, after n_batch = min(n_ctx, n_batch) took 300
        assert info["n_batch"] == 300 and info["n_ubatch"] == 64
    with RefContext(smol, flash_attn="on", type_k="q8_0", type_v="q8_0", **CTX) as c:
        assert c.info["flash_attn"] is True
    with RefContext(smol, **CTX) as c:
        assert isinstance(c.info["flash_attn"], bool)  # auto, resolved by the reference
    with pytest.raises(RefError, match="unknown context param"):
        RefContext(smol, n_ctxx=1)


def test_prompt_decode(smol, prompt):
    n = len(prompt)
    with RefContext(smol, **CTX) as c:
        assert c.graph() is None
        assert c.decode(prompt) == 0
        assert c.n_outputs == 1
        last = c.logits(-1)
        assert last is not None and np.isfinite(last).all()
        assert np.array_equal(bits(c.logits(n - 1)), bits(last))
        assert np.array_equal(bits(c.logits_all()), bits(last[None]))
        assert c.logits(0) is None and "invalid logits id" in c.last_log
        kv = c.kv_state()
        assert kv["kind"] == "kv"
        (stream,) = kv["caches"][0]["state"]["streams"]
        assert stream["used"] == n and stream["head"] == n
        assert [cell[:2] for cell in stream["cells"]] == [[i, i] for i in range(n)]
        assert [cell[5] for cell in stream["cells"]] == prompt  # ext.tok
        assert all(cell[6] == [0] for cell in stream["cells"])
        assert c.memory("seq_pos_max", 0) == n - 1
        assert c.stats()["n_p_eval"] == n
        # a generated token: positions continue from the memory
        assert c.decode([int(np.argmax(last))]) == 0
        assert c.memory("seq_pos_max", 0) == n
        assert c.memory("seq_rm", 0, 2, -1) == 1
        assert c.memory("seq_pos_max", 0) == 1
        assert c.memory("clear", 1) == 0 and c.memory("seq_pos_min", 0) == -1


def test_deterministic_across_contexts(smol, prompt):
    n = len(prompt)
    rows = []
    for _ in range(2):
        with RefContext(smol, **CTX) as c:
            assert c.decode(prompt, pos=range(n), seq_ids=[[0]] * n, logits=[True] * n) == 0
            assert c.n_outputs == n
            all_rows = c.logits_all()
            assert all_rows.shape == (n, c.n_vocab) and np.isfinite(all_rows).all()
            for i in range(n):
                assert np.array_equal(bits(c.logits(i)), bits(all_rows[i]))
            rows.append(all_rows)
    assert np.array_equal(bits(rows[0]), bits(rows[1]))


def check_refs(g: dict) -> None:
    """Every src/view_src ref points at an earlier node, a leaf or a named outside tensor."""
    for i, node in enumerate(g["nodes"]):
        for ref in node["src"] + [node["view_src"]]:
            if ref is None:
                continue
            if "node" in ref:
                assert ref["node"] < i
            elif "leaf" in ref:
                assert ref["leaf"] < len(g["leafs"])
            else:
                assert isinstance(ref["tensor"], str)
        assert len(node["op_params"]) == 16 and len(node["ne"]) == 4 and len(node["nb"]) == 4


def test_graph_dump(smol, prompt):
    with RefContext(smol, **CTX) as c:
        assert c.decode(prompt) == 0
        g = c.graph()
    check_refs(g)
    by_name = {}
    for node in g["nodes"]:
        by_name.setdefault(node["name"], node)
    names = ("result_output", "result_norm", "Qcur-0", "kqv_out-0", "attn_out-0", "l_out-29", "ffn_swiglu-0")
    for name in names:
        assert name in by_name, name
    assert by_name["result_output"]["op"] == "MUL_MAT"
    assert by_name["ffn_swiglu-0"]["op"] == "SWIGLU"
    leafs = {leaf["name"]: leaf for leaf in g["leafs"]}
    assert leafs["inp_tokens"]["ne"] == [len(prompt), 1, 1, 1] and leafs["inp_tokens"]["type"] == "i32"
    assert "token_embd.weight" in leafs


def test_no_kv_slot(smol):
    # 256 cells: 200 used, a batch of 100 does not fit (1, state unchanged), 56 do
    with RefContext(smol, **CTX) as c:
        assert c.info["n_ctx"] == 256
        assert c.decode(np.arange(200) + 1000) == 0
        assert c.decode(np.arange(100) + 1000) == 1
        (stream,) = c.kv_state()["caches"][0]["state"]["streams"]
        assert stream["used"] == 200
        assert c.decode(np.arange(56) + 1000) == 0
        assert c.memory("seq_pos_max", 0) == 255


def test_invalid_batch(smol):
    with RefContext(smol, **CTX) as c:
        assert c.decode([1, 2], pos=[0, 1], seq_ids=[[0], [5]]) == -1
        assert "seq_id" in c.last_log
        assert c.decode([1, 2], pos=[0, 5]) == -1  # positions of a sequence must be consecutive
        assert c.kv_state()["caches"][0]["state"]["streams"][0]["used"] == 0


@pytest.mark.parametrize("kv_unified", [False, True])
def test_two_sequences(smol, kv_unified):
    with RefContext(smol, n_ctx=512, n_seq_max=2, kv_unified=kv_unified, n_threads=2) as c:
        seq_ids = [[0], [0], [1], [1]]
        assert c.decode([1, 2, 3, 4], pos=[0, 1, 0, 1], seq_ids=seq_ids, logits=[0, 1, 0, 1]) == 0
        assert c.n_outputs == 2
        rows = c.logits_all()
        assert np.array_equal(bits(rows[0]), bits(c.logits(1)))
        assert np.array_equal(bits(rows[1]), bits(c.logits(3)))
        state = c.kv_state()["caches"][0]["state"]
        assert state["seq_pos"] == [[0, 1], [0, 1]]
        streams = state["streams"]
        assert len(streams) == (1 if kv_unified else 2)
        assert sum(s["used"] for s in streams) == 4
        seqs = sorted(cell[6][0] for s in streams for cell in s["cells"])
        assert seqs == [0, 0, 1, 1]

def test_abort(smol, prompt):
    with RefContext(smol, **CTX) as c:
        assert c.decode(prompt) == 0
        c.set_abort(0)
        assert c.decode([5]) == 2
        assert c.stats()["abort_calls"] >= 1
        assert c.memory("seq_pos_max", 0) == len(prompt) - 1  # the failed ubatch is removed
        c.set_abort(-1)
        c.set_threads(1, 1)
        assert c.decode([5]) == 0
        assert c.memory("seq_pos_max", 0) == len(prompt)


TINY = [tm.TinySpec(qtype=QT.Q4_0, tied=True), tm.TinySpec(qtype=QT.F16, n_layer=1)]


@pytest.mark.parametrize("spec", TINY, ids=lambda s: s.tag)
def test_tiny_models(tmp_path, spec):
    model = tm.build(spec)
    path = tm.write(model, tmp_path, spec.tag)
    file_names = [t.name for t in model.tensors]
    outs = []
    for use_extra_bufts in (True, False):
        with RefModel(path, use_extra_bufts=use_extra_bufts) as m:
            check_placement(m, file_names, use_extra_bufts)
            with RefContext(m, n_ctx=256, n_threads=1, n_threads_batch=1) as c:
                assert c.decode([1, 5, 6, 7, 8], logits=[True] * 5) == 0
                rows = c.logits_all()
                assert rows.shape == (5, spec.n_vocab) and np.isfinite(rows).all()
                g = c.graph()
                check_refs(g)
                assert g["nodes"][-1]["name"] == "result_output"
                outs.append(rows)
    # the same weights either way; kernels may differ (repacked or not), so only closeness
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=5e-2)


def test_graph_dump_of_pyggml_graph():
    ctx = Context.for_tensors(8, graph_size=16)
    w = ctx.new_tensor(GGMLType.F32, (8, 4), name="w")
    x = ctx.new_tensor(GGMLType.F32, (8, 3), name="x").set_input()
    y = ctx.silu(ctx.mul_mat(w, x))
    y.name = "y"
    g = Graph(ctx, 16).build_forward_expand(y)
    d = graph_dump(g.ptr)
    check_refs(d)
    assert [n["op"] for n in d["nodes"]] == ["MUL_MAT", "SILU"]
    assert [leaf["name"] for leaf in d["leafs"]] == ["w", "x"]
    assert d["nodes"][0]["src"] == [{"leaf": 0}, {"leaf": 1}]
    assert d["nodes"][1]["src"] == [{"node": 0}] and d["nodes"][1]["name"] == "y"
    assert d["leafs"][1]["flags"] & 1  # GGML_TENSOR_FLAG_INPUT
