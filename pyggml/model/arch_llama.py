"""Tensors the llama architecture declares, in the order the reference creates them.

llama.cpp: src/models/llama.cpp ``llama_model_llama::load_arch_tensors``,
src/llama-model.cpp ``create_tensor_qkv`` and the generic ``.scale``/``.input_scale`` pass of
``llama_model_base::load_tensors``.  Shapes are in ggml ``ne`` order (ne[0] fastest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .hparams import LlamaHParams

NOT_REQUIRED = 1 << 0   # llama_model_loader::TENSOR_NOT_REQUIRED
DUPLICATED = 1 << 1     # TENSOR_DUPLICATED: the same file tensor used a second time


@dataclass(frozen=True)
class TensorDecl:
    name: str
    ne: tuple[int, ...]   # expected shape, ggml order; missing trailing dims must be 1
    flags: int = 0


# A declaration step gets ``present(name)`` (is the tensor in the file?) so that the
# "fused or separate" and "output or tied" choices follow the file, as create_tensor's
# NULL results do in the reference.
Present = Callable[[str], bool]


def declare(hp: LlamaHParams, present: Present) -> Iterator[TensorDecl]:
    n_embd, n_layer = hp.n_embd, hp.n_layer
    n_vocab = hp.n_vocab
    n_head, n_head_kv = hp.n_head[0], hp.n_head_kv[0]
    head_k, head_v, n_rot = hp.n_embd_head_k, hp.n_embd_head_v, hp.n_rot
    n_embd_q = head_k * n_head
    n_embd_k_gqa, n_embd_v_gqa = head_k * n_head_kv, head_v * n_head_kv
    n_ff, n_expert = hp.n_ff[0], hp.n_expert

    yield TensorDecl("token_embd.weight", (n_embd, n_vocab))
    yield TensorDecl("output_norm.weight", (n_embd,))
    has_output = present("output.weight")
    yield TensorDecl("output.weight", (n_embd, n_vocab), NOT_REQUIRED)
    if not has_output:  # tied embeddings: token_embd is reused as the output projection
        yield TensorDecl("token_embd.weight", (n_embd, n_vocab), DUPLICATED)

    per_layer: list[dict[str, bool]] = []
    for i in range(n_layer):
        blk = f"blk.{i}."
        made: dict[str, bool] = {}

        def t(name: str, ne: tuple[int, ...], flags: int = 0, _made=made) -> TensorDecl:
            _made[name] = present(name) or not flags & NOT_REQUIRED
            return TensorDecl(name, ne, flags)

        yield t(blk + "attn_norm.weight", (n_embd,))
        yield from declare_qkv(t, present, blk, n_embd, n_embd_q, n_embd_k_gqa, n_embd_v_gqa)
        yield t(blk + "attn_output.weight", (n_embd_q, n_embd))
        yield t(blk + "attn_output.bias", (n_embd,), NOT_REQUIRED)
        yield t(blk + "ffn_norm.weight", (n_embd,))
        dup = DUPLICATED if i != 0 else 0  # one rope-factor tensor shared by every layer
        if hp.rope_scaling_type_train == 3:  # LLAMA_ROPE_SCALING_TYPE_LONGROPE
            yield TensorDecl("rope_factors_long.weight", (n_rot // 2,), NOT_REQUIRED | dup)
            yield TensorDecl("rope_factors_short.weight", (n_rot // 2,), NOT_REQUIRED | dup)
        else:
            yield TensorDecl("rope_freqs.weight", (n_rot // 2,), NOT_REQUIRED | dup)
        if n_expert == 0:
            yield t(blk + "ffn_gate.weight", (n_embd, n_ff))
            yield t(blk + "ffn_down.weight", (n_ff, n_embd))
            yield t(blk + "ffn_up.weight", (n_embd, n_ff))
            yield t(blk + "ffn_gate.bias", (n_ff,), NOT_REQUIRED)
            yield t(blk + "ffn_down.bias", (n_embd,), NOT_REQUIRED)
            yield t(blk + "ffn_up.bias", (n_ff,), NOT_REQUIRED)
        else:
            yield t(blk + "ffn_gate_inp.weight", (n_embd, n_expert))
            yield t(blk + "ffn_gate_exps.weight", (n_embd, n_ff, n_expert), NOT_REQUIRED)
            yield t(blk + "ffn_down_exps.weight", (n_ff, n_embd, n_expert))
            yield t(blk + "ffn_up_exps.weight", (n_embd, n_ff, n_expert))
        per_layer.append(made)
    yield from scale_decls(per_layer, n_expert)


def scale_decls(per_layer: list[dict[str, bool]], n_expert: int) -> Iterator[TensorDecl]:
    """llama_model_base::load_tensors: optional per-tensor scales of every weight that exists
    (``per_layer[i]``: which of layer i's tensors were created)."""
    for i, made in enumerate(per_layer):
        blk = f"blk.{i}."
        for suffix in ("scale", "input_scale"):
            for base in _SCALED:
                if made.get(blk + base + ".weight"):
                    ne = (n_expert,) if base.endswith("_exps") else (1,)
                    yield TensorDecl(f"{blk}{base}.{suffix}", ne, NOT_REQUIRED)


def declare_qkv(t: Callable[..., TensorDecl], present: Present, blk: str, n_embd: int, n_q: int, n_k: int,
                n_v: int) -> Iterator[TensorDecl]:
    """create_tensor_qkv: a fused QKV tensor, else separate Q/K/V (+ optional biases)."""
    n_qkv = n_q + n_k + n_v
    yield t(blk + "attn_qkv.weight", (n_embd, n_qkv), NOT_REQUIRED)
    if present(blk + "attn_qkv.weight"):
        has_qkv_b = present(blk + "attn_qkv.bias")
        yield t(blk + "attn_qkv.bias", (n_qkv,), NOT_REQUIRED)
        if has_qkv_b:
            return
    else:
        yield t(blk + "attn_q.weight", (n_embd, n_q))
        yield t(blk + "attn_k.weight", (n_embd, n_k))
        yield t(blk + "attn_v.weight", (n_embd, n_v))
    yield t(blk + "attn_q.bias", (n_q,), NOT_REQUIRED)
    yield t(blk + "attn_k.bias", (n_k,), NOT_REQUIRED)
    yield t(blk + "attn_v.bias", (n_v,), NOT_REQUIRED)


# weights that get optional scales, in the order of the generic pass (llama arch subset)
_SCALED = ("attn_q", "attn_k", "attn_v", "attn_output", "attn_qkv",
           "ffn_gate", "ffn_down", "ffn_up", "ffn_gate_exps", "ffn_down_exps", "ffn_up_exps")
