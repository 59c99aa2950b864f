"""Which buffer type holds each weight: the reference's choice, asked of ggml the same way.

llama.cpp: src/llama-model.cpp ``make_cpu_buft_list`` (ACCEL -> GPU host -> CPU extra buffer
types -> CPU) and src/llama-model-loader.cpp ``weight_buft_supported`` / ``select_weight_buft``
(a dummy op per tensor role, built in a no-alloc context with the weight in a 0-byte buffer of
the candidate type, then ``ggml_backend_dev_supports_op``: the first type that says yes wins).
Extra buffer types (CPU_REPACK, AMX, ...) change the weight layout and the kernels that read it,
so logits can only be bit-identical when pyggml places every weight exactly as the reference.
CPU only: pyggml has no GPU placement (n_gpu_layers) yet.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from typing import Any

from gguf import GGMLQuantizationType as QT

from .._native import ffi, ggml
from .hparams import LlamaHParams

# the op each tensor role is used with (llama-arch.cpp LLM_TENSOR_INFOS, the llama subset);
# keyed by the name with "blk.N." and the ".weight"/".bias"/... suffix removed
_ROLE_OP = {
    "token_embd": "get_rows",
    "output": "mul_mat",
    "output_norm": "mul",
    "rope_freqs": "rope",
    "rope_factors_long": "rope",
    "rope_factors_short": "rope",
    "attn_norm": "mul",
    "ffn_norm": "mul",
    "attn_q_norm": "mul",
    "attn_k_norm": "mul",
    "post_attention_norm": "mul",
    "post_ffw_norm": "mul",
    "attn_q": "mul_mat",
    "attn_k": "mul_mat",
    "attn_v": "mul_mat",
    "attn_qkv": "mul_mat",
    "attn_output": "mul_mat",
    "ffn_gate": "mul_mat",
    "ffn_down": "mul_mat",
    "ffn_up": "mul_mat",
    "ffn_gate_inp": "mul_mat",
    "ffn_gate_exps": "mul_mat_id",
    "ffn_down_exps": "mul_mat_id",
    "ffn_up_exps": "mul_mat_id",
    # bert
    "token_types": "get_rows",
    "position_embd": "get_rows",
    "token_embd_norm": "mul",
    "attn_output_norm": "mul",
    "layer_output_norm": "mul",
    "cls": "mul_mat",
    "cls.output": "mul_mat",
}


@dataclass(frozen=True)
class BufType:
    """One entry of a buffer-type list: the device and its buffer type (raw cffi pointers)."""

    dev: Any
    buft: Any

    @property
    def name(self) -> str:
        return ffi.string(ggml().ggml_backend_buft_name(self.buft)).decode()

    @property
    def is_cpu_default(self) -> bool:
        """The CPU device's own buffer type (the one an mmap can back)."""
        return self.buft == ggml().ggml_backend_cpu_buffer_type()


def cpu_buft_list(use_extra_bufts: bool) -> list[BufType]:
    """make_cpu_buft_list for a CPU-only model (no GPU devices, so no GPU host buffer type).

    Divergence: the AMX extra buffer type is skipped with a warning unless PYGGML_ALLOW_AMX=1
    (see the README); on hosts without AMX the list is the reference's."""
    lib = ggml()
    out: list[BufType] = []
    n_dev = lib.ggml_backend_dev_count()
    for i in range(n_dev):
        dev = lib.ggml_backend_dev_get(i)
        if lib.ggml_backend_dev_type(dev) == lib.GGML_BACKEND_DEVICE_TYPE_ACCEL:
            buft = lib.ggml_backend_dev_buffer_type(dev)
            if buft != lib.ggml_backend_cpu_buffer_type():
                out.append(BufType(dev, buft))
    if use_extra_bufts:
        cpu_dev = lib.ggml_backend_dev_by_type(lib.GGML_BACKEND_DEVICE_TYPE_CPU)
        if cpu_dev == ffi.NULL:
            raise RuntimeError("make_cpu_buft_list: no CPU backend found")
        reg = lib.ggml_backend_dev_backend_reg(cpu_dev)
        fn = lib.ggml_backend_reg_get_proc_address(reg, b"ggml_backend_dev_get_extra_bufts")
        if fn != ffi.NULL:
            extra = ffi.cast("ggml_backend_dev_get_extra_bufts_t", fn)(cpu_dev)
            i = 0
            while extra != ffi.NULL and extra[i] != ffi.NULL:
                bt = BufType(cpu_dev, extra[i])
                i += 1
                if bt.name == "AMX" and os.environ.get("PYGGML_ALLOW_AMX") != "1":
                    _warn_amx()
                    continue
                out.append(bt)
    for i in range(n_dev):
        dev = lib.ggml_backend_dev_get(i)
        if lib.ggml_backend_dev_type(dev) == lib.GGML_BACKEND_DEVICE_TYPE_CPU:
            out.append(BufType(dev, lib.ggml_backend_dev_buffer_type(dev)))
    return out


