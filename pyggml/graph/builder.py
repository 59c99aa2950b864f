"""The shared graph toolbox: node naming and the layers every architecture is built from.

llama.cpp: src/llama-graph.cpp ``llm_graph_context`` (``cb``, ``build_norm``, ``build_qkv``,
``build_ffn``, ``build_lora_mm``, ``build_inp_embd``, ``build_inp_pos``, ``build_inp_out_ids``,
``build_attn_inp_kv``, ``build_attn``, ``build_attn_mha``, ``build_moe_ffn``,
``build_lora_mm_id``; for encoders ``build_attn_inp_no_cache``, ``build_inp_mean``,
``build_inp_cls``, ``build_pooling``) and src/llama-context.cpp
``graph_get_cb`` (the ``"%s-%d"`` names).  Every op is created in the reference's order, with
its op params, so that the two graphs are the same node for node; ggml_build_forward_expand is
called where the reference calls it, because it decides the node order (and with it the CPU
backend's op fusion).  All calls are raw cffi (``ggml()``): a graph is built once and reused.

Not modelled (absent from the llama-family models pyggml loads): LoRA adapters, control
vectors, the precision policy of ``general.tensor_extra`` models, KV rotation (quantized KV
caches), MoE expert groups and expert-selection biases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gguf import GGMLQuantizationType as QT

from .._native import ffi, ggml
from ..batch import UBatch
from ..memory.kv_cache import KVCache, SlotInfo
from ..memory.kv_tensors import KVTensors
from .inputs import InpAttnKV, InpAttnNoCache, InpCls, InpEmbd, InpMean, InpOutIds, InpPos
from .result import GraphResult

F32, F16, I32 = int(QT.F32), int(QT.F16), int(QT.I32)
POOLING_NONE, POOLING_MEAN, POOLING_CLS, POOLING_LAST, POOLING_RANK = range(5)  # enum llama_pooling_type
GGML_PREC_F32 = 10


@dataclass(frozen=True)
class CParams:
    """The context parameters a graph reads (llama_cparams, the llama subset), float32 values."""

    n_ctx: int
    n_ctx_seq: int
    n_ctx_orig_yarn: int
    rope_freq_base: float
    rope_freq_scale: float
    yarn_ext_factor: float
    yarn_attn_factor: float
    yarn_beta_fast: float
    yarn_beta_slow: float
    flash_attn: bool
    causal_attn: bool
    embeddings: bool
    kv_unified: bool
    pooling_type: int = 0  # enum llama_pooling_type, resolved (never UNSPECIFIED)

    def rope_args(self, n_rot: int, rope_type: int, freq: tuple[float, float] | None = None) -> tuple:
        """ggml_rope_ext's arguments after the input/positions/factors: (n_dims, mode,
        n_ctx_orig, freq_base, freq_scale, ext_factor, attn_factor, beta_fast, beta_slow).
        ``freq``: a layer's own (base, scale) instead of the context's (sliding-window layers)."""
        base, scale = freq or (self.rope_freq_base, self.rope_freq_scale)
        return (n_rot, rope_type, self.n_ctx_orig_yarn, base, scale,
                self.yarn_ext_factor, self.yarn_attn_factor, self.yarn_beta_fast, self.yarn_beta_slow)

    def layer_rope_args(self, hp: Any, il: int, n_rot: int) -> tuple:
        """``rope_args`` of layer il: llama_model::get_rope_freq_base/scale give a
        sliding-window layer the training values of the window's RoPE."""
        freq = (hp.rope_freq_base_train_swa, hp.rope_freq_scale_train_swa) if hp.is_swa(il) else None
        return self.rope_args(n_rot, hp.rope_type, freq)


