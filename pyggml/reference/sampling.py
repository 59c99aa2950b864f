"""The reference's samplers through llama.h's public sampler API (and, for DRY with token
breakers, the probe's wrapper of llama_sampler_init_dry_testing).

``RefSampler`` owns a ``llama_sampler *``; ``apply`` copies a ``Candidates`` into a
``llama_token_data`` array, runs ``llama_sampler_apply`` and reads back what the reference left
(the data pointer may have moved: xtc advances it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._native import ffi, llama, probe

TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
assert TOKEN_DATA.itemsize == ffi.sizeof("llama_token_data")


class RefSampler:
    """A reference sampler. Samplers added to a chain are owned by it (not freed here)."""

    def __init__(self, ptr, owned: bool = True) -> None:
        if ptr == ffi.NULL:
            raise RuntimeError("the reference returned no sampler")
        self._lib = llama()
        self.ptr = ffi.gc(ptr, self._lib.llama_sampler_free) if owned else ptr
        self._cap = 0
        self._buf = None

    @property
    def name(self) -> str:
        return ffi.string(self._lib.llama_sampler_name(self.ptr)).decode()

    def member_names(self) -> list[str]:
        """Names of a chain's samplers (empty for a single sampler)."""
        lib = self._lib
        if lib.llama_sampler_chain_get(self.ptr, -1) == ffi.NULL:
            return []
        return [ffi.string(lib.llama_sampler_name(lib.llama_sampler_chain_get(self.ptr, i))).decode()
                for i in range(lib.llama_sampler_chain_n(self.ptr))]

    def accept(self, token: int) -> None:
        self._lib.llama_sampler_accept(self.ptr, int(token))

    def reset(self) -> None:
        self._lib.llama_sampler_reset(self.ptr)

    def clone(self) -> RefSampler:
        return RefSampler(self._lib.llama_sampler_clone(self.ptr))

    def seed(self) -> int:
        return int(self._lib.llama_sampler_get_seed(self.ptr))

    def _array(self, n: int):
        if n > self._cap or self._buf is None:
            self._cap = max(n, 1)
            self._buf = ffi.new("llama_token_data[]", self._cap)
        return self._buf

    def apply_raw(self, ids: np.ndarray, logits: np.ndarray, p: np.ndarray, selected: int = -1,
                  sorted: bool = False) -> tuple[np.ndarray, int, bool]:
        """Apply to the given columns; returns (records as TOKEN_DATA, selected, sorted)."""
        n = int(ids.size)
        buf = self._array(n)
        view = np.frombuffer(ffi.buffer(buf, max(n, 1) * TOKEN_DATA.itemsize),
                             dtype=TOKEN_DATA)[:n]
        view["id"] = ids
        view["logit"] = logits
        view["p"] = p
        arr = ffi.new("llama_token_data_array *")
        arr.data = buf
        arr.size = n
        arr.selected = selected
        arr.sorted = sorted
        self._lib.llama_sampler_apply(self.ptr, arr)
        m = int(arr.size)
        out = (np.frombuffer(ffi.buffer(arr.data, m * TOKEN_DATA.itemsize), dtype=TOKEN_DATA).copy()
               if m else np.zeros(0, TOKEN_DATA))
        return out, int(arr.selected), bool(arr.sorted)

    def apply(self, cur) -> None:
        """Apply to a ``pyggml.sampling.Candidates`` in place (same fields)."""
        out, sel, srt = self.apply_raw(cur.ids, cur.logits, cur.p, cur.selected, cur.sorted)
        cur.ids, cur.logits, cur.p = out["id"].copy(), out["logit"].copy(), out["p"].copy()
        cur.selected, cur.sorted = sel, srt

    def sample_logits(self, logits: np.ndarray) -> int:
        """``llama_sampler_sample`` without a context: fill, apply, read the token, accept."""
        lg = np.asarray(logits, dtype=np.float32)
        n = int(lg.size)
        buf = self._array(n)
        view = np.frombuffer(ffi.buffer(buf, max(n, 1) * TOKEN_DATA.itemsize),
                             dtype=TOKEN_DATA)[:n]
        view["id"] = np.arange(n, dtype=np.int32)
        view["logit"] = lg
        view["p"] = 0.0
        arr = ffi.new("llama_token_data_array *")
        arr.data, arr.size, arr.selected, arr.sorted = buf, n, -1, False
        self._lib.llama_sampler_apply(self.ptr, arr)
        sel = int(arr.selected)
        if not 0 <= sel < int(arr.size):
            raise ValueError(f"reference chain selected no token (selected={sel})")
        token = int(arr.data[sel].id)
        self._lib.llama_sampler_accept(self.ptr, token)
        return token


def _lib():
    return llama()


def greedy() -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_greedy())


def dist(seed: int) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_dist(seed & 0xFFFFFFFF))


def top_k(k: int) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_top_k(k))


def top_p(p: float, min_keep: int) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_top_p(p, min_keep))


def min_p(p: float, min_keep: int) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_min_p(p, min_keep))


def typical(p: float, min_keep: int) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_typical(p, min_keep))