@functools.cache
def _warn_amx() -> None:
    # documented divergence (README): the reference segfaults in ggml_backend_amx_mul_mat on
    # AMX hosts with its default parameters; pyggml leaves the AMX buffer type out unless asked
    warnings.warn(
        "pyggml: skipping the AMX buffer type (the reference crashes in it on this host); "
        "set PYGGML_ALLOW_AMX=1 to use it",
        RuntimeWarning,
        stacklevel=3,
    )


def weight_op(name: str, *, duplicated: bool = False) -> str:
    """The op a weight is used with; a duplicated token_embd is the tied output (MUL_MAT)."""
    parts = name.split(".")
    if parts[0] == "blk":
        parts = parts[2:]
    # the suffix is the last part ("cls.output.bias": role "cls.output")
    role, suffix = (".".join(parts[:-1]), parts[-1]) if len(parts) > 1 else (parts[0], "")
    if role == "token_embd" and duplicated:
        role = "output"
    op = _ROLE_OP.get(role, "none")
    if suffix == "bias":  # tensors with a "bias" suffix are always added
        return "add_id" if op == "mul_mat_id" else "add"
    return op


def _dummy_op(ctx: Any, w: Any, op: str, hp: LlamaHParams) -> Any:
    """The op tensor weight_buft_supported builds for ``op`` (same shapes, 512 rows/tokens)."""
    lib = ggml()
    f32, i32 = int(QT.F32), int(QT.I32)
    ne = w.ne
    if op == "get_rows":
        return lib.ggml_get_rows(ctx, w, lib.ggml_new_tensor_1d(ctx, i32, 512))
    if op == "mul_mat":
        return lib.ggml_mul_mat(ctx, w, lib.ggml_new_tensor_4d(ctx, f32, ne[0], 512, ne[2], ne[3]))
    if op == "mul_mat_id":
        n_used = max(hp.n_expert_used)
        b = lib.ggml_new_tensor_3d(ctx, f32, ne[0], n_used, 512)
        ids = lib.ggml_new_tensor_2d(ctx, i32, n_used, 512)
        return lib.ggml_mul_mat_id(ctx, w, b, ids)
    if op == "add":
        return lib.ggml_add(ctx, lib.ggml_new_tensor_4d(ctx, f32, ne[0], ne[1], ne[2], ne[3]), w)
    if op == "add_id":
        n_used = max(hp.n_expert_used)
        a = lib.ggml_new_tensor_3d(ctx, f32, ne[0], n_used, 512)
        return lib.ggml_add_id(ctx, a, w, lib.ggml_new_tensor_2d(ctx, i32, n_used, 512))
    if op == "mul":
        return lib.ggml_mul(ctx, lib.ggml_new_tensor_4d(ctx, f32, ne[0], ne[1], ne[2], ne[3]), w)
    if op == "rope":
        a = lib.ggml_new_tensor_3d(ctx, f32, hp.n_embd_head_v, hp.n_head[0], 512)
        b = lib.ggml_new_tensor_1d(ctx, i32, 512)
        return lib.ggml_rope_ext(ctx, a, b, w, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    raise ValueError(f"weight_buft_supported: missing test for op {op}")


def supported(hp: LlamaHParams, qtype: int, ne: tuple[int, ...], op: str, bt: BufType) -> bool:
    """weight_buft_supported: can ``bt`` hold a weight of this type/shape used with ``op``?"""
    if op == "none":
        return True
    lib = ggml()
    ctx = lib.ggml_init(
        {"mem_size": lib.ggml_tensor_overhead() * 8, "mem_buffer": ffi.NULL, "no_alloc": True}
    )
    try:
        full = tuple(ne) + (1,) * (4 - len(ne))
        w = lib.ggml_new_tensor_4d(ctx, qtype, *full)
        op_tensor = _dummy_op(ctx, w, op, hp)
        # a 0-byte buffer of the candidate type tells supports_op where the weight would live
        w.buffer = lib.ggml_backend_buft_alloc_buffer(bt.buft, 0)
        try:
            return bool(lib.ggml_backend_dev_supports_op(bt.dev, op_tensor))
        finally:
            lib.ggml_backend_buffer_free(w.buffer)
            w.buffer = ffi.NULL
    finally:
        lib.ggml_free(ctx)


def select(hp: LlamaHParams, qtype: int, ne: tuple[int, ...], op: str, buft_list: list[BufType]) -> BufType:
    """select_weight_buft: the first buffer type in the list that can use the weight."""
    for bt in buft_list:
        if supported(hp, qtype, ne, op, bt):
            return bt
    raise RuntimeError(f"failed to find a compatible buffer type for a {op} weight")
