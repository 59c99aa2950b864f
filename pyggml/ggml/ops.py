"""ggml ops as ``Context`` methods, each checked in Python before it reaches C.

Every check mirrors a GGML_ASSERT that would abort the interpreter: the op builder's own
(ggml/src/ggml.c, cited per op) and, since a graph is computed later by the CPU backend, the
type and layout conditions of its kernel (ggml/src/ggml-cpu/ops.cpp, binary-ops.cpp) that
would abort at compute time.  Results are new nodes in the context the method is called on;
their sources may live in other contexts (weights in one, the graph in another).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyggml._native import ffi, ggml
from pyggml.errors import GGMLError
from pyggml.ggml import types
from pyggml.ggml.tensor import Tensor
from pyggml.ggml.types import GGMLType as T

MAX_DIMS = 4             # GGML_MAX_DIMS
_INT64_MAX = 2**63 - 1
ROPE_TYPE_NORMAL = 0  # GGML_ROPE_TYPE_NORMAL
ROPE_TYPE_NEOX = 2    # GGML_ROPE_TYPE_NEOX

_FLOAT = (T.F32, T.F16, T.BF16)
# ggml-cpu binary-ops.cpp binary_op: (src0, src1) pairs with a kernel, dst has src0's type
_BINARY_TYPES = {(T.F32, T.F32), (T.F16, T.F16), (T.BF16, T.BF16), (T.BF16, T.F32), (T.F16, T.F32)}
# ggml-cpu supports_op GGML_OP_CPY: these lack type_traits.from_float
_NO_FROM_FLOAT = {T.IQ3_XXS, T.IQ3_S, T.IQ2_XXS, T.IQ2_XS, T.IQ2_S, T.IQ1_S, T.IQ1_M}
# ggml-cpu ops.cpp ggml_compute_forward_get_rows: everything but these has a kernel
_NO_GET_ROWS = {T.I8, T.I16, T.I64, T.F64}


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise GGMLError(message)


def _tn(type_: int) -> str:
    return types.type_name(type_)


def _can_repeat(small: Tensor, big: Tensor) -> bool:
    # ggml.c ggml_can_repeat (empty tensors repeat only into empty ones)
    s, b = small.ne, big.ne
    if 0 in s:
        return 0 in b
    return b[0] % s[0] == 0 and b[1] % s[1] == 0 and b[2] % s[2] == 0 and b[3] % s[3] == 0


def _is_padded_1d(t: Tensor) -> bool:
    # ggml.c ggml_is_padded_1d
    ne, nb = t.ne, t.nb
    return nb[0] == types.type_size(int(t.ptr.type)) and nb[2] == nb[1] * ne[1] and nb[3] == nb[2] * ne[2]


def _rows_contiguous(t: Tensor) -> bool:
    return bool(ggml().ggml_is_contiguous_rows(t.ptr))


def _elements_packed(t: Tensor) -> bool:
    p = t.ptr
    return p.nb[0] == types.FACTS()[p.type][1]  # nb[0] is the element (block) size


class Ops:
    """Mixin of ``Context``: the op constructors (``ctx.mul_mat(w, x)`` is ggml_mul_mat)."""

    # provided by Context
    ptr: Any

    def _reserve_tensor(self, type_: int, ne: Sequence[int], *, view: bool = False) -> None: ...
    def _wrap(self, ptr: Any, ndim: int | None = None) -> Tensor: ...
    def keep_alive(self, obj: Any) -> None: ...

    def _args(self, *tensors: Tensor | None) -> None:
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise GGMLError(f"expected a pyggml.ggml.Tensor, got {type(t).__name__}")
            if t is not None:
                t.ptr  # noqa: B018 - raises GGMLError when its context was freed
                if t.context is not self:
                    self.keep_alive(t.context)  # results point at their sources' memory

    def _new(self, fn: Any, *args: Any, type_: int, ne: Sequence[int], view: bool = False,
             like: Tensor | None = None) -> Tensor:
        """Check the context has room, call ``fn``; a same-shape result keeps ``like``'s ndim."""
        self._reserve_tensor(type_, ne, view=view)
        return self._wrap(fn(self.ptr, *args), ndim=like._ndim if like is not None else None)

    # -- element-wise binary (ggml.c ggml_add_impl & co: GGML_ASSERT(ggml_can_repeat(b, a))) --
    def _binary(self, fn_name: str, a: Tensor, b: Tensor) -> Tensor:
        self._args(a, b)
        _check(_can_repeat(b, a), f"{fn_name}: b ne {b.ne} does not broadcast to a ne {a.ne} "
                                  "(each a.ne[i] must be a multiple of b.ne[i])")
        pair = (int(a.ptr.type), int(b.ptr.type))
        _check(pair in _BINARY_TYPES, f"{fn_name}: no CPU kernel for {_tn(pair[0])} and {_tn(pair[1])}")
        _check(_elements_packed(a), f"{fn_name}: a's elements must be packed (nb[0] = element size)")
        return self._new(getattr(ggml(), f"ggml_{fn_name}"), a.ptr, b.ptr, type_=pair[0], ne=a.ne, like=a)

    def add(self, a: Tensor, b: Tensor) -> Tensor:
        """a + b, b broadcast over a (ggml_add)."""
        return self._binary("add", a, b)

    def sub(self, a: Tensor, b: Tensor) -> Tensor:
        """a - b, b broadcast over a (ggml_sub)."""
        return self._binary("sub", a, b)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        """a * b element-wise, b broadcast over a (ggml_mul)."""
        return self._binary("mul", a, b)

    def div(self, a: Tensor, b: Tensor) -> Tensor:
        """a / b element-wise, b broadcast over a (ggml_div)."""
        return self._binary("div", a, b)

    # -- matrix product -------------------------------------------------------------------
    def mul_mat(self, a: Tensor, b: Tensor) -> Tensor:
        """ggml_mul_mat: result[i, j] = dot(a row i, b row j); F32 of ne [a.ne1, b.ne1, b.ne2, b.ne3].

        a [k, m, A2, A3] (weights), b [k, n, B2, B3] with B2 % A2 == 0 and B3 % A3 == 0.
        """
        self._args(a, b)
        an, bn = a.ne, b.ne
        # ggml.c ggml_can_mul_mat and !ggml_is_transposed(a)
        _check(an[0] == bn[0], f"mul_mat: a.ne[0] {an[0]} != b.ne[0] {bn[0]}")
        _check(an[2] > 0 and an[3] > 0 and bn[2] % an[2] == 0 and bn[3] % an[3] == 0,
               f"mul_mat: b ne {bn} does not broadcast over a ne {an} in dims 2, 3")
        _check(not ggml().ggml_is_transposed(a.ptr), "mul_mat: a must not be transposed")
        ta, tb = int(a.ptr.type), int(b.ptr.type)
        # ggml-cpu ggml_compute_forward_mul_mat: nb00/nb10 are the type sizes; src1 is F32 or
        # already src0's vec_dot type (F16/BF16 dot themselves)
        _check(_elements_packed(a) and _elements_packed(b), "mul_mat: a and b need packed elements")
        _check(tb == T.F32 or (tb == ta and ta in (T.F16, T.BF16)),
               f"mul_mat: b must be F32 (or match an F16/BF16 a), got {_tn(ta)} x {_tn(tb)}")
        return self._new(ggml().ggml_mul_mat, a.ptr, b.ptr, type_=T.F32, ne=(an[1], bn[1], bn[2], bn[3]))

    # -- rows -----------------------------------------------------------------------------
    def get_rows(self, a: Tensor, rows: Tensor) -> Tensor:
        """ggml_get_rows: rows of a picked by I32 ids; F32 (I32 for I32 a) [a.ne0, r.ne0, r.ne1, r.ne2]."""
        self._args(a, rows)
        an, rn = a.ne, rows.ne
        # ggml.c ggml_get_rows
        _check(int(rows.ptr.type) == T.I32, f"get_rows: ids must be I32, got {_tn(rows.ptr.type)}")
        _check(an[2] == rn[1] and an[3] == rn[2] and rn[3] == 1,
               f"get_rows: ids ne {rn} must be [n, a.ne2={an[2]}, a.ne3={an[3]}, 1]")
        _check(int(a.ptr.type) not in _NO_GET_ROWS, f"get_rows: no CPU kernel for {_tn(a.ptr.type)}")
        out = T.I32 if int(a.ptr.type) == T.I32 else T.F32
        return self._new(ggml().ggml_get_rows, a.ptr, rows.ptr, type_=out, ne=(an[0], rn[0], rn[1], rn[2]))

    def set_rows(self, dst: Tensor, src: Tensor, rows: Tensor) -> Tensor:
        """ggml_set_rows: write src's rows into dst at the I32/I64 ids; a view of dst."""
        self._args(dst, src, rows)
        a, b, c = dst.ne, src.ne, rows.ne
        # ggml.c ggml_set_rows
        _check(a[0] == b[0] and a[2] == b[2] and a[3] == b[3],
               f"set_rows: src ne {b} and dst ne {a} differ outside dim 1")
        _check(b[1] == c[0], f"set_rows: {b[1]} src rows but {c[0]} ids")
        _check(c[1] > 0 and c[2] > 0 and b[2] % c[1] == 0 and b[3] % c[2] == 0 and c[3] == 1,
               f"set_rows: ids ne {c} do not broadcast over src ne {b}")
        _check(int(src.ptr.type) in (T.F32, T.F16), "set_rows: src must be F32 or F16")
        _check(int(rows.ptr.type) in (T.I32, T.I64), "set_rows: ids must be I32 or I64")
        _check(_rows_contiguous(dst) and _rows_contiguous(src), "set_rows: dst and src need contiguous rows")
        # ggml-cpu: the F32 kernel converts through dst's from_float; the F16 one copies
        td = int(dst.ptr.type)
        _check((int(src.ptr.type) == T.F32 and td not in _NO_FROM_FLOAT and td not in (T.I8, T.I16, T.I32,
                T.I64, T.F64)) or td == int(src.ptr.type), f"set_rows: cannot store {_tn(src.ptr.type)} "
               f"rows in {_tn(td)}")
        return self._new(ggml().ggml_set_rows, dst.ptr, src.ptr, rows.ptr, type_=td, ne=a, view=True,
                         like=dst)

    # -- normalization and activations ----------------------------------------------------
    def _f32_rowwise(self, what: str, a: Tensor) -> None:
        _check(int(a.ptr.type) == T.F32, f"{what}: the CPU kernel takes F32, got {_tn(a.ptr.type)}")
        _check(_elements_packed(a), f"{what}: a's elements must be packed")

    def rms_norm(self, a: Tensor, eps: float) -> Tensor:
        """ggml_rms_norm over ne[0]: a / sqrt(mean(a^2) + eps)."""
        self._args(a)
        self._f32_rowwise("rms_norm", a)
        _check(eps >= 0.0, "rms_norm: eps must be >= 0")  # ggml-cpu rms_norm_f32 asserts it
        return self._new(ggml().ggml_rms_norm, a.ptr, float(eps), type_=T.F32, ne=a.ne, like=a)

    def norm(self, a: Tensor, eps: float) -> Tensor:
        """ggml_norm over ne[0]: (a - mean) / sqrt(var + eps)."""
        self._args(a)
        self._f32_rowwise("norm", a)
        _check(eps >= 0.0, "norm: eps must be >= 0")
        return self._new(ggml().ggml_norm, a.ptr, float(eps), type_=T.F32, ne=a.ne, like=a)

    def _unary(self, fn_name: str, a: Tensor) -> Tensor:
        self._args(a)
        # ggml.c ggml_unary_impl: GGML_ASSERT(ggml_is_contiguous_rows(a)); CPU kernels: F32/F16
        _check(_rows_contiguous(a), f"{fn_name}: a needs contiguous rows")
        _check(int(a.ptr.type) in (T.F32, T.F16),
               f"{fn_name}: CPU kernel takes F32/F16, got {_tn(a.ptr.type)}")
        return self._new(getattr(ggml(), f"ggml_{fn_name}"), a.ptr, type_=int(a.ptr.type), ne=a.ne, like=a)

    def silu(self, a: Tensor) -> Tensor:
        """x * sigmoid(x) (ggml_silu)."""
        return self._unary("silu", a)

    def gelu(self, a: Tensor) -> Tensor:
        """tanh-approximated GELU (ggml_gelu)."""
        return self._unary("gelu", a)

    def relu(self, a: Tensor) -> Tensor:
        return self._unary("relu", a)

    def tanh(self, a: Tensor) -> Tensor:
        return self._unary("tanh", a)

    def sigmoid(self, a: Tensor) -> Tensor:
        return self._unary("sigmoid", a)

    def _glu_split(self, fn_name: str, a: Tensor, b: Tensor) -> Tensor:
        self._args(a, b)
        # ggml.c ggml_glu_impl
        lib = ggml()
        _check(lib.ggml_is_contiguous_1(a.ptr) and lib.ggml_is_contiguous_1(b.ptr),
               f"{fn_name}: a and b must be contiguous in dims >= 1")
        _check(a.ne == b.ne and int(a.ptr.type) == int(b.ptr.type), f"{fn_name}: a and b must match")
        _check(int(a.ptr.type) in (T.F32, T.F16), f"{fn_name}: CPU kernel takes F32/F16")
        return self._new(getattr(lib, f"ggml_{fn_name}"), a.ptr, b.ptr, type_=int(a.ptr.type), ne=a.ne,
                         like=a)

    def swiglu_split(self, a: Tensor, b: Tensor) -> Tensor:
        """silu(a) * b (ggml_swiglu_split), the llama FFN gate."""
        return self._glu_split("swiglu_split", a, b)

    def geglu_split(self, a: Tensor, b: Tensor) -> Tensor:
        """gelu(a) * b (ggml_geglu_split)."""
        return self._glu_split("geglu_split", a, b)

    def scale(self, a: Tensor, s: float, bias: float = 0.0) -> Tensor:
        """a * s + bias (ggml_scale / ggml_scale_bias)."""
        self._args(a)
        # ggml.c ggml_scale_impl: ggml_is_padded_1d; ggml-cpu scale: F32/BF16, contiguous
        _check(_is_padded_1d(a) and a.is_contiguous, "scale: a must be contiguous")
        _check(int(a.ptr.type) in (T.F32, T.BF16), f"scale: CPU kernel takes F32/BF16, got {_tn(a.ptr.type)}")
        lib = ggml()
        if bias == 0.0:
            return self._new(lib.ggml_scale, a.ptr, float(s), type_=int(a.ptr.type), ne=a.ne, like=a)
        return self._new(lib.ggml_scale_bias, a.ptr, float(s), float(bias), type_=int(a.ptr.type),
                         ne=a.ne, like=a)

    def soft_max_ext(self, a: Tensor, mask: Tensor | None = None, scale: float = 1.0,
                     max_bias: float = 0.0) -> Tensor:
        """softmax(a * scale + mask (+ ALiBi slope when max_bias > 0)) over ne[0] (ggml_soft_max_ext)."""
        self._args(a, mask)
        # ggml.c ggml_soft_max_impl
        _check(a.is_contiguous, "soft_max_ext: a must be contiguous")
        _check(int(a.ptr.type) == T.F32, f"soft_max_ext: CPU kernel takes F32, got {_tn(a.ptr.type)}")
        if mask is not None:
            m, an = mask.ne, a.ne
            _check(int(mask.ptr.type) in (T.F16, T.F32), "soft_max_ext: mask must be F16 or F32")
            _check(mask.is_contiguous, "soft_max_ext: mask must be contiguous")
            _check(m[0] == an[0] and m[1] >= an[1],
                   f"soft_max_ext: mask ne {m} must be [a.ne0, >= a.ne1, ..]")
            _check(m[2] > 0 and m[3] > 0 and an[2] % m[2] == 0 and an[3] % m[3] == 0,
                   f"soft_max_ext: mask ne {m} does not broadcast over a ne {an}")
        _check(max_bias <= 0.0 or mask is not None, "soft_max_ext: max_bias > 0 needs a mask")
        return self._new(ggml().ggml_soft_max_ext, a.ptr, mask.ptr if mask is not None else ffi.NULL,
                         float(scale), float(max_bias), type_=T.F32, ne=a.ne, like=a)

    def soft_max(self, a: Tensor) -> Tensor:
        """softmax over ne[0] (ggml_soft_max_ext without mask)."""
        return self.soft_max_ext(a)

    def rope_ext(self, a: Tensor, pos: Tensor, freq_factors: Tensor | None = None, *, n_dims: int,
                 mode: int = ROPE_TYPE_NORMAL, n_ctx_orig: int = 0, freq_base: float = 10000.0,
                 freq_scale: float = 1.0, ext_factor: float = 0.0, attn_factor: float = 1.0,
                 beta_fast: float = 32.0, beta_slow: float = 1.0) -> Tensor:
        """Rotary embedding of a [head_dim, n_head, n_tokens, ..] at I32 positions (ggml_rope_ext).

        ``mode`` is ROPE_TYPE_NORMAL (llama) or ROPE_TYPE_NEOX; the multi-section modes need
        ggml_rope_multi, which this layer does not expose.
        """
        self._args(a, pos, freq_factors)
        # ggml.c ggml_rope_impl
        _check(mode in (ROPE_TYPE_NORMAL, ROPE_TYPE_NEOX),
               f"rope_ext: mode {mode} is not NORMAL (0) or NEOX (2)")
        _check(int(pos.ptr.type) == T.I32 and ggml().ggml_is_vector(pos.ptr),
               "rope_ext: pos must be an I32 vector")
        _check(a.ne[2] == pos.ne[0], f"rope_ext: a.ne[2] {a.ne[2]} tokens but {pos.ne[0]} positions")
        if freq_factors is not None:
            _check(int(freq_factors.ptr.type) == T.F32, "rope_ext: freq_factors must be F32")
            _check(freq_factors.ne[0] >= n_dims // 2, f"rope_ext: freq_factors needs >= {n_dims // 2} values")
        # ggml-cpu ops.cpp ggml_compute_forward_rope_flt
        _check(int(a.ptr.type) in (T.F32, T.F16),
               f"rope_ext: CPU kernel takes F32/F16, got {_tn(a.ptr.type)}")
        _check(_elements_packed(a), "rope_ext: a's elements must be packed")
        _check(0 < n_dims <= a.ne[0] and n_dims % 2 == 0,
               f"rope_ext: n_dims {n_dims} must be even and in (0, a.ne[0]={a.ne[0]}]")
        return self._new(ggml().ggml_rope_ext, a.ptr, pos.ptr,
                         freq_factors.ptr if freq_factors is not None else ffi.NULL, int(n_dims), int(mode),
                         int(n_ctx_orig), float(freq_base), float(freq_scale), float(ext_factor),
                         float(attn_factor), float(beta_fast), float(beta_slow),
                         type_=int(a.ptr.type), ne=a.ne, like=a)

    def flash_attn_ext(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *,
                       scale: float, max_bias: float = 0.0, logit_softcap: float = 0.0) -> Tensor:
        """Fused attention (ggml_flash_attn_ext); F32 result [v.ne0, n_head, n_tokens, ne3] (permuted).

        q [d_k, n_tokens, n_head, ne3], k [d_k, n_kv, n_head_kv, ne3], v [d_v, n_kv, n_head_kv, ne3],
        mask F16 [n_kv, >= n_tokens, ..].
        """
        self._args(q, k, v, mask)
        qn, kn, vn = q.ne, k.ne, v.ne
        # ggml.c ggml_flash_attn_ext
        _check(kn[0] == qn[0], f"flash_attn_ext: k.ne[0] {kn[0]} != q.ne[0] {qn[0]}")
        _check(kn[2] > 0 and kn[3] > 0 and qn[2] % kn[2] == 0 and qn[3] % kn[3] == 0,
               f"flash_attn_ext: k ne {kn} does not broadcast over q ne {qn}")
        _check(qn[3] == kn[3] == vn[3], "flash_attn_ext: q, k, v must agree in ne[3]")
        if mask is not None:
            m = mask.ne
            _check(int(mask.ptr.type) == T.F16, "flash_attn_ext: mask must be F16")
            _check(mask.is_contiguous, "flash_attn_ext: mask must be contiguous")
            _check(m[2] > 0 and m[3] > 0 and qn[2] % m[2] == 0 and qn[3] % m[3] == 0,
                   f"flash_attn_ext: mask ne {m} does not broadcast over q ne {qn}")
            _check(m[0] == kn[1] and m[1] >= qn[1],
                   f"flash_attn_ext: mask ne {m} must be [n_kv, >= n_tokens, ..]")
        _check(max_bias <= 0.0 or mask is not None, "flash_attn_ext: max_bias > 0 needs a mask")
        # ggml-cpu ops.cpp ggml_compute_forward_flash_attn_ext_f16
        _check(all(_elements_packed(t) for t in (q, k, v)), "flash_attn_ext: q, k, v need packed elements")
        _check(int(k.ptr.type) == int(v.ptr.type), "flash_attn_ext: k and v must have the same type")
        _check(vn[1] == kn[1] and vn[2] == kn[2],
               f"flash_attn_ext: v ne {vn} must match k ne {kn} in dims 1, 2")
        _check(int(q.ptr.type) == T.F32, "flash_attn_ext: q must be F32")
        return self._new(ggml().ggml_flash_attn_ext, q.ptr, k.ptr, v.ptr,
                         mask.ptr if mask is not None else ffi.NULL, float(scale), float(max_bias),
                         float(logit_softcap), type_=T.F32, ne=(vn[0], qn[2], qn[1], qn[3]))

    # -- copies ---------------------------------------------------------------------------
    def _check_convert(self, what: str, src: int, dst: int) -> None:
        # ggml-cpu ops.cpp ggml_compute_forward_dup
        ok = (src == dst or (src in _FLOAT and dst in _FLOAT) or (src == T.F32 and dst == T.I32)
              or (src == T.I32 and dst == T.F32)
              or (src in _FLOAT and types.is_quantized(dst) and dst not in _NO_FROM_FLOAT)
              or (types.is_quantized(src) and dst == T.F32))
        _check(ok, f"{what}: no CPU conversion from {_tn(src)} to {_tn(dst)}")

    def cpy(self, a: Tensor, b: Tensor) -> Tensor:
        """Copy a into b, converting the type (ggml_cpy); a view of b."""
        self._args(a, b)
        _check(a.nelements == b.nelements, f"cpy: {a.nelements} elements into {b.nelements}")  # ggml_cpy_impl
        self._check_convert("cpy", int(a.ptr.type), int(b.ptr.type))
        return self._new(ggml().ggml_cpy, a.ptr, b.ptr, type_=int(b.ptr.type), ne=b.ne, view=True, like=b)

    def cast(self, a: Tensor, type_: int) -> Tensor:
        """a converted to ``type_`` in a new tensor (ggml_cast)."""
        self._args(a)
        t = types.check_type(type_)
        types.row_size(t, a.ne[0])
        self._check_convert("cast", int(a.ptr.type), t)
        return self._new(ggml().ggml_cast, a.ptr, t, type_=t, ne=a.ne, like=a)

    def cont(self, a: Tensor, shape: Sequence[int] | None = None) -> Tensor:
        """A contiguous copy of a (ggml_cont); with ``shape``, of that shape (ggml_cont_4d)."""
        self._args(a)
        lib = ggml()
        if shape is None:
            return self._new(lib.ggml_cont, a.ptr, type_=int(a.ptr.type), ne=a.ne, like=a)
        ne = _shape4(shape)
        _check(_prod(ne) == a.nelements,
               f"cont: shape {list(shape)} holds {_prod(ne)} elements, a has {a.nelements}")
        types.row_size(int(a.ptr.type), ne[0])
        out = self._new(lib.ggml_cont_4d, a.ptr, *ne, type_=int(a.ptr.type), ne=ne)
        out._ndim = len(shape)
        return out

    def concat(self, a: Tensor, b: Tensor, dim: int) -> Tensor:
        """a and b joined along ``dim`` (ggml_concat)."""
        self._args(a, b)
        # ggml.c ggml_concat
        _check(isinstance(dim, int) and 0 <= dim < 4, f"concat: dim {dim!r} not in 0..3")
        _check(int(a.ptr.type) == int(b.ptr.type), "concat: a and b must have the same type")
        ne = list(a.ne)
        for d in range(4):
            if d == dim:
                ne[d] = a.ne[d] + b.ne[d]
            else:
                _check(a.ne[d] == b.ne[d], f"concat: a ne {a.ne} and b ne {b.ne} differ in dim {d}")
        return self._new(ggml().ggml_concat, a.ptr, b.ptr, int(dim), type_=int(a.ptr.type), ne=ne)

    # -- views ----------------------------------------------------------------------------
    def reshape(self, a: Tensor, shape: Sequence[int]) -> Tensor:
        """A view of contiguous a with ``shape`` (ggml_reshape_1d..4d)."""
        self._args(a)
        ne = check_shape(shape)
        # ggml.c ggml_reshape_*: contiguous a, same element count
        _check(a.is_contiguous, "reshape: a must be contiguous (use cont first)")
        _check(_prod(ne) == a.nelements, f"reshape: {ne} holds {_prod(ne)} elements, a has {a.nelements}")
        types.row_size(int(a.ptr.type), ne[0])
        lib = ggml()
        fn = (lib.ggml_reshape_1d, lib.ggml_reshape_2d, lib.ggml_reshape_3d, lib.ggml_reshape_4d)[len(ne) - 1]
        out = self._new(fn, a.ptr, *ne, type_=int(a.ptr.type), ne=ne, view=True)
        out._ndim = len(ne)
        return out

    def view(self, a: Tensor, shape: Sequence[int], nb: Sequence[int] | None = None,
             offset: int = 0) -> Tensor:
        """A strided view into a's memory (ggml_view_1d..4d).

        ``shape`` in ne order; ``nb`` the byte strides of dims 1.. (len(shape) - 1 of them;
        default: contiguous rows); ``offset`` in bytes from a's data.  Every byte the view
        reaches must lie inside a's base tensor.
        """
        self._args(a)
        ne = check_shape(shape)
        t = int(a.ptr.type)
        row = types.row_size(t, ne[0])
        if nb is None:  # packed: nb[i] = nb[i-1] * ne[i-1]
            strides, acc = [], row
            for n in ne[1:]:
                strides.append(acc)
                acc *= n
        else:
            strides = [int(s) for s in nb]
        _check(len(strides) == len(ne) - 1,
               f"view: {len(ne)} dims take {len(ne) - 1} strides, got {len(strides)}")
        _check(isinstance(offset, int) and offset >= 0 and all(s >= 0 for s in strides),
               "view: offset and strides must be non-negative ints")
        base = a.view_src or a
        base_offs = offset + (int(a.ptr.view_offs) if a.view_src is not None else 0)
        size = row
        for n in ne[1:]:
            size *= n
        # ggml.c ggml_new_tensor_impl: data_size + view_offs <= ggml_nbytes(view_src)
        _check(size == 0 or size + base_offs <= base.nbytes,
               f"view: {size} bytes at offset {base_offs} exceed the {base.nbytes}-byte base tensor")
        # stricter than ggml (which trusts nb): the last byte reached must be inside too
        if size:
            extent = row + sum((n - 1) * s for n, s in zip(ne[1:], strides, strict=True))
            _check(base_offs + extent <= base.nbytes,
                   f"view: strides {strides} reach byte {base_offs + extent} of a {base.nbytes}-byte tensor")
        lib = ggml()
        args = [*ne, *strides, offset]
        fn = (lib.ggml_view_1d, lib.ggml_view_2d, lib.ggml_view_3d, lib.ggml_view_4d)[len(ne) - 1]
        out = self._new(fn, a.ptr, *args, type_=t, ne=ne, view=True)
        out._ndim = len(ne)
        return out

    def permute(self, a: Tensor, axis0: int, axis1: int, axis2: int, axis3: int) -> Tensor:
        """A view with dim i of a moved to dim ``axis_i`` (ggml_permute)."""
        self._args(a)
        axes = (axis0, axis1, axis2, axis3)
        # ggml.c ggml_permute: each axis in 0..3, all distinct
        _check(all(isinstance(x, int) and 0 <= x < 4 for x in axes) and len(set(axes)) == 4,
               f"permute: axes {axes} must be a permutation of 0..3")
        return self._new(ggml().ggml_permute, a.ptr, *axes, type_=int(a.ptr.type), ne=a.ne, view=True)

    def transpose(self, a: Tensor) -> Tensor:
        """A view with dims 0 and 1 swapped (ggml_transpose)."""
        self._args(a)
        return self._new(ggml().ggml_transpose, a.ptr, type_=int(a.ptr.type), ne=a.ne, view=True)


def _prod(ne: Sequence[int]) -> int:
    out = 1
    for n in ne:
        out *= n
    return out


def _shape4(shape: Sequence[int]) -> list[int]:
    ne = check_shape(shape)
    return ne + [1] * (4 - len(ne))


def check_shape(shape: Sequence[int]) -> list[int]:
    """A ggml ne list of 1-4 non-negative ints whose element count fits int64."""
    try:
        ne = [int(n) for n in shape]
    except TypeError:
        raise GGMLError(f"shape must be a sequence of ints, got {shape!r}") from None
    if any(isinstance(n, bool | float) for n in shape):
        raise GGMLError(f"shape must hold ints, got {shape!r}")
    if not 1 <= len(ne) <= MAX_DIMS:
        raise GGMLError(f"ggml tensors have 1 to {MAX_DIMS} dimensions, got {len(ne)}")
    if any(n < 0 for n in ne):
        raise GGMLError(f"negative dimension in {ne}")
    # ggml_new_tensor_impl: GGML_ASSERT(INT64_MAX / ne[i] > current_nelements)
    total = ne[0]
    for n in ne[1:]:
        if n > 1:
            if _INT64_MAX // n <= total:
                raise GGMLError(f"{ne} has more elements than int64 holds")
            total *= n
    return ne