class GraphBuilder:
    """One graph under construction (llm_graph_context)."""

    def __init__(
        self,
        *,
        model: Any,
        cparams: CParams,
        ubatch: UBatch,
        n_outputs: int,
        res: GraphResult,
        kv: KVCache | None,
        kvt: KVTensors | None,
        sinfo: SlotInfo | None,
        n_kv: int,
        kv_swa: KVCache | None = None,
        kvt_swa: KVTensors | None = None,
        sinfo_swa: SlotInfo | None = None,
        n_kv_swa: int = 0,
    ) -> None:
        """``*_swa``: the sliding-window cache of an iSWA memory (the others are its base)."""
        self.lib = ggml()
        self.model, self.hp, self.cp = model, model.hparams, cparams
        self.ub, self.n_tokens, self.n_outputs = ubatch, ubatch.n_tokens, n_outputs
        self.res, self.ctx0, self.gf = res, res.ctx, res.gf
        self.kv, self.kvt, self.sinfo, self.n_kv = kv, kvt, sinfo, n_kv
        self.kv_swa, self.kvt_swa, self.sinfo_swa, self.n_kv_swa = kv_swa, kvt_swa, sinfo_swa, n_kv_swa

    # ------------------------------------------------------------------ naming
    def cb(self, t: Any, name: str, il: int) -> Any:
        """graph_get_cb: "name-il" for a layer's node, "name" otherwise.  (Its other job, pinning
        "norm" nodes to a layer's backend for small batches, is a no-op with one backend.)"""
        self.lib.ggml_set_name(t, (f"{name}-{il}" if il >= 0 else name).encode())
        return t

    def expand(self, t: Any) -> None:
        self.lib.ggml_build_forward_expand(self.gf, t)

    # ------------------------------------------------------------------ inputs
    def inp_embd(self, tok_embd: Any) -> Any:
        lib, ctx, n = self.lib, self.ctx0, self.n_tokens
        tokens = lib.ggml_new_tensor_1d(ctx, I32, n)
        self.cb(tokens, "inp_tokens", -1)
        lib.ggml_set_input(tokens)
        embd = lib.ggml_new_tensor_2d(ctx, F32, self.hp.n_embd, n)
        self.cb(embd, "inp_embd", -1)
        lib.ggml_set_input(embd)
        rows = lib.ggml_get_rows(ctx, tok_embd, tokens)
        # both paths are in the graph; the ubatch's content selects which one is computed
        inps = ffi.new("struct ggml_tensor *[2]", [rows, embd])
        cur = lib.ggml_build_forward_select(self.gf, inps, 2, 0 if self.ub.token is not None else 1)
        self.cb(cur, "embd", -1)
        self.res.inputs.append(InpEmbd(tokens, embd))
        self.expand(cur)
        return cur

    def inp_pos(self) -> Any:
        lib = self.lib
        cur = lib.ggml_new_tensor_1d(self.ctx0, I32, self.n_tokens)
        lib.ggml_set_input(cur)
        self.cb(cur, "inp_pos", -1)
        self.res.inputs.append(InpPos(cur, 1))
        return cur

    def inp_out_ids(self) -> Any:
        lib = self.lib
        cur = lib.ggml_new_tensor_1d(self.ctx0, I32, self.n_outputs)
        lib.ggml_set_input(cur)
        lib.ggml_set_name(cur, b"out_ids")
        self.res.inputs.append(InpOutIds(cur, self.n_outputs))
        return cur

    def attn_inp_kv(self) -> InpAttnKV:
        assert self.kv is not None and self.kvt is not None and self.sinfo is not None
        return self._attn_inp(self.kv, self.kvt, self.sinfo, self.n_kv, swa=False)

    def attn_inp_kv_iswa(self) -> tuple[InpAttnKV, InpAttnKV]:
        """build_attn_inp_kv_iswa: the base cache's idxs and mask, then the SWA cache's, under
        the same names (llm_graph_input_attn_kv_iswa)."""
        assert self.kv_swa is not None and self.kvt_swa is not None and self.sinfo_swa is not None
        base = self.attn_inp_kv()
        return base, self._attn_inp(self.kv_swa, self.kvt_swa, self.sinfo_swa, self.n_kv_swa, swa=True)

    def _attn_inp(self, kv: KVCache, kvt: KVTensors, sinfo: SlotInfo, n_kv: int, *, swa: bool) -> InpAttnKV:
        lib, ctx = self.lib, self.ctx0
        k_idxs = kvt.build_input_k_idxs(ctx, self.n_tokens)
        v_idxs = kvt.build_input_v_idxs(ctx, self.n_tokens)
        n_stream = 1 if self.cp.kv_unified else self.ub.n_seqs_unq
        mask = lib.ggml_new_tensor_4d(
            ctx, F16 if self.cp.flash_attn else F32, n_kv, self.n_tokens // n_stream, 1, n_stream
        )
        lib.ggml_set_input(mask)
        lib.ggml_set_name(mask, b"attn_inp_kq_mask")
        inp = InpAttnKV(
            kv,
            kvt,
            k_idxs=k_idxs,
            v_idxs=v_idxs,
            kq_mask=mask,
            causal=self.cp.causal_attn,
            sinfo=sinfo,
            swa=swa,
        )
        self.res.inputs.append(inp)
        return inp

    # ------------------------------------------------------------------ layers
    def mm(self, w: Any, cur: Any, w_s: Any = None) -> Any:
        """build_lora_mm (no adapters): W x, then the optional per-tensor scale."""
        res = self.lib.ggml_mul_mat(self.ctx0, w, cur)
        if w_s is not None:
            res = self.lib.ggml_mul(self.ctx0, res, w_s)
        return res

    def norm_rms(self, cur: Any, mw: Any, il: int) -> Any:
        """build_norm(LLM_NORM_RMS) with a weight and no bias."""
        cur = self.lib.ggml_rms_norm(self.ctx0, cur, self.hp.f_norm_rms_eps)
        self.cb(cur, "norm", il)
        return self.lib.ggml_mul(self.ctx0, cur, mw)

    def qkv(self, w: dict[str, Any], cur: Any, il: int) -> tuple[Any, Any, Any]:
        """build_qkv: fused (attn_qkv) or separate Q/K/V projections, reshaped per head."""
        lib, ctx, hp, n = self.lib, self.ctx0, self.hp, self.n_tokens
        hd, n_head, n_head_kv = hp.n_embd_head_k, hp.n_head[il], hp.n_head_kv[il]
        if w.get("attn_qkv.weight") is not None:
            qkv = self.mm(w["attn_qkv.weight"], cur, w.get("attn_qkv.scale"))
            self.cb(qkv, "wqkv", il)
            if w.get("attn_qkv.bias") is not None:
                qkv = lib.ggml_add(ctx, qkv, w["attn_qkv.bias"])
                self.cb(qkv, "wqkv_b", il)
            elif all(w.get(f"attn_{x}.bias") is not None for x in "qkv"):
                b = lib.ggml_concat(
                    ctx, lib.ggml_concat(ctx, w["attn_q.bias"], w["attn_k.bias"], 0), w["attn_v.bias"], 0
                )
                qkv = lib.ggml_add(ctx, qkv, b)
                self.cb(qkv, "wqkv_b", il)
            t = qkv.type
            row = lib.ggml_row_size
            q = lib.ggml_view_3d(ctx, qkv, hd, n_head, n, row(t, hd), qkv.nb[1], 0)
            k = lib.ggml_view_3d(ctx, qkv, hd, n_head_kv, n, row(t, hd), qkv.nb[1], row(t, hd * n_head))
            v = lib.ggml_view_3d(
                ctx, qkv, hd, n_head_kv, n, row(t, hd), qkv.nb[1], row(t, hd * n_head + hd * n_head_kv)
            )
        else:
            out = []
            for x, nh in (("q", n_head), ("k", n_head_kv), ("v", n_head_kv)):
                name = f"{x.upper()}cur"
                t = self.mm(w[f"attn_{x}.weight"], cur, w.get(f"attn_{x}.scale"))
                self.cb(t, name, il)
                if w.get(f"attn_{x}.bias") is not None:
                    t = lib.ggml_add(ctx, t, w[f"attn_{x}.bias"])
                    self.cb(t, name, il)
                out.append((t, nh))
            q, k, v = (lib.ggml_reshape_3d(ctx, t, hd, nh, n) for t, nh in out)
        for t, name in ((q, "Qcur"), (k, "Kcur"), (v, "Vcur")):
            self.cb(t, name, il)
        return q, k, v

    def ffn_swiglu(self, cur: Any, w: dict[str, Any], il: int, *, gelu: bool = False) -> Any:
        """build_ffn(LLM_FFN_SILU, LLM_FFN_PAR): down(silu(gate x) * up x), biases and scales;
        with ``gelu``, build_ffn(LLM_FFN_GELU, LLM_FFN_PAR): gelu instead of silu ("ffn_geglu")."""
        lib, ctx = self.lib, self.ctx0
        tmp = self.mm(w["ffn_up.weight"], cur)
        self.cb(tmp, "ffn_up", il)
        if w.get("ffn_up.bias") is not None:
            tmp = self.cb(lib.ggml_add(ctx, tmp, w["ffn_up.bias"]), "ffn_up_b", il)
        if w.get("ffn_up.scale") is not None:
            tmp = self.cb(lib.ggml_mul(ctx, tmp, w["ffn_up.scale"]), "ffn_up_s", il)
        cur = self.cb(self.mm(w["ffn_gate.weight"], cur), "ffn_gate", il)
        if w.get("ffn_gate.bias") is not None:
            cur = self.cb(lib.ggml_add(ctx, cur, w["ffn_gate.bias"]), "ffn_gate_b", il)
        if w.get("ffn_gate.scale") is not None:
            cur = self.cb(lib.ggml_mul(ctx, cur, w["ffn_gate.scale"]), "ffn_gate_s", il)
        if gelu:
            cur = self.cb(lib.ggml_geglu_split(ctx, cur, tmp), "ffn_geglu", il)
        else:
            cur = self.cb(lib.ggml_swiglu_split(ctx, cur, tmp), "ffn_swiglu", il)
        cur = self.mm(w["ffn_down.weight"], cur)
        if w.get("ffn_down.bias") is not None:
            self.cb(cur, "ffn_down", il)
            cur = lib.ggml_add(ctx, cur, w["ffn_down.bias"])
        if w.get("ffn_down.scale") is not None:
            cur = self.cb(lib.ggml_mul(ctx, cur, w["ffn_down.scale"]), "ffn_down_s", il)
        return cur

    def attn_mha(self, q: Any, k: Any, v: Any, kq_mask: Any, kq_scale: float, il: int) -> Any:
        """build_attn_mha: flash attention, or KQ -> soft_max -> KQV; streams split on dim 3."""
        lib, ctx = self.lib, self.ctx0
        v_trans = v.nb[1] > v.nb[2]
        n_stream = k.ne[3]
        q = lib.ggml_view_4d(
            ctx,
            q,
            q.ne[0],
            q.ne[1],
            q.ne[2] // n_stream,
            n_stream,
            q.nb[1],
            q.nb[2],
            q.nb[2] * (q.ne[2] // n_stream),
            0,
        )
        q = lib.ggml_permute(ctx, q, 0, 2, 1, 3)
        k = lib.ggml_permute(ctx, k, 0, 2, 1, 3)
        v = lib.ggml_permute(ctx, v, 0, 2, 1, 3)
        if self.cp.flash_attn:
            if v_trans:
                v = lib.ggml_transpose(ctx, v)
            if k.type == F32:
                k = lib.ggml_cast(ctx, k, F16)
            if v.type == F32:
                v = lib.ggml_cast(ctx, v, F16)
            cur = lib.ggml_flash_attn_ext(ctx, q, k, v, kq_mask, kq_scale, 0.0, 0.0)
            lib.ggml_flash_attn_ext_add_sinks(cur, ffi.NULL)
            lib.ggml_flash_attn_ext_set_n_kv_max(cur, 0)
            lib.ggml_prec_set_acc(cur, GGML_PREC_F32)
            cur = lib.ggml_reshape_2d(ctx, cur, cur.ne[0] * cur.ne[1], cur.ne[2] * cur.ne[3])
        else:
            kq = self.cb(lib.ggml_mul_mat(ctx, k, q), "kq", il)
            lib.ggml_prec_set_acc(kq, GGML_PREC_F32)  # KQ needs the F32 range
            kq = lib.ggml_soft_max_ext(ctx, kq, kq_mask, kq_scale, 0.0)
            lib.ggml_soft_max_add_sinks(kq, ffi.NULL)
            self.cb(kq, "kq_soft_max", il)
            if not v_trans:
                v = self.cb(lib.ggml_cont(ctx, lib.ggml_transpose(ctx, v)), "v_cont", il)
            kqv = self.cb(lib.ggml_mul_mat(ctx, v, kq), "kqv", il)
            cur = lib.ggml_permute(ctx, kqv, 0, 2, 1, 3)
            cur = lib.ggml_cont_2d(ctx, cur, cur.ne[0] * cur.ne[1], cur.ne[2] * cur.ne[3])
        self.expand(cur)
        return cur

    def attn_kv(
        self, inp: InpAttnKV, w: dict[str, Any], q: Any, k: Any, v: Any, kq_scale: float, il: int,
        *, iswa: bool = False
    ) -> Any:
        """build_attn with a KV cache (``inp``'s: the base or the SWA cache of an iSWA pair):
        store K/V (SET_ROWS), attend over the cache, project."""
        lib, ctx = self.lib, self.ctx0
        kvt, sinfo, n_kv = inp.kvt, inp.sinfo, int(inp.kq_mask.ne[0])
        # llama.cpp quirk: the KV-cache build_attn expands q, v, then k (k last so that its RoPE
        # can be fused with the cache write); the iSWA one expands q, k, v
        self.expand(q)
        for t in (k, v) if iswa else (v, k):
            self.expand(t)
        self.expand(kvt.cpy_k(ctx, k, inp.k_idxs, il))
        self.expand(kvt.cpy_v(ctx, v, inp.v_idxs, il))
        kc = kvt.get_k(ctx, il, n_kv, sinfo)
        vc = kvt.get_v(ctx, il, n_kv, sinfo)
        cur = self.attn_mha(q, kc, vc, inp.kq_mask, kq_scale, il)
        self.cb(cur, "kqv_out", il)
        cur = self.mm(w["attn_output.weight"], cur, w.get("attn_output.scale"))
        if w.get("attn_output.bias") is not None:
            cur = lib.ggml_add(ctx, cur, w["attn_output.bias"])
        return cur

    def moe_ffn(
        self,
        cur: Any,
        gate_inp: Any,
        up_exps: Any,
        gate_exps: Any,
        down_exps: Any,
        n_expert: int,
        n_expert_used: int,
        w_scale: float,
        il: int,
        up_exps_s: Any = None,
        gate_exps_s: Any = None,
        down_exps_s: Any = None,
    ) -> Any:
        """build_moe_ffn as the llama graph calls it: LLM_FFN_SILU, norm_w, softmax gating, no
        expert-selection bias, no shared experts; optional per-expert scales (``*_exps.scale``).
        Router softmax -> top-k experts -> normalized weights -> up/gate/down with mul_mat_id ->
        weighted sum of the selected experts' outputs."""
        lib, ctx, hp = self.lib, self.ctx0, self.hp
        if hp.n_expert_groups > 1:
            raise NotImplementedError("pyggml: MoE expert groups (n_expert_groups > 1) are not implemented")
        n_embd, n_tokens = cur.ne[0], cur.ne[1]

        logits = self.cb(self.mm(gate_inp, cur), "ffn_moe_logits", il)  # [n_expert, n_tokens]
        probs = self.cb(lib.ggml_soft_max(ctx, logits), "ffn_moe_probs", il)

        selected = lib.ggml_argsort_top_k(ctx, probs, n_expert_used)  # [n_expert_used, n_tokens]
        self.cb(selected.src[0], "ffn_moe_argsort", il)
        self.cb(selected, "ffn_moe_topk", il)

        probs = lib.ggml_reshape_3d(ctx, probs, 1, n_expert, n_tokens)
        weights = self.cb(lib.ggml_get_rows(ctx, probs, selected), "ffn_moe_weights", il)

        # norm_w
        weights = lib.ggml_reshape_2d(ctx, weights, n_expert_used, n_tokens)
        weights_sum = self.cb(lib.ggml_sum_rows(ctx, weights), "ffn_moe_weights_sum", il)
        # no division by zero: clamped to the smallest normal F16
        weights_sum = lib.ggml_clamp(ctx, weights_sum, 6.103515625e-5, float("inf"))
        self.cb(weights_sum, "ffn_moe_weights_sum_clamped", il)
        weights = self.cb(lib.ggml_div(ctx, weights, weights_sum), "ffn_moe_weights_norm", il)
        weights = lib.ggml_reshape_3d(ctx, weights, 1, n_expert_used, n_tokens)
        if w_scale != 0.0 and w_scale != 1.0:
            weights = self.cb(lib.ggml_scale(ctx, weights, w_scale), "ffn_moe_weights_scaled", il)

        # early, so that the CPU backend can fuse the top-k MoE routing
        self.expand(weights)

        cur = lib.ggml_reshape_3d(ctx, cur, n_embd, 1, n_tokens)

        up = self.cb(self.mm_id(up_exps, cur, selected, up_exps_s), "ffn_moe_up", il)
        if up_exps_s is not None:
            self.cb(up, "ffn_moe_up_scaled", il)
        if gate_exps is not None:
            cur = self.cb(self.mm_id(gate_exps, cur, selected, gate_exps_s), "ffn_moe_gate", il)
        else:
            cur = up
        if gate_exps_s is not None:
            self.cb(cur, "ffn_moe_gate_scaled", il)

        # LLM_FFN_SILU (hparams.swiglu_clamp_exp is 0 for llama: no clamped variant)
        if gate_exps is not None:
            cur = self.cb(lib.ggml_swiglu_split(ctx, cur, up), "ffn_moe_swiglu", il)
        else:
            cur = self.cb(lib.ggml_silu(ctx, cur), "ffn_moe_silu", il)

        experts = self.cb(self.mm_id(down_exps, cur, selected, down_exps_s), "ffn_moe_down", il)
        if down_exps_s is not None:
            self.cb(experts, "ffn_moe_down_scaled", il)
        experts = self.cb(lib.ggml_mul(ctx, experts, weights), "ffn_moe_weighted", il)
        self.expand(experts)

        # the views first, then the adds
        n_used_il = hp.n_expert_used[il]
        views = []
        for i in range(n_used_il):
            v = lib.ggml_view_2d(ctx, experts, n_embd, n_tokens, experts.nb[2], i * experts.nb[1])
            self.expand(v)
            views.append(v)
        moe_out = views[0]
        for v in views[1:]:
            moe_out = lib.ggml_add(ctx, moe_out, v)
            self.expand(moe_out)
        if n_used_il == 1:
            moe_out = lib.ggml_cont(ctx, moe_out)  # not a non-contiguous view
        return self.cb(moe_out, "ffn_moe_out", il)

    def mm_id(self, w: Any, cur: Any, ids: Any, w_s: Any = None) -> Any:
        """build_lora_mm_id (no adapters): the selected experts' W x, then the optional
        per-expert scale gathered for the selected experts."""
        lib, ctx = self.lib, self.ctx0
        res = lib.ggml_mul_mat_id(ctx, w, cur, ids)
        if w_s is not None:
            n_expert, n_tokens = w_s.ne[0], cur.ne[2]
            s = lib.ggml_reshape_3d(ctx, w_s, 1, n_expert, 1)
            s = lib.ggml_repeat_4d(ctx, s, 1, n_expert, n_tokens, 1)
            s = lib.ggml_get_rows(ctx, s, ids)
            res = lib.ggml_mul(ctx, res, s)
        return res

    # ------------------------------------------------------------------ encoders (no memory)
    def norm(self, cur: Any, mw: Any, mb: Any, il: int) -> Any:
        """build_norm(LLM_NORM): LayerNorm, then the optional weight and bias."""
        lib, ctx = self.lib, self.ctx0
        cur = lib.ggml_norm(ctx, cur, self.hp.f_norm_eps)
        if mw is not None or mb is not None:
            self.cb(cur, "norm", il)
        if mw is not None:
            cur = lib.ggml_mul(ctx, cur, mw)
            if mb is not None:
                self.cb(cur, "norm_w", il)
        if mb is not None:
            cur = lib.ggml_add(ctx, cur, mb)
        return cur

    def ffn_gelu_seq(self, cur: Any, w: dict[str, Any], il: int) -> Any:
        """build_ffn(LLM_FFN_GELU, LLM_FFN_SEQ) without a gate: down(gelu(up x + b)) + b."""
        lib, ctx = self.lib, self.ctx0
        cur = self.cb(self.mm(w["ffn_up.weight"], cur), "ffn_up", il)
        if w.get("ffn_up.bias") is not None:
            cur = self.cb(lib.ggml_add(ctx, cur, w["ffn_up.bias"]), "ffn_up_b", il)
        cur = self.cb(lib.ggml_gelu(ctx, cur), "ffn_gelu", il)
        cur = self.mm(w["ffn_down.weight"], cur)
        if w.get("ffn_down.bias") is not None:
            self.cb(cur, "ffn_down", il)
            cur = lib.ggml_add(ctx, cur, w["ffn_down.bias"])
        return cur

    def attn_inp_no_cache(self) -> InpAttnNoCache:
        """build_attn_inp_no_cache: one mask over the ubatch's own tokens."""
        lib, n = self.lib, self.n_tokens
        mask = lib.ggml_new_tensor_4d(self.ctx0, F16 if self.cp.flash_attn else F32, n, n, 1, 1)
        lib.ggml_set_input(mask)
        self.cb(mask, "self_kq_mask", -1)
        inp = InpAttnNoCache(mask, self.cp.causal_attn)
        self.res.inputs.append(inp)
        return inp

    def attn_no_cache(
        self, inp: InpAttnNoCache, w: dict[str, Any], q: Any, k: Any, v: Any, kq_scale: float, il: int
    ) -> Any:
        """build_attn without a KV cache: attend over this ubatch's K/V, project."""
        lib, ctx = self.lib, self.ctx0
        # expanded together (q, k, v) so that they are not reordered
        self.expand(q)
        self.expand(k)
        self.expand(v)
        cur = self.cb(self.attn_mha(q, k, v, inp.kq_mask, kq_scale, il), "kqv_out", il)
        cur = self.mm(w["attn_output.weight"], cur, w.get("attn_output.scale"))
        if w.get("attn_output.bias") is not None:
            cur = lib.ggml_add(ctx, cur, w["attn_output.bias"])
        return cur

    def pooling(self) -> None:
        """build_pooling (with ``embeddings`` on), every architecture: t_embd pooled per
        sequence into t_embd_pooled, "result_embd_pooled".  NONE passes t_embd through, renamed
        (a quirk the graph dump shows); RANK runs the model's classifier head (cls.*,
        cls.output.*) on the first token of each sequence."""
        if not self.cp.embeddings:
            return
        lib, ctx, hp, pt = self.lib, self.ctx0, self.hp, self.cp.pooling_type
        tensors = self.model._buffers.tensors
        cls, cls_b, cls_out, cls_out_b = (
            t.ptr if (t := tensors.get(n)) is not None else None
            for n in ("cls.weight", "cls.bias", "cls.output.weight", "cls.output.bias")
        )
        inp = self.res.t_embd
        if pt == POOLING_NONE:
            cur = inp
        elif pt == POOLING_MEAN or (pt == POOLING_RANK and hp.pooling_type_cls == POOLING_MEAN):
            cur = lib.ggml_mul_mat(ctx, lib.ggml_cont(ctx, lib.ggml_transpose(ctx, inp)), self.inp_mean())
        elif pt in (POOLING_CLS, POOLING_LAST, POOLING_RANK):
            cur = lib.ggml_get_rows(ctx, inp, self.inp_cls())
        else:
            raise ValueError(f"unknown pooling type {pt}")
        if pt == POOLING_RANK:
            if cls is not None:  # classification head (bert: tanh, no head norm)
                cur = lib.ggml_mul_mat(ctx, cls, cur)
                if cls_b is not None:
                    cur = lib.ggml_add(ctx, cur, cls_b)
                cur = lib.ggml_tanh(ctx, cur)
            if cls_out is not None:
                cur = lib.ggml_mul_mat(ctx, cls_out, cur)
                if cls_out_b is not None:
                    cur = lib.ggml_add(ctx, cur, cls_out_b)
        self.cb(cur, "result_embd_pooled", -1)
        self.res.t_embd_pooled = cur
        self.expand(cur)

    def inp_mean(self) -> Any:
        lib = self.lib
        cur = lib.ggml_new_tensor_2d(self.ctx0, F32, self.n_tokens, self.ub.n_seqs_unq)
        lib.ggml_set_input(cur)
        lib.ggml_set_name(cur, b"mean")
        self.res.inputs.append(InpMean(cur))
        return cur

    def inp_cls(self) -> Any:
        lib, pt = self.lib, self.cp.pooling_type
        cur = lib.ggml_new_tensor_1d(self.ctx0, I32, self.ub.n_seqs_unq)
        lib.ggml_set_input(cur)
        lib.ggml_set_name(cur, b"cls")
        last = pt == POOLING_LAST or (pt == POOLING_RANK and self.cp.causal_attn)
        self.res.inputs.append(InpCls(cur, last))
        return cur
