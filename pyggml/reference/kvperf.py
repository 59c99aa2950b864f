"""The reference's KV cache hot path through the probe (tools/paritychecker/probe/probe_kvperf.cpp),
for ``pyggml bench``: find_slot + apply_ubatch + get_n_kv of one kept ubatch, and its KQ mask."""

from __future__ import annotations

from .._native import ffi, probe


class KVPerf:
    """A unified reference cache of ``kv_size`` cells holding ``n_fill`` tokens of sequence 0, and
    a ubatch of ``n_tokens`` more.  Without ``applied``: ``slot()`` places the ubatch and removes
    it again (returns n_kv).  With ``applied`` (the ubatch placed once): ``mask(f16)`` fills its
    KQ mask (returns n_kv)."""

    def __init__(self, kv_size: int, n_fill: int, n_tokens: int, applied: bool) -> None:
        self._lib = probe()
        self._h = self._lib.ps_kvperf_new(kv_size, n_fill, n_tokens, int(applied))
        if self._h == ffi.NULL:
            raise ValueError(f"ps_kvperf_new({kv_size}, {n_fill}, {n_tokens}) failed")

    def slot(self) -> int:
        return self._lib.ps_kvperf_slot(self._h)

    def mask(self, f16: bool = False) -> int:
        return self._lib.ps_kvperf_mask(self._h, int(f16))

    def __del__(self) -> None:
        h = getattr(self, "_h", ffi.NULL)
        if h != ffi.NULL:
            self._lib.ps_kvperf_free(h)
            self._h = ffi.NULL