def temp(t: float) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_temp(t))


def temp_ext(t: float, delta: float, exponent: float) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_temp_ext(t, delta, exponent))


def xtc(p: float, t: float, min_keep: int, seed: int) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_xtc(p, t, min_keep, seed & 0xFFFFFFFF))


def top_n_sigma(n: float) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_top_n_sigma(n))


def mirostat(n_vocab: int, seed: int, tau: float, eta: float, m: int) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_mirostat(n_vocab, seed & 0xFFFFFFFF, tau, eta, m))


def mirostat_v2(seed: int, tau: float, eta: float) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_mirostat_v2(seed & 0xFFFFFFFF, tau, eta))


def penalties(n_vocab: int, last_n: int, repeat: float, freq: float, present: float) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_penalties(n_vocab, last_n, repeat, freq, present))


def dry_tokens(multiplier: float, base: float, allowed_length: int, last_n: int,
               breakers: Sequence[Sequence[int]]) -> RefSampler:
    """DRY with token-sequence breakers (probe: llama_sampler_init_dry_testing).  Only for
    enabled configurations: the reference's testing constructor writes into the sampler's
    context unconditionally, which for a disabled one is the empty sampler's."""
    if not (np.float32(multiplier) != 0 and np.float32(base) >= 1 and last_n > 0):
        # the public constructor gives the same empty sampler without touching the vocab
        return RefSampler(_lib().llama_sampler_init_dry(ffi.NULL, multiplier, base,
                                                        allowed_length, last_n, ffi.NULL, 0))
    flat = [int(t) for seq in breakers for t in seq]
    tokens = ffi.new("int32_t[]", flat or [0])
    lengths = ffi.new("int32_t[]", [len(seq) for seq in breakers] or [0])
    _lib()
    ptr = probe().ps_sampler_init_dry_testing(multiplier, base, allowed_length, last_n,
                                              tokens, lengths, len(breakers))
    return RefSampler(ffi.cast("struct llama_sampler *", ptr))


def dry(vocab, multiplier: float, base: float, allowed_length: int, last_n: int,
        breakers: Sequence[bytes]) -> RefSampler:
    """The public constructor: breaker strings tokenized by the reference over ``vocab``
    (a ``pyggml.reference.vocab.RefVocab``, which must outlive the sampler)."""
    keep = [ffi.new("char[]", b) for b in breakers]
    arr = ffi.new("const char *[]", keep or [ffi.NULL])
    return RefSampler(_lib().llama_sampler_init_dry(vocab.vocab, multiplier, base, allowed_length,
                                                    last_n, arr, len(breakers)))


def infill(vocab) -> RefSampler:
    """llama_sampler_init_infill over ``vocab`` (a ``RefVocab`` that must outlive the sampler)."""
    return RefSampler(_lib().llama_sampler_init_infill(vocab.vocab))


class BreakerVocab:
    """The reference tokenizer seen as ``pyggml.sampling.penalties.BreakerVocab`` (parity only:
    it lets DRY's breaker processing be diffed apart from the tokenizer)."""

    def __init__(self, vocab) -> None:
        self.v = vocab

    def n_tokens(self) -> int:
        return self.v.n_tokens

    def token_text(self, token: int) -> bytes:
        # llama_vocab::detokenize({token}, special = true)
        return self.v.detokenize([token], remove_special=False, unparse_special=True)

    def tokenize(self, text: bytes) -> list[int]:
        return self.v.tokenize(text, False, False)


def adaptive_p(target: float, decay: float, seed: int) -> RefSampler:
    return RefSampler(_lib().llama_sampler_init_adaptive_p(target, decay, seed & 0xFFFFFFFF))


def logit_bias(n_vocab: int, biases: Sequence[tuple[int, float]]) -> RefSampler:
    arr = ffi.new("llama_logit_bias[]", max(len(biases), 1))
    for i, (t, b) in enumerate(biases):
        arr[i].token = t
        arr[i].bias = b
    return RefSampler(_lib().llama_sampler_init_logit_bias(n_vocab, len(biases), arr))


def chain(samplers: Sequence[RefSampler]) -> RefSampler:
    """A chain that takes ownership of ``samplers`` (their handles must not be used again)."""
    lib = _lib()
    params = lib.llama_sampler_chain_default_params()
    params.no_perf = True
    ch = lib.llama_sampler_chain_init(params)
    for s in samplers:
        ffi.gc(s.ptr, None)  # detach our destructor: the chain frees it now
        lib.llama_sampler_chain_add(ch, s.ptr)
    return RefSampler(ch)


def libm_f32(op: str, x: np.ndarray) -> np.ndarray:
    """glibc ``expf``/``logf``/``log2f`` over an array, evaluated in the probe."""
    code = {"expf": 0, "logf": 1, "log2f": 2}[op]
    xs = np.ascontiguousarray(x, dtype=np.float32)
    ys = np.empty_like(xs)
    probe().ps_libm_f32(code, ffi.from_buffer("float[]", xs), ffi.from_buffer("float[]", ys),
                        xs.size)
    return ys
